// Package pm runs process managers (sagas) whose state is event sourced from their own
// stream in a pmd store.
package pm
