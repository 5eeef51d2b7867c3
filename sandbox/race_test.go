//go:build race

package sandbox

// raceEnabled is true when the tests run under the race detector, which
// makes the VM several times slower.
const raceEnabled = true
