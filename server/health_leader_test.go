package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// leaderless is a follower whose cluster may have no leader: with none, its writes
// fail as a node's do once it waited for a leader in vain.
type leaderless struct {
	follower
	none *atomic.Bool
	// waits records the wait each LeaderHTTP was given.
	waits chan time.Duration
}

var (
	errNoLeader      = errors.New("cluster: no leader within 3s: Candidate")
	errNoLeaderKnown = errors.New("cluster: no leader: Candidate")
)

// LeaderKnown says at once whether a leader is known, as Raft does.
func (l leaderless) LeaderKnown() error {
	if l.none.Load() {
		return errNoLeaderKnown
	}
	return nil
}

func (l leaderless) LeaderHTTP(_ context.Context, wait time.Duration) (string, error) {
	select {
	case l.waits <- wait:
	default:
	}
	if l.none.Load() {
		return "", errNoLeader
	}
	return l.follower.LeaderHTTP(context.Background(), wait)
}

// TestHealthzWithoutLeader: a cluster node that knows no leader refuses every write
// with 503 (after waiting up to 3 s for one), so /healthz (and the stats route's
// health) says degraded, naming why, as for a single node whose writes fail; once a
// leader is known again it says ok. It answers at once either way, from what Raft knows
// (LeaderKnown), without waiting for a leader or asking one: a probe's timeout (1 s in
// Kubernetes) is shorter than a write's wait, and a follower that has not asked the
// leader of a new term its address yet still knows it has one.
func TestHealthzWithoutLeader(t *testing.T) {
	var none atomic.Bool
	none.Store(true)
	node := leaderless{follower: follower{"127.0.0.1:1"}, none: &none, waits: make(chan time.Duration, 1)}
	e := newEnv(t, Options{Node: node})

	r := e.do("GET", "/healthz", nil).must(t, http.StatusServiceUnavailable)
	if r.body["status"] != "degraded" || !strings.Contains(string(r.raw), "no leader known") ||
		!strings.Contains(string(r.raw), errNoLeaderKnown.Error()) {
		t.Fatalf("/healthz without a leader: %s, want degraded naming the missing leader", r.raw)
	}
	s := e.do("GET", "/v1/stats", nil).must(t, http.StatusOK)
	if h, _ := s.body["health"].(map[string]any); h["status"] != "degraded" || !strings.Contains(string(s.raw), errNoLeaderKnown.Error()) {
		t.Fatalf("/v1/stats without a leader: health %v, want degraded naming the missing leader", s.body["health"])
	}

	none.Store(false)
	if r := e.do("GET", "/healthz", nil).must(t, http.StatusOK); r.body["status"] != "ok" {
		t.Fatalf("/healthz with a leader again: %s, want ok", r.raw)
	}
	select {
	case w := <-node.waits:
		t.Errorf("/healthz waited up to %s for a leader's address, want an answer at once from what Raft knows", w)
	default:
	}
}
