package browsertest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/pmd-dev/pmd/web"
)

// The browser tests run the real daemon with the catering example's config and drive
// Debian's chromium through the pages a user would visit.

const chromium = "/usr/bin/chromium"

// daemon is a running `pmd serve`.
type daemon struct {
	base  string // http://127.0.0.1:port
	logs  *logBuffer
	token string // sent by await, when the daemon runs with --auth
}

// logBuffer holds the daemon's log as it is written.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// startDaemon builds pmd and serves the catering example on a fresh data directory,
// with extra flags of pmd serve.
func startDaemon(t *testing.T, flags ...string) *daemon {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pmd")
	// Built in the root module, as a user builds it, not with this module's requirements.
	build := exec.Command("go", "build", "-o", bin, "./cmd/pmd")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build pmd: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--no-sync",
		"--config", filepath.Join("..", "..", "examples", "catering", "pmd.yaml"), "--log-format", "json"}, flags...)...)
	// Without pmd's own variables (PMD_AUTH, PMD_JOIN, ...): the test's flags say how it runs.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "PMD_") })
	return runDaemon(t, cmd, 30*time.Second)
}

// runDaemon starts cmd, a daemon that logs JSON lines to stderr, and returns once it
// logs "pmd serving", failing t if that takes longer than wait. Clean-up stops it.
func runDaemon(t testing.TB, cmd *exec.Cmd, wait time.Duration) *daemon {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{logs: &logBuffer{}}
	serving := make(chan string, 1)
	read := make(chan struct{})
	go func() {
		defer close(read)
		// Every byte is read, whatever the length of a line: a daemon whose stderr is
		// not drained blocks on its next log line, its signal handler's too.
		r := bufio.NewReader(stderr)
		for {
			line, err := r.ReadBytes('\n')
			d.logs.Write(line)
			var rec struct{ Msg, URL string }
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "pmd serving" {
				serving <- rec.URL // one such line in a daemon's life
			}
			if err != nil {
				return
			}
		}
	}()
	// Closed for every receiver once the daemon has exited: a value sent once was taken
	// by a start that saw the daemon exit, and the clean-up then waited for it for ever
	// (CI's hung run), or for 30s and reported a stop that never failed.
	exited := make(chan struct{})
	var waitErr error
	go func() {
		<-read // Wait must not close the pipe before the logs are read
		waitErr = cmd.Wait()
		close(exited)
	}()
	reported := false // the exit is reported already, or is the test's doing (SIGQUIT)
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			if waitErr != nil && !reported {
				t.Errorf("pmd exited with %v:\n%s", waitErr, d.logs)
			}
		case <-time.After(20 * time.Second):
			state := procState(cmd.Process.Pid)
			_ = cmd.Process.Kill()
			select {
			case <-exited:
			case <-time.After(10 * time.Second): // its stderr still open: report, do not hang
			}
			t.Errorf("pmd did not stop within 20s of SIGTERM (process state: %s):\n%s", state, d.logs)
		}
	})
	select {
	case d.base = <-serving:
	case <-exited:
		reported = true
		t.Fatalf("pmd exited before serving: %v\n%s", waitErr, d.logs)
	case <-time.After(wait):
		// Where it is stuck: the kernel's view of the process, then the Go runtime's
		// stacks of every goroutine, which SIGQUIT makes it print to stderr as it exits.
		state := procState(cmd.Process.Pid)
		reported = true
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
		}
		t.Fatalf("pmd did not serve within %v (process state: %s); its log, with its goroutines if it could print them:\n%s", wait, state, d.logs)
	}
	return d
}

// procState is the state of process pid as Linux's /proc gives it (R running, S
// sleeping, D in an uninterruptible wait, ...), with the kernel function it waits in.
func procState(pid int) string {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err.Error()
	}
	state := "unknown"
	for _, line := range strings.Split(string(status), "\n") {
		if s, ok := strings.CutPrefix(line, "State:"); ok {
			state = strings.TrimSpace(s)
		}
	}
	if wchan, err := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", pid)); err == nil && len(wchan) > 0 && string(wchan) != "0" {
		state += ", waiting in " + string(wchan)
	}
	return state
}

