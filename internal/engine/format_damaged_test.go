package engine

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDamagedFormatSaysWhatToDo: a FORMAT file that does not read (no crash leaves one:
// it is written synced, through a rename) fails Open and the offline tools with
// ErrFormat and with what to do: write the line this pmd writes, which opens any
// directory it reads. It said only "unreadable: unknown data directory format", as if a
// later pmd had written it, and left the store down with no way out.
func TestDamagedFormatSaysWhatToDo(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
	}{
		{"empty", ""},
		{"zero-filled", "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"},
		{"flipped bit", "pmd data directory formet 4\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, opts, e := openNew(t, false)
			appendEvents(t, e, "A-1", 3, true)
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, FormatFile)
			if err := os.WriteFile(path, []byte(tc.content), 0o640); err != nil {
				t.Fatal(err)
			}
			const advice = `write the line "pmd data directory format 5" into it`
			_, err := Open(dir, opts)
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), advice) {
				t.Fatalf("Open: %v; want ErrFormat, saying to %s", err, advice)
			}
			if _, err := Verify(t.Context(), dir, nil); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), advice) {
				t.Fatalf("Verify: %v; want ErrFormat, saying to %s", err, advice)
			}
			if err := os.WriteFile(path, []byte("pmd data directory format 5\n"), 0o640); err != nil {
				t.Fatal(err)
			}
			e, err = Open(dir, opts)
			if err != nil {
				t.Fatalf("Open after the advice: %v", err)
			}
			defer e.Close()
			if got := e.Log.LastPosition(); got != 3 {
				t.Errorf("the log ends at position %d, want 3", got)
			}
		})
	}
}
