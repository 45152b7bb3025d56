package pmd

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Kept names streams whose every record an owner relies on, so that retention settings
// must not hide any of them (Store.Keep). A process manager keeps its process streams,
// deliveries, removal markers and checkpoint stream so (pm.New).
type Kept struct {
	// Owner names who relies on the streams, as refusals name it: "process manager
	// Shipping".
	Owner string
	// Why says what hiding a record would do, and what to do instead; refusals quote it.
	Why string
	// Streams are kept by their whole names.
	Streams []string
	// Categories keep every stream "<category>$<anything>" of theirs.
	Categories []string
}

// ErrKeptWhole is matched by the error of SetRetention and SetRetentionIf for settings
// that would hide records of a stream an owner keeps whole (Store.Keep); the error is a
// *KeptWholeError naming the stream and its owner. It matches ErrInvalidArgument too.
var ErrKeptWhole = errors.New("stream kept whole")

// KeptWholeError is the refusal of retention settings for a stream an owner keeps
// whole: nothing was set.
type KeptWholeError struct {
	Stream string
	Owner  string // Kept.Owner
	Why    string // Kept.Why
}

func (e *KeptWholeError) Error() string {
	msg := fmt.Sprintf("stream %q is kept whole by %s: retention must not hide any of its records", e.Stream, e.Owner)
	if e.Why != "" {
		msg += ": " + e.Why
	}
	return msg
}

// Is makes errors.Is(err, ErrKeptWhole) and errors.Is(err, ErrInvalidArgument) hold.
func (e *KeptWholeError) Is(target error) bool {
	return target == ErrKeptWhole || target == ErrInvalidArgument
}

// kept is a Store's Keep registrations.
type kept struct {
	mu   sync.RWMutex
	list []Kept
}

// Keep has the store refuse, from now until it is closed, retention settings that would
// hide records of the streams k names: SetRetention and SetRetentionIf fail on them with
// a *KeptWholeError naming k's owner (ErrKeptWhole, ErrInvalidArgument), whoever calls
// them (a Go program, or the HTTP API's PUT /v1/streams/{stream}/metadata). Settings
// that hide nothing (Retention{}) are taken: they clear what was set before the stream
// was kept, which stays in force until then. Keep is not recorded in the data
// directory: its owner keeps its streams again each time the store is opened, before
// it relies on them (pm.New does). Deleting and erasing a kept stream stay possible:
// they are whole-stream operator actions, not settings left on the stream. The first
// owner to keep a stream is the one refusals name. Keep fails with ErrInvalidArgument
// for an empty Owner or a name that is not a writable stream name.
func (s *Store) Keep(k Kept) error {
	if k.Owner == "" {
		return invalid("owner", "must not be empty")
	}
	for _, name := range k.Streams {
		if err := checkWritable(name); err != nil {
			return err
		}
	}
	for _, c := range k.Categories {
		if err := checkWritable(c + "$"); err != nil {
			return err
		}
	}
	k.Streams = append([]string(nil), k.Streams...)
	k.Categories = append([]string(nil), k.Categories...)
	s.kept.mu.Lock()
	defer s.kept.mu.Unlock()
	for _, had := range s.kept.list {
		if had.Owner == k.Owner && had.Why == k.Why && slices.Equal(had.Streams, k.Streams) && slices.Equal(had.Categories, k.Categories) {
			return nil // kept again (a manager made again): once is enough
		}
	}
	s.kept.list = append(s.kept.list, k)
	return nil
}

// keptBy returns the registration that keeps stream whole, if any.
func (s *Store) keptBy(stream string) (Kept, bool) {
	category, _, hasCategory := strings.Cut(stream, "$")
	s.kept.mu.RLock()
	defer s.kept.mu.RUnlock()
	for _, k := range s.kept.list {
		for _, name := range k.Streams {
			if name == stream {
				return k, true
			}
		}
		if !hasCategory {
			continue
		}
		for _, c := range k.Categories {
			if c == category {
				return k, true
			}
		}
	}
	return Kept{}, false
}

// checkKept refuses settings r for stream when an owner keeps stream whole and r hides
// anything.
func (s *Store) checkKept(stream string, r Retention) error {
	if r == (Retention{}) {
		return nil
	}
	if k, ok := s.keptBy(stream); ok {
		return &KeptWholeError{Stream: stream, Owner: k.Owner, Why: k.Why}
	}
	return nil
}