// browserBase is where the test opens the browser: the daemon itself when it serves
// package web's page at "/", otherwise web.Handler in front of the daemon's API, on one
// origin, the way the daemon mounts it.
func (d *daemon) browserBase(t *testing.T) string {
	t.Helper()
	res, err := http.Get(d.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if bytes.Contains(body, []byte(`<meta name="generator" content="pmd-web">`)) {
		return d.base
	}
	t.Logf("pmd does not serve the browser at / (server.Options.Browser unset); serving web.Handler in front of its API")
	api, err := url.Parse(d.base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(api)
	proxy.FlushInterval = -1 // Server-Sent Events pass through as they come
	mux := http.NewServeMux()
	mux.Handle("/v1/", proxy)
	mux.Handle("/healthz", proxy) // where the page learns where the log ends
	mux.Handle("/", web.Handler())
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts.URL
}

type fact struct {
	ID   string         `json:"id,omitempty"`
	Type string         `json:"type"`
	Data map[string]any `json:"data,omitempty"`
}

// append appends events to stream over HTTP.
func (d *daemon) append(t *testing.T, stream string, events ...fact) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"events": events})
	res, err := http.Post(d.base+"/v1/streams/"+url.PathEscape(stream), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("append to %s: %s: %s", stream, res.Status, b)
	}
}

// call sends method path with body over HTTP and checks the status.
func (d *daemon) call(t *testing.T, method, path, body string, want int) {
	t.Helper()
	req, err := http.NewRequest(method, d.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != want {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("%s %s: %s: %s", method, path, res.Status, b)
	}
}

type eventJSON struct {
	ID       string         `json:"id"`
	Type     string         `json:"type"`
	Stream   string         `json:"stream"`
	Metadata map[string]any `json:"metadata"`
}

// await follows stream from its start over /v1/subscribe until an event of type typ
// arrives, and returns it.
func (d *daemon) await(t *testing.T, stream, typ string) eventJSON {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", d.base+"/v1/subscribe?from=0&stream="+url.QueryEscape(stream), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.token != "" {
		req.Header.Set("Authorization", "Bearer "+d.token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev eventJSON
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("subscription sent %q: %v", data, err)
		}
		if ev.Type == typ {
			return ev
		}
	}
	t.Fatalf("no %s in %s within 20s: %v\n%s", typ, stream, sc.Err(), d.logs)
	return eventJSON{}
}

// awaitCompleted waits until the daemon counts n completed processes of manager. The
// counts are updated just after the process stream is written, and no event marks
// that, so this asks every 20ms until a deadline.
func (d *daemon) awaitCompleted(t *testing.T, manager string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var r struct {
			Processes []struct {
				Name      string
				Completed int
			}
		}
		res, err := http.Get(d.base + "/v1/processes")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(res.Body).Decode(&r)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range r.Processes {
			if m.Name == manager && m.Completed == n {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s did not count %d completed processes within 10s: %+v", manager, n, r.Processes)
		case <-tick.C:
		}
	}
}

