package log

import (
	"errors"
	"fmt"
)

// SidecarError is what VerifySidecars found wrong with the offsets file of a sealed
// segment.
type SidecarError struct {
	Segment string // the segment file whose offsets file it is
	// Rebuilt is true when the offsets file does not fit the segment (it is missing,
	// does not decode, or is for another position, record count or size), which the
	// first read of the segment after the next Open sees, rebuilding it: a crash can
	// leave it so, and it is not damage. When false, the file fits the segment but lists
	// other entry offsets: reads would use it and land on the wrong entries.
	Rebuilt bool
	Reason  string
}

func (e *SidecarError) Error() string {
	if e.Rebuilt {
		return fmt.Sprintf("log: offsets of segment %s: %s; the first read of the segment rebuilds them", e.Segment, e.Reason)
	}
	return fmt.Sprintf("log: offsets of segment %s: %s", e.Segment, e.Reason)
}

// VerifySidecars checks the offsets file of every sealed segment (every segment but the
// last) of the log in dir against the segment's own framing, reading every segment but
// the last through. It changes nothing; run it on a log no process has open. A segment
// whose entries cannot be framed, or that does not end where the next one starts, is
// left out: that is damage of the segment, which reads report. The error is
// for a directory or file it cannot read.
func VerifySidecars(dir string) ([]*SidecarError, error) {
	segs, _, err := listSegments(dir)
	if err != nil {
		return nil, fmt.Errorf("log: verify sidecars %s: %w", dir, err)
	}
	var out []*SidecarError
	for i := 0; i+1 < len(segs); i++ {
		f, count := segs[i], segs[i+1].first-segs[i].first
		offs, err := scanOffsets(f.path)
		if errors.Is(err, ErrCorrupt) || err == nil && uint64(len(offs)) != count {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("log: verify sidecars %s: %w", dir, err)
		}
		t, err := readSidecar(f.path)
		if why := unusable(t, err, f, count); why != "" {
			out = append(out, &SidecarError{Segment: f.path, Rebuilt: true, Reason: why})
			continue
		}
		for j, o := range offs {
			if t.offs[j] != o {
				out = append(out, &SidecarError{Segment: f.path, Reason: fmt.Sprintf(
					"offsets file puts entry %d (position %d) at offset %d, the segment at %d", j, f.first+uint64(j), t.offs[j], o)})
				break
			}
		}
	}
	return out, nil
}
