package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// The process-manager benchmarks run the catering example end to end: appenders write
// confirmations to the store (fsync on), a process manager handles them, and a
// subscriber sees each ConfirmOrder land in the store. Two process managers run the
// same logic side by side, with the same subscription and the same sharding of
// processes over workers:
//
//   - state=stream: package pm, its state the replay of CateringMatch$<order>, each
//     handled fact linked there together with what it decides, in one write;
//   - state=table: the classical version, its state a map guarded by a mutex and
//     persisted to a file with an fsync per change, its commands appended to the store.
//
// Each op completes one order and opens another, so the number of open processes stays
// where the setup put it: 2 handled events and 1 command per op.

const (
	pmAppenders = 64 // concurrent writers of confirmations
	pmBatch     = 8  // ops per append in the throughput runs, so that appending is never the bottleneck
	pmWorkers   = 32 // of both process managers
	pmTimeout   = 48 * time.Hour
)

// BenchmarkCateringMatch runs each process manager in two ways on the same store:
//
//   - throughput: pmAppenders appenders write as fast as they can, pmBatch facts per
//     append; it reports events
//     handled per second end to end (from the append of the first fact of the round to
//     the last command written), and for state=stream that rate as a multiple of
//     state=table's in the same run (x-table);
//   - latency: one appender completes one order at a time and waits for its command; it
//     reports the time from the completing fact being acknowledged to its ConfirmOrder
//     being in the store, p50 and p99.
//
// The baseline for the latencies is the disk's own: fsync reports the p50 and p99 of
// one small write and fsync, on the same file system in the same run.
func BenchmarkCateringMatch(b *testing.B) {
	b.Run("fsync", benchFsyncLatency)
	for _, open := range []int{1_000, 100_000} {
		var tableRate float64
		for _, state := range []string{"table", "stream"} {
			var fx *pmFixture
			b.Run(fmt.Sprintf("open=%d/state=%s/throughput", open, state), func(b *testing.B) {
				if fx == nil {
					fx = newPMFixture(b, state, open)
				}
				rate := fx.throughput(b)
				if state == "table" {
					tableRate = rate
				} else if tableRate > 0 {
					b.ReportMetric(rate/tableRate, "x-table")
				}
			})
			b.Run(fmt.Sprintf("open=%d/state=%s/latency", open, state), func(b *testing.B) {
				if fx == nil {
					fx = newPMFixture(b, state, open)
				}
				fx.latency(b)
			})
			if fx != nil {
				fx.close(b)
			}
		}
	}
}

// benchPM is a process manager under benchmark.
type benchPM interface {
	run(ctx context.Context) error
	// idle waits until every handled event in the store is handled.
	idle(ctx context.Context) error
}

func pmOrder(i int) string { return fmt.Sprintf("o%09d", i) }

func pmCatering() pm.Definition[cateringState] {
	return pm.Definition[cateringState]{
		Name:      "CateringMatch",
		Handles:   []string{"CustomerConfirmedMenu", "CatererConfirmedMenu"},
		ProcessID: pm.DataField("order_id"),
		Init:      func(id string) cateringState { return cateringState{ID: id} },
		Apply: func(s cateringState, e pmd.Event) cateringState {
			if e.Link && s.Started.IsZero() {
				s.Started = e.Timestamp
			}
			switch e.Type {
			case "CustomerConfirmedMenu":
				s.Customer = true
			case "CatererConfirmedMenu":
				s.Caterer = true
			case "CancelOrder":
				s.Cancelled = true
			}
			return s
		},
		Decide: func(s cateringState) []pm.Command {
			data := map[string]any{"order_id": s.ID}
			switch {
			case s.Cancelled:
				return nil
			case s.Customer && s.Caterer:
				return []pm.Command{{Type: "ConfirmOrder", Data: data}}
			default:
				return []pm.Command{{Type: "CancelOrder", Data: data, At: s.Started.Add(pmTimeout)}}
			}
		},
	}
}

type cateringState struct {
	ID                           string
	Customer, Caterer, Cancelled bool
	Started                      time.Time
}

// streamPM is package pm.
type streamPM struct{ m *pm.Manager }

func (p streamPM) run(ctx context.Context) error  { return p.m.Run(ctx) }
func (p streamPM) idle(ctx context.Context) error { return p.m.WaitIdle(ctx) }

// pmFixture is a store with open orders waiting for their second confirmation and a
// process manager running on it. It lives across the rounds of one sub-benchmark.
type pmFixture struct {
	dir    string
	state  string
	store  *pmd.Store
	table  *tablePM
	stop   func() error
	open   int
	done   int // orders completed by earlier rounds
	landed chan landed
	cancel context.CancelFunc
	watch  sync.WaitGroup
}

