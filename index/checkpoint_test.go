package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
)

var update = flag.Bool("update", false, "rewrite testdata/v2.ckpt from smallIndex")

// rawCheckpoint is a checkpoint spelled out field by field, encoded by bytes straight from
// FORMAT.md: it checks the document against the code, and builds damaged checkpoints whose
// checksum is right.
type rawCheckpoint struct {
	position, links      uint64
	cats, types, streams []string
	events               []rawEvent
	versions             []rawVersions // one per stream
	linked               []rawLinked
	caused               []rawCaused
	eventCount           uint64 // when not 0, stored instead of len(events)
	noRelations          bool   // the body ends after the versions, as a cut checkpoint would
	extra                []byte // appended to the body
}

type rawEvent struct {
	delta    uint64
	id       uuid.UUID
	cat, typ uint64
}

type rawVersions struct {
	base    uint64
	entries []uint64
}

type rawLinked struct {
	delta   uint64
	streams []uint64
}

type rawCaused struct {
	step, parent uint64
}

func own(step uint64) uint64 { return step << 1 }

func link(d int64) uint64 { return uint64(d<<1^d>>63)<<1 | 1 }

func (r rawCheckpoint) bytes() []byte {
	u := binary.AppendUvarint
	names := func(b []byte, names []string) []byte {
		b = u(b, uint64(len(names)))
		for _, n := range names {
			b = append(u(b, uint64(len(n))), n...)
		}
		return b
	}
	body := u(u(nil, r.position), r.links)
	body = names(body, r.cats)
	body = names(body, r.types)
	body = names(body, r.streams)
	count := uint64(len(r.events))
	if r.eventCount != 0 {
		count = r.eventCount
	}
	body = u(body, count)
	for _, e := range r.events {
		body = u(u(append(u(body, e.delta), e.id[:]...), e.cat), e.typ)
	}
	for _, v := range r.versions {
		body = u(u(body, v.base), uint64(len(v.entries)))
		for _, e := range v.entries {
			body = u(body, e)
		}
	}
	if r.noRelations {
		return seal(append(body, r.extra...))
	}
	body = u(body, uint64(len(r.linked)))
	for _, l := range r.linked {
		body = u(u(body, l.delta), uint64(len(l.streams)))
		for _, s := range l.streams {
			body = u(body, s)
		}
	}
	body = u(body, uint64(len(r.caused)))
	for _, c := range r.caused {
		body = u(u(body, c.step), c.parent)
	}
	return seal(append(body, r.extra...))
}

// seal wraps body in a header and a checksum.
func seal(body []byte) []byte {
	b := append([]byte("pmdindex"), 2, 0, 0, 0)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(body)))
	b = append(b, body...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

// smallRaw is the checkpoint of smallIndex, worked out by hand from FORMAT.md.
func smallRaw() rawCheckpoint {
	return rawCheckpoint{
		position: 12,
		links:    3,
		cats:     []string{"Cart", "Order"},
		types:    []string{"Added", "Created", "Noted", "Paid", "Shipped"},
		streams:  []string{"Cart$1", "Order", "Order$1", "Order$2"},
		events: []rawEvent{ // event number: position
			{1, testID(1), 1, 1},  // 0: 1 Order$1 Created
			{1, testID(2), 0, 0},  // 1: 2 Cart$1 Added
			{1, testID(3), 1, 1},  // 2: 3 Order$2 Created
			{1, testID(4), 1, 3},  // 3: 4 Order$1 Paid
			{2, testID(6), 1, 2},  // 4: 6 Order Noted
			{2, testID(8), 0, 0},  // 5: 8 Cart$1 Added
			{2, testID(10), 1, 4}, // 6: 10 Order$1 Shipped
			{2, testID(12), 1, 3}, // 7: 12 Order$2 Paid
		},
		versions: []rawVersions{
			{0, []uint64{own(2), own(4)}},       // Cart$1: events 1, 5
			{0, []uint64{own(5)}},               // Order: event 4
			{4, []uint64{own(7), link(1 - 10)}}, // Order$1: event 6 (position 10), link to 1
			{0, []uint64{own(3), own(5)}},       // Order$2: events 2, 7
		},
		linked: []rawLinked{ // every link, hidden ones too
			{2, []uint64{2}}, // position 1 (from -1), into Order$1 (stream 2)
			{1, []uint64{2}}, // position 2, hidden by the delete at 9
			{1, []uint64{2}}, // position 3, hidden too
		},
		caused: []rawCaused{
			{4, 3},  // event 3 (position 4, from -1), parent at 4-3 = 1
			{3, 6},  // event 6 (position 10), parent at 4
			{1, 11}, // event 7 (position 12), parent at 1
		},
	}
}

func encoded(t testing.TB, x *Index) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := x.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("WriteTo = %d, %v; wrote %d bytes", n, err, buf.Len())
	}
	return buf.Bytes()
}

