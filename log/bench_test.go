package log

import (
	"context"
	"math/rand"
	"testing"

	"github.com/tidwall/wal"
)

// benchRecord is a typical event: a few hundred bytes of data.
func benchRecord(pos uint64) Record {
	return Record{Position: pos, WriteStart: pos, Kind: KindEvent, Event: Event{
		ID: testID(pos), Stream: "Order$42", Version: pos, Type: "OrderPlaced",
		Timestamp: 1700000000000000000, Data: make([]byte, 300), Metadata: msgpackMap(1),
	}}
}

// BenchmarkWrite appends one record per Write without fsync; compare with
// BenchmarkRawWAL, which writes the same bytes straight to tidwall/wal.
func BenchmarkWrite(b *testing.B) {
	l := mustOpen(b, b.TempDir(), Options{NoSync: true})
	defer mustClose(b, l)
	recs := []Record{benchRecord(1)}
	b.SetBytes(int64(len(AppendRecord(nil, &recs[0]))))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		recs[0].Commit = true
		if err := l.Write(recs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawWAL is the baseline of BenchmarkWrite: the same encoded records written
// to tidwall/wal directly, one Write each.
func BenchmarkRawWAL(b *testing.B) {
	w, err := wal.Open(b.TempDir(), &wal.Options{NoSync: true, SegmentSize: defaultSegmentSize, SegmentCacheSize: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	r := benchRecord(1)
	var buf []byte
	b.SetBytes(int64(len(AppendRecord(nil, &r))))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Position, r.WriteStart = uint64(i+1), uint64(i+1)
		buf = AppendRecord(buf[:0], &r)
		if err := w.Write(uint64(i+1), buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRead reads random positions of a 32 MiB log in 2 MiB segments, with this
// package's Read (a copy from the mapped segment), with Read as it was before sealed
// segments were mapped (one pread), and, as the baseline, tidwall/wal's Read, which loads
// the whole segment of a position not in its two-segment cache: see B/op.
func BenchmarkRead(b *testing.B) {
	dir := b.TempDir()
	opts := Options{NoSync: true, SegmentSize: 2 << 20}
	l := mustOpen(b, dir, opts)
	const batch = 64
	for l.Segments()[len(l.Segments())-1].First < 16*(2<<20)/400 {
		recs := make([]Record, batch)
		for i := range recs {
			recs[i] = benchRecord(l.LastPosition() + uint64(i) + 1)
		}
		recs[batch-1].Commit = true
		if err := l.Write(recs); err != nil {
			b.Fatal(err)
		}
	}
	last := l.LastPosition()
	segments := len(l.Segments())
	mustClose(b, l)
	positions := make([]uint64, 4096)
	rng := rand.New(rand.NewSource(1))
	for i := range positions {
		positions[i] = 1 + uint64(rng.Int63n(int64(last)))
	}
	b.Logf("%d records in %d segments", last, segments)

	for _, mapped := range []bool{true, false} {
		name := "log/mmap"
		if !mapped {
			name = "log/pread"
		}
		b.Run(name, func(b *testing.B) {
			l := mustOpen(b, dir, opts)
			defer mustClose(b, l)
			l.files.noMap = !mapped
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := l.Read(positions[i%len(positions)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("tidwall-wal.Read", func(b *testing.B) {
		w, err := wal.Open(dir, &wal.Options{NoSync: true, SegmentSize: opts.SegmentSize})
		if err != nil {
			b.Fatal(err)
		}
		defer w.Close()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			data, err := w.Read(positions[i%len(positions)])
			if err != nil {
				b.Fatal(err)
			}
			if _, err := DecodeRecord(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkScan reads a whole log in order; see records/s.
func BenchmarkScan(b *testing.B) {
	dir := b.TempDir()
	l := mustOpen(b, dir, Options{NoSync: true, SegmentSize: 4 << 20})
	defer mustClose(b, l)
	for l.LastPosition() < 20000 {
		recs := make([]Record, 100)
		for i := range recs {
			recs[i] = benchRecord(l.LastPosition() + uint64(i) + 1)
		}
		recs[len(recs)-1].Commit = true
		if err := l.Write(recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var n int
	for i := 0; i < b.N; i++ {
		err := l.Scan(context.Background(), 1, func(Record) error { n++; return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkOpenSealed opens a log of 2M small records in 1 MiB segments (114 sealed
// segments). "lazy" is Open as it is: no sealed segment's sidecar is read. "eager" is
// the baseline, what Open cost when it loaded every sealed segment's offset table:
// Open, then a load of every table (kept, as Open kept them). Both close the log; see
// ns/op. On a 2-vCPU VM: lazy 2.5 ms and 1.3 MB/op, eager 23-25 ms and 18 MB/op, as
// Open was before tables were loaded lazily (22-26 ms, 18 MB/op). Lazy Open is the
// tail's parse, whatever the log's length.
func BenchmarkOpenSealed(b *testing.B) {
	const records = 2_000_000
	dir := b.TempDir()
	opts := Options{NoSync: true, SegmentSize: 1 << 20, Logger: quiet()}
	l := mustOpen(b, dir, opts)
	recs := make([]Record, 10_000)
	for l.LastPosition() < records {
		for i := range recs {
			pos := l.LastPosition() + uint64(i) + 1
			recs[i] = Record{Kind: KindEvent, Commit: i == len(recs)-1, Event: Event{
				ID: testID(pos), Stream: "s", Version: pos, Type: "t", Timestamp: int64(pos)}}
		}
		if err := l.Write(recs); err != nil {
			b.Fatal(err)
		}
	}
	segs := l.Segments()
	mustClose(b, l)
	b.Logf("%d records in %d segments", records, len(segs))

	open := func(b *testing.B, eager bool) {
		o := opts
		o.MaxLoadedSegments = len(segs)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			l := mustOpen(b, dir, o)
			if eager {
				l.mu.RLock()
				sealed := l.segs[:len(l.segs)-1]
				l.mu.RUnlock()
				for _, s := range sealed {
					if _, err := l.table(s); err != nil {
						b.Fatal(err)
					}
				}
			}
			mustClose(b, l)
		}
		b.ReportMetric(float64(len(segs)-1), "sealed-segments")
	}
	b.Run("lazy", func(b *testing.B) { open(b, false) })
	b.Run("eager", func(b *testing.B) { open(b, true) })
}
