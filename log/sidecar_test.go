package log

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"reflect"
	"strings"
	"testing"
)

func TestOffsetsRoundTrip(t *testing.T) {
	for _, tb := range []offsetTable{
		{first: 1, size: 10, offs: []uint32{0}},
		{first: 1 << 40, size: 1 << 31, offs: []uint32{0, 100, 1000, 1<<31 - 1}},
	} {
		got, err := decodeOffsets(appendOffsets(nil, &tb))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tb) {
			t.Fatalf("decodeOffsets = %+v, want %+v", got, tb)
		}
	}
}

func TestDecodeOffsetsRejects(t *testing.T) {
	valid := appendOffsets(nil, &offsetTable{first: 5, size: 300, offs: []uint32{0, 100, 200}})
	// mod changes a copy of valid and fixes its checksum.
	mod := func(f func(b []byte) []byte) []byte {
		b := f(append([]byte(nil), valid...))
		body := b[:len(b)-4]
		binary.LittleEndian.PutUint32(b[len(body):], crc32.Checksum(body, castagnoli))
		return b
	}
	withOffs := func(offs ...uint32) []byte {
		return mod(func(b []byte) []byte {
			for i, o := range offs {
				binary.LittleEndian.PutUint32(b[sidecarHeader+4*i:], o)
			}
			return b
		})
	}
	for _, tc := range []struct {
		name, reason string
		b            []byte
	}{
		{"empty", "short offsets file", nil},
		{"zeros", "not an offsets file", mod(func([]byte) []byte { return make([]byte, 64) })},
		{"flipped bit", "checksum mismatch", func() []byte { b := append([]byte(nil), valid...); b[30] ^= 4; return b }()},
		{"magic", "not an offsets file", mod(func(b []byte) []byte { b[0] = 'X'; return b })},
		{"version", "unknown offsets version 2", mod(func(b []byte) []byte { b[4] = 2; return b })},
		{"reserved", "reserved bytes set", mod(func(b []byte) []byte { b[6] = 1; return b })},
		{"position 0", "for position 0", mod(func(b []byte) []byte { clear(b[8:16]); return b })},
		{"huge size", "size", mod(func(b []byte) []byte { b[23] = 0xff; return b })},
		{"no entries", "no entries", mod(func(b []byte) []byte { clear(b[24:28]); return append(b[:sidecarHeader], 0, 0, 0, 0) })},
		{"count too big", "3 entries need", mod(func(b []byte) []byte { return append(b[:len(b)-8], 0, 0, 0, 0) })},
		{"count too small", "need", mod(func(b []byte) []byte { b[24] = 2; return b })},
		{"first not 0", "entry 0 at offset 1", withOffs(1, 100, 200)},
		{"not increasing", "entry 2 at offset 100", withOffs(0, 100, 100)},
		{"past the segment", "entry 2 at offset 300", withOffs(0, 100, 300)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeOffsets(tc.b)
			if err == nil || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("decodeOffsets: %v, want an error with %q", err, tc.reason)
			}
		})
	}
}

func FuzzDecodeOffsets(f *testing.F) {
	f.Add(appendOffsets(nil, &offsetTable{first: 1, size: 10, offs: []uint32{0}}))
	f.Add(appendOffsets(nil, &offsetTable{first: 77, size: 5000, offs: []uint32{0, 100, 1000, 4999}}))
	f.Add(make([]byte, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		tb, err := decodeOffsets(b)
		if err != nil {
			return
		}
		if enc := appendOffsets(nil, &tb); !bytes.Equal(enc, b) {
			t.Fatalf("accepted %x, which re-encodes to %x", b, enc)
		}
		if tb.first == 0 || len(tb.offs) == 0 || tb.offs[0] != 0 || int64(tb.offs[len(tb.offs)-1]) >= tb.size {
			t.Fatalf("accepted an impossible table %+v", tb)
		}
	})
}
