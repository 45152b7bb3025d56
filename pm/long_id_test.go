package pm_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// TestAProcessIDLeavesRoomForItsOtherStreams: a process's id names its deliveries,
// snapshots and removal marker streams too, the longest of them "<Name>.deliveries$<id>".
// An id for which that is 256 bytes runs the whole life of a process (a snapshot, a
// delivered command, its removal); one byte more is no process id, in the runtime as in
// Memory: skipped and counted, while the manager goes on. The runtime used to accept ids
// up to a 256-byte process stream name, and stopped Run with an error at the first event
// of such a process (its snapshots stream name was refused), again after every restart.
func TestAProcessIDLeavesRoomForItsOtherStreams(t *testing.T) {
	longest := 256 - len("M.deliveries$")
	for _, tc := range []struct {
		name  string
		id    string
		valid bool
	}{
		{"longest", strings.Repeat("x", longest), true},
		{"one byte more", strings.Repeat("x", longest+1), false},
		{"process stream of 256 bytes", strings.Repeat("x", 256-len("M$")), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem, err := pm.NewMemory(matchDef("M"), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := mem.Handle(customer(tc.id)); errors.Is(err, pm.ErrInvalidProcessID) == tc.valid {
				t.Errorf("Memory.Handle: %v, want an invalid process id: %t", err, !tc.valid)
			}

			s := openStore(t, t.TempDir())
			clock := pmtest.NewClock(time.Now())
			var got issued
			r := start(t, s, matchDef("M"), pm.Options{
				Clock: clock, Deliver: got.deliver, SnapshotEvery: 1,
				Retention: pm.Retention{Completed: keep},
			})
			appendFact(t, s, customer(tc.id))
			appendFact(t, s, caterer(tc.id))
			r.idle(t)
			st, err := r.Stats(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !tc.valid {
				if n := st.Unmatched["CustomerConfirmedMenu"] + st.Unmatched["CatererConfirmedMenu"]; n != 2 {
					t.Errorf("Stats.Unmatched = %v, want both facts", st.Unmatched)
				}
				if exists(t, s, "M$"+tc.id) {
					t.Error("the process stream was written")
				}
				return
			}
			if n := got.count(tc.id, "ConfirmOrder"); n != 1 {
				t.Fatalf("ConfirmOrder delivered %d times, want 1", n)
			}
			for _, stream := range []string{"M.snapshots$" + tc.id, "M.deliveries$" + tc.id} {
				if !exists(t, s, stream) {
					t.Errorf("%s was not written", stream)
				}
			}
			if _, err := r.Process(context.Background(), tc.id); err != nil {
				t.Errorf("Process: %v", err)
			}
			clock.Advance(keep)
			r.idle(t)
			if exists(t, s, "M$"+tc.id) || !exists(t, s, "M.removed$"+tc.id) {
				t.Error("retention did not remove the process")
			}
		})
	}
}

// TestAProcessAnEarlierVersionTookGoesOn: a store written before ids had to leave room
// for "<Name>.deliveries$<id>" may hold processes of longer ids, "<Name>$<id>" up to
// 256 bytes. Such a process goes on: its next fact is linked (its deadline does not
// fire over it), List and Process show it, its deliveries read as none, retention
// removes it. It is folded without snapshots when their stream cannot be named, and
// removed without a marker when that cannot be. Its commands, stored or issued, cannot
// have their attempts recorded: they are not delivered, counted in
// Stats.Undeliverable and logged, and Run goes on, at this start and the next. Such a
// process was unmatched: its fact never linked, its deadline cancelled the order, List
// and Process did not know it, and a stored command stopped Run at every start.
func TestAProcessAnEarlierVersionTookGoesOn(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int // bytes of the id
	}{
		{"its snapshots stream fits", 256 - len("M.snapshots$")},
		{"its removal marker fits", 256 - len("M.removed$")},
		{"its process stream alone fits", 256 - len("M$")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, t.TempDir())
			open, done := strings.Repeat("o", tc.n), strings.Repeat("d", tc.n)

			// What the earlier version wrote, with the ids it gave its records: the
			// process open linked a customer's confirmation and scheduled CancelOrder;
			// done linked both and issued ConfirmOrder, not delivered yet.
			seq := 0
			write := func(id string, typ, kind string, data map[string]any) {
				t.Helper()
				stream := "M$" + id
				seq++
				_, err := s.Append(ctx, stream, pmd.Any, pmd.EventData{
					ID: uuid.NewSHA1(uuid.NameSpaceURL, fmt.Appendf(nil, "%s@%d", stream, seq)), Type: typ, Data: data,
					Metadata: map[string]any{pm.MetaKind: kind, pm.MetaKey: data["key"]},
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			link := func(id string, e pmd.Event) time.Time {
				t.Helper()
				res := appendFact(t, s, e)
				if _, err := s.Link(ctx, "M$"+id, pmd.Any, res.IDs[0]); err != nil {
					t.Fatal(err)
				}
				return time.Now()
			}
			started := link(open, customer(open))
			write(open, "DeadlineScheduled", pm.KindDeadlineScheduled, map[string]any{
				"key": "CancelOrder", "due": started.Add(timeout).UTC().Format(time.RFC3339Nano),
				"type": "CancelOrder", "data": map[string]any{"order_id": open},
			})
			link(done, customer(done))
			link(done, caterer(done))
			write(done, "ConfirmOrder", pm.KindCommand, map[string]any{"key": "ConfirmOrder", "order_id": done})

			clock := pmtest.NewClock(time.Now())
			var got issued
			var logs lockedLog
			opts := pm.Options{
				Clock: clock, Deliver: got.deliver, SnapshotEvery: 1, Logger: logs.logger(),
				Retention: pm.Retention{Completed: 2 * timeout}, // after the deadline is due
			}
			r := start(t, s, matchDef("M"), opts)
			r.idle(t)
			appendFact(t, s, caterer(open))
			r.idle(t)
			clock.Advance(timeout + time.Minute)
			r.idle(t)

			st, err := r.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Unmatched) != 0 || st.Undeliverable != 2 {
				t.Errorf("Stats = %+v, want nothing unmatched and 2 commands undeliverable", st)
			}
			_, commands := tally(t, processStream(t, s, "M$"+open))
			if commands["ConfirmOrder"] != 1 || commands["CancelOrder"] != 0 {
				t.Errorf("process %s… issued %v, want ConfirmOrder alone", open[:3], commands)
			}
			if got.count(open, "ConfirmOrder")+got.count(done, "ConfirmOrder") != 0 {
				t.Error("a command was handed to Deliver, whose attempts cannot be recorded")
			}
			if n := len(logs.lines("not delivering the commands")); n != 2 {
				t.Errorf("%d log lines about undeliverable commands, want one per process", n)
			}
			list, err := r.List(ctx, pm.ListOptions{})
			if err != nil || len(list.Processes) != 2 {
				t.Fatalf("List = %+v, %v; want both processes", list, err)
			}
			for _, id := range []string{open, done} {
				p, err := r.Process(ctx, id)
				if err != nil || p.Status != pm.StatusCompleted || len(p.Commands) != 1 || p.Commands[0].Type != "ConfirmOrder" {
					t.Errorf("Process(%s…) = %+v, %v; want it completed, ConfirmOrder issued", id[:3], p.Status, err)
				}
				if p.DeliveriesStream != "" {
					t.Errorf("Process(%s…).DeliveriesStream = %q, a name no stream can have; want none", id[:3], p.DeliveriesStream)
				}
				if d, err := r.Deliveries(ctx, id); err != nil || len(d) != 0 {
					t.Errorf("Deliveries(%s…) = %v, %v; want none", id[:3], d, err)
				}
			}

			// The next start finds both commands awaiting delivery, and goes on.
			r.stop(t)
			r = start(t, s, matchDef("M"), opts)
			r.idle(t)
			if st, err := r.Stats(ctx); err != nil || st.Undeliverable != 2 {
				t.Errorf("after a restart: Stats = %+v, %v; want 2 commands undeliverable", st, err)
			}
			clock.Advance(2 * timeout)
			r.idle(t)
			for _, id := range []string{open, done} {
				if exists(t, s, "M$"+id) {
					t.Errorf("retention did not remove process %s…", id[:3])
				}
			}
			if st, err := r.Stats(ctx); err != nil || st.Removed != 2 {
				t.Errorf("Stats = %+v, %v; want both processes removed", st, err)
			}
		})
	}
}

