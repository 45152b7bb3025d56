package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	pmdlog "github.com/pmd-dev/pmd/log"
	"github.com/tidwall/wal"
	"github.com/vmihailenco/msgpack/v5"
	"golang.org/x/sys/unix"
)

// payload is the 256-byte event body every append benchmark writes.
var payload = map[string]any{"order_id": "0000000042", "pad": strings.Repeat("p", 226)}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// commitStats counts group commits and the time spent in their log writes.
type commitStats struct {
	n, nanos atomic.Int64
}

func openStore(b *testing.B, dir string, noSync bool, commits *commitStats) *pmd.Store {
	b.Helper()
	opts := pmd.Options{NoSync: noSync, Logger: quiet()}
	if commits != nil {
		opts.OnCommit = func(c pmd.CommitInfo) {
			commits.n.Add(1)
			commits.nanos.Add(int64(c.Duration))
		}
	}
	s, err := pmd.Open(dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func syncName(noSync bool) string {
	if noSync {
		return "nosync"
	}
	return "fsync"
}

// BenchmarkAppend appends one 256-byte event per op with 1 and 16 writers, fsync on and
// off, and reports events/s and log writes (fsyncs when on) per second. Baselines in the
// same run: BenchmarkRawWAL and BenchmarkDiskFsync.
func BenchmarkAppend(b *testing.B) {
	for _, noSync := range []bool{false, true} {
		for _, writers := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/writers=%d", syncName(noSync), writers), func(b *testing.B) {
				var commits commitStats
				s := openStore(b, b.TempDir(), noSync, &commits)
				defer s.Close()
				var stream atomic.Int64
				b.ResetTimer()
				start := time.Now()
				runWriters(b, writers, func() {
					name := fmt.Sprintf("Order$%d", stream.Add(1))
					if _, err := s.Append(context.Background(), name, pmd.Any, pmd.EventData{Type: "OrderPlaced", Data: payload}); err != nil {
						b.Error(err)
					}
				})
				secs := time.Since(start).Seconds()
				b.ReportMetric(float64(b.N)/secs, "events/s")
				n := float64(commits.n.Load())
				b.ReportMetric(n/secs, "commits/s")
				// How long one log write and fsync takes: it grows with the commit's size.
				b.ReportMetric(float64(commits.nanos.Load())/n/1e3, "µs/commit")
			})
		}
	}
}

// runWriters runs b.N calls of op spread over writers goroutines.
func runWriters(b *testing.B, writers int, op func()) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				op()
			}
		}()
	}
	wg.Wait()
}

// BenchmarkRawWAL writes the bytes of the same event records straight to tidwall/wal,
// one Write (and fsync when on) per record: the floor under BenchmarkAppend.
func BenchmarkRawWAL(b *testing.B) {
	for _, noSync := range []bool{false, true} {
		for _, writers := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/writers=%d", syncName(noSync), writers), func(b *testing.B) {
				w, err := wal.Open(b.TempDir(), &wal.Options{NoSync: noSync, SegmentSize: 64 << 20})
				if err != nil {
					b.Fatal(err)
				}
				defer w.Close()
				data, err := msgpack.Marshal(payload)
				if err != nil {
					b.Fatal(err)
				}
				rec := pmdlog.AppendRecord(nil, &pmdlog.Record{Kind: pmdlog.KindEvent, Commit: true, Event: pmdlog.Event{
					ID: uuid.New(), Stream: "Order$1000000", Type: "OrderPlaced", Timestamp: time.Now().UnixNano(), Data: data,
				}})
				var mu sync.Mutex // tidwall/wal wants consecutive indexes: take the next one under a lock
				var last uint64
				b.ResetTimer()
				start := time.Now()
				runWriters(b, writers, func() {
					mu.Lock()
					last++
					err := w.Write(last, rec)
					mu.Unlock()
					if err != nil {
						b.Error(err)
					}
				})
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
				b.SetBytes(int64(len(rec)))
			})
		}
	}
}

// BenchmarkDiskFsync is the disk's own rate: append 300 bytes to a file and fdatasync.
func BenchmarkDiskFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "f"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 300)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "fsyncs/s")
}

