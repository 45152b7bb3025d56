package log

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/uuid"
	"github.com/tidwall/wal"
)

// scavengeTmpExt names a segment being rewritten by Rewrite; Open removes it.
const scavengeTmpExt = ".scavenge" + tmpExt

// RewriteOptions says what Rewrite changes.
type RewriteOptions struct {
	// Change is called with each record of the segment, in order, and returns nil to
	// keep it, or what to store in its place: a record of KindGone for an event or a
	// link no stream shows any more (with Gone.ID the event's id, uuid.Nil for a link),
	// or the event itself with Erased set and no data or metadata. Rewrite sets the
	// replacement's position, commit flag, write start and Raft index (Applied) to the
	// original's; any other change is refused.
	Change func(r *Record) *Record
	// Pace, if set, is called after each record with the bytes read so far, and may
	// wait to throttle the rewrite; an error it returns stops the rewrite, which then
	// changes nothing. The copy of the records before the first replaced one, made
	// when it is found, is not paced again.
	Pace func(ctx context.Context, read int64) error
	// BeforeSwap, if set, is called once the replacement is written and fsynced, after
	// Change has seen every record, and before it is swapped in: only when a record is
	// replaced. An error it returns stops the rewrite, which then changes nothing (the
	// replacement is removed and the old segment stays). A scavenge syncs the log here,
	// so that the records whose effect the rewrite carries out are durable before it is.
	BeforeSwap func() error
}

// RewriteResult says what a Rewrite did.
type RewriteResult struct {
	Replaced    int   // records replaced
	BytesBefore int64 // the segment's size before
	BytesAfter  int64 // and after
}

// Rewrite rewrites the sealed segment that starts at position first with the records
// opts.Change replaces, removing their bytes from the disk. No position changes, and the
// segment stays in tidwall/wal's format. A segment of which Change replaces no record is
// only read: no copy of it is written, and its file stays as it is. Otherwise the new
// segment is written beside the old one and fsynced, then renamed over it: a crash
// leaves either segment whole, and its offsets are rebuilt when next needed (its sidecar
// is removed before the rename and written again after it). Reads go on during a
// rewrite; each sees the old segment or the new one. A damaged record stops the rewrite with its *CorruptError, changing
// nothing: repair the log first.
func (l *Log) Rewrite(ctx context.Context, first uint64, opts RewriteOptions) (RewriteResult, error) {
	res, err := l.rewrite(ctx, first, opts)
	if err != nil {
		return res, fmt.Errorf("log: rewrite segment %d: %w", first, err)
	}
	return res, nil
}

