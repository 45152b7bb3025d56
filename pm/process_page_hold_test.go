package pm

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestProcessPageHoldsWhatItDecodes: with PageOptions.Hold, ProcessPage reads the
// process stream undecoded and has Hold decode each event it reads, giving back those
// it lets go of, so that what it still holds at the end is the events and commands it
// shows; the page is the one read without Hold; and an error of Hold (a server's memory
// budget refusing the bytes) ends the page with it. ProcessPage decoded every event it
// read, so a server could reserve its memory budget only for the JSON of the page once
// the events, decoded, were held (GET /v1/processes/{name}/{id}).
func TestProcessPageHoldsWhatItDecodes(t *testing.T) {
	const n, size = 24, 16 << 10
	ctx := context.Background()
	for _, tt := range []struct {
		name          string
		snapshotEvery int
		pageBytes     int
	}{
		{"with snapshots", 4, 64 << 10},
		{"without snapshots", -1, 64 << 10},
		{"unbounded", 4, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := bigProcess(t, n, size, tt.snapshotEvery)
			want, err := m.ProcessPage(ctx, "a", -1, 1000, PageOptions{PageBytes: tt.pageBytes})
			if err != nil {
				t.Fatal(err)
			}
			held, reads := 0, 0
			hold := func(ev *pmd.Event) (func(), error) {
				reads++
				if err := decodeGiven(t, ev); err != nil {
					return nil, err
				}
				held++
				released := false
				return func() {
					if released {
						t.Errorf("event %d given back twice", ev.Version)
					}
					released = true
					held--
				}, nil
			}
			got, err := m.ProcessPage(ctx, "a", -1, 1000, PageOptions{PageBytes: tt.pageBytes, Hold: hold})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(versions(got.Events), versions(want.Events)) || !reflect.DeepEqual(got.States, want.States) ||
				len(got.Commands) != len(want.Commands) {
				t.Fatalf("with Hold: events %v, %d commands; without: events %v, %d commands",
					versions(got.Events), len(got.Commands), versions(want.Events), len(want.Commands))
			}
			for _, ev := range got.Events {
				if ev.Data == nil {
					t.Fatalf("event %d shown undecoded", ev.Version)
				}
			}
			if shown := len(got.Events) + len(got.Commands); held != shown || reads <= shown && tt.pageBytes > 0 {
				t.Errorf("%d events read, %d still held at the end, for %d events and %d commands shown", reads, held, len(got.Events), len(got.Commands))
			}

			refused := errors.New("no room")
			_, err = m.ProcessPage(ctx, "a", -1, 1000, PageOptions{PageBytes: tt.pageBytes, Hold: func(*pmd.Event) (func(), error) {
				return nil, refused
			}})
			if !errors.Is(err, refused) {
				t.Errorf("Hold refusing: %v, want its error", err)
			}
		})
	}
}

func versions(evs []pmd.Event) []uint64 {
	var out []uint64
	for _, e := range evs {
		out = append(out, e.Version)
	}
	return out
}

