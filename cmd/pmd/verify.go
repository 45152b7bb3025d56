package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/index"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// verifyCmd checks a stopped store offline: every record of every segment (framing,
// checksum, the position it claims, the version it carries against the versions the
// index derives), the offsets file of every sealed segment, and that the index
// checkpoint agrees with the log on everything the index holds. It changes
// nothing: a torn tail, which the next start would cut, is reported but is not damage.
func verifyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := newFlags("verify", stderr)
	if err := parse(fset, args); err != nil {
		return err
	}
	if fset.NArg() != 1 {
		return &usageError{"want exactly one argument: the data directory"}
	}
	dir := fset.Arg(0)
	unlock, err := lockShared(dir)
	if err != nil {
		return &exitError{exitTrouble, err}
	}
	defer unlock()

	v := &verifier{dir: dir, out: stdout, rebuilt: index.New()}
	if f, ok := stderr.(*os.File); ok && isTerminal(f) {
		v.progress = f
	}
	if err := v.run(ctx); err != nil {
		return &exitError{exitTrouble, err}
	}
	return v.report()
}

// lockShared takes a shared lock on the store's LOCK file, which a running pmd holds
// exclusively: verifying a store that is being written would report its tail as torn.
func lockShared(dir string) (func(), error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("verify %s: %w", dir, err)
	}
	f, err := os.Open(filepath.Join(dir, "LOCK"))
	if errors.Is(err, fs.ErrNotExist) {
		return func() {}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("verify %s: the store is open in a running pmd; stop it first (%v)", dir, err)
	}
	return func() { f.Close() }, nil
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

type segmentFile struct {
	path  string
	first uint64
	size  int64
}

// problem is something verify found, at a place in the log.
type problem struct {
	segment  string
	offset   int64
	position uint64
	msg      string
}

func (p problem) String() string {
	if p.segment == "" {
		return p.msg
	}
	return fmt.Sprintf("%s offset %d (position %d): %s", p.segment, p.offset, p.position, p.msg)
}

type verifier struct {
	dir      string
	out      io.Writer
	progress io.Writer // nil when stderr is not a terminal

	segments   []segmentFile
	totalBytes int64
	doneBytes  int64
	lastDraw   time.Time

	ckpt     *index.Index // nil when there is none or it is unreadable
	ckptNote string
	rebuilt  *index.Index

	records, events, links, deletes int
	lastCommit                      uint64 // position of the last commit record
	lastPos                         uint64
	bad                             []problem // damaged records and framing
	mismatch                        []problem // checkpoint and log disagree
	sidecars                        []problem // offsets files Open would trust but that are wrong
	notes                           []string  // offsets files the next start rebuilds
	torn                            *problem  // an unfinished tail entry in the last segment
}