func (l *Log) rewrite(ctx context.Context, first uint64, opts RewriteOptions) (RewriteResult, error) {
	if l.opts.ReadOnly {
		return RewriteResult{}, ErrReadOnly
	}
	l.rewriting.Lock() // one rewrite at a time
	defer l.rewriting.Unlock()
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return RewriteResult{}, ErrClosed
	}
	var s *segment
	for i, seg := range l.segs {
		if seg.first == first && i < len(l.segs)-1 {
			s = seg
		}
	}
	l.mu.RUnlock()
	if s == nil {
		return RewriteResult{}, fmt.Errorf("%w: no sealed segment starts at position %d", ErrInvalid, first)
	}
	if s.sidecar != nil {
		<-s.sidecar // written in the background since a write sealed s
	}
	// Only Rewrite changes a sealed segment, and it holds l.rewriting: s.size and its
	// table stay as read here until the swap below.
	offs, err := l.table(s)
	if err != nil {
		return RewriteResult{}, err
	}
	res := RewriteResult{BytesBefore: s.size}
	tmp := s.path + scavengeTmpExt
	newOffs, size, err := l.writeRewrite(ctx, s, offs, tmp, opts, &res)
	if err != nil || res.Replaced == 0 {
		os.Remove(tmp)
		res.Replaced, res.BytesAfter = 0, res.BytesBefore
		return res, err
	}
	res.BytesAfter = size
	if opts.BeforeSwap != nil {
		if err := opts.BeforeSwap(); err != nil {
			os.Remove(tmp)
			return RewriteResult{BytesBefore: res.BytesBefore, BytesAfter: res.BytesBefore}, err
		}
	}

	s.swap.Lock()
	err = func() error {
		if err := removeSidecar(s.path); err != nil {
			return err
		}
		if err := syncDirs(l.dir); err != nil {
			return err
		}
		if err := os.Rename(tmp, s.path); err != nil {
			return err
		}
		return syncDir(l.dir)
	}()
	if err != nil {
		s.swap.Unlock()
		os.Remove(tmp)
		if _, statErr := os.Stat(sidecarPath(s.path)); errors.Is(statErr, fs.ErrNotExist) {
			l.writeSidecar(s.first, s.path, s.size, offs) // the old segment stays: so does its table
		}
		return RewriteResult{BytesBefore: res.BytesBefore, BytesAfter: res.BytesBefore}, err
	}
	l.files.forget(s.first)
	l.mu.Lock()
	l.tables.mu.Lock()
	s.gen++
	s.size = size
	if s.offs != nil {
		s.offs = newOffs
	}
	s.bad = nil // damage a load found in the old file is not the new one's
	l.tables.mu.Unlock()
	l.mu.Unlock()
	s.swap.Unlock()
	l.writeSidecar(s.first, s.path, size, newOffs)
	return res, nil
}

// writeRewrite writes the rewritten segment s to tmp, fsynced, and returns its offsets
// and size. tmp is created only when opts.Change replaces a record: the records before
// the first replaced one are copied into it as they are, and a segment of which no record
// is replaced is only read, with no copy written (none to fsync and remove), and the
// offsets and size returned are its own.
func (l *Log) writeRewrite(ctx context.Context, s *segment, offs []uint32, tmp string, opts RewriteOptions, res *RewriteResult) ([]uint32, int64, error) {
	old, err := os.Open(s.path)
	if err != nil {
		return nil, 0, err
	}
	defer old.Close()
	var f *os.File // the copy, once a record is replaced
	newOffs := make([]uint32, len(offs))
	var size int64
	err = func() error {
		br := bufio.NewReaderSize(io.NewSectionReader(old, 0, s.size), scanBufferSize)
		var w *bufio.Writer
		var buf, enc []byte
		var off int64
		for i := range offs {
			pos := s.first + uint64(i)
			start, end := offsBounds(offs, s.size, i)
			var r Record
			r, buf, err = readEntry(br, buf, s.path, start, end, pos)
			if err != nil {
				return err
			}
			off = end
			out := buf
			if repl := opts.Change(&r); repl != nil {
				if err := checkReplacement(&r, repl); err != nil {
					return fmt.Errorf("position %d: %w", pos, err)
				}
				enc = appendRecord(enc[:0], repl, buf[6]&flagUnsynced) // keeps what the write was
				out = enc
				res.Replaced++
				if f == nil {
					// The first replaced record: the copy begins with the records
					// before it, byte for byte, at the offsets they have.
					if f, err = os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640); err != nil {
						return err
					}
					if err := AdoptOwner(f, l.dir); err != nil {
						return err
					}
					if _, err := io.Copy(f, io.NewSectionReader(old, 0, start)); err != nil {
						return err
					}
					copy(newOffs, offs[:i])
					size = start
					w = bufio.NewWriterSize(f, scanBufferSize)
				}
			}
			if f != nil {
				newOffs[i] = uint32(size)
				var lb [10]byte
				n, _ := w.Write(appendUvarint(lb[:0], uint64(len(out))))
				w.Write(out)
				size += int64(n + len(out))
			}
			if opts.Pace != nil {
				if err := opts.Pace(ctx, off); err != nil {
					return err
				}
			} else if err := ctx.Err(); err != nil {
				return err
			}
		}
		if f == nil {
			copy(newOffs, offs)
			size = s.size
			return nil
		}
		if err := w.Flush(); err != nil {
			return err
		}
		return f.Sync()
	}()
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	return newOffs, size, err
}

