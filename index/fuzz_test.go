package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadFrom feeds ReadFrom damaged checkpoints: it must never panic, must fail only with
// ErrBadCheckpoint, and whatever it accepts must be an index that encodes to the very bytes
// it was read from and that works. Each input is tried as it is and resealed with a right
// length and checksum, so the fuzzer reaches the body decoder too.
func FuzzReadFrom(f *testing.F) {
	f.Add(encoded(f, New()))
	for _, name := range []string{"v1.ckpt", "v2.ckpt"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	for seed := range uint64(3) {
		x, m := New(), newModel()
		workload(f, rand.New(rand.NewPCG(seed, 4)), m, 20+int(seed)*60, x)
		f.Add(encoded(f, x))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tryCheckpoint(t, b)
		if len(b) >= headerSize+trailerSize {
			tryCheckpoint(t, seal(b[headerSize:len(b)-trailerSize]))
		}
	})
}

func tryCheckpoint(t *testing.T, b []byte) {
	x, err := ReadFrom(bytes.NewReader(b))
	if err != nil {
		if !errors.Is(err, ErrBadCheckpoint) {
			t.Fatalf("ReadFrom: %v, want ErrBadCheckpoint", err)
		}
		return
	}
	n := headerSize + int(binary.LittleEndian.Uint64(b[12:])) + trailerSize
	if got := encoded(t, x); !bytes.Equal(got, b[:n]) {
		t.Fatalf("accepted\n%x\nre-encodes to\n%x", b[:n], got)
	}
	// Every query answers and the index takes more records.
	for _, info := range x.StreamNames("", "", 0) {
		x.Versions(nil, info.Name, 0, false, 0)
		x.Versions(nil, info.Name, ^uint64(0), true, 0)
		x.Contains(info.Name, 1)
	}
	for _, pos := range []uint64{0, 1, 2, x.Position(), MaxPosition} {
		x.LinkedInto(nil, pos)
		x.Caused(nil, pos, 0)
	}
	for _, name := range []string{"", "a", "Order"} {
		x.Category(nil, name, 0, false, 0)
		x.Types(nil, []string{name, "b"}, 0, true, 0)
	}
	if x.Position() < MaxPosition-1 {
		x.AddEvent(x.Position()+1, testID(1), "fuzz$1", "T")
		x.AddCausation(x.Position(), 0)
		x.AddLink(x.Position()+1, "fuzz$1", 1)
	}
}
