package pmd_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/damagetest"
)

// TestScavengeGoesPastADamagedSegment: a damaged record stops the rewrite of its own
// segment, which cannot be framed and rewritten safely, but not the scavenge: the erased
// data in every other segment leaves the disk, and the scavenge then fails with the
// damage (ErrCorrupt), so that whoever scavenges learns that a segment kept its dead and
// erased bytes until a repair. One damaged record used to stop every scavenge at that
// segment, for good: a bit flipped in an old segment kept every erasure after it on the
// disk, and one in the active segment of a store that erased anything kept all of them.
//
// A damaged event that a stream with a max age still shows stops that stream's expiry at
// it (the expiry reads the stream's first unexpired event for its timestamp), not the
// scavenge: it used to stop every scavenge before any segment, for good.
func TestScavengeGoesPastADamagedSegment(t *testing.T) {
	const damage, secret = "BITROT-IN-THIS-RECORD", "ERASED-SECRET"
	pad := pmd.EventData{Type: "P", Data: map[string]any{"p": strings.Repeat("x", 500)}}
	bitrot := pmd.EventData{Type: "T", Data: map[string]any{"s": damage}}
	// agedPad is an event of stream "aged" (when the case has it) beside the damaged one.
	agedPad := pmd.EventData{Type: "A", Data: map[string]any{"a": strings.Repeat("y", 300)}}
	pads := func(n int) []pmd.EventData {
		out := make([]pmd.EventData, n)
		for i := range out {
			out[i] = pad
		}
		return out
	}
	for _, tc := range []struct {
		name string
		// before and after user-1's event, which the test erases: it lands in an
		// undamaged sealed segment.
		before, after []pmd.EventData
		// aged: the damaged event (and agedPad's) is in stream "aged", with a max age of
		// maxAge (an hour if 0), so the expiry reads it; else it is in "other", with no
		// retention.
		aged   bool
		maxAge time.Duration
	}{
		{"in a sealed segment", append([]pmd.EventData{bitrot}, pads(10)...), pads(10), false, 0},
		{"in the active segment", nil, append(pads(10), bitrot, pad), false, 0},
		{"first unexpired event of a stream with a max age", append([]pmd.EventData{bitrot}, pads(10)...), pads(10), true, 0},
		// Every event of "aged" is past its max age: the expiry hides the two before the
		// damaged one (versions 0 and 1), and stops at it (version 2): it and the events
		// after it (3 and 4) stay until a repair.
		{"damaged event after expired ones", append([]pmd.EventData{agedPad, agedPad, bitrot, agedPad, agedPad}, pads(10)...), pads(10), true, time.Nanosecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			opts := pmd.Options{Logger: quietLogger(), NoScrub: true, SegmentSize: 4096}
			s, err := pmd.Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			appendTo := func(e pmd.EventData) {
				stream := "other"
				if tc.aged && (e.Type == bitrot.Type || e.Type == agedPad.Type) {
					stream = "aged"
				}
				mustAppend(t, s, stream, pmd.Any, e)
			}
			for _, e := range tc.before {
				appendTo(e)
			}
			mustAppend(t, s, "user-1", pmd.Any, pmd.EventData{Type: "T", Data: map[string]any{"s": secret}})
			for _, e := range tc.after {
				appendTo(e)
			}
			if tc.aged {
				maxAge := tc.maxAge
				if maxAge == 0 {
					maxAge = time.Hour
				}
				if err := s.SetRetention(ctx, "aged", pmd.Retention{MaxAge: maxAge}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			holding := filesHolding(t, dir, []byte(secret))
			damaged := damagetest.FlipIn(t, dir, damage)
			segs := damagetest.Segments(t, dir)
			if len(holding) != 1 || holding[0] == damaged || holding[0] == segs[len(segs)-1] ||
				(damaged == segs[len(segs)-1]) != (tc.name == "in the active segment") {
				t.Fatalf("secret in %v, damage in %s, segments %v: the test no longer sets up what it checks", holding, damaged, segs)
			}
			if s, err = pmd.Open(dir, opts); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.EraseStream(ctx, "user-1"); err != nil {
				t.Fatal(err)
			}
			res, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1})
			if !errors.Is(err, pmd.ErrCorrupt) {
				t.Errorf("Scavenge = %+v, %v; want the damaged segment reported as ErrCorrupt", res, err)
			}
			if tc.aged && (err == nil || !strings.Contains(err.Error(), `stream "aged"`)) {
				t.Errorf("Scavenge = %v; want the stalled expiry of stream \"aged\" reported too", err)
			}
			if res.Erased != 1 {
				t.Errorf("Scavenge erased %d events, want user-1's one, in an undamaged segment", res.Erased)
			}
			if tc.maxAge > 0 {
				// The expiry stops at the damaged event, not before the first one.
				if res.Expired != 1 {
					t.Errorf("Scavenge expired %d streams, want 1 (\"aged\", up to its damaged event)", res.Expired)
				}
				// No event is past an hour: what the read hides now is what the expiry
				// recorded.
				if err := s.SetRetention(ctx, "aged", pmd.Retention{MaxAge: time.Hour}); err != nil {
					t.Fatal(err)
				}
				for e, err := range s.ReadStream(ctx, "aged", pmd.ReadOptions{Limit: 1}) {
					var ce *pmd.CorruptError
					if !errors.As(err, &ce) || ce.Version != 2 {
						t.Errorf("aged's first read = version %d, %v; want versions 0 and 1 expired, the damaged 2 kept", e.Version, err)
					}
				}
				var got []uint64
				for e, err := range s.ReadStream(ctx, "aged", pmd.ReadOptions{From: 3}) {
					if err != nil {
						t.Fatalf("read aged from 3: %v", err)
					}
					if e.Type != agedPad.Type || e.Data["a"] != agedPad.Data["a"] {
						t.Errorf("aged version %d = %s %v, want it unchanged", e.Version, e.Type, e.Data)
					}
					got = append(got, e.Version)
				}
				if !slices.Equal(got, []uint64{3, 4}) {
					t.Errorf("aged from 3 reads versions %v, want [3 4]", got)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if found := filesHolding(t, dir, []byte(secret)); len(found) > 0 {
				t.Errorf("the erased data is still in %v after the scavenge", found)
			}
		})
	}
}
