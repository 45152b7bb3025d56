// Package damagetest damages a closed store's log the way a bad disk sector would, and
// gives tests a small disk that fills up, for the tests of what pmd does then (contract
// section 8). It is the one place outside log/ that knows where a store's segments are.
package damagetest

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd/internal/engine"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// FlipIn flips one bit in the middle of the first occurrence of marker in the log
// segments of the closed store in dir, and returns the segment it damaged. A test
// writes marker into the data of the event it wants damaged. It fails the test if no
// segment holds marker.
func FlipIn(t testing.TB, dir, marker string) string {
	t.Helper()
	for _, seg := range Segments(t, dir) {
		b, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(b, []byte(marker)); i >= 0 {
			b[i+len(marker)/2] ^= 0x08
			if err := os.WriteFile(seg, b, 0o640); err != nil {
				t.Fatal(err)
			}
			return seg
		}
	}
	t.Fatalf("damagetest: %q is in no segment of %s", marker, dir)
	return ""
}

// Segments returns the paths of the log segment files of the closed store in dir, in
// the order of the positions they start at.
func Segments(t testing.TB, dir string) []string {
	t.Helper()
	// Segments are named by their first position, 20 digits (log/FORMAT.md), so the
	// names sort by it.
	segs, err := filepath.Glob(filepath.Join(dir, engine.LogDir, strings.Repeat("[0-9]", 20)))
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

// First returns the position the log segment file at path starts at.
func First(t testing.TB, path string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(filepath.Base(path), 10, 64)
	if err != nil {
		t.Fatalf("damagetest: %s is not a segment file: %v", path, err)
	}
	return n
}

// EndOf returns the offset just past the record of position pos in the log segment file
// at path: the size that keeps that record and loses every one after it, as a cut of
// the file there (a power cut, a torn write) would. Each entry is a uvarint length and
// the record (log/FORMAT.md); the records are read with the log's own decoder. It fails
// the test if the segment does not hold pos whole.
func EndOf(t testing.TB, path string, pos uint64) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(b); {
		n, k := binary.Uvarint(b[off:])
		if k <= 0 || uint64(len(b)-off-k) < n {
			break
		}
		r, err := pmdlog.DecodeRecord(b[off+k : off+k+int(n)])
		if err != nil {
			t.Fatalf("damagetest: %s at offset %d: %v", path, off, err)
		}
		off += k + int(n)
		if r.Position == pos {
			return int64(off)
		}
	}
	t.Fatalf("damagetest: %s does not hold position %d whole", path, pos)
	return 0
}

// SmallDisk mounts a tmpfs of size (as mount takes it: "4m") on a directory of the test
// and returns it, unmounted when the test ends: a real file system that fills up, for
// the tests of full disks. It skips the test where mounting is refused (not root, no
// mount).
func SmallDisk(t testing.TB, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}
