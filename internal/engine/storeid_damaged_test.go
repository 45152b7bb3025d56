package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDamagedStoreIDSaysWhatToDo: Open of a data directory whose STORE_ID does not read
// says what to do: remove it for a single node's, which then gets a new id; copy it from
// another member for a cluster node's, whose id is the cluster's store id (a new one would
// make it another store's, which the cluster refuses). It gave a cluster node the single
// node's advice.
func TestDamagedStoreIDSaysWhatToDo(t *testing.T) {
	for _, tc := range storeIDAdvice() {
		t.Run(tc.name, func(t *testing.T) {
			dir, opts, e := openNew(t, tc.cluster)
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, StoreIDFile), nil, 0o640); err != nil {
				t.Fatal(err)
			}
			_, err := Open(dir, opts)
			if err == nil || !strings.Contains(err.Error(), tc.advice) {
				t.Fatalf("Open: %v; want it to say %q", err, tc.advice)
			}
			if tc.cluster && strings.Contains(err.Error(), "removing the file gives") {
				t.Errorf("Open: %v; advises a cluster node to remove its STORE_ID", err)
			}
		})
	}
}

// TestRepairOfADamagedStoreIDSaysWhatToDo: the repair of a data directory whose STORE_ID
// does not read, which the next start fails on and pmd verify reports, lists it in its
// plan's Unrepaired with the advice the start gives: it planned nothing, and pmd repair
// said there was nothing to repair.
func TestRepairOfADamagedStoreIDSaysWhatToDo(t *testing.T) {
	for _, tc := range storeIDAdvice() {
		t.Run(tc.name, func(t *testing.T) {
			dir, _, e := openNew(t, tc.cluster)
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			p, err := PlanRepair(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Actions) != 0 || len(p.Unrepaired) != 0 {
				t.Fatalf("plan of a sound store: %q, %q; want nothing", p.Lines(), p.Unrepaired)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, StoreIDFile), []byte("garbage\n"), 0o640); err != nil {
				t.Fatal(err)
			}
			p, err = PlanRepair(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if len(p.Actions) != 0 || len(p.Unrepaired) != 1 || !strings.Contains(p.Unrepaired[0], `"garbage\n" is not a store id`) || !strings.Contains(p.Unrepaired[0], tc.advice) {
				t.Fatalf("plan %q, unrepaired %q; want only the STORE_ID, saying %q", p.Lines(), p.Unrepaired, tc.advice)
			}
		})
	}
}

// storeIDAdvice is what a data directory whose STORE_ID does not read is told to do:
// a single node's gets a new id, a cluster node's copies its cluster's.
func storeIDAdvice() []storeIDCase {
	return []storeIDCase{
		{"single node", false, "removing the file gives the store a new id"},
		{"cluster node", true, "copy STORE_ID from another member of its cluster"},
	}
}

type storeIDCase struct {
	name    string
	cluster bool
	advice  string
}
