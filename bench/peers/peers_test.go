package peers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// testPeers returns every peer this machine can run, and closes them when t ends.
// Only PostgreSQL may be missing, and only because it is not installed.
func testPeers(t *testing.T) []Peer {
	t.Helper()
	peers := []Peer{PMD(), Bolt(), NATS()}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg, err := Postgres(ctx)
	switch {
	case errors.Is(err, ErrNoPostgres):
		t.Logf("skipping the PostgreSQL peer: %v", err)
	case err != nil:
		t.Fatalf("start PostgreSQL: %v", err)
	default:
		t.Cleanup(func() {
			if err := pg.Close(); err != nil {
				t.Errorf("stop PostgreSQL: %v", err)
			}
		})
		peers = append(peers, pg)
	}
	return peers
}

// TestPeers checks every adapter keeps the Store contract the workloads rely on,
// then runs every workload at short size against it.
func TestPeers(t *testing.T) {
	for _, peer := range testPeers(t) {
		t.Run(peer.Name, func(t *testing.T) {
			t.Run("contract", func(t *testing.T) { testContract(t, peer) })
			t.Run("workloads", func(t *testing.T) { testWorkloads(t, peer) })
		})
	}
}

func testEvent(typ, order string) Event {
	return Event{ID: uuid.Must(uuid.NewV7()), Type: typ, Data: map[string]any{"order_id": order, "n": "x"}}
}

func mustRead(t *testing.T, s Store, stream string) []Event {
	t.Helper()
	events, err := s.ReadStream(context.Background(), stream)
	if err != nil {
		t.Fatalf("ReadStream(%q): %v", stream, err)
	}
	return events
}

