package index

import "testing"

// FuzzDecodeValues feeds arbitrary bytes to every value decoder and to Diff's
// descriptions: damaged entries must fail with ErrFormat (or be described), never panic.
func FuzzDecodeValues(f *testing.F) {
	f.Add([]byte{0x00, 0x05})
	f.Add([]byte{0x03})
	f.Add(linkedValue(nil, 7, "Order$1"))
	f.Add(streamValue(nil, &streamRec{base: 1, next: 9, floor: 4, ret: Retention{MaxAge: 3e9, MaxCount: 5, TruncateBefore: 4}}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := decodeStream(b); err == nil && (r.base > r.next || r.ret.MaxAge < 0) {
			t.Fatalf("decodeStream(%x) = %+v", b, r)
		}
		decodeEntry(b)
		decodeUint(b)
		if _, s, err := decodeLinked(b); err == nil && s == "" {
			t.Fatalf("decodeLinked(%x) accepted no stream", b)
		}
		for _, space := range []byte{spaceMeta, spaceVersion, spaceMember, spaceID, spaceCategory, spaceType, spaceLinked, spaceCaused, spaceDead, spaceErased} {
			k := append([]byte{space}, b...)
			describeKey(k)
			describeValue(k, b)
		}
	})
}
