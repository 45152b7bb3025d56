package peers

import (
	"bytes"
	"flag"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/report.golden.md")

func testReport() Report {
	p := FullParams(0.1)
	res := func(peer string, figures ...float64) Result {
		r := Result{Peer: peer, Version: peer + " 1.0", Durability: "fsync on for " + peer}
		copy(r.Figures[:], figures)
		return r
	}
	return Report{
		When:    time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC),
		Machine: Machine{Cores: 2, CPU: "Test CPU", GoVersion: "go1.26", Kernel: "linux 6.1"},
		Params:  p,
		Notes:   []string{"The replay log is scaled by 0.1."},
		Results: []Result{
			res("pmd", 2000, 10000, 2000, 12000, 15, 100, 500000, 370),
			res("bbolt", 1000, 500, 1500, 700, 20, 150, 250000, 1700),
			res("PostgreSQL", 2000, 1500, 1000, 2000, 300, 3000, 100000, 900),
		},
	}
}

// The golden file is what bench/results/peers.md looks like: a reader checks
// its layout there, the test keeps it from drifting.
func TestReportMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := testReport().WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "report.golden.md")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestReportMarkdown -update to create it)", err)
	}
	if b.String() != string(want) {
		t.Errorf("markdown differs from %s (go test -run TestReportMarkdown -update rewrites it):\n%s", golden, b.String())
	}
}

func TestReportRows(t *testing.T) {
	var b bytes.Buffer
	if err := testReport().WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"**Machine:** 2 cores (Test CPU), go1.26, linux 6.1.",
		"| append, 1 writer | events/s (higher is better) | 2,000 | 1,000 (×0.50) | 2,000 (×1.00) |",
		"| append, 16 writers | events/s (higher is better) | 10,000 | 500 (×0.05) | 1,500 (×0.15) |",
		"| PM replay, mean | µs/stream (lower is better) | 15.0 | 20.0 (×1.33) | 300 (×20.00) |",
		"| disk per event | bytes (lower is better) | 370 | 1,700 (×4.59) | 900 (×2.43) |",
		"| bbolt | bbolt 1.0 | fsync on for bbolt |",
		"- The replay log is scaled by 0.1.",
		"replay log of 100,000 events in 10,000 order streams",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q\n%s", want, md)
		}
	}
}

func TestAdvantage(t *testing.T) {
	for _, c := range []struct {
		m          Metric
		peer, base float64
		want       float64
	}{
		{AppendOne, 1000, 2000, 2},    // pmd twice as fast
		{AppendMany, 4000, 2000, 0.5}, // pmd half as fast: loses
		{ReplayMean, 300, 15, 20},     // pmd 20 times quicker
		{DiskPerEvent, 185, 370, 0.5}, // pmd twice as big: loses
		{Scan, 0, 100, 0},             // nothing measured
	} {
		if got := Advantage(c.m, c.peer, c.base); got != c.want {
			t.Errorf("Advantage(%s, %v, %v) = %v, want %v", c.m.Name(ShortParams()), c.peer, c.base, got, c.want)
		}
	}
}

func TestReportChart(t *testing.T) {
	var b bytes.Buffer
	if err := testReport().WriteChart(&b); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatalf("chart is not a PNG: %v", err)
	}
	if r := img.Bounds(); r.Dx() < 600 || r.Dy() < 300 {
		t.Errorf("chart is %v, want at least 600×300", r)
	}

	noPMD := testReport()
	noPMD.Results = noPMD.Results[1:]
	if err := noPMD.WriteChart(&b); err == nil || !strings.Contains(err.Error(), "pmd") {
		t.Errorf("chart without a pmd result: got %v, want an error naming pmd", err)
	}
}

func TestFormatFigure(t *testing.T) {
	for _, c := range []struct {
		v    float64
		want string
	}{{0, "0.00"}, {1.234, "1.23"}, {12.34, "12.3"}, {999.6, "1,000"}, {1234567, "1,234,567"}, {100, "100"}} {
		if got := formatFigure(c.v); got != c.want {
			t.Errorf("formatFigure(%v) = %q, want %q", c.v, got, c.want)
		}
	}
}