func sameEvents(t *testing.T, what string, got, want []Event) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func testContract(t *testing.T, peer Peer) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := peer.Open(ctx, dir, OpenOptions{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer func() { s.Close() }()

	a1, a2, b1 := testEvent("A", "1"), testEvent("B", "1"), testEvent("A", "2")
	for _, w := range []struct {
		stream   string
		expected int64
		e        Event
	}{{"Order$1", NoStream, a1}, {"Order$1", 0, a2}, {"Order$2", NoStream, b1}} {
		if err := s.Append(ctx, w.stream, w.expected, w.e); err != nil {
			t.Fatalf("Append(%q, %d, %s): %v", w.stream, w.expected, w.e.ID, err)
		}
	}
	sameEvents(t, "Order$1", mustRead(t, s, "Order$1"), []Event{a1, a2})
	sameEvents(t, "a stream never written", mustRead(t, s, "Order$3"), nil)

	t.Run("an expected version the stream has moved past conflicts and writes nothing", func(t *testing.T) {
		for _, expected := range []int64{NoStream, 0} {
			err := s.Append(ctx, "Order$1", expected, testEvent("C", "1"))
			if !errors.Is(err, ErrConflict) {
				t.Errorf("Append at %d to a stream at version 1: got %v, want ErrConflict", expected, err)
			}
			if err := s.Link(ctx, "Order$1", expected, b1.ID); !errors.Is(err, ErrConflict) {
				t.Errorf("Link at %d to a stream at version 1: got %v, want ErrConflict", expected, err)
			}
		}
		sameEvents(t, "Order$1 after conflicts", mustRead(t, s, "Order$1"), []Event{a1, a2})
	})

	t.Run("of concurrent writes at one expected version exactly one wins", func(t *testing.T) {
		const writers = 8
		errs := make(chan error, writers)
		for i := range writers {
			go func() { errs <- s.Append(ctx, "Race$1", NoStream, testEvent("R", strconv.Itoa(i))) }()
		}
		won := 0
		for range writers {
			switch err := <-errs; {
			case err == nil:
				won++
			case !errors.Is(err, ErrConflict):
				t.Errorf("a losing writer got %v, want ErrConflict", err)
			}
		}
		if got := mustRead(t, s, "Race$1"); won != 1 || len(got) != 1 {
			t.Errorf("%d writers won and Race$1 holds %d events, want 1 and 1", won, len(got))
		}
	})

	t.Run("links read back as the linked events, in link order", func(t *testing.T) {
		if err := s.Link(ctx, "Match$1", NoStream, b1.ID); err != nil {
			t.Fatalf("Link: %v", err)
		}
		if err := s.Link(ctx, "Match$1", 0, a1.ID); err != nil {
			t.Fatalf("Link: %v", err)
		}
		sameEvents(t, "Match$1", mustRead(t, s, "Match$1"), []Event{b1, a1})
		sameEvents(t, "Order$1 after its event was linked elsewhere", mustRead(t, s, "Order$1"), []Event{a1, a2})
		if err := s.Link(ctx, "Match$1", 1, uuid.Must(uuid.NewV7())); !errors.Is(err, ErrUnknownEvent) {
			t.Errorf("Link of an unknown id: got %v, want ErrUnknownEvent", err)
		}
	})

	scanAll := func() []Event {
		var all []Event
		if err := s.ScanAll(ctx, func(e Event) error { all = append(all, e); return nil }); err != nil {
			t.Fatalf("ScanAll: %v", err)
		}
		return all
	}
	t.Run("ScanAll yields appended events once, in write order", func(t *testing.T) {
		all := scanAll()
		if len(all) != 4 {
			t.Fatalf("$all holds %d events, want 4", len(all))
		}
		sameEvents(t, "$all", all[:3], []Event{a1, a2, b1})
		stop := errors.New("stop")
		n := 0
		err := s.ScanAll(ctx, func(Event) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Errorf("ScanAll with fn failing at once: got %v after %d events, want stop after 1", err, n)
		}
	})

	t.Run("data survives close and reopen", func(t *testing.T) {
		if err := s.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		if s, err = peer.Open(ctx, dir, OpenOptions{}); err != nil {
			t.Fatalf("reopen: %v", err)
		}
		sameEvents(t, "Order$1 after reopen", mustRead(t, s, "Order$1"), []Event{a1, a2})
		sameEvents(t, "Match$1 after reopen", mustRead(t, s, "Match$1"), []Event{b1, a1})
		sameEvents(t, "$all after reopen", scanAll()[:3], []Event{a1, a2, b1})
		if n, err := s.DiskBytes(ctx); err != nil || n <= 0 {
			t.Errorf("DiskBytes = %d, %v; want > 0", n, err)
		}
	})
}

func testWorkloads(t *testing.T, peer Peer) {
	p := ShortParams()
	if testing.Short() {
		p.WriteFor = 50 * time.Millisecond
		p.Orders = 50
		p.Replays = 20
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := Run(ctx, peer, p, t.TempDir(), t.Logf)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if r.Peer != peer.Name || r.Durability != peer.Durability {
		t.Errorf("result names %q (%q), want %q (%q)", r.Peer, r.Durability, peer.Name, peer.Durability)
	}
	for _, m := range Metrics() {
		if v := r.Figures[m]; !(v > 0) {
			t.Errorf("%s = %v, want a positive figure", m.Name(p), v)
		}
	}
	if r.Figures[ReplayP99] < r.Figures[ReplayMean]/10 {
		t.Errorf("replay p99 %.1f µs is implausibly below the mean %.1f µs", r.Figures[ReplayP99], r.Figures[ReplayMean])
	}
}

func TestParamsValidate(t *testing.T) {
	ok := ShortParams()
	for _, c := range []struct {
		name   string
		change func(*Params)
	}{
		{"WriteFor", func(p *Params) { p.WriteFor = 0 }},
		{"Writers", func(p *Params) { p.Writers = 0 }},
		{"EventSize", func(p *Params) { p.EventSize = 10 }},
		{"Orders", func(p *Params) { p.Orders = 0 }},
		{"EventsPerOrder", func(p *Params) { p.EventsPerOrder = 2 }},
		{"Replays", func(p *Params) { p.Replays = 0 }},
		{"WarmUp", func(p *Params) { p.WarmUp = -time.Second }},
		{"LoadWorkers", func(p *Params) { p.LoadWorkers = 0 }},
		{"Rounds", func(p *Params) { p.Rounds = 0 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := ok
			c.change(&p)
			err := p.Validate()
			if err == nil || !strings.Contains(err.Error(), c.name) {
				t.Errorf("Validate() = %v, want an error naming %s", err, c.name)
			}
			if _, err := Run(context.Background(), Bolt(), p, t.TempDir(), nil); err == nil {
				t.Errorf("Run with bad %s: got no error", c.name)
			}
		})
	}
	for _, p := range []Params{ok, FullParams(1), FullParams(0.01)} {
		if err := p.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", p, err)
		}
	}
	if got := FullParams(1); got.Orders != 100_000 || got.EventsPerOrder != 10 || got.Replays != 1000 || got.Writers != 16 || got.EventSize != 256 {
		t.Errorf("FullParams(1) = %+v, want the issue's sizes (100k orders of 10 events, 1000 replays, 16 writers, 256 bytes)", got)
	}
}

func TestGeneratorEventSize(t *testing.T) {
	for _, size := range []int{64, 256, 1000} {
		p := ShortParams()
		p.EventSize = size
		g := newGenerator(p)
		for _, order := range []string{"1", "123456"} {
			e := g.event(uuid.Must(uuid.NewV7()), "T", order)
			b, err := json.Marshal(e.Data)
			if err != nil || len(b) != size {
				t.Errorf("size %d, order %q: data encodes to %d bytes (%v)", size, order, len(b), err)
			}
		}
	}
}

// RunAll interleaves the peers round by round and reports medians, one result per
// peer in the order given.
func TestRunAllTakesTurns(t *testing.T) {
	p := ShortParams()
	p.Rounds, p.WriteFor, p.Orders, p.Replays = 3, 20*time.Millisecond, 20, 5
	var lines []string
	logf := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	rs, err := RunAll(context.Background(), []Peer{PMD(), Bolt()}, p, t.TempDir(), logf)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Peer != "pmd" || rs[1].Peer != "bbolt" {
		t.Fatalf("results %+v, want pmd then bbolt", rs)
	}
	var order []string
	for _, l := range lines {
		if strings.Contains(l, AppendOne.Name(p)+":") {
			order = append(order, strings.SplitN(l, ":", 2)[0])
		}
	}
	if want := []string{"pmd", "bbolt", "pmd", "bbolt", "pmd", "bbolt"}; !reflect.DeepEqual(order, want) {
		t.Errorf("append, 1 writer ran for %v, want the peers taking turns %v", order, want)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{9, 1, 5}, 5}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
