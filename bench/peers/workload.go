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
	// WarmUp is how long each store replays process streams, untimed, after its
	// untimed round of replay and scan and before the timed rounds. A store reopened
	// after a bulk load may still be settling (filling caches and mappings, checking
	// what it opened, compacting); a process manager in a running system meets it
	// settled. Every store gets the same time.
	WarmUp time.Duration
	// LoadWorkers is the number of concurrent writers loading the replay log.
	LoadWorkers int
	// Rounds is how many times each timed workload runs against each peer, the
	// peers taking turns; a figure is the median of its rounds.
	Rounds int
	// Seed picks the replayed streams and the payload bytes: the same for every peer.
	Seed uint64
}

// FullParams are the sizes the issue asks for, with orders scaled by scale
// (1 = 100k orders, 1M events).
func FullParams(scale float64) Params {
	return Params{
		WriteFor:       3 * time.Second,
		Writers:        16,
		EventSize:      256,
		Orders:         max(int(100_000*scale), 10),
		EventsPerOrder: 10,
		Replays:        1000,
		WarmUp:         20 * time.Second,
		LoadWorkers:    8,
		Rounds:         3,
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
		Rounds:         1,
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
	case p.WarmUp < 0:
		return fmt.Errorf("peers: WarmUp must not be negative, got %v", p.WarmUp)
	case p.LoadWorkers < 1:
		return fmt.Errorf("peers: LoadWorkers must be at least 1, got %d", p.LoadWorkers)
	case p.Rounds < 1:
		return fmt.Errorf("peers: Rounds must be at least 1, got %d", p.Rounds)
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

// Run runs every workload against peer alone: RunAll with one peer.
func Run(ctx context.Context, peer Peer, p Params, dir string, logf func(format string, args ...any)) (Result, error) {
	rs, err := RunAll(ctx, []Peer{peer}, p, dir, logf)
	if err != nil {
		return Result{}, err
	}
	return rs[0], nil
}

// RunAll runs every workload against every peer, keeping their data under dir
// (which it empties as it goes), and returns one Result per peer, in order.
// logf, if not nil, receives progress lines.
//
// The peers take turns: each round runs a workload against every peer before the
// next round, and a figure is the median of its rounds. The machine's own noise
// (other processes, the disk's writeback) then falls on every peer alike instead
// of on whichever ran at a bad moment.
func RunAll(ctx context.Context, peers []Peer, p Params, dir string, logf func(format string, args ...any)) ([]Result, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	samples := make([][numMetrics][]float64, len(peers))
	record := func(i int, m Metric, v float64) {
		samples[i][m] = append(samples[i][m], v)
		logf("%s: %s: %s %s", peers[i].Name, m.Name(p), formatFigure(v), m.Unit())
	}
	gen := newGenerator(p)
	if err := runWrites(ctx, peers, p, gen, dir, record); err != nil {
		return nil, err
	}
	if err := runReplayLog(ctx, peers, p, gen, dir, record, logf); err != nil {
		return nil, err
	}
	out := make([]Result, len(peers))
	for i, peer := range peers {
		out[i] = Result{Peer: peer.Name, Version: peer.Version, Durability: peer.Durability}
		for m := range out[i].Figures {
			out[i].Figures[m] = median(samples[i][m])
		}
	}
	return out, nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// subdir makes a fresh directory for one store under dir.
func subdir(dir, name string) (string, error) {
	d, err := os.MkdirTemp(dir, name+"-")
	if err != nil {
		return "", fmt.Errorf("store dir: %w", err)
	}
	return d, nil
}

// openStores opens one fresh store per peer under dir.
func openStores(ctx context.Context, peers []Peer, dir, name string, opts OpenOptions) ([]Store, []string, error) {
	stores := make([]Store, 0, len(peers))
	dirs := make([]string, 0, len(peers))
	for _, peer := range peers {
		d, err := subdir(dir, name)
		if err == nil {
			var s Store
			if s, err = peer.Open(ctx, d, opts); err == nil {
				stores, dirs = append(stores, s), append(dirs, d)
				continue
			}
		}
		closeStores(stores, dirs)
		return nil, nil, fmt.Errorf("%s: open: %w", peer.Name, err)
	}
	return stores, dirs, nil
}

func closeStores(stores []Store, dirs []string) error {
	var errs []error
	for _, s := range stores {
		errs = append(errs, s.Close())
	}
	for _, d := range dirs {
		errs = append(errs, os.RemoveAll(d))
	}
	return errors.Join(errs...)
}

// runWrites times the durable append and link workloads, one fresh store per
// peer, fresh streams each round.
func runWrites(ctx context.Context, peers []Peer, p Params, gen *generator, dir string, record func(int, Metric, float64)) error {
	stores, dirs, err := openStores(ctx, peers, dir, "writes", OpenOptions{})
	if err != nil {
		return err
	}
	defer closeStores(stores, dirs)
	for round := range p.Rounds {
		for _, c := range []struct {
			append, link Metric
			writers      int
		}{{AppendOne, LinkOne, 1}, {AppendMany, LinkMany, p.Writers}} {
			for i, s := range stores {
				// Flush what earlier phases (and other peers) left for the kernel
				// to write back, so it does not land on this peer's timed fsyncs.
				syscall.Sync()
				prefix := fmt.Sprintf("%d-%d", round, c.writers)
				ids, rate, err := appendFor(ctx, s, gen, prefix, c.writers, p.WriteFor)
				if err != nil {
					return fmt.Errorf("%s: append, %d writers: %w", peers[i].Name, c.writers, err)
				}
				record(i, c.append, rate)
				syscall.Sync()
				if rate, err = linkFor(ctx, s, prefix, ids, p.WriteFor); err != nil {
					return fmt.Errorf("%s: link, %d writers: %w", peers[i].Name, c.writers, err)
				}
				record(i, c.link, rate)
			}
		}
	}
	return closeStores(stores, dirs)
}

// appendFor runs writers concurrent writers for d, each appending one event at a
// time to its own stream with an exact expected version. It returns the ids each
// writer appended and the events appended per second.
func appendFor(ctx context.Context, s Store, gen *generator, prefix string, writers int, d time.Duration) ([][]uuid.UUID, float64, error) {
	ids := make([][]uuid.UUID, writers)
	g, gctx := errgroup.WithContext(ctx)
	start := time.Now()
	deadline := start.Add(d)
	for w := range writers {
		g.Go(func() error {
			stream := fmt.Sprintf("Bench$%s-%d", prefix, w)
			for v := int64(0); time.Now().Before(deadline); v++ {
				e := gen.event(uuid.Must(uuid.NewV7()), "Benchmarked", stream)
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
func linkFor(ctx context.Context, s Store, prefix string, ids [][]uuid.UUID, d time.Duration) (float64, error) {
	counts := make([]int, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	start := time.Now()
	deadline := start.Add(d)
	for w, l := range ids {
		g.Go(func() error {
			stream := fmt.Sprintf("Process$%s-%d", prefix, w)
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

// runReplayLog loads the replay log into a store per peer with syncing off
// (untimed), reopens each durable, measures its disk use, then times
// process-stream replay and the $all scan, peers taking turns each round.
func runReplayLog(ctx context.Context, peers []Peer, p Params, gen *generator, dir string, record func(int, Metric, float64), logf func(string, ...any)) error {
	stores, dirs, err := openStores(ctx, peers, dir, "replay", OpenOptions{NoSync: true})
	if err != nil {
		return err
	}
	events := p.Orders * p.EventsPerOrder
	for i, s := range stores {
		start := time.Now()
		if err := loadOrders(ctx, s, p, gen); err != nil {
			closeStores(stores, dirs)
			return fmt.Errorf("%s: load replay log: %w", peers[i].Name, err)
		}
		logf("%s: loaded %d events in %d order streams (+%d links) in %v", peers[i].Name, events, p.Orders, 2*p.Orders, time.Since(start).Round(time.Millisecond))
	}
	for i, s := range stores {
		err := s.Close()
		if err == nil {
			stores[i], err = peers[i].Open(ctx, dirs[i], OpenOptions{})
		}
		if err != nil {
			closeStores(append(stores[:i], stores[i+1:]...), dirs)
			return fmt.Errorf("%s: reopen: %w", peers[i].Name, err)
		}
	}
	defer closeStores(stores, dirs)
	for i, s := range stores {
		size, err := s.DiskBytes(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", peers[i].Name, err)
		}
		record(i, DiskPerEvent, float64(size)/float64(events))
	}
	// One untimed round first, of other streams than the timed rounds read: a store
	// just reopened after a bulk load is still settling (an LSM compacts, caches and
	// mappings fill), which is not what a process manager meets in a running system.
	for i, s := range stores {
		if _, _, err := replay(ctx, s, p, uint64(p.Rounds)); err != nil {
			return fmt.Errorf("%s: warm-up: %w", peers[i].Name, err)
		}
		if _, err := scan(ctx, s, events); err != nil {
			return fmt.Errorf("%s: warm-up: %w", peers[i].Name, err)
		}
		// Then replays for p.WarmUp, of yet other streams than the timed rounds read.
		for k, end := uint64(1), time.Now().Add(p.WarmUp); time.Now().Before(end); k++ {
			if _, _, err := replay(ctx, s, p, uint64(p.Rounds)+k); err != nil {
				return fmt.Errorf("%s: warm-up: %w", peers[i].Name, err)
			}
		}
	}
	for round := range p.Rounds {
		for i, s := range stores {
			syscall.Sync()
			mean, p99, err := replay(ctx, s, p, uint64(round))
			if err != nil {
				return fmt.Errorf("%s: %w", peers[i].Name, err)
			}
			record(i, ReplayMean, mean)
			record(i, ReplayP99, p99)
			rate, err := scan(ctx, s, events)
			if err != nil {
				return fmt.Errorf("%s: %w", peers[i].Name, err)
			}
			record(i, Scan, rate)
		}
	}
	return closeStores(stores, dirs)
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

// replay reads p.Replays random process streams whole (other ones each round), as a process manager
// rebuilding its state does, and returns the mean and 99th percentile time per
// stream in microseconds.
func replay(ctx context.Context, s Store, p Params, round uint64) (mean, p99 float64, err error) {
	rng := rand.New(rand.NewPCG(p.Seed, 1+round))
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
