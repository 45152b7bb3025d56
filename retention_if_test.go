package pmd_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// TestSetRetentionIf: the settings are written only while they are the ones expected;
// a stale expectation fails with ErrRetentionChanged and changes nothing, and so does
// a bad stream name (ErrInvalidArgument).
func TestSetRetentionIf(t *testing.T) {
	ctx := context.Background()
	user := pmd.Retention{MaxAge: time.Hour, MaxCount: 50}
	for _, tc := range []struct {
		name     string
		stream   string
		expected pmd.Retention
		want     error
		after    pmd.Retention
	}{
		{"as expected", "S", user, nil, pmd.Retention{MaxAge: time.Hour, MaxCount: 50, TruncateBefore: 2}},
		{"changed since", "S", pmd.Retention{}, pmd.ErrRetentionChanged, user},
		{"bad stream", "$all", user, pmd.ErrInvalidArgument, user},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, "")
			mustAppend(t, s, "S", pmd.NoStream, ev("E", "i", 0), ev("E", "i", 1), ev("E", "i", 2))
			if err := s.SetRetention(ctx, "S", user); err != nil {
				t.Fatal(err)
			}
			next := tc.expected
			next.TruncateBefore = 2
			if err := s.SetRetentionIf(ctx, tc.stream, tc.expected, next); !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Fatalf("SetRetentionIf: %v, want %v", err, tc.want)
			}
			if got, err := s.Retention("S"); err != nil || got != tc.after {
				t.Fatalf("retention %+v, %v; want %+v", got, err, tc.after)
			}
		})
	}
}
