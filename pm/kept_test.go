package pm_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// TestRetentionOfAManagersStreamsIsRefused: a Go program's SetRetention on a process
// stream, deliveries stream, removal marker or checkpoint stream of a Manager made on
// the store was taken (only pmd serve refused it, for the managers of its
// configuration), and hid what the process issued: it issued it again. The store
// refuses it now, naming the manager and what to use instead, and the process keeps
// its records; clearing settings is taken, and the manager's snapshots take retention.
func TestRetentionOfAManagersStreamsIsRefused(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	got := &issued{}
	r := start(t, s, matchDef("M"), pm.Options{Clock: pmtest.NewClock(time.Now()), Deliver: got.deliver})
	appendFact(t, s, customer("1"))
	r.idle(t)
	before := len(processStream(t, s, "M$1"))
	if before == 0 {
		t.Fatal("the process stream holds nothing")
	}
	for _, stream := range []string{"M$1", "M.deliveries$1", "M.removed$1", "M.checkpoint"} {
		err := s.SetRetention(ctx, stream, pmd.Retention{MaxCount: 1})
		var kw *pmd.KeptWholeError
		if !errors.As(err, &kw) || kw.Owner != "process manager M" || !errors.Is(err, pmd.ErrKeptWhole) {
			t.Errorf("%s: SetRetention = %v, want a KeptWholeError naming process manager M", stream, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "Retention.Completed") {
			t.Errorf("%s: message %q says nothing of what to use instead", stream, msg)
		}
		if err := s.SetRetention(ctx, stream, pmd.Retention{}); err != nil {
			t.Errorf("%s: clearing: %v", stream, err)
		}
	}
	if n := len(processStream(t, s, "M$1")); n != before {
		t.Fatalf("the process stream shows %d records, had %d", n, before)
	}
	if err := s.SetRetention(ctx, "M.snapshots$1", pmd.Retention{MaxCount: 1}); err != nil {
		t.Fatalf("snapshots: %v", err)
	}
}
