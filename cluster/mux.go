package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// One TCP port, the node's Raft address, carries two kinds of connection: Raft's own
// (AppendEntries, votes, snapshots) and the cluster service's (join, remove, node info,
// copying records to a node that catches up), so that a node given only its peers' Raft
// addresses (--join) can talk to them. A connection starts with a header: a byte that
// says which kind it is, then the dialing node's id (a length byte and the bytes), which
// a test's proxy reads to cut the links between chosen nodes. A node with a cluster
// secret dials with the Auth kinds, and the header is followed by the handshake of
// auth.go; it refuses the other kinds, and a node without one refuses the Auth kinds.
const (
	connRaft        byte = 'R'
	connService     byte = 'C'
	connRaftAuth    byte = 'r'
	connServiceAuth byte = 'c'
)

// muxLimits bound the connections that have not yet been sorted (header, handshake):
// anyone who reaches the Raft port can open them, and each holds a goroutine and a file
// descriptor until it is handed on or refused.
type muxLimits struct {
	pending int           // at most this many at once; those above are refused at once
	timeout time.Duration // for the header and the handshake of each
	// perHost, if not 0, is how many of them one source host may hold (an IPv4
	// address, an IPv6 /64), so that a few idle sockets from one host cannot take every
	// slot and keep the nodes' own connections out; those above are refused at once.
	perHost int
	// exempt, if set, says which sources perHost does not count (they still count in
	// pending).
	exempt func(net.IP) bool
}

// defaultMuxLimits: a cluster's own nodes open a few connections at a time (Raft keeps
// its pool of them open; the cluster service opens one a request, sorted in a round
// trip), far fewer than 64, and fewer than 8 from each node. Loopback sources are not
// counted per host: the nodes of a cluster on one machine (make cluster, the tests) all
// dial from it, and a local process has easier ways to hurt the node.
func defaultMuxLimits() muxLimits {
	return muxLimits{pending: 64, perHost: 8, timeout: 10 * time.Second, exempt: net.IP.IsLoopback}
}

// mux accepts on the Raft address and sorts the connections by their first byte, once
// they proved they know the cluster secret (if the node has one).
type mux struct {
	ln      net.Listener
	keys    atomic.Pointer[keyring]
	logger  *slog.Logger
	lim     muxLimits
	refused atomic.Uint64 // connections closed before they were handed on
	limit   logLimiter    // of the refusals' log lines
	raft    chan net.Conn
	service chan net.Conn
	closed  chan struct{}
	once    sync.Once
	wg      sync.WaitGroup

	mu      sync.Mutex
	pending int                   // guarded by mu: connections being sorted, up to lim.pending
	hosts   map[string]int        // guarded by mu: of those, how many each counted source host holds
	sorting map[net.Conn]struct{} // guarded by mu: those in sort, which Close closes
}

func listen(addr string, keys keyring, logger *slog.Logger, lim muxLimits) (*mux, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cluster: listen on the Raft address %s: %w", addr, err)
	}
	m := &mux{ln: ln, logger: logger, lim: lim, limit: logLimiter{period: 10 * time.Second},
		raft: make(chan net.Conn), service: make(chan net.Conn), closed: make(chan struct{}),
		hosts: map[string]int{}, sorting: map[net.Conn]struct{}{}}
	m.keys.Store(&keys)
	m.wg.Add(1)
	go m.accept()
	return m, nil
}

func (m *mux) accept() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		m.mu.Lock()
		select {
		case <-m.closed:
			m.mu.Unlock()
			c.Close()
			return
		default:
		}
		if m.pending >= m.lim.pending {
			m.mu.Unlock()
			m.refuse(c, "", fmt.Sprintf("%d connections are already being sorted", m.lim.pending))
			continue
		}
		host := m.hostOf(c.RemoteAddr())
		if host != "" && m.hosts[host] >= m.lim.perHost {
			m.mu.Unlock()
			m.refuse(c, "", fmt.Sprintf("%d connections from %s are already being sorted", m.lim.perHost, host))
			continue
		}
		m.pending++
		if host != "" {
			m.hosts[host]++
		}
		m.sorting[c] = struct{}{}
		m.wg.Add(1)
		m.mu.Unlock()
		go m.sort(c, host)
	}
}

