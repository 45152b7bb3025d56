package pmd_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestKeepRefusesRetention: retention settings that hide records of a stream an owner
// keeps whole (Store.Keep) are refused through the Go API, by SetRetention and
// SetRetentionIf, with a *KeptWholeError naming the stream and the owner, and nothing
// is set; settings that hide nothing are taken, and streams not kept take any. A store
// opened again keeps nothing until its owner keeps its streams again.
func TestKeepRefusesRetention(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	k := pmd.Kept{Owner: "process manager Ship", Why: "it issues again what it no longer sees",
		Streams: []string{"Ship.checkpoint"}, Categories: []string{"Ship", "Ship.deliveries"}}
	if err := s.Keep(k); err != nil {
		t.Fatal(err)
	}
	if err := s.Keep(k); err != nil { // kept again, as by a second manager of the name
		t.Fatal(err)
	}
	hide := pmd.Retention{MaxCount: 1}
	tests := []struct {
		stream string
		kept   bool
	}{
		{"Ship$1", true},
		{"Ship$", true},
		{"Ship$a$b", true},
		{"Ship.deliveries$1", true},
		{"Ship.checkpoint", true},
		{"Ship", false},
		{"Ship.deliveries", false},
		{"Ship.snapshots$1", false},
		{"Ships$1", false},
		{"Ship.checkpoint2", false},
		{"Other$1", false},
	}
	for _, tc := range tests {
		err := s.SetRetention(ctx, tc.stream, hide)
		errIf := s.SetRetentionIf(ctx, tc.stream, pmd.Retention{}, pmd.Retention{MaxCount: 2})
		if !tc.kept {
			if err != nil || !errors.Is(errIf, pmd.ErrRetentionChanged) {
				t.Errorf("%s: SetRetention: %v; SetRetentionIf: %v (want taken, then changed)", tc.stream, err, errIf)
			}
			continue
		}
		for _, err := range []error{err, errIf} {
			var kw *pmd.KeptWholeError
			if !errors.As(err, &kw) || kw.Stream != tc.stream || kw.Owner != k.Owner || !errors.Is(err, pmd.ErrKeptWhole) || !errors.Is(err, pmd.ErrInvalidArgument) {
				t.Errorf("%s: %v, want a KeptWholeError naming it and %s", tc.stream, err, k.Owner)
				continue
			}
			if msg := err.Error(); !strings.Contains(msg, k.Owner) || !strings.Contains(msg, k.Why) || !strings.Contains(msg, tc.stream) {
				t.Errorf("%s: message %q names no stream, owner or reason", tc.stream, msg)
			}
		}
		if r, err := s.Retention(tc.stream); err != nil || r != (pmd.Retention{}) {
			t.Errorf("%s: refused settings were set: %+v, %v", tc.stream, r, err)
		}
		if err := s.SetRetention(ctx, tc.stream, pmd.Retention{}); err != nil {
			t.Errorf("%s: clearing: %v", tc.stream, err)
		}
	}
	for _, bad := range []pmd.Kept{{Streams: []string{"A"}}, {Owner: "o", Streams: []string{"$all"}}, {Owner: "o", Categories: []string{""}}} {
		if err := s.Keep(bad); !errors.Is(err, pmd.ErrInvalidArgument) {
			t.Errorf("Keep(%+v) = %v, want ErrInvalidArgument", bad, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	if err := s.SetRetention(ctx, "Ship$1", hide); err != nil {
		t.Fatalf("a store opened again keeps what no owner kept since: %v", err)
	}
}
