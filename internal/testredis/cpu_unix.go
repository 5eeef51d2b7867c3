//go:build unix

package testredis

import (
	"syscall"
	"time"
)

// ProcessCPU is the CPU time this process has used so far (user and
// system, from getrusage), for benchmarks that report CPU per operation
// beside [CPU]; 0 where the system does not tell.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