func TestCheckpointLayoutIsFormatMD(t *testing.T) {
	got, want := encoded(t, smallIndex(t)), smallRaw().bytes()
	if !bytes.Equal(got, want) {
		t.Fatalf("WriteTo wrote\n%x\nFORMAT.md says\n%x", got, want)
	}
}

func TestCheckpointGolden(t *testing.T) {
	// testdata/v2.ckpt pins version 2: a reader must keep reading it, a writer keep writing it.
	path := filepath.Join("testdata", "v2.ckpt")
	if *update {
		if err := smallIndex(t).SaveCheckpoint(path); err != nil {
			t.Fatal(err)
		}
	}
	x, err := LoadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := encoded(t, x), encoded(t, smallIndex(t)); !bytes.Equal(got, want) {
		t.Fatalf("testdata/v2.ckpt re-encodes to\n%x\nsmallIndex to\n%x", got, want)
	}
	if got, want := x.Versions(nil, "Order$1", 0, false, 0), []Entry{{4, 10, false}, {5, 1, true}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Versions(Order$1) = %v, want %v", got, want)
	}
	if got := x.LinkedInto(nil, 1); !slices.Equal(got, []string{"Order$1"}) {
		t.Fatalf("LinkedInto(1) = %q, want [Order$1]", got)
	}
	if got := x.Caused(nil, 1, 0); !slices.Equal(got, []uint64{4, 12}) {
		t.Fatalf("Caused(1) = %v, want [4 12]", got)
	}
}

func TestCheckpointVersion1IsRefused(t *testing.T) {
	// Version 1 has no links by event and no causations, and the log is needed to rebuild
	// them: it is refused like any checkpoint that cannot be used, so the store rebuilds
	// the index from the log.
	_, err := LoadCheckpoint(filepath.Join("testdata", "v1.ckpt"))
	checkBad(t, err, "version 1 is not supported (want 2)")
}

func TestCheckpointRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 50, 1500}
	if testing.Short() {
		sizes = sizes[:3]
	}
	for _, n := range sizes {
		t.Run(fmt.Sprint(n, " records"), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(n), 2))
			x, m := New(), newModel()
			workload(t, rng, m, n, x)
			b := encoded(t, x)
			y := mustRead(t, b)
			checkSame(t, y, m)
			if again := encoded(t, y); !bytes.Equal(again, b) {
				t.Fatal("a loaded index re-encodes to other bytes")
			}
			// The loaded index goes on exactly like the one it was saved from.
			workload(t, rng, m, n/2+10, x, y)
			checkSame(t, y, m)
			if !bytes.Equal(encoded(t, x), encoded(t, y)) {
				t.Fatal("after the same records, the loaded index encodes to other bytes than the original")
			}
		})
	}
}

