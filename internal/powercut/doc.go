// Package powercut lets a test cut the power under real processes: it serves a
// directory through FUSE, remembers how much of each file written through it the last
// fsync made durable, and Cut truncates every such file back to that.
//
// That is what a power cut leaves of a file that was appended to, on ext4 and XFS in
// their default modes: a prefix of what was written, at least what was synced. A file or
// directory made since its directory's last fsync is gone after a Cut: its name was never
// durable. It is the failure SIGKILL cannot show, since a killed process's writes are in
// the kernel's page cache and survive. The model is coarse where pmd does not need it to
// be fine: renames, removals and writes inside the synced part of a file count as
// durable at once.
//
// CutKeeping is the cut that kept more of a file than its last fsync: a test that must
// cut at a place of its choosing (inside a write) names the file and the size to keep,
// at least what was synced (Synced).
//
// Mounting needs FUSE and the right to mount (root); tests skip when it is refused.
package powercut
