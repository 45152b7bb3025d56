package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// TestRepairOfFramingDamageInTheActiveSegment: a zeroed block in the middle of the log's
// last segment, with records of later synced writes after it, left the store down with
// no tool: the start refuses it (an operator must choose to lose data) and the repair
// refused it too. The repair now cuts the log after the last write committed before the
// damage, its preview naming the positions lost (the records past the damage look
// intact, but none can be framed from a known entry start) and saying that the next
// start fills them with void records: up to the last position the records past the
// damage show written, which is above the index's position on disk (the records written
// after the index's last flush). The store then opens, serves the events before the
// damage, reports the loss, and gives the next event the position after the lost ones; a
// second repair has nothing to do.
func TestRepairOfFramingDamageInTheActiveSegment(t *testing.T) {
	dir, opts, e := openNew(t, false)
	appendEvents(t, e, "A-1", 10, true)
	if err := e.Close(); err != nil { // the index is flushed at position 10
		t.Fatal(err)
	}
	// Five more synced writes, which the index on disk does not hold.
	l, err := pmdlog.Open(filepath.Join(dir, LogDir), pmdlog.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for v := range 5 {
		r := pmdlog.Record{Kind: pmdlog.KindEvent, Commit: true,
			Event: pmdlog.Event{ID: uuid.New(), Stream: "B-1", Version: uint64(v), Type: "T"}}
		if err := l.Write([]pmdlog.Record{r}); err != nil {
			t.Fatal(err)
		}
	}
	segs := l.Segments()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if len(segs) != 1 {
		t.Fatalf("segments %+v, want one", segs)
	}
	// Zero from 5 bytes into the entry of position 5 to 5 bytes into that of 7.
	seg := segs[0].Path
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int
	for off := 0; off < len(b); {
		n, k := binary.Uvarint(b[off:])
		offs = append(offs, off)
		off += k + int(n)
	}
	if len(offs) != 15 {
		t.Fatalf("%d entries, want 15", len(offs))
	}
	clear(b[offs[4]+5 : offs[6]+5])
	if err := os.WriteFile(seg, b, 0o640); err != nil {
		t.Fatal(err)
	}
	var ce *pmdlog.CorruptError
	if _, err := Open(dir, opts); !errors.As(err, &ce) {
		t.Fatalf("Open of the damaged store: %v, want a *log.CorruptError", err)
	}

	p, err := PlanRepair(dir, nil)
	if err != nil {
		t.Fatalf("PlanRepair: %v", err)
	}
	lines := strings.Join(p.Lines(), "\n")
	for _, want := range []string{
		fmt.Sprintf("cut %d bytes (", len(b)-offs[4]),
		"positions 5 to 15 are lost, among them records of writes acknowledged",
		"fill positions 5 to 15 with void records at the next start",
		"past the damage, show position 15 written",
	} {
		if !strings.Contains(lines, want) {
			t.Errorf("the plan says\n%s\nwant %q", lines, want)
		}
	}
	q := filepath.Join(t.TempDir(), "q")
	if err := p.Apply(q); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	qb, err := os.ReadFile(q)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(qb), string(b[offs[4]:])+"\n") {
		t.Fatalf("the quarantine does not end with the %d bytes from the damaged entry on", len(b)-offs[4])
	}

	e, err = Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Log.LastPosition(); got != 15 {
		t.Errorf("the log ends at position %d, want 15: the lost positions filled", got)
	}
	for pos := uint64(1); pos <= 15; pos++ {
		r, err := e.Log.Read(pos)
		switch {
		case err != nil:
			t.Errorf("position %d: %v", pos, err)
		case pos <= 4 && (r.Kind != pmdlog.KindEvent || r.Event.Stream != "A-1" || r.Event.Version != pos-1):
			t.Errorf("position %d holds %+v, want A-1's event %d", pos, r, pos-1)
		case pos > 4 && r.Kind != pmdlog.KindVoid:
			t.Errorf("position %d holds %+v, want a void record", pos, r)
		}
	}
	if st, err := NewBatch(e.Index, e.Log).Stream("A-1"); err != nil || st.Next != 4 {
		t.Errorf("stream A-1's next version %d, %v; want 4", st.Next, err)
	}
	if p := e.Problems(); len(p) != 1 || !strings.Contains(p[0], "the synced records from position 5 to 15 are lost") {
		t.Errorf("problems %q, want the loss of positions 5 to 15 reported", p)
	}
	appendEvents(t, e, "A-1", 1, true)
	if got := e.Log.LastPosition(); got != 16 {
		t.Errorf("the next event is at position %d, want 16", got)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	p, err = PlanRepair(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if len(p.Actions) != 0 || len(p.Unrepaired) != 0 {
		t.Fatalf("a second repair plans %q, %q; want nothing", p.Lines(), p.Unrepaired)
	}
}
