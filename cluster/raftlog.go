package cluster

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/pmd-dev/pmd/internal/engine"
	"github.com/tidwall/wal"
)

// logStore is Raft's log (raft.LogStore) on a segmented log: tidwall/wal segment files
// in DIR/raft/log/, one entry per Raft log entry, encoded as FORMAT.md describes. A batch
// of entries is one append and one fsync (plus one of the directory when it starts a
// segment): Raft's group commit costs the bytes of its entries, not the pages of a
// B+tree.
//
// tidwall/wal frames entries with a length only; the checksum of each entry is ours, and
// openLogStore cuts a torn tail before tidwall/wal opens the files (see repairTail).
// tidwall/wal is opened without syncing: the store fsyncs the tail after each batch and
// the directory after each change of the files' set, which tidwall/wal does not.
type logStore struct {
	dir     string
	noSync  bool
	segSize int64

	// mu guards w: held shared by every call, exclusively while w is replaced (reset).
	mu sync.RWMutex
	w  *wal.Log

	// wmu serialises the changes (StoreLogs, DeleteRange); it guards the fields below.
	wmu sync.Mutex
	// broken is the error of a change that failed: what tidwall/wal holds in memory
	// may no longer match the files, and a failed fsync is not retried (the kernel may
	// have dropped the pages it could not write). Every later change fails with it;
	// the node stops (fatal), and a restart opens the files afresh.
	broken error
	fatal  func(error)
	tail   int64 // bytes in the tail segment, as tidwall/wal counts them
	batch  wal.Batch
	buf    []byte
}

// logSegmentSize is the size at which a Raft log segment is sealed: tidwall/wal holds
// the tail segment in memory, in a slice that grows by copying (which stalls the append
// that grows it, about 15 ms per MiB of tail on a VM: the store's log went to 1 MiB for
// it), and Raft keeps only the entries since its last snapshot plus TrailingLogs, a few
// MiB.
const logSegmentSize = 1 << 20

// Errors of the Raft log store.
var (
	// ErrRaftLogCorrupt: the Raft log holds a damaged entry that a crash cannot explain
	// (valid entries follow it), or one whose frame breaks in a sealed segment.
	ErrRaftLogCorrupt = errors.New("cluster: the Raft log is damaged")
)

// openLogStore opens the Raft log in dir, creating it, and cuts a torn tail.
func openLogStore(dir string, noSync bool, logf func(msg string, args ...any)) (*logStore, error) {
	return openLogStoreSize(dir, noSync, logSegmentSize, logf)
}

// openLogStoreSize is openLogStore with segments of segSize bytes.
func openLogStoreSize(dir string, noSync bool, segSize int64, logf func(msg string, args ...any)) (*logStore, error) {
	s := &logStore{dir: dir, noSync: noSync, segSize: segSize}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("cluster: open the Raft log: %w", err)
	}
	if err := s.finishTruncation(); err != nil {
		return nil, err
	}
	cut, err := repairTail(dir, !noSync)
	if err != nil {
		return nil, err
	}
	if cut != "" && logf != nil {
		logf("cluster: cut the torn end of the Raft log", "reason", cut)
	}
	if err := s.reopen(); err != nil {
		return nil, err
	}
	// tidwall/wal creates the first segment of a new log: its name, and the folder's,
	// must be durable before the first entry is.
	if err := s.syncDir(); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("cluster: open the Raft log: %w", err)
	}
	if !noSync {
		if err := engine.SyncFile(filepath.Dir(filepath.Clean(dir))); err != nil {
			s.w.Close()
			return nil, fmt.Errorf("cluster: open the Raft log: %w", err)
		}
	}
	return s, nil
}

func (s *logStore) options() *wal.Options {
	return &wal.Options{NoSync: true, SegmentSize: int(s.segSize), LogFormat: wal.Binary,
		SegmentCacheSize: 2, AllowEmpty: true, DirPerms: 0o750, FilePerms: 0o640}
}

