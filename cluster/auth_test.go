package cluster

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

var (
	secretA = []byte("the cluster secret A, 32 bytes..")
	secretB = []byte("the cluster secret B, 32 bytes..")
)

// listenTest is a mux on a loopback port with the secrets keys.
func listenTest(t *testing.T, keys keyring) *mux {
	t.Helper()
	return listenLimited(t, keys, defaultMuxLimits())
}

func listenLimited(t *testing.T, keys keyring, lim muxLimits) *mux {
	t.Helper()
	m, err := listen("127.0.0.1:0", keys, slog.New(slog.DiscardHandler), lim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// handedOn waits for the mux to hand on a connection of the kind's channel, and
// returns it; nil if the connection was refused instead (the dialer saw it closed).
func handedOn(t *testing.T, m *mux, to chan net.Conn, closed <-chan struct{}) net.Conn {
	t.Helper()
	select {
	case c := <-to:
		t.Cleanup(func() { c.Close() })
		return c
	case <-closed:
		return nil
	case <-time.After(10 * time.Second):
		t.Fatal("the connection was neither handed on nor closed within 10s")
		return nil
	}
}

// TestHandshake: a mux hands on the connections of dialers with the cluster secret it
// has (or, without one, of dialers without one), and refuses the others, counting them.
func TestHandshake(t *testing.T) {
	tests := []struct {
		name           string
		server, client keyring
		kind           byte
		dialErr        string // the dialer's error; "" when dial succeeds
		handed         bool
	}{
		{"no secret either side, Raft", nil, nil, connRaft, "", true},
		{"no secret either side, service", nil, nil, connService, "", true},
		{"the same secret, Raft", keyring{secretA}, keyring{secretA}, connRaft, "", true},
		{"the same secret, service", keyring{secretA}, keyring{secretA}, connService, "", true},
		{"the dialer has no secret, Raft", keyring{secretA}, nil, connRaft, "", false},
		{"the dialer has no secret, service", keyring{secretA}, nil, connService, "", false},
		{"another secret", keyring{secretA}, keyring{secretB}, connService, "does not know this node's cluster secret", false},
		{"the listener has no secret", nil, keyring{secretA}, connRaft, "closed the connection instead of starting the handshake", false},
		// A rotation from A to B: every node gets "A, B", then "B, A", then "B".
		{"a rotation: the listener takes the new one too", keyring{secretA, secretB}, keyring{secretA}, connRaft, "", true},
		{"a rotation: the dialer takes the new one too", keyring{secretA}, keyring{secretA, secretB}, connRaft, "", true},
		{"a rotation half way", keyring{secretB, secretA}, keyring{secretA, secretB}, connService, "", true},
		{"a rotation at its end", keyring{secretB}, keyring{secretB, secretA}, connRaft, "", true},
		{"a rotation with a step skipped", keyring{secretB, secretA}, keyring{secretA}, connRaft, "does not know this node's cluster secret", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := listenTest(t, tt.server)
			to := m.raft
			if tt.kind == connService {
				to = m.service
			}
			c, err := dial(context.Background(), m.ln.Addr().String(), tt.kind, "n9", tt.client, 10*time.Second)
			if tt.dialErr != "" {
				if err == nil || !errors.Is(err, ErrSecret) || !strings.Contains(err.Error(), tt.dialErr) {
					t.Fatalf("dial: %v, want ErrSecret saying %q", err, tt.dialErr)
				}
				// The dialer proves first: a listener that takes its proof hands the
				// connection on (the dialer, which does not take the listener's, sends
				// nothing on it); one that does not counts it refused.
				if len(tt.client) > 0 && slices.ContainsFunc(tt.server, func(s []byte) bool { return bytes.Equal(s, tt.client[0]) }) {
					if handedOn(t, m, to, nil) == nil || m.refused.Load() != 0 {
						t.Fatal("the listener took the dialer's proof but did not hand the connection on")
					}
					return
				}
				waitRefused(t, m, 1)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte("hello\n")); err != nil && tt.handed {
				t.Fatal(err)
			}
			closed := make(chan struct{})
			var got []byte
			go func() {
				defer close(closed)
				got, _ = io.ReadAll(c) // ends when the listener closes: a refusal
			}()
			sc := handedOn(t, m, to, closed)
			if (sc != nil) != tt.handed {
				t.Fatalf("handed on: %v, want %v (the dialer read %q)", sc != nil, tt.handed, got)
			}
			if !tt.handed {
				if n := m.refused.Load(); n != 1 {
					t.Fatalf("%d connections counted refused, want 1", n)
				}
				if tt.kind == connService && !strings.Contains(string(got), "needs the cluster secret") {
					t.Fatalf("a service dialer without the secret read %q, want the reason", got)
				}
				return
			}
			// The bytes after the handshake are the dialer's, untouched.
			line := make([]byte, 6)
			if _, err := io.ReadFull(sc, line); err != nil || string(line) != "hello\n" {
				t.Fatalf("the listener read %q, %v after the handshake", line, err)
			}
			if n := m.refused.Load(); n != 0 {
				t.Fatalf("%d connections counted refused, want 0", n)
			}
		})
	}
}

// waitRefused waits until m counted n refusals: it counts after the dialer went, which
// the dialer cannot observe.
func waitRefused(t *testing.T, m *mux, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for m.refused.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections counted refused within 10s, want %d", m.refused.Load(), n)
		}
		time.Sleep(5 * time.Millisecond) // polling a counter: nothing to wait on
	}
}

