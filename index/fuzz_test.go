package index

import "testing"

// FuzzDecodeValues feeds arbitrary bytes to every value decoder and to Diff's
// descriptions: damaged entries must fail with ErrFormat (or be described), never panic.
func FuzzDecodeValues(f *testing.F) {
	f.Add([]byte{0x00, 0x05})
	f.Add([]byte{0x03})
	f.Add(linkedValue(nil, 7, "Order$1"))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		if base, next, err := decodeStream(b); err == nil && base > next {
			t.Fatalf("decodeStream(%x) = %d > %d", b, base, next)
		}
		decodeEntry(b)
		decodeUint(b)
		if _, s, err := decodeLinked(b); err == nil && s == "" {
			t.Fatalf("decodeLinked(%x) accepted no stream", b)
		}
		for _, space := range []byte{spaceMeta, spaceStream, spaceVersion, spaceMember, spaceID, spaceCategory, spaceType, spaceLinked, spaceCaused} {
			k := append([]byte{space}, b...)
			describeKey(k)
			describeValue(k, b)
		}
	})
}
