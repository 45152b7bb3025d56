package peers

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime/debug"

	"github.com/google/uuid"
)

// NoStream, as an expected version, requires the stream to have no event yet.
const NoStream int64 = -1

// Errors every Store reports the same way, so the workloads can check them.
var (
	// ErrConflict: the stream is not at the expected version; nothing was written.
	ErrConflict = errors.New("wrong expected version")
	// ErrUnknownEvent: a link names an event id the store does not hold.
	ErrUnknownEvent = errors.New("event not found")
)

// Event is one event as the workloads write and read it. Data is what an
// application hands its store; each store encodes it its own way (JSON for the
// peers, msgpack for pmd) and decodes it again on every read, as an application
// folding state from it would.
type Event struct {
	ID   uuid.UUID
	Type string
	Data map[string]any
}

// Store is what the workloads need from an event store. Writes take one event or
// one id because that is what the workloads do, and because NATS JetStream, one of
// the peers, has no atomic multi-message publish.
type Store interface {
	// Append writes e at the end of stream, which must be at version expected
	// (its last event's version, or NoStream). If the stream has moved past
	// expected, Append returns an error matching ErrConflict and writes nothing,
	// so of concurrent writers at one expected version exactly one wins. (An
	// expected version ahead of the stream is not checked by every store:
	// RailsEventStore, for one, writes at expected+1 and leaves a gap.)
	Append(ctx context.Context, stream string, expected int64, e Event) error
	// Link adds the stored event id at the end of stream, under the same
	// expected-version rule as Append. An unknown id returns an error matching
	// ErrUnknownEvent.
	Link(ctx context.Context, stream string, expected int64, id uuid.UUID) error
	// ReadStream returns the events of stream, written and linked, in version order.
	// A stream with no event returns none and no error.
	ReadStream(ctx context.Context, stream string) ([]Event, error)
	// ScanAll calls fn with every event appended to the store (never a link), in
	// write order, and stops at fn's first error.
	ScanAll(ctx context.Context, fn func(Event) error) error
	// DiskBytes is the space the store's data takes on disk now.
	DiskBytes(ctx context.Context) (int64, error)
	Close() error
}

// OpenOptions says how a Peer opens its store.
type OpenOptions struct {
	// NoSync opens the store with syncing off. Only the untimed bulk load of the
	// replay log uses it; the store is then closed and reopened durable.
	NoSync bool
}

// Peer is one store under test.
type Peer struct {
	Name string
	// Version is the version of the store's code that is measured.
	Version string
	// Durability says, in one line, how the store is set up so that an acknowledged
	// write is on disk.
	Durability string
	// Open opens the store kept in dir, creating it when dir is empty. Opening
	// the same dir again after Close finds the same data.
	Open func(ctx context.Context, dir string, opts OpenOptions) (Store, error)
	// Close releases what the peer holds beyond its stores (a server process);
	// nil when there is nothing.
	Close func() error
}

// moduleVersion is the version of module path this binary was built with.
func moduleVersion(path string) string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path == path {
				return d.Version
			}
		}
	}
	return "unknown"
}

// dirSize adds up the sizes of the regular files under dir.
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n += info.Size()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("peers: size of %s: %w", dir, err)
	}
	return n, nil
}