// bigLog is a store of logEvents events in logStreams streams, plus one 10-event stream
// whose events are spread evenly over the whole log, built once per benchmark process.
type bigLog struct {
	dir      string
	sparse   string // the scattered 10-event stream
	sparseID []uuid.UUID
	bytes    int64 // size of the log files
}

const (
	logEvents  = 1_000_000
	logStreams = 100_000
)

var (
	bigOnce sync.Once
	big     bigLog
	bigErr  error
)

func getBigLog(b *testing.B) *bigLog {
	if testing.Short() {
		b.Skip("builds a 1M-event log")
	}
	bigOnce.Do(func() { bigErr = buildBigLog(&big) })
	if bigErr != nil {
		b.Fatal(bigErr)
	}
	return &big
}

func buildBigLog(l *bigLog) error {
	dir, err := os.MkdirTemp("", "pmd-bench-1m")
	if err != nil {
		return err
	}
	l.dir, l.sparse = dir, "Sparse$1"
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quiet(), IndexFlushEvery: 1 << 30})
	if err != nil {
		return err
	}
	ctx := context.Background()
	const writers = 8
	every := logEvents / 10
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	var mu sync.Mutex
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < logEvents; i += writers {
				stream := fmt.Sprintf("Order$%d", i%logStreams)
				if i%every == 0 {
					stream = l.sparse
				}
				e := pmd.EventData{ID: uuid.New(), Type: "OrderPlaced", Data: payload}
				if _, err := s.Append(ctx, stream, pmd.Any, e); err != nil {
					errs <- err
					return
				}
				if stream == l.sparse {
					mu.Lock()
					l.sparseID = append(l.sparseID, e.ID)
					mu.Unlock()
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	if err := s.Close(); err != nil {
		return err
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "log", "[0-9]*[0-9]"))
	for _, seg := range segs {
		if fi, err := os.Stat(seg); err == nil {
			l.bytes += fi.Size()
		}
	}
	return nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	if big.dir != "" {
		os.RemoveAll(big.dir)
	}
	os.Exit(code)
}

// BenchmarkReplay reads the 10-event stream scattered over the 1M-event log, warm (store
// open, pages cached) and cold (store just opened, segment pages dropped from the page
// cache). Baseline: tidwall/wal's own Read of the same 10 positions, which loads whole
// segments.
func BenchmarkReplay(b *testing.B) {
	l := getBigLog(b)
	ctx := context.Background()
	replay := func(b *testing.B, s *pmd.Store) {
		n := 0
		for _, err := range s.ReadStream(ctx, l.sparse, pmd.ReadOptions{}) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 10 {
			b.Fatalf("replayed %d events, want 10", n)
		}
	}
	b.Run("pmd/warm", func(b *testing.B) {
		s := openStore(b, l.dir, true, nil)
		defer s.Close()
		replay(b, s)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			replay(b, s)
		}
	})
	b.Run("pmd/cold", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			dropCache(b, l.dir)
			s := openStore(b, l.dir, true, nil)
			b.StartTimer()
			replay(b, s)
			b.StopTimer()
			s.Close()
			b.StartTimer()
		}
	})
	positions := sparsePositions(b, l)
	for _, cold := range []bool{false, true} {
		name := "tidwall-wal.Read/warm"
		if cold {
			name = "tidwall-wal.Read/cold"
		}
		b.Run(name, func(b *testing.B) {
			w, err := wal.Open(filepath.Join(l.dir, "log"), &wal.Options{NoSync: true, SegmentSize: 64 << 20})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if cold {
					b.StopTimer()
					w.ClearCache()
					dropCache(b, l.dir)
					b.StartTimer()
				}
				for _, pos := range positions {
					if _, err := w.Read(pos); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

func sparsePositions(b *testing.B, l *bigLog) []uint64 {
	s := openStore(b, l.dir, true, nil)
	defer s.Close()
	var out []uint64
	for e, err := range s.ReadStream(context.Background(), l.sparse, pmd.ReadOptions{}) {
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, e.Position)
	}
	return out
}

// dropCache evicts the log's pages from the OS page cache, so the next read goes to disk.
func dropCache(b *testing.B, dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "log", "*"))
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			b.Fatal(err)
		}
		unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		f.Close()
	}
}

