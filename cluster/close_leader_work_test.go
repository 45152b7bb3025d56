package cluster

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// TestCloseLetsTheLeaderWorkWriteAsItStops: Close (pmd serve's SIGTERM) ends the leader
// work while Raft runs and the node still leads, so that what it writes as it stops
// lands, as on a single node: a subscription's last position, a process manager's
// checkpoint. Close stopped Raft first and the work's writes were refused, so the next
// leader delivered again every event delivered since the last position written.
func TestCloseLetsTheLeaderWorkWriteAsItStops(t *testing.T) {
	dir := t.TempDir()
	logger := slog.New(slog.DiscardHandler)
	s, err := pmd.Open(dir, pmd.Options{NoScrub: true, Logger: logger})
	must(t, err)
	defer s.Close()
	started := make(chan struct{}, 1)
	wrote := make(chan error, 1)
	n, err := Start(context.Background(), Config{NodeID: "n1", RaftAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:1", Dir: dir, Store: s, Logger: logger,
		Fatal: func(err error) { t.Errorf("node stopped: %v", err) },
		OnLeader: func(ctx context.Context) {
			select {
			case started <- struct{}{}:
			default:
			}
			<-ctx.Done()
			_, err := s.Append(context.WithoutCancel(ctx), "Last$1", pmd.Any, pmd.EventData{Type: "Stopped"})
			select {
			case wrote <- err:
			default:
			}
		}})
	must(t, err)
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		n.Close()
		t.Fatal("the node does not lead its one-node cluster within 30s")
	}
	must(t, n.Close())
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatalf("the leader work's write as Close stopped it: %v; want it written", err)
		}
	default:
		t.Fatal("Close returned before the leader work did")
	}
	info, err := s.StreamInfo("Last$1")
	if err != nil || !info.Exists {
		t.Fatalf("the leader work's last write is not in the store: %+v %v", info, err)
	}
}

// TestLeaderWorkNotStartedOnceClosing: leadership won while Close runs (between lead's
// barrier and the start of the work) starts no leader work: Close may have looked for
// work to wait for already, and would stop Raft under work that had just started.
func TestLeaderWorkNotStartedOnceClosing(t *testing.T) {
	started := make(chan struct{}, 1)
	n := &Node{cfg: Config{OnLeader: func(context.Context) { started <- struct{}{} }}}
	n.closing, n.endClosed = context.WithCancel(context.Background())
	n.endClosed()
	stop := n.runLeaderWork()
	stop()
	select {
	case <-started:
		t.Fatal("the leader work started after Close began")
	default:
	}
	n.workMu.Lock()
	defer n.workMu.Unlock()
	if n.workDone != nil {
		t.Fatal("the node has leader work to wait for after Close began, and none ran")
	}
}
