package cluster_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// The linearizability checks record histories of expected-version appends and leader
// reads of a few streams, made through random nodes while nodes are killed and
// partitioned, and check them with porcupine against a model of one stream: its last
// version, -1 before the first event.

type opInput struct {
	stream   string
	read     bool
	expected int64 // an append's expected version; -1 is no_stream
}

type opOutput struct {
	unknown bool  // the append may or may not have happened (a timeout, 503)
	ok      bool  // the append won
	version int64 // a read's last version; a refused append's actual version
}

var streamModel = porcupine.NondeterministicModel{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var order []string
		for _, op := range h {
			s := op.Input.(opInput).stream
			if _, ok := by[s]; !ok {
				order = append(order, s)
			}
			by[s] = append(by[s], op)
		}
		out := make([][]porcupine.Operation, 0, len(order))
		for _, s := range order {
			out = append(out, by[s])
		}
		return out
	},
	Init: func() []any { return []any{int64(-1)} },
	Step: func(state, input, output any) []any {
		v, in, out := state.(int64), input.(opInput), output.(opOutput)
		switch {
		case in.read:
			if out.version == v {
				return []any{v}
			}
			return nil
		case out.unknown:
			if v == in.expected {
				return []any{v, v + 1} // it happened, or it did not
			}
			return []any{v}
		case out.ok:
			if v == in.expected {
				return []any{v + 1}
			}
			return nil
		default: // wrong_expected_version, naming the actual version
			if v != in.expected && v == out.version {
				return []any{v}
			}
			return nil
		}
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(opInput), output.(opOutput)
		if in.read {
			return fmt.Sprintf("read(%s) -> %d", in.stream, out.version)
		}
		return fmt.Sprintf("append(%s, expected %d) -> %+v", in.stream, in.expected, out)
	},
}

var actualRe = regexp.MustCompile(`actual (no_stream|\d+)`)

// history records operations from concurrent clients.
type history struct {
	mu  sync.Mutex
	ops []porcupine.Operation
	t0  time.Time
}

func (h *history) add(client int, in opInput, call time.Time, out opOutput, ret time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call.Sub(h.t0).Nanoseconds(),
		Output: out, Return: ret.Sub(h.t0).Nanoseconds()})
}

// appendOp appends through node i with expected version exp and says what came of it.
func (c *tcluster) appendOp(i int, stream string, exp int64) opOutput {
	e := "no_stream"
	if exp >= 0 {
		e = strconv.FormatInt(exp, 10)
	}
	st, body, err := c.append(i, stream, e, "")
	switch {
	case err != nil:
		return opOutput{unknown: true}
	case st == http.StatusCreated:
		return opOutput{ok: true}
	case st == http.StatusConflict && body["error"] == "wrong_expected_version":
		m := actualRe.FindStringSubmatch(fmt.Sprint(body["message"]))
		if m == nil {
			return opOutput{unknown: true}
		}
		if m[1] == "no_stream" {
			return opOutput{version: -1}
		}
		v, _ := strconv.ParseInt(m[1], 10, 64)
		return opOutput{version: v}
	}
	return opOutput{unknown: true}
}

