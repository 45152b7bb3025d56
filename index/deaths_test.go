package index

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// A replay of the log indexes many records in one batch, where the writer indexed them a
// write at a time: which events are dead must not depend on where the batches end, even
// for a link to an event that died before the link was indexed (planned while the
// deletion that killed it was in flight), which shows the event again. The indexes built
// one record per batch, all in one batch and in random batches hold the same entries, and
// their dead events are the model's.
func TestDeathsDoNotDependOnBatches(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			m := newModel()
			names := []string{"each", "one", "random"}
			xs := make([]*Index, len(names))
			bs := make([]*Batch, len(names))
			for i := range xs {
				xs[i] = openTest(t, t.TempDir())
				bs[i] = xs[i].NewBatch()
				bs[i].Origin = func(pos uint64) (string, uint64, error) {
					e := m.event(pos)
					return e.stream, e.version, nil
				}
			}
			stream := func() string { return fmt.Sprintf("S$%d", rng.IntN(8)) }
			revived := 0
			for pos := uint64(1); pos <= 600; pos++ {
				var write func(b *Batch) error
				switch r := rng.IntN(100); {
				case r < 45 || len(m.events) == 0:
					id, s := testID(pos), stream()
					m.addEvent(pos, id, s, "T")
					write = func(b *Batch) error { _, err := b.AddEvent(pos, id, s, "T"); return err }
				case r < 78:
					// Any event, dead ones too.
					e, s := m.events[rng.IntN(len(m.events))], stream()
					if m.dead(e) && m.stream(s).lo() <= uint64(len(m.stream(s).all)) {
						revived++
					}
					m.addLink(pos, s, e.pos)
					write = func(b *Batch) error { _, err := b.AddLink(pos, s, e.pos); return err }
				case r < 82:
					s := stream()
					m.deleteStream(pos, s)
					write = func(b *Batch) error { return b.DeleteStream(pos, s) }
				default:
					s := stream()
					next := uint64(len(m.stream(s).all))
					ret := Retention{MaxCount: uint64(rng.IntN(3) * 4)}
					expired := uint64(0)
					if rng.IntN(2) == 0 {
						expired = uint64(rng.IntN(int(next) + 1))
					}
					m.setRetention(pos, s, ret, expired)
					write = func(b *Batch) error { return b.SetRetention(pos, s, ret, expired) }
				}
				for i, b := range bs {
					if err := write(b); err != nil {
						t.Fatalf("%s: record at %d: %v", names[i], pos, err)
					}
					apply := names[i] == "each" || names[i] == "random" && rng.IntN(5) == 0 || pos == 600
					if apply {
						if err := xs[i].Apply(b); err != nil {
							t.Fatalf("%s: apply at %d: %v", names[i], pos, err)
						}
					}
				}
			}
			if revived == 0 {
				t.Fatal("no link to a dead event: the test tests too little")
			}
			for i := 1; i < len(xs); i++ {
				if err := xs[0].Diff(xs[i]); err != nil {
					t.Errorf("index built %s record per batch / %s: %v", names[0], names[i], err)
				}
			}
			dead := 0
			for _, e := range m.events {
				if m.dead(e) {
					dead++
				}
			}
			t.Logf("%d of %d events dead, %d links to dead events that show them again", dead, len(m.events), revived)
			for i, x := range xs {
				for _, e := range m.events {
					if got, want := must(x.Dead(e.pos)), m.dead(e); got != want {
						t.Errorf("%s: Dead(%d) = %v, want %v", names[i], e.pos, got, want)
					}
				}
			}
		})
	}
}
