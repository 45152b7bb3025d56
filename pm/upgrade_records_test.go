package pm_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// records1Want is what the pmd that wrote testdata/records1 delivered and read.
type records1Want struct {
	Commands map[string]string   `json:"commands"`
	Mailer   []string            `json:"mailer"`
	Failing  string              `json:"failing"`
	Audit    []string            `json:"audit"`
	Streams  map[string][]string `json:"streams"`
	Erased   []string            `json:"erased"`
}

// records1 returns what the pmd that wrote testdata/records1 delivered and read, and a
// copy of its data directory for the test to open (a test writes to it).
func records1(t *testing.T) (records1Want, string) {
	t.Helper()
	var want records1Want
	b, err := os.ReadFile(filepath.Join("testdata", "records1", "want.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "records1", "store"))); err != nil {
		t.Fatal(err)
	}
	return want, dir
}

// collected gathers the ids a handler is given, in order.
type collected struct {
	mu  sync.Mutex
	ids []string
}

func (c *collected) add(id uuid.UUID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids = append(c.ids, id.String())
}

func (c *collected) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ids)
}

// TestUpgradeFromRecordsWithoutFilters opens a store written by pmd at 71aa2c0
// (testdata/records1): its subscription records carry no filter and its manager
// checkpoints no handled types, and its log holds a retention setting, an erasure, gone
// records and erased events in a data directory of format 2. This version raises the
// format to 5, keeps the retention and the erasure, the subscriptions resume where they
// stood (the failed event is retried, nothing delivered is delivered again, nothing is
// skipped), and the manager resumes from its checkpoint without reading the log again
// or issuing its commands again.
func TestUpgradeFromRecordsWithoutFilters(t *testing.T) {
	ctx := context.Background()
	want, dir := records1(t)
	readFormat := func() string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, "FORMAT"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if f := readFormat(); f != "pmd data directory format 2\n" {
		t.Fatalf("the fixture's FORMAT is %q", f)
	}
	var logs logged
	open := func() *pmd.Store {
		t.Helper()
		s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: logs.logger()})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	if f := readFormat(); f != "pmd data directory format 5\n" || !strings.Contains(logs.String(), "upgraded the data directory from format 2 to format 5") {
		t.Fatalf("FORMAT %q after the first open; log:\n%s", f, logs.String())
	}

	// The fixture is what it says: records written before filters and handled types.
	failed := false
	for _, e := range processStream(t, s, pm.SubscriptionStream("Mailer")) {
		if _, ok := e.Data["filter"]; ok {
			t.Fatalf("the fixture's subscription record %s has a filter: %v", e.Type, e.Data)
		}
		failed = failed || e.Type == "EventDeliveryFailed"
	}
	checkpoints := processStream(t, s, "Ships.checkpoint")
	if !failed || len(checkpoints) == 0 {
		t.Fatalf("the fixture has no failure recorded (%v) or no checkpoint (%d)", failed, len(checkpoints))
	}
	for _, e := range checkpoints {
		if _, ok := e.Data["types"]; ok {
			t.Fatalf("the fixture's checkpoint has handled types: %v", e.Data)
		}
	}

	// Retention and erasure hold.
	var logIDs []string
	for _, e := range processStream(t, s, "Logs$1") {
		logIDs = append(logIDs, e.ID.String())
	}
	if !slices.Equal(logIDs, want.Streams["Logs$1"]) {
		t.Errorf("Logs$1 (max count 2) reads %v, want %v", logIDs, want.Streams["Logs$1"])
	}
	var erased []string
	for _, e := range processStream(t, s, "Secret$1") {
		if e.Data != nil || e.Metadata != nil {
			t.Errorf("erased event %s reads data %v, metadata %v", e.ID, e.Data, e.Metadata)
		}
		erased = append(erased, e.ID.String())
	}
	if !slices.Equal(erased, want.Erased) {
		t.Errorf("Secret$1 reads %v, want %v", erased, want.Erased)
	}
	if got := processStream(t, s, "Tmp$1"); len(got) != 0 {
		t.Errorf("the deleted Tmp$1 reads %d events", len(got))
	}

	// Order 5 comes after the upgrade; two days on, the failed delivery is due.
	var order5 []string
	for _, typ := range []string{"Placed", "Paid"} {
		id := uuid.NewSHA1(uuid.NameSpaceOID, []byte(typ+" 5"))
		if _, err := s.Append(ctx, "Orders$5", pmd.Any, pmd.EventData{ID: id, Type: typ, Data: map[string]any{"order": "5"}}); err != nil {
			t.Fatal(err)
		}
		order5 = append(order5, id.String())
	}
	clock := pmtest.NewClock(time.Now().Add(48 * time.Hour))
	var mailed, audited, shipped collected
	mailer := startSub(t, s, "Mailer", pm.Filter{Types: []string{"Placed"}}, pm.SubscriptionOptions{Clock: clock, Logger: logs.logger(),
		Deliver: func(_ context.Context, e pmd.Event) error { mailed.add(e.ID); return nil }})
	audit := startSub(t, s, "Audit", pm.Filter{Category: "Orders"}, pm.SubscriptionOptions{Clock: clock, Logger: logs.logger(),
		Deliver: func(_ context.Context, e pmd.Event) error { audited.add(e.ID); return nil }})
	ships := start(t, s, shipsDef(), pm.Options{Clock: clock, Logger: logs.logger(),
		Deliver: func(_ context.Context, c pm.Command) error { shipped.add(c.ID); return nil }})
	mailer.idle(t)
	audit.idle(t)
	ships.idle(t)

	// Mailer delivered order 1 and 2's Placed before; order 3's failed, holding 4's back.
	placed4 := uuid.NewSHA1(uuid.NameSpaceOID, []byte("Placed 4")).String()
	if got, w := mailed.get(), []string{want.Failing, placed4, order5[0]}; !slices.Equal(got, w) {
		t.Errorf("Mailer delivered %v after the upgrade, want %v (the failed event, the one it held back, the new one)", got, w)
	}
	if got := audited.get(); !slices.Equal(got, order5) {
		t.Errorf("Audit delivered %v after the upgrade, want only order 5's %v", got, order5)
	}
	for pid, old := range want.Commands {
		p, err := ships.Process(ctx, pid)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Commands) != 1 || p.Commands[0].ID.String() != old {
			t.Errorf("process %s has commands %v, want only %s, issued before the upgrade", pid, p.Commands, old)
		}
	}
	p, err := ships.Process(ctx, "5")
	if err != nil {
		t.Fatal(err)
	}
	if got := shipped.get(); len(p.Commands) != 1 || !slices.Equal(got, []string{p.Commands[0].ID.String()}) {
		t.Errorf("delivered commands %v, want only order 5's %v", got, p.Commands)
	}
	for _, line := range []string{"handled types grew", "filter changed"} {
		if strings.Contains(logs.String(), line) {
			t.Errorf("the upgrade logs %q:\n%s", line, logs.String())
		}
	}

	// A second open upgrades nothing again.
	mailer.stop(t)
	audit.stop(t)
	ships.stop(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := len(logs.String())
	s = open()
	defer s.Close()
	if f, again := readFormat(), logs.String()[before:]; f != "pmd data directory format 5\n" || strings.Contains(again, "upgrad") {
		t.Fatalf("FORMAT %q after a second open, which logged:\n%s", f, again)
	}
}
