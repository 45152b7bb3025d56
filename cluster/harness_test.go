package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The tests here run real pmd processes: TestMain builds the binary once.
var pmdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pmd-cluster-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	pmdBin = filepath.Join(dir, "pmd")
	if out, err := exec.Command("go", "build", "-o", pmdBin, "../cmd/pmd").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build pmd: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proxy stands in front of a node's Raft address: the other nodes dial it, and it can
// cut the links from chosen nodes (it reads the dialer's id from the connection's
// header, see mux.go), both ways, as a network partition would.
type proxy struct {
	ln     net.Listener
	mu     sync.Mutex
	target string          // the node's Raft address in its current run; "" while unknown
	cut    map[string]bool // dialer ids whose connections are refused
	conns  map[net.Conn]string
	wg     sync.WaitGroup
}

func newProxy(t testing.TB) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, cut: map[string]bool{}, conns: map[net.Conn]string{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

// setTarget points the proxy at the Raft address the node listens on in this run (it
// binds port 0, so each run has its own).
func (p *proxy) setTarget(addr string) {
	p.mu.Lock()
	p.target = addr
	p.mu.Unlock()
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.pipe(c)
		}()
	}
}

func (p *proxy) pipe(c net.Conn) {
	defer c.Close()
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return
	}
	id := make([]byte, hdr[1])
	if _, err := io.ReadFull(c, id); err != nil {
		return
	}
	from := string(id)
	p.mu.Lock()
	target := p.target
	p.mu.Unlock()
	if target == "" {
		return // the node has not started: as if it were down
	}
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer up.Close()
	p.mu.Lock()
	if p.cut[from] {
		p.mu.Unlock()
		return
	}
	p.conns[c], p.conns[up] = from, from
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		delete(p.conns, up)
		p.mu.Unlock()
	}()
	if _, err := up.Write(append(hdr[:], id...)); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
}

// block refuses the connections dialed by the nodes ids (and closes those open); an
// empty list lets every node through again.
func (p *proxy) block(ids ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = map[string]bool{}
	for _, id := range ids {
		p.cut[id] = true
	}
	for c, from := range p.conns {
		if p.cut[from] {
			c.Close()
		}
	}
}

