package cluster

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// One TCP port, the node's Raft address, carries two kinds of connection: Raft's own
// (AppendEntries, votes, snapshots) and the cluster service's (join, remove, node info,
// copying records to a node that catches up). The dialer's first byte says which: so
// that a node given only its peers' Raft addresses (--join) can talk to them.
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
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	var to chan net.Conn
	switch b[0] {
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

// layer is Raft's side of the mux: raft.StreamLayer.
type layer struct {
	m     *mux
	conns chan net.Conn
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
func (l *layer) Addr() net.Addr { return l.m.ln.Addr() }

func (l *layer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return dial(string(addr), connRaft, timeout)
}

// dial connects to a node's Raft address for the given kind of connection.
func dial(addr string, kind byte, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write([]byte{kind}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
