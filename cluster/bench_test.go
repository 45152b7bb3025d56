package cluster_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestClusterBench is make bench-cluster: the figures of bench/README.md, "Cluster". It
// measures durable appends (16 writers and 1) on a three-node cluster against a single
// node in the same run, the failover time from a leader's SIGKILL to the first
// successful write over 20 kills, and the catch-up rate of a node that was away. Skipped
// unless PMD_CLUSTER_BENCH is set.
func TestClusterBench(t *testing.T) {
	if os.Getenv("PMD_CLUSTER_BENCH") == "" {
		t.Skip("set PMD_CLUSTER_BENCH=1 (make bench-cluster)")
	}
	const d = 5 * time.Second
	// The single node, in the same run.
	single := newNodes(t, 1)
	single.serveSingle(0)
	cmd := single.nodes[0].cmd
	singleRate := map[int]float64{}
	for _, w := range []int{16, 1} {
		before := cpuNow(t, cmd.Process.Pid)
		singleRate[w] = appendRate(t, single, []int{0}, w, d)
		if w == 16 {
			t.Logf("CPU, single node, 16 writers: %s", cpuNow(t, cmd.Process.Pid).since(before, singleRate[w]*d.Seconds(), d))
		}
	}
	single.stop(0)

	c := newCluster(t, 3)
	lead := c.leader()
	t.Logf("| writers | single node | cluster, through the leader | cluster, through every node |")
	t.Logf("|---|---|---|---|")
	pids := []int{c.nodes[lead].cmd.Process.Pid}
	for i, nd := range c.nodes {
		if i != lead {
			pids = append(pids, nd.cmd.Process.Pid)
		}
	}
	var cpu []string
	for _, w := range []int{16, 1} {
		before := cpuNow(t, pids...)
		viaLeader := appendRate(t, c, []int{lead}, w, d)
		if w == 16 {
			cpu = append(cpu, "CPU, cluster through the leader, 16 writers: "+cpuNow(t, pids...).since(before, viaLeader*d.Seconds(), d))
		}
		before = cpuNow(t, pids...)
		viaAll := appendRate(t, c, []int{0, 1, 2}, w, d)
		if w == 16 {
			cpu = append(cpu, "CPU, cluster through every node, 16 writers: "+cpuNow(t, pids...).since(before, viaAll*d.Seconds(), d))
		}
		t.Logf("| %d | %.0f/s | %.0f/s (%.2fx) | %.0f/s (%.2fx) |", w, singleRate[w], viaLeader, viaLeader/singleRate[w], viaAll, viaAll/singleRate[w])
	}
	for _, l := range cpu {
		t.Log(l)
	}

	// Failover: from the leader's SIGKILL to the first write acknowledged through another node.
	var took []time.Duration
	for range 20 {
		lead := c.leader()
		other := (lead + 1) % 3
		c.kill(lead)
		start := time.Now()
		for {
			if st, _, err := c.append(other, "Failover$1", "any", ""); err == nil && st == http.StatusCreated {
				break
			}
			if time.Since(start) > 30*time.Second {
				t.Fatal("no write within 30s of a leader's kill")
			}
			time.Sleep(10 * time.Millisecond) // the measured wait: poll for the first success
		}
		took = append(took, time.Since(start))
		c.start(lead)
		c.converged(60 * time.Second)
	}
	slices.Sort(took)
	t.Logf("failover over %d kills (heartbeat and election timeout 1s, leader lease 500ms): p50 %s, p99 %s, max %s",
		len(took), took[len(took)/2].Round(time.Millisecond), took[len(took)*99/100].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))

	// Catch-up: a node away for many writes, restarted.
	lead = c.leader()
	away := (lead + 1) % 3
	c.kill(away)
	const n = 20000
	c.appendMany(t, lead, "CatchUp", n)
	v, err := c.view(lead)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.start(away)
	c.waitFor(5*time.Minute, "the node that was away caught up", func() error {
		mine, err := c.view(away)
		if err != nil || mine.AppliedIndex < v.CommitIndex {
			return fmt.Errorf("applied %d of %d: %v", mine.AppliedIndex, v.CommitIndex, err)
		}
		return nil
	})
	took1 := time.Since(start)
	c.nodes[away].logMu.Lock()
	snap := bytes.Contains(c.nodes[away].log.Bytes(), []byte("copying records from a peer"))
	c.nodes[away].logMu.Unlock()
	t.Logf("catch-up: %d events in %s from the restart (process start included): %.0f events/s (snapshot install: %t)",
		n, took1.Round(time.Millisecond), float64(n)/took1.Seconds(), snap)
}

// appendRate runs writers appending one event each through the nodes given (round robin)
// for d and returns the acknowledged appends per second.
func appendRate(t *testing.T, c *tcluster, via []int, writers int, d time.Duration) float64 {
	var done atomic.Int64
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			i := via[w%len(via)]
			for time.Now().Before(stop) {
				st, body, err := c.append(i, fmt.Sprintf("Bench$%d", w), "any", "")
				if err != nil || st != http.StatusCreated {
					t.Errorf("append through %s: %d %v %v", c.nodes[i].id, st, body, err)
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(done.Load()) / d.Seconds()
}

// cpuUse is CPU time used so far: by each process watched (the leader first, for a
// cluster), by this process (the clients), and by the whole machine.
type cpuUse struct {
	procs   []time.Duration
	self    time.Duration
	machine time.Duration // busy time over all cores (/proc/stat: all but idle and iowait)
}

// cpuNow reads the CPU time used so far by pids, this process and the machine.
func cpuNow(t *testing.T, pids ...int) cpuUse {
	var u cpuUse
	for _, pid := range pids {
		u.procs = append(u.procs, procCPU(t, fmt.Sprintf("/proc/%d/stat", pid)))
	}
	u.self = procCPU(t, "/proc/self/stat")
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(strings.SplitN(string(raw), "\n", 2)[0]) // cpu user nice system idle iowait irq softirq steal
	for i, v := range f[1:] {
		if i == 3 || i == 4 {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		u.machine += time.Duration(n) * 10 * time.Millisecond
	}
	return u
}

// procCPU is the user and system time of the process whose stat file is path, in clock
// ticks of 10ms (USER_HZ is 100 on Linux).
func procCPU(t *testing.T, path string) time.Duration {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:])) // after "pid (comm) "
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// since says how much CPU the processes used per append between before and u, over d
// with appends acknowledged, and how busy the machine's cores were.
func (u cpuUse) since(before cpuUse, appends float64, d time.Duration) string {
	per := func(x time.Duration) string {
		return fmt.Sprintf("%.0fµs", float64(x.Microseconds())/appends)
	}
	var parts []string
	var total time.Duration
	for i := range u.procs {
		x := u.procs[i] - before.procs[i]
		total += x
		parts = append(parts, per(x))
	}
	clients := u.self - before.self
	return fmt.Sprintf("per append: pmd processes %s (each: %s), clients %s; busy cores on the machine: %.2f of %d (pmd and clients %.2f, the rest other work)",
		per(total), strings.Join(parts, " "), per(clients),
		(u.machine-before.machine).Seconds()/d.Seconds(), runtime.NumCPU(), (total+clients).Seconds()/d.Seconds())
}