// checkReplacement checks that repl is a replacement Rewrite allows for r, and makes it
// keep r's place in the log.
func checkReplacement(r, repl *Record) error {
	repl.Position, repl.Commit, repl.WriteStart, repl.Applied, repl.Slot = r.Position, r.Commit, r.WriteStart, r.Applied, r.Slot
	switch {
	case repl.Kind == KindGone && (r.Kind == KindEvent || r.Kind == KindLink):
		// An event's id stays taken after its bytes go: an index built from the
		// scavenged log must refuse it as the index that saw the event does.
		var id uuid.UUID
		if r.Kind == KindEvent {
			id = r.Event.ID
		}
		if repl.Gone.ID != id {
			return fmt.Errorf("%w: the gone record of a %s at position %d holds id %s, want %s (an event's own id, none for a link)", ErrInvalid, r.Kind, r.Position, repl.Gone.ID, id)
		}
		*repl = Record{Position: r.Position, Commit: r.Commit, WriteStart: r.WriteStart, Applied: r.Applied, Slot: r.Slot, Kind: KindGone, Gone: Gone{ID: id}}
		return nil
	case repl.Kind == KindEvent && r.Kind == KindEvent && repl.Erased:
		e, x := r.Event, repl.Event
		if x.ID != e.ID || x.Stream != e.Stream || x.Version != e.Version || x.Type != e.Type ||
			x.Timestamp != e.Timestamp || x.Data != nil || x.Metadata != nil {
			return fmt.Errorf("%w: an erased event keeps its id, stream, version, type and timestamp, and loses its data and metadata", ErrInvalid)
		}
		return nil
	}
	return fmt.Errorf("%w: a %s record cannot be replaced by a %s record (erased: %t)", ErrInvalid, r.Kind, repl.Kind, repl.Erased)
}

// Seal ends the newest segment, so that Rewrite can rewrite it: the next write goes to
// a new, empty segment. It does nothing when the newest segment is empty. The records
// are synced first; the new segment file is created (and, unless NoSync, synced with its
// directory) before tidwall/wal is reopened on it, so a crash leaves the log with the
// old newest segment or with an empty one after it, both of which Open reads.
func (l *Log) Seal() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.syncLocked("seal"); err != nil {
		return err
	}
	tail := l.segs[len(l.segs)-1]
	if tail.count == 0 {
		return nil
	}
	next := &segment{first: l.last + 1, path: filepath.Join(l.dir, segmentName(l.last+1))}
	err := func() error {
		if err := l.wal.Close(); err != nil && !errors.Is(err, wal.ErrClosed) {
			return err
		}
		l.wal = nil
		f, err := os.OpenFile(next.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
		if err != nil {
			return err
		}
		err = AdoptOwner(f, l.dir)
		if err == nil && !l.opts.NoSync {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil && !l.opts.NoSync {
			err = syncDir(l.dir)
		}
		return err
	}()
	if err == nil {
		l.wal, err = l.openWAL(l.dir, l.walOptions())
	}
	if err != nil {
		// Whatever is on disk, the next write's recovery reopens tidwall/wal on it.
		if l.wal != nil {
			l.wal.Close()
			l.wal = nil
		}
		return fmt.Errorf("log: seal segment %d: %w", tail.first, err)
	}
	if wl, err := l.wal.LastIndex(); err != nil || wl != l.last {
		l.wal.Close()
		l.wal = nil
		return fmt.Errorf("log: seal: tidwall/wal is at index %d (%v), want %d", wl, err, l.last)
	}
	l.mu.Lock()
	l.segs = append(l.segs, next)
	l.mu.Unlock()
	// Not in the background as after a write's seal: Seal is no write's business, and
	// the Rewrite that usually follows must not race a sidecar of the old contents.
	l.writeSidecar(tail.first, tail.path, tail.size, tail.offs)
	l.tables.sealed(tail)
	return nil
}