// finishTruncation lets tidwall/wal complete a truncation a crash interrupted (its
// .START and .END files, written whole and fsynced before any other file changes), so
// that the tail repairTail checks is the tail tidwall/wal will append to.
func (s *logStore) finishTruncation() error {
	names, err := listNames(s.dir)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(names, func(n string) bool {
		return strings.HasSuffix(n, ".START") || strings.HasSuffix(n, ".END")
	}) {
		return nil
	}
	// Open renames and removes before it reads the tail; a torn tail fails it after that.
	w, err := wal.Open(s.dir, s.options())
	switch {
	case err == nil:
		err = w.Close()
	case errors.Is(err, wal.ErrCorrupt):
		err = nil
	}
	if err == nil {
		err = s.syncDir()
	}
	if err != nil {
		return fmt.Errorf("cluster: finish a truncation of the Raft log: %w", err)
	}
	return nil
}

// reopen opens tidwall/wal on the files and measures the tail. Callers hold mu
// exclusively, or own s.
func (s *logStore) reopen() error {
	w, err := wal.Open(s.dir, s.options())
	if err != nil {
		return fmt.Errorf("cluster: open the Raft log in %s: %w", s.dir, err)
	}
	s.w = w
	return s.measureTail()
}

// measureTail sets tail from the size of the last segment file.
func (s *logStore) measureTail() error {
	segs, err := listSegments(s.dir)
	if err != nil {
		return err
	}
	s.tail = 0
	if len(segs) > 0 {
		fi, err := os.Stat(filepath.Join(s.dir, segs[len(segs)-1].name))
		if err != nil {
			return fmt.Errorf("cluster: the Raft log: %w", err)
		}
		s.tail = fi.Size()
	}
	return nil
}

// IsMonotonic tells Raft that the log has no gaps: after installing a snapshot, Raft
// removes every entry before writing the next (raft.MonotonicLogStore).
func (s *logStore) IsMonotonic() bool { return true }

// bounds returns the first and last index, 0 and 0 for an empty log.
func (s *logStore) bounds() (first, last uint64, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if first, err = s.w.FirstIndex(); err != nil {
		return 0, 0, fmt.Errorf("cluster: the Raft log: %w", err)
	}
	if last, err = s.w.LastIndex(); err != nil {
		return 0, 0, fmt.Errorf("cluster: the Raft log: %w", err)
	}
	if first > last {
		return 0, 0, nil // tidwall/wal says last+1, last for an empty log
	}
	return first, last, nil
}

// FirstIndex returns the index of the first entry, 0 for none.
func (s *logStore) FirstIndex() (uint64, error) {
	first, _, err := s.bounds()
	return first, err
}

// LastIndex returns the index of the last entry, 0 for none.
func (s *logStore) LastIndex() (uint64, error) {
	_, last, err := s.bounds()
	return last, err
}

// GetLog reads the entry at index into l: raft.ErrLogNotFound if the log lacks it.
func (s *logStore) GetLog(index uint64, l *raft.Log) error {
	s.mu.RLock()
	b, err := s.w.Read(index)
	s.mu.RUnlock()
	if errors.Is(err, wal.ErrNotFound) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return fmt.Errorf("cluster: read Raft entry %d: %w", index, err)
	}
	if err := decodeLog(b, l); err != nil {
		return fmt.Errorf("%w: entry %d: %w", ErrRaftLogCorrupt, index, err)
	}
	if l.Index != index {
		return fmt.Errorf("%w: entry %d holds entry %d", ErrRaftLogCorrupt, index, l.Index)
	}
	return nil
}