// TestMuxLimitsPending: connections that have not sent their header and handshake are
// held up to the limit; one more is refused at once and counted; a slot freed takes the
// next; Close closes those still held instead of waiting for their timeout.
func TestMuxLimitsPending(t *testing.T) {
	m := listenLimited(t, keyring{secretA}, muxLimits{pending: 2, timeout: time.Hour})
	addr := m.ln.Addr().String()
	connect := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(time.Minute))
		return c
	}
	// eof reads c until the node closes it.
	eof := func(c net.Conn) {
		t.Helper()
		if b, err := io.ReadAll(c); len(b) != 0 || (err != nil && !strings.Contains(err.Error(), "reset")) {
			t.Fatalf("read %q, %v; want the node to close the connection", b, err)
		}
	}
	// Accepted in the order dialed: a and b take the two slots, c is refused.
	a, b, c := connect(), connect(), connect()
	eof(c)
	waitRefused(t, m, 1)
	a.Close()
	waitRefused(t, m, 2) // a's slot is free before it is counted
	d, err := dial(context.Background(), addr, connService, "n2", keyring{secretA}, time.Minute)
	if err != nil {
		t.Fatalf("a dialer with the secret, with a slot free: %v", err)
	}
	defer d.Close()
	select {
	case got := <-m.service:
		got.Close()
	case <-time.After(time.Minute):
		t.Fatal("the connection with the secret was not handed on")
	}

	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	eof(b) // b's timeout is an hour away
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Close waits for a connection that sent nothing")
	}
	if got := m.refused.Load(); got != 2 {
		t.Fatalf("refused %d, want 2 (the one cut by Close is not refused)", got)
	}
}

// TestMuxLimitsPerHost: one host holds at most perHost of the connections being sorted:
// its next is refused at once (not at the handshake's timeout, an hour here), while a
// connection from another host still gets one of the slots left and is handed on. The
// sources are loopback addresses, which the node's own limits exempt (nodes on one
// machine); here they count.
func TestMuxLimitsPerHost(t *testing.T) {
	m := listenLimited(t, keyring{secretA}, muxLimits{pending: 3, perHost: 2, timeout: time.Hour})
	addr := m.ln.Addr().String()
	from := func(ip string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: time.Minute}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Skipf("dial from %s (a loopback address of its own): %v", ip, err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(time.Minute))
		return c
	}
	// Accepted in the order dialed: a1 and a2 take host A's two slots, a3 is refused.
	from("127.0.0.2")
	from("127.0.0.2")
	a3 := from("127.0.0.2")
	if b, err := io.ReadAll(a3); len(b) != 0 || (err != nil && !strings.Contains(err.Error(), "reset")) {
		t.Fatalf("host A's third connection read %q, %v; want it closed", b, err)
	}
	waitRefused(t, m, 1)
	// Host B gets the third slot, proves it knows the secret, and is handed on.
	b := from("127.0.0.3")
	if err := (keyring{secretA}).clientHandshake(b, header(connServiceAuth, "n2")); err != nil {
		t.Fatalf("host B's handshake: %v", err)
	}
	select {
	case got := <-m.service:
		got.Close()
	case <-time.After(time.Minute):
		t.Fatal("host B's connection was not handed on")
	}
	if got := m.refused.Load(); got != 1 {
		t.Fatalf("refused %d, want 1", got)
	}
}