// browser is one headless chromium tab on a fresh profile that can reach only
// 127.0.0.1. It records what must never happen: script errors, dialogs (an
// alert() would mean store data ran as code) and requests to anywhere else.
type browser struct {
	ctx   context.Context
	base  string
	shots string

	mu        sync.Mutex
	problems  []string
	requests  int // to the API: proves the request check saw traffic
	undecoded int
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	// Not t.TempDir: its cleanup fails the test when chromium's helper processes are
	// still writing the profile as it runs (seen once in 20 runs under load).
	profile, err := os.MkdirTemp("", "pmd-browsertest-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(profile),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Containers give /dev/shm a few MiB, too little for chromium's renderer.
		chromedp.Flag("disable-dev-shm-usage", true),
		// No name resolves: the page can reach 127.0.0.1 and nothing else.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.WindowSize(1280, 860),
	}
	b := &browser{base: base, shots: screenshotDir(t)}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithErrorf(b.cdpError))
	// The whole browser session, every test in it, is bounded.
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc() // kills chromium and waits for it
		removeProfile(t, profile)
	})
	b.ctx = ctx
	chromedp.ListenTarget(ctx, func(ev any) {
		switch e := ev.(type) {
		case *page.EventJavascriptDialogOpening:
			b.problem("a %s dialog opened: %q", e.Type, e.Message)
			go func() { _ = chromedp.Run(ctx, page.HandleJavaScriptDialog(false)) }()
		case *runtime.EventExceptionThrown:
			b.problem("script error: %s", e.ExceptionDetails.Error())
		case *network.EventRequestWillBeSent:
			if !strings.HasPrefix(e.Request.URL, base+"/") {
				b.problem("request to %s: the page must only talk to %s", e.Request.URL, base)
			}
			if strings.HasPrefix(e.Request.URL, base+"/v1/") {
				b.mu.Lock()
				b.requests++
				b.mu.Unlock()
			}
		}
	})
	if err := chromedp.Run(ctx); err != nil { // starts chromium
		t.Fatalf("start %s: %v", chromium, err)
	}
	return b
}

// screenshotDir is $PMD_SCREENSHOTS/<test name> when that is set, else a temporary
// directory.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("PMD_SCREENSHOTS")
	if dir == "" {
		return t.TempDir()
	}
	dir = filepath.Join(dir, t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// cdpError receives chromedp's errors. Events that chromium sends in a newer version
// of the protocol than chromedp decodes (new enum values in fields the tests do not
// read) are counted, not reported; anything else is a problem.
func (b *browser) cdpError(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	if strings.HasPrefix(msg, "could not unmarshal event") && !strings.Contains(msg, "requestWillBeSent") &&
		!strings.Contains(msg, "javascriptDialogOpening") && !strings.Contains(msg, "exceptionThrown") {
		b.mu.Lock()
		b.undecoded++
		b.mu.Unlock()
		return
	}
	b.problem("chromedp: %s", msg)
}

func (b *browser) problem(format string, a ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, fmt.Sprintf(format, a...))
}

// check fails t with the problems seen since the last check.
func (b *browser) check(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		t.Error(p)
	}
	b.problems = nil
}

func (b *browser) run(t *testing.T, actions ...chromedp.Action) {
	t.Helper()
	if err := chromedp.Run(b.ctx, actions...); err != nil {
		t.Fatal(err)
	}
}

// shown waits until the address is no longer leaving and the page for the new one is
// on screen.
func (b *browser) shown(t *testing.T, page, leaving string) {
	t.Helper()
	b.run(t, chromedp.Poll(fmt.Sprintf(`(m => location.hash !== %q && m.dataset.route === location.hash && m.dataset.page)(document.getElementById('main'))`, leaving), nil,
		chromedp.WithPollingTimeout(15*time.Second)))
	var got string
	b.run(t, chromedp.Evaluate(`document.getElementById('main').dataset.page`, &got))
	if got != page {
		var text string
		b.run(t, chromedp.Evaluate(`document.getElementById('main').innerText`, &text))
		t.Fatalf("page %q shown, want %q: %s", got, page, text)
	}
}

// open goes to a page by its address, as a pasted link would.
func (b *browser) open(t *testing.T, fragment, page string) {
	t.Helper()
	var loaded bool
	b.run(t, chromedp.Evaluate(`document.readyState === 'complete' && !!document.getElementById('main')`, &loaded))
	if !loaded {
		b.run(t, chromedp.Navigate(b.base+"/"+fragment))
		b.shown(t, page, "")
		return
	}
	before := b.hash(t)
	if before == fragment {
		t.Fatalf("open %s: the page is there already", fragment)
	}
	b.run(t, chromedp.Evaluate(fmt.Sprintf(`location.hash = %q`, fragment), nil))
	b.shown(t, page, before)
}