// BenchmarkScanAll reads all of $all; baseline: reading the segment files' bytes.
func BenchmarkScanAll(b *testing.B) {
	l := getBigLog(b)
	b.Run("pmd", func(b *testing.B) {
		s := openStore(b, l.dir, true, nil)
		defer s.Close()
		b.SetBytes(l.bytes)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			n := 0
			for _, err := range s.ReadAll(context.Background(), pmd.ReadOptions{}) {
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != logEvents {
				b.Fatalf("scanned %d events, want %d", n, logEvents)
			}
		}
	})
	b.Run("read-files", func(b *testing.B) {
		segs, _ := filepath.Glob(filepath.Join(l.dir, "log", "[0-9]*[0-9]"))
		b.SetBytes(l.bytes)
		for i := 0; i < b.N; i++ {
			for _, seg := range segs {
				if _, err := os.ReadFile(seg); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkOpen opens the 1M-event store with its index and without one (the index
// rebuilt from the log).
func BenchmarkOpen(b *testing.B) {
	l := getBigLog(b)
	idx := filepath.Join(l.dir, "index")
	for _, withIndex := range []bool{true, false} {
		name := "index"
		if !withIndex {
			name = "rebuild"
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if !withIndex {
					os.RemoveAll(idx)
				}
				b.StartTimer()
				s := openStore(b, l.dir, true, nil)
				b.StopTimer()
				s.Close() // flushes the index
				b.StartTimer()
			}
		})
	}
}

// BenchmarkIndexMemory reports the heap the store holds per indexed event once the
// 1M-event store is open, beside the 24 bytes of a bare id and position.
func BenchmarkIndexMemory(b *testing.B) {
	l := getBigLog(b)
	for i := 0; i < b.N; i++ {
		before := heap()
		s := openStore(b, l.dir, true, nil)
		after := heap()
		perEvent := float64(after-before) / logEvents
		b.ReportMetric(perEvent, "B/event")
		b.ReportMetric(perEvent/24, "x-id+pos")
		runtime.KeepAlive(s)
		s.Close()
	}
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkSegmentSize writes b.N event records to the log (package log, fsync off so
// that the CPU is what is measured), in commits of 16 as the store's group commit makes
// them, with each segment size in turn, and reports the CPU time each costs per record and
// as a ratio to 16 MiB. tidwall/wal keeps the newest segment in memory in one slice that
// grows as records come, and growing it to 64 MiB copies it again and again into fresh
// memory on the commit path; small segments pay for sealing (an fsync, a new file, an
// offsets sidecar) more often. The store's default, 4 MiB, was chosen on durable 16-writer
// appends and their stalls (bench/README.md, "Session 5"), where the copies also stall
// the writers: CPU time alone, as here, does not show that.
func BenchmarkSegmentSize(b *testing.B) {
	data, err := msgpack.Marshal(payload)
	if err != nil {
		b.Fatal(err)
	}
	sizes := []int{64 << 20, 16 << 20, 4 << 20, 1 << 20}
	cpu := make(map[int]float64, len(sizes))
	for _, size := range sizes {
		l, err := pmdlog.Open(b.TempDir(), pmdlog.Options{NoSync: true, SegmentSize: size})
		if err != nil {
			b.Fatal(err)
		}
		recs := make([]pmdlog.Record, 16)
		before := cpuTime(b)
		for pos := uint64(1); pos <= uint64(b.N); {
			recs = recs[:min(16, uint64(b.N)+1-pos)]
			for i := range recs {
				recs[i] = pmdlog.Record{Kind: pmdlog.KindEvent, Position: pos, Commit: i == len(recs)-1, Event: pmdlog.Event{
					ID: uuid.New(), Stream: "Order$1000000", Type: "OrderPlaced", Timestamp: 1, Data: data,
				}}
				pos++
			}
			if err := l.Write(recs); err != nil {
				b.Fatal(err)
			}
		}
		cpu[size] = float64(cpuTime(b)-before) / 1e3 / float64(b.N)
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
	}
	for _, size := range sizes {
		b.ReportMetric(cpu[size], fmt.Sprintf("cpu-µs/record@%dMiB", size>>20))
		b.ReportMetric(cpu[size]/cpu[16<<20], fmt.Sprintf("x16MiB@%dMiB", size>>20))
	}
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