// TestCheckProcessID: the exported rules of process ids, for a client to check before
// it asks: CheckProcessID for a new process, CheckStoredProcessID for one a store
// written by an earlier version may hold.
func TestCheckProcessID(t *testing.T) {
	longest := 256 - len("M.deliveries$")
	for _, tc := range []struct {
		id          string
		new, stored string // what the errors say; "" for none
	}{
		{strings.Repeat("x", longest), "", ""},
		{strings.Repeat("x", longest+1), "makes the stream name M.deliveries$<id> 257 bytes long, the limit is 256", ""},
		{strings.Repeat("x", 256-len("M$")), "makes the stream name M.deliveries$<id> 267 bytes long", ""},
		{strings.Repeat("x", 256-len("M$")+1), "M.deliveries$<id> 268 bytes long", "makes the stream name 257 bytes long, the limit is 256"},
		{".", "is a dot segment", ""},
		{"", "is empty", "is empty"},
		{"a\x01", "control character", "control character"},
	} {
		for _, c := range []struct {
			check func(string, string) error
			want  string
		}{{pm.CheckProcessID, tc.new}, {pm.CheckStoredProcessID, tc.stored}} {
			err := c.check("M", tc.id)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Errorf("id of %d bytes %.8q: %v, want %q", len(tc.id), tc.id, err, c.want)
			}
		}
	}
}
