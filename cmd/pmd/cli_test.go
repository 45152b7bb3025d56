package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/client"
	"github.com/pmd-dev/pmd/config"
	"github.com/pmd-dev/pmd/server"
	"github.com/prometheus/client_golang/prometheus"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// runPMD runs a pmd command in-process and returns its exit code and output.
func runPMD(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// inProcess is what `pmd serve` runs, in the test process: a store, the process
// managers and subscriptions of cfg, and the API on a real listener.
type inProcess struct {
	store    *pmd.Store
	procs    *processes
	subs     *subscriptions
	url      string
	addr     string
	shutdown func() error // nil once stopped
}

// startInProcess starts the daemon of cfg on a store in a new temporary directory,
// logging nowhere; it stops when the test ends.
func startInProcess(t *testing.T, cfg *config.Config) *inProcess {
	t.Helper()
	return startInProcessAt(t, cfg, t.TempDir(), quiet())
}

// startInProcessAt is startInProcess with the store in dir and the daemon's log lines
// written to logger, for a test that looks at either.
func startInProcessAt(t *testing.T, cfg *config.Config, dir string, logger *slog.Logger) *inProcess {
	t.Helper()
	store, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	reg := prometheus.NewRegistry()
	procs, err := startProcesses(ctx, store, cfg, reg, logger, func() { t.Error("a process manager failed") })
	if err != nil {
		cancel()
		store.Close()
		t.Fatal(err)
	}
	subs, err := startSubscriptions(ctx, store, cfg, reg, logger, func() { t.Error("a subscription failed") })
	if err != nil {
		cancel()
		procs.stop()
		store.Close()
		t.Fatal(err)
	}
	ts := httptest.NewServer(server.New(store, server.Options{Processes: procs.api(), Subscriptions: subs.api(), Registry: reg, Logger: logger}))
	d := &inProcess{store: store, procs: procs, subs: subs, url: ts.URL, addr: strings.TrimPrefix(ts.URL, "http://")}
	d.shutdown = func() error {
		ts.Close()
		cancel()
		return errors.Join(procs.stop(), subs.stop(), store.Close())
	}
	t.Cleanup(func() {
		if err := d.stop(); err != nil {
			t.Error(err)
		}
	})
	return d
}

// stop stops the daemon and closes its store, for a test that looks at what it left
// before the test ends; a daemon already stopped returns nil.
func (d *inProcess) stop() error {
	if d.shutdown == nil {
		return nil
	}
	shutdown := d.shutdown
	d.shutdown = nil
	return shutdown()
}

// parseConfig is the config file test.yaml holding yaml; yaml that is not a config
// fails the test.
func parseConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// minuteContext is a context for a test's calls, cancelled when the test ends, or
// in a minute if it has not ended by then.
func minuteContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// client returns a client of the daemon.
func (d *inProcess) client(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.New(d.url)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func cateringConfig(t *testing.T, webhook string) *config.Config {
	t.Helper()
	yaml := `
processes:
  - name: CateringMatch
    correlate_by: order_id
    handles: [CustomerConfirmedMenu, CatererConfirmedMenu]
    issue: {type: ConfirmOrder}
    deadline: {after: 48h, issue: {type: CancelOrder}}
`
	if webhook != "" {
		yaml += "    deliver: {webhook: " + webhook + "}\n"
	}
	return parseConfig(t, yaml)
}

// cateringAndBillingYAML is a config of a process manager and a subscription, both
// idle until an event comes; the subscription's receiver answers nowhere.
const cateringAndBillingYAML = `
processes:
  - name: CateringMatch
    correlate_by: order_id
    handles: [CustomerConfirmedMenu, CatererConfirmedMenu]
    issue: {type: ConfirmOrder}
subscriptions:
  - name: billing
    types: [ConfirmOrder]
    deliver: {webhook: "http://127.0.0.1:1/events"}
`

func TestServeFlagsAndEnvironment(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want serveConfig
		err  string
	}{
		{name: "defaults", want: serveConfig{data: "./data", addr: "127.0.0.1:7070", logFormat: "text", maxBody: 16 << 20, memoryBudget: 256 << 20, cache: 64 << 20, grace: 30 * time.Second, scavengeEvery: 24 * time.Hour}},
		{name: "environment", env: map[string]string{"PMD_DATA": "/d", "PMD_ADDR": ":1", "PMD_CONFIG": "c.yaml", "PMD_NO_SYNC": "true", "PMD_LOG_FORMAT": "json", "PMD_MAX_BODY": "1MiB", "PMD_MEMORY_BUDGET": "1GiB", "PMD_SHUTDOWN_GRACE": "5s", "PMD_CACHE": "1GB", "PMD_SCAVENGE_EVERY": "0"},
			want: serveConfig{data: "/d", addr: ":1", config: "c.yaml", noSync: true, logFormat: "json", maxBody: 1 << 20, memoryBudget: 1 << 30, cache: 1e9, grace: 5 * time.Second}},
		{name: "flags win", env: map[string]string{"PMD_DATA": "/d", "PMD_NO_SYNC": "true", "PMD_MAX_BODY": "1MiB", "PMD_MEMORY_BUDGET": "1GiB", "PMD_SHUTDOWN_GRACE": "5s", "PMD_CACHE": "1GB", "PMD_SCAVENGE_EVERY": "0"},
			args: []string{"--data", "/f", "--no-sync=false", "--max-body", "2048", "--memory-budget", "64MiB", "--shutdown-grace", "0s", "--cache", "256MiB", "--scavenge-every", "1h"},
			want: serveConfig{data: "/f", addr: "127.0.0.1:7070", logFormat: "text", maxBody: 2048, memoryBudget: 64 << 20, cache: 256 << 20, scavengeEvery: time.Hour}},
		{name: "max body", args: []string{"--max-body", "1024"},
			want: serveConfig{data: "./data", addr: "127.0.0.1:7070", logFormat: "text", maxBody: 1024, memoryBudget: 256 << 20, cache: 64 << 20, grace: 30 * time.Second, scavengeEvery: 24 * time.Hour}},
		{name: "bad max body", args: []string{"--max-body", "0"}, err: `--max-body: "0" is not a size`},
		{name: "bad max body in the environment", env: map[string]string{"PMD_MAX_BODY": "big"}, err: `PMD_MAX_BODY: "big" is not a size`},
		{name: "bad max body on the command line over the environment", env: map[string]string{"PMD_MAX_BODY": "1MiB"}, args: []string{"--max-body", "big"}, err: `--max-body: "big" is not a size`},
		{name: "bad memory budget", args: []string{"--memory-budget", "-1"}, err: `--memory-budget: "-1" is not a size`},
		{name: "bad memory budget in the environment", env: map[string]string{"PMD_MEMORY_BUDGET": "most"}, err: `PMD_MEMORY_BUDGET: "most" is not a size`},
		{name: "bad cache", args: []string{"--cache", "lots"}, err: `--cache: "lots" is not a size`},
		{name: "bad cache in the environment", env: map[string]string{"PMD_CACHE": "64 megs"}, err: `PMD_CACHE: "64 megs" is not a size`},
		{name: "bad shutdown grace", args: []string{"--shutdown-grace", "-1s"}, err: `--shutdown-grace "-1s" is not a duration`},
		{name: "bad shutdown grace in the environment", env: map[string]string{"PMD_SHUTDOWN_GRACE": "soon"}, err: `PMD_SHUTDOWN_GRACE "soon" is not a duration`},
		{name: "bad scavenge interval", args: []string{"--scavenge-every", "-1h"}, err: `--scavenge-every "-1h" is not a duration`},
		{name: "bad scavenge interval in the environment", env: map[string]string{"PMD_SCAVENGE_EVERY": "daily"}, err: `PMD_SCAVENGE_EVERY "daily" is not a duration`},
		{name: "bad boolean", env: map[string]string{"PMD_NO_SYNC": "maybe"}, err: `PMD_NO_SYNC="maybe" is not a boolean`},
		{name: "bad log format", args: []string{"--log-format", "xml"}, err: "--log-format must be text or json"},
		{name: "bad log format in the environment", env: map[string]string{"PMD_LOG_FORMAT": "xml"}, err: "PMD_LOG_FORMAT must be text or json"},
		{name: "stray argument", args: []string{"extra"}, err: "unexpected arguments"},
		{name: "unknown flag", args: []string{"--colour"}, err: "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"PMD_DATA", "PMD_ADDR", "PMD_CONFIG", "PMD_NO_SYNC", "PMD_LOG_FORMAT", "PMD_MAX_BODY", "PMD_MEMORY_BUDGET", "PMD_SHUTDOWN_GRACE", "PMD_CACHE", "PMD_SCAVENGE_EVERY"} {
				t.Setenv(k, tt.env[k])
			}
			got, err := serveFlags(tt.args, io.Discard)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want an error with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// No case gives a file of access: each is named by its flag.
			tt.want.access.setFrom(func(flag, _ string) string { return "--" + flag })
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCheckConfig(t *testing.T) {
	ctx := context.Background()
	code, out, _ := runPMD(t, ctx, "check-config", filepath.Join("..", "..", "examples", "catering", "pmd.yaml"))
	if code != exitOK || !strings.Contains(out, "ok, 1 process manager(s)") || !strings.Contains(out, "CateringMatch") {
		t.Fatalf("exit %d: %s", code, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("processes:\n  - name: M\n    correlate_by: id\n    handles: [A]\n    issue: {type: A}\n    deliver: {webhook: nope}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runPMD(t, ctx, "check-config", bad)
	if code != exitFailed || !strings.Contains(errOut, bad+":6:") || !strings.Contains(errOut, "not an http or https URL") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if code, _, _ := runPMD(t, ctx, "check-config"); code != exitUsage {
		t.Fatalf("no file: exit %d, want %d", code, exitUsage)
	}
}

func TestUnknownCommand(t *testing.T) {
	code, _, errOut := runPMD(t, context.Background(), "frobnicate")
	if code != exitUsage || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

// TestClientCommands drives the catering flow through the CLI against the daemon's
// handler and process managers.
func TestClientCommands(t *testing.T) {
	d := startInProcess(t, cateringConfig(t, ""))
	ctx := context.Background()
	addr := "--addr=" + d.addr

	code, out, errOut := runPMD(t, ctx, "append", addr, "--id", "0190c1d2-0000-7000-8000-000000000001", "Customer$7", "CustomerConfirmedMenu", `{"order_id":"42"}`)
	if code != exitOK || !strings.Contains(out, "appended CustomerConfirmedMenu to Customer$7 at version 0 (position 1, id 0190c1d2-0000-7000-8000-000000000001)") {
		t.Fatalf("append: exit %d: %s%s", code, out, errOut)
	}
	code, out, _ = runPMD(t, ctx, "append", addr, "--json", "Caterer$3", "CatererConfirmedMenu", `{"order_id":"42"}`)
	var res map[string]any
	if code != exitOK || json.Unmarshal([]byte(out), &res) != nil || res["version"] != 0.0 {
		t.Fatalf("append --json: exit %d: %s", code, out)
	}
	if err := d.procs.managers[0].m.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}

	code, out, _ = runPMD(t, ctx, "read", addr, "CateringMatch$42")
	if code != exitOK || !strings.Contains(out, "↪ Customer$7") || !strings.Contains(out, "ConfirmOrder") {
		t.Fatalf("read: exit %d:\n%s", code, out)
	}
	code, out, _ = runPMD(t, ctx, "read", addr, "--limit", "1", "Customer$7")
	if code != exitOK || strings.Contains(out, "more:") {
		t.Fatalf("read of a one-event stream: exit %d:\n%s", code, out)
	}
	code, out, _ = runPMD(t, ctx, "read", addr, "--limit", "1", "CateringMatch$42")
	if code != exitOK || !strings.Contains(out, "more: pmd read --from 1 --limit 1 'CateringMatch$42'") {
		t.Fatalf("read with a next page: exit %d:\n%s", code, out)
	}

	code, out, _ = runPMD(t, ctx, "process", addr, "CateringMatch", "42")
	if code != exitOK || !strings.Contains(out, "process CateringMatch 42: completed") || !strings.Contains(out, "ConfirmOrder") {
		t.Fatalf("process: exit %d:\n%s", code, out)
	}
	code, out, _ = runPMD(t, ctx, "process", addr)
	if code != exitOK || !strings.Contains(out, "CateringMatch  0     1") {
		t.Fatalf("process list: exit %d:\n%s", code, out)
	}

	list, err := d.client(t).Processes(ctx, "CateringMatch", client.ListOptions{})
	if err != nil || len(list.Processes) != 1 || list.Processes[0].ID != "42" || list.Processes[0].Status != "completed" || list.Processes[0].Events != 2 {
		t.Fatalf("process list: %v %+v", err, list)
	}

	code, out, _ = runPMD(t, ctx, "link", addr, "Audit", "0190c1d2-0000-7000-8000-000000000001")
	if code != exitOK || !strings.Contains(out, "linked 1 event(s) into Audit, now at version 0") {
		t.Fatalf("link: exit %d: %s", code, out)
	}
	// Refusals are reported with the contract's code, and exit 1.
	code, _, errOut = runPMD(t, ctx, "link", addr, "Audit", "0190c1d2-0000-7000-8000-000000000001")
	if code != exitFailed || !strings.Contains(errOut, "duplicate_event") {
		t.Fatalf("duplicate link: exit %d: %s", code, errOut)
	}
	code, _, errOut = runPMD(t, ctx, "append", addr, "--expected", "no_stream", "Customer$7", "X", `{}`)
	if code != exitFailed || !strings.Contains(errOut, "wrong_expected_version") {
		t.Fatalf("wrong expected version: exit %d: %s", code, errOut)
	}
	code, _, errOut = runPMD(t, ctx, "append", addr, "s", "X", `{not json`)
	if code != exitUsage || !strings.Contains(errOut, `the event data "{not json" is not a JSON object`) {
		t.Fatalf("bad JSON: exit %d: %s", code, errOut)
	}
	code, _, errOut = runPMD(t, ctx, "process", addr, "CateringMatch", "nope")
	if code != exitFailed || !strings.Contains(errOut, "not_found") {
		t.Fatalf("unknown process: exit %d: %s", code, errOut)
	}
}

func TestClientUnreachable(t *testing.T) {
	code, _, errOut := runPMD(t, context.Background(), "read", "--addr", "127.0.0.1:1", "s")
	if code != exitTrouble || !strings.Contains(errOut, "cannot reach pmd at http://127.0.0.1:1") || !strings.Contains(errOut, "is `pmd serve` running there?") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

// syncBuffer is a bytes.Buffer safe for writers and a reader on other goroutines (a
// daemon's loggers, a command's output); written, if made, is signalled on each write
// for waitFor.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	written chan struct{}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	select {
	case b.written <- struct{}{}:
	default:
	}
	return n, err
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until the buffer holds want.
func (b *syncBuffer) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !strings.Contains(b.String(), want) {
		select {
		case <-b.written:
		case <-deadline:
			t.Fatalf("output lacks %q after 10s:\n%s", want, b.String())
		}
	}
}

// background is a pmd command running on its own goroutine, tail mostly, with its
// output collected as it comes.
type background struct {
	out, errOut *syncBuffer
	cancel      context.CancelFunc
	done        chan int
	code        int
	stopped     bool
}

// runInBackground runs pmd with args until ctx ends or the command is stopped; the
// test's end stops it if the test did not.
func runInBackground(t *testing.T, ctx context.Context, args ...string) *background {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	b := &background{
		out:    &syncBuffer{written: make(chan struct{}, 1)},
		errOut: &syncBuffer{written: make(chan struct{}, 1)},
		cancel: cancel,
		done:   make(chan int, 1),
	}
	go func() { b.done <- run(ctx, args, b.out, b.errOut) }()
	t.Cleanup(func() { b.stop() })
	return b
}

// stop cancels the command and returns its exit code once it has ended.
func (b *background) stop() int {
	if !b.stopped {
		b.cancel()
		b.code, b.stopped = <-b.done, true
	}
	return b.code
}

func TestTail(t *testing.T) {
	d := startInProcess(t, nil)
	ctx := context.Background()
	if _, err := d.store.Append(ctx, "old", pmd.Any, pmd.EventData{Type: "Old"}); err != nil {
		t.Fatal(err)
	}
	from := fmt.Sprint(d.store.LastPosition() + 1)
	tail := runInBackground(t, ctx, "tail", "--addr", d.addr, "--json", "--types", "New", "--from", from)
	if _, err := d.store.Append(ctx, "s", pmd.Any, pmd.EventData{Type: "Skip"}, pmd.EventData{Type: "New", Data: map[string]any{"i": 0}}); err != nil {
		t.Fatal(err)
	}
	tail.out.waitFor(t, `"i":0`)
	if code := tail.stop(); code != exitOK {
		t.Fatalf("tail exit %d", code)
	}
	if s := tail.out.String(); strings.Contains(s, "Old") || strings.Contains(s, "Skip") {
		t.Fatalf("tail printed events it should not have:\n%s", s)
	}
}

// TestWebhookDeliveryWithRetries: the receiver fails the first attempts; the command
// arrives after retries, always with the same id, and every attempt is visible through
// the API. A handled event without the correlation field is counted by type in the
// metrics, and once the manager is idle its lag is 0.
func TestWebhookDeliveryWithRetries(t *testing.T) {
	type got struct {
		key  string
		body server.WebhookCommand
	}
	attempts := make(chan got, 16)
	const failures = 2
	var mu sync.Mutex
	n := 0
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c server.WebhookCommand
		if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		attempts <- got{r.Header.Get("Idempotency-Key"), c}
		mu.Lock()
		n++
		fail := n <= failures
		mu.Unlock()
		if fail {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
		}
	}))
	defer receiver.Close()

	d := startInProcess(t, cateringConfig(t, receiver.URL+"/commands"))
	ctx := context.Background()
	for _, e := range []pmd.EventData{
		{Type: "CustomerConfirmedMenu", Data: map[string]any{"order": "42"}}, // no order_id: no process
		{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": "42"}},
		{Type: "CatererConfirmedMenu", Data: map[string]any{"order_id": "42"}},
	} {
		if _, err := d.store.Append(ctx, "facts", pmd.Any, e); err != nil {
			t.Fatal(err)
		}
	}
	var first got
	for i := range failures + 1 {
		select {
		case a := <-attempts:
			if i == 0 {
				first = a
			}
			if a.key == "" || a.key != a.body.ID || a.key != first.key {
				t.Fatalf("attempt %d: Idempotency-Key %q, body id %q, first %q", i, a.key, a.body.ID, first.key)
			}
			if a.body.Type != "ConfirmOrder" || a.body.Manager != "CateringMatch" || a.body.ProcessID != "42" || a.body.Data["order_id"] != "42" {
				t.Fatalf("attempt %d: body %+v", i, a.body)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d delivery attempts within 30s", i)
		}
	}
	if err := d.procs.managers[0].m.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := d.client(t).Process(ctx, "CateringMatch", "42")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Commands) != 1 || p.Commands[0].ID != first.key || !p.Commands[0].Delivered || len(p.Commands[0].Attempts) != failures+1 {
		t.Fatalf("process view: %+v", p)
	}
	for i, a := range p.Commands[0].Attempts {
		if failed := i < failures; failed != (a.Error != "") || (failed && !strings.Contains(a.Error, "503")) {
			t.Fatalf("attempt %d recorded as %q", i, a.Error)
		}
	}
	select {
	case a := <-attempts:
		t.Fatalf("a delivered command was sent again: %+v", a)
	default:
	}
	m, err := http.Get(d.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Body.Close()
	metrics, _ := io.ReadAll(m.Body)
	for _, want := range []string{
		`pmd_deliveries_total{manager="CateringMatch",outcome="delivered"} 1`,
		`pmd_deliveries_total{manager="CateringMatch",outcome="failed"} 2`,
		`pmd_processes{manager="CateringMatch",status="completed"} 1`,
		`pmd_pm_unmatched_events_total{pm="CateringMatch",type="CustomerConfirmedMenu"} 1` + "\n",
		`pmd_pm_lag_events{pm="CateringMatch"} 0` + "\n",
		`pmd_pm_undeliverable_commands_total{pm="CateringMatch"} 0` + "\n",
		`pmd_pm_definition_panics_total{pm="CateringMatch"} 0` + "\n",
	} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestWebhookDeliveryTimeout: deliver.timeout bounds each attempt. A receiver that
// does not answer within it has the attempt recorded as failed, timed out, and the
// receiver sees the request given up after about that long, not after the default.
func TestWebhookDeliveryTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	release := make(chan struct{})
	gaveUp := make(chan time.Duration, 4) // how long each request lasted, as the receiver saw it
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		_, _ = io.Copy(io.Discard, r.Body) // then the server notices the client hang up
		select {
		case <-r.Context().Done():
			gaveUp <- time.Since(start)
		case <-release:
		}
	}))
	defer receiver.Close()
	defer close(release) // before the receiver closes: Close waits for its handlers

	d := startInProcess(t, parseConfig(t, `
processes:
  - name: Slow
    correlate_by: order_id
    handles: [OrderPlaced]
    issue: {type: ShipOrder}
    deliver: {webhook: `+receiver.URL+`, timeout: `+timeout.String()+`, max_attempts: 1}
`))
	ctx := context.Background()
	if _, err := d.store.Append(ctx, "orders", pmd.Any, pmd.EventData{Type: "OrderPlaced", Data: map[string]any{"order_id": "7"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case took := <-gaveUp:
		// The default is 10s; half of it leaves room for a loaded machine.
		if took >= server.DefaultWebhookTimeout/2 {
			t.Fatalf("the attempt was given up after %s; deliver.timeout is %s", took, timeout)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the attempt was not given up within 30s")
	}
	if err := d.procs.managers[0].m.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := d.client(t).Process(ctx, "Slow", "7")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Commands) != 1 || p.Commands[0].Delivered || p.Commands[0].Status != "parked" || len(p.Commands[0].Attempts) == 0 {
		t.Fatalf("process view: %+v", p)
	}
	a := p.Commands[0].Attempts[0]
	if a.Outcome != "failed" || !strings.Contains(a.Error, "timed out") || !strings.Contains(a.Error, "deadline exceeded") {
		t.Fatalf("the attempt is recorded as %+v; want it failed, timed out", a)
	}
}

// TestClientTLSCA: the client commands reach an https daemon whose certificate only a
// private CA vouches for once --tls-ca names that CA, and say why they cannot before.
func TestClientTLSCA(t *testing.T) {
	store, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.Append(context.Background(), "Order$1", pmd.NoStream, pmd.EventData{Type: "OrderPlaced"}); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(server.New(store, server.Options{Logger: quiet()}))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	ts.StartTLS()
	defer ts.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}

	code, _, stderr := runPMD(t, context.Background(), "--addr", ts.URL, "streams")
	if code != exitTrouble || !strings.Contains(stderr, "certificate signed by unknown authority") || !strings.Contains(stderr, "--tls-ca or PMD_TLS_CA") {
		t.Fatalf("without --tls-ca: exit %d, stderr %q; want a certificate error", code, stderr)
	}
	code, stdout, stderr := runPMD(t, context.Background(), "--addr", ts.URL, "--tls-ca", ca, "streams")
	if code != 0 || !strings.Contains(stdout, "Order$1") {
		t.Fatalf("with --tls-ca: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	t.Setenv("PMD_TLS_CA", ca)
	if code, stdout, stderr := runPMD(t, context.Background(), "--addr", ts.URL, "streams"); code != 0 || !strings.Contains(stdout, "Order$1") {
		t.Fatalf("with PMD_TLS_CA: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if code, _, stderr := runPMD(t, context.Background(), "--addr", ts.URL, "--tls-ca", filepath.Join(t.TempDir(), "none.pem"), "streams"); code != exitTrouble || !strings.Contains(stderr, "--tls-ca: open ") {
		t.Fatalf("a missing CA file: exit %d, stderr %q", code, stderr)
	}
	// A CA file that PMD_TLS_CA gave is named by it: the command line does not show it.
	t.Setenv("PMD_TLS_CA", filepath.Join(t.TempDir(), "none.pem"))
	if code, _, stderr := runPMD(t, context.Background(), "--addr", ts.URL, "streams"); code != exitTrouble || !strings.Contains(stderr, "PMD_TLS_CA: open ") {
		t.Fatalf("a missing CA file of PMD_TLS_CA: exit %d, stderr %q", code, stderr)
	}
}
