package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
)

// A sealed segment's offset table is kept in a sidecar file, so that no old segment need
// be framed: it is loaded when a read first needs it (tables.go). Its layout is in
// FORMAT.md; a missing, damaged or inconsistent sidecar is rebuilt from the segment itself.
//
// The sidecars live in a subdirectory of the log's, sidecarDir: tidwall/wal's Open stats
// every file of the log's directory, and next to the segments they doubled its work.
// Logs written before kept them next to their segments; Open moves them (legacySidecar).
const (
	sidecarDir     = "offsets"
	sidecarExt     = ".offsets"
	tmpExt         = ".tmp"
	sidecarMagic   = "PMDO"
	sidecarVersion = 1
	sidecarHeader  = 28 // magic, version, reserved, first, size, count
)

// offsetTable is the content of a sidecar.
type offsetTable struct {
	first uint64   // position of the segment's first entry
	size  int64    // segment file size
	offs  []uint32 // entry start offsets
}

func appendOffsets(dst []byte, t *offsetTable) []byte {
	start := len(dst)
	dst = append(dst, sidecarMagic...)
	dst = append(dst, sidecarVersion, 0, 0, 0)
	dst = binary.LittleEndian.AppendUint64(dst, t.first)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(t.size))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(t.offs)))
	for _, o := range t.offs {
		dst = binary.LittleEndian.AppendUint32(dst, o)
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// decodeOffsets decodes a sidecar. It never panics and checks everything the table
// itself can vouch for: checksum, version, and offsets that start at 0, increase, and
// lie inside the segment. Whether it matches the segment is the caller's check.
func decodeOffsets(b []byte) (offsetTable, error) {
	var t offsetTable
	if len(b) < sidecarHeader+4 {
		return t, fmt.Errorf("short offsets file: %d bytes", len(b))
	}
	body := b[:len(b)-4]
	if sum, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(b[len(body):]); sum != want {
		return t, fmt.Errorf("offsets checksum mismatch: stored %#08x, computed %#08x", want, sum)
	}
	if string(b[:4]) != sidecarMagic {
		return t, fmt.Errorf("not an offsets file: magic %q", b[:4])
	}
	if b[4] != sidecarVersion {
		return t, fmt.Errorf("unknown offsets version %d", b[4])
	}
	if b[5] != 0 || b[6] != 0 || b[7] != 0 {
		return t, fmt.Errorf("offsets reserved bytes set")
	}
	t.first = binary.LittleEndian.Uint64(b[8:])
	size := binary.LittleEndian.Uint64(b[16:])
	count := uint64(binary.LittleEndian.Uint32(b[24:]))
	if t.first == 0 {
		return t, fmt.Errorf("offsets for position 0")
	}
	if size > 1<<62 {
		return t, fmt.Errorf("offsets: segment size %d out of range", size)
	}
	t.size = int64(size)
	if count == 0 {
		return t, fmt.Errorf("offsets: no entries")
	}
	if uint64(len(body)) != sidecarHeader+4*count {
		return t, fmt.Errorf("offsets: %d entries need %d bytes, have %d", count, sidecarHeader+4*count, len(body))
	}
	t.offs = make([]uint32, count)
	prev := int64(-1)
	for i := range t.offs {
		o := binary.LittleEndian.Uint32(body[sidecarHeader+4*i:])
		if int64(o) <= prev || (i == 0 && o != 0) || int64(o) >= t.size {
			return offsetTable{}, fmt.Errorf("offsets: entry %d at offset %d out of order or outside the segment", i, o)
		}
		prev = int64(o)
		t.offs[i] = o
	}
	return t, nil
}

// sidecarPath is where the sidecar of the segment file seg is.
func sidecarPath(seg string) string {
	return filepath.Join(filepath.Dir(seg), sidecarDir, filepath.Base(seg)+sidecarExt)
}

// legacySidecar is where logs written before sidecarDir kept the sidecar of seg.
func legacySidecar(seg string) string { return seg + sidecarExt }

// removeSidecar removes the sidecar of seg, wherever it is.
func removeSidecar(seg string) error {
	for _, p := range []string{sidecarPath(seg), legacySidecar(seg)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// syncDirs fsyncs the log directory dir and its sidecar directory, if there is one.
func syncDirs(dir string) error {
	if err := syncDir(dir); err != nil {
		return err
	}
	if err := syncDir(filepath.Join(dir, sidecarDir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// replaceFile writes data to path through a temporary file and a rename, so that readers
// see the old file or the whole new one. It does not fsync: it is used for sidecars,
// which Open checks and rebuilds when a crash lost or tore them, so that sealing a
// segment adds no fsync to the Write that does it.
func replaceFile(path string, data []byte) error {
	tmp := path + tmpExt
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	err = AdoptOwner(f, filepath.Dir(path))
	if err == nil {
		_, err = f.Write(data)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// truncate cuts the file at path to size bytes, and fsyncs it if sync.
func truncate(path string, size int64, sync bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