// click follows the first link that matches selector, as a user would.
func (b *browser) click(t *testing.T, selector, page string) {
	t.Helper()
	before := b.hash(t)
	b.run(t, chromedp.Click(selector, chromedp.ByQuery))
	b.shown(t, page, before)
}

func (b *browser) hash(t *testing.T) string {
	t.Helper()
	var h string
	b.eval(t, `location.hash`, &h)
	return h
}

// to is the selector of a link to fragment.
func to(fragment string) string { return fmt.Sprintf(`a[href=%q]`, fragment) }

// eval evaluates a JavaScript expression and decodes its value into res.
func (b *browser) eval(t *testing.T, expr string, res any) {
	t.Helper()
	b.run(t, chromedp.Evaluate(expr, res))
}

// text evaluates expr, a string in the page.
func (b *browser) text(t *testing.T, expr string) string {
	t.Helper()
	var s string
	b.eval(t, expr, &s)
	return s
}

func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	b.capture(t, name, chromedp.CaptureScreenshot)
}

// screenshotPage takes the whole page, not only what the window shows.
func (b *browser) screenshotPage(t *testing.T, name string) {
	t.Helper()
	b.capture(t, name, func(png *[]byte) chromedp.Action { return chromedp.FullScreenshot(png, 100) })
}

