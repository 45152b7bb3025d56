package main

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
)

// storeDir writes a small store (events in several streams, links, a deletion) and
// closes it, leaving a log and an index checkpoint.
func storeDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 20 {
		res, err := s.Append(ctx, "Order$"+string(rune('a'+i%4)), pmd.Any,
			pmd.EventData{Type: "Placed", Data: map[string]any{"i": i}},
			pmd.EventData{Type: "Paid", Data: map[string]any{"i": i}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Link(ctx, "All$orders", pmd.Any, idAt(t, s, res.FirstPosition)); err != nil {
			t.Fatal(err)
		}
	}
	cook := pmd.EventData{Type: "Cooked", Metadata: map[string]any{pmd.CausationID: idAt(t, s, 1).String()}}
	if _, err := s.Append(ctx, "Kitchen$1", pmd.Any, cook); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteStream(ctx, "Order$b", pmd.Any); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// idAt returns the id of the event at position pos.
func idAt(t *testing.T, s *pmd.Store, pos uint64) uuid.UUID {
	t.Helper()
	for ev, err := range s.ReadAll(context.Background(), pmd.ReadOptions{From: pos, Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		return ev.ID
	}
	t.Fatalf("no event at %d", pos)
	return uuid.Nil
}

func segment(dir string) string { return filepath.Join(dir, "log", "00000000000000000001") }

func TestVerify(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
		code   int
		want   []string
	}{
		{"clean", func(*testing.T, string) {}, exitOK,
			[]string{"62 records (41 events, 20 links, 1 deletions) in 1 segment(s)", "index at position 62 agrees with the log", "ok"}},
		{"flipped bit in an old record", func(t *testing.T, dir string) {
			flip(t, segment(dir), 40)
		}, exitFailed, []string{"DAMAGE: " + segment("") + " offset 0 (position 1): checksum mismatch",
			`run "pmd repair `}},
		{"torn tail", func(t *testing.T, dir string) {
			appendBytes(t, segment(dir), []byte{0x50, 1, 2, 3}) // an entry of 80 bytes, 3 written
		}, exitOK, []string{"note: torn tail, cut by the next start: " + segment(""), "4 bytes", "agrees with the log", "ok"}},
		{"zero-filled tail", func(t *testing.T, dir string) {
			appendBytes(t, segment(dir), make([]byte, 4096))
		}, exitOK, []string{"note: torn tail", "zero-filled tail", "ok"}},
		{"missing index", func(t *testing.T, dir string) {
			if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
				t.Fatal(err)
			}
		}, exitOK, []string{"note: no index: the next start builds it from the log", "ok"}},
		{"damaged index", func(t *testing.T, dir string) {
			ents, err := os.ReadDir(filepath.Join(dir, "index"))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), "MANIFEST") {
					if err := os.WriteFile(filepath.Join(dir, "index", e.Name()), []byte("garbage"), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
		}, exitFailed, []string{"DAMAGE: the index cannot be opened", "the next start rebuilds it from the log"}},
		{"index of another store", func(t *testing.T, dir string) {
			other := storeDirVariant(t, 50)
			if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
				t.Fatal(err)
			}
			if err := os.CopyFS(filepath.Join(dir, "index"), os.DirFS(filepath.Join(other, "index"))); err != nil {
				t.Fatal(err)
			}
		}, exitFailed, []string{"DAMAGE: the index disagrees with the log", "and the next start rebuilds it from the log"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := storeDir(t)
			tt.damage(t, dir)
			code, out, errOut := runPMD(t, context.Background(), "verify", dir)
			if code != tt.code {
				t.Fatalf("exit %d, want %d:\n%s%s", code, tt.code, out, errOut)
			}
			for _, w := range tt.want {
				w = strings.ReplaceAll(w, segment(""), segment(dir))
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// storeDirVariant is a store of n events in another stream.
func storeDirVariant(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if _, err := s.Append(context.Background(), "Other", pmd.Any, pmd.EventData{Type: "X"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestVerifyRefusesAnOpenStore(t *testing.T) {
	dir := t.TempDir()
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	code, _, errOut := runPMD(t, context.Background(), "verify", dir)
	if code != exitTrouble || !strings.Contains(errOut, "is in use by another pmd") || !strings.Contains(errOut, "stop it first") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[off] ^= 0x10
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyProgress: on a terminal, verify draws a progress bar that ends at 100%.
func TestVerifyProgress(t *testing.T) {
	dir := storeDir(t)
	var bar strings.Builder
	pb := &progressBar{w: &bar, what: "verifying"}
	if _, err := engine.Verify(context.Background(), dir, pb.update); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(bar.String(), "\rverifying [") || !strings.HasSuffix(bar.String(), "] 100%\n") {
		t.Fatalf("progress bar %q", bar.String())
	}
}

// TestVerifySidecars: a missing offsets file is a note, one that fits its segment but
// lists other offsets is damage.
func TestVerifySidecars(t *testing.T) {
	src := t.TempDir()
	s, err := pmd.Open(src, pmd.Options{NoSync: true, Logger: quiet(), SegmentSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if _, err := s.Append(context.Background(), "Order$1", pmd.Any, pmd.EventData{Type: "Placed", Data: map[string]any{"i": i}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(src, "log", "00000000000000000001")
	sidecar := filepath.Join(src, "log", "offsets", "00000000000000000001.offsets")
	good, err := os.ReadFile(sidecar)
	if err != nil {
		t.Fatalf("the store has no sealed segment: %v", err)
	}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
		code   int
		want   string
	}{
		{"clean", func(*testing.T, string) {}, exitOK, "ok\n"},
		{"missing", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, exitOK, "note: log: offsets of segment " + seg + ": no offsets file; the first read of the segment rebuilds them"},
		{"wrong offsets", func(t *testing.T, path string) {
			b := slices.Clone(good)
			b[28+4*2]++ // entry 2 starts a byte later; the file still decodes
			body := b[:len(b)-4]
			binary.LittleEndian.PutUint32(b[len(body):], crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}, exitFailed, "DAMAGE: log: offsets of segment " + seg + ": offsets file puts entry 2 (position 3)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, strings.ReplaceAll(sidecar, src, dir))
			code, out, errOut := runPMD(t, context.Background(), "verify", dir)
			if code != tc.code {
				t.Fatalf("exit %d, want %d:\n%s%s", code, tc.code, out, errOut)
			}
			if want := strings.ReplaceAll(tc.want, src, dir); !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		})
	}
}

// TestVerifyPrintsEveryKind: the summary line counts the records of retention settings
// and erasures too, and says what index.ahead means for the next start.
func TestVerifyPrintsEveryKind(t *testing.T) {
	dir := storeDirVariant(t, 5)
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.SetRetention(ctx, "Other", pmd.Retention{MaxCount: 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.EraseStream(ctx, "Other"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.ahead"), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runPMD(t, ctx, "verify", dir)
	for _, want := range []string{"7 records (5 events, 0 links, 0 deletions, 1 retention settings, 1 erasures) in 1 segment(s)",
		"note: index.ahead: a sync of the log failed before an index flush", "\nok\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if code != exitOK {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
}