func mustRead(t *testing.T, b []byte) *Index {
	t.Helper()
	x, err := ReadFrom(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestReadFromReadsOneCheckpoint(t *testing.T) {
	a, b := encoded(t, smallIndex(t)), encoded(t, New())
	r := bytes.NewReader(append(append(slices.Clone(a), b...), "rest"...))
	x, err := ReadFrom(r)
	if err != nil || x.Stats().Events != 8 {
		t.Fatalf("first ReadFrom = %v, %v", x, err)
	}
	y, err := ReadFrom(r)
	if err != nil || y.Stats() != (Stats{}) {
		t.Fatalf("second ReadFrom = %v, %v", y, err)
	}
	if r.Len() != len("rest") {
		t.Fatalf("ReadFrom read past its checkpoint: %d bytes left, want 4", r.Len())
	}
}

// checkBad asserts err is a *CheckpointError wrapping ErrBadCheckpoint whose reason says
// want.
func checkBad(t *testing.T, err error, want string) {
	t.Helper()
	var ce *CheckpointError
	if !errors.Is(err, ErrBadCheckpoint) || !errors.As(err, &ce) {
		t.Fatalf("error %v, want a *CheckpointError wrapping ErrBadCheckpoint", err)
	}
	if !strings.Contains(ce.Reason, want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
}

// readBytes decodes b with ReadFrom and with decode, the LoadCheckpoint path; both must
// agree.
func readBytes(t *testing.T, b []byte) (*Index, error) {
	t.Helper()
	x, err := ReadFrom(bytes.NewReader(b))
	y, derr := decode(b)
	if (err == nil) != (derr == nil) || (x == nil) != (err != nil) || (y == nil) != (derr != nil) {
		t.Fatalf("ReadFrom: %v, %v; decode: %v, %v", x, err, y, derr)
	}
	return x, err
}

// readBoth is readBytes plus LoadCheckpoint of a file holding b, whose error must name
// the file.
func readBoth(t *testing.T, b []byte) (*Index, error) {
	t.Helper()
	x, err := readBytes(t, b)
	path := filepath.Join(t.TempDir(), "ckpt")
	if werr := os.WriteFile(path, b, 0o644); werr != nil {
		t.Fatal(werr)
	}
	y, lerr := LoadCheckpoint(path)
	if (err == nil) != (lerr == nil) || (y == nil) != (lerr != nil) {
		t.Fatalf("ReadFrom: %v, %v; LoadCheckpoint: %v, %v", x, err, y, lerr)
	}
	if lerr != nil && !strings.Contains(lerr.Error(), path) {
		t.Fatalf("LoadCheckpoint error %q does not name the file", lerr)
	}
	return x, err
}

func TestCheckpointDamage(t *testing.T) {
	good := encoded(t, smallIndex(t))
	t.Run("truncated at every length", func(t *testing.T) {
		for n := range len(good) {
			_, err := readBytes(t, good[:n])
			checkBad(t, err, "truncated")
		}
	})
	t.Run("every byte flipped", func(t *testing.T) {
		for i := range good {
			for _, mask := range []byte{0x01, 0x80, 0xff} {
				b := slices.Clone(good)
				b[i] ^= mask
				if _, err := readBytes(t, b); !errors.Is(err, ErrBadCheckpoint) {
					t.Fatalf("byte %d ^ %#x: error %v, want ErrBadCheckpoint", i, mask, err)
				}
			}
		}
	})
	t.Run("zero-filled tail", func(t *testing.T) {
		for n := 1; n <= len(good); n += 7 {
			b := slices.Clone(good)
			clear(b[len(b)-n:])
			if _, err := readBytes(t, b); !errors.Is(err, ErrBadCheckpoint) {
				t.Fatalf("last %d bytes zeroed: error %v, want ErrBadCheckpoint", n, err)
			}
		}
	})
	for _, tc := range []struct {
		name   string
		damage func(b []byte) []byte
		want   string
	}{
		{"empty", func([]byte) []byte { return nil }, "truncated"},
		{"all zeros", func(b []byte) []byte { return make([]byte, len(b)) }, "magic"},
		{"wrong magic", func(b []byte) []byte { b[0] = 'P'; return b }, "magic"},
		{"version 1", func(b []byte) []byte { b[8] = 1; return b }, "version 1 is not supported"},
		{"version 3", func(b []byte) []byte { b[8] = 3; return b }, "version 3 is not supported"},
		{"version 0", func(b []byte) []byte { b[8] = 0; return b }, "version 0 is not supported"},
		{"impossible length", func(b []byte) []byte { binary.LittleEndian.PutUint64(b[12:], 1<<63); return b }, "impossible"},
		{"length beyond the data", func(b []byte) []byte { b[12]++; return b }, "truncated"},
		{"checksum", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, "checksum"},
		{"content", func(b []byte) []byte { b[30] ^= 1; return b }, "checksum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readBoth(t, tc.damage(slices.Clone(good)))
			checkBad(t, err, tc.want)
		})
	}
	t.Run("zeros appended", func(t *testing.T) {
		// ReadFrom stops where its checkpoint ends (TestReadFromReadsOneCheckpoint); a
		// checkpoint file must hold nothing else.
		path := filepath.Join(t.TempDir(), "ckpt")
		if err := os.WriteFile(path, append(slices.Clone(good), make([]byte, 4096)...), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadCheckpoint(path)
		checkBad(t, err, "4096 bytes after the checkpoint")
	})
}

func TestCheckpointInconsistent(t *testing.T) {
	// Damage a checksum cannot see: checkpoints with a right checksum that no index encodes
	// to. Each must be refused with a reason naming the problem.
	if _, err := readBoth(t, smallRaw().bytes()); err != nil {
		t.Fatalf("the untouched checkpoint: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(r *rawCheckpoint)
		want   string
	}{
		{"position above MaxPosition", func(r *rawCheckpoint) { r.position = MaxPosition + 1 }, "beyond the largest log position"},
		{"more links than positions", func(r *rawCheckpoint) { r.links = 13 }, "13 links do not fit below position 12"},
		{"categories out of order", func(r *rawCheckpoint) { r.cats = []string{"Order", "Cart"} }, `category "Cart" does not sort after "Order"`},
		{"a type twice", func(r *rawCheckpoint) { r.types[1] = "Added" }, `type "Added" does not sort after "Added"`},
		{"streams out of order", func(r *rawCheckpoint) { r.streams[0], r.streams[1] = r.streams[1], r.streams[0] }, `stream "Cart$1" does not sort after "Order"`},
		{"more events than bytes", func(r *rawCheckpoint) { r.eventCount = 1000 }, "event count: 1000 do not fit"},
		{"events and links above position", func(r *rawCheckpoint) { r.position = 10 }, "8 events and 3 links do not fit below position 10"},
		{"event position repeats", func(r *rawCheckpoint) { r.events[3].delta = 0 }, "event 3: position 3+0 does not ascend"},
		{"event beyond position", func(r *rawCheckpoint) { r.position, r.links = 11, 0 }, "event 7: position 10+2 does not ascend or is beyond position 11"},
		{"unknown category", func(r *rawCheckpoint) { r.events[2].cat = 2 }, "event 2: category 2 is not one of the 2"},
		{"unknown type", func(r *rawCheckpoint) { r.events[5].typ = 9 }, "event 5: type 9 is not one of the 5"},
		{"category without events", func(r *rawCheckpoint) { r.cats = append(r.cats, "Zed") }, `category "Zed" has no event`},
		{"type without events", func(r *rawCheckpoint) { r.types = append(r.types, "Zzz") }, `type "Zzz" has no event`},
		{"stream that never had a version", func(r *rawCheckpoint) {
			r.streams = append([]string{"Aaa"}, r.streams...)
			r.versions = append([]rawVersions{{}}, r.versions...)
		}, `stream "Aaa": never had a version`},
		{"versions beyond position", func(r *rawCheckpoint) { r.versions[2].base = 11 }, `stream "Order$1": versions 11 to 11+2 do not fit below position 12`},
		{"own event step 0", func(r *rawCheckpoint) { r.versions[3].entries[1] = own(0) }, `stream "Order$2": version 1: event 2+0 is not an event after the previous one`},
		{"own event beyond the events", func(r *rawCheckpoint) { r.versions[3].entries[1] = own(1 << 40) }, "is not an event after the previous one"},
		{"own event of another stream", func(r *rawCheckpoint) { r.versions[3].entries[0] = own(5) }, `stream "Order$2": version 0: event 4 is in another stream`},
		{"own event of another category", func(r *rawCheckpoint) {
			r.versions[0] = rawVersions{1, []uint64{own(6)}} // Cart$1 keeps only event 5
			r.versions[1].entries[0] = own(2)                // Order claims event 1, of Cart
		}, `stream "Order": version 0: event 1 is not of category "Order"`},
		{"link above MaxPosition", func(r *rawCheckpoint) { r.versions[2].entries[1] = link(MaxPosition + 1 - 10) }, "links position 4611686018427387904"},
		{"link below position 0", func(r *rawCheckpoint) { r.versions[2].entries[1] = link(-11) }, "links position 18446744073709551615"},
		{"more link entries than links", func(r *rawCheckpoint) { r.links = 0 }, "1 visible links are more than the 0 links recorded"},
		{"linked position repeats", func(r *rawCheckpoint) { r.linked[1].delta = 0 }, "linked event 1: position delta 0 does not ascend"},
		{"linked position above MaxPosition", func(r *rawCheckpoint) { r.linked[2].delta = MaxPosition }, "linked event 2: position delta 4611686018427387903 goes beyond"},
		{"linked into no stream", func(r *rawCheckpoint) { r.linked[0].streams = nil }, "linked event 0: linked into no stream"},
		{"linked into an unknown stream", func(r *rawCheckpoint) { r.linked[1].streams[0] = 4 }, "linked stream 4 is not one of the 4"},
		{"more links listed than recorded", func(r *rawCheckpoint) { r.linked[1].streams = []uint64{2, 0} }, "linked event 2: more links listed than the 3 links recorded"},
		{"fewer links listed than recorded", func(r *rawCheckpoint) { r.linked = r.linked[1:]; r.linked[0].delta = 3 }, "2 links listed, 3 recorded"},
		{"visible link not listed", func(r *rawCheckpoint) { r.linked[0].streams[0] = 0 }, `stream "Order$1": version 5 links position 1, which is not listed as linked into it`},
		{"caused event step 0", func(r *rawCheckpoint) { r.caused[1].step = 0 }, "caused event 1: event 3+0 is not an event after the previous one"},
		{"caused event beyond the events", func(r *rawCheckpoint) { r.caused[2].step = 2 }, "caused event 2: event 6+2 is not an event"},
		{"caused by itself", func(r *rawCheckpoint) { r.caused[0].parent = 0 }, "caused event 0: the event at 4 cannot have a parent 0 positions before it"},
		{"caused by a position below 0", func(r *rawCheckpoint) { r.caused[2].parent = 13 }, "caused event 2: the event at 12 cannot have a parent 13 positions before it"},
		{"more caused events than events", func(r *rawCheckpoint) {
			r.caused = append(r.caused, slices.Repeat([]rawCaused{{1, 1}}, 6)...)
		}, "9 caused events are more than the 8 events"},
		{"bytes left over", func(r *rawCheckpoint) { r.extra = []byte{0} }, "1 bytes left over"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := smallRaw()
			tc.change(&r)
			_, err := readBoth(t, r.bytes())
			checkBad(t, err, tc.want)
		})
	}

	for _, tc := range []struct {
		name string
		body []byte
		want string
	}{
		{"empty body", nil, "position: truncated"},
		{"unterminated number", []byte{0x80}, "position: truncated"},
		{"number longer than it needs", []byte{0x8c, 0x00}, "position: number not in its shortest form"},
		{"number over 64 bits", bytes.Repeat([]byte{0xff}, 11), "position: truncated or overlong"},
		{"name longer than the body", []byte{1, 0, 1, 100, 'a'}, "category length: 100 do not fit"},
		{"truncated version", func() []byte {
			r := smallRaw()
			r.noRelations = true
			b := r.bytes()
			return append(slices.Clone(b[headerSize:len(b)-trailerSize-1]), 0x80)
		}(), `stream "Order$2": version: truncated`},
		{"truncated causation", append(slices.Clone(smallRaw().bytes()[headerSize:len(smallRaw().bytes())-trailerSize-1]), 0x80), "causation parent: truncated"},
		{"no relations", func() []byte {
			r := smallRaw()
			r.noRelations = true
			b := r.bytes()
			return b[headerSize : len(b)-trailerSize]
		}(), "linked event count: truncated"},
		{"truncated id", append([]byte{
			0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, // position 1<<61
			0, 1, 1, 'A', 1, 1, 'T', 0, 1, // links, categories, types, streams, 1 event
			0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10, // delta 1<<60
		}, make([]byte, 10)...), "event 0: truncated id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readBoth(t, seal(tc.body))
			checkBad(t, err, tc.want)
		})
	}
}

func TestLoadCheckpointMissing(t *testing.T) {
	x, err := LoadCheckpoint(filepath.Join(t.TempDir(), "nope"))
	if x != nil || !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrBadCheckpoint) {
		t.Fatalf("LoadCheckpoint(missing) = %v, %v; want nil and an fs.ErrNotExist error", x, err)
	}
}

func TestSaveCheckpoint(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "index.ckpt")
	rng := rand.New(rand.NewPCG(5, 5))
	x, m := New(), newModel()
	for round := range 3 {
		workload(t, rng, m, 200, x)
		if err := x.SaveCheckpoint(path); err != nil {
			t.Fatal(err)
		}
		y, err := LoadCheckpoint(path)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		checkSame(t, y, m)
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) != 1 {
			t.Fatalf("round %d: the directory holds %v (%v), want only the checkpoint", round, entries, err)
		}
	}
}

