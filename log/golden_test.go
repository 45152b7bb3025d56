package log

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/wal"
)

// goldenSegments is the golden file pinning tidwall/wal's segment format: the files
// tidwall/wal (the version in go.mod) writes for goldenRecords, as "== NAME SIZE" lines
// each followed by the file's bytes in hex.
const goldenSegments = "testdata/tidwall-segments.golden"

// goldenRecords are fixed records, one with a body long enough for a two-byte length
// prefix, in batches of 2, 1 and 3.
func goldenRecords() [][]Record {
	recs := genBatch(0, 6)
	recs[1].Commit, recs[2].Commit = true, true
	recs[3].Event.Data = bytes.Repeat([]byte{0xc3}, 150)
	for i := range recs {
		recs[i].Position = uint64(i + 1)
	}
	for i, start := range []uint64{1, 1, 3, 4, 4, 4} {
		recs[i].WriteStart = start
	}
	return [][]Record{recs[:2], recs[2:3], recs[3:]}
}

// TestTidwallSegmentFormat writes goldenRecords through tidwall/wal itself, with a
// segment size that makes it start new segments, and compares the files it wrote, names
// and bytes, with the golden file: a tidwall/wal upgrade that changes what this package
// reads (entry framing, segment naming, when a segment is started) fails here. Run with
// -update to rewrite the golden file. Then this package's own reader reads the golden
// bytes back as the records.
func TestTidwallSegmentFormat(t *testing.T) {
	dir := t.TempDir()
	w, err := wal.Open(dir, &wal.Options{NoSync: true, SegmentSize: 300, LogFormat: wal.Binary})
	if err != nil {
		t.Fatal(err)
	}
	var all []Record
	for i, batch := range goldenRecords() {
		if i == 1 {
			if err := w.Write(batch[0].Position, AppendRecord(nil, &batch[0])); err != nil {
				t.Fatal(err)
			}
		} else {
			var b wal.Batch
			for j := range batch {
				b.Write(batch[j].Position, AppendRecord(nil, &batch[j]))
			}
			if err := w.WriteBatch(&b); err != nil {
				t.Fatal(err)
			}
		}
		all = append(all, batch...)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&got, "== %s %d\n", e.Name(), len(b))
		for h := hex.EncodeToString(b); len(h) > 0; {
			n := min(len(h), 64)
			got.WriteString(h[:n] + "\n")
			h = h[n:]
		}
	}
	if *update {
		if err := os.WriteFile(goldenSegments, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(goldenSegments)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != string(want) {
		t.Fatalf("tidwall/wal wrote\n%s\nthe golden file %s holds\n%s", got.String(), goldenSegments, want)
	}

	// Read the golden bytes with this package alone.
	files := parseGolden(t, string(want))
	if len(files) < 2 {
		t.Fatalf("golden file holds %d segments; the records should span several", len(files))
	}
	gdir := t.TempDir()
	for name, b := range files {
		first, err := strconv.ParseUint(name, 10, 64)
		if err != nil || name != segmentName(first) {
			t.Fatalf("segment file name %q is not 20 decimal digits", name)
		}
		if err := os.WriteFile(filepath.Join(gdir, name), b, 0o640); err != nil {
			t.Fatal(err)
		}
		p, err := parseSegment(segFile{first: first, path: filepath.Join(gdir, name), size: int64(len(b))}, false, 0, 0)
		if err != nil || p.damage != "" || len(p.bad) != 0 || p.validEnd != int64(len(b)) {
			t.Fatalf("segment %s does not parse whole: %v %+v", name, err, p)
		}
	}
	l := mustOpen(t, gdir, Options{NoSync: true, SegmentSize: 300})
	defer mustClose(t, l)
	if len(l.Repairs()) != 0 || len(l.Damage()) != 0 {
		t.Fatalf("Open of the golden segments cut %v, found %v", l.Repairs(), l.Damage())
	}
	checkContent(t, l, all)
	var n int
	l.Scan(context.Background(), 1, func(r Record) error {
		if !reflect.DeepEqual(r, all[n]) {
			t.Errorf("record %d differs", n+1)
		}
		n++
		return nil
	})
}

// parseGolden decodes the golden file into file name → bytes.
func parseGolden(t *testing.T, s string) map[string][]byte {
	t.Helper()
	files := make(map[string][]byte)
	var name string
	var size int
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if rest, ok := strings.CutPrefix(line, "== "); ok {
			if _, err := fmt.Sscanf(rest, "%s %d", &name, &size); err != nil {
				t.Fatalf("golden line %q: %v", line, err)
			}
			files[name] = []byte{}
			continue
		}
		b, err := hex.DecodeString(line)
		if err != nil || name == "" {
			t.Fatalf("golden line %q: %v", line, err)
		}
		files[name] = append(files[name], b...)
	}
	return files
}
