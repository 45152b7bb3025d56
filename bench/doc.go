// Package bench holds pmd's benchmarks. Each one measures pmd beside a baseline in the
// same run (raw tidwall/wal writes, the disk's own fsync rate, plain file reads) and
// reports the ratio, so a figure means the same on any machine. See README.md for the
// figures and the commands that reproduce them.
package bench
