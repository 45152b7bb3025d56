package pm_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/damagetest"
	"github.com/pmd-dev/pmd/pm"
)

// TestAnOwnRecordInADamagedRunIsNotTakenForAFact: damage that hides a run of records (a
// sealed segment cut short, its offsets gone) is named by a read of the category at the
// run's last position, not at the record asked for. A record of the runtime's own inside
// such a run (here the process's deadline) must still be told from a damaged linked
// fact: passed over as a fact, the process would forget the command it keys.
func TestAnOwnRecordInADamagedRunIsNotTakenForAFact(t *testing.T) {
	dir := t.TempDir()
	opts := pmd.Options{NoSync: true, NoScrub: true, SegmentSize: 16 << 10, Logger: quiet()}
	s, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	const order = "ORDER-IN-A-RUN"
	r := start(t, s, matchDef("CateringMatch"), pm.Options{})
	e := customer(order)
	e.Data["pad"] = pad
	appendFact(t, s, e)
	r.idle(t)
	r.stop(t)
	sealWithNoise(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Cut the sealed segment inside the last record that names the order (the deadline
	// the process scheduled) and remove its offsets: the rest of it is one hidden run.
	segs := damagetest.Segments(t, dir)
	cut := false
	for _, seg := range segs[:len(segs)-1] {
		b, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.LastIndex(b, []byte(order))
		if i < 0 {
			continue
		}
		if err := os.WriteFile(seg, b[:i], 0o640); err != nil {
			t.Fatal(err)
		}
		sidecars, err := filepath.Glob(seg + ".*")
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range sidecars {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
		cut = true
		break
	}
	if !cut {
		t.Fatalf("no sealed segment names %s", order)
	}
	s, err = pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var logs logged
	m, err := pm.New(s, matchDef("CateringMatch"), pm.Options{Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	// The list folds the process; its damaged record is the runtime's own: the list
	// passes it over, as a view does, and says so.
	list, err := m.Processes(context.Background(), "", 100)
	if strings.Contains(logs.String(), "goes on without a damaged fact") {
		t.Errorf("the runtime's own damaged record was taken for a linked fact (list %+v, %v):\n%s", list, err, logs.String())
	}
	if err != nil || len(list) != 1 || list[0].Damaged == 0 {
		t.Errorf("Processes: %+v, %v; want the process, with its damaged records counted", list, err)
	}
	if !strings.Contains(logs.String(), "shown without a damaged record of the runtime's own") {
		t.Errorf("the damage of the runtime's own record is not logged:\n%s", logs.String())
	}
}
