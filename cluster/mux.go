package cluster

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// One TCP port, the node's Raft address, carries two kinds of connection: Raft's own
// (AppendEntries, votes, snapshots) and the cluster service's (join, remove, node info,
// copying records to a node that catches up), so that a node given only its peers' Raft
// addresses (--join) can talk to them. A connection starts with a header: a byte that
// says which kind it is, then the dialing node's id (a length byte and the bytes), which
// a test's proxy reads to cut the links between chosen nodes.
const (
	connRaft    byte = 'R'
	connService byte = 'C'
)

// mux accepts on the Raft address and sorts the connections by their first byte.
type mux struct {
	ln      net.Listener
	raft    chan net.Conn
	service chan net.Conn
	closed  chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

func listen(addr string) (*mux, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cluster: listen on the Raft address %s: %w", addr, err)
	}
	m := &mux{ln: ln, raft: make(chan net.Conn), service: make(chan net.Conn), closed: make(chan struct{})}
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
		m.wg.Add(1)
		go m.sort(c)
	}
}

// sort reads the first byte of c and hands it on, or closes it.
func (m *mux) sort(c net.Conn) {
	defer m.wg.Done()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	kind, _, err := readHeader(c)
	if err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	var to chan net.Conn
	switch kind {
	case connRaft:
		to = m.raft
	case connService:
		to = m.service
	default:
		c.Close()
		return
	}
	select {
	case to <- c:
	case <-m.closed:
		c.Close()
	}
}

func (m *mux) Close() error {
	m.once.Do(func() { close(m.closed) })
	err := m.ln.Close()
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
	return dial(string(addr), connRaft, l.id, timeout)
}

// advAddr is the address a node advertises, which may not be the one it listens on
// (a proxy in front of it).
type advAddr string

func (a advAddr) Network() string { return "tcp" }
func (a advAddr) String() string  { return string(a) }

// dial connects to a node's Raft address for the given kind of connection, from the
// node with id from.
func dial(addr string, kind byte, from string, timeout time.Duration) (net.Conn, error) {
	if len(from) > 255 {
		return nil, fmt.Errorf("cluster: node id %q is longer than 255 bytes", from)
	}
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write(append([]byte{kind, byte(len(from))}, from...)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
