package peers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"
)

// Params sizes the workloads. Every peer in a run gets the same Params.
type Params struct {
	// WriteFor is how long each append and link workload runs.
	WriteFor time.Duration
	// Writers is the number of concurrent writers in the concurrent cases.
	Writers int
	// EventSize is the size in bytes of each event's data, JSON-encoded.
	EventSize int
	// Orders is the number of order streams in the replay log, EventsPerOrder the
	// events in each; the log holds Orders*EventsPerOrder events.
	Orders         int
	EventsPerOrder int
	// Replays is the number of random process streams read whole.
	Replays int
	// LoadWorkers is the number of concurrent writers loading the replay log.
	LoadWorkers int
	// Seed picks the replayed streams and the payload bytes: the same for every peer.
	Seed uint64
}

// FullParams are the sizes the issue asks for, with orders scaled by scale
// (1 = 100k orders, 1M events).
func FullParams(scale float64) Params {
	return Params{
		WriteFor:       5 * time.Second,
		Writers:        16,
		EventSize:      256,
		Orders:         max(int(100_000*scale), 10),
		EventsPerOrder: 10,
		Replays:        1000,
		LoadWorkers:    8,
		Seed:           6,
	}
}

// ShortParams run every workload in well under a second per store, for tests.
func ShortParams() Params {
	return Params{
		WriteFor:       150 * time.Millisecond,
		Writers:        4,
		EventSize:      256,
		Orders:         200,
		EventsPerOrder: 10,
		Replays:        50,
		LoadWorkers:    4,
		Seed:           6,
	}
}

// Validate reports the first parameter that cannot run.
func (p Params) Validate() error {
	switch {
	case p.WriteFor <= 0:
		return fmt.Errorf("peers: WriteFor must be positive, got %v", p.WriteFor)
	case p.Writers < 1:
		return fmt.Errorf("peers: Writers must be at least 1, got %d", p.Writers)
	case p.EventSize < 64:
		return fmt.Errorf("peers: EventSize must be at least 64 bytes, got %d", p.EventSize)
	case p.Orders < 1:
		return fmt.Errorf("peers: Orders must be at least 1, got %d", p.Orders)
	case p.EventsPerOrder < 3:
		return fmt.Errorf("peers: EventsPerOrder must be at least 3 (two facts and an order), got %d", p.EventsPerOrder)
	case p.Replays < 1:
		return fmt.Errorf("peers: Replays must be at least 1, got %d", p.Replays)
	case p.LoadWorkers < 1:
		return fmt.Errorf("peers: LoadWorkers must be at least 1, got %d", p.LoadWorkers)
	}
	return nil
}

// Metric is one figure a run measures.
type Metric int

// The metrics, in table order.
const (
	AppendOne Metric = iota
	AppendMany
	LinkOne
	LinkMany
	ReplayMean
	ReplayP99
	Scan
	DiskPerEvent
	numMetrics
)

// Metrics lists every metric in table order.
func Metrics() []Metric {
	m := make([]Metric, numMetrics)
	for i := range m {
		m[i] = Metric(i)
	}
	return m
}

// Name describes the metric for a table row, given the parameters it ran with.
func (m Metric) Name(p Params) string {
	switch m {
	case AppendOne:
		return "append, 1 writer"
	case AppendMany:
		return fmt.Sprintf("append, %d writers", p.Writers)
	case LinkOne:
		return "link, 1 writer"
	case LinkMany:
		return fmt.Sprintf("link, %d writers", p.Writers)
	case ReplayMean:
		return "PM replay, mean"
	case ReplayP99:
		return "PM replay, p99"
	case Scan:
		return "$all scan"
	case DiskPerEvent:
		return "disk per event"
	}
	return "metric " + strconv.Itoa(int(m))
}

// Unit is what the metric's figures count.
func (m Metric) Unit() string {
	switch m {
	case AppendOne, AppendMany, Scan:
		return "events/s"
	case LinkOne, LinkMany:
		return "links/s"
	case ReplayMean, ReplayP99:
		return "µs/stream"
	case DiskPerEvent:
		return "bytes"
	}
	return ""
}

