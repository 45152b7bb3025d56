package log

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
)

func testID(n uint64) uuid.UUID {
	var id uuid.UUID
	id[0] = 0x01
	binary.BigEndian.PutUint64(id[8:], n)
	return id
}

// msgpackMap is a small valid msgpack map {"n": i}, the shape the store stores.
func msgpackMap(i int) []byte {
	return appendUint([]byte{0x81, 0xa1, 'n'}, uint64(i))
}

// genBatch returns a batch of n records of mixed kinds to be written after position
// prev, the last one a commit. Links point at position 1, which the first batch makes
// an event.
func genBatch(prev uint64, n int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		pos := prev + uint64(i) + 1
		r := &recs[i]
		switch {
		case pos == 1 || pos%5 != 0:
			r.Kind = KindEvent
			r.Event = Event{
				ID: testID(pos), Stream: fmt.Sprintf("Order$%d", pos%7), Version: pos / 7,
				Type: "OrderPlaced", Timestamp: 1700000000000000000 + int64(pos),
				Data: msgpackMap(int(pos)),
			}
			if pos%3 == 0 {
				r.Event.Metadata = msgpackMap(-1 + int(pos))
			}
		case pos%10 == 0:
			r.Kind = KindDelete
			r.Delete = Delete{Stream: fmt.Sprintf("Order$%d", pos%7), Before: pos / 7}
		default:
			r.Kind = KindLink
			r.Link = Link{Stream: "CateringMatch$1", Version: pos, Event: 1, ID: testID(1)}
		}
	}
	recs[n-1].Commit = true
	return recs
}

// quiet is a Logger that drops everything.
func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func (b *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

func mustOpen(t testing.TB, dir string, opts Options) *Log {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet()
	}
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func mustClose(t testing.TB, l *Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// writeBatches writes batches of the given sizes and returns every record written,
// want[i] being the record at position i+1 (with want as the starting content).
func writeBatches(t testing.TB, l *Log, want []Record, sizes ...int) []Record {
	t.Helper()
	for _, n := range sizes {
		recs := genBatch(l.LastPosition(), n)
		if err := l.Write(recs); err != nil {
			t.Fatalf("Write(%d records after %d): %v", n, l.LastPosition(), err)
		}
		want = append(want, recs...)
	}
	return want
}

// checkContent checks that l holds exactly want, by Read and by Scan.
func checkContent(t testing.TB, l *Log, want []Record) {
	t.Helper()
	if got := l.LastPosition(); got != uint64(len(want)) {
		t.Fatalf("LastPosition = %d, want %d", got, len(want))
	}
	for i := range want {
		got, err := l.Read(uint64(i + 1))
		if err != nil {
			t.Fatalf("Read(%d): %v", i+1, err)
		}
		if !reflect.DeepEqual(got, want[i]) {
			t.Fatalf("Read(%d) = %+v, want %+v", i+1, got, want[i])
		}
	}
	var n int
	err := l.Scan(context.Background(), 1, func(r Record) error {
		if n >= len(want) || !reflect.DeepEqual(r, want[n]) {
			return fmt.Errorf("scan record %d = %+v", n+1, r)
		}
		n++
		return nil
	})
	if err != nil || n != len(want) {
		t.Fatalf("Scan: %d records, %v; want %d", n, err, len(want))
	}
}

// checkFiles checks that Segments() describes the segment files in the directory, that
// every sealed segment has a matching sidecar in the sidecar directory, and that nothing
// else is in either.
func checkFiles(t testing.TB, l *Log) {
	t.Helper()
	l.sealing.Wait() // sidecars of segments just sealed are written in the background
	segs := l.Segments()
	want, wantSide := []string{sidecarDir}, []string{}
	for i, s := range segs {
		want = append(want, filepath.Base(s.Path))
		info, err := os.Stat(s.Path)
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() != s.Size {
			t.Errorf("segment %s: %d bytes, Segments says %d", s.Path, info.Size(), s.Size)
		}
		if s.First != 1 && (i == 0 || segs[i-1].First+uint64(segs[i-1].Count) != s.First) {
			t.Errorf("segment %s does not follow the one before: %+v", s.Path, segs)
		}
		if i < len(segs)-1 {
			wantSide = append(wantSide, filepath.Base(s.Path)+sidecarExt)
			tb, err := readSidecar(s.Path)
			if err != nil || tb.first != s.First || len(tb.offs) != s.Count || tb.size != s.Size {
				t.Errorf("sidecar of %s: %+v, %v", s.Path, tb, err)
			}
		}
	}
	for _, d := range []struct {
		dir  string
		want []string
	}{{l.dir, want}, {filepath.Join(l.dir, sidecarDir), wantSide}} {
		ents, err := os.ReadDir(d.dir)
		if err != nil {
			t.Fatal(err)
		}
		got := []string{}
		for _, e := range ents {
			got = append(got, e.Name())
		}
		sort.Strings(d.want)
		if !reflect.DeepEqual(got, d.want) {
			t.Errorf("directory %s holds %v, want %v", d.dir, got, d.want)
		}
	}
}

// snapshot returns the content of every file in dir and its sidecar directory (named
// sidecarDir/NAME), to show that nothing changed.
func snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	m := make(map[string]string)
	for _, sub := range []string{"", sidecarDir} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, fs.ErrNotExist) && sub != "" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.IsDir() {
				continue
			}
			name := filepath.Join(sub, e.Name())
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			m[name] = string(b)
		}
	}
	return m
}

// copyDir copies the files of src and its sidecar directory into a new temporary
// directory.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	for name, b := range snapshot(t, src) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, name)), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), []byte(b), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// entryAt finds the segment holding pos and the offset of its entry by framing the
// segment files of a closed log, independently of the package's tables.
func entryAt(t testing.TB, dir string, pos uint64) (path string, off int64, size int) {
	t.Helper()
	segs, _, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(segs) - 1; i >= 0; i-- {
		if segs[i].first > pos {
			continue
		}
		b, err := os.ReadFile(segs[i].path)
		if err != nil {
			t.Fatal(err)
		}
		o := 0
		for p := segs[i].first; o < len(b); p++ {
			_, n, ok := entry(b[o:])
			if !ok {
				break
			}
			if p == pos {
				return segs[i].path, int64(o), n
			}
			o += n
		}
		break
	}
	t.Fatalf("position %d not found in %s", pos, dir)
	return "", 0, 0
}

func truncateFile(t testing.TB, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t testing.TB, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// flipBit flips one bit of the byte at off in path.
func flipBit(t testing.TB, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x10
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

func asCorrupt(t testing.TB, err error) *CorruptError {
	t.Helper()
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("error %v: want a *CorruptError matching ErrCorrupt", err)
	}
	return ce
}

func contains(t testing.TB, what, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%s %q does not contain %q", what, s, sub)
	}
}

// writeSegments writes batches of one record into a new log in dir, opened with opts,
// until it has n segments, and closes it. It returns the records written and the
// segment files.
func writeSegments(t *testing.T, dir string, opts Options, n int) ([]Record, []segFile) {
	t.Helper()
	l := mustOpen(t, dir, opts)
	var want []Record
	for len(l.Segments()) < n {
		want = writeBatches(t, l, want, 1)
	}
	mustClose(t, l)
	segs, _, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	return want, segs
}
