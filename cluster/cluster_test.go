package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestClusterFormsAndReplicates forms a cluster of three with --bootstrap-expect, writes
// through every node, and races writes with one expected version through different nodes:
// exactly one of each pair wins, and every node ends with the same $all. A write
// acknowledged through a node is in that node's own copy at once.
func TestClusterFormsAndReplicates(t *testing.T) {
	c := newCluster(t, 3)
	c.leader()
	v, err := c.view(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Nodes) != 3 || v.NodeID != "n1" || v.LeaderID == "" || v.CommitIndex == 0 || v.AppliedIndex == 0 || v.AppliedIndex > v.CommitIndex {
		t.Fatalf("GET /v1/cluster: %+v", v)
	}
	for _, n := range v.Nodes {
		if n.HTTPAddr == "" || n.RaftAddr == "" || n.State == "" || n.State == "unreachable" {
			t.Fatalf("GET /v1/cluster: node %+v", n)
		}
	}

	for i := range c.nodes {
		id := uuid.NewString()
		st, body, err := c.append(i, fmt.Sprintf("Order$%d", i), "no_stream", id)
		if err != nil || st != http.StatusCreated {
			t.Fatalf("append through %s: %d %v %v", c.nodes[i].id, st, body, err)
		}
		// Read your write on the node that acknowledged it, without consistency=leader.
		ids, err := c.all(i, false)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.Join(ids, ","), id) {
			t.Fatalf("%s acknowledged %s but does not hold it", c.nodes[i].id, id)
		}
	}

	for round := range 10 {
		stream := fmt.Sprintf("Race$%d", round)
		var wg sync.WaitGroup
		codes := make([]int, 3)
		for i := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, _, err := c.append(i, stream, "no_stream", "")
				if err != nil {
					t.Error(err)
				}
				codes[i] = st
			}()
		}
		wg.Wait()
		won := 0
		for _, st := range codes {
			switch st {
			case http.StatusCreated:
				won++
			case http.StatusConflict:
			default:
				t.Fatalf("round %d: status %d", round, st)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d of 3 writes with expected no_stream won: %v", round, won, codes)
		}
	}
	all := c.converged(30 * time.Second)
	if len(all) != 3+10 {
		t.Fatalf("$all holds %d events, want 13", len(all))
	}
	// One store id: every node took the first leader's with the seed entry (it has
	// applied every write since), so all derive the same command ids.
	var storeID string
	for _, nd := range c.nodes {
		id, err := os.ReadFile(filepath.Join(nd.dir, "STORE_ID"))
		if err != nil || strings.TrimSpace(string(id)) == "" {
			t.Fatalf("%s's STORE_ID: %q %v", nd.id, id, err)
		}
		if storeID == "" {
			storeID = string(id)
		} else if string(id) != storeID {
			t.Fatalf("%s's store id is %q, %s's %q: a cluster has one", nd.id, id, c.nodes[0].id, storeID)
		}
	}

	// The Raft figures on /metrics; the leader's include each member's lag.
	lead := c.leader()
	metrics, err := c.metrics(lead)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`pmd_raft_state{state="leader"} 1`, "pmd_raft_applied_index", "pmd_raft_commit_index", "pmd_raft_term",
		"pmd_raft_last_contact_seconds", `pmd_raft_follower_lag_entries{node="n1"}`} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("/metrics lacks %s", want)
		}
	}

	// pmd cluster status|remove|join, through a follower.
	f := (lead + 1) % 3
	other := 3 - lead - f
	cli := func(args ...string) string {
		out, err := exec.Command(pmdBin, append(args, "--addr", c.httpAddr(f))...).CombinedOutput()
		if err != nil {
			t.Fatalf("pmd %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := cli("cluster", "status"); !strings.Contains(out, "leader "+c.nodes[lead].id) || strings.Count(out, "127.0.0.1") < 6 {
		t.Fatalf("pmd cluster status:\n%s", out)
	}
	members := func(n int) func() error {
		return func() error {
			v, err := c.view(lead)
			if err != nil || len(v.Nodes) != n {
				return fmt.Errorf("%d members, want %d: %v", len(v.Nodes), n, err)
			}
			return nil
		}
	}
	writeThrough := func(i int, what string) {
		t.Helper()
		c.waitFor(20*time.Second, "a write through "+what, func() error {
			if st, body, err := c.append(i, "Order$0", "any", ""); err != nil || st != http.StatusCreated {
				return fmt.Errorf("%d %v %v", st, body, err)
			}
			return nil
		})
	}

	// The removed node hears of it: it stops Raft and says so, instead of calling
	// elections nobody answers while its copy falls behind unnoticed.
	cli("cluster", "remove", c.nodes[other].id)
	c.waitFor(10*time.Second, "the removed node gone from the configuration", members(2))
	c.waitFor(10*time.Second, "the removed node saying so", func() error {
		v, err := c.view(other)
		if err != nil {
			return err
		}
		for _, n := range v.Nodes {
			if n.ID == c.nodes[other].id && n.State == "removed" {
				return nil
			}
		}
		return fmt.Errorf("its view: %+v", v)
	})
	if resp, err := c.client().Get(c.url(other, "/healthz")); err != nil {
		t.Fatal(err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "removed from the cluster") {
			t.Fatalf("GET /healthz of the removed node: %d %s, want 503 naming the removal", resp.StatusCode, b)
		}
	}
	if st, body, err := c.append(other, "Order$0", "any", ""); err != nil || st != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(body), "removed from the cluster") {
		t.Fatalf("a write through the removed node: %d %v %v, want 503 naming the removal", st, body, err)
	}
	if m, err := c.metrics(other); err != nil {
		t.Fatal(err)
	} else if !strings.Contains(m, `pmd_raft_state{state="removed"} 1`) {
		t.Fatalf("the removed node's /metrics lack pmd_raft_state removed 1")
	}

	// Restarted with --join, it asks to be added again.
	c.kill(other)
	c.start(other)
	c.waitFor(20*time.Second, "the restarted node back in the configuration", members(3))
	writeThrough(other, "the node that rejoined")

	// Removed while down, it cannot hear of it. pmd cluster join refuses to add it
	// back before it starts: a voter that cannot answer would cost the cluster its
	// quorum at the next failure. Started with --join, it asks to be added itself.
	c.kill(other)
	cli("cluster", "remove", c.nodes[other].id)
	c.waitFor(10*time.Second, "the stopped node gone from the configuration", members(2))
	out, err := exec.Command(pmdBin, "cluster", "join", c.nodes[other].id, c.nodes[other].proxy.addr(), "--addr", c.httpAddr(f)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "does not answer") {
		t.Fatalf("pmd cluster join of a stopped node: %v\n%s\nwant it refused as not answering", err, out)
	}
	if err := members(2)(); err != nil {
		t.Fatalf("after the refused join: %v", err)
	}
	c.start(other)
	c.waitFor(20*time.Second, "the started node back in the configuration", members(3))
	writeThrough(other, "the node that joined when it started")
}

