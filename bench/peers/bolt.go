package peers

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
)

// Bolt is bbolt with the layout a Go developer would write first:
//
//	events   seq (8 bytes, big endian) → event record (see encodeBoltEvent)
//	ids      event id (16 bytes)       → seq
//	streams  stream, 0x00, version (8 bytes, big endian) → seq
//	heads    stream                     → last version (8 bytes, big endian)
//
// seq comes from the events bucket's NextSequence, so the events bucket is the
// global log in write order. Every write is one Update transaction, which bbolt
// commits with fdatasync unless NoSync is set (bbolt's default is NoSync false).
// Concurrent Updates are serialised by bbolt: there is no group commit.
func Bolt() Peer {
	return Peer{
		Name:       "bbolt",
		Version:    "bbolt " + moduleVersion("go.etcd.io/bbolt"),
		Durability: "one Update transaction per write, NoSync false (fdatasync on every commit)",
		Open: func(_ context.Context, dir string, opts OpenOptions) (Store, error) {
			return openBolt(dir, opts)
		},
	}
}

var (
	boltEvents  = []byte("events")
	boltIDs     = []byte("ids")
	boltStreams = []byte("streams")
	boltHeads   = []byte("heads")
)

type boltStore struct {
	db   *bolt.DB
	path string
}

func openBolt(dir string, opts OpenOptions) (*boltStore, error) {
	path := filepath.Join(dir, "events.bolt")
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: opts.NoSync})
	if err != nil {
		return nil, fmt.Errorf("bbolt: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{boltEvents, boltIDs, boltStreams, boltHeads} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("bbolt: create buckets in %s: %w", path, err)
	}
	return &boltStore{db: db, path: path}, nil
}

func (b *boltStore) Close() error { return b.db.Close() }

func (b *boltStore) DiskBytes(context.Context) (int64, error) { return dirSize(filepath.Dir(b.path)) }

func streamKey(stream string, version uint64) []byte {
	k := make([]byte, 0, len(stream)+9)
	k = append(k, stream...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, version)
}

// next checks expected against the stream's head and returns the version the next
// event takes.
func boltNext(tx *bolt.Tx, stream string, expected int64) (uint64, error) {
	actual := NoStream
	if v := tx.Bucket(boltHeads).Get([]byte(stream)); v != nil {
		actual = int64(binary.BigEndian.Uint64(v))
	}
	if actual != expected {
		return 0, fmt.Errorf("bbolt: stream %q at version %d, expected %d: %w", stream, actual, expected, ErrConflict)
	}
	return uint64(expected + 1), nil
}

func boltPut(tx *bolt.Tx, stream string, version, seq uint64) error {
	if err := tx.Bucket(boltStreams).Put(streamKey(stream, version), binary.BigEndian.AppendUint64(nil, seq)); err != nil {
		return err
	}
	return tx.Bucket(boltHeads).Put([]byte(stream), binary.BigEndian.AppendUint64(nil, version))
}

func (b *boltStore) Append(_ context.Context, stream string, expected int64, e Event) error {
	rec, err := encodeBoltEvent(e)
	if err != nil {
		return err
	}
	return b.db.Update(func(tx *bolt.Tx) error {
		version, err := boltNext(tx, stream, expected)
		if err != nil {
			return err
		}
		ids := tx.Bucket(boltIDs)
		if ids.Get(e.ID[:]) != nil {
			return fmt.Errorf("bbolt: event %s already stored", e.ID)
		}
		events := tx.Bucket(boltEvents)
		seq, err := events.NextSequence()
		if err != nil {
			return err
		}
		key := binary.BigEndian.AppendUint64(nil, seq)
		if err := events.Put(key, rec); err != nil {
			return err
		}
		if err := ids.Put(e.ID[:], key); err != nil {
			return err
		}
		return boltPut(tx, stream, version, seq)
	})
}

func (b *boltStore) Link(_ context.Context, stream string, expected int64, id uuid.UUID) error {
	return b.db.Update(func(tx *bolt.Tx) error {
		version, err := boltNext(tx, stream, expected)
		if err != nil {
			return err
		}
		seq := tx.Bucket(boltIDs).Get(id[:])
		if seq == nil {
			return fmt.Errorf("bbolt: link %s into %q: %w", id, stream, ErrUnknownEvent)
		}
		return boltPut(tx, stream, version, binary.BigEndian.Uint64(seq))
	})
}

func (b *boltStore) ReadStream(_ context.Context, stream string) ([]Event, error) {
	var out []Event
	err := b.db.View(func(tx *bolt.Tx) error {
		events := tx.Bucket(boltEvents)
		prefix := append([]byte(stream), 0)
		c := tx.Bucket(boltStreams).Cursor()
		for k, seq := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, seq = c.Next() {
			rec := events.Get(seq)
			if rec == nil {
				return fmt.Errorf("bbolt: stream %q points at missing event %x", stream, seq)
			}
			e, err := decodeBoltEvent(rec)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

func (b *boltStore) ScanAll(ctx context.Context, fn func(Event) error) error {
	return b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(boltEvents).Cursor()
		for k, rec := c.First(); k != nil; k, rec = c.Next() {
			e, err := decodeBoltEvent(rec)
			if err != nil {
				return err
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		return ctx.Err()
	})
}

// errBoltRecord is wrapped by every error decodeBoltEvent returns.
var errBoltRecord = errors.New("bbolt: malformed event record")

// encodeBoltEvent lays an event out as
//
//	id        16 bytes
//	type len  1 byte (types are 1–255 bytes here)
//	type      type len bytes
//	data      the rest: the JSON encoding of Data
func encodeBoltEvent(e Event) ([]byte, error) {
	if len(e.Type) == 0 || len(e.Type) > 255 {
		return nil, fmt.Errorf("bbolt: event %s: type must be 1–255 bytes, got %d", e.ID, len(e.Type))
	}
	data, err := json.Marshal(e.Data)
	if err != nil {
		return nil, fmt.Errorf("bbolt: event %s: encode data: %w", e.ID, err)
	}
	rec := make([]byte, 0, 17+len(e.Type)+len(data))
	rec = append(rec, e.ID[:]...)
	rec = append(rec, byte(len(e.Type)))
	rec = append(rec, e.Type...)
	return append(rec, data...), nil
}

func decodeBoltEvent(rec []byte) (Event, error) {
	if len(rec) < 17 {
		return Event{}, fmt.Errorf("%w: %d bytes, shorter than its 17-byte header", errBoltRecord, len(rec))
	}
	var e Event
	copy(e.ID[:], rec)
	n := int(rec[16])
	if n == 0 || len(rec) < 17+n {
		return Event{}, fmt.Errorf("%w: event %s: type length %d, %d bytes left", errBoltRecord, e.ID, n, len(rec)-17)
	}
	e.Type = string(rec[17 : 17+n])
	if err := json.Unmarshal(rec[17+n:], &e.Data); err != nil {
		return Event{}, fmt.Errorf("%w: event %s: data: %v", errBoltRecord, e.ID, err)
	}
	return e, nil
}
