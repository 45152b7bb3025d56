package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// The promises of `pmd serve` in README.md and docs/api.md that the other tests of the
// daemon leave alone, each against the real binary unless it is a mapping of flags.

// get fetches url and returns its answer with the body read.
func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, string(body)
}

// TestServeServesTheBrowser: the browser is served on the API's port, at /.
func TestServeServesTheBrowser(t *testing.T) {
	d := startDaemon(t, pmdBinary(t), "--data", t.TempDir())
	resp, body := get(t, d.base+"/")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %s, Content-Type %q; want 200 text/html", resp.Status, resp.Header.Get("Content-Type"))
	}
	if want := `<meta name="generator" content="pmd-web">`; !strings.Contains(body, want) {
		t.Fatalf("GET / is not the browser's page: it lacks %s:\n%s", want, body)
	}
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("pmd exited with %v\n%s", err, d.logs)
	}
}

// TestServeMaxBody: --max-body bounds request bodies. A larger append is refused with
// payload_too_large (413) and writes nothing; a smaller one is taken.
func TestServeMaxBody(t *testing.T) {
	d := startDaemon(t, pmdBinary(t), "--data", t.TempDir(), "--max-body", "1024")
	post := func(pad int) (int, string) {
		t.Helper()
		body := `{"events":[{"type":"E","data":{"pad":"` + strings.Repeat("x", pad) + `"}}]}`
		resp, err := http.Post(d.base+"/v1/streams/s", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var answer struct {
			Error string `json:"error"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
			t.Fatalf("POST of %d bytes: %s, the answer is not JSON: %v", len(body), resp.Status, err)
		}
		return resp.StatusCode, answer.Error
	}
	if status, code := post(2048); status != http.StatusRequestEntityTooLarge || code != "payload_too_large" {
		t.Fatalf("a 2 KiB append with --max-body 1024: %d %q, want 413 payload_too_large", status, code)
	}
	if resp, body := get(t, d.base+"/v1/streams/s"); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "stream_not_found") {
		t.Fatalf("the refused append wrote: GET the stream: %s %s", resp.Status, body)
	}
	if status, code := post(512); status != http.StatusCreated {
		t.Fatalf("an append under --max-body: %d %q, want 201", status, code)
	}
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("pmd exited with %v\n%s", err, d.logs)
	}
}

// TestServeSIGINTIsGraceful: Ctrl-C stops pmd as SIGTERM does: it exits 0 once the
// store is closed and its index flushed, and the store opens again with the event.
func TestServeSIGINTIsGraceful(t *testing.T) {
	data := t.TempDir()
	d := startDaemon(t, pmdBinary(t), "--data", data)
	ctx := context.Background()
	if _, err := d.client(t).Append(ctx, "s", pmd.NoStream, pmd.EventData{Type: "E"}); err != nil {
		t.Fatal(err)
	}
	if err := d.stop(t, syscall.SIGINT); err != nil {
		t.Fatalf("SIGINT: pmd exited with %v, want 0\n%s", err, d.logs)
	}
	for _, want := range []string{`"signal":"interrupt"`, "index flushed", "pmd stopped"} {
		if !strings.Contains(d.logs.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, d.logs)
		}
	}
	s, err := pmd.Open(data, pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatalf("the store does not open after SIGINT: %v", err)
	}
	defer s.Close()
	if info, err := s.StreamInfo("s"); err != nil || info.Version != 0 {
		t.Fatalf("after SIGINT the stream is %+v (%v), want it at version 0", info, err)
	}
}

// TestServeStoreOptions: --no-sync and --cache, and their environment variables, are
// what serve opens the store with, with its logger and the metrics' commit observer.
func TestServeStoreOptions(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		noSync bool
		cache  int64
	}{
		{name: "defaults", cache: 64 << 20},
		{name: "--no-sync", args: []string{"--no-sync"}, noSync: true, cache: 64 << 20},
		{name: "PMD_NO_SYNC", env: map[string]string{"PMD_NO_SYNC": "true"}, noSync: true, cache: 64 << 20},
		{name: "--no-sync=false over PMD_NO_SYNC", env: map[string]string{"PMD_NO_SYNC": "true"}, args: []string{"--no-sync=false"}, cache: 64 << 20},
		{name: "--cache", args: []string{"--cache", "256MiB"}, cache: 256 << 20},
		{name: "PMD_CACHE", env: map[string]string{"PMD_CACHE": "1GB"}, cache: 1e9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"PMD_NO_SYNC", "PMD_CACHE"} {
				t.Setenv(k, tt.env[k])
			}
			c, err := serveFlags(tt.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			logger := quiet()
			observed := false
			opts := storeOptions(c, logger, func(pmd.CommitInfo) { observed = true })
			if opts.NoSync != tt.noSync || opts.CacheSize != tt.cache || opts.Logger != logger {
				t.Fatalf("NoSync %v, CacheSize %d, Logger %p; want %v, %d, %p", opts.NoSync, opts.CacheSize, opts.Logger, tt.noSync, tt.cache, logger)
			}
			if opts.NoScrub {
				t.Error("the scrub is off")
			}
			if opts.OnCommit == nil {
				t.Fatal("no commit observer")
			}
			opts.OnCommit(pmd.CommitInfo{})
			if !observed {
				t.Fatal("OnCommit is not the observer given")
			}
		})
	}
}

// TestServeCountsExpiredProcesses: a process whose deadline fires is counted expired,
// neither open nor completed, by GET /v1/processes and by /metrics.
func TestServeCountsExpiredProcesses(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "pmd.yaml")
	if err := os.WriteFile(cfg, []byte(`
processes:
  - name: Quick
    correlate_by: order_id
    handles: [OrderPlaced, OrderPaid]
    issue: {type: ShipOrder}
    deadline: {after: 5ms, issue: {type: CancelOrder}}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, pmdBinary(t), "--data", t.TempDir(), "--config", cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := d.client(t).Append(ctx, "Order$1", pmd.NoStream, pmd.EventData{Type: "OrderPlaced", Data: map[string]any{"order_id": "1"}}); err != nil {
		t.Fatal(err)
	}
	type counts struct {
		Name                     string
		Open, Completed, Expired int
	}
	// Nothing but the counts tells when the manager has counted the fired deadline:
	// poll them, within the deadline.
	var quick counts
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for quick.Expired == 0 {
		resp, body := get(t, d.base+"/v1/processes")
		var list struct{ Processes []counts }
		if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil || len(list.Processes) != 1 || list.Processes[0].Name != "Quick" {
			t.Fatalf("GET /v1/processes: %s %s", resp.Status, body)
		}
		quick = list.Processes[0]
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("no expired process within 20s of a 5ms deadline: %+v", quick)
		}
	}
	if quick != (counts{Name: "Quick", Expired: 1}) {
		t.Fatalf("GET /v1/processes: %+v; want open 0, completed 0, expired 1", quick)
	}
	_, metrics := get(t, d.base+"/metrics")
	for _, want := range []string{
		`pmd_processes{manager="Quick",status="expired"} 1` + "\n",
		`pmd_processes{manager="Quick",status="open"} 0` + "\n",
		`pmd_processes{manager="Quick",status="completed"} 0` + "\n",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("pmd exited with %v\n%s", err, d.logs)
	}
}

// TestServeOnAStoreInUse: a second pmd serve on the data directory a running one holds
// exits 3 naming the lock, and the first one goes on serving.
func TestServeOnAStoreInUse(t *testing.T) {
	data := t.TempDir()
	d := startDaemon(t, pmdBinary(t), "--data", data)
	// Were the lock not taken, the second serve would run until this deadline, then
	// stop and exit 0.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code, _, stderr := runPMD(t, ctx, "serve", "--data", data, "--addr", "127.0.0.1:0")
	if code != exitTrouble {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitTrouble, stderr)
	}
	if want := "data directory " + data + " is in use by another pmd"; !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
	if resp, _ := get(t, d.base+"/healthz"); resp.StatusCode != http.StatusOK {
		t.Fatalf("the first pmd after the second one's start: GET /healthz %s", resp.Status)
	}
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("pmd exited with %v\n%s", err, d.logs)
	}
}

// TestUnreadableConfigFile: a config file that cannot be read means the command
// cannot run (exit 3), as a missing token file does; serve says so before it touches
// the data directory.
func TestUnreadableConfigFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nonexistent.yaml")
	data := filepath.Join(t.TempDir(), "data")
	for _, args := range [][]string{
		{"serve", "--data", data, "--addr", "127.0.0.1:0", "--config", missing},
		{"check-config", missing},
	} {
		code, _, stderr := runPMD(t, context.Background(), args...)
		if code != exitTrouble || !strings.Contains(stderr, "cannot read the config file: open "+missing) {
			t.Errorf("%q: exit %d, want %d naming the file; stderr:\n%s", args, code, exitTrouble, stderr)
		}
	}
	if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the data directory was touched: stat: %v", err)
	}
}
