package pmd

import (
	"context"
	"errors"
	"fmt"

	pmdlog "github.com/pmd-dev/pmd/log"
)

// LastEventTime returns the timestamp of the last intact event record in the log, 0 if
// it holds none: the greatest the store holds, since timestamps grow in log order. Open
// starts the store's clock floor there, so that a process restarted with its clock
// behind the one that wrote the log still gives new events later timestamps; a cluster
// node does the same for the timestamps its leader assigns.
func (s *Store) LastEventTime() (int64, error) {
	const window = 64 // records read back at a time: the last event is nearly always in the first
	for hi := s.log.LastPosition(); hi > 0; {
		lo := uint64(1)
		if hi > window {
			lo = hi - window + 1
		}
		var ts int64
		for from := lo; from <= hi; {
			err := s.ScanRecords(context.Background(), from, hi, func(r *pmdlog.Record) error {
				from = r.Position + 1
				if r.Kind == pmdlog.KindEvent {
					ts = max(ts, r.Event.Timestamp)
				}
				return nil
			})
			var ce *pmdlog.CorruptError
			if !errors.As(err, &ce) {
				if err != nil {
					return 0, fmt.Errorf("pmd: read the log's last event: %w", err)
				}
				break
			}
			// A damaged record is passed over: the damage is the record after the
			// last one read unless the error says where it is.
			from = max(from+1, ce.Position+1, ce.End)
		}
		if ts != 0 {
			return ts, nil
		}
		hi = lo - 1
	}
	return 0, nil
}
