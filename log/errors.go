package log

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrCorrupt is matched (errors.Is) by every error that reports damaged log data;
	// the error itself is a *CorruptError saying where.
	ErrCorrupt = errors.New("log: corrupt")
	// ErrNotFound is returned by Read for a position the log does not hold.
	ErrNotFound = errors.New("log: position not found")
	// ErrClosed is returned by every call on a closed Log.
	ErrClosed = errors.New("log: closed")
	// ErrUnavailable is matched by the error of a Write or Sync that failed for a cause
	// outside the Log (disk full, I/O error), which the error also wraps. Such a Write
	// wrote nothing that will ever be read; the Log recovers by itself before the next
	// Write, which goes on as usual once the cause is gone.
	ErrUnavailable = errors.New("log: unavailable")
	// ErrInvalid is matched by errors for a Write the log refuses (an empty batch, a batch
	// not ending in a commit, a record missing a required field). Such a Write writes
	// nothing and leaves the Log usable.
	ErrInvalid = errors.New("log: invalid")
	// ErrReadOnly is matched by the error of Write and Sync on a Log opened with
	// Options.ReadOnly.
	ErrReadOnly = errors.New("log: read-only")
)

// CorruptError reports damaged log data and where it is. errors.Is(err, ErrCorrupt) holds.
type CorruptError struct {
	Segment  string // segment file path; empty when decoding bytes not read from a segment
	Offset   int64  // byte offset of the damaged entry in Segment
	Position uint64 // position of the damaged record; 0 if unknown
	// End, when not 0, is the position after the last record the damage hides: a sealed
	// segment that cannot be framed past Position (its offsets file lost), or that
	// holds fewer records than the next segment's name says, hides every position from
	// Position to End-1, and a read of any of them returns this error. A read from End
	// goes on. When End is 0, only the record at Position is damaged.
	End    uint64
	Reason string // what is wrong
}

// Error says where the damage is and what it is, e.g.
// "log: corrupt: segment /d/00000000000000000001 offset 96, position 2: checksum mismatch: …",
// or "…, positions 2 to 9: …" for damage that hides records up to End-1.
func (e *CorruptError) Error() string {
	var b strings.Builder
	b.WriteString("log: corrupt")
	sep := ": "
	if e.Segment != "" {
		fmt.Fprintf(&b, ": segment %s offset %d", e.Segment, e.Offset)
		sep = ", "
	}
	switch {
	case e.Position != 0 && e.End > e.Position+1:
		fmt.Fprintf(&b, "%spositions %d to %d", sep, e.Position, e.End-1)
	case e.Position != 0:
		fmt.Fprintf(&b, "%sposition %d", sep, e.Position)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// Is makes errors.Is(err, ErrCorrupt) hold for a *CorruptError.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// at returns a copy of err located in segment, its offset taken relative to offset, if
// err is a *CorruptError; other errors are returned as they are.
func at(err error, segment string, offset int64, pos uint64) error {
	var ce *CorruptError
	if !errors.As(err, &ce) {
		return err
	}
	c := *ce
	c.Segment, c.Offset = segment, offset+c.Offset
	if c.Position == 0 {
		c.Position = pos
	}
	return &c
}