func (b *browser) capture(t *testing.T, name string, take func(*[]byte) chromedp.Action) {
	t.Helper()
	var png []byte
	b.run(t, take(&png))
	path := filepath.Join(b.shots, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", path)
}

// entry is a row or timeline entry as the tests read it from the page.
type entry struct {
	Kind, Type, Stream, ID, Text string
	Link                         bool
}

const rowsJS = `[...document.querySelectorAll('main tbody tr')].map(tr => ({
	ID: tr.dataset.id || '', Type: tr.dataset.type || '', Link: tr.dataset.link === 'true',
	Stream: tr.dataset.stream || '', Text: tr.innerText}))`

const timelineJS = `[...document.querySelectorAll('#timeline > li')].map(li => ({
	Kind: li.dataset.kind, Type: li.dataset.type, Stream: li.dataset.stream, ID: li.dataset.id, Text: li.innerText}))`

func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pmd and drives a headless chromium; skipped in -short")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not found at /usr/bin/chromium: run scripts/install-chromium.sh")
	}
	d := startDaemon(t)

	// The catering flow: both confirmations of order 42, then ConfirmOrder is issued.
	d.append(t, "Customer$7", fact{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": "42", "menu": "vegetarian"}})
	d.append(t, "Caterer$3", fact{Type: "CatererConfirmedMenu", Data: map[string]any{"order_id": "42"}})
	confirm := d.await(t, "CateringMatch$42", "ConfirmOrder")
	cause, _ := confirm.Metadata["causation_id"].(string)
	if cause == "" {
		t.Fatalf("ConfirmOrder carries no causation_id: %v", confirm.Metadata)
	}
	d.awaitCompleted(t, "CateringMatch", 1)

	b := newBrowser(t, d.browserBase(t))
	t.Cleanup(func() {
		b.check(t)
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.requests == 0 {
			t.Errorf("saw no request to the API: the check that the page talks only to the daemon saw nothing")
		}
		if b.undecoded > 0 {
			t.Logf("%d protocol events from chromium were newer than chromedp decodes", b.undecoded)
		}
	})

	t.Run("process timeline", func(t *testing.T) {
		defer b.check(t)
		b.open(t, "#/processes", "processes")
		var managers []entry
		b.eval(t, `[...document.querySelectorAll('tr[data-manager]')].map(tr => ({Type: tr.dataset.manager, Text: tr.innerText}))`, &managers)
		if len(managers) != 1 || managers[0].Type != "CateringMatch" {
			t.Fatalf("process managers shown: %+v", managers)
		}
		var completed string
		b.eval(t, `document.querySelector('tr[data-manager="CateringMatch"] td.completed').textContent`, &completed)
		if completed != "1" {
			t.Errorf("CateringMatch shows %s completed processes, want 1", completed)
		}
		b.click(t, to("#/processes/CateringMatch"), "process-list")
		b.click(t, to("#/processes/CateringMatch/42"), "process")

		var status string
		b.eval(t, `document.getElementById('status').innerText`, &status)
		if status != "completed" {
			t.Errorf("status %q, want completed", status)
		}
		var timeline []entry
		b.eval(t, timelineJS, &timeline)
		want := []entry{
			{Kind: "fact", Type: "CustomerConfirmedMenu", Stream: "Customer$7"},
			{Kind: "fact", Type: "CatererConfirmedMenu", Stream: "Caterer$3"},
			{Kind: "command", Type: "ConfirmOrder", Stream: "CateringMatch$42", ID: confirm.ID},
		}
		for _, w := range want {
			if !slices.ContainsFunc(timeline, func(e entry) bool {
				return e.Kind == w.Kind && e.Type == w.Type && e.Stream == w.Stream && (w.ID == "" || e.ID == w.ID) &&
					(w.Kind != "fact" || strings.Contains(e.Text, "from "+w.Stream))
			}) {
				t.Errorf("the timeline lacks the %s %s from %s: %+v", w.Kind, w.Type, w.Stream, timeline)
			}
		}
		// The command comes after the fact that completed the process.
		order := slices.IndexFunc(timeline, func(e entry) bool { return e.Type == "ConfirmOrder" })
		if order < 0 || slices.IndexFunc(timeline, func(e entry) bool { return e.ID == cause }) > order {
			t.Errorf("ConfirmOrder is not after the fact that caused it: %+v", timeline)
		}

		// Under each fact, collapsed, the state after it: after the first, only the
		// customer's confirmation is seen.
		first := `document.querySelector('#timeline > li[data-kind="fact"][data-type="CustomerConfirmedMenu"] details.state')`
		var open bool
		b.eval(t, first+`.open`, &open)
		if open {
			t.Errorf("the state after the first fact is shown expanded, want it collapsed")
		}
		b.run(t, chromedp.Click(`#timeline > li[data-kind="fact"][data-type="CustomerConfirmedMenu"] details.state summary`, chromedp.ByQuery))
		var shown string
		b.eval(t, first+`.querySelector('pre').innerText`, &shown)
		var state struct {
			Seen      map[string]int `json:"seen"`
			Completed bool           `json:"completed"`
		}
		if err := json.Unmarshal([]byte(shown), &state); err != nil {
			t.Fatalf("the state after the first fact shows %q: %v", shown, err)
		}
		if len(state.Seen) != 1 || state.Seen["CustomerConfirmedMenu"] != 1 || state.Completed {
			t.Errorf("the state after the first fact shows %s, want only CustomerConfirmedMenu seen, not completed", shown)
		}
		b.screenshot(t, "process")
	})

	t.Run("stream with links", func(t *testing.T) {
		defer b.check(t)
		b.open(t, "#/streams/CateringMatch%2442", "stream")
		var rows []entry
		b.eval(t, rowsJS, &rows)
		origin := map[string]string{"CustomerConfirmedMenu": "Customer$7", "CatererConfirmedMenu": "Caterer$3"}
		var links []string
		for _, r := range rows {
			if r.Link {
				links = append(links, r.Type)
				if !strings.Contains(r.Text, "written to "+origin[r.Type]) {
					t.Errorf("linked %s is not marked with %s, the stream it was written to: %q", r.Type, origin[r.Type], r.Text)
				}
			}
		}
		slices.Sort(links)
		if !slices.Equal(links, []string{"CatererConfirmedMenu", "CustomerConfirmedMenu"}) {
			t.Errorf("linked events shown: %v, want both facts", links)
		}
		// Newest first: the first row has the highest version.
		var versions []int
		b.eval(t, `[...document.querySelectorAll('main tbody tr td:first-child')].map(td => +td.textContent)`, &versions)
		if !slices.IsSortedFunc(versions, func(a, b int) int { return b - a }) || len(versions) != len(rows) {
			t.Errorf("versions %v are not newest first", versions)
		}
		b.screenshot(t, "stream")
	})

	t.Run("event", func(t *testing.T) {
		defer b.check(t)
		b.open(t, "#/events/"+cause, "event")
		var streams []string
		b.eval(t, `[...document.querySelectorAll('#streams a')].map(a => a.textContent)`, &streams)
		if len(streams) != 2 || !slices.Contains(streams, "CateringMatch$42") {
			t.Errorf("the fact is shown in streams %v, want its own and CateringMatch$42", streams)
		}
		var caused []entry
		b.eval(t, `[...document.querySelectorAll('#caused tbody tr')].map(tr => ({ID: tr.dataset.id, Type: tr.dataset.type}))`, &caused)
		if !slices.Contains(caused, entry{ID: confirm.ID, Type: "ConfirmOrder"}) {
			t.Errorf("caused %+v lacks ConfirmOrder %s", caused, confirm.ID)
		}
		var data string
		b.eval(t, `document.querySelector('pre.json').textContent`, &data)
		if !strings.Contains(data, `"order_id": "42"`) {
			t.Errorf("data shown as %q", data)
		}
		b.screenshot(t, "event")

		// The command it caused, and back.
		b.click(t, to("#/events/"+confirm.ID), "event")
		var parent string
		b.eval(t, `document.querySelector('#causation a.event').textContent`, &parent)
		if parent != cause {
			t.Errorf("ConfirmOrder's causation shows %q, want %s", parent, cause)
		}
	})

	t.Run("retention and erasure", func(t *testing.T) {
		defer b.check(t)
		d.append(t, "Kept$1", fact{Type: "A", Data: map[string]any{"n": 1}}, fact{Type: "B", Data: map[string]any{"n": 2}})
		d.call(t, "PUT", "/v1/streams/Kept%241/metadata", `{"max_age":"720h","max_count":1}`, http.StatusOK)
		d.append(t, "Secret$1", fact{Type: "AddressGiven", Data: map[string]any{"street": "Secret Lane"}})
		d.call(t, "POST", "/v1/streams/Secret%241/erase", "", http.StatusNoContent)

		b.open(t, "#/streams/Kept%241", "stream")
		var kept string
		var rows int
		b.eval(t, `document.getElementById('retention').textContent`, &kept)
		b.eval(t, `document.querySelectorAll('main tbody tr').length`, &rows)
		if kept != "Retention keeps events younger than 720h0m0s, the newest 1 versions." || rows != 1 {
			t.Errorf("stream with retention: %q, %d rows; want the settings in words and 1 row", kept, rows)
		}
		b.open(t, "#/streams/Secret%241", "stream")
		var mark string
		b.eval(t, `document.querySelector('main tbody tr .preview').textContent`, &mark)
		if mark != "erased" {
			t.Errorf("an erased event's data shows %q, want the erased mark", mark)
		}
	})

	t.Run("live", func(t *testing.T) {
		defer b.check(t)
		b.open(t, "#/streams/Customer%247", "stream")
		b.eval(t, `window.notReloaded = true`, nil)
		id := "0195f0c1-7d2a-7000-8000-00000000c0de"
		d.append(t, "Customer$7", fact{ID: id, Type: "CustomerChangedMenu", Data: map[string]any{"order_id": "42"}})
		b.run(t, chromedp.Poll(fmt.Sprintf(`document.querySelector('main tbody tr[data-id=%q]') !== null`, id), nil,
			chromedp.WithPollingTimeout(15*time.Second)))
		var first string
		var same bool
		b.eval(t, `document.querySelector('main tbody tr').dataset.id`, &first)
		b.eval(t, `window.notReloaded === true`, &same)
		if first != id || !same {
			t.Errorf("new event at the top: %v (first row %s), page not reloaded: %v", first == id, first, same)
		}

		// A process's timeline follows its stream: the second fact completes it.
		d.append(t, "Customer$9", fact{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": "44"}})
		d.await(t, "CateringMatch$44", "DeadlineScheduled")
		b.open(t, "#/processes/CateringMatch/44", "process")
		b.eval(t, `window.notReloaded = true`, nil)
		d.append(t, "Caterer$9", fact{Type: "CatererConfirmedMenu", Data: map[string]any{"order_id": "44"}})
		b.run(t, chromedp.Poll(`document.querySelector('#timeline > li[data-type="ConfirmOrder"]') !== null`, nil,
			chromedp.WithPollingTimeout(15*time.Second)))
		var status string
		b.eval(t, `document.getElementById('status').innerText`, &status)
		b.eval(t, `window.notReloaded === true`, &same)
		if status != "completed" || !same {
			t.Errorf("after the second fact, live: status %q, page not reloaded: %v", status, same)
		}

		// $all, filtered by type, follows too.
		b.open(t, "#/all?types=CustomerChangedMenu", "all")
		// An event of another type first: by the time the second shows, the first was passed over.
		d.append(t, "Customer$8", fact{Type: "Ignored"})
		d.append(t, "Customer$8", fact{Type: "CustomerChangedMenu", Data: map[string]any{"order_id": "43"}})
		b.run(t, chromedp.Poll(`document.querySelectorAll('main tbody tr').length === 2`, nil, chromedp.WithPollingTimeout(15*time.Second)))
		var rows []entry
		b.eval(t, rowsJS, &rows)
		for _, r := range rows {
			if r.Type != "CustomerChangedMenu" {
				t.Errorf("$all filtered by CustomerChangedMenu shows %s", r.Type)
			}
		}
	})

	t.Run("escaping", func(t *testing.T) {
		defer b.check(t)
		name := "<script>alert(1)</script>"
		typ := "<img src=x onerror=alert(2)>"
		html := `<b id="bold">x</b><script>alert(3)</script>`
		d.append(t, name, fact{Type: typ, Data: map[string]any{"html": html}})
		// What no page may contain: elements made from store data.
		const injected = `document.querySelectorAll('main img, main script, #bold').length +
			[...document.scripts].filter(s => !['/app.js', '/vendor/uplot/uPlot.iife.min.js'].includes(new URL(s.src || 'x:', location).pathname)).length`

		b.open(t, "#/streams?prefix="+url.QueryEscape("<script>"), "streams")
		var shown []string
		b.eval(t, `[...document.querySelectorAll('tr[data-stream] a')].map(a => a.textContent)`, &shown)
		if !slices.Equal(shown, []string{name}) {
			t.Errorf("streams with prefix <script>: %q, want the name as text", shown)
		}
		b.click(t, "tr[data-stream] a", "stream")
		var h1 string
		b.eval(t, `document.querySelector('h1').textContent`, &h1)
		if h1 != "Stream"+name {
			t.Errorf("stream page title %q", h1)
		}
		var rows []entry
		b.eval(t, rowsJS, &rows)
		if len(rows) != 1 || rows[0].Type != typ || !strings.Contains(rows[0].Text, typ) || !strings.Contains(rows[0].Text, `"html":"<b id=`) {
			t.Fatalf("rows %+v", rows)
		}
		for _, page := range []struct{ fragment, name string }{
			{"#/events/" + rows[0].ID, "event"},
			{"#/all", "all"},
		} {
			b.open(t, page.fragment, page.name)
			var text string
			b.eval(t, `document.getElementById('main').innerText`, &text)
			if !strings.Contains(text, typ) {
				t.Errorf("%s does not show the type %q as text", page.fragment, typ)
			}
			var n int
			b.eval(t, injected, &n)
			if n != 0 {
				t.Errorf("%s holds %d elements made from store data", page.fragment, n)
			}
		}
		var data string
		b.open(t, "#/events/"+rows[0].ID, "event")
		b.eval(t, `document.querySelector('pre.json').textContent`, &data)
		if !strings.Contains(data, `<b id=\"bold\">x</b>`) {
			t.Errorf("data shown as %q", data)
		}
	})

	t.Run("paging", func(t *testing.T) {
		defer b.check(t)
		for i := range 5 {
			d.append(t, fmt.Sprintf("Page$%d", i), fact{Type: "Paged"})
		}
		b.open(t, "#/streams?prefix=Page%24&limit=3", "streams")
		var names []string
		page := `[...document.querySelectorAll('tr[data-stream]')].map(tr => tr.dataset.stream)`
		b.eval(t, page, &names)
		if !slices.Equal(names, []string{"Page$0", "Page$1", "Page$2"}) {
			t.Fatalf("first page %v", names)
		}
		b.click(t, "a[rel=next]", "streams")
		b.eval(t, page, &names)
		if !slices.Equal(names, []string{"Page$3", "Page$4"}) {
			t.Fatalf("second page %v", names)
		}
		if next := nextLink(t, b); next != "" {
			t.Errorf("the last page links to %s", next)
		}

		// Typing a prefix filters without leaving the page.
		b.run(t, chromedp.SetValue("#prefix", "Page$4", chromedp.ByQuery),
			chromedp.Evaluate(`document.getElementById('prefix').dispatchEvent(new Event('input'))`, nil),
			chromedp.Poll(`location.hash === '#/streams?prefix=Page%244&limit=3' && document.getElementById('main').dataset.route === location.hash`, nil,
				chromedp.WithPollingTimeout(15*time.Second)))
		b.eval(t, page, &names)
		if !slices.Equal(names, []string{"Page$4"}) {
			t.Errorf("after typing Page$4: %v", names)
		}

		d.append(t, "Pages", fact{Type: "Paged"}, fact{Type: "Paged"}, fact{Type: "Paged"})
		b.open(t, "#/streams/Pages?limit=2", "stream")
		var versions []int
		column := `[...document.querySelectorAll('main tbody tr td:first-child')].map(td => +td.textContent)`
		b.eval(t, column, &versions)
		if !slices.Equal(versions, []int{2, 1}) {
			t.Fatalf("newest page %v", versions)
		}
		b.click(t, "a[rel=next]", "stream")
		b.eval(t, column, &versions)
		if !slices.Equal(versions, []int{0}) || nextLink(t, b) != "" {
			t.Errorf("older page %v, next %q", versions, nextLink(t, b))
		}
	})

	if t.Failed() {
		t.Logf("pmd logs:\n%s", d.logs)
	}
}

// nextLink is the href of the page's "next" link, "" if it has none.
func nextLink(t *testing.T, b *browser) string {
	t.Helper()
	var href string
	b.eval(t, `(a => a ? a.getAttribute('href') : '')(document.querySelector('a[rel=next]'))`, &href)
	return href
}

// removeProfile removes chromium's profile directory. Its helper processes may go on
// writing there for a moment after the browser has exited, so a failed removal is
// tried again for a few seconds; a directory that outlives that is left behind with a
// log line, since it is not what any test checks.
func removeProfile(t *testing.T, dir string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := os.RemoveAll(dir)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Logf("leaving chromium's profile %s: %v", dir, err)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