// StoreLog appends one entry.
func (s *logStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs appends logs, which follow one another, after the last entry, with one
// write and one fsync. Entries after a gap (Raft installed a snapshot past the log's
// end) replace the whole log: every entry before the gap is older than the snapshot.
func (s *logStore) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	if logs[0].Index == 0 {
		return errors.New("cluster: Raft entry 0: Raft's indexes start at 1")
	}
	for i := 1; i < len(logs); i++ {
		if logs[i].Index != logs[i-1].Index+1 {
			return fmt.Errorf("cluster: Raft entries %d and %d do not follow one another", logs[i-1].Index, logs[i].Index)
		}
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.broken != nil {
		return s.broken
	}
	s.mu.RLock()
	first := logs[0].Index
	last, err := s.w.LastIndex()
	s.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("cluster: the Raft log: %w", err)
	}
	switch {
	case first == last+1:
	case first > last+1:
		if err := s.reset(first); err != nil {
			return err
		}
	default:
		return fmt.Errorf("cluster: Raft entry %d would overwrite the log, which ends at %d", first, last)
	}

	// Mirror tidwall/wal's writeBatch to know whether it starts a segment: before the
	// batch if the tail is over the size, after every entry that brings it to the size.
	started := false
	size := s.tail
	if size > s.segSize {
		started, size = true, 0
	}
	s.batch.Clear()
	for _, l := range logs {
		s.buf = appendLog(s.buf[:0], l)
		s.batch.Write(l.Index, s.buf)
		if size += int64(uvarintLen(uint64(len(s.buf))) + len(s.buf)); size >= s.segSize {
			started, size = true, 0
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.w.WriteBatch(&s.batch); err != nil {
		return s.failed("append", err)
	}
	s.tail = size
	if s.noSync {
		return nil
	}
	if err := s.w.Sync(); err != nil {
		return s.failed("fsync", err)
	}
	if started {
		// tidwall/wal fsyncs a segment it seals but not the directory that holds the next.
		if err := s.syncDir(); err != nil {
			return s.failed("fsync the directory", err)
		}
	}
	return nil
}

// failed records the failure of a change (see broken) and returns its error. Callers
// hold wmu.
func (s *logStore) failed(op string, err error) error {
	s.broken = fmt.Errorf("cluster: %s the Raft log: %w", op, err)
	if s.fatal != nil {
		s.fatal(s.broken)
	}
	return s.broken
}

// reset empties the log so that its next entry is index: the files go, last first, and
// an empty segment named for index takes their place. Callers hold wmu.
func (s *logStore) reset(index uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.w.Close(); err != nil {
		return s.failed("reset", err)
	}
	segs, err := listSegments(s.dir)
	if err == nil {
		for i := len(segs) - 1; i >= 0 && err == nil; i-- {
			err = os.Remove(filepath.Join(s.dir, segs[i].name))
		}
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(s.dir, fmt.Sprintf("%020d", index)), nil, 0o640)
	}
	if err == nil {
		err = s.syncDir()
	}
	if err == nil {
		err = s.reopen()
	}
	if err != nil {
		return s.failed(fmt.Sprintf("reset to start at %d", index), err)
	}
	return nil
}

// DeleteRange removes the entries from min to max, inclusive: a prefix (Raft compacts
// the log after a snapshot) or a suffix (a follower drops entries that conflict with
// the leader's).
func (s *logStore) DeleteRange(lo, hi uint64) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.broken != nil {
		return s.broken
	}
	first, last, err := s.bounds()
	if err != nil {
		return err
	}
	if last == 0 || hi < first || lo > last {
		return nil
	}
	if lo > first && hi < last {
		return fmt.Errorf("cluster: delete Raft entries %d-%d: inside the log (%d-%d): only a prefix or a suffix can go", lo, hi, first, last)
	}
	s.mu.RLock()
	if lo <= first {
		// All of it leaves an empty log that remembers its last index (AllowEmpty).
		err = s.w.TruncateFront(min(hi, last) + 1)
	} else {
		err = s.w.TruncateBack(lo - 1)
	}
	s.mu.RUnlock()
	if err == nil {
		// tidwall/wal renames and removes files without syncing the directory.
		err = s.syncDir()
	}
	if err == nil {
		err = s.measureTail()
	}
	if err != nil {
		return s.failed(fmt.Sprintf("delete entries %d-%d of", lo, hi), err)
	}
	return nil
}