// TestProcessPageHoldsItsFold: with PageOptions.Hold, the fold of the process's state
// that ProcessPage starts with decodes its events with Hold too, giving each back once
// folded, and Hold's refusal of one of them ends the page. The fold read them decoded,
// so a page of older events (before) decoded the events after them, which it does not
// show, uncounted by a server's memory budget (GET /v1/processes/{name}/{id}?before=).
func TestProcessPageHoldsItsFold(t *testing.T) {
	const n = 24
	ctx := context.Background()
	m := bigProcess(t, n, 1<<10, -1)
	seen := map[uint64]bool{}
	held := 0
	hold := func(ev *pmd.Event) (func(), error) {
		if err := decodeGiven(t, ev); err != nil {
			return nil, err
		}
		seen[ev.Version] = true
		held++
		return func() { held-- }, nil
	}
	want, err := m.ProcessPage(ctx, "a", 1, 1, PageOptions{PageBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.ProcessPage(ctx, "a", 1, 1, PageOptions{PageBytes: 64 << 10, Hold: hold})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(versions(got.Events), []uint64{0}) || !reflect.DeepEqual(got.State, want.State) {
		t.Fatalf("with Hold: events %v, state %v; without: state %v", versions(got.Events), got.State, want.State)
	}
	for v := range uint64(n) {
		if !seen[v] {
			t.Errorf("event %d, folded into the state, was not decoded by Hold", v)
		}
	}
	if shown := len(got.Events) + len(got.Commands); held != shown {
		t.Errorf("%d events still held at the end, for %d events and %d commands shown", held, len(got.Events), len(got.Commands))
	}

	refused := errors.New("no room")
	_, err = m.ProcessPage(ctx, "a", 1, 1, PageOptions{PageBytes: 64 << 10, Hold: func(ev *pmd.Event) (func(), error) {
		if ev.Version == n-1 {
			return nil, refused
		}
		return hold(ev)
	}})
	if !errors.Is(err, refused) {
		t.Errorf("Hold refusing the last event folded: %v, want its error", err)
	}
}

// TestProcessPageHoldsItsStates: with PageOptions.HoldState, ProcessPage has each state
// it keeps to show held (the process's state, and the state after each event of the
// page, by version), giving back those it lets go of as the page outgrows PageBytes, so
// that what is still held at the end is what it shows; and HoldState's refusal ends the
// page with it. The states, made for the answer, were held uncounted by a server.
func TestProcessPageHoldsItsStates(t *testing.T) {
	const n, size = 24, 16 << 10
	ctx := context.Background()
	m := bigProcess(t, n, size, 4)
	held := map[int64]int{}
	got, err := m.ProcessPage(ctx, "a", -1, 1000, PageOptions{PageBytes: 64 << 10, HoldState: func(version int64, state any) (func(), error) {
		if state == nil {
			t.Errorf("state after version %d held nil", version)
		}
		held[version]++
		return func() { held[version]-- }, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Events) == 0 || len(got.Events) == n {
		t.Fatalf("%d events on the page, want some, bounded", len(got.Events))
	}
	last := int64(got.Events[len(got.Events)-1].Version)
	want := map[int64]int{last: 1} // the process's state
	for _, ev := range got.Events {
		want[int64(ev.Version)]++
	}
	for v, c := range held {
		if c != want[v] {
			t.Errorf("state after version %d held %d times at the end, want %d", v, c, want[v])
		}
	}
	for v, c := range want {
		if held[v] != c {
			t.Errorf("state after version %d held %d times at the end, want %d", v, held[v], c)
		}
	}

	refused := errors.New("no room")
	_, err = m.ProcessPage(ctx, "a", -1, 1000, PageOptions{PageBytes: 64 << 10, HoldState: func(version int64, _ any) (func(), error) {
		if version == int64(got.Events[0].Version) {
			return nil, refused
		}
		return func() {}, nil
	}})
	if !errors.Is(err, refused) {
		t.Errorf("HoldState refusing: %v, want its error", err)
	}
}

// TestListHoldsItsFolds: with ListOptions.Hold, List folds each process it looks at with
// its events decoded by Hold, each given back once folded, and Hold's refusal ends the
// listing with it; a record Hold finds undecodable (a *pmd.CorruptError naming no
// stream, as a server's names none for a listing) is passed over as damage of the
// process stream, as the store's own would be, not the end of the listing. The folds
// read their events decoded, uncounted by a server's memory budget
// (GET /v1/processes/{name}).
func TestListHoldsItsFolds(t *testing.T) {
	const n = 24
	ctx := context.Background()
	m := bigProcess(t, n, 1<<10, -1)
	seen := map[uint64]bool{}
	held := 0
	decode := func(ev *pmd.Event) (func(), error) {
		data, meta := ev.Encoded()
		var err error
		if ev.Data, err = pmd.DecodeData(data); err != nil {
			return nil, err
		}
		if ev.Metadata, err = pmd.DecodeData(meta); err != nil {
			return nil, err
		}
		seen[ev.Version] = true
		held++
		return func() { held-- }, nil
	}
	want, err := m.List(ctx, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.List(ctx, ListOptions{Hold: decode})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("with Hold: %+v; without: %+v", got, want)
	}
	for v := range uint64(n) {
		if !seen[v] {
			t.Errorf("event %d, folded for the listing, was not decoded by Hold", v)
		}
	}
	if held != 0 {
		t.Errorf("%d events still held after the listing", held)
	}

	refused := errors.New("no room")
	if _, err := m.List(ctx, ListOptions{Hold: func(ev *pmd.Event) (func(), error) {
		if ev.Version == n-1 {
			return nil, refused
		}
		return decode(ev)
	}}); !errors.Is(err, refused) {
		t.Errorf("Hold refusing: %v, want its error", err)
	}

	got, err = m.List(ctx, ListOptions{Hold: func(ev *pmd.Event) (func(), error) {
		if ev.Version == 5 {
			return nil, &pmd.CorruptError{Position: ev.Position, Version: ev.Version, Cause: errors.New("data: does not decode")}
		}
		return decode(ev)
	}})
	if err != nil {
		t.Fatalf("Hold finding a record undecodable: %v, want it passed over", err)
	}
	if len(got.Processes) != 1 || got.Processes[0].Damaged != 1 {
		t.Errorf("Hold finding a record undecodable: %+v, want process a with 1 damaged record", got.Processes)
	}
}

// decodeGiven decodes the data and metadata of an event given to a Hold, which must be
// given undecoded, with its stored bytes, as a Hold decodes it once it reserved them.
func decodeGiven(t *testing.T, ev *pmd.Event) error {
	t.Helper()
	data, meta := ev.Encoded()
	if ev.Data != nil || data == nil {
		t.Fatalf("Hold was given event %d decoded (%v) or without its stored data", ev.Version, ev.Data != nil)
	}
	var err error
	if ev.Data, err = pmd.DecodeData(data); err != nil {
		return err
	}
	ev.Metadata, err = pmd.DecodeData(meta)
	return err
}