// TestHandshakeReplay: a dialer that does not know the secret cannot use a handshake it
// recorded: the listener's nonce is new on every connection. Nor can it pass off the
// listener's proof as its own. And it gets no proof of the listener's to test guesses
// of the secret against: only the listener's nonce, then the connection closed.
func TestHandshakeReplay(t *testing.T) {
	m := listenTest(t, keyring{secretA})
	addr := m.ln.Addr().String()
	hdr := header(connServiceAuth, "n2")
	nc := make([]byte, nonceLen)
	rand.Read(nc)
	// start sends the header and nc, and returns the connection and what the listener
	// answered: its nonce.
	start := func() (net.Conn, []byte) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write(append(hdr, nc...)); err != nil {
			t.Fatal(err)
		}
		ns := make([]byte, nonceLen)
		if _, err := io.ReadFull(c, ns); err != nil {
			t.Fatal(err)
		}
		return c, ns
	}
	// A node with the secret, recorded.
	c, ns := start()
	recorded := handshakeMAC(secretA, labelClient, hdr, nc, ns)
	if _, err := c.Write(recorded); err != nil {
		t.Fatal(err)
	}
	serverMAC := make([]byte, macLen)
	if _, err := io.ReadFull(c, serverMAC); err != nil || !hmac.Equal(serverMAC, handshakeMAC(secretA, labelServer, hdr, nc, ns)) {
		t.Fatalf("the listener's proof %x, %v", serverMAC, err)
	}
	if sc := handedOn(t, m, m.service, nil); sc == nil {
		t.Fatal("the recorded handshake was not taken the first time")
	}
	for _, tt := range []struct {
		name string
		mac  []byte
	}{
		{"the recorded MAC again", recorded},
		{"the listener's MAC", serverMAC},
		{"zeros", make([]byte, macLen)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := m.refused.Load()
			c, ns2 := start()
			if bytes.Equal(ns, ns2) {
				t.Fatal("the listener sent the same nonce twice")
			}
			if _, err := c.Write(tt.mac); err != nil {
				t.Fatal(err)
			}
			if b, err := io.ReadAll(c); len(b) != 0 {
				t.Fatalf("the listener sent %q (%v), want it to close", b, err)
			}
			waitRefused(t, m, before+1)
		})
	}
}