func (p *proxy) close() {
	p.ln.Close()
	p.block("*")
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// tnode is one pmd process of a test cluster. Each run binds port 0 for HTTP and Raft,
// free for sure (a port found free and closed could be taken before pmd binds it), and
// the harness learns the ports from the process's log: the proxy's address, which the
// node advertises, stays the same across runs.
type tnode struct {
	id     string
	join   string   // --join; "" for none
	expect int      // --bootstrap-expect
	flags  []string // this node's own flags, after the cluster's
	dir    string
	proxy  *proxy
	log    *bytes.Buffer // the process's stderr, all its runs
	logMu  *sync.Mutex
	cmd    *exec.Cmd
	waited chan struct{}

	mu   sync.Mutex
	http string // guarded by mu: the HTTP address of the current (or last) run
}

// tcluster is a cluster of pmd processes on loopback, each node's Raft traffic through
// its proxy.
type tcluster struct {
	t     testing.TB
	nodes []*tnode
	flags []string // extra flags of every node

	// For nodes serving HTTPS (--tls-cert): a client trusting their certificate. The
	// harness's own requests (view, post, all) go through it; nil is plain HTTP.
	tls *http.Client
}

// httpAddr is node i's HTTP address in its current (or last) run.
func (c *tcluster) httpAddr(i int) string {
	nd := c.nodes[i]
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.http
}

// url is the address of path on node i.
func (c *tcluster) url(i int, path string) string {
	if c.tls != nil {
		return "https://" + c.httpAddr(i) + path
	}
	return "http://" + c.httpAddr(i) + path
}

// client is the HTTP client of the harness's requests.
func (c *tcluster) client() *http.Client {
	if c.tls != nil {
		return c.tls
	}
	return httpc
}

// newCluster starts n nodes that form a cluster with --bootstrap-expect n.
func newCluster(t testing.TB, n int, flags ...string) *tcluster {
	c := newNodes(t, n, flags...)
	for i := range c.nodes {
		c.start(i)
	}
	return c
}

// newNodes makes n nodes, each to be started with --join naming all of them and
// --bootstrap-expect n, and starts none.
func newNodes(t testing.TB, n int, flags ...string) *tcluster {
	c := &tcluster{t: t, flags: flags}
	for i := range n {
		nd := &tnode{id: fmt.Sprintf("n%d", i+1), dir: t.TempDir(), proxy: newProxy(t), log: &bytes.Buffer{}, logMu: &sync.Mutex{}}
		c.nodes = append(c.nodes, nd)
	}
	for _, nd := range c.nodes {
		nd.join, nd.expect = c.joinList(), n
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.kill(i)
		}
		if t.Failed() {
			for _, nd := range c.nodes {
				nd.logMu.Lock()
				t.Logf("%s's log:\n%s", nd.id, lastLines(nd.log.String(), 40))
				nd.logMu.Unlock()
			}
		}
	})
	return c
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// lineWriter hands each whole line written to it to line, and passes every byte on.
type lineWriter struct {
	to      io.Writer
	line    func(string)
	partial []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.line(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	return w.to.Write(p)
}

// The log lines a run's addresses are read from (text slog): the cluster's start
// (cluster.Start) and the HTTP server's.
var (
	raftListenRe = regexp.MustCompile(`msg="cluster: node started" .*\braft_listen=(\S+)`)
	servingRe    = regexp.MustCompile(`msg="pmd serving" .*\baddr=(\S+)`)
)

func (c *tcluster) joinList() string {
	var addrs []string
	for _, nd := range c.nodes {
		addrs = append(addrs, nd.proxy.addr())
	}
	return strings.Join(addrs, ",")
}

// start starts node i (again), with the same flags each time, and returns once it
// serves HTTP (or exited).
func (c *tcluster) start(i int) {
	nd := c.nodes[i]
	args := append([]string{"serve", "--data", nd.dir, "--addr", "127.0.0.1:0", "--node-id", nd.id,
		"--raft-addr", "127.0.0.1:0", "--raft-advertise", nd.proxy.addr(), "--join", nd.join,
		"--bootstrap-expect", fmt.Sprint(nd.expect), "--scavenge-every", "0"}, c.flags...)
	c.run(i, append(args, nd.flags...))
}

// serveSingle starts node i's data directory as a single node (no --node-id), and
// returns once it serves HTTP.
func (c *tcluster) serveSingle(i int) {
	c.run(i, []string{"serve", "--data", c.nodes[i].dir, "--addr", "127.0.0.1:0", "--scavenge-every", "0"})
}

// run starts pmd with args as node i, learns the addresses it bound from its log (the
// proxy is pointed at its Raft address), and returns once it serves HTTP, or exited
// (what the test then sees). It may run outside the test's goroutine: it reports a
// failure without stopping the test there.
func (c *tcluster) run(i int, args []string) {
	nd := c.nodes[i]
	serving := make(chan struct{})
	var once sync.Once
	w := &lineWriter{to: lockedWriter{nd.logMu, nd.log}, line: func(l string) {
		if m := raftListenRe.FindStringSubmatch(l); m != nil {
			nd.proxy.setTarget(m[1])
		}
		if m := servingRe.FindStringSubmatch(l); m != nil {
			nd.mu.Lock()
			nd.http = m[1]
			nd.mu.Unlock()
			once.Do(func() { close(serving) })
		}
	}}
	nd.proxy.setTarget("")
	// The addresses are read from text log lines: a PMD_LOG_FORMAT=json the test runs
	// under, which the node would inherit, must not change them.
	cmd := exec.Command(pmdBin, append(args, "--log-format", "text")...)
	cmd.Stdout, cmd.Stderr = w, w // one writer: exec copies both through one goroutine
	if err := cmd.Start(); err != nil {
		c.t.Errorf("start %s: %v", nd.id, err)
		return
	}
	nd.cmd, nd.waited = cmd, make(chan struct{})
	waited := nd.waited
	go func() {
		cmd.Wait()
		close(waited)
	}()
	select {
	case <-serving:
	case <-waited:
	case <-time.After(time.Minute):
		c.t.Errorf("%s does not serve HTTP within a minute of its start", nd.id)
	}
}

// stop stops node i with SIGTERM (a clean shutdown) and waits for it to be gone.
func (c *tcluster) stop(i int) {
	nd := c.nodes[i]
	if nd.cmd == nil {
		return
	}
	nd.cmd.Process.Signal(syscall.SIGTERM)
	<-nd.waited
	nd.cmd = nil
}

// kill stops node i with SIGKILL and waits for it to be gone.
func (c *tcluster) kill(i int) {
	nd := c.nodes[i]
	if nd.cmd == nil {
		return
	}
	nd.cmd.Process.Signal(syscall.SIGKILL)
	<-nd.waited
	nd.cmd = nil
}

func (c *tcluster) alive(i int) bool { return c.nodes[i].cmd != nil }

// clusterView is GET /v1/cluster.
type clusterView struct {
	NodeID       string `json:"node_id"`
	LeaderID     string `json:"leader_id"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	Nodes        []struct {
		ID           string  `json:"id"`
		HTTPAddr     string  `json:"http_addr"`
		RaftAddr     string  `json:"raft_addr"`
		State        string  `json:"state"`
		AppliedIndex *uint64 `json:"applied_index"`
	} `json:"nodes"`
}

var httpc = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

func (c *tcluster) view(i int) (clusterView, error) {
	var v clusterView
	resp, err := c.client().Get(c.url(i, "/v1/cluster"))
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return v, fmt.Errorf("GET /v1/cluster: %s", resp.Status)
	}
	return v, json.NewDecoder(resp.Body).Decode(&v)
}

// waitFor polls cond every 50ms until it holds or d has passed, then fails the test
// with what cond last said.
func (c *tcluster) waitFor(d time.Duration, what string, cond func() error) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: not within %s: %v", what, d, err)
		}
		time.Sleep(50 * time.Millisecond) // polling a process's state: nothing to wait on
	}
}

// leader waits until every live node names the same leader, and the leader says it
// leads, and returns its index.
func (c *tcluster) leader() int {
	c.t.Helper()
	var lead int
	c.waitFor(30*time.Second, "a leader all live nodes agree on", func() error {
		id := ""
		for i := range c.nodes {
			if !c.alive(i) {
				continue
			}
			v, err := c.view(i)
			if err != nil {
				return err
			}
			if v.LeaderID == "" || (id != "" && v.LeaderID != id) {
				return fmt.Errorf("%s sees leader %q", c.nodes[i].id, v.LeaderID)
			}
			id = v.LeaderID
		}
		for i, nd := range c.nodes {
			if nd.id == id && c.alive(i) {
				lead = i
				// The leader takes writes once it has applied its term's first entries.
				st, _, err := c.append(i, "$probe-does-not-exist", "any", "")
				if err != nil || st != http.StatusBadRequest {
					return fmt.Errorf("leader %s not answering yet: %d %v", id, st, err)
				}
				return nil
			}
		}
		return fmt.Errorf("the leader %q is not a live node", id)
	})
	return lead
}

// append appends one event of type T to stream through node i; id may be "" for a
// store-made one. It returns the status and the body.
func (c *tcluster) append(i int, stream, expected, id string) (int, map[string]any, error) {
	ev := map[string]any{"type": "T", "data": map[string]any{"n": 1}}
	if id != "" {
		ev["id"] = id
	}
	body := map[string]any{"expected_version": expected, "events": []any{ev}}
	if n, err := fmt.Sscan(expected, new(int64)); n == 1 && err == nil {
		var v int64
		fmt.Sscan(expected, &v)
		body["expected_version"] = v
	}
	return c.post(i, "/v1/streams/"+url.PathEscape(stream), body)
}

// appendMany appends n events through node i from 16 concurrent writers, each to its
// own stream named prefix$w, and fails the test on any refused append.
func (c *tcluster) appendMany(t testing.TB, i int, prefix string, n int64) {
	t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= n {
				if st, body, err := c.append(i, fmt.Sprintf("%s$%d", prefix, w), "any", ""); err != nil || st != http.StatusCreated {
					t.Errorf("append: %d %v %v", st, body, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

func (c *tcluster) post(i int, path string, body any) (int, map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return c.postCtx(ctx, i, path, body)
}

// postCtx posts body as JSON to path on node i, giving up when ctx ends.
func (c *tcluster) postCtx(ctx context.Context, i int, path string, body any) (int, map[string]any, error) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, "POST", c.url(i, path), bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client().Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil && !errors.Is(err, io.EOF) {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, out, nil
}

// metrics returns node i's /metrics.
func (c *tcluster) metrics(i int) (string, error) {
	resp, err := c.client().Get(c.url(i, "/metrics"))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET /metrics: %s: %.300s", resp.Status, b)
	}
	return string(b), err
}

// term returns the greatest Raft term of the live nodes (pmd_raft_term): it grows with
// every election, won or not.
func (c *tcluster) term() (uint64, error) {
	var term uint64
	for i := range c.nodes {
		if !c.alive(i) {
			continue
		}
		m, err := c.metrics(i)
		if err != nil {
			return 0, err
		}
		_, v, ok := strings.Cut(m, "\npmd_raft_term ")
		if !ok {
			return 0, fmt.Errorf("%s's /metrics lack pmd_raft_term", c.nodes[i].id)
		}
		v, _, _ = strings.Cut(v, "\n")
		t, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("%s's pmd_raft_term: %w", c.nodes[i].id, err)
		}
		term = max(term, uint64(t))
	}
	return term, nil
}

// all reads $all on node i (with ?consistency=leader if leader), every page, and returns
// the events' ids and positions in order.
func (c *tcluster) all(i int, leader bool) ([]string, error) {
	var ids []string
	from := "0"
	for {
		u := c.url(i, "/v1/all?limit=1000&from="+from)
		if leader {
			u += "&consistency=leader"
		}
		resp, err := c.client().Get(u)
		if err != nil {
			return nil, err
		}
		var page struct {
			Events []struct {
				ID       string `json:"id"`
				Position uint64 `json:"position"`
			} `json:"events"`
			Next *uint64 `json:"next"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("GET /v1/all: %s", resp.Status)
		}
		for _, e := range page.Events {
			ids = append(ids, fmt.Sprintf("%d:%s", e.Position, e.ID))
		}
		if page.Next == nil {
			return ids, nil
		}
		from = fmt.Sprint(*page.Next)
	}
}

