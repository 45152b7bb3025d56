package cluster

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/pmd-dev/pmd"
)

// BenchmarkWriteAmplification measures what a replicated write costs the disk of one node,
// in bytes handed to the kernel (wchar of /proc/self/io) per event, for the parts of the
// choice docs/cluster.md explains:
//
//   - store: the pmd store applying the write (its log record, its index), fsynced as a
//     single node's is;
//   - store-replica: the same write applied by a cluster node's store, without fsync;
//   - raft-boltdb: the Raft entry that carries the write in raft-boltdb (bbolt pages, its
//     freelist and meta page rewritten at each commit), the Raft log before logStore;
//   - raftlog: the same entry in logStore, the Raft log on tidwall/wal segments.
//
// Each sub-benchmark writes one event per Raft batch (1 writer) and 16 (16 writers),
// with fsync. Run: go test -run '^$' -bench WriteAmplification ./cluster/
func BenchmarkWriteAmplification(b *testing.B) {
	entry := sampleEntry(b)
	for _, batch := range []int{1, 16} {
		name := "/batch=" + strconv.Itoa(batch)
		b.Run("store"+name, func(b *testing.B) {
			s, err := pmd.Open(b.TempDir(), pmd.Options{NoScrub: true})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			evs := make([]pmd.EventData, batch)
			for i := range evs {
				evs[i] = pmd.EventData{Type: "OrderPlaced", Data: map[string]any{"order_id": "42", "amount": 1999, "currency": "EUR"}}
			}
			measure(b, batch, func() error {
				// One append of batch events: one log write and fsync, as the committer
				// makes for a Raft batch of that many writes.
				_, err := s.Append(context.Background(), "Order$42", pmd.Any, evs...)
				return err
			})
		})
		b.Run("store-replica"+name, func(b *testing.B) {
			// The same write applied by a cluster node's store: not fsynced (Raft's log
			// holds the entry until the store syncs at a snapshot).
			capture := capturer(b)
			s, err := pmd.Open(b.TempDir(), pmd.Options{NoScrub: true})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if _, err := s.SetReplicator(func(context.Context, []byte) (pmd.WriteResult, error) {
				return pmd.WriteResult{}, errors.New("not through Raft")
			}); err != nil {
				b.Fatal(err)
			}
			writes := make([][]byte, b.N*batch) // encoded before the clock starts
			for i := range writes {
				writes[i] = capture()
			}
			ws := make([]pmd.ReplicatedWrite, batch)
			next := uint64(1)
			measure(b, batch, func() error {
				for i := range ws {
					ws[i] = pmd.ReplicatedWrite{Index: next, Timestamp: time.Now().UnixNano(), Write: writes[next-1]}
					next++
				}
				for _, o := range s.ApplyWrites(context.Background(), ws) {
					if o.Err != nil {
						return o.Err
					}
				}
				return nil
			})
		})
		b.Run("raft-boltdb"+name, func(b *testing.B) {
			st, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(b.TempDir(), "raft.db")})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			next := uint64(1)
			logs := make([]*raft.Log, batch)
			measure(b, batch, func() error {
				for i := range logs {
					logs[i] = &raft.Log{Index: next, Term: 1, Type: raft.LogCommand, Data: entry}
					next++
				}
				return st.StoreLogs(logs)
			})
		})
		b.Run("raftlog"+name, func(b *testing.B) {
			st, err := openLogStore(b.TempDir(), false, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			next := uint64(1)
			logs := make([]*raft.Log, batch)
			measure(b, batch, func() error {
				for i := range logs {
					logs[i] = &raft.Log{Index: next, Term: 1, Type: raft.LogCommand, Data: entry, AppendedAt: time.Now()}
					next++
				}
				return st.StoreLogs(logs)
			})
		})
	}
}

// measure runs write b.N times, each writing batch events, and reports the bytes handed
// to the kernel per event.
func measure(b *testing.B, batch int, write func() error) {
	b.Helper()
	before := wchar(b)
	b.ResetTimer()
	for range b.N {
		if err := write(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(wchar(b)-before)/float64(b.N*batch), "disk-B/event")
}

// wchar is the bytes this process has handed to write(2) and friends so far.
func wchar(b *testing.B) uint64 {
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Skip("no /proc/self/io: ", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
	}
	b.Skip("no wchar in /proc/self/io")
	return 0
}

// sampleEntry is the Raft entry a leader makes for one append of an OrderPlaced event:
// the write as the store encodes it for its replicator.
func sampleEntry(b *testing.B) []byte {
	return append([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0}, capturer(b)()...) // kind and timestamp, about
}

// capturer returns a function that returns, at each call, the write a store encodes for
// its replicator for one append of an OrderPlaced event with a fresh id.
func capturer(b *testing.B) func() []byte {
	s, err := pmd.Open(b.TempDir(), pmd.Options{NoSync: true, NoScrub: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	var write []byte
	errGot := errors.New("got it")
	if _, err := s.SetReplicator(func(_ context.Context, w []byte) (pmd.WriteResult, error) {
		write = w
		return pmd.WriteResult{}, errGot
	}); err != nil {
		b.Fatal(err)
	}
	return func() []byte {
		_, err := s.Append(context.Background(), "Order$42", pmd.Any, pmd.EventData{Type: "OrderPlaced", Data: map[string]any{"order_id": "42", "amount": 1999, "currency": "EUR"}})
		if !errors.Is(err, errGot) {
			b.Fatal(err)
		}
		return write
	}
}
