package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/client"
)

// binDir holds the pmd binary the tests build; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pmd-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildPMD builds the pmd binary once per test run.
var buildPMD = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(binDir, "pmd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func pmdBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the pmd binary; skipped in -short")
	}
	bin, err := buildPMD()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// daemon is a running `pmd serve`.
type daemon struct {
	cmd  *exec.Cmd
	base string
	logs *bytes.Buffer // stderr, complete once the process has exited
	msgs chan string   // the msg of each log record, as it is written
	done chan error
}

// startDaemon starts pmd serve on a free loopback port and waits until it serves.
func startDaemon(t *testing.T, bin string, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	cmd.Env = append(os.Environ(), "PMD_ADDR=", "PMD_DATA=", "PMD_CONFIG=", "PMD_NO_SYNC=", "PMD_MAX_BODY=", "PMD_MEMORY_BUDGET=", "PMD_SHUTDOWN_GRACE=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, logs: &bytes.Buffer{}, msgs: make(chan string, 1024), done: make(chan error, 1)}
	serving := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Bytes()
			d.logs.Write(line)
			d.logs.WriteByte('\n')
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &rec) != nil {
				continue
			}
			if rec.Msg == "pmd serving" {
				serving <- rec.Addr
			}
			select {
			case d.msgs <- rec.Msg:
			default:
			}
		}
	}()
	go func() {
		<-copied
		d.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-d.done
		}
	})
	select {
	case addr := <-serving:
		d.base = "http://" + addr
	case err := <-d.done:
		t.Fatalf("pmd exited before serving: %v\n%s", err, d.logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("pmd did not serve within 30s\n%s", d.logs)
	}
	return d
}

// waitLog waits for a log record whose msg starts with prefix.
func (d *daemon) waitLog(t *testing.T, prefix string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case msg := <-d.msgs:
			if strings.HasPrefix(msg, prefix) {
				return
			}
		case <-timeout:
			t.Fatalf("no log %q within 30s", prefix)
		}
	}
}

// stop sends sig and waits for the process to exit.
func (d *daemon) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("pmd did not exit within 30s of %v\n%s", sig, d.logs)
	}
	return nil
}

