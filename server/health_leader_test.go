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

var errNoLeader = errors.New("cluster: no leader within 3s: Candidate")

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

// TestHealthzWithoutLeader: a cluster node that finds no leader refuses every write
// with 503, so /healthz (and the stats route's health) says degraded, naming why, as
// for a single node whose writes fail; once a leader is known again it says ok. It
// waits for a leader as long as a write does, so an election does not make it flap.
func TestHealthzWithoutLeader(t *testing.T) {
	var none atomic.Bool
	none.Store(true)
	node := leaderless{follower: follower{"127.0.0.1:1"}, none: &none, waits: make(chan time.Duration, 1)}
	e := newEnv(t, Options{Node: node})

	r := e.do("GET", "/healthz", nil).must(t, http.StatusServiceUnavailable)
	if r.body["status"] != "degraded" || !strings.Contains(string(r.raw), errNoLeader.Error()) {
		t.Fatalf("/healthz without a leader: %s, want degraded naming the missing leader", r.raw)
	}
	if w := <-node.waits; w != leaderWait {
		t.Errorf("/healthz waited %s for a leader, want %s as a write", w, leaderWait)
	}
	s := e.do("GET", "/v1/stats", nil).must(t, http.StatusOK)
	if h, _ := s.body["health"].(map[string]any); h["status"] != "degraded" || !strings.Contains(string(s.raw), errNoLeader.Error()) {
		t.Fatalf("/v1/stats without a leader: health %v, want degraded naming the missing leader", s.body["health"])
	}

	none.Store(false)
	if r := e.do("GET", "/healthz", nil).must(t, http.StatusOK); r.body["status"] != "ok" {
		t.Fatalf("/healthz with a leader again: %s, want ok", r.raw)
	}
}
