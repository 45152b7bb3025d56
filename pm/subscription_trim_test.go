package pm

import (
	"context"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// TestSubscriptionTrimKeepsAConcurrentRetentionChange: a user's retention change on
// the subscription's stream that lands between the trim's read of the settings and its
// write is not overwritten: the trim reads them again and sets its TruncateBefore on the
// user's. A user who changes them at every read wins; the trim gives up until the next
// save.
func TestSubscriptionTrimKeepsAConcurrentRetentionChange(t *testing.T) {
	for _, tc := range []struct {
		name    string
		changes int // user changes, one after each of the trim's reads
		want    pmd.Retention
	}{
		{"no change", 0, pmd.Retention{TruncateBefore: 2}},
		{"one change", 1, pmd.Retention{MaxAge: time.Hour, MaxCount: 1, TruncateBefore: 2}},
		{"a change at every read", trimTries, pmd.Retention{MaxAge: time.Hour, MaxCount: trimTries}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			store := openTestStore(t, t.TempDir())
			stream := SubscriptionStream("billing")
			for range 4 {
				if _, err := store.Append(ctx, stream, pmd.Any, pmd.EventData{Type: subscriptionPositionType, Data: map[string]any{"position": 0}}); err != nil {
					t.Fatal(err)
				}
			}
			sub, err := NewSubscription(store, "billing", Filter{Types: []string{"E"}}, SubscriptionOptions{
				Deliver: func(context.Context, pmd.Event) error { return nil }, KeepRecords: 1, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			sub.trimRead = func() {
				if n == tc.changes {
					return
				}
				n++
				if err := store.SetRetention(ctx, stream, pmd.Retention{MaxAge: time.Hour, MaxCount: uint64(n)}); err != nil {
					t.Error(err)
				}
			}
			sub.trim(ctx, 3) // the newest record: 2·KeepRecords past TruncateBefore
			if got, err := store.Retention(stream); err != nil || got != tc.want {
				t.Fatalf("retention %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
