package engine

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// TestDamagedIndexMarkerIsDurable: the marker that the index was found damaged is
// written through ReplaceFile with syncing on (the file, then its directory), with
// syncing off too, so that a power cut cannot leave a next start trusting the index.
func TestDamagedIndexMarkerIsDurable(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		t.Run(map[bool]string{false: "synced store", true: "NoSync store"}[noSync], func(t *testing.T) {
			dir := t.TempDir()
			type call struct {
				path string
				sync bool
			}
			var calls []call
			opts := Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NoScrub: true, NoSync: noSync,
				replaceFile: func(path string, data []byte, sync bool) error {
					calls = append(calls, call{path, sync})
					return ReplaceFile(path, data, sync)
				}}
			e, err := Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			e.indexDamaged(errors.New("test: a bad index block"))
			e.indexDamaged(errors.New("test: a second report")) // the first one is marked
			want := call{filepath.Join(dir, RebuildFile), true}
			if len(calls) != 1 || calls[0] != want {
				t.Fatalf("marker writes %+v, want one %+v", calls, want)
			}
			b, err := os.ReadFile(want.path)
			if err != nil || string(b) != "test: a bad index block\n" {
				t.Fatalf("marker %q, %v", b, err)
			}
		})
	}
}
