package log

import (
	"context"
	"errors"
	"os"
	"reflect"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/tidwall/wal"
)

// goneOf is the gone record a scavenge puts in place of the event or link r: an
// event's keeps its id.
func goneOf(r *Record) *Record {
	g := &Record{Kind: KindGone}
	if r.Kind == KindEvent {
		g.Gone.ID = r.Event.ID
	}
	return g
}

// scavenged is what a scavenge that kills every event of Order$3 and every link, and
// erases the events of Order$5, makes of r; nil keeps it.
func scavenged(r *Record) *Record {
	switch {
	case r.Kind == KindLink, r.Kind == KindEvent && r.Event.Stream == "Order$3":
		return goneOf(r)
	case r.Kind == KindEvent && r.Event.Stream == "Order$5":
		e := *r
		e.Erased, e.Event.Data, e.Event.Metadata = true, nil, nil
		return &e
	}
	return nil
}

func TestRewriteKeepsPositions(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{NoSync: true, SegmentSize: 2000})
	want := writeBatches(t, l, nil, 10, 20, 30, 5, 25)
	segs := l.Segments()
	if len(segs) < 3 {
		t.Fatalf("%d segments, want at least 3", len(segs))
	}
	var replaced int
	for _, s := range segs[:len(segs)-1] {
		res, err := l.Rewrite(context.Background(), s.First, RewriteOptions{Change: scavenged})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for i := s.First; i < s.First+uint64(s.Count); i++ {
			if repl := scavenged(&want[i-1]); repl != nil {
				repl.Position, repl.Commit, repl.WriteStart = want[i-1].Position, want[i-1].Commit, want[i-1].WriteStart
				want[i-1] = *repl
				n++
			}
		}
		if res.Replaced != n || (n > 0) != (res.BytesAfter < res.BytesBefore) || res.BytesBefore != s.Size {
			t.Fatalf("segment %d: %+v, want %d replaced and fewer bytes", s.First, res, n)
		}
		// The bytes after are the rewritten file's: what a scavenge reports freed is.
		fi, err := os.Stat(s.Path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != res.BytesAfter {
			t.Fatalf("segment %d: BytesAfter %d, but the file is %d bytes", s.First, res.BytesAfter, fi.Size())
		}
		replaced += n
	}
	if replaced == 0 {
		t.Fatal("nothing was replaced: the test shows nothing")
	}
	checkContent(t, l, want)
	checkFiles(t, l)
	// A second rewrite finds nothing to replace and changes nothing.
	before := snapshot(t, dir)
	if res, err := l.Rewrite(context.Background(), segs[0].First, RewriteOptions{Change: func(*Record) *Record { return nil }}); err != nil || res.Replaced != 0 {
		t.Fatalf("second rewrite: %+v, %v", res, err)
	}
	if !reflect.DeepEqual(snapshot(t, dir), before) {
		t.Fatal("a rewrite that replaced nothing changed files")
	}
	mustClose(t, l)

	// The rewritten log opens, and tidwall/wal itself reads every segment.
	l = mustOpen(t, dir, Options{NoSync: true, SegmentSize: 2000})
	checkContent(t, l, want)
	mustClose(t, l)
	w, err := wal.Open(dir, &wal.Options{NoSync: true, SegmentSize: 2000, LogFormat: wal.Binary})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range want {
		b, err := w.Read(uint64(i + 1))
		if err != nil {
			t.Fatalf("tidwall/wal Read(%d): %v", i+1, err)
		}
		r, err := DecodeRecord(b)
		if err != nil || !reflect.DeepEqual(r, want[i]) {
			t.Fatalf("tidwall/wal Read(%d) = %+v, %v; want %+v", i+1, r, err, want[i])
		}
	}
}

func TestRewriteRefuses(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Options{NoSync: true, SegmentSize: 2000})
	defer mustClose(t, l)
	writeBatches(t, l, nil, 30, 30)
	l.sealing.Wait()
	segs := l.Segments()
	tail := segs[len(segs)-1]
	ctx := context.Background()
	keep := RewriteOptions{Change: func(*Record) *Record { return nil }}
	if _, err := l.Rewrite(ctx, tail.First, keep); !errors.Is(err, ErrInvalid) {
		t.Errorf("rewrite of the tail: %v, want ErrInvalid", err)
	}
	if _, err := l.Rewrite(ctx, segs[0].First+1, keep); !errors.Is(err, ErrInvalid) {
		t.Errorf("rewrite of no segment: %v, want ErrInvalid", err)
	}
	bad := map[string]func(*Record) *Record{
		"a deletion gone": func(r *Record) *Record {
			if r.Kind == KindDelete {
				return &Record{Kind: KindGone}
			}
			return nil
		},
		"an event gone without its id": func(r *Record) *Record {
			if r.Kind == KindEvent {
				return &Record{Kind: KindGone}
			}
			return nil
		},
		"an event gone with another id": func(r *Record) *Record {
			if r.Kind == KindEvent {
				return &Record{Kind: KindGone, Gone: Gone{ID: uuid.New()}}
			}
			return nil
		},
		"a link gone with its event's id": func(r *Record) *Record {
			if r.Kind == KindLink {
				return &Record{Kind: KindGone, Gone: Gone{ID: r.Link.ID}}
			}
			return nil
		},
		"an event changed": func(r *Record) *Record {
			if r.Kind == KindEvent {
				e := *r
				e.Erased, e.Event.Data, e.Event.Metadata, e.Event.Type = true, nil, nil, "Other"
				return &e
			}
			return nil
		},
		"an event kept with its data, marked erased": func(r *Record) *Record {
			if r.Kind == KindEvent && r.Event.Data != nil {
				e := *r
				e.Erased = true
				return &e
			}
			return nil
		},
	}
	for name, change := range bad {
		before := snapshot(t, l.dir)
		if _, err := l.Rewrite(ctx, segs[0].First, RewriteOptions{Change: change}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
		if !reflect.DeepEqual(snapshot(t, l.dir), before) {
			t.Errorf("%s: a refused rewrite changed files", name)
		}
	}
}

