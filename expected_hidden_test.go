package pmd_test

import (
	"context"
	"errors"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestExpectedVersionOfAStreamRetentionHidesWhole: retention never changes a stream's
// version or existence (docs/retention.md), so a stream whose events it all hides still
// exists for an expected version: stream_exists and its last version hold, no_stream
// fails naming that version, as ExpectedVersion's documentation says.
func TestExpectedVersionOfAStreamRetentionHidesWhole(t *testing.T) {
	for _, tt := range []struct {
		name     string
		expected pmd.ExpectedVersion
		ok       bool
	}{
		{"no_stream", pmd.NoStream, false},
		{"stream_exists", pmd.StreamExists, true},
		{"its last version", pmd.AtVersion(1), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.Append(ctx, "Order$1", pmd.NoStream, pmd.EventData{Type: "A"}, pmd.EventData{Type: "B"}); err != nil {
				t.Fatal(err)
			}
			if err := s.SetRetention(ctx, "Order$1", pmd.Retention{TruncateBefore: 2}); err != nil {
				t.Fatal(err)
			}
			_, err = s.Append(ctx, "Order$1", tt.expected, pmd.EventData{Type: "C"})
			var wev *pmd.WrongExpectedVersionError
			switch {
			case tt.ok && err != nil:
				t.Fatalf("append expecting %s: %v, want it written", tt.expected, err)
			case !tt.ok && (!errors.As(err, &wev) || wev.Actual != 1):
				t.Fatalf("append expecting %s: %v, want wrong expected version, actual 1", tt.expected, err)
			}
		})
	}
}
