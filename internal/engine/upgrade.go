package engine

import (
	"encoding/binary"
	"io"
	"os"
)

// ckptPosition returns the log position a format 1 index checkpoint covered, or 0 if the
// file cannot tell. That checkpoint was written only after the log was synced up to it,
// so the log's crash repair must never cut at or below it; the rest of the file is not
// needed, since the index is rebuilt from the log.
//
// Format 1 checkpoint layout (index/FORMAT.md of pmd before format 2): "pmdindex", u32
// version (2), u64 body length, then the body, whose first field is the position as a
// uvarint.
func ckptPosition(path string) uint64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var head [20 + binary.MaxVarintLen64]byte
	n, err := io.ReadFull(f, head[:])
	if err != nil && err != io.ErrUnexpectedEOF {
		return 0
	}
	b := head[:n]
	if len(b) < 21 || string(b[:8]) != "pmdindex" || binary.LittleEndian.Uint32(b[8:12]) != 2 {
		return 0
	}
	pos, k := binary.Uvarint(b[20:])
	if k <= 0 {
		return 0
	}
	return pos
}
