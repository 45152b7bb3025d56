//go:build race

package index

// raceOn says the tests run under the race detector, which also turns on pebble's
// invariant checks: a read of the index costs a hundred times what it does without.
const raceOn = true
