package engine_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd/internal/engine"
)

// TestVerifyStoreID: a store id the next start refuses (it fails) is damage, and a
// missing one, which the next start makes, a note.
func TestVerifyStoreID(t *testing.T) {
	for _, tc := range []struct {
		name  string
		id    *string // nil: no file
		ok    bool
		their string // in the problem or the note
	}{
		{"garbage", ptr("garbage\n"), false, `"garbage\n" is not a store id`},
		{"empty", ptr(""), false, `"" is not a store id`},
		{"missing", nil, true, "no store id: the next start makes one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := makeStore(t, 5)
			path := filepath.Join(dir, engine.StoreIDFile)
			var err error
			if tc.id == nil {
				err = os.Remove(path)
			} else {
				err = os.WriteFile(path, []byte(*tc.id), 0o640)
			}
			if err != nil {
				t.Fatal(err)
			}
			r := verify(t, dir)
			said := append(append([]string(nil), r.Problems...), r.Notes...)
			if r.OK() != tc.ok || len(said) != 1 || !strings.Contains(said[0], tc.their) {
				t.Fatalf("report %+v, want ok %v and only %q", r, tc.ok, tc.their)
			}
		})
	}
}

func ptr(s string) *string { return &s }
