package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Slow readers of big events (issue 12): the daemon, a real `pmd serve` process, holds
// 4 MiB events; eight clients read them in every bad way at once, while a writer adds
// more. Pages are bounded at 4 MiB and each subscription at 16 MiB buffered, so the
// daemon's memory must not depend on what the readers do.
const (
	rssEventBytes = 4 << 20
	rssStored     = 32 // events stored before the readers start: 128 MiB
	rssLive       = 16 // events written while they read: 64 MiB
	rssLimitMiB   = 512
)

// BenchmarkSlowReadersRSS runs the scenario once per op and reports the daemon's peak
// resident memory (VmHWM) as peak-RSS-MiB, beside the data the readers were served.
// Run it with -benchtime 1x; it fails if the peak passes 512 MiB.
func BenchmarkSlowReadersRSS(b *testing.B) {
	bin := buildDaemon(b)
	for b.Loop() {
		peak, served, cut := slowReaders(b, bin)
		b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
		b.ReportMetric(float64(served)/(1<<20), "served-MiB")
		b.ReportMetric(float64(cut), "subscribers-cut")
		if peak > rssLimitMiB<<20 {
			b.Fatalf("the daemon's peak RSS is %d MiB, over %d MiB", peak>>20, rssLimitMiB)
		}
	}
}

func buildDaemon(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "pmd")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/pmd")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// slowReaders runs the scenario against a new daemon and returns its peak RSS, the
// bytes the readers received and the subscribers the daemon cut.
func slowReaders(b *testing.B, bin string) (peak, served int64, cut int) {
	b.Helper()
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data", b.TempDir(), "--no-sync", "--log-format", "json")
	cmd.Env = append(os.Environ(), "PMD_AUTH=", "PMD_ADDR=", "PMD_DATA=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	base := daemonURL(b, stderr)

	// The events: 4 MiB of base64 each, different bytes every time.
	event := func() []byte {
		raw := make([]byte, rssEventBytes*3/4)
		rand.Read(raw)
		body, _ := json.Marshal(map[string]any{"events": []any{map[string]any{"type": "Big", "data": map[string]any{"blob": base64.StdEncoding.EncodeToString(raw)}}}})
		return body
	}
	post := func() {
		resp, err := http.Post(base+"/v1/streams/Big%241", "application/json", bytes.NewReader(event()))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			b.Fatalf("append: %s", resp.Status)
		}
	}
	for range rssStored {
		post()
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		total  int64
		stalls = make(chan struct{}) // closed when the stalled readers may go
	)
	count := func(n int64) {
		mu.Lock()
		total += n
		mu.Unlock()
	}
	// slow reads a response at about 6 MiB/s: 64 KiB, then a pause.
	slow := func(path string) {
		defer wg.Done()
		resp, err := get(ctx, base+path)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := resp.Body.Read(buf)
			count(int64(n))
			if err != nil {
				return
			}
			time.Sleep(10 * time.Millisecond) // the client is slow: that is the scenario
		}
	}
	// stalled reads the headers, then nothing until the scenario ends.
	stalled := func(path string) {
		defer wg.Done()
		resp, err := get(ctx, base+path)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		select {
		case <-stalls:
		case <-ctx.Done():
		}
	}
	// Two slow page readers of the whole log, two that stall on their first page, two
	// slow subscribers catching up from the start, two live subscribers that stall.
	wg.Add(8)
	for range 2 {
		go slow("/v1/all?limit=1000")
		go stalled("/v1/all?limit=1000")
		go slow("/v1/subscribe?from=1")
		go stalled(fmt.Sprintf("/v1/subscribe?from=%d", rssStored+1))
	}
	// Sample the daemon's memory while they read and the writer writes.
	sampled := make(chan int64)
	stopSampling := make(chan struct{})
	go func() {
		var max int64
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if hwm := vmHWM(b, cmd.Process.Pid); hwm > max {
				max = hwm
			}
			select {
			case <-tick.C:
			case <-stopSampling:
				sampled <- max
				return
			}
		}
	}()
	for range rssLive {
		post()
	}
	// The slow subscribers never end by themselves: give them time to read what was
	// written, then end the scenario.
	time.Sleep(10 * time.Second)
	close(stalls)
	cancel()
	wg.Wait()
	close(stopSampling)
	peak = <-sampled
	return peak, total, subscribersCut(b, base)
}

func get(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	// Each reader on its own connection, as separate clients would be.
	return (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
}

// daemonURL reads the daemon's JSON log until it says where it serves.
func daemonURL(b *testing.B, stderr io.Reader) string {
	b.Helper()
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		var rec struct {
			Msg string `json:"msg"`
			URL string `json:"url"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "pmd serving" {
			go io.Copy(io.Discard, stderr)
			return rec.URL
		}
	}
	b.Fatal("the daemon exited before serving")
	return ""
}

// vmHWM is the peak resident set size of process pid, in bytes.
func vmHWM(b *testing.B, pid int) int64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc/pid/status")
	return 0
}

func subscribersCut(b *testing.B, base string) int {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "pmd_subscriptions_cut_total "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return int(n)
		}
	}
	return 0
}