// HigherIsBetter says which way the metric's figures improve.
func (m Metric) HigherIsBetter() bool {
	switch m {
	case ReplayMean, ReplayP99, DiskPerEvent:
		return false
	}
	return true
}

// Result is what one peer measured.
type Result struct {
	Peer       string
	Version    string
	Durability string
	Figures    [numMetrics]float64
}

// Run runs every workload against peer, keeping its data under dir (which it
// empties as it goes). logf, if not nil, receives progress lines.
func Run(ctx context.Context, peer Peer, p Params, dir string, logf func(format string, args ...any)) (Result, error) {
	if err := p.Validate(); err != nil {
		return Result{}, err
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	r := Result{Peer: peer.Name, Version: peer.Version, Durability: peer.Durability}
	gen := newGenerator(p)
	if err := runWrites(ctx, peer, p, gen, dir, &r, logf); err != nil {
		return r, fmt.Errorf("%s: %w", peer.Name, err)
	}
	if err := runReplayLog(ctx, peer, p, gen, dir, &r, logf); err != nil {
		return r, fmt.Errorf("%s: %w", peer.Name, err)
	}
	return r, nil
}

// subdir makes a fresh directory for one store under dir.
func subdir(dir, name string) (string, error) {
	d, err := os.MkdirTemp(dir, name+"-")
	if err != nil {
		return "", fmt.Errorf("store dir: %w", err)
	}
	return d, nil
}

// runWrites times the durable append and link workloads on one fresh store.
func runWrites(ctx context.Context, peer Peer, p Params, gen *generator, dir string, r *Result, logf func(string, ...any)) error {
	d, err := subdir(dir, "writes")
	if err != nil {
		return err
	}
	defer os.RemoveAll(d)
	s, err := peer.Open(ctx, d, OpenOptions{})
	if err != nil {
		return err
	}
	defer s.Close()
	for _, c := range []struct {
		append, link Metric
		writers      int
	}{{AppendOne, LinkOne, 1}, {AppendMany, LinkMany, p.Writers}} {
		// Flush what earlier phases (and earlier peers) left for the kernel to
		// write back, so it does not land on this peer's timed fsyncs.
		syscall.Sync()
		ids, rate, err := appendFor(ctx, s, gen, c.writers, p.WriteFor)
		if err != nil {
			return fmt.Errorf("append, %d writers: %w", c.writers, err)
		}
		r.Figures[c.append] = rate
		logf("%s: %s: %.0f %s", peer.Name, c.append.Name(p), rate, c.append.Unit())
		syscall.Sync()
		if rate, err = linkFor(ctx, s, ids, p.WriteFor); err != nil {
			return fmt.Errorf("link, %d writers: %w", c.writers, err)
		}
		r.Figures[c.link] = rate
		logf("%s: %s: %.0f %s", peer.Name, c.link.Name(p), rate, c.link.Unit())
	}
	return s.Close()
}

// appendFor runs writers concurrent writers for d, each appending one event at a
// time to its own stream with an exact expected version. It returns the ids each
// writer appended and the events appended per second.
func appendFor(ctx context.Context, s Store, gen *generator, writers int, d time.Duration) ([][]uuid.UUID, float64, error) {
	ids := make([][]uuid.UUID, writers)
	g, gctx := errgroup.WithContext(ctx)
	start := time.Now()
	deadline := start.Add(d)
	for w := range writers {
		g.Go(func() error {
			stream := fmt.Sprintf("Bench$%d-%d", writers, w)
			for v := int64(0); time.Now().Before(deadline); v++ {
				e := gen.event(uuid.Must(uuid.NewV7()), "Benchmarked", fmt.Sprintf("b%d-%d", writers, w))
				if err := s.Append(gctx, stream, v-1, e); err != nil {
					return err
				}
				ids[w] = append(ids[w], e.ID)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, 0, err
	}
	n := 0
	for _, l := range ids {
		n += len(l)
	}
	return ids, float64(n) / time.Since(start).Seconds(), nil
}

// linkFor links, for d or until they run out, writer w's events into its own
// second stream, one link at a time, all writers at once. It returns links per
// second.
func linkFor(ctx context.Context, s Store, ids [][]uuid.UUID, d time.Duration) (float64, error) {
	counts := make([]int, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	start := time.Now()
	deadline := start.Add(d)
	for w, l := range ids {
		g.Go(func() error {
			stream := fmt.Sprintf("Process$%d-%d", len(ids), w)
			for i, id := range l {
				if !time.Now().Before(deadline) {
					break
				}
				if err := s.Link(gctx, stream, int64(i)-1, id); err != nil {
					return err
				}
				counts[w]++
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	n := 0
	for _, c := range counts {
		n += c
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// The replay log is a log of orders, each of which sees two facts that a process
// manager links into the order's process stream.
const (
	factA = "CustomerConfirmedMenu"
	factB = "CatererConfirmedMenu"
)

func orderStream(o int) string   { return "Order$" + strconv.Itoa(o) }
func processStream(o int) string { return "CateringMatch$" + strconv.Itoa(o) }

// orderEventType is the type of the order's k-th event: two of them are facts.
func orderEventType(k, perOrder int) string {
	switch k {
	case 0:
		return "OrderPlaced"
	case perOrder / 3:
		return factA
	case 2 * perOrder / 3:
		return factB
	}
	return "OrderChanged"
}

// runReplayLog loads the replay log with syncing off (untimed), reopens the store
// durable, and measures disk use, process-stream replay and the $all scan.
func runReplayLog(ctx context.Context, peer Peer, p Params, gen *generator, dir string, r *Result, logf func(string, ...any)) error {
	d, err := subdir(dir, "replay")
	if err != nil {
		return err
	}
	defer os.RemoveAll(d)
	s, err := peer.Open(ctx, d, OpenOptions{NoSync: true})
	if err != nil {
		return err
	}
	start := time.Now()
	err = loadOrders(ctx, s, p, gen)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("load replay log: %w", err)
	}
	events := p.Orders * p.EventsPerOrder
	logf("%s: loaded %d events in %d order streams (+%d links) in %v", peer.Name, events, p.Orders, 2*p.Orders, time.Since(start).Round(time.Millisecond))

	if s, err = peer.Open(ctx, d, OpenOptions{}); err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	defer s.Close()
	size, err := s.DiskBytes(ctx)
	if err != nil {
		return err
	}
	r.Figures[DiskPerEvent] = float64(size) / float64(events)
	logf("%s: %s: %.0f %s", peer.Name, DiskPerEvent.Name(p), r.Figures[DiskPerEvent], DiskPerEvent.Unit())

	syscall.Sync()
	mean, p99, err := replay(ctx, s, p)
	if err != nil {
		return err
	}
	r.Figures[ReplayMean], r.Figures[ReplayP99] = mean, p99
	logf("%s: PM replay of %d process streams: mean %.1f µs, p99 %.1f µs", peer.Name, p.Replays, mean, p99)

	rate, err := scan(ctx, s, events)
	if err != nil {
		return err
	}
	r.Figures[Scan] = rate
	logf("%s: %s: %.0f %s", peer.Name, Scan.Name(p), rate, Scan.Unit())
	return s.Close()
}

// loadOrders writes the replay log in rounds: round k appends the k-th event of
// every order, so an order's events lie far apart in the log, as they would in
// production; a fact is linked into its process stream right after it is appended.
func loadOrders(ctx context.Context, s Store, p Params, gen *generator) error {
	for k := range p.EventsPerOrder {
		typ := orderEventType(k, p.EventsPerOrder)
		g, gctx := errgroup.WithContext(ctx)
		for w := range p.LoadWorkers {
			g.Go(func() error {
				for o := w; o < p.Orders; o += p.LoadWorkers {
					e := gen.event(uuid.Must(uuid.NewV7()), typ, strconv.Itoa(o))
					if err := s.Append(gctx, orderStream(o), int64(k)-1, e); err != nil {
						return err
					}
					switch typ {
					case factA:
						err := s.Link(gctx, processStream(o), NoStream, e.ID)
						if err != nil {
							return err
						}
					case factB:
						if err := s.Link(gctx, processStream(o), 0, e.ID); err != nil {
							return err
						}
					}
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
	}
	return nil
}

// errReplay reports a process stream that did not read back as written.
var errReplay = errors.New("process stream read back wrong")

// replay reads p.Replays random process streams whole, as a process manager
// rebuilding its state does, and returns the mean and 99th percentile time per
// stream in microseconds.
func replay(ctx context.Context, s Store, p Params) (mean, p99 float64, err error) {
	rng := rand.New(rand.NewPCG(p.Seed, 1))
	took := make([]time.Duration, p.Replays)
	var total time.Duration
	for i := range took {
		o := rng.IntN(p.Orders)
		start := time.Now()
		events, err := s.ReadStream(ctx, processStream(o))
		took[i] = time.Since(start)
		total += took[i]
		if err != nil {
			return 0, 0, err
		}
		if err := checkProcess(events, o); err != nil {
			return 0, 0, err
		}
	}
	slices.Sort(took)
	p99i := min(len(took)-1, len(took)*99/100)
	return float64(total.Microseconds()) / float64(len(took)), float64(took[p99i].Nanoseconds()) / 1e3, nil
}

func checkProcess(events []Event, o int) error {
	if len(events) != 2 || events[0].Type != factA || events[1].Type != factB {
		types := make([]string, len(events))
		for i, e := range events {
			types[i] = e.Type
		}
		return fmt.Errorf("%w: %s holds %v, want [%s %s]", errReplay, processStream(o), types, factA, factB)
	}
	for _, e := range events {
		if got := e.Data["order_id"]; got != strconv.Itoa(o) {
			return fmt.Errorf("%w: %s: event %s has order_id %v", errReplay, processStream(o), e.ID, got)
		}
	}
	return nil
}

// scan reads the whole log and returns events per second, checking it saw all
// want events.
func scan(ctx context.Context, s Store, want int) (float64, error) {
	n := 0
	start := time.Now()
	err := s.ScanAll(ctx, func(e Event) error {
		if e.Data == nil {
			return fmt.Errorf("$all scan: event %s has no data", e.ID)
		}
		n++
		return nil
	})
	rate := float64(n) / time.Since(start).Seconds()
	if err != nil {
		return 0, fmt.Errorf("$all scan: %w", err)
	}
	if n != want {
		return 0, fmt.Errorf("$all scan: read %d events, want %d", n, want)
	}
	return rate, nil
}

// generator makes events whose data encodes, as JSON, to exactly EventSize bytes.
type generator struct {
	size  int
	bytes string // random letters the payloads are cut from
	mu    sync.Mutex
	rng   *rand.Rand
}

func newGenerator(p Params) *generator {
	rng := rand.New(rand.NewPCG(p.Seed, 2))
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 4*p.EventSize)
	for i := range b {
		b[i] = letters[rng.IntN(len(letters))]
	}
	return &generator{size: p.EventSize, bytes: string(b), rng: rng}
}

// event returns an event of type typ whose data is {"order_id": order, "payload": …}.
func (g *generator) event(id uuid.UUID, typ, order string) Event {
	base, _ := json.Marshal(map[string]any{"order_id": order, "payload": ""})
	n := max(g.size-len(base), 0)
	g.mu.Lock()
	off := g.rng.IntN(len(g.bytes) - n + 1)
	g.mu.Unlock()
	return Event{ID: id, Type: typ, Data: map[string]any{"order_id": order, "payload": g.bytes[off : off+n]}}
}