// TestRewriteUnderReads rewrites segments while readers read and scan them: every read
// sees a record as it was or as it is after the rewrite, never damage.
func TestRewriteUnderReads(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Options{NoSync: true, SegmentSize: 1500})
	defer mustClose(t, l)
	orig := writeBatches(t, l, nil, 20, 20, 20, 20, 20, 20)
	after := make([]Record, len(orig))
	for i := range orig {
		after[i] = orig[i]
		if repl := scavenged(&orig[i]); repl != nil {
			repl.Position, repl.Commit, repl.WriteStart = orig[i].Position, orig[i].Commit, orig[i].WriteStart
			after[i] = *repl
		}
	}
	check := func(r Record) error {
		i := r.Position - 1
		if !reflect.DeepEqual(r, orig[i]) && !reflect.DeepEqual(r, after[i]) {
			return errors.New("record is neither the old one nor the new one")
		}
		return nil
	}
	done := make(chan struct{})
	errc := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			for pos := uint64(1); pos <= uint64(len(orig)); pos++ {
				r, err := l.Read(pos)
				if err == nil {
					err = check(r)
				}
				if err != nil {
					errc <- err
					return
				}
			}
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	go func() {
		defer wg.Done()
		for {
			if err := l.Scan(context.Background(), 7, check); err != nil {
				errc <- err
				return
			}
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	segs := l.Segments()
	for _, s := range segs[:len(segs)-1] {
		if _, err := l.Rewrite(context.Background(), s.First, RewriteOptions{Change: scavenged}); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	checkContent(t, l, after)
}

func TestSeal(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{NoSync: true, SegmentSize: 1 << 20})
	want := writeBatches(t, l, nil, 10, 5)
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	segs := l.Segments()
	if len(segs) != 2 || segs[1].First != 16 || segs[1].Count != 0 {
		t.Fatalf("after Seal: %+v, want the records in a sealed segment and an empty tail at 16", segs)
	}
	if err := l.Seal(); err != nil || len(l.Segments()) != 2 {
		t.Fatalf("Seal of an empty tail: %v, %d segments; want nothing done", err, len(l.Segments()))
	}
	// The sealed segment can be rewritten, and writes go on in the new one.
	if _, err := l.Rewrite(context.Background(), 1, RewriteOptions{Change: scavenged}); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if repl := scavenged(&want[i]); repl != nil {
			repl.Position, repl.Commit, repl.WriteStart = want[i].Position, want[i].Commit, want[i].WriteStart
			want[i] = *repl
		}
	}
	want = writeBatches(t, l, want, 7)
	checkContent(t, l, want)
	checkFiles(t, l)
	mustClose(t, l)
	l = mustOpen(t, dir, Options{NoSync: true, SegmentSize: 1 << 20})
	defer mustClose(t, l)
	checkContent(t, l, want)
}

// TestRewriteBeforeSwap: BeforeSwap runs once the replacement is written, with the old
// segment still in place, and only when something is replaced; its error stops the
// rewrite with the log as it was.
func TestRewriteBeforeSwap(t *testing.T) {
	ctx := context.Background()
	errHook := errors.New("hook failed")
	tests := []struct {
		name    string
		change  func(*Record) *Record
		hookErr error
		calls   int
	}{
		{"replaces", scavenged, nil, 1},
		{"replaces, hook fails", scavenged, errHook, 1},
		{"replaces nothing", func(*Record) *Record { return nil }, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l := mustOpen(t, dir, Options{NoSync: true, SegmentSize: 2000})
			defer mustClose(t, l)
			want := writeBatches(t, l, nil, 10, 20, 30, 5, 25)
			l.sealing.Wait()
			seg := l.Segments()[0]
			before := snapshot(t, dir)
			old, err := os.ReadFile(seg.Path)
			if err != nil {
				t.Fatal(err)
			}
			calls := 0
			res, err := l.Rewrite(ctx, seg.First, RewriteOptions{Change: tt.change, BeforeSwap: func() error {
				calls++
				now, err := os.ReadFile(seg.Path)
				if err != nil || string(now) != string(old) {
					t.Errorf("BeforeSwap: the segment was already swapped (%v)", err)
				}
				if _, err := os.Stat(seg.Path + scavengeTmpExt); err != nil {
					t.Errorf("BeforeSwap: the replacement is not written: %v", err)
				}
				return tt.hookErr
			}})
			if calls != tt.calls {
				t.Fatalf("BeforeSwap called %d times, want %d", calls, tt.calls)
			}
			if !errors.Is(err, tt.hookErr) || (tt.hookErr == nil) != (err == nil) {
				t.Fatalf("Rewrite: %v, want %v", err, tt.hookErr)
			}
			if tt.hookErr != nil || tt.calls == 0 {
				if res.Replaced != 0 || res.BytesAfter != res.BytesBefore {
					t.Errorf("result %+v, want nothing replaced", res)
				}
				if !reflect.DeepEqual(snapshot(t, dir), before) {
					t.Error("a rewrite that swapped nothing changed files")
				}
				checkContent(t, l, want)
				return
			}
			if res.Replaced == 0 {
				t.Fatalf("result %+v: nothing replaced, the test shows nothing", res)
			}
		})
	}
}