func TestSaveCheckpointCrash(t *testing.T) {
	// A save cut short by a power cut leaves the previous checkpoint and a partial
	// temporary file: loading gives the previous index, and the next save cleans up.
	dir := t.TempDir()
	path := filepath.Join(dir, "index.ckpt")
	old := smallIndex(t)
	if err := old.SaveCheckpoint(path); err != nil {
		t.Fatal(err)
	}
	x, m := New(), newModel()
	workload(t, rand.New(rand.NewPCG(6, 6)), m, 300, x)
	b := encoded(t, x)
	for i, torn := range [][]byte{b[:len(b)/2], append(b[:len(b)-100:len(b)-100], make([]byte, 100)...), nil} {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("index.ckpt.tmp-%d", i)), torn, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	y, err := LoadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(encoded(t, y), encoded(t, old)) {
		t.Fatal("after a crashed save the checkpoint is not the previous one")
	}
	if err := x.SaveCheckpoint(path); err != nil {
		t.Fatal(err)
	}
	y, err = LoadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, y, m)
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("the directory holds %v, want only the checkpoint", entries)
	}
}

func TestSaveCheckpointFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing-dir", "index.ckpt")
	err := smallIndex(t).SaveCheckpoint(path)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("SaveCheckpoint into a missing directory: %v; want an fs.ErrNotExist error naming %s", err, path)
	}
}

