package pmd_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// TestStoreIDIsMadeOnceAndKept: a new store gets a random id, the same at every Open
// after; two stores get different ids; a directory written before store ids existed
// (no STORE_ID) gets one at its first Open; an unreadable id is an error naming the file.
func TestStoreIDIsMadeOnceAndKept(t *testing.T) {
	open := func(dir string) uuid.UUID {
		t.Helper()
		s, err := pmd.Open(dir, pmd.Options{NoScrub: true})
		if err != nil {
			t.Fatal(err)
		}
		id := s.ID()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return id
	}
	a, b := t.TempDir(), t.TempDir()
	idA, idB := open(a), open(b)
	if idA == uuid.Nil || idA == idB {
		t.Fatalf("store ids %s and %s: want two different non-nil ids", idA, idB)
	}
	if again := open(a); again != idA {
		t.Fatalf("reopened store has id %s, want %s", again, idA)
	}
	if got, err := os.ReadFile(filepath.Join(a, pmd.StoreIDFile)); err != nil || string(got) != idA.String()+"\n" {
		t.Fatalf("%s holds %q (%v), want %q", pmd.StoreIDFile, got, err, idA.String()+"\n")
	}
	if _, err := os.Stat(filepath.Join(a, pmd.StoreIDFile+".tmp")); !os.IsNotExist(err) {
		t.Errorf("the temporary file is left behind: %v", err)
	}

	// A store of a pmd without store ids: it gets one, then keeps it.
	if err := os.Remove(filepath.Join(a, pmd.StoreIDFile)); err != nil {
		t.Fatal(err)
	}
	upgraded := open(a)
	if upgraded == uuid.Nil || upgraded == idA {
		t.Fatalf("upgraded store id %s: want a new one", upgraded)
	}
	if again := open(a); again != upgraded {
		t.Fatalf("upgraded store reopened with id %s, want %s", again, upgraded)
	}

	for _, bad := range []string{"", "not a uuid\n", uuid.Nil.String() + "\n"} {
		if err := os.WriteFile(filepath.Join(b, pmd.StoreIDFile), []byte(bad), 0o640); err != nil {
			t.Fatal(err)
		}
		s, err := pmd.Open(b, pmd.Options{NoScrub: true})
		if err == nil {
			s.Close()
			t.Fatalf("Open with STORE_ID %q succeeded", bad)
		}
		if !strings.Contains(err.Error(), pmd.StoreIDFile) {
			t.Errorf("Open with STORE_ID %q: %v, want an error naming the file", bad, err)
		}
	}
	// The failed Opens released the directory.
	if err := os.WriteFile(filepath.Join(b, pmd.StoreIDFile), []byte(idB.String()+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if got := open(b); got != idB {
		t.Errorf("store id %s, want %s", got, idB)
	}
}
