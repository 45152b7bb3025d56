package peers

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Machine is what a run was measured on.
type Machine struct {
	Cores     int
	CPU       string
	GoVersion string
	Kernel    string
}

// ThisMachine describes the machine the process runs on.
func ThisMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), Kernel: "unknown", CPU: "unknown"}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = runtime.GOOS + " " + strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// Report is one run of every workload against every peer.
type Report struct {
	When    time.Time
	Machine Machine
	Params  Params
	// Notes are printed under the parameters: how the run was scaled, which peer
	// was skipped and why.
	Notes []string
	// Results holds one Result per peer; ratios are to the one named "pmd".
	Results []Result
}

// baseline is the result ratios are taken against, pmd's.
func (r Report) baseline() (Result, bool) {
	for _, res := range r.Results {
		if res.Peer == PMD().Name {
			return res, true
		}
	}
	return Result{}, false
}

// formatFigure prints a figure with a precision that suits its size.
func formatFigure(v float64) string {
	switch {
	case v >= 100:
		return groupThousands(strconv.FormatFloat(math.Round(v), 'f', 0, 64))
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func groupThousands(digits string) string {
	var b strings.Builder
	for i, c := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Ratio is a peer's figure divided by pmd's; 0 when pmd's figure is 0.
func Ratio(figure, pmd float64) float64 {
	if pmd == 0 {
		return 0
	}
	return figure / pmd
}

// WriteMarkdown writes the report as Markdown: machine, parameters, how each
// store was made durable, and the table of figures with their ratio to pmd.
func (r Report) WriteMarkdown(w io.Writer) error {
	var b bytes.Buffer
	p := r.Params
	fmt.Fprintf(&b, "# pmd and its peers, side by side\n\n")
	fmt.Fprintf(&b, "Measured %s by `make bench-peers` (`cd bench/peers && go run ./cmd/peers`).\n\n", r.When.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "**Machine:** %d cores (%s), %s, %s.\n\n", r.Machine.Cores, r.Machine.CPU, r.Machine.GoVersion, r.Machine.Kernel)
	fmt.Fprintf(&b, "**Parameters:** events of %d bytes of JSON data; append and link workloads run %v each, "+
		"with 1 and with %d concurrent writers, one event or link per durable write, each writer on its own stream "+
		"with an exact expected version; replay log of %s events in %s order streams, two facts of each order "+
		"linked into its process stream (%s links), written %d writers at a time with syncing off and reopened durable; "+
		"%s random process streams replayed, then one scan of the whole log, after one untimed round of both and %v of untimed replays. Each timed workload runs %d times "+
		"per store, the stores taking turns; a figure is the median.\n\n",
		p.EventSize, p.WriteFor, p.Writers, formatFigure(float64(p.Orders*p.EventsPerOrder)),
		formatFigure(float64(p.Orders)), formatFigure(float64(2*p.Orders)), p.LoadWorkers, formatFigure(float64(p.Replays)), p.WarmUp, p.Rounds)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("| store | version | durability |\n|---|---|---|\n")
	for _, res := range r.Results {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", res.Peer, res.Version, res.Durability)
	}
	b.WriteString("\n")
	r.writeTable(&b)
	_, err := w.Write(b.Bytes())
	return err
}

func (r Report) writeTable(b *bytes.Buffer) {
	base, haveBase := r.baseline()
	b.WriteString("| workload | unit |")
	for _, res := range r.Results {
		fmt.Fprintf(b, " %s |", res.Peer)
	}
	b.WriteString("\n|---|---|")
	for range r.Results {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, m := range Metrics() {
		better := "higher is better"
		if !m.HigherIsBetter() {
			better = "lower is better"
		}
		fmt.Fprintf(b, "| %s | %s (%s) |", m.Name(r.Params), m.Unit(), better)
		for _, res := range r.Results {
			v := res.Figures[m]
			if res.Peer == base.Peer || !haveBase {
				fmt.Fprintf(b, " %s |", formatFigure(v))
				continue
			}
			fmt.Fprintf(b, " %s (×%s) |", formatFigure(v), strconv.FormatFloat(Ratio(v, base.Figures[m]), 'f', 2, 64))
		}
		b.WriteString("\n")
	}
	if haveBase {
		b.WriteString("\n(×r) is the store's figure divided by pmd's.\n")
	}
}

// chartColors tell the peers apart in the chart.
var chartColors = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
}

// Advantage is how many times better pmd's figure is than the peer's: the ratio
// of peer to pmd for a metric where lower is better, of pmd to peer otherwise.
// Above 1, pmd wins.
func Advantage(m Metric, figure, pmd float64) float64 {
	if m.HigherIsBetter() {
		return Ratio(pmd, figure)
	}
	return Ratio(figure, pmd)
}

// WriteChart writes a PNG bar chart of pmd's advantage over each peer, per
// workload, on a log scale: a bar above 1 is a workload pmd wins, below 1 one it
// loses.
func (r Report) WriteChart(w io.Writer) error {
	base, ok := r.baseline()
	if !ok {
		return fmt.Errorf("peers: chart: no pmd result to compare with")
	}
	p := plot.New()
	p.Title.Text = "pmd's advantage over each store (above 1: pmd wins; log scale)"
	p.Y.Label.Text = "pmd ÷ store (speed), store ÷ pmd (time, bytes)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	names := make([]string, 0, numMetrics)
	for _, m := range Metrics() {
		names = append(names, strings.Replace(m.Name(r.Params), ", ", "\n", 1))
	}
	p.NominalX(names...)
	p.Legend.Top = true
	p.Legend.Left = false

	var peers []Result
	for _, res := range r.Results {
		if res.Peer != base.Peer {
			peers = append(peers, res)
		}
	}
	width := vg.Points(60) / vg.Length(max(len(peers), 1))
	lo, hi := 1.0, 1.0
	for i, res := range peers {
		bars := &advantageBars{width: width, color: chartColors[i%len(chartColors)]}
		bars.offset = (vg.Length(i) - vg.Length(len(peers)-1)/2) * width
		for _, m := range Metrics() {
			a := Advantage(m, res.Figures[m], base.Figures[m])
			if a <= 0 || math.IsInf(a, 0) || math.IsNaN(a) {
				a = 1 // nothing measured: no bar
			}
			bars.values = append(bars.values, a)
			lo, hi = math.Min(lo, a), math.Max(hi, a)
		}
		p.Add(bars)
		p.Legend.Add(res.Peer, bars)
	}
	p.Y.Min, p.Y.Max = lo/1.5, hi*1.5
	p.Add(oneLine{})
	wt, err := p.WriterTo(vg.Points(900), vg.Points(480), "png")
	if err != nil {
		return fmt.Errorf("peers: chart: %w", err)
	}
	if _, err := wt.WriteTo(w); err != nil {
		return fmt.Errorf("peers: chart: %w", err)
	}
	return nil
}

// advantageBars draws one peer's bars, each from 1 to its value, so that on a
// log axis a bar grows up where pmd wins and down where it loses.
type advantageBars struct {
	values []float64
	offset vg.Length
	width  vg.Length
	color  color.Color
}

func (b *advantageBars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for i, v := range b.values {
		x := trX(float64(i)) + b.offset
		y0, y1 := trY(1), trY(v)
		if y1 < y0 {
			y0, y1 = y1, y0
		}
		c.FillPolygon(b.color, c.ClipPolygonY([]vg.Point{
			{X: x - b.width/2, Y: y0}, {X: x + b.width/2, Y: y0},
			{X: x + b.width/2, Y: y1}, {X: x - b.width/2, Y: y1},
		}))
	}
}

func (b *advantageBars) DataRange() (xmin, xmax, ymin, ymax float64) {
	ymin, ymax = 1, 1
	for _, v := range b.values {
		ymin, ymax = math.Min(ymin, v), math.Max(ymax, v)
	}
	return -0.5, float64(len(b.values)) - 0.5, ymin, ymax
}

func (b *advantageBars) Thumbnail(c *draw.Canvas) {
	r := c.Rectangle
	c.FillPolygon(b.color, []vg.Point{r.Min, {X: r.Max.X, Y: r.Min.Y}, r.Max, {X: r.Min.X, Y: r.Max.Y}})
}

// oneLine marks 1: pmd and the peer are even.
type oneLine struct{}

func (oneLine) Plot(c draw.Canvas, p *plot.Plot) {
	_, trY := p.Transforms(&c)
	y := trY(1)
	c.StrokeLine2(draw.LineStyle{Color: color.Black, Width: vg.Points(1)}, c.Min.X, y, c.Max.X, y)
}
