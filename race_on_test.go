//go:build race

package pmd

// raceOn says the tests run under the race detector, whose shadow memory and pebble's
// invariant checks (on with it) make the same work allocate ten times as much.
const raceOn = true
