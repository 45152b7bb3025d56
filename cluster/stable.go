package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"slices"
	"sync"

	"github.com/pmd-dev/pmd/internal/engine"
)

// stableStore is Raft's stable store (raft.StableStore): the few values Raft must not
// forget (its current term, its vote), in one small file, DIR/raft/stable, encoded as
// FORMAT.md describes. Raft sets them at elections only, so each Set rewrites the file:
// a temporary file written and fsynced, renamed over the old one, the directory fsynced.
// A crash leaves the old file or the new one, never a mix.
type stableStore struct {
	path   string
	noSync bool

	mu   sync.Mutex
	vals map[string][]byte
}

const stableVersion = 1

// ErrStableCorrupt: the stable store's file does not decode. It is written whole or not
// at all, so this is damage, not a crash.
var ErrStableCorrupt = errors.New("cluster: the Raft stable store is damaged")

// errNotFound is the error Raft expects of a StableStore for a key it never set: it
// compares the message.
var errNotFound = errors.New("not found")

func openStableStore(path string, noSync bool) (*stableStore, error) {
	s := &stableStore{path: path, noSync: noSync, vals: map[string][]byte{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: open the Raft stable store: %w", err)
	}
	if s.vals, err = decodeStable(b); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrStableCorrupt, path, err)
	}
	return s, nil
}

// Set saves val under key.
func (s *stableStore) Set(key, val []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	vals := make(map[string][]byte, len(s.vals)+1)
	for k, v := range s.vals {
		vals[k] = v
	}
	vals[string(key)] = slices.Clone(val)
	if err := s.save(vals); err != nil {
		return err
	}
	s.vals = vals
	return nil
}

// Get returns the value of key; errNotFound if it was never set.
func (s *stableStore) Get(key []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vals[string(key)]
	if !ok {
		return nil, errNotFound
	}
	return slices.Clone(v), nil
}

// SetUint64 saves val under key, 8 bytes big-endian.
func (s *stableStore) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 returns the value of key; 0 and errNotFound if it was never set.
func (s *stableStore) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: %q holds %d bytes, not a uint64", ErrStableCorrupt, key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// save writes vals to the file, crash-safely.
func (s *stableStore) save(vals map[string][]byte) error {
	if err := engine.ReplaceFile(s.path, encodeStable(vals), !s.noSync); err != nil {
		return fmt.Errorf("cluster: save the Raft stable store: %w", err)
	}
	return nil
}

// encodeStable encodes vals: version byte, CRC-32C of the rest, the count of pairs, and
// each pair's key and value with their lengths, keys in order.
func encodeStable(vals map[string][]byte) []byte {
	b := []byte{stableVersion, 0, 0, 0, 0}
	b = binary.AppendUvarint(b, uint64(len(vals)))
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(vals[k])))
		b = append(b, vals[k]...)
	}
	binary.LittleEndian.PutUint32(b[1:], crc32.Checksum(b[5:], castagnoli))
	return b
}

func decodeStable(b []byte) (map[string][]byte, error) {
	if len(b) < 5 {
		return nil, fmt.Errorf("%d bytes, shorter than a header", len(b))
	}
	if b[0] != stableVersion {
		return nil, fmt.Errorf("version %d, want %d", b[0], stableVersion)
	}
	if got, want := crc32.Checksum(b[5:], castagnoli), binary.LittleEndian.Uint32(b[1:]); got != want {
		return nil, fmt.Errorf("checksum %08x, want %08x", got, want)
	}
	b = b[5:]
	next := func(what string) (uint64, error) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, fmt.Errorf("%s does not decode", what)
		}
		b = b[n:]
		return v, nil
	}
	field := func(what string) ([]byte, error) {
		n, err := next(what + " length")
		if err != nil {
			return nil, err
		}
		if n > uint64(len(b)) {
			return nil, fmt.Errorf("%s of %d bytes runs past the end", what, n)
		}
		v := b[:n:n]
		b = b[n:]
		return v, nil
	}
	count, err := next("count")
	if err != nil {
		return nil, err
	}
	if count > uint64(len(b)) {
		return nil, fmt.Errorf("%d pairs in %d bytes", count, len(b))
	}
	vals := make(map[string][]byte, count)
	for range count {
		k, err := field("key")
		if err != nil {
			return nil, err
		}
		v, err := field("value")
		if err != nil {
			return nil, err
		}
		if _, dup := vals[string(k)]; dup {
			return nil, fmt.Errorf("key %q twice", k)
		}
		vals[string(k)] = slices.Clone(v)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%d bytes after the last pair", len(b))
	}
	return vals, nil
}
