package pm_test

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// Whether the msgpack coder of coderState panics.
var coderEncodePanics, coderDecodePanics atomic.Bool

// coderState is a state with its own msgpack coder, which panics when told to.
type coderState struct{ N int }

func (s coderState) EncodeMsgpack(enc *msgpack.Encoder) error {
	if coderEncodePanics.Load() {
		panic("EncodeMsgpack bug")
	}
	return enc.EncodeInt(int64(s.N))
}

func (s *coderState) DecodeMsgpack(dec *msgpack.Decoder) error {
	if coderDecodePanics.Load() {
		panic("DecodeMsgpack bug")
	}
	n, err := dec.DecodeInt()
	s.N = n
	return err
}

// coderDef issues the command Ack with the key k<n> at the n-th event of its process.
func coderDef() pm.Definition[coderState] {
	return pm.Definition[coderState]{
		Name:      "Coded",
		Handles:   []string{"Go"},
		ProcessID: pm.DataField("id"),
		Init:      func(string) coderState { return coderState{} },
		Apply: func(s coderState, e pmd.Event) coderState {
			if e.Link {
				s.N++
			}
			return s
		},
		Decide: func(s coderState) []pm.Command {
			var out []pm.Command
			for i := 1; i <= s.N; i++ {
				out = append(out, pm.Command{Type: "Ack", Key: "k" + string(rune('0'+i))})
			}
			return out
		},
	}
}

// TestAPanickingStateCoderOnlyCostsSnapshots: a state whose own msgpack coder panics
// (EncodeMsgpack, DecodeMsgpack) gets no snapshots, as one that does not encode: an
// encoding panic turns snapshots off (logged), a snapshot whose decoding panics is
// passed over for the stream, in Run and in the views. Either panic ended the program,
// and again at every start.
func TestAPanickingStateCoderOnlyCostsSnapshots(t *testing.T) {
	t.Cleanup(func() { coderEncodePanics.Store(false); coderDecodePanics.Store(false) })
	ctx := context.Background()
	keys := func(r *running, id string) []string {
		t.Helper()
		v, err := r.Process(ctx, id)
		if err != nil {
			t.Fatalf("Process(%s): %v", id, err)
		}
		var out []string
		for _, c := range v.Commands {
			out = append(out, c.Key)
		}
		return out
	}

	t.Run("encode", func(t *testing.T) {
		coderEncodePanics.Store(true)
		defer coderEncodePanics.Store(false)
		s := openStore(t, t.TempDir())
		var logs lockedLog
		r := start(t, s, coderDef(), pm.Options{SnapshotEvery: 1, Logger: logs.logger()})
		appendFact(t, s, goFact("1"))
		appendFact(t, s, goFact("1"))
		r.idle(t)
		if got := keys(r, "1"); !slices.Equal(got, []string{"k1", "k2"}) {
			t.Errorf("process 1 issued %v, want [k1 k2]", got)
		}
		if n := len(processStream(t, s, "Coded.snapshots$1")); n != 0 {
			t.Errorf("%d snapshots written, want none", n)
		}
		if lines := logs.lines("no snapshots"); len(lines) != 1 || !strings.Contains(lines[0], "EncodeMsgpack bug") {
			t.Errorf("log lines about snapshots:\n%s\nwant one, saying why", strings.Join(lines, "\n"))
		}
	})

	t.Run("decode", func(t *testing.T) {
		s := openStore(t, t.TempDir())
		opts := pm.Options{SnapshotEvery: 1, CacheSize: -1, Clock: pmtest.NewClock(time.Now())}
		r := start(t, s, coderDef(), opts)
		appendFact(t, s, goFact("1"))
		r.idle(t)
		r.stop(t)
		if n := len(processStream(t, s, "Coded.snapshots$1")); n == 0 {
			t.Fatal("no snapshot written")
		}

		coderDecodePanics.Store(true)
		defer coderDecodePanics.Store(false)
		r = start(t, s, coderDef(), opts)
		appendFact(t, s, goFact("1"))
		r.idle(t)
		if got := keys(r, "1"); !slices.Equal(got, []string{"k1", "k2"}) {
			t.Errorf("process 1 issued %v, want [k1 k2]", got)
		}
		v, err := r.ProcessPage(ctx, "1", -1, 10)
		if err != nil || v.State != (coderState{N: 2}) {
			t.Errorf("ProcessPage: state %+v, %v; want the state folded from the stream", v.State, err)
		}
	})
}
