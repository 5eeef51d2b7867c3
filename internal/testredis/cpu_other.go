//go:build !unix

package testredis

import "time"

// ProcessCPU is the CPU time this process has used so far; 0 here, where
// the system does not tell.
func ProcessCPU() time.Duration { return 0 }
