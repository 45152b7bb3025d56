package pm

import (
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/vmihailenco/msgpack/v5"
)

// FuzzLedger feeds the reader of process-stream records arbitrary records: it must
// never panic, keep only deadlines whose due time parses, and agree with the record
// kinds it understood.
func FuzzLedger(f *testing.F) {
	f.Add("deadline_scheduled", "CancelOrder", "2030-01-01T00:00:00Z", "CancelOrder", false)
	f.Add("deadline_fired", "CancelOrder", "", "", false)
	f.Add("command", "ConfirmOrder", "", "ConfirmOrder", false)
	f.Add("deadline_cancelled", "x", "not a time", "", true)
	f.Add("", "", "", "", false)
	f.Fuzz(func(t *testing.T, kind, key, due, typ string, link bool) {
		const stream = "P$1"
		l := newLedger()
		e := pmd.Event{
			ID: uuid.New(), Type: "T", Stream: stream, Link: link,
			Data:     map[string]any{"due": due, "type": typ},
			Metadata: map[string]any{MetaKind: kind, MetaKey: key},
		}
		l.observe(stream, &e, true)
		if l.last != 0 {
			t.Fatalf("last = %d after one record at version 0", l.last)
		}
		for k, d := range l.pending {
			if _, err := time.Parse(time.RFC3339Nano, due); err != nil || k != key || d.Type != typ {
				t.Fatalf("pending %q: %+v from due %q", k, d, due)
			}
		}
		wantCommands := 0
		if kind == KindCommand && !link {
			wantCommands = 1
		}
		if l.commands != wantCommands || len(l.pending) > 1 {
			t.Fatalf("kind %q link %v: %d commands, %d pending", kind, link, l.commands, len(l.pending))
		}
		_ = l.status()
		_ = l.deadlines()
	})
}

// FuzzDeliveryOf feeds the reader of delivery records arbitrary data.
func FuzzDeliveryOf(f *testing.F) {
	f.Add("CommandDelivered", "0195a3f0-0000-7000-8000-000000000001", int64(1), "", "")
	f.Add("CommandDeliveryFailed", "0195a3f0-0000-7000-8000-000000000001", int64(3), "down", "2030-01-01T00:00:00Z")
	f.Add("CommandDeliveryFailed", "nope", int64(-1), "", "soon")
	f.Fuzz(func(t *testing.T, typ, id string, attempt int64, msg, retry string) {
		e := pmd.Event{Type: typ, Data: map[string]any{
			"command_id": id, "attempt": attempt, "error": msg, "retry_at": retry,
		}}
		d, ok := deliveryOf(&e)
		if !ok {
			return
		}
		if typ != deliveredType && typ != deliveryFailedType {
			t.Fatalf("read a %q event as a delivery", typ)
		}
		if parsed, err := uuid.Parse(id); err != nil || parsed != d.CommandID {
			t.Fatalf("command id %q read as %v", id, d.CommandID)
		}
		if d.Delivered() != (typ == deliveredType) {
			t.Fatalf("%s read as delivered=%v", typ, d.Delivered())
		}
	})
}