// TestClusterFailover kills the leader with SIGKILL while writes go on through the
// others, restarts it with the same flags, and checks that it rejoins and catches up, that
// no acknowledged write is lost or doubled, and that the rest of the cluster kept writing.
func TestClusterFailover(t *testing.T) {
	c := newCluster(t, 3)
	acked := map[string]bool{}
	write := func(i int) error {
		id := uuid.NewString()
		st, body, err := c.append(i, "Failover$1", "any", id)
		if err != nil {
			return err
		}
		if st != http.StatusCreated {
			return fmt.Errorf("status %d: %v", st, body)
		}
		acked[id] = true
		return nil
	}
	for round := range 2 {
		lead := c.leader()
		for i := range 5 {
			if err := write((lead + 1 + i%2) % 3); err != nil {
				t.Fatal(err)
			}
		}
		c.kill(lead)
		other := (lead + 1) % 3
		c.waitFor(20*time.Second, fmt.Sprintf("round %d: a write after the leader was killed", round), func() error {
			return write(other)
		})
		for range 5 {
			if err := write(other); err != nil {
				t.Fatal(err)
			}
		}
		c.start(lead)
		all := c.converged(30 * time.Second)
		got := map[string]int{}
		for _, e := range all {
			got[e[strings.IndexByte(e, ':')+1:]]++
		}
		for id := range acked {
			if got[id] != 1 {
				t.Fatalf("round %d: acknowledged event %s is in $all %d times", round, id, got[id])
			}
		}
	}
}

