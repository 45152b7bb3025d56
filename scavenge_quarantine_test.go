package pmd_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
)

// TestScavengeRemovesQuarantinesOfAnErasingStore: a quarantine holds log bytes as they
// were, data of events erased later included: the directory that Open made when it cut
// a torn log end below the index (whole copies of segments, intact events too) and the
// file of the bytes pmd repair removed. In a store that has erased a stream, the next
// scavenge removes them, so that no byte of the erased data stays anywhere under the
// data directory; a store that never erased anything keeps them for whoever looks into
// the damage.
func TestScavengeRemovesQuarantinesOfAnErasingStore(t *testing.T) {
	secret := []byte("alice-secret")
	for _, tc := range []struct {
		name       string
		quarantine func(t *testing.T, dir string, opts pmd.Options, secret []byte)
		erase      bool
	}{
		{"a cut below the index, erased", quarantineCut, true},
		{"a cut below the index, nothing erased", quarantineCut, false},
		{"pmd repair, erased", quarantineRepair, true},
		{"pmd repair, nothing erased", quarantineRepair, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			opts := pmd.Options{Logger: quietLogger(), NoScrub: true}
			tc.quarantine(t, dir, opts, secret)
			quarantines, _ := filepath.Glob(filepath.Join(dir, "quarantine-*"))
			if len(quarantines) == 0 || len(filesHolding(t, dir, secret)) == 0 {
				t.Fatalf("quarantines %v: the test no longer sets up what it checks", quarantines)
			}
			s, err := pmd.Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if tc.erase {
				if err := s.EraseStream(ctx, "P-1"); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1}); err != nil {
				t.Fatal(err)
			}
			left, _ := filepath.Glob(filepath.Join(dir, "quarantine-*"))
			found := filesHolding(t, dir, secret)
			if tc.erase {
				if len(left) > 0 || len(found) > 0 {
					t.Errorf("after the erasure and a scavenge: quarantines %v left, erased data in %v; want none", left, found)
				}
				return
			}
			if len(left) != len(quarantines) {
				t.Errorf("a store that erased nothing: quarantines %v after the scavenge, want %v kept", left, quarantines)
			}
		})
	}
}

// appendSecret appends two events to P-1 in the store in dir, each holding secret.
func appendSecret(t *testing.T, dir string, opts pmd.Options, secret []byte) {
	t.Helper()
	s, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := s.Append(context.Background(), "P-1", pmd.Any, pmd.EventData{Type: "T", Data: map[string]any{"name": string(secret)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// quarantineCut leaves the store in dir with a quarantine directory holding secret: the
// log loses a record the index holds, and Open cuts its torn end below the index,
// copying the segment whole, intact events holding secret included.
func quarantineCut(t *testing.T, dir string, opts pmd.Options, secret []byte) {
	appendSecret(t, dir, opts, secret)
	_, size := newestSegment(t, dir)
	s, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(context.Background(), "Z-1", pmd.Any, pmd.EventData{Type: "T"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	seg, _ := newestSegment(t, dir)
	truncate(t, seg, size+1)
	if s, err = pmd.Open(dir, opts); err != nil {
		t.Fatalf("Open refused: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// quarantineRepair leaves the store in dir with pmd repair's quarantine file holding
// secret: a byte of the first event is flipped and the repair voids the event, keeping
// its bytes.
func quarantineRepair(t *testing.T, dir string, opts pmd.Options, secret []byte) {
	appendSecret(t, dir, opts, secret)
	seg, _ := newestSegment(t, dir)
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(b, secret)
	if at < 1 {
		t.Fatalf("%s does not hold %q", seg, secret)
	}
	b[at-1] ^= 0x20
	if err := os.WriteFile(seg, b, 0o640); err != nil {
		t.Fatal(err)
	}
	plan, err := engine.PlanRepair(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	if len(plan.Actions) == 0 {
		t.Fatal("the repair plans nothing")
	}
	if err := plan.Apply(engine.DefaultQuarantine(dir, time.Now())); err != nil {
		t.Fatal(err)
	}
}

// filesHolding returns the files under dir that hold b.
func filesHolding(t *testing.T, dir string, b []byte) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, b) {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestScavengeRemovesOnlyTheQuarantinesPmdMade: a scavenge of a store that has erased
// data removes the quarantines pmd writes in the data directory, a directory
// quarantine-<UTC time> (a cut at Open) and a file quarantine-<UTC time>.bin (pmd
// repair), and nothing else: an operator's copy named quarantine-something, or a
// repair's --quarantine file under another name, is the operator's to remove.
func TestScavengeRemovesOnlyTheQuarantinesPmdMade(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := pmd.Open(dir, pmd.Options{Logger: quietLogger(), NoScrub: true, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(ctx, "P-1", pmd.Any, pmd.EventData{Type: "T"}); err != nil {
		t.Fatal(err)
	}
	if err := s.EraseStream(ctx, "P-1"); err != nil {
		t.Fatal(err)
	}
	type entry struct {
		name    string
		isDir   bool
		removed bool
	}
	entries := []entry{
		{"quarantine-20261129T120000.123456789Z", true, true},
		{"quarantine-20261129T120000Z.bin", false, true},
		{"quarantine-X.keep", false, false},
		{"quarantine-X", true, false},
		{"quarantine-20261129T120000Z.bin.keep", false, false},
		{"quarantine-20261129T130000Z.bin", true, false}, // a repair's name, but a directory
		{"quarantine-20261129T120000.123456789Z.copy", false, false},
		{"quarantine-20261129T140000.123456789Z.bin", false, false},
		{"quarantine-", false, false},
		{"other-name.bin", false, false},
	}
	var want []string
	for _, e := range entries {
		p := filepath.Join(dir, e.name)
		var err error
		if e.isDir {
			if err = os.Mkdir(p, 0o750); err == nil {
				err = os.WriteFile(filepath.Join(p, "00000000000000000001"), []byte("copy"), 0o600)
			}
		} else {
			err = os.WriteFile(p, []byte("copy"), 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
		if e.removed {
			want = append(want, p)
		}
	}
	res, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Quarantines, want) {
		t.Errorf("the scavenge says it removed %v, want %v", res.Quarantines, want)
	}
	for _, e := range entries {
		_, err := os.Stat(filepath.Join(dir, e.name))
		if gone := errors.Is(err, fs.ErrNotExist); gone != e.removed {
			t.Errorf("%s (a directory: %v): removed %v, want %v (%v)", e.name, e.isDir, gone, e.removed, err)
		}
	}
}