// FuzzSubscriptionRecordOf feeds the reader of a subscription's records arbitrary
// data: a record is read only with a position, an event record only with an event id,
// and nothing panics.
func FuzzSubscriptionRecordOf(f *testing.F) {
	f.Add("SubscriptionPosition", int64(7), "", int64(0), "", "")
	f.Add("EventDeliveryFailed", int64(3), "0195a3f0-0000-7000-8000-000000000001", int64(2), "down", "2030-01-01T00:00:00Z")
	f.Add("EventParked", int64(-1), "nope", int64(-1), "", "soon")
	f.Add("EventSkipped", int64(4), "0195a3f0-0000-7000-8000-000000000001", int64(3), "", "")
	f.Fuzz(func(t *testing.T, typ string, pos int64, id string, attempt int64, msg, retry string) {
		e := pmd.Event{Type: typ, Data: map[string]any{
			"position": pos, "event_id": id, "attempt": attempt, "error": msg, "retry_at": retry,
		}}
		d, got, ok := subscriptionRecordOf(&e)
		if !ok {
			return
		}
		if pos < 0 || got != uint64(pos) {
			t.Fatalf("position %d read as %d", pos, got)
		}
		switch typ {
		case subscriptionPositionType:
			if d.Outcome != "" {
				t.Fatalf("a position record read with outcome %q", d.Outcome)
			}
		case eventFailedType, eventParkedType, eventRetriedType, eventSkippedType:
			if parsed, err := uuid.Parse(id); err != nil || parsed != d.CommandID || d.Outcome == "" {
				t.Fatalf("event id %q read as %v, outcome %q", id, d.CommandID, d.Outcome)
			}
			if eventRecordType(d.Outcome) != typ {
				t.Fatalf("%s read as %s", typ, d.Outcome)
			}
		default:
			t.Fatalf("read a %q event as a subscription record", typ)
		}
	})
}

func TestAsUint64(t *testing.T) {
	tests := []struct {
		in   any
		want uint64
		ok   bool
	}{
		{uint64(1) << 63, 1 << 63, true},
		{uint32(7), 7, true},
		{uint16(7), 7, true},
		{uint8(7), 7, true},
		{uint(7), 7, true},
		{int64(7), 7, true},
		{int32(7), 7, true},
		{int16(7), 7, true},
		{int8(7), 7, true},
		{7, 7, true},
		{7.0, 7, true},
		{int8(-1), 0, false},
		{-1, 0, false},
		{int64(-1), 0, false},
		{7.5, 7, false},
		{"7", 0, false},
		{nil, 0, false},
	}
	for _, tt := range tests {
		got, ok := asUint64(tt.in)
		if ok != tt.ok || ok && got != tt.want {
			t.Errorf("asUint64(%#v) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzDecodeSnapshot feeds the snapshot decoder arbitrary record data: it must never
// panic, and what it accepts must be a ledger the runtime can use and must read back
// the same after it is written again.
func FuzzDecodeSnapshot(f *testing.F) {
	l := newLedger()
	for v, e := range []pmd.Event{
		{Type: "Tick", Link: true, Position: 7},
		{Type: DeadlineScheduled, Stream: "T$a", Data: map[string]any{"due": "2030-01-01T00:00:00Z"},
			Metadata: map[string]any{MetaKind: KindDeadlineScheduled, MetaKey: "late"}},
		{Type: "Ring", Stream: "T$a", Metadata: map[string]any{MetaKind: KindCommand, MetaKey: "ring"}},
	} {
		e.Version = uint64(v)
		l.observe("T$a", &e, true)
	}
	seed, err := msgpack.Marshal(snapshotEvent(&snapshot{fingerprint: "f", l: l, state: []byte{0x80}}).Data)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		var data map[string]any
		if msgpack.Unmarshal(b, &data) != nil {
			return
		}
		sn, err := decodeSnapshot(data)
		if err != nil {
			return
		}
		if sn.l.first > sn.l.last || sn.l.first < 0 {
			t.Fatalf("accepted versions first %d, last %d", sn.l.first, sn.l.last)
		}
		for key, v := range sn.l.issued {
			if int64(v) > sn.l.last {
				t.Fatalf("issued %q at %d, after the version covered %d", key, v, sn.l.last)
			}
		}
		again, err := msgpack.Marshal(snapshotEvent(&sn).Data)
		if err != nil {
			t.Fatal(err)
		}
		var back map[string]any
		if err := msgpack.Unmarshal(again, &back); err != nil {
			t.Fatal(err)
		}
		sn2, err := decodeSnapshot(back)
		if err != nil {
			t.Fatalf("a snapshot written again does not decode: %v", err)
		}
		if !reflect.DeepEqual(sn, sn2) {
			t.Fatalf("written again, the snapshot reads\n%+v\nnot\n%+v", sn2, sn)
		}
	})
}