// TestClusterNoQuorum: with two of three nodes gone the third answers writes 503
// unavailable within a few seconds, and keeps serving reads of its own copy; once a node
// comes back, writes go on. The same holds for a leader whose two followers are killed:
// it steps down, its write fails, and it still serves reads.
func TestClusterNoQuorum(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader()
	if st, _, err := c.append(lead, "Quorum$1", "no_stream", ""); err != nil || st != http.StatusCreated {
		t.Fatalf("append: %d %v", st, err)
	}
	c.converged(30 * time.Second)
	survivor := (lead + 1) % 3
	c.kill(lead)
	c.kill((lead + 2) % 3)
	start := time.Now()
	st, body, err := c.append(survivor, "Quorum$1", "any", "")
	took := time.Since(start)
	if err != nil || st != http.StatusServiceUnavailable || body["error"] != "unavailable" {
		t.Fatalf("a write without quorum: %d %v %v", st, body, err)
	}
	if took > 10*time.Second {
		t.Fatalf("a write without quorum took %s to fail", took)
	}
	ids, err := c.all(survivor, false)
	if err != nil || len(ids) != 1 {
		t.Fatalf("reads of the survivor's own copy: %v %v", ids, err)
	}
	c.start(lead)
	c.leader()
	c.waitFor(20*time.Second, "a write once a quorum is back", func() error {
		st, body, err := c.append(survivor, "Quorum$1", "0", "")
		if err != nil || st != http.StatusCreated {
			return fmt.Errorf("%d %v %v", st, body, err)
		}
		return nil
	})

	// All three up again, then the leader's two followers killed: it cannot reach a
	// quorum, steps down when its lease runs out, and answers the write 503 (within the
	// request's deadline); it still serves its own copy.
	c.start((lead + 2) % 3)
	lead = c.leader()
	before, err := c.all(lead, false)
	if err != nil {
		t.Fatal(err)
	}
	for i := range c.nodes {
		if i != lead {
			c.kill(i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, body, err = c.postCtx(ctx, lead, "/v1/streams/Quorum$1", map[string]any{"events": []any{map[string]any{"type": "T"}}})
	if err != nil || st != http.StatusServiceUnavailable || body["error"] != "unavailable" {
		t.Fatalf("a write to the leader without its followers: %d %v %v; want 503 unavailable within 10s", st, body, err)
	}
	if ids, err := c.all(lead, false); err != nil || strings.Join(ids, ",") != strings.Join(before, ",") {
		t.Fatalf("reads of the old leader's own copy: %v %v; want %v", ids, err, before)
	}
}

// TestClusterSnapshotCatchUp stops a node while the others take more writes than the Raft
// log keeps after a snapshot: restarted, it catches up from a snapshot, copying the
// records it lacks from a peer.
func TestClusterSnapshotCatchUp(t *testing.T) {
	c := newCluster(t, 3, "--raft-snapshot-threshold", "64", "--raft-trailing-logs", "16", "--raft-snapshot-interval", "100ms")
	lead := c.leader()
	away := (lead + 1) % 3
	c.kill(away)
	for i := range 400 {
		if st, body, err := c.append(lead, fmt.Sprintf("Snap$%d", i%7), "any", ""); err != nil || st != http.StatusCreated {
			t.Fatalf("append %d: %d %v %v", i, st, body, err)
		}
	}
	c.start(away)
	all := c.converged(60 * time.Second)
	if len(all) != 400 {
		t.Fatalf("$all holds %d events, want 400", len(all))
	}
	c.nodes[away].logMu.Lock()
	log := c.nodes[away].log.String()
	c.nodes[away].logMu.Unlock()
	if !strings.Contains(log, "copying records from a peer") {
		t.Fatalf("%s caught up without a snapshot:\n%s", c.nodes[away].id, lastLines(log, 30))
	}
}

// TestClusterProcessManagersAcrossFailover runs a process manager on a cluster, kills the
// leader while facts come in, and checks that it ran on the leader only: every complete
// process has exactly one ConfirmOrder, and every incomplete one exactly one CancelOrder
// from its deadline, though the leader changed. The followers' /metrics have none of the
// process manager's figures, nor of a subscription's.
func TestClusterProcessManagersAcrossFailover(t *testing.T) {
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	cfg := filepath.Join(t.TempDir(), "pmd.yaml")
	if err := os.WriteFile(cfg, []byte(`subscriptions:
  - name: audit
    types: [ConfirmOrder, CancelOrder]
    deliver: {webhook: `+hook.URL+`}
processes:
  - name: CateringMatch
    correlate_by: order_id
    handles: [CustomerConfirmedMenu, CatererConfirmedMenu]
    complete_when: all
    issue: {type: ConfirmOrder}
    deadline:
      after: 4s
      issue: {type: CancelOrder}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, 3, "--config", cfg, "--raft-heartbeat", "300ms")
	lead := c.leader()
	fact := func(i int, typ, order string) {
		c.waitFor(20*time.Second, "a fact written", func() error {
			st, body, err := c.post(i, "/v1/streams/"+url.PathEscape(typ+"$"+order), map[string]any{
				"events": []any{map[string]any{"id": uuid.NewSHA1(uuid.NameSpaceOID, []byte(typ+order)).String(), "type": typ, "data": map[string]any{"order_id": order}}}})
			if err != nil || st != http.StatusCreated {
				return fmt.Errorf("%d %v %v", st, body, err)
			}
			return nil
		})
	}
	const orders = 12
	for o := range orders {
		if o == orders/2 {
			c.kill(lead)
			lead = (lead + 1) % 3
		}
		i := (lead + o) % 3
		if !c.alive(i) {
			i = (i + 1) % 3
		}
		fact(i, "CustomerConfirmedMenu", fmt.Sprint(o))
		if o%3 != 0 { // every third order stays incomplete: its deadline fires
			fact(i, "CatererConfirmedMenu", fmt.Sprint(o))
		}
	}
	for i := range c.nodes {
		if !c.alive(i) {
			c.start(i)
		}
	}
	lead = c.leader()
	for o := range orders {
		want := "ConfirmOrder"
		if o%3 == 0 {
			want = "CancelOrder"
		}
		c.waitFor(30*time.Second, fmt.Sprintf("order %d's %s", o, want), func() error {
			counts, err := c.types(lead, "CateringMatch$"+fmt.Sprint(o))
			if err != nil {
				return err
			}
			if counts["ConfirmOrder"]+counts["CancelOrder"] > 1 || counts[want] != 1 {
				return fmt.Errorf("commands %v", counts)
			}
			return nil
		})
	}
	// Once more after every process's deadline is recorded, fired or cancelled (its
	// view has none pending), so that none can fire any more: nothing was issued twice
	// meanwhile, and no complete process's deadline fired. (The waits above can end
	// before a complete process's deadline is cancelled.) Each wait has its own
	// deadline; a request, httpc's timeout.
	for o := range orders {
		c.waitFor(30*time.Second, fmt.Sprintf("order %d's deadline fired or cancelled", o), func() error {
			pending, err := c.pendingDeadlines(t.Context(), lead, "CateringMatch", fmt.Sprint(o))
			if err == nil && pending != 0 {
				err = fmt.Errorf("%d deadline(s) pending", pending)
			}
			return err
		})
	}
	for o := range orders {
		counts, err := c.types(lead, "CateringMatch$"+fmt.Sprint(o))
		if err != nil || counts["ConfirmOrder"]+counts["CancelOrder"] != 1 {
			t.Fatalf("order %d: commands %v %v", o, counts, err)
		}
	}
	// The leader's /metrics has its process manager's and subscription's figures.
	c.waitFor(20*time.Second, "the process manager's and subscription's metrics on the leader", func() error {
		m, err := c.metrics(c.leader())
		if err != nil {
			return err
		}
		for _, want := range []string{`pmd_pm_lag_events{pm="CateringMatch"}`, `pmd_subscription_lag_events{subscription="audit"}`} {
			if !strings.Contains(m, want) {
				return fmt.Errorf("/metrics lacks %s", want)
			}
		}
		return nil
	})
	// A follower's has none: it runs neither.
	c.waitFor(20*time.Second, "the followers' /metrics", func() error {
		lead := c.leader()
		for i := range c.nodes {
			if i == lead {
				continue
			}
			m, err := c.metrics(i)
			if err != nil {
				return err
			}
			if !strings.Contains(m, `pmd_raft_state{state="follower"} 1`) {
				return fmt.Errorf("%s is no follower now", c.nodes[i].id) // the leader changed meanwhile
			}
			for _, prefix := range []string{"pmd_pm_", "pmd_subscription_"} {
				if _, series, ok := strings.Cut(m, "\n"+prefix); ok {
					series, _, _ = strings.Cut(series, "\n")
					t.Fatalf("follower %s's /metrics have %s%s", c.nodes[i].id, prefix, series)
				}
			}
		}
		return nil
	})
	// A follower, which runs no process manager, answers the process routes with the
	// leader's answer.
	f := (c.leader() + 1) % 3
	for path, want := range map[string]string{
		"/v1/processes":                 `"CateringMatch"`,
		"/v1/processes/CateringMatch/1": `"ConfirmOrder"`,
	} {
		resp, err := httpc.Get(c.url(f, path))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Fatalf("GET %s through follower %s: %d %s %v; want the leader's answer with %s", path, c.nodes[f].id, resp.StatusCode, body, err, want)
		}
	}
}

// pendingDeadlines reads through node i, under ctx, how many deadlines the process id of
// the process manager name has pending (its view's).
func (c *tcluster) pendingDeadlines(ctx context.Context, i int, name, id string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(i, "/v1/processes/"+url.PathEscape(name)+"/"+url.PathEscape(id)), nil)
	if err != nil {
		return 0, err
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("read process %s/%s: %s", name, id, resp.Status)
	}
	var view struct {
		Deadlines []json.RawMessage `json:"deadlines"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&view); err != nil {
		return 0, err
	}
	return len(view.Deadlines), nil
}

// types counts the event types of a stream, read with consistency=leader through node i.
func (c *tcluster) types(i int, stream string) (map[string]int, error) {
	resp, err := httpc.Get(c.url(i, "/v1/streams/"+url.PathEscape(stream)+"?limit=1000&consistency=leader"))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("read %s: %s", stream, resp.Status)
	}
	var page struct {
		Events []struct {
			Type string `json:"type"`
		} `json:"events"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return nil, err
	}
	counts := map[string]int{}
	for _, e := range page.Events {
		counts[e.Type]++
	}
	return counts, nil
}

// TestClusterSeededBySingleNode turns a single node's data directory into a cluster: the
// node starts with --node-id and no --join, two empty nodes join it, and every node then
// holds the single node's events, and the writes made since, under one store id.
func TestClusterSeededBySingleNode(t *testing.T) {
	c := newNodes(t, 3)
	seed := c.nodes[0]
	c.serveSingle(0)
	c.waitFor(20*time.Second, "the single node serving", func() error {
		st, body, err := c.append(0, "Single$1", "any", "")
		if err != nil || st != http.StatusCreated {
			return fmt.Errorf("%d %v %v", st, body, err)
		}
		return nil
	})
	for range 4 {
		if st, body, err := c.append(0, "Single$1", "any", ""); err != nil || st != http.StatusCreated {
			t.Fatalf("append to the single node: %d %v %v", st, body, err)
		}
	}
	before, err := c.all(0, false)
	if err != nil {
		t.Fatal(err)
	}
	c.stop(0)
	id, err := os.ReadFile(filepath.Join(seed.dir, "STORE_ID"))
	if err != nil {
		t.Fatal(err)
	}

	seed.join, seed.expect = "", 0
	c.start(0)
	c.leader()
	for i := 1; i < 3; i++ {
		c.nodes[i].join, c.nodes[i].expect = seed.proxy.addr(), 0
		c.start(i)
	}
	c.waitFor(30*time.Second, "three members", func() error {
		v, err := c.view(0)
		if err != nil || len(v.Nodes) != 3 {
			return fmt.Errorf("%+v %v", v, err)
		}
		return nil
	})
	if st, body, err := c.append(2, "Single$1", "4", ""); err != nil || st != http.StatusCreated {
		t.Fatalf("append through a joined node: %d %v %v", st, body, err)
	}
	all := c.converged(30 * time.Second)
	if len(all) != 6 || strings.Join(all[:5], ",") != strings.Join(before, ",") {
		t.Fatalf("$all after seeding: %v, before: %v", all, before)
	}
	for _, nd := range c.nodes {
		got, err := os.ReadFile(filepath.Join(nd.dir, "STORE_ID"))
		if err != nil || string(got) != string(id) {
			t.Fatalf("%s's store id %q, the seed's %q: %v", nd.id, got, id, err)
		}
	}
}

// TestClusterSubscriptionsOnTheLeader runs a subscription with a server-side position on a
// cluster and kills the leader while events come in: the new leader resumes it, and every
// event reaches the webhook (at least once). Before the kill, the leader alone delivers
// them: each exactly once.
func TestClusterSubscriptionsOnTheLeader(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	cfg := filepath.Join(t.TempDir(), "pmd.yaml")
	if err := os.WriteFile(cfg, []byte("subscriptions:\n  - name: billing\n    types: [Billed]\n    deliver: {webhook: "+hook.URL+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, 3, "--config", cfg, "--raft-heartbeat", "300ms")
	lead := c.leader()
	term, err := c.term()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	delivered := func() error {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			if got[id] == 0 {
				return fmt.Errorf("%s not delivered; delivered: %v", id, got)
			}
		}
		return nil
	}
	for n := range 10 {
		if n == 5 {
			// Every node has applied events 0-4 and the leader delivered them: a follower
			// running the subscription too would have delivered them again.
			c.waitFor(30*time.Second, "events 0-4 delivered", delivered)
			c.converged(30 * time.Second)
			mu.Lock()
			counts := maps.Clone(got)
			mu.Unlock()
			// Across a change of leader deliveries are at least once: the counts are exact
			// only if no election began since the events were written (a slow machine
			// can miss a 300ms heartbeat).
			if now, err := c.term(); err != nil {
				t.Fatal(err)
			} else if now != term {
				t.Logf("an election (term %d to %d) before the kill: events 0-4 delivered %v, not checked for once", term, now, counts)
			} else {
				for _, id := range ids {
					if counts[id] != 1 {
						t.Fatalf("event %s delivered %d times before any change of leader, want once: %v", id, counts[id], counts)
					}
				}
			}
			c.kill(lead)
			lead = (lead + 1) % 3
		}
		id := uuid.NewString()
		c.waitFor(20*time.Second, "an event written", func() error {
			st, body, err := c.post(lead, "/v1/streams/Bill$1", map[string]any{"events": []any{map[string]any{"id": id, "type": "Billed"}}})
			if err != nil || st != http.StatusCreated {
				return fmt.Errorf("%d %v %v", st, body, err)
			}
			return nil
		})
		ids = append(ids, id)
	}
	c.waitFor(30*time.Second, "every event delivered", delivered)

	// A leader that stops (SIGTERM) stops the subscription first, while it still leads:
	// its position lands, and the next leader delivers none of those events again. It
	// stopped Raft first, and the next leader delivered again those delivered since the
	// last position written, up to a second before (here most often some: the stop
	// follows the last delivery closely; TestCloseLetsTheLeaderWorkWriteAsItStops checks
	// the node's part every time). The node killed above first comes back: two of three
	// then lead on.
	for i := range c.nodes {
		if !c.alive(i) {
			c.start(i)
		}
	}
	c.converged(30 * time.Second)
	lead = c.leader()
	term, err = c.term()
	if err != nil {
		t.Fatal(err)
	}
	c.waitFor(30*time.Second, "the subscription caught up on the leader", func() error {
		resp, err := httpc.Get(c.url(lead, "/v1/subscriptions/billing"))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var sub struct {
			Lag    *uint64 `json:"lag"`
			Status string  `json:"status"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&sub); err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s %v", resp.Status, err)
		}
		if sub.Lag == nil || *sub.Lag != 0 || sub.Status != "delivering" {
			return fmt.Errorf("status %s, lag %v", sub.Status, sub.Lag)
		}
		return nil
	})
	mu.Lock()
	before := maps.Clone(got)
	mu.Unlock()
	if now, err := c.term(); err != nil || now != term {
		// Another leader may have delivered again from the last position written.
		t.Logf("an election before the stop (term %d to %d, %v): the stop is not checked", term, now, err)
		return
	}
	c.stop(lead)
	next := (lead + 1) % 3 // alive: only lead is down
	last := uuid.NewString()
	c.waitFor(20*time.Second, "an event written after the stop", func() error {
		st, body, err := c.post(next, "/v1/streams/Bill$1", map[string]any{"events": []any{map[string]any{"id": last, "type": "Billed"}}})
		if err != nil || st != http.StatusCreated {
			return fmt.Errorf("%d %v %v", st, body, err)
		}
		return nil
	})
	ids = append(ids, last)
	c.waitFor(30*time.Second, "the event written after the stop delivered", delivered)
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids[:len(ids)-1] {
		if got[id] != before[id] {
			t.Fatalf("event %s delivered %d times before the leader stopped, %d after: the next leader delivered it again", id, before[id], got[id])
		}
	}
}

