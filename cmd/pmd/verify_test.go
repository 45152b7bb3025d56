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
	"github.com/pmd-dev/pmd/index"
	pmdlog "github.com/pmd-dev/pmd/log"
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

// saveUncausedCheckpoint replaces the index checkpoint of the store in dir with one
// rebuilt from its log without causations: right in every stream, id, category and type.
func saveUncausedCheckpoint(t *testing.T, dir string) {
	t.Helper()
	l, err := pmdlog.Open(filepath.Join(dir, "log"), pmdlog.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	x := index.New()
	err = l.Scan(context.Background(), 1, func(r pmdlog.Record) error {
		switch r.Kind {
		case pmdlog.KindEvent:
			x.AddEvent(r.Position, r.Event.ID, r.Event.Stream, r.Event.Type)
		case pmdlog.KindLink:
			x.AddLink(r.Position, r.Link.Stream, r.Link.Event)
		case pmdlog.KindDelete:
			x.DeleteStream(r.Position, r.Delete.Stream)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.SaveCheckpoint(filepath.Join(dir, "index.ckpt")); err != nil {
		t.Fatal(err)
	}
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
			[]string{"62 records (41 events, 20 links, 1 deletions) in 1 segment(s)", "index checkpoint at position 62 agrees with the log", "ok"}},
		{"flipped bit in an old record", func(t *testing.T, dir string) {
			flip(t, segment(dir), 40)
		}, exitFailed, []string{"DAMAGE: " + segment(""), "offset 0 (position 1)"}},
		{"torn tail", func(t *testing.T, dir string) {
			appendBytes(t, segment(dir), []byte{0x50, 1, 2, 3}) // an entry of 80 bytes, 3 written
		}, exitOK, []string{"note: torn tail", "4 bytes of an unfinished entry", "agrees with the log", "ok"}},
		{"zero-filled tail", func(t *testing.T, dir string) {
			appendBytes(t, segment(dir), make([]byte, 4096))
		}, exitOK, []string{"note: torn tail", "ok"}},
		{"damaged checkpoint", func(t *testing.T, dir string) {
			flip(t, filepath.Join(dir, "index.ckpt"), 20)
		}, exitFailed, []string{"DAMAGE: index checkpoint", "is damaged"}},
		{"checkpoint of another store", func(t *testing.T, dir string) {
			other := storeDirVariant(t)
			data, err := os.ReadFile(filepath.Join(other, "index.ckpt"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "index.ckpt"), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}, exitFailed, []string{"DAMAGE: the index checkpoint"}},
		{"checkpoint without causations", saveUncausedCheckpoint, exitFailed,
			[]string{"DAMAGE: the index checkpoint disagrees with the log: caused by event 1: the checkpoint has none, the log [61]"}},
		{"missing checkpoint", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "index.ckpt")); err != nil {
				t.Fatal(err)
			}
		}, exitOK, []string{"note: no index checkpoint", "ok"}},
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

// storeDirVariant is a store with as many records as storeDir, in other streams.
func storeDirVariant(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	for range 62 {
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
	if code != exitTrouble || !strings.Contains(errOut, "open in a running pmd") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func TestVerifyMissingDir(t *testing.T) {
	code, _, errOut := runPMD(t, context.Background(), "verify", filepath.Join(t.TempDir(), "nope"))
	if code != exitTrouble || !strings.Contains(errOut, "no such file") {
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
	var out, bar strings.Builder
	v := &verifier{dir: dir, out: &out, progress: &bar, rebuilt: index.New()}
	if err := v.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := v.report(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(bar.String(), "\rverifying [") || !strings.HasSuffix(bar.String(), "100% 62 records\n") {
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
	sidecar := filepath.Join(src, "log", "00000000000000000001.offsets")
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
		}, exitOK, "note: log: offsets of segment " + strings.TrimSuffix(sidecar, ".offsets") + ": no offsets file; the next open rebuilds them"},
		{"wrong offsets", func(t *testing.T, path string) {
			b := slices.Clone(good)
			b[28+4*2]++ // entry 2 starts a byte later; the file still decodes
			body := b[:len(b)-4]
			binary.LittleEndian.PutUint32(b[len(body):], crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}, exitFailed, "DAMAGE: log: offsets of segment " + strings.TrimSuffix(sidecar, ".offsets") + ": offsets file puts entry 2 (position 3)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, filepath.Join(dir, "log", filepath.Base(sidecar)))
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