// Close closes the log.
func (s *logStore) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Close()
}

func (s *logStore) syncDir() error {
	if s.noSync {
		return nil
	}
	return engine.SyncFile(s.dir)
}

// segFile is a segment file of the Raft log: its name is the index of its first entry.
type segFile struct {
	name  string
	first uint64
}

// listNames lists the names in dir.
func listNames(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cluster: the Raft log: %w", err)
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, nil
}

// listSegments lists the segment files in dir, in index order.
func listSegments(dir string) ([]segFile, error) {
	names, err := listNames(dir)
	if err != nil {
		return nil, err
	}
	var segs []segFile
	for _, n := range names {
		if len(n) != 20 {
			continue
		}
		if first, err := strconv.ParseUint(n, 10, 64); err == nil && first > 0 {
			segs = append(segs, segFile{name: n, first: first})
		}
	}
	slices.SortFunc(segs, func(a, b segFile) int { return cmp.Compare(a.first, b.first) })
	return segs, nil
}

// repairTail checks the entries of the last segment in dir and cuts a torn end: from the
// first entry that is not whole, or does not decode, or is not the entry of its index,
// when nothing valid follows it. That is what a crash during an append leaves (the
// length of the last frame runs past the end of the file, or the file was extended with
// zeros, or its last pages hold other bytes); it was never fsynced, so Raft never
// counted it. A damaged entry that valid entries follow was fsynced once: cutting it
// would lose entries Raft may have counted, so repairTail fails with ErrRaftLogCorrupt
// and changes nothing. It returns what it cut, "" for nothing.
func repairTail(dir string, sync bool) (string, error) {
	segs, err := listSegments(dir)
	if err != nil || len(segs) == 0 {
		return "", err
	}
	seg := segs[len(segs)-1]
	path := filepath.Join(dir, seg.name)
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cluster: the Raft log: %w", err)
	}
	off, index := 0, seg.first
	var bad string
	for off < len(b) {
		reason := checkFrame(b[off:], index)
		if reason != "" {
			bad = reason
			break
		}
		size, n := binary.Uvarint(b[off:])
		off += n + int(size)
		index++
	}
	if bad == "" {
		return "", nil
	}
	// Is any later entry whole? Its frame may start anywhere after the bad one, whose
	// length may be what is damaged.
	for p := off + 1; p < len(b); p++ {
		if later := laterEntry(b[p:], index); later != 0 {
			return "", fmt.Errorf("%w: segment %s, offset %d, entry %d: %s, and entry %d follows whole at offset %d: it was durable, so it is not cut (remove the node's raft/ folder and rejoin it to the cluster)",
				ErrRaftLogCorrupt, path, off, index, bad, later, p)
		}
	}
	if err := os.Truncate(path, int64(off)); err != nil {
		return "", fmt.Errorf("cluster: cut the torn end of the Raft log: %w", err)
	}
	if sync {
		if err := engine.SyncFile(path); err != nil {
			return "", fmt.Errorf("cluster: cut the torn end of the Raft log: %w", err)
		}
	}
	return fmt.Sprintf("%d bytes at offset %d of segment %s, from entry %d: %s", len(b)-off, off, path, index, bad), nil
}

// laterEntry returns the index of the entry whose frame starts b if it decodes and comes
// after index, 0 if none does.
func laterEntry(b []byte, index uint64) uint64 {
	size, n := binary.Uvarint(b)
	if n <= 0 || size == 0 || uint64(len(b)-n) < size {
		return 0
	}
	var l raft.Log
	if decodeLog(b[n:n+int(size)], &l) != nil || l.Index <= index {
		return 0
	}
	return l.Index
}

