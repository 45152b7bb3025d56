package pm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// shipOrder is the state of the fixture's process manager: see testdata/issued.
type shipOrder struct{ Placed, Paid bool }

// shipsDef is the definition testdata/issued/mkfixture ran.
func shipsDef() pm.Definition[shipOrder] {
	return pm.Definition[shipOrder]{
		Name:      "Ships",
		Handles:   []string{"Placed", "Paid"},
		ProcessID: pm.DataField("order"),
		Init:      func(string) shipOrder { return shipOrder{} },
		Apply: func(o shipOrder, e pmd.Event) shipOrder {
			switch {
			case e.Link && e.Type == "Placed":
				o.Placed = true
			case e.Link && e.Type == "Paid":
				o.Paid = true
			}
			return o
		},
		Decide: func(o shipOrder) []pm.Command {
			if o.Placed && o.Paid {
				return []pm.Command{{Type: "Ship"}}
			}
			return nil
		},
	}
}

// TestUpgradeKeepsIssuedCommands opens a store written before stores had ids, whose
// process manager had issued commands: the store gets an id; the commands issued
// before keep their ids and are not issued again, even when their processes get more
// facts; the undelivered ones are delivered with their old ids; and the commands issued
// after the upgrade have ids in the store's namespace.
func TestUpgradeKeepsIssuedCommands(t *testing.T) {
	var want struct {
		Commands  map[string]string `json:"commands"`
		Delivered map[string]bool   `json:"delivered"`
	}
	b, err := os.ReadFile(filepath.Join("testdata", "issued", "want.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "issued", "store"))); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, pmd.StoreIDFile)); !os.IsNotExist(err) {
		t.Fatalf("the fixture has a %s: %v", pmd.StoreIDFile, err)
	}
	s := openStore(t, dir)
	if s.ID() == uuid.Nil {
		t.Fatal("the upgraded store has no id")
	}

	var mu sync.Mutex
	var handed []string
	deliver := func(_ context.Context, c pm.Command) error {
		mu.Lock()
		defer mu.Unlock()
		handed = append(handed, c.ProcessID+" "+c.ID.String())
		return nil
	}
	// Two days on: the recorded retries of the refused commands are due.
	clock := pmtest.NewClock(time.Now().Add(48 * time.Hour))
	opts := pm.Options{Clock: clock, Deliver: deliver}
	r := start(t, s, shipsDef(), opts)
	for n := 1; n <= 9; n++ {
		appendFact(t, s, pmd.Event{Type: "Paid", Data: map[string]any{"order": strconv.Itoa(n)}})
	}
	r.idle(t)
	r.stop(t)
	// A restart issues and delivers nothing again.
	r = start(t, s, shipsDef(), opts)
	r.idle(t)

	ns := uuid.MustParse("7b1c2f4e-5d1a-4f0e-9a57-3c0d8f6b2e91") // pm's, see FORMAT.md
	id := s.ID()
	storeNS := uuid.NewSHA1(ns, id[:])
	var wantHanded []string
	for n := 1; n <= 9; n++ {
		pid := strconv.Itoa(n)
		var cmds []pmd.Event
		for _, e := range processStream(t, s, "Ships$"+pid) {
			if e.Metadata[pm.MetaKind] == pm.KindCommand {
				cmds = append(cmds, e)
			}
		}
		if len(cmds) != 1 {
			t.Fatalf("process %s has %d commands, want 1", pid, len(cmds))
		}
		got := cmds[0].ID.String()
		name := fmt.Appendf(nil, "Ships$%s@%d", pid, cmds[0].Version)
		if old, ok := want.Commands[pid]; ok {
			if got != old {
				t.Errorf("process %s: command %s, issued before the upgrade as %s", pid, got, old)
			}
			if !want.Delivered[old] {
				wantHanded = append(wantHanded, pid+" "+old)
			}
			continue
		}
		if cmds[0].ID != uuid.NewSHA1(storeNS, name) || cmds[0].ID == uuid.NewSHA1(ns, name) {
			t.Errorf("process %s: command %s issued after the upgrade is not in the store's namespace", pid, got)
		}
		wantHanded = append(wantHanded, pid+" "+got)
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(handed)
	slices.Sort(wantHanded)
	if !slices.Equal(handed, wantHanded) {
		t.Errorf("delivered %v, want %v: the refused old commands with their ids, and the new ones", handed, wantHanded)
	}
}