// landed is a ConfirmOrder seen by the subscriber.
type landed struct {
	order int
	at    time.Time
}

func newPMFixture(b *testing.B, state string, open int) *pmFixture {
	b.Helper()
	dir, err := os.MkdirTemp("", "pmbench-")
	if err != nil {
		b.Fatal(err)
	}
	fx := &pmFixture{dir: dir, state: state, open: open}
	// Open the orders with syncing off, then reopen with fsync for the measured part.
	s := openStore(b, filepath.Join(dir, "store"), true, nil)
	p, stop := fx.start(b, s, false)
	facts := make([]pmd.EventData, 0, 1000)
	for i := range open {
		facts = append(facts, pmd.EventData{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": pmOrder(i)}})
		if len(facts) == cap(facts) || i == open-1 {
			if _, err := s.Append(context.Background(), "Setup", pmd.Any, facts...); err != nil {
				b.Fatal(err)
			}
			facts = facts[:0]
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := p.idle(ctx); err != nil {
		b.Fatalf("setup: %v", err)
	}
	if err := stop(); err != nil {
		b.Fatal(err)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}

	fx.store = openStore(b, filepath.Join(dir, "store"), false, nil)
	from := fx.store.LastPosition() + 1
	p, fx.stop = fx.start(b, fx.store, true)
	if err := p.idle(ctx); err != nil {
		b.Fatalf("setup: %v", err)
	}
	watch, cancelWatch := context.WithCancel(context.Background())
	fx.cancel = cancelWatch
	fx.landed = make(chan landed, 1<<16)
	fx.watch.Add(1)
	go func() {
		defer fx.watch.Done()
		for e, err := range fx.store.Subscribe(watch, pmd.SubscribeOptions{Types: []string{"ConfirmOrder"}, From: from}) {
			if err != nil {
				return
			}
			id, _ := e.Data["order_id"].(string)
			n, _ := strconv.Atoi(strings.TrimPrefix(id, "o"))
			fx.landed <- landed{n, time.Now()}
		}
	}()
	return fx
}

// start runs the fixture's process manager on s; syncing says whether the table
// version fsyncs its file.
func (fx *pmFixture) start(b *testing.B, s *pmd.Store, syncing bool) (benchPM, func() error) {
	b.Helper()
	var p benchPM
	switch fx.state {
	case "stream":
		m, err := pm.New(s, pmCatering(), pm.Options{Workers: pmWorkers, Logger: quiet()})
		if err != nil {
			b.Fatal(err)
		}
		p = streamPM{m}
	case "table":
		if fx.table == nil {
			t, err := openTablePM(filepath.Join(fx.dir, "table"))
			if err != nil {
				b.Fatal(err)
			}
			fx.table = t
		}
		fx.table.store, fx.table.sync = s, syncing
		p = fx.table
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.run(ctx) }()
	return p, func() error {
		cancel()
		return <-done
	}
}

func (fx *pmFixture) close(b *testing.B) {
	fx.cancel()
	if err := fx.stop(); err != nil {
		b.Error(err)
	}
	if fx.table != nil {
		fx.table.file.Close()
	}
	fx.store.Close()
	fx.watch.Wait()
	os.RemoveAll(fx.dir)
}

// ops completes orders base+k… and opens orders open+base+k… for n ops from k,
// appending the opening facts in one append to stream, then the completing ones in
// another. It returns when the completing facts are acknowledged.
func (fx *pmFixture) ops(stream string, base, k, n int) error {
	opening := make([]pmd.EventData, n)
	completing := make([]pmd.EventData, n)
	for j := range n {
		i := base + k + j
		opening[j] = pmd.EventData{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": pmOrder(fx.open + i)}}
		completing[j] = pmd.EventData{Type: "CatererConfirmedMenu", Data: map[string]any{"order_id": pmOrder(i)}}
	}
	if _, err := fx.store.Append(context.Background(), stream, pmd.Any, opening...); err != nil {
		return err
	}
	_, err := fx.store.Append(context.Background(), stream, pmd.Any, completing...)
	return err
}

// await returns when the ConfirmOrder of order base+k is in the store, and when it was
// seen.
func (fx *pmFixture) await(b *testing.B, base, n int, timeout <-chan time.Time, errs <-chan error) landed {
	select {
	case l := <-fx.landed:
		if k := l.order - base; k < 0 || k >= n {
			b.Fatalf("ConfirmOrder for order %d, outside this round", l.order)
		}
		return l
	case err := <-errs:
		b.Fatal(err)
	case <-timeout:
		b.Fatal("the commands of the round were not all written after 5 minutes")
	}
	return landed{}
}

// throughput does b.N ops with pmAppenders concurrent appenders and returns the events
// handled per second.
func (fx *pmFixture) throughput(b *testing.B) float64 {
	base := fx.done
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, pmAppenders)
	timeout := time.NewTimer(5 * time.Minute)
	defer timeout.Stop()
	b.ResetTimer()
	begin := time.Now()
	for w := range pmAppenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := fmt.Sprintf("Facts$%d", w)
			for k := int(next.Add(pmBatch)) - pmBatch; k < b.N; k = int(next.Add(pmBatch)) - pmBatch {
				if err := fx.ops(stream, base, k, min(pmBatch, b.N-k)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range b.N {
		fx.await(b, base, b.N, timeout.C, errs)
	}
	elapsed := time.Since(begin)
	b.StopTimer()
	wg.Wait()
	fx.done += b.N
	rate := float64(2*b.N) / elapsed.Seconds()
	b.ReportMetric(rate, "events/s")
	return rate
}

// latency does b.N ops one at a time, each waiting for its command, and reports the
// percentiles of the time from the completing fact's acknowledgement to its command,
// and, as the baseline of the same store at the same moments, of the append of the
// completing fact itself (append-p50-ms, append-p99-ms).
func (fx *pmFixture) latency(b *testing.B) {
	base := fx.done
	lat := make([]time.Duration, 0, b.N)
	appends := make([]time.Duration, 0, b.N)
	timeout := time.NewTimer(5 * time.Minute)
	defer timeout.Stop()
	b.ResetTimer()
	for k := range b.N {
		i := base + k
		opening := pmd.EventData{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": pmOrder(fx.open + i)}}
		if _, err := fx.store.Append(context.Background(), "Facts$latency", pmd.Any, opening); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		completing := pmd.EventData{Type: "CatererConfirmedMenu", Data: map[string]any{"order_id": pmOrder(i)}}
		if _, err := fx.store.Append(context.Background(), "Facts$latency", pmd.Any, completing); err != nil {
			b.Fatal(err)
		}
		acked := time.Now()
		l := fx.await(b, base, b.N, timeout.C, nil)
		if l.order != i {
			b.Fatalf("ConfirmOrder for order %d, waiting for %d", l.order, i)
		}
		lat = append(lat, l.at.Sub(acked))
		appends = append(appends, acked.Sub(start))
	}
	b.StopTimer()
	fx.done += b.N
	percentiles(b, lat, "")
	percentiles(b, appends, "append-")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// percentiles reports the p50 and p99 of lat, which it sorts, as <prefix>p50-ms and
// <prefix>p99-ms.
func percentiles(b *testing.B, lat []time.Duration, prefix string) {
	slices.Sort(lat)
	b.ReportMetric(ms(lat[len(lat)/2]), prefix+"p50-ms")
	b.ReportMetric(ms(lat[(len(lat)*99+99)/100-1]), prefix+"p99-ms")
}

// benchFsyncLatency times one 300-byte write and fsync of a file, b.N times.
func benchFsyncLatency(b *testing.B) {
	f, err := os.CreateTemp("", "pmbench-fsync-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	rec := make([]byte, 300)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := f.Write(rec); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	percentiles(b, lat, "")
}

// tablePM is the classical process manager: a map of orders guarded by a mutex, each
// change appended to a file and fsynced before the mutex is let go, and the command
// appended to the store once the row says the order is complete. It subscribes and
// shards exactly like package pm.
type tablePM struct {
	store *pmd.Store
	sync  bool
	file  *os.File

	mu   sync.Mutex
	rows map[string]*tableRow
	seen uint64 // position of the last event the reader took
	busy int    // events taken and not done
	woke chan struct{}
}

type tableRow struct {
	Order     string    `json:"order"`
	Customer  bool      `json:"customer"`
	Caterer   bool      `json:"caterer"`
	Due       time.Time `json:"due"`
	Confirmed bool      `json:"confirmed"`
}

func openTablePM(path string) (*tablePM, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	return &tablePM{file: f, rows: map[string]*tableRow{}, woke: make(chan struct{})}, nil
}

func (t *tablePM) run(ctx context.Context) error {
	t.mu.Lock()
	from := t.seen + 1
	t.mu.Unlock()
	shards := make([]chan pmd.Event, pmWorkers)
	var wg sync.WaitGroup
	errs := make(chan error, pmWorkers)
	for i := range shards {
		shards[i] = make(chan pmd.Event, 64)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case e := <-shards[i]:
					if err := t.handle(ctx, e); err != nil {
						if ctx.Err() == nil {
							errs <- err
						}
						return
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	defer wg.Wait()
	types := []string{"CustomerConfirmedMenu", "CatererConfirmedMenu"}
	for e, err := range t.store.Subscribe(ctx, pmd.SubscribeOptions{Types: types, From: from}) {
		if err != nil {
			return err
		}
		order, _ := e.Data["order_id"].(string)
		h := fnv.New32a()
		h.Write([]byte(order))
		t.mu.Lock()
		t.seen, t.busy = e.Position, t.busy+1
		t.mu.Unlock()
		select {
		case shards[h.Sum32()%pmWorkers] <- e:
		case err := <-errs:
			return err
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

func (t *tablePM) handle(ctx context.Context, e pmd.Event) error {
	order, _ := e.Data["order_id"].(string)
	t.mu.Lock()
	r := t.rows[order]
	if r == nil {
		r = &tableRow{Order: order, Due: e.Timestamp.Add(pmTimeout)}
		t.rows[order] = r
	}
	switch e.Type {
	case "CustomerConfirmedMenu":
		r.Customer = true
	case "CatererConfirmedMenu":
		r.Caterer = true
	}
	issue := r.Customer && r.Caterer && !r.Confirmed
	r.Confirmed = r.Confirmed || issue
	err := t.persist(r)
	t.mu.Unlock()
	if err == nil && issue {
		_, err = t.store.Append(ctx, "CateringMatch$"+order, pmd.Any, pmd.EventData{
			ID:       uuid.NewSHA1(uuid.NameSpaceOID, []byte("ConfirmOrder/"+order)),
			Type:     "ConfirmOrder",
			Data:     map[string]any{"order_id": order},
			Metadata: map[string]any{pmd.CausationID: e.ID.String(), pmd.CorrelationID: e.ID.String()},
		})
	}
	t.mu.Lock()
	t.busy--
	close(t.woke)
	t.woke = make(chan struct{})
	t.mu.Unlock()
	return err
}

// persist appends the row to the table file, and fsyncs it when syncing. Call with mu
// held.
func (t *tablePM) persist(r *tableRow) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := t.file.Write(append(line, '\n')); err != nil {
		return err
	}
	if t.sync {
		return t.file.Sync()
	}
	return nil
}

func (t *tablePM) idle(ctx context.Context) error {
	var last uint64
	types := []string{"CustomerConfirmedMenu", "CatererConfirmedMenu"}
	for e, err := range t.store.ReadAll(ctx, pmd.ReadOptions{From: pmd.End, Backward: true, Limit: 1, Types: types}) {
		if err != nil {
			return err
		}
		last = e.Position
	}
	for {
		t.mu.Lock()
		ok, woke := t.seen >= last && t.busy == 0, t.woke
		t.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-woke:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// BenchmarkCateringMatchStart measures what Run does before it handles anything with
// 100,000 open processes: read the checkpoint, read every record in category
// CateringMatch for the pending deadlines and the counts, list the process streams.
// Baseline in the same run: a bare read of the same category (scan).
func BenchmarkCateringMatchStart(b *testing.B) {
	const open = 100_000
	s := openStore(b, b.TempDir(), true, nil)
	defer s.Close()
	m, err := pm.New(s, pmCatering(), pm.Options{Workers: pmWorkers, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	facts := make([]pmd.EventData, 0, 1000)
	for i := range open {
		facts = append(facts, pmd.EventData{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": pmOrder(i)}})
		if len(facts) == cap(facts) {
			if _, err := s.Append(ctx, "Setup", pmd.Any, facts...); err != nil {
				b.Fatal(err)
			}
			facts = facts[:0]
		}
	}
	if err := m.WaitIdle(ctx); err != nil {
		b.Fatal(err)
	}
	stop()
	if err := <-done; err != nil {
		b.Fatal(err)
	}

	b.Run("scan", func(b *testing.B) {
		for range b.N {
			n := 0
			for _, err := range s.ReadCategory(context.Background(), "CateringMatch", pmd.ReadOptions{}) {
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != open {
				b.Fatalf("%d records in the category, want %d", n, open)
			}
		}
	})
	b.Run("start", func(b *testing.B) {
		for range b.N {
			m, err := pm.New(s, pmCatering(), pm.Options{Workers: pmWorkers, Logger: quiet()})
			if err != nil {
				b.Fatal(err)
			}
			ctx, stop := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- m.Run(ctx) }()
			if err := m.WaitIdle(ctx); err != nil {
				b.Fatal(err)
			}
			if c := m.Counts(); c.Open != open {
				b.Fatalf("counts %+v after start, want %d open", c, open)
			}
			stop()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		}
	})
}