// checkFrame says what is wrong with the tidwall/wal frame at the start of b, which
// should hold the Raft entry index; "" if nothing.
func checkFrame(b []byte, index uint64) string {
	size, n := binary.Uvarint(b)
	switch {
	case n <= 0:
		return "the frame's length does not decode"
	case uint64(len(b)-n) < size:
		return fmt.Sprintf("the frame's length %d runs past the end of the file", size)
	}
	var l raft.Log
	if err := decodeLog(b[n:n+int(size)], &l); err != nil {
		return err.Error()
	}
	if l.Index != index {
		return fmt.Sprintf("holds entry %d", l.Index)
	}
	return ""
}

// The encoding of a raft.Log in a segment entry (FORMAT.md): version byte, CRC-32C of
// the rest, then the fields.
const logVersion = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendLog appends the encoding of l to dst.
func appendLog(dst []byte, l *raft.Log) []byte {
	start := len(dst)
	dst = append(dst, logVersion, 0, 0, 0, 0)
	dst = binary.AppendUvarint(dst, l.Index)
	dst = binary.AppendUvarint(dst, l.Term)
	dst = append(dst, byte(l.Type))
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	dst = binary.AppendVarint(dst, at)
	dst = binary.AppendUvarint(dst, uint64(len(l.Data)))
	dst = append(dst, l.Data...)
	dst = binary.AppendUvarint(dst, uint64(len(l.Extensions)))
	dst = append(dst, l.Extensions...)
	binary.LittleEndian.PutUint32(dst[start+1:], crc32.Checksum(dst[start+5:], castagnoli))
	return dst
}

// errLogEntry is what a damaged or unknown entry fails to decode with.
var errLogEntry = errors.New("bad Raft log entry")

// decodeLog decodes an entry appendLog made into l. l.Data and l.Extensions alias b.
func decodeLog(b []byte, l *raft.Log) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", errLogEntry, fmt.Sprintf(format, args...))
	}
	if len(b) < 5 {
		return bad("%d bytes, shorter than a header", len(b))
	}
	if b[0] != logVersion {
		return bad("version %d, want %d", b[0], logVersion)
	}
	if got, want := crc32.Checksum(b[5:], castagnoli), binary.LittleEndian.Uint32(b[1:]); got != want {
		return bad("checksum %08x, want %08x", got, want)
	}
	r := bytes.NewReader(b[5:])
	var err error
	uv := func(what string) uint64 {
		if err != nil {
			return 0
		}
		var v uint64
		if v, err = binary.ReadUvarint(r); err != nil {
			err = bad("%s: %v", what, err)
		}
		return v
	}
	bytesOf := func(what string) []byte {
		n := uv(what + " length")
		if err != nil {
			return nil
		}
		if n > uint64(r.Len()) {
			err = bad("%s of %d bytes runs past the entry", what, n)
			return nil
		}
		if n == 0 {
			return nil
		}
		at := len(b) - r.Len()
		_, _ = r.Seek(int64(n), 1)
		return b[at : at+int(n) : at+int(n)]
	}
	*l = raft.Log{}
	l.Index = uv("index")
	l.Term = uv("term")
	if err == nil {
		var t byte
		if t, err = r.ReadByte(); err != nil {
			err = bad("type: %v", err)
		}
		l.Type = raft.LogType(t)
	}
	if err == nil {
		var at int64
		if at, err = binary.ReadVarint(r); err != nil {
			err = bad("appended at: %v", err)
		} else if at != 0 {
			l.AppendedAt = time.Unix(0, at)
		}
	}
	l.Data = bytesOf("data")
	l.Extensions = bytesOf("extensions")
	if err == nil && r.Len() != 0 {
		err = bad("%d bytes after the extensions", r.Len())
	}
	return err
}

func uvarintLen(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], v)
}
