package pmd

import "context"

// Contains reports whether the event at log position position is in stream now,
// written there or linked, and not deleted with the stream nor below its retention's
// TruncateBefore or MaxCount: whether a Link of it into stream is a duplicate. An event
// the stream's MaxAge hides from its reads is still in it until the next scavenge
// expires it (ReadStream and EventStreams leave it out at once). It is one
// index lookup whatever the stream's length: a process manager asks it of every event
// it handles ("linked already?"), and replaying a long process stream to answer would
// make each event cost as much as the whole stream.
func (s *Store) Contains(stream string, position uint64) (bool, error) {
	if err := checkName("stream", stream); err != nil {
		return false, err
	}
	if err := s.visible(context.Background()); err != nil {
		return false, err
	}
	in, err := s.idx.Contains(stream, position)
	if err != nil {
		return false, s.storeErr(err)
	}
	return in, nil
}