// TestClusterOfFive forms a cluster of five with --bootstrap-expect 5, writes through every
// node, keeps writing with two nodes killed (a minority of five), and ends with the same
// $all on every node.
func TestClusterOfFive(t *testing.T) {
	c := newCluster(t, 5)
	lead := c.leader()
	if v, err := c.view(lead); err != nil || len(v.Nodes) != 5 {
		t.Fatalf("GET /v1/cluster: %+v %v; want five nodes", v, err)
	}
	for i := range c.nodes {
		if st, body, err := c.append(i, fmt.Sprintf("Order$%d", i), "no_stream", ""); err != nil || st != http.StatusCreated {
			t.Fatalf("append through %s: %d %v %v", c.nodes[i].id, st, body, err)
		}
	}
	// Two followers down: three of five are a quorum.
	down := 0
	for i := range c.nodes {
		if i != lead && down < 2 {
			c.kill(i)
			down++
		}
	}
	if st, body, err := c.append(lead, "Order$minority", "no_stream", ""); err != nil || st != http.StatusCreated {
		t.Fatalf("append with two of five nodes down: %d %v %v", st, body, err)
	}
	for i := range c.nodes {
		if !c.alive(i) {
			c.start(i)
		}
	}
	if all := c.converged(30 * time.Second); len(all) != len(c.nodes)+1 {
		t.Fatalf("$all holds %d events, want %d", len(all), len(c.nodes)+1)
	}
}