// hostOf is the source host a connection from addr counts against for lim.perHost: its
// IP, or for IPv6 its /64 (one host's usual share); "" if it is not counted.
func (m *mux) hostOf(addr net.Addr) string {
	if m.lim.perHost <= 0 {
		return ""
	}
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	if m.lim.exempt != nil && m.lim.exempt(ta.IP) {
		return ""
	}
	if ta.IP.To4() == nil {
		return ta.IP.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ta.IP.String()
}

// sort sorts c (admit) and hands it on, or refuses it. host is what it counts against
// (hostOf).
func (m *mux) sort(c net.Conn, host string) {
	defer func() {
		m.mu.Lock()
		delete(m.sorting, c)
		m.mu.Unlock()
		m.wg.Done()
	}()
	kind, from, to, err := m.admit(c)
	answered := errors.Is(err, errNoSecret) && kind == connService
	if answered {
		// Told why before it is closed, which takes up to a second: it keeps its slot
		// meanwhile, so that these connections too are bounded.
		m.refuseService(c, from)
	}
	// Else the slot is free before c is counted refused or handed on.
	m.mu.Lock()
	m.pending--
	if host != "" {
		if m.hosts[host]--; m.hosts[host] == 0 {
			delete(m.hosts, host)
		}
	}
	m.mu.Unlock()
	switch {
	case answered:
		return
	case err != nil:
		m.refuse(c, from, err.Error())
		return
	}
	_ = c.SetDeadline(time.Time{})
	select {
	case to <- c:
	case <-m.closed:
		c.Close()
	}
}

var errNoSecret = errors.New("no cluster secret (this node has one)")

// admit reads the header of c and runs the handshake if the node has a secret, within
// the limits' timeout: it returns the channel c goes to, or why it is refused.
func (m *mux) admit(c net.Conn) (kind byte, from string, to chan net.Conn, err error) {
	_ = c.SetDeadline(time.Now().Add(m.lim.timeout))
	kind, from, err = readHeader(c)
	if err != nil {
		return kind, from, nil, fmt.Errorf("no header: %w", err)
	}
	keys := *m.keys.Load()
	switch kind {
	case connRaft, connService:
		if len(keys) > 0 {
			return kind, from, nil, errNoSecret
		}
	case connRaftAuth, connServiceAuth:
		if len(keys) == 0 {
			return kind, from, nil, errors.New("a cluster secret, and this node has none")
		}
		if err := keys.serverHandshake(c, header(kind, from)); err != nil {
			return kind, from, nil, err
		}
	default:
		return kind, from, nil, fmt.Errorf("unknown kind of connection %q", kind)
	}
	if kind == connService || kind == connServiceAuth {
		return kind, from, m.service, nil
	}
	return kind, from, m.raft, nil
}

// refuseService refuses a cluster service connection without the secret to a node that
// has one, telling the dialer why (for the log of a node started without the secret)
// without reading its request.
func (m *mux) refuseService(c net.Conn, from string) {
	m.count(c, from, "no cluster secret (this node has one)")
	defer c.Close()
	b, _ := json.Marshal(response{Error: "cluster: this node needs the cluster secret: give every node of the cluster the same --cluster-secret-file"})
	_, _ = c.Write(append(b, '\n'))
	// The request is unread: closing now could reset the connection before the answer
	// arrives. Discard what the dialer sends until it closes, for a second at most.
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = io.CopyN(io.Discard, c, 64<<10)
}

// refuse counts c refused, logs why, and closes it.
func (m *mux) refuse(c net.Conn, from, why string) {
	m.count(c, from, why)
	c.Close()
}

// count counts c refused and logs why (at most once every 10 s, with the number of
// refusals not logged since): before c is closed, so that a test that sees it closed
// sees it counted.
func (m *mux) count(c net.Conn, from, why string) {
	select {
	case <-m.closed:
		return // the node is stopping: the connection was cut, not refused
	default:
	}
	m.refused.Add(1)
	if ok, held := m.limit.allow(time.Now()); ok {
		m.logger.Warn("cluster: refused a connection to the Raft address", "remote", c.RemoteAddr().String(),
			"node", from, "reason", why, "suppressed", held)
	}
}

// Close stops accepting, closes the connections being sorted (rather than wait for
// their timeout: anyone who reaches the port could hold the node's stop that long) and
// waits for the goroutines of the mux.
func (m *mux) Close() error {
	m.once.Do(func() { close(m.closed) })
	err := m.ln.Close()
	m.mu.Lock()
	for c := range m.sorting {
		c.Close()
	}
	m.mu.Unlock()
	m.wg.Wait()
	return err
}

// readHeader reads a connection's header: its kind and the dialing node's id.
func readHeader(r io.Reader) (kind byte, from string, err error) {
	var b [2]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, "", err
	}
	id := make([]byte, b[1])
	if _, err := io.ReadFull(r, id); err != nil {
		return 0, "", err
	}
	return b[0], string(id), nil
}

func header(kind byte, from string) []byte {
	return append([]byte{kind, byte(len(from))}, from...)
}

// layer is Raft's side of the mux: raft.StreamLayer.
type layer struct {
	m     *mux
	conns chan net.Conn
	id    string   // this node's, sent in each connection's header
	adv   net.Addr // the address the other nodes dial
}

var errMuxClosed = errors.New("cluster: the Raft listener is closed")

func (l *layer) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.m.closed:
		return nil, errMuxClosed
	}
}

func (l *layer) Close() error   { return nil } // the node closes the mux
func (l *layer) Addr() net.Addr { return l.adv }

func (l *layer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return l.m.dial(context.Background(), string(addr), connRaft, l.id, timeout)
}

// advAddr is the address a node advertises, which may not be the one it listens on
// (a proxy in front of it).
type advAddr string

func (a advAddr) Network() string { return "tcp" }
func (a advAddr) String() string  { return string(a) }

// dial connects to a node's Raft address for the given kind of connection (connRaft or
// connService), from the node with id from, with the node's cluster secret if it has one.
// It gives up after timeout, or when ctx ends.
func (m *mux) dial(ctx context.Context, addr string, kind byte, from string, timeout time.Duration) (net.Conn, error) {
	return dial(ctx, addr, kind, from, *m.keys.Load(), timeout)
}

// MaxNodeIDLen is the longest node id, in bytes: each connection's header carries the
// dialing node's id after a length byte.
const MaxNodeIDLen = 255

func dial(ctx context.Context, addr string, kind byte, from string, keys keyring, timeout time.Duration) (net.Conn, error) {
	if len(from) > MaxNodeIDLen {
		return nil, fmt.Errorf("cluster: node id %q is longer than %d bytes", from, MaxNodeIDLen)
	}
	c, err := (&net.Dialer{Timeout: timeout}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		if _, err := c.Write(header(kind, from)); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	if kind == connRaft {
		kind = connRaftAuth
	} else {
		kind = connServiceAuth
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { c.Close() }) // a peer that accepts and says nothing
	err = keys.clientHandshake(c, header(kind, from))
	if !stop() || err != nil {
		c.Close()
		return nil, cmp.Or(ctx.Err(), err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}
