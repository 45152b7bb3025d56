package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	pmdlog "github.com/pmd-dev/pmd/log"
)

// The cluster service answers on the Raft address (connections that start with
// connService): one JSON request line, one JSON response line; a records request is
// followed by the records, each a uvarint length and the record as the log encodes it,
// and a zero length at the end.
type request struct {
	Op       string `json:"op"` // info, join, remove, removed, records
	ID       string `json:"id,omitempty"`
	RaftAddr string `json:"raft_addr,omitempty"`
	From     uint64 `json:"from,omitempty"`
	To       uint64 `json:"to,omitempty"`
}

type response struct {
	Error string `json:"error,omitempty"`
	// Code says what Error is where the asker must tell it apart: one of codedErrors'
	// codes, for a join or removal refused with its error. A pmd from before it sends none.
	Code string `json:"code,omitempty"`
	// NotLeader is set when a join or remove reached a node that is not the leader;
	// Leader is the leader's Raft address, if known.
	NotLeader bool   `json:"not_leader,omitempty"`
	Leader    string `json:"leader,omitempty"`
	Info      *Info  `json:"info,omitempty"`
	// Added is set when the leader added the node that asked to join to a configuration
	// that did not name it: a new member, which acknowledged no entry before (its vote
	// guard goes off). Not set for a node it found a member already; a pmd from before
	// it never sets it.
	Added bool `json:"added,omitempty"`
}