// startOne starts a one-node cluster in this process on a store in dir, and waits until
// it leads.
func startOne(t *testing.T, dir string, cfg Config) (*pmd.Store, *Node) {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	s, err := pmd.Open(dir, pmd.Options{NoScrub: true, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	cfg.NodeID, cfg.RaftAddr, cfg.HTTPAddr, cfg.Dir, cfg.Store, cfg.Logger = "n1", "127.0.0.1:0", "127.0.0.1:1", dir, s, logger
	cfg.Fatal = func(err error) { t.Errorf("node stopped: %v", err) }
	n, err := Start(context.Background(), cfg)
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !n.IsLeader() {
		if time.Now().After(deadline) {
			n.Close()
			s.Close()
			t.Fatal("the node does not lead its one-node cluster within 30s")
		}
		time.Sleep(20 * time.Millisecond) // polling Raft's state: nothing to wait on
	}
	return s, n
}

// TestRaftPortNeedsTheSecret: a node with a cluster secret serves nothing on its Raft
// port to a connection that does not prove it knows it: no records, no join, no Raft;
// with the secret, the records come.
func TestRaftPortNeedsTheSecret(t *testing.T) {
	s, n := startOne(t, t.TempDir(), Config{Secrets: [][]byte{secretA}})
	defer s.Close()
	defer n.Close()
	if _, err := s.Append(context.Background(), "Payment$1", pmd.NoStream, pmd.EventData{Type: "Paid", Data: map[string]any{"card": "4111-1111"}}); err != nil {
		t.Fatal(err)
	}
	addr := n.cfg.RaftAddr
	records, _ := json.Marshal(request{Op: "records", From: 1, To: s.LastPosition()})
	join, _ := json.Marshal(request{Op: "join", ID: "evil", RaftAddr: "127.0.0.1:1"})
	// raw sends b on a new connection and returns all it reads until the node closes it.
	raw := func(b []byte) string {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c)
		if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
			t.Fatalf("read: %v (read %q)", err, got)
		}
		return string(got)
	}
	attempts := []struct {
		name string
		send []byte
	}{
		{"a records request without the secret", append(append(header(connService, "evil"), records...), '\n')},
		{"a join without the secret", append(append(header(connService, "evil"), join...), '\n')},
		{"Raft without the secret", append(header(connRaft, "evil"), make([]byte, 64)...)},
		{"a records request after a handshake with garbage", append(append(header(connServiceAuth, "evil"), make([]byte, nonceLen+macLen)...), records...)},
		{"another kind of connection", []byte("X\x03abcGET / HTTP/1.0\r\n\r\n")},
	}
	for _, a := range attempts {
		got := raw(a.send)
		if strings.Contains(got, "4111") {
			t.Fatalf("%s: the node sent %q", a.name, got)
		}
	}
	if _, err := dial(context.Background(), addr, connService, "n2", keyring{secretB}, 10*time.Second); !errors.Is(err, ErrSecret) {
		t.Fatalf("a dialer with another secret: %v, want ErrSecret", err)
	}
	waitRefused(t, n.mux, uint64(len(attempts)+1))
	if got := n.RefusedConnections(); got != uint64(len(attempts)+1) {
		t.Fatalf("RefusedConnections %d, want %d", got, len(attempts)+1)
	}
	if servers := n.raft.GetConfiguration().Configuration().Servers; len(servers) != 1 {
		t.Fatalf("the configuration is %v after a join without the secret", servers)
	}

	// With the secret, the records come.
	c, err := dial(context.Background(), addr, connService, "n2", keyring{secretA}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write(append(records, '\n')); err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(c)
	if !strings.Contains(string(got), "4111-1111") {
		t.Fatalf("with the secret, the records answer is %q", got)
	}
}

// TestSetSecrets: new secrets replace the old ones for the connections from then on; none,
// a short one, or a node started without one are refused, and change nothing.
func TestSetSecrets(t *testing.T) {
	s, n := startOne(t, t.TempDir(), Config{Secrets: [][]byte{secretA}})
	defer s.Close()
	defer n.Close()
	addr := n.cfg.RaftAddr
	dials := func(keys keyring) bool {
		t.Helper()
		c, err := dial(context.Background(), addr, connService, "n2", keys, 10*time.Second)
		if err != nil {
			if !errors.Is(err, ErrSecret) {
				t.Fatal(err)
			}
			return false
		}
		c.Close()
		return true
	}
	if err := n.SetSecrets([][]byte{secretB, secretA}); err != nil {
		t.Fatal(err)
	}
	if !dials(keyring{secretA, secretB}) || !dials(keyring{secretB}) {
		t.Fatal("with secrets B, A the node refuses a dialer of A, B or of B")
	}
	for _, bad := range [][][]byte{nil, {secretA, []byte("short")}} {
		if err := n.SetSecrets(bad); err == nil {
			t.Fatalf("SetSecrets(%q) took them", bad)
		}
	}
	if err := n.SetSecrets([][]byte{secretB}); err != nil {
		t.Fatal(err)
	}
	if dials(keyring{secretA}) || !dials(keyring{secretB}) {
		t.Fatal("with secret B the node takes a dialer of A, or refuses one of B")
	}
	open := &Node{mux: listenTest(t, nil)}
	if err := open.SetSecrets([][]byte{secretA}); err == nil || len(*open.mux.keys.Load()) != 0 {
		t.Fatalf("a node started without a secret took one: %v", err)
	}
}

// TestStartChecksSecrets: a secret shorter than MinSecretLen is refused before anything
// starts.
func TestStartChecksSecrets(t *testing.T) {
	dir := t.TempDir()
	s, err := pmd.Open(dir, pmd.Options{NoScrub: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = Start(context.Background(), Config{NodeID: "n1", RaftAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:1", Dir: dir, Store: s,
		Secrets: [][]byte{secretA, []byte("short")}})
	if err == nil || !strings.Contains(err.Error(), "secret 2 of 2 is 5 bytes") {
		t.Fatalf("Start with a short secret: %v", err)
	}
}

func TestLogLimiter(t *testing.T) {
	l := logLimiter{period: 10 * time.Second}
	t0 := time.Unix(1_700_000_000, 0)
	steps := []struct {
		at   time.Duration
		ok   bool
		held int
	}{
		{0, true, 0},
		{time.Second, false, 0},
		{9 * time.Second, false, 0},
		{10 * time.Second, true, 2},
		{30 * time.Second, true, 0},
	}
	for _, s := range steps {
		if ok, held := l.allow(t0.Add(s.at)); ok != s.ok || held != s.held {
			t.Fatalf("at +%s: allow %v, held %d; want %v, %d", s.at, ok, held, s.ok, s.held)
		}
	}
}

// FuzzRaftPortWithoutTheSecret: whatever a dialer that does not know the secret sends,
// the Raft port of a node with one hands nothing on to Raft or the cluster service.
func FuzzRaftPortWithoutTheSecret(f *testing.F) {
	records, _ := json.Marshal(request{Op: "records", From: 1, To: 1})
	f.Add(append(header(connService, "evil"), records...))
	f.Add(append(header(connRaft, "evil"), 1, 2, 3))
	f.Add(append(header(connServiceAuth, "evil"), make([]byte, nonceLen+macLen)...))
	f.Add(append(header(connRaftAuth, ""), make([]byte, 200)...))
	f.Add([]byte{})
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		m := listenTest(t, keyring{secretA})
		c, err := net.Dial("tcp", m.ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		closed := make(chan struct{})
		go func() {
			defer close(closed)
			c.Write(in)
			c.(*net.TCPConn).CloseWrite() // the node sees the end of what it was sent
			io.Copy(io.Discard, c)
		}()
		select {
		case <-m.raft:
			t.Fatalf("%q was handed on to Raft", in)
		case <-m.service:
			t.Fatalf("%q was handed on to the cluster service", in)
		case <-closed:
		}
	})
}