// client returns a client of the daemon.
func (d *daemon) client(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.New(d.base)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// orderFact is a catering fact with an id the test chooses, so it can look it up.
func orderFact(kind string, order int) pmd.EventData {
	return pmd.EventData{
		ID:   uuid.MustParse(fmt.Sprintf("0190c1d2-0000-7000-8%03d-%012d", map[string]int{"CustomerConfirmedMenu": 1, "CatererConfirmedMenu": 2}[kind], order)),
		Type: kind,
		Data: map[string]any{"order_id": fmt.Sprint(order)},
	}
}

// waitConfirmations follows ConfirmOrder events from the start of the log until n
// distinct orders are confirmed, and returns how many ConfirmOrders it saw per order.
func waitConfirmations(t *testing.T, c *client.Client, n int) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seen := map[string]int{}
	for ev, err := range c.Subscribe(ctx, client.SubscribeOptions{Types: []string{"ConfirmOrder"}, From: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		seen[fmt.Sprint(ev.Data["order_id"])]++
		if len(seen) == n {
			return seen
		}
	}
	t.Fatalf("saw ConfirmOrder for %d orders, want %d (%v)", len(seen), n, ctx.Err())
	return nil
}

// TestEndToEndCateringSurvivesSIGKILL runs the catering flow against the real binary,
// kills it with SIGKILL right after the last acknowledged append, restarts it, completes
// more orders, and checks that every acknowledged event is there and that each complete
// order has exactly one ConfirmOrder and each incomplete one none.
func TestEndToEndCateringSurvivesSIGKILL(t *testing.T) {
	bin := pmdBinary(t)
	data := t.TempDir()
	cfg := filepath.Join("..", "..", "examples", "catering", "pmd.yaml")
	const orders = 40

	d := startDaemon(t, bin, "--data", data, "--config", cfg)
	ctx := context.Background()
	var acked []uuid.UUID
	appendFact := func(d *daemon, stream string, ev pmd.EventData) {
		if _, err := d.client(t).Append(ctx, stream, pmd.Any, ev); err != nil {
			t.Fatalf("append %v: %v", ev, err)
		}
		acked = append(acked, ev.ID)
	}
	complete := map[string]bool{}
	for i := range orders {
		appendFact(d, fmt.Sprintf("Customer$%d", i), orderFact("CustomerConfirmedMenu", i))
		if i%2 == 0 {
			appendFact(d, fmt.Sprintf("Caterer$%d", i), orderFact("CatererConfirmedMenu", i))
			complete[fmt.Sprint(i)] = true
		}
	}
	// Killed while the process manager may still be working through the facts.
	if err := d.stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("pmd exited cleanly on SIGKILL")
	}

	d = startDaemon(t, bin, "--data", data, "--config", cfg)
	for i := 1; i < orders; i += 4 {
		appendFact(d, fmt.Sprintf("Caterer$%d", i), orderFact("CatererConfirmedMenu", i))
		complete[fmt.Sprint(i)] = true
	}
	c := d.client(t)
	seen := waitConfirmations(t, c, len(complete))
	for order, n := range seen {
		if !complete[order] || n != 1 {
			t.Errorf("order %s: %d ConfirmOrder, complete=%v", order, n, complete[order])
		}
	}
	for _, id := range acked {
		if _, err := c.Event(ctx, id); err != nil {
			t.Errorf("acknowledged event %s: %v", id, err)
		}
	}
	// Every process agrees, read back from its stream.
	for i := range orders {
		p, err := c.Process(ctx, "CateringMatch", fmt.Sprint(i))
		if err != nil {
			t.Fatalf("process %d: %v", i, err)
		}
		want := "open"
		if complete[fmt.Sprint(i)] {
			want = "completed"
		}
		if p.Status != want || (want == "completed") != (len(p.Commands) == 1) {
			t.Errorf("process %d: status %s with %d commands, want %s", i, p.Status, len(p.Commands), want)
		}
	}
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("graceful stop: %v\n%s", err, d.logs)
	}
	if !strings.Contains(d.logs.String(), "index flushed") {
		t.Fatalf("no index flush on shutdown:\n%s", d.logs)
	}
	out, err := exec.Command(bin, "verify", data).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "agrees with the log") {
		t.Fatalf("verify after the run: %v\n%s", err, out)
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	bin := pmdBinary(t)
	cfg := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(cfg, []byte("processes:\n  - name: M\n    handles: [A]\n    issue: {type: B}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0", "--config", cfg).CombinedOutput()
	if err == nil {
		t.Fatal("pmd started with a bad config")
	}
	if want := cfg + ":2:5: process manager \"M\": correlate_by is missing"; !strings.Contains(string(out), want) {
		t.Fatalf("output lacks %q:\n%s", want, out)
	}
}

// TestSecondSignalExitsAtOnce: a client that never finishes its request holds the
// graceful shutdown; a second signal ends the process at once, and the store opens
// again with every acknowledged event.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	bin := pmdBinary(t)
	data := t.TempDir()
	d := startDaemon(t, bin, "--data", data)
	ctx := context.Background()
	if _, err := d.client(t).Append(ctx, "s", pmd.Any, pmd.EventData{Type: "E"}); err != nil {
		t.Fatal(err)
	}
	// A request whose body never completes, which graceful shutdown waits for. The
	// signal must not come before the server is handling it: a connection still in
	// the listener's backlog is dropped by the shutdown, which then has nothing to wait
	// for and exits cleanly. "Expect: 100-continue" makes the server say when its
	// handler starts reading the body; the test waits for that, not for some time.
	conn, err := net.Dial("tcp", strings.TrimPrefix(d.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/streams/s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n", strings.TrimPrefix(d.base, "http://"))
	if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 100 ") {
		t.Fatalf("the server did not start reading the request: %q, %v\n%s", status, err, d.logs)
	}
	fmt.Fprint(conn, `{"events":`)

	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	d.waitLog(t, "shutting down")
	err = d.stop(t, syscall.SIGTERM)
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != exitFailed {
		t.Fatalf("second signal: exit %v, want code %d\n%s", err, exitFailed, d.logs)
	}
	if !strings.Contains(d.logs.String(), "exiting at once") {
		t.Fatalf("no word of exiting at once:\n%s", d.logs)
	}
	d = startDaemon(t, bin, "--data", data)
	page, err := d.client(t).ReadStream(ctx, "s", pmd.ReadOptions{})
	if err != nil || len(page.Events) != 1 {
		t.Fatalf("after restart: %v %+v", err, page)
	}
}
