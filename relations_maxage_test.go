package pmd_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// TestEventStreamsLeavesOutStreamsWhoseMaxAgeHidesTheEvent: a max age hides an event
// from its stream's reads at once (it dies only at the next scavenge), so EventStreams
// does not list a stream, its own or one it is linked into, whose reads no longer show it.
func TestEventStreamsLeavesOutStreamsWhoseMaxAgeHidesTheEvent(t *testing.T) {
	for _, tt := range []struct {
		name   string
		maxAge map[string]time.Duration // set after the writes; a nanosecond hides the event
		want   []string
	}{
		{"none", nil, []string{"Order$1", "Late", "Audit"}},
		{"own stream", map[string]time.Duration{"Order$1": time.Nanosecond}, []string{"Late", "Audit"}},
		{"a linked stream", map[string]time.Duration{"Late": time.Nanosecond}, []string{"Order$1", "Audit"}},
		{"every stream", map[string]time.Duration{"Order$1": time.Nanosecond, "Late": time.Nanosecond, "Audit": time.Nanosecond}, nil},
		{"a max age not reached", map[string]time.Duration{"Order$1": time.Hour, "Audit": time.Hour}, []string{"Order$1", "Late", "Audit"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			id := uuid.New()
			if _, err := s.Append(ctx, "Order$1", pmd.NoStream, pmd.EventData{ID: id, Type: "Placed"}); err != nil {
				t.Fatal(err)
			}
			for _, stream := range []string{"Late", "Audit"} {
				if _, err := s.Link(ctx, stream, pmd.Any, id); err != nil {
					t.Fatal(err)
				}
			}
			for stream, age := range tt.maxAge {
				if err := s.SetRetention(ctx, stream, pmd.Retention{MaxAge: age}); err != nil {
					t.Fatal(err)
				}
			}
			got := eventStreams(t, s, id)
			if !slices.Equal(got, tt.want) {
				t.Errorf("EventStreams = %q, want %q", got, tt.want)
			}
			// What the streams' reads show, as EventStreams must agree with them.
			for _, stream := range []string{"Order$1", "Late", "Audit"} {
				shown := false
				for ev, err := range s.ReadStream(ctx, stream, pmd.ReadOptions{}) {
					if err != nil {
						t.Fatal(err)
					}
					shown = shown || ev.ID == id
				}
				if listed := slices.Contains(got, stream); shown != listed {
					t.Errorf("%s: a read shows the event: %v, EventStreams lists the stream: %v", stream, shown, listed)
				}
			}
		})
	}
}
