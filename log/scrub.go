package log

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
)

// scrubProgressEvery is how many bytes Scrub reads between progress reports.
const scrubProgressEvery = 4 << 20

// Scrub reads every record of the log up to LastPosition (as of the call), sealed
// segments and the tail, sequentially through one buffer, and checks each as Read
// does: framing against the offset table, checksum, header, body and position. It
// returns every damaged record, in position order, as the *CorruptError Read of its
// position returns: a damaged record does not stop it, the next one is found through
// the offset table, so one flipped byte hides no later damage. The table of a sealed
// segment is loaded as a Read would load it; a segment whose table cannot be loaded (its
// framing breaks where no sidecar vouches for it, or it does not hold the records its
// name and the next one's imply) is reported by the *CorruptError of that load, and
// Scrub goes on with the next segment.
//
// progress, if not nil, is called from time to time and at the end with the bytes
// checked so far and the bytes to check. Scrub stops when ctx is done, returning the
// damage found so far and ctx's error. An I/O error in a segment (a bad sector) does not
// stop it either: it goes on with the next segment, so that one unreadable segment hides
// no damage in the others, and returns those errors, each naming its segment, joined.
// It runs alongside reads and writes and takes no lock while it reads.
func (l *Log) Scrub(ctx context.Context, progress func(done, total int64)) ([]*CorruptError, error) {
	type span struct {
		s    *segment
		offs []uint32 // the tail's; a sealed segment's is loaded when its turn comes
		size int64
		gen  int
	}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return nil, ErrClosed
	}
	var spans []span
	var total int64
	for i, s := range l.segs {
		if s.first > l.last || s.count == 0 {
			break
		}
		sp := span{s: s, size: s.size, gen: s.gen}
		if i == len(l.segs)-1 {
			// The tail's offs grows by appends: this slice keeps what it holds now.
			sp.offs = s.offs[:len(s.offs):len(s.offs)]
		}
		spans = append(spans, sp)
		total += s.size
	}
	l.mu.RUnlock()

	var found []*CorruptError
	var failed []error // the I/O errors of the segments Scrub could not read
	var done, reported int64
	report := func() {
		if progress != nil {
			progress(done, total)
			reported = done
		}
	}
	br := bufio.NewReaderSize(nil, int(max(16, min(total, scanBufferSize))))
	var buf []byte
	for _, sp := range spans {
		segStart := done
		sealed := sp.offs == nil
		offs, size, cf, ok, err := l.openSegment(sp.s, sp.gen, sealed, sealed)
		if !ok {
			// The tail was sealed and rewritten since the spans were made.
			sealed = true
			offs, size, cf, _, err = l.openSegment(sp.s, -1, true, true)
		}
		var ce *CorruptError
		if errors.As(err, &ce) {
			found = append(found, ce)
			done = segStart + sp.size
			continue
		}
		if err != nil {
			failed = append(failed, fmt.Errorf("log: scrub %s: %w", sp.s.path, err))
			done = segStart + sp.size
			continue
		}
		if sealed {
			sp.offs, sp.size = offs, size
		}
		seg := &segment{first: sp.s.first, path: sp.s.path, offs: sp.offs, size: sp.size}
		br.Reset(io.NewSectionReader(cf.f, 0, sp.size))
		for i := range sp.offs {
			if err = ctx.Err(); err != nil {
				break
			}
			start, end := seg.bounds(i)
			pos := seg.first + uint64(i)
			if n := int(end - start); cap(buf) < n {
				buf = make([]byte, n)
			} else {
				buf = buf[:n]
			}
			if _, err = io.ReadFull(br, buf); err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					break
				}
				// Every entry from here on is missing from the file.
				for j := i; j < len(sp.offs); j++ {
					s, _ := seg.bounds(j)
					found = append(found, &CorruptError{Segment: seg.path, Offset: s, Position: seg.first + uint64(j),
						Reason: "segment file is shorter than its entries"})
				}
				err = nil
				break
			}
			if _, derr := decodeEntry(buf, seg.path, start, pos); derr != nil {
				var ce *CorruptError
				if !errors.As(derr, &ce) {
					err = derr
					break
				}
				found = append(found, ce)
			}
			if done += end - start; done-reported >= scrubProgressEvery {
				report()
			}
		}
		l.files.release(cf)
		if err != nil {
			if ctx.Err() != nil {
				return found, err
			}
			failed = append(failed, fmt.Errorf("log: scrub %s: %w", seg.path, err))
		}
		done = segStart + sp.size // the whole segment, even if it was short or unreadable
	}
	report()
	return found, errors.Join(failed...)
}
