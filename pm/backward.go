package pm

import (
	"context"
	"errors"
	"iter"

	"github.com/pmd-dev/pmd"
)

// backward reads stream from its end backward, as ReadStream does, but goes on past a
// damaged record: it yields the *pmd.CorruptError, then the records below it, for the
// caller to pass over (continue) or stop at (break). A stream that does not exist yields
// nothing. The runtime's own streams are read back so, so that one bad record in them
// does not stop a start until a repair.
func backward(ctx context.Context, store *pmd.Store, stream string) iter.Seq2[pmd.Event, error] {
	return func(yield func(pmd.Event, error) bool) {
		from := pmd.End
		for {
			var damaged *pmd.CorruptError
			for e, err := range store.ReadStream(ctx, stream, pmd.ReadOptions{From: from, Backward: true}) {
				if errors.Is(err, pmd.ErrStreamNotFound) {
					return
				}
				if errors.As(err, &damaged) {
					break
				}
				if !yield(e, err) || err != nil {
					return
				}
			}
			if damaged == nil || !yield(pmd.Event{}, damaged) || damaged.Version == 0 {
				return
			}
			from = damaged.Version - 1
		}
	}
}
