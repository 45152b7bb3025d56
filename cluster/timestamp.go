package cluster

import (
	"fmt"

	"github.com/pmd-dev/pmd"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// lastEventTime is the timestamp of the last intact event record of store's log (0 if
// it holds none), read back from the end in windows: the greatest the store holds,
// since timestamps grow in log order. A node starts its greatest applied timestamp
// (fsm.lastTS) there: Raft does not apply again, after a restart, the entries the
// store holds, and a leader whose clock is behind the one that wrote them would
// otherwise give its writes earlier timestamps than theirs.
func lastEventTime(store *pmd.Store) (int64, error) {
	const window = 64
	for hi := store.LastPosition(); hi > 0; {
		lo := uint64(1)
		if hi > window {
			lo = hi - window + 1
		}
		var ts int64
		err := scanIntact(store, lo, hi, func(r *pmdlog.Record) error {
			if r.Kind == pmdlog.KindEvent {
				ts = max(ts, r.Event.Timestamp)
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("cluster: read the store's last event: %w", err)
		}
		if ts != 0 {
			return ts, nil
		}
		hi = lo - 1
	}
	return 0, nil
}