func (v *verifier) run(ctx context.Context) error {
	logDir := filepath.Join(v.dir, "log")
	entries, err := os.ReadDir(logDir)
	if err != nil {
		return fmt.Errorf("verify %s: %w", v.dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		if len(name) != 20 || strings.Trim(name, "0123456789") != "" {
			continue
		}
		first, _ := strconv.ParseUint(name, 10, 64)
		info, err := e.Info()
		if err != nil {
			return fmt.Errorf("verify %s: %w", v.dir, err)
		}
		v.segments = append(v.segments, segmentFile{filepath.Join(logDir, name), first, info.Size()})
		v.totalBytes += info.Size()
	}
	slices.SortFunc(v.segments, func(a, b segmentFile) int { return cmpUint(a.first, b.first) })

	ckptPath := filepath.Join(v.dir, "index.ckpt")
	switch ck, err := index.LoadCheckpoint(ckptPath); {
	case err == nil:
		v.ckpt = ck
	case errors.Is(err, fs.ErrNotExist):
		v.ckptNote = "no index checkpoint: the next start rebuilds the index from the log"
	default:
		v.mismatch = append(v.mismatch, problem{msg: fmt.Sprintf("index checkpoint %s is damaged: %v", ckptPath, err)})
	}
	if v.ckpt != nil && v.ckpt.Position() == 0 {
		v.compare()
	}

	next := uint64(1)
	for i, seg := range v.segments {
		if err := ctx.Err(); err != nil {
			return err
		}
		if seg.first != next {
			v.bad = append(v.bad, problem{seg.path, 0, seg.first,
				fmt.Sprintf("segment starts at position %d, but the log before it ends at %d", seg.first, next-1)})
		}
		n, err := v.segment(seg, i == len(v.segments)-1)
		if err != nil {
			return err
		}
		next = seg.first + uint64(n)
	}
	v.draw(true)
	found, err := pmdlog.VerifySidecars(logDir)
	if err != nil {
		return err
	}
	for _, e := range found {
		if e.Rebuilt {
			v.notes = append(v.notes, e.Error())
		} else {
			v.sidecars = append(v.sidecars, problem{msg: e.Error()})
		}
	}
	if v.ckpt != nil && v.ckpt.Position() > v.lastCommit {
		v.mismatch = append(v.mismatch, problem{msg: fmt.Sprintf(
			"the index checkpoint is at position %d, beyond the last committed record of the log (%d)", v.ckpt.Position(), v.lastCommit)})
	}
	return nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// segment checks every entry of one segment file and returns how many it holds.
func (v *verifier) segment(seg segmentFile, last bool) (int, error) {
	f, err := os.Open(seg.path)
	if err != nil {
		return 0, fmt.Errorf("verify: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var off int64
	var buf []byte
	n := 0
	for {
		start := off
		size, err := binary.ReadUvarint(r)
		if errors.Is(err, io.EOF) && off == seg.size {
			return n, nil
		}
		pos := seg.first + uint64(n)
		if err == nil && int64(size) > seg.size-off {
			err = fmt.Errorf("entry of %d bytes runs past the end of the file", size)
		}
		if err == nil {
			off += int64(uvarintLen(size))
			buf = slices.Grow(buf[:0], int(size))[:size]
			_, err = io.ReadFull(r, buf)
		}
		if err != nil {
			p := problem{seg.path, start, pos, fmt.Sprintf("unreadable entry framing (%v)", err)}
			if last {
				p.msg = fmt.Sprintf("%d bytes of an unfinished entry at the end", seg.size-start)
				v.torn = &p
			} else {
				v.bad = append(v.bad, p)
			}
			return n, nil
		}
		off += int64(size)
		v.doneBytes += off - start
		n++
		v.record(seg, start, pos, buf)
		v.draw(false)
	}
}

func uvarintLen(x uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], x)
}

// record checks one record and applies it to the rebuilt index.
func (v *verifier) record(seg segmentFile, off int64, pos uint64, b []byte) {
	v.records++
	v.lastPos = pos
	rec, err := pmdlog.DecodeRecord(b)
	if err != nil {
		v.bad = append(v.bad, problem{seg.path, off, pos, err.Error()})
		v.rebuilt.Advance(pos)
		return
	}
	if rec.Position != pos {
		v.bad = append(v.bad, problem{seg.path, off, pos, fmt.Sprintf("the record says it is at position %d", rec.Position)})
		v.rebuilt.Advance(pos)
		return
	}
	var version, want uint64
	var stream string
	switch rec.Kind {
	case pmdlog.KindEvent:
		v.events++
		stream, want = rec.Event.Stream, rec.Event.Version
		version = v.addEvent(&rec)
		if v.ckpt != nil && pos <= v.ckpt.Position() {
			if at, ok := v.ckpt.Lookup(rec.Event.ID); !ok || at != pos {
				v.mismatch = append(v.mismatch, problem{seg.path, off, pos,
					fmt.Sprintf("the index checkpoint does not find event %s here (found: %v at %d)", rec.Event.ID, ok, at)})
			}
		}
	case pmdlog.KindLink:
		v.links++
		stream, want = rec.Link.Stream, rec.Link.Version
		version = v.rebuilt.AddLink(pos, rec.Link.Stream, rec.Link.Event)
	case pmdlog.KindDelete:
		v.deletes++
		v.rebuilt.DeleteStream(pos, rec.Delete.Stream)
		version, want = 0, 0
	default:
		v.rebuilt.Advance(pos)
	}
	if version != want {
		v.bad = append(v.bad, problem{seg.path, off, pos,
			fmt.Sprintf("the record puts stream %q at version %d, the log before it at %d", stream, want, version)})
	}
	if rec.Commit {
		v.lastCommit = pos
	}
	if v.ckpt != nil && pos == v.ckpt.Position() {
		v.compare()
	}
}

// addEvent adds an event record to the rebuilt index as the store does on replay: its
// causation parent is looked up before the event is added, so that Caused agrees.
func (v *verifier) addEvent(rec *pmdlog.Record) uint64 {
	var parent uint64
	var found bool
	if cause := pmd.CausationOf(rec.Event.Metadata); cause != uuid.Nil {
		parent, found = v.rebuilt.Lookup(cause)
	}
	version := v.rebuilt.AddEvent(rec.Position, rec.Event.ID, rec.Event.Stream, rec.Event.Type)
	if found {
		v.rebuilt.AddCausation(rec.Position, parent)
	}
	return version
}

// compare checks the checkpoint against the index rebuilt from the log up to the
// checkpoint's position, on everything an index holds.
func (v *verifier) compare() {
	err := v.ckpt.Diff(v.rebuilt)
	if err == nil {
		return
	}
	msg := err.Error()
	var d *index.DiffError
	if errors.As(err, &d) {
		what := d.What
		if d.Key != "" {
			what += " " + d.Key
		}
		msg = fmt.Sprintf("%s: the checkpoint has %s, the log %s", what, d.X, d.Y)
	}
	v.mismatch = append(v.mismatch, problem{msg: "the index checkpoint disagrees with the log: " + msg})
}

// draw updates the progress bar, at most a few times a second unless final.
func (v *verifier) draw(final bool) {
	if v.progress == nil || (!final && time.Since(v.lastDraw) < 200*time.Millisecond) {
		return
	}
	v.lastDraw = time.Now()
	frac := 1.0
	if v.totalBytes > 0 {
		frac = float64(v.doneBytes) / float64(v.totalBytes)
	}
	const width = 30
	filled := int(frac * width)
	fmt.Fprintf(v.progress, "\rverifying [%s%s] %3.0f%% %d records", strings.Repeat("#", filled), strings.Repeat(" ", width-filled), frac*100, v.records)
	if final {
		fmt.Fprintln(v.progress)
	}
}

// report prints what was found and returns an error when the store is damaged.
func (v *verifier) report() error {
	var damage []problem
	for _, p := range v.bad {
		// A bad record after the last commit of the last segment is the tail of a
		// write that never completed: the next start cuts it.
		if v.tailOf(p) {
			if v.torn == nil {
				t := p
				t.msg = "record of an unfinished write at the end: " + t.msg
				v.torn = &t
			}
			continue
		}
		damage = append(damage, p)
	}
	fmt.Fprintf(v.out, "%s: %d records (%d events, %d links, %d deletions) in %d segment(s), %d bytes\n",
		v.dir, v.records, v.events, v.links, v.deletes, len(v.segments), v.totalBytes)
	if uncommitted := v.lastPos - v.lastCommit; v.lastPos > v.lastCommit {
		fmt.Fprintf(v.out, "note: the last %d record(s) after position %d belong to a write that never completed; the next start cuts them\n", uncommitted, v.lastCommit)
	}
	if v.torn != nil {
		fmt.Fprintf(v.out, "note: torn tail, cut by the next start: %s\n", v.torn)
	}
	for _, n := range v.notes {
		fmt.Fprintf(v.out, "note: %s\n", n)
	}
	switch {
	case v.ckpt != nil && len(v.mismatch) == 0:
		fmt.Fprintf(v.out, "index checkpoint at position %d agrees with the log\n", v.ckpt.Position())
	case v.ckptNote != "":
		fmt.Fprintf(v.out, "note: %s\n", v.ckptNote)
	}
	for _, p := range damage {
		fmt.Fprintf(v.out, "DAMAGE: %s\n", p)
	}
	for _, p := range v.mismatch {
		fmt.Fprintf(v.out, "DAMAGE: %s\n", p)
	}
	for _, p := range v.sidecars {
		fmt.Fprintf(v.out, "DAMAGE: %s\n", p)
	}
	if n := len(damage) + len(v.mismatch) + len(v.sidecars); n > 0 {
		return fmt.Errorf("%s is damaged: %d problem(s)", v.dir, n)
	}
	fmt.Fprintln(v.out, "ok")
	return nil
}

func (v *verifier) tailOf(p problem) bool {
	if len(v.segments) == 0 || p.segment != v.segments[len(v.segments)-1].path {
		return false
	}
	return p.position > v.lastCommit
}
