package peers

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// PMD is pmd itself through its Go API, opened with the zero Options except
// NoSync: every acknowledged Append and Link has been fsynced, and concurrent
// writers share fsyncs (group commit).
func PMD() Peer {
	return Peer{
		Name:       "pmd",
		Version:    "this tree",
		Durability: "Go API, default Options (fsync before every ack; concurrent writes share one fsync)",
		Open: func(_ context.Context, dir string, opts OpenOptions) (Store, error) {
			s, err := pmd.Open(dir, pmd.Options{NoSync: opts.NoSync})
			if err != nil {
				return nil, err
			}
			return &pmdStore{s: s, dir: dir}, nil
		},
	}
}

type pmdStore struct {
	s   *pmd.Store
	dir string
}

func pmdExpected(v int64) pmd.ExpectedVersion {
	if v == NoStream {
		return pmd.NoStream
	}
	return pmd.AtVersion(uint64(v))
}

// pmdErr maps pmd's errors onto the ones the workloads check.
func pmdErr(err error) error {
	switch {
	case errors.Is(err, pmd.ErrWrongExpectedVersion):
		return fmt.Errorf("%w: %w", ErrConflict, err)
	case errors.Is(err, pmd.ErrEventNotFound):
		return fmt.Errorf("%w: %w", ErrUnknownEvent, err)
	}
	return err
}

func (p *pmdStore) Append(ctx context.Context, stream string, expected int64, e Event) error {
	_, err := p.s.Append(ctx, stream, pmdExpected(expected), pmd.EventData{ID: e.ID, Type: e.Type, Data: e.Data})
	return pmdErr(err)
}

func (p *pmdStore) Link(ctx context.Context, stream string, expected int64, id uuid.UUID) error {
	_, err := p.s.Link(ctx, stream, pmdExpected(expected), id)
	return pmdErr(err)
}

func (p *pmdStore) ReadStream(ctx context.Context, stream string) ([]Event, error) {
	var out []Event
	for e, err := range p.s.ReadStream(ctx, stream, pmd.ReadOptions{}) {
		if errors.Is(err, pmd.ErrStreamNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, Event{ID: e.ID, Type: e.Type, Data: e.Data})
	}
	return out, nil
}

func (p *pmdStore) ScanAll(ctx context.Context, fn func(Event) error) error {
	for e, err := range p.s.ReadAll(ctx, pmd.ReadOptions{}) {
		if err != nil {
			return err
		}
		if err := fn(Event{ID: e.ID, Type: e.Type, Data: e.Data}); err != nil {
			return err
		}
	}
	return nil
}

func (p *pmdStore) DiskBytes(context.Context) (int64, error) { return dirSize(p.dir) }

func (p *pmdStore) Close() error { return p.s.Close() }