// readOp reads the stream's last version through node i with consistency=leader; ok is
// false when the read failed (it is then left out of the history: it changed nothing).
func (c *tcluster) readOp(i int, stream string) (int64, bool) {
	resp, err := httpc.Get(c.url(i, "/v1/streams/"+url.PathEscape(stream)+
		"?direction=backward&limit=1&consistency=leader"))
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return -1, true
	}
	if resp.StatusCode != 200 {
		return 0, false
	}
	var page struct {
		Events []struct {
			Version int64 `json:"version"`
		} `json:"events"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || len(page.Events) != 1 {
		return 0, false
	}
	return page.Events[0].Version, true
}

// runClients runs clients that make operations on streams through random nodes,
// recording the history, for as long as faults runs, and returns the history.
func (c *tcluster) runClients(clients int, streams []string, faults func()) *history {
	h := &history{t0: time.Now()}
	faultsDone := make(chan struct{})
	go func() {
		defer close(faultsDone)
		faults()
	}()
	var wg sync.WaitGroup
	for cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(cl), 7))
			last := map[string]int64{}
			for {
				select {
				case <-faultsDone:
					return
				default:
				}
				s := streams[r.IntN(len(streams))]
				i := r.IntN(len(c.nodes))
				call := time.Now()
				if r.IntN(3) == 0 {
					v, ok := c.readOp(i, s)
					if ok {
						h.add(cl, opInput{stream: s, read: true}, call, opOutput{version: v}, time.Now())
						last[s] = v
					}
					continue
				}
				exp, ok := last[s]
				if !ok {
					exp = -1
				}
				switch r.IntN(4) { // now and then a stale or a future guess
				case 0:
					exp = max(exp-1, -1)
				case 1:
					exp++
				}
				out := c.appendOp(i, s, exp)
				ret := time.Now()
				if out.unknown {
					ret = ret.Add(time.Hour) // it may take effect at any time after the call
				}
				h.add(cl, opInput{stream: s, expected: exp}, call, out, ret)
				switch {
				case out.ok:
					last[s] = exp + 1
				case !out.unknown:
					last[s] = out.version
				}
			}
		}()
	}
	wg.Wait()
	return h
}

// checkLinearizable fails the test unless the history is linearizable.
func checkLinearizable(t *testing.T, ops []porcupine.Operation) {
	t.Helper()
	res, info := porcupine.CheckOperationsVerbose(streamModel.ToModel(), ops, time.Minute)
	switch res {
	case porcupine.Ok:
		t.Logf("linearizable: %d operations", len(ops))
	case porcupine.Unknown:
		t.Fatalf("porcupine could not decide within a minute (%d operations)", len(ops))
	default:
		f, err := os.CreateTemp("", "pmd-porcupine-*.html")
		if err == nil {
			_ = porcupine.Visualize(streamModel.ToModel(), info, f)
			f.Close()
		}
		t.Fatalf("the history of %d operations is not linearizable; visualization: %s", len(ops), f.Name())
	}
}

// isolate cuts node i off from the others, both ways; heal lets every link through.
func (c *tcluster) isolate(i int) {
	var others []string
	for j, nd := range c.nodes {
		if j != i {
			others = append(others, nd.id)
			nd.proxy.block(c.nodes[i].id)
		}
	}
	c.nodes[i].proxy.block(others...)
}

func (c *tcluster) heal() {
	for _, nd := range c.nodes {
		nd.proxy.block()
	}
}

// faults kills (SIGKILL) or isolates the leader n times, one fault every period: each
// lasts a period, then the node is restarted or the partition healed. It returns the
// number of kills.
func (c *tcluster) faults(n int, period time.Duration) (kills int) {
	r := rand.New(rand.NewPCG(42, uint64(time.Now().UnixNano())))
	tick := time.NewTicker(period)
	defer tick.Stop()
	for done := 0; done < n; {
		<-tick.C // the clients run meanwhile: this is the fault schedule, not a wait for state
		lead := c.leaderQuiet()
		if lead < 0 {
			continue
		}
		done++
		if r.IntN(2) == 0 {
			kills++
			c.kill(lead)
			<-tick.C
			c.start(lead)
		} else {
			c.isolate(lead)
			<-tick.C
			c.heal()
		}
	}
	<-tick.C
	return kills
}

// leaderQuiet returns the node that says it leads, -1 if none does now.
func (c *tcluster) leaderQuiet() int {
	for i := range c.nodes {
		if !c.alive(i) {
			continue
		}
		if v, err := c.view(i); err == nil && v.LeaderID == c.nodes[i].id {
			return i
		}
	}
	return -1
}

// TestClusterLinearizable records a history of expected-version appends and leader reads
// through every node while the leader is killed with SIGKILL and cut off by a partition,
// and checks it with porcupine; every node then holds the same $all.
func TestClusterLinearizable(t *testing.T) {
	c := newCluster(t, 3, "--raft-heartbeat", "300ms")
	c.leader()
	kills := 0
	streams := []string{"Lin$a", "Lin$b"}
	h := c.runClients(4, streams, func() { kills = c.faults(4, 1500*time.Millisecond) })
	t.Logf("4 faults, %d of them kills", kills)
	c.finish(t, h, streams)
}

// finish brings every node back, reads each stream through every node once the copies
// agree (so that a lost acknowledged write shows as a read the model refuses), and checks
// the history.
func (c *tcluster) finish(t *testing.T, h *history, streams []string) {
	t.Helper()
	c.heal()
	for i := range c.nodes {
		if !c.alive(i) {
			c.start(i)
		}
	}
	c.leader()
	c.converged(60 * time.Second)
	for i := range c.nodes {
		for _, s := range streams {
			// A read can fail while the leader settles after the last fault: retried.
			c.waitFor(30*time.Second, "a final read of "+s+" through "+c.nodes[i].id, func() error {
				call := time.Now()
				v, ok := c.readOp(i, s)
				if !ok {
					return fmt.Errorf("the read failed")
				}
				h.add(len(c.nodes)+i, opInput{stream: s, read: true}, call, opOutput{version: v}, time.Now())
				return nil
			})
		}
	}
	checkLinearizable(t, h.ops)
}

// TestStreamModelRejects shows that the check can fail: two appends that both won with
// no_stream, and a read that misses an acknowledged append, are not linearizable.
func TestStreamModelRejects(t *testing.T) {
	m := streamModel.ToModel()
	in := opInput{stream: "s", expected: -1}
	both := []porcupine.Operation{
		{ClientId: 0, Input: in, Call: 0, Output: opOutput{ok: true}, Return: 10},
		{ClientId: 1, Input: in, Call: 1, Output: opOutput{ok: true}, Return: 11},
	}
	lost := []porcupine.Operation{
		{ClientId: 0, Input: in, Call: 0, Output: opOutput{ok: true}, Return: 10},
		{ClientId: 1, Input: opInput{stream: "s", read: true}, Call: 20, Output: opOutput{version: -1}, Return: 21},
	}
	unknown := []porcupine.Operation{
		{ClientId: 0, Input: in, Call: 0, Output: opOutput{unknown: true}, Return: 1 << 40},
		{ClientId: 1, Input: opInput{stream: "s", read: true}, Call: 20, Output: opOutput{version: 0}, Return: 21},
		{ClientId: 1, Input: opInput{stream: "s", expected: 0}, Call: 30, Output: opOutput{ok: true}, Return: 31},
	}
	if porcupine.CheckOperations(m, both) || porcupine.CheckOperations(m, lost) {
		t.Fatal("a history that is not linearizable passed the check")
	}
	if !porcupine.CheckOperations(m, unknown) {
		t.Fatal("an append of unknown outcome that took effect was refused")
	}
}

// TestClusterSoak is make soak-cluster: PMD_CLUSTER_SOAK faults (kills and partitions of
// the leader) under load from clients on every node, then the same checks as
// TestClusterLinearizable. Skipped unless PMD_CLUSTER_SOAK is set.
func TestClusterSoak(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv("PMD_CLUSTER_SOAK"))
	if err != nil || n <= 0 {
		t.Skip("set PMD_CLUSTER_SOAK to a number of faults (make soak-cluster)")
	}
	c := newCluster(t, 3, "--raft-heartbeat", "300ms", "--raft-snapshot-threshold", "256", "--raft-trailing-logs", "64", "--raft-snapshot-interval", "1s")
	c.leader()
	kills := 0
	// Checked in rounds, so that each history stays small enough for porcupine; each
	// round has streams of its own, which the model starts empty.
	for round := 0; round*10 < n; round++ {
		streams := []string{fmt.Sprintf("Soak%d$a", round), fmt.Sprintf("Soak%d$b", round), fmt.Sprintf("Soak%d$c", round)}
		h := c.runClients(4, streams, func() { kills += c.faults(min(10, n-round*10), 1500*time.Millisecond) })
		c.finish(t, h, streams)
		t.Logf("round %d: %d kills so far", round, kills)
	}
}