// converged waits until every live node's $all equals the leader's, and returns it.
func (c *tcluster) converged(d time.Duration) []string {
	c.t.Helper()
	var want []string
	c.waitFor(d, "every node's $all the same", func() error {
		lead := -1
		for i := range c.nodes {
			if c.alive(i) {
				if v, err := c.view(i); err == nil && v.LeaderID == c.nodes[i].id {
					lead = i
				}
			}
		}
		if lead < 0 {
			return errors.New("no leader")
		}
		var err error
		if want, err = c.all(lead, false); err != nil {
			return err
		}
		for i := range c.nodes {
			if !c.alive(i) || i == lead {
				continue
			}
			got, err := c.all(i, false)
			if err != nil {
				return err
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				return fmt.Errorf("%s holds %d events, the leader %d", c.nodes[i].id, len(got), len(want))
			}
		}
		return nil
	})
	return want
}

// TestHarnessUnderJSONLogs: the harness learns a node's addresses from its text log
// even when the environment asks for JSON logs, which the node inherits.
func TestHarnessUnderJSONLogs(t *testing.T) {
	t.Setenv("PMD_LOG_FORMAT", "json")
	c := newNodes(t, 1)
	c.serveSingle(0)
	if !c.alive(0) || c.httpAddr(0) == "" {
		t.Fatalf("the harness did not learn the node's HTTP address under PMD_LOG_FORMAT=json")
	}
}