// Info is what a node says of itself.
type Info struct {
	ID           string `json:"id"`
	RaftAddr     string `json:"raft_addr"`
	HTTPAddr     string `json:"http_addr"`
	State        string `json:"state"` // leader, follower, candidate, shutdown, removed, halted
	Ready        bool   `json:"ready"` // the leader has applied its predecessors' entries and takes writes
	LeaderID     string `json:"leader_id"`
	LeaderAddr   string `json:"leader_raft_addr"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	Position     uint64 `json:"position"` // the store's last position
	// Cluster is the id of the cluster the node belongs to (clusterIDFile); "" if it has
	// none: not a member yet, a cluster seeded before cluster ids, or an older pmd.
	Cluster   string `json:"cluster_id,omitempty"`
	InCluster bool   `json:"in_cluster"`
	// Rules is the newest apply rules version the node applies (RulesVersion); 0 from a
	// pmd before rules versions, which applies unstampedRules.
	Rules uint32 `json:"rules,omitempty"`
}

const serviceTimeout = 5 * time.Second

// call sends req to the cluster service at addr and reads the response line; for a
// records request, it returns the reader positioned at the records.
func (n *Node) call(ctx context.Context, addr string, req request, timeout time.Duration) (response, *bufio.Reader, net.Conn, error) {
	c, err := n.mux.dial(ctx, addr, connService, n.cfg.NodeID, timeout)
	if err != nil {
		return response{}, nil, nil, err
	}
	// The answer must come within timeout, and within ctx: a peer that accepts and then
	// says nothing is given up (a records request's reader moves the read deadline on
	// as records come).
	dl := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	_ = c.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { c.Close() })
	b, _ := json.Marshal(req)
	if _, err := c.Write(append(b, '\n')); err != nil {
		stop()
		c.Close()
		return response{}, nil, nil, err
	}
	br := bufio.NewReader(c)
	line, err := br.ReadBytes('\n')
	if err != nil {
		stop()
		c.Close()
		return response{}, nil, nil, err
	}
	var resp response
	if err := json.Unmarshal(line, &resp); err != nil {
		stop()
		c.Close()
		return response{}, nil, nil, fmt.Errorf("cluster: a bad answer from %s: %w", addr, err)
	}
	if req.Op == "records" && resp.Error == "" {
		return resp, br, &stoppingConn{Conn: c, stop: stop}, nil
	}
	stop()
	c.Close()
	if resp.Error != "" && !resp.NotLeader {
		return resp, nil, nil, remoteError(resp)
	}
	return resp, nil, nil, nil
}

// codeJoinRules is response.Code for a join refused with ErrJoinRules.
const codeJoinRules = "join_rules"

// codedErrors are the refusals of a join or removal that response.Code carries, so that
// the asker's error matches them as the leader's did.
var codedErrors = []struct {
	code string
	is   error
}{
	{codeJoinRules, ErrJoinRules},
	{"join_refused", ErrJoinRefused},
	{"remove_refused", ErrRemoveRefused},
	{"unknown_node", ErrUnknownNode},
}

// remoteError is the error of a peer's answer: its text, matching the error of
// codedErrors it matched on the peer when Code says so.
func remoteError(resp response) error {
	for _, e := range codedErrors {
		if resp.Code == e.code {
			return &peerError{msg: resp.Error, is: e.is}
		}
	}
	return errors.New(resp.Error)
}

// peerError is an error a peer answered, with the sentinel it matched there.
type peerError struct {
	msg string
	is  error
}

func (e *peerError) Error() string { return e.msg }
func (e *peerError) Unwrap() error { return e.is }

type stoppingConn struct {
	net.Conn
	stop func() bool
}

func (c *stoppingConn) Close() error { c.stop(); return c.Conn.Close() }

// serve answers the cluster service's connections until the mux closes.
func (n *Node) serve() {
	defer n.wg.Done()
	for {
		select {
		case c := <-n.mux.service:
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				defer c.Close()
				n.answer(c)
			}()
		case <-n.mux.closed:
			return
		}
	}
}

func (n *Node) answer(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(serviceTimeout))
	br := bufio.NewReader(c)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return
	}
	var req request
	var resp response
	if err := json.Unmarshal(line, &req); err != nil {
		resp.Error = "bad request: " + err.Error()
	} else {
		// Within the node's closing: a leader's check of a silent node that asked to
		// join (checkJoiner) would hold Close (pmd serve's SIGTERM) until joinerWait.
		ctx, cancel := context.WithTimeout(n.closing, serviceTimeout)
		defer cancel()
		switch req.Op {
		case "info":
			info := n.info()
			resp.Info = &info
		case "join", "remove":
			if !n.IsLeader() {
				resp.NotLeader = true
				addr, _ := n.raft.LeaderWithID()
				resp.Leader = string(addr)
				resp.Error = "not the leader"
				break
			}
			if req.Op == "join" {
				resp.Added, err = n.addMember(ctx, req.ID, req.RaftAddr)
			} else {
				err = n.removeServer(ctx, req.ID)
			}
			if err != nil {
				resp.Error = err.Error()
			}
			for _, e := range codedErrors {
				if errors.Is(err, e.is) {
					resp.Code = e.code
				}
			}
		case "removed":
			if req.ID != n.cfg.NodeID {
				resp.Error = fmt.Sprintf("this node is %s, not %s", n.cfg.NodeID, req.ID)
				break
			}
			n.leave("the leader")
		case "records":
			if req.To > n.store.LastPosition() || req.From == 0 || req.From > req.To {
				resp.Error = fmt.Sprintf("records %d-%d: this node's log ends at %d", req.From, req.To, n.store.LastPosition())
			}
		default:
			resp.Error = fmt.Sprintf("unknown op %q", req.Op)
		}
	}
	b, _ := json.Marshal(resp)
	if _, err := c.Write(append(b, '\n')); err != nil || req.Op != "records" || resp.Error != "" {
		return
	}
	// Stream the records: no overall deadline (a far-behind node may need many), but
	// each write must make progress. Close ends the copy (the peer asks another member,
	// or this one again): a peer that keeps reading would hold it for the whole copy.
	bw := bufio.NewWriterSize(c, 256<<10)
	var buf []byte
	stop := context.AfterFunc(n.closing, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	err = n.store.ScanRecords(n.closing, req.From, req.To, func(r *pmdlog.Record) error {
		if err := n.closing.Err(); err != nil {
			return err
		}
		buf = pmdlog.AppendRecord(buf[:0], r)
		var hdr [binary.MaxVarintLen64]byte
		_ = c.SetWriteDeadline(time.Now().Add(serviceTimeout))
		if _, err := bw.Write(hdr[:binary.PutUvarint(hdr[:], uint64(len(buf)))]); err != nil {
			return err
		}
		_, err := bw.Write(buf)
		return err
	})
	if err != nil {
		level := slog.LevelWarn
		if n.closing.Err() != nil {
			level = slog.LevelDebug // the node is closing: nothing went wrong
		}
		n.logger.Log(context.Background(), level, "cluster: copying records to a peer stopped", "from", req.From, "to", req.To, "err", err)
		return // the peer sees the stream end without its end mark
	}
	_ = bw.WriteByte(0)
	_ = bw.Flush()
}

// readRecords reads the records of a records response, calling fn with each chunk that
// ends at a commit record (at most about max bytes, unless one write is larger). It
// calls touch every 1024 records and after each fn, which may take a while: the time
// the reader gives the peer runs from there.
func readRecords(br *bufio.Reader, max int, touch func(), fn func([]pmdlog.Record) error) error {
	var chunk []pmdlog.Record
	size := 0
	var buf []byte
	for i := 0; ; i++ {
		if i%1024 == 0 {
			touch()
		}
		n, err := binary.ReadUvarint(br)
		if err != nil {
			return fmt.Errorf("cluster: the records stream ended early: %w", err)
		}
		if n == 0 {
			if len(chunk) == 0 {
				return nil
			}
			if !chunk[len(chunk)-1].Commit {
				return fmt.Errorf("cluster: the records stream ends inside a write")
			}
			return fn(chunk)
		}
		if n > 1<<30 {
			return fmt.Errorf("cluster: a record of %d bytes in the records stream", n)
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(br, buf); err != nil {
			return fmt.Errorf("cluster: the records stream ended early: %w", err)
		}
		r, err := pmdlog.DecodeRecord(buf)
		if err != nil {
			return err
		}
		chunk = append(chunk, r)
		size += int(n)
		if r.Commit && size >= max {
			if err := fn(chunk); err != nil {
				return err
			}
			touch()
			chunk, size = chunk[:0], 0
		}
	}
}
