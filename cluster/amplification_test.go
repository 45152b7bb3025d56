package cluster_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/pmd-dev/pmd"
	"github.com/tidwall/wal"
)

// BenchmarkWriteAmplification measures what a replicated write costs the disk of one node,
// in bytes handed to the kernel (wchar of /proc/self/io) per event, for the parts of the
// choice docs/cluster.md explains:
//
//   - store: the pmd store applying the write (its log record, its index);
//   - raft-boltdb: the Raft entry that carries the write in raft-boltdb (bbolt pages, its
//     freelist and meta page rewritten at each commit);
//   - wal: the same entry appended to a tidwall/wal segment, as a Raft log kept on pmd's
//     own log (the alternative) would append it.
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
		b.Run("wal"+name, func(b *testing.B) {
			l, err := wal.Open(b.TempDir(), &wal.Options{NoSync: false, SegmentSize: 16 << 20, LogFormat: wal.Binary, NoCopy: true})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			next := uint64(1)
			var wb wal.Batch
			// A Raft entry in a segmented log: index, term and type in a small header,
			// then the data, as a LogStore on pmd's log would frame it.
			framed := append(make([]byte, 17), entry...)
			measure(b, batch, func() error {
				wb.Clear()
				for range batch {
					wb.Write(next, framed)
					next++
				}
				return l.WriteBatch(&wb)
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
	s, err := pmd.Open(b.TempDir(), pmd.Options{NoSync: true, NoScrub: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var entry []byte
	errGot := errors.New("got it")
	if _, err := s.SetReplicator(func(_ context.Context, w []byte) (pmd.WriteResult, error) {
		entry = append([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0}, w...) // kind and timestamp, about
		return pmd.WriteResult{}, errGot
	}); err != nil {
		b.Fatal(err)
	}
	_, err = s.Append(context.Background(), "Order$42", pmd.Any, pmd.EventData{Type: "OrderPlaced", Data: map[string]any{"order_id": "42", "amount": 1999, "currency": "EUR"}})
	if !errors.Is(err, errGot) {
		b.Fatal(err)
	}
	return entry
}