func TestCheckpointExtremePositions(t *testing.T) {
	// Links jump from the first positions to the last and back: the largest differences
	// a checkpoint stores.
	x, m := New(), newModel()
	x.AddEvent(1, testID(1), "a", "T")
	x.AddEvent(MaxPosition-3, testID(2), "a", "T")
	x.AddLink(MaxPosition-2, "b", 1)
	x.AddLink(MaxPosition-1, "b", MaxPosition-3)
	x.AddLink(MaxPosition, "b", 1)
	m.addEvent(1, testID(1), "a", "T")
	m.addEvent(MaxPosition-3, testID(2), "a", "T")
	m.addLink(MaxPosition-2, "b", 1)
	m.addLink(MaxPosition-1, "b", MaxPosition-3)
	m.addLink(MaxPosition, "b", 1)
	b := encoded(t, x)
	y := mustRead(t, b)
	checkSame(t, y, m)
	if !bytes.Equal(encoded(t, y), b) {
		t.Fatal("re-encodes to other bytes")
	}
}

type failing struct{ err error }

func (f failing) Write([]byte) (int, error) { return 0, f.err }
func (f failing) Read([]byte) (int, error)  { return 0, f.err }

func TestCheckpointIOErrors(t *testing.T) {
	boom := errors.New("boom")
	if _, err := smallIndex(t).WriteTo(failing{boom}); !errors.Is(err, boom) {
		t.Errorf("WriteTo to a failing writer: %v, want it to wrap the writer's error", err)
	}
	x, err := ReadFrom(failing{boom})
	if x != nil || !errors.Is(err, boom) || errors.Is(err, ErrBadCheckpoint) {
		t.Errorf("ReadFrom a failing reader: %v, %v; want the reader's error, not ErrBadCheckpoint", x, err)
	}
}

func TestSaveCheckpointOverADirectory(t *testing.T) {
	// The rename fails: the error names the path, nothing is left behind, and what was
	// there is untouched.
	dir := t.TempDir()
	path := filepath.Join(dir, "index.ckpt")
	if err := os.MkdirAll(filepath.Join(path, "inside"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := smallIndex(t).SaveCheckpoint(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("SaveCheckpoint over a directory: %v, want an error naming %s", err, path)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || !entries[0].IsDir() {
		t.Fatalf("the directory holds %v, want only the directory that was there", entries)
	}
}

// TestWriteCheckpointFile saves bytes encoded by WriteTo, as the store does so that it can
// encode under its lock and write outside it: loading them gives back the same index.
func TestWriteCheckpointFile(t *testing.T) {
	x := smallIndex(t)
	var buf bytes.Buffer
	if _, err := x.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "index.ckpt")
	if err := WriteCheckpointFile(path, buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	y, err := LoadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Diff(y); err != nil {
		t.Errorf("loaded checkpoint differs: %v", err)
	}
}
