package browsertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// receiver is a webhook that refuses the commands of the orders in failing.
type receiver struct {
	mu      sync.Mutex
	failing map[string]bool
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var body struct {
		ProcessID string `json:"process_id"`
	}
	_ = jsonDecode(req, &body)
	r.mu.Lock()
	fail := r.failing[body.ProcessID]
	r.mu.Unlock()
	if fail {
		http.Error(w, "the receiver is down for "+body.ProcessID, http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) heal(order string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.failing, order)
}

func jsonDecode(req *http.Request, v any) error { return json.NewDecoder(req.Body).Decode(v) }

// operatorConfig is the catering process manager delivering to url, parking a command
// at its first failure; and, with subs, the subscription billing delivering its
// ConfirmOrder events to subs, parking one at its first failure.
func operatorConfig(t *testing.T, url string, subs ...string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "pmd.yaml")
	yaml := fmt.Sprintf(`processes:
  - name: CateringMatch
    correlate_by: order_id
    handles: [CustomerConfirmedMenu, CatererConfirmedMenu]
    complete_when: all
    issue: {type: ConfirmOrder}
    deadline: {after: 48h, issue: {type: CancelOrder}}
    deliver: {webhook: %s, max_attempts: 1}
`, url)
	if len(subs) > 0 {
		yaml += fmt.Sprintf(`subscriptions:
  - name: billing
    types: [ConfirmOrder]
    deliver: {webhook: %s, max_attempts: 1}
`, subs[0])
	}
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestBrowserOperator drives the pages an operator keeps open: the dashboard, the
// process list by status and age, the parked commands with retry and skip, search,
// and the pages of things that do not exist.
func TestBrowserOperator(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pmd and drives a headless chromium; skipped in -short")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not found at /usr/bin/chromium: run scripts/install-chromium.sh")
	}
	rcv := &receiver{failing: map[string]bool{"p1": true, "p2": true}}
	hook := httptest.NewServer(rcv)
	t.Cleanup(hook.Close)
	// The subscription's receiver is down until healed.
	billing := &receiver{failing: map[string]bool{"": true}}
	subHook := httptest.NewServer(billing)
	t.Cleanup(subHook.Close)
	d := startDaemon(t, "--config", operatorConfig(t, hook.URL, subHook.URL))

	// Two open orders, o1 first; ok1 confirmed and delivered; p1 and p2 confirmed, their
	// ConfirmOrder parked at the first failure.
	d.append(t, "Customer$1", fact{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": "o1"}})
	d.append(t, "Customer$2", fact{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": "o2"}})
	for _, order := range []string{"ok1", "p1", "p2"} {
		d.append(t, "Customer$"+order, fact{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": order}})
		d.append(t, "Caterer$"+order, fact{Type: "CatererConfirmedMenu", Data: map[string]any{"order_id": order}})
	}
	d.await(t, "CateringMatch.deliveries$ok1", "CommandDelivered")
	d.await(t, "CateringMatch.deliveries$p1", "CommandParked")
	d.await(t, "CateringMatch.deliveries$p2", "CommandParked")
	d.await(t, "billing.subscription", "EventParked")
	d.await(t, "CateringMatch$o1", "DeadlineScheduled")
	d.await(t, "CateringMatch$o2", "DeadlineScheduled")
	emptyID := "0195f0c1-7d2a-7000-8000-0000000000e0"
	d.append(t, "Empty$1", fact{ID: emptyID, Type: "Nothing", Data: map[string]any{}})

	b := newBrowser(t, d.browserBase(t))
	t.Cleanup(func() {
		b.check(t)
		if t.Failed() {
			t.Logf("pmd logs:\n%s", d.logs)
		}
	})
	poll := func(t *testing.T, expr string) {
		t.Helper()
		b.run(t, chromedp.Poll(expr, nil, chromedp.WithPollingTimeout(15*time.Second)))
	}
	text := func(t *testing.T, selector string) string {
		t.Helper()
		var s string
		b.eval(t, fmt.Sprintf(`(n => n ? n.textContent : '<missing>')(document.querySelector(%q))`, selector), &s)
		return s
	}
	rowsOf := func(t *testing.T, attr string) []string {
		t.Helper()
		var out []string
		b.eval(t, fmt.Sprintf(`[...document.querySelectorAll('main tbody tr[data-%s]')].map(tr => tr.dataset[%q])`, attr, attr), &out)
		return out
	}

	t.Run("dashboard", func(t *testing.T) {
		defer b.check(t)
		b.open(t, "#/", "dashboard")
		// The store counts its events in the background after its start: the
		// dashboard, asking every two seconds, shows them once counted.
		poll(t, `document.getElementById('store-events').textContent !== '…'`)
		if got := text(t, "#store-segments"); got != "1" {
			t.Errorf("segments %q, want 1", got)
		}
		row := `tr[data-manager="CateringMatch"] `
		// A parking is recorded just before the manager counts it: the dashboard shows
		// it at the latest at its next refresh.
		poll(t, `document.querySelector('tr[data-manager="CateringMatch"] td.parked').textContent === '2'`)
		for cell, want := range map[string]string{"td.open": "2", "td.completed": "3", "td.parked": "2", "td.expired": "0"} {
			if got := text(t, row+cell); got != want {
				t.Errorf("CateringMatch %s shows %q, want %s", cell, got, want)
			}
		}
		if got := text(t, row+"td.failures"); !strings.Contains(got, "%") && got != "–" {
			t.Errorf("failure rate shows %q", got)
		}
		if got := text(t, "#health"); !strings.Contains(got, "healthy") {
			t.Errorf("health shows %q", got)
		}
		var charts int
		b.eval(t, `document.querySelectorAll('#chart-writes canvas, #chart-commits canvas').length`, &charts)
		if charts != 2 {
			t.Errorf("%d charts drawn, want 2", charts)
		}
		var hidden bool
		b.eval(t, `document.getElementById('cluster').hidden`, &hidden)
		if !hidden {
			t.Errorf("a single node shows a cluster panel")
		}
		sub := `tr[data-subscription="billing"] `
		poll(t, `(td => td && td.textContent === '1')(document.querySelector('tr[data-subscription="billing"] td.parked'))`)
		if got, parked := text(t, sub+"td.parked"), text(t, sub+"td:nth-child(3)"); got != "1" || parked != "parked" {
			t.Errorf("subscription billing shows %s parked, status %q; want 1, parked", got, parked)
		}
		// It follows the daemon: a new order shows without a reload.
		b.eval(t, `window.notReloaded = true`, nil)
		d.append(t, "Customer$3", fact{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": "o3"}})
		poll(t, `document.querySelector('tr[data-manager="CateringMatch"] td.open').textContent === '3' && window.notReloaded`)
		b.screenshotPage(t, "dashboard")
	})

	t.Run("process list", func(t *testing.T) {
		defer b.check(t)
		b.click(t, `tr[data-manager="CateringMatch"] td.open a`, "process-list")
		if got := b.hash(t); got != "#/processes/CateringMatch?status=open&sort=age" {
			t.Errorf("the open count links to %s", got)
		}
		// Oldest first: o1, o2, then o3 of the dashboard's test.
		if got := rowsOf(t, "process"); !slices.Equal(got, []string{"o1", "o2", "o3"}) {
			t.Errorf("open processes oldest first: %v", got)
		}
		var stuck int
		b.eval(t, `document.querySelectorAll('tr.stuck').length`, &stuck)
		if stuck != 0 {
			t.Errorf("%d processes marked stuck within a minute of their start, threshold 1h", stuck)
		}
		// A threshold of 0s: every open process is stuck.
		b.run(t, chromedp.SetValue("#stuck", "0s", chromedp.ByQuery),
			chromedp.Evaluate(`document.getElementById('stuck').dispatchEvent(new Event('change'))`, nil))
		poll(t, `location.hash.includes('stuck=0s') && document.getElementById('main').dataset.route === location.hash`)
		b.eval(t, `document.querySelectorAll('tr.stuck[data-stuck="true"] .mark.stuck').length`, &stuck)
		if stuck != 3 {
			t.Errorf("%d processes marked stuck with a threshold of 0s, want 3", stuck)
		}
		b.screenshot(t, "processes")

		// Another status, by the select.
		b.run(t, chromedp.SetValue("#status", "parked", chromedp.ByQuery),
			chromedp.Evaluate(`document.getElementById('status').dispatchEvent(new Event('change'))`, nil))
		poll(t, `location.hash.includes('status=parked') && document.getElementById('main').dataset.route === location.hash`)
		if got := rowsOf(t, "process"); !slices.Equal(got, []string{"p1", "p2"}) {
			t.Errorf("processes with a parked command: %v", got)
		}
		// Completed, in id order, a page of one at a time.
		b.open(t, "#/processes/CateringMatch?status=completed&limit=1", "process-list")
		var pages []string
		for range 4 {
			pages = append(pages, rowsOf(t, "process")...)
			if nextLink(t, b) == "" {
				break
			}
			b.click(t, "a[rel=next]", "process-list")
		}
		if !slices.Equal(pages, []string{"ok1", "p1", "p2"}) {
			t.Errorf("completed processes page by page: %v", pages)
		}
		b.click(t, to("#/processes/CateringMatch/p2"), "process")
		var nulls bool
		b.eval(t, `[...document.querySelectorAll('main, main *')].some(n => [...n.childNodes].some(c => c.nodeType === 3 && c.textContent === 'null'))`, &nulls)
		if nulls {
			t.Errorf("the process page shows a bare null")
		}
	})

	t.Run("parked", func(t *testing.T) {
		defer b.check(t)
		b.open(t, "#/parked", "parked")
		poll(t, `document.querySelectorAll('tr[data-process]').length === 2`)
		// In the order they were issued: p1 and p2 were issued at the same time.
		if got := rowsOf(t, "process"); !slices.Equal(slices.Sorted(slices.Values(got)), []string{"p1", "p2"}) {
			t.Fatalf("parked commands of processes %v, want p1 and p2", got)
		}
		b.screenshot(t, "parked")
		rcv.heal("p1")
		b.run(t, chromedp.Click(`tr[data-process="p1"] button[data-action="retry"]`, chromedp.ByQuery))
		poll(t, `(r => r && r.dataset.outcome === 'done')(document.getElementById('action-result')) && !document.querySelector('tr[data-process="p1"]')`)
		if got := text(t, "#action-result"); !strings.Contains(got, "Retry ConfirmOrder of CateringMatch$p1: done") {
			t.Errorf("the result of the retry says %q", got)
		}
		d.await(t, "CateringMatch.deliveries$p1", "CommandDelivered")
		b.run(t, chromedp.Click(`tr[data-process="p2"] button[data-action="skip"]`, chromedp.ByQuery))
		poll(t, `document.getElementById('action-result').textContent.includes('Skip ConfirmOrder of CateringMatch$p2: done') && !document.querySelector('tr[data-process]')`)
		// The subscription's parked event: skipped once its receiver is back, the
		// subscription goes on and nothing is parked any more.
		billing.heal("")
		b.run(t, chromedp.Click(`tr[data-subscription="billing"] button[data-action="skip"]`, chromedp.ByQuery))
		poll(t, `document.getElementById('action-result').textContent.includes('for billing: done') && !!document.getElementById('none-parked')`)
		// The timeline shows the skip.
		b.open(t, "#/processes/CateringMatch/p2", "process")
		var outcomes []string
		b.eval(t, `[...document.querySelectorAll('ul.attempts li')].map(li => li.dataset.outcome)`, &outcomes)
		if !slices.Equal(outcomes, []string{"failed", "parked", "skipped"}) {
			t.Errorf("p2's command shows the outcomes %v", outcomes)
		}
	})

	t.Run("search", func(t *testing.T) {
		defer b.check(t)
		search := func(q, page string) {
			t.Helper()
			before := b.hash(t)
			b.run(t, chromedp.SetValue("#search", q, chromedp.ByQuery),
				chromedp.Evaluate(`document.getElementById('search-form').requestSubmit()`, nil))
			b.shown(t, page, before)
		}
		search(emptyID, "event")
		if got := text(t, "#event-id"); got != emptyID {
			t.Errorf("searching an event id shows event %q", got)
		}
		search("Customer$", "search")
		var streams []string
		b.eval(t, `[...document.querySelectorAll('#found-streams a')].map(a => a.textContent)`, &streams)
		if len(streams) != 6 || !slices.Contains(streams, "Customer$p1") {
			t.Errorf("streams found by prefix: %v", streams)
		}
		search("p1", "search")
		var procs []string
		b.eval(t, `[...document.querySelectorAll('#found-processes a')].map(a => a.getAttribute('href'))`, &procs)
		if !slices.Equal(procs, []string{"#/processes/CateringMatch/p1"}) {
			t.Errorf("processes found by id: %v", procs)
		}
		search("0195f0c1-7d2a-7000-8000-0000000000ff", "search")
		if text(t, "#no-event") == "<missing>" || text(t, "#nothing-found") == "<missing>" {
			t.Errorf("an unknown event id does not say it found nothing: %s", text(t, "main"))
		}
	})

	t.Run("not found", func(t *testing.T) {
		defer b.check(t)
		for _, page := range []struct{ fragment, page, says string }{
			{"#/streams/Nope%241", "stream", "No such stream"},
			{"#/events/0195f0c1-7d2a-7000-8000-0000000000ff", "event", "No such event"},
			{"#/processes/CateringMatch/nope", "process", "No such process"},
			{"#/processes/Nope", "process-list", "No such process manager"},
		} {
			b.open(t, page.fragment, page.page)
			if got := text(t, "#not-found"); !strings.Contains(got, page.says) {
				t.Errorf("%s says %q, want %q", page.fragment, got, page.says)
			}
			if live := text(t, "#live"); live != "" {
				t.Errorf("%s shows the live badge %q", page.fragment, live)
			}
		}
	})

	t.Run("empty data", func(t *testing.T) {
		defer b.check(t)
		b.open(t, "#/streams/Empty%241", "stream")
		if got := text(t, "main tbody tr td.preview"); got != "{}" {
			t.Errorf("{} data previews as %q", got)
		}
		b.open(t, "#/events/"+emptyID, "event")
		if got := text(t, "pre.json"); got != "{}" {
			t.Errorf("{} data shows as %q", got)
		}
	})
}

// TestBrowserCluster: a node of a cluster shows the cluster on its dashboard, each node
// with its state, applied index and lag. One node is a cluster too.
func TestBrowserCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pmd and drives a headless chromium; skipped in -short")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not found at /usr/bin/chromium: run scripts/install-chromium.sh")
	}
	// Raft listens on a port the system picks as pmd listens: a port found free here and
	// given to pmd could be taken in between.
	d := startDaemon(t, "--node-id", "n1", "--raft-addr", "127.0.0.1:0", "--bootstrap-expect", "1")
	// The lag of a node is known on the leader only, and only for the nodes that
	// answered it: the dashboard first shows the node's own answer with a member n2
	// added that did not answer, then, once asFollower is set, the cluster as a follower
	// n3 sees it, every lag unknown.
	var asFollower atomic.Bool
	base := frontEditing(t, d, func(body map[string]any) {
		c, ok := body["cluster"].(map[string]any)
		if !ok {
			return
		}
		unreachable := map[string]any{"id": "n2", "http_addr": "10.0.0.2:7070", "raft_addr": "10.0.0.2:7071", "state": "unreachable", "applied_index": nil, "lag": nil}
		nodes, _ := c["nodes"].([]any)
		if asFollower.Load() {
			c["node_id"] = "n3"
			nodes = []any{
				map[string]any{"id": "n1", "http_addr": "10.0.0.1:7070", "raft_addr": "10.0.0.1:7071", "state": "leader", "applied_index": 9, "lag": nil},
				unreachable,
				map[string]any{"id": "n3", "http_addr": "10.0.0.3:7070", "raft_addr": "10.0.0.3:7071", "state": "follower", "applied_index": 9, "lag": nil},
			}
		} else {
			nodes = append(nodes, unreachable)
		}
		c["nodes"] = nodes
	}, "/v1/stats")
	b := newBrowser(t, base)
	t.Cleanup(func() {
		b.check(t)
		if t.Failed() {
			t.Logf("pmd logs:\n%s", d.logs)
		}
	})
	b.open(t, "#/", "dashboard")
	// The node leads once it has elected itself; the dashboard asks every two seconds.
	b.run(t, chromedp.Poll(`!document.getElementById('cluster').hidden && !!document.querySelector('#cluster tr[data-node="n1"][data-state="leader"]')`, nil,
		chromedp.WithPollingTimeout(20*time.Second)))
	raft := raftAddr(t, d, "n1")
	var row string
	b.eval(t, `document.querySelector('#cluster tr[data-node="n1"]').innerText`, &row)
	if !strings.Contains(row, raft) || !strings.Contains(row, "this node") {
		t.Errorf("the cluster panel shows n1 as %q", row)
	}
	// Its lag is counted in Raft entries, not in log positions as a process manager's
	// on the same dashboard: the cell says which.
	var lag string
	b.eval(t, `document.querySelector('#cluster tr[data-node="n1"] td.lag').title`, &lag)
	if !strings.Contains(lag, "Raft") {
		t.Errorf("n1's lag says %q of its unit, want Raft entries", lag)
	}
	// A lag not known says why: the node did not answer, or this node does not lead.
	lagTitle := func(node string) string {
		var s string
		b.eval(t, `(e => e ? e.title : '(no such row)')(document.querySelector('#cluster tr[data-node="`+node+`"] td.lag'))`, &s)
		return s
	}
	b.poll(t, `!!document.querySelector('#cluster tr[data-node="n2"]')`)
	const noAnswer, leaderOnly = "not known: the node did not answer within a second", "not known: only the leader knows a node's lag"
	if got := lagTitle("n2"); got != noAnswer {
		t.Errorf("the leader's dashboard says of the lag of n2, which did not answer: %q, want %q", got, noAnswer)
	}
	asFollower.Store(true)
	b.poll(t, `!!document.querySelector('#cluster tr[data-node="n3"]')`)
	for node, want := range map[string]string{"n1": leaderOnly, "n2": noAnswer, "n3": leaderOnly} {
		if got := lagTitle(node); got != want {
			t.Errorf("a follower's dashboard says of the lag of %s: %q, want %q", node, got, want)
		}
	}
}

// raftAddr is the Raft address the node says node id has (GET /v1/cluster).
func raftAddr(t *testing.T, d *daemon, id string) string {
	t.Helper()
	res, err := http.Get(d.base + "/v1/cluster")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var st struct {
		Nodes []struct {
			ID       string
			RaftAddr string `json:"raft_addr"`
		}
	}
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatalf("GET /v1/cluster: %s: %v", res.Status, err)
	}
	for _, n := range st.Nodes {
		if n.ID == id && !strings.HasSuffix(n.RaftAddr, ":0") {
			return n.RaftAddr
		}
	}
	t.Fatalf("GET /v1/cluster names no Raft address of %s: %+v", id, st.Nodes)
	return ""
}
