//go:build linux

package pmd_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/pmd-dev/pmd"
)

// TestScavengeLeavesUnchangedSegmentsAlone scavenges a store of several sealed segments
// of which one holds a dead event: that segment is rewritten, and the others are only
// read. No copy of them is ever created (inotify sees one temp file, the rewritten
// segment's), and their files keep their inodes and modification times. A scavenge used
// to write and fsync a full copy of every sealed segment, then remove the copies of those
// in which nothing changed: a scheduled scavenge of a large log rewrote it all for nothing.
func TestScavengeLeavesUnchangedSegmentsAlone(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	dir := filepath.Join(data, "log") // the segments
	s, err := pmd.Open(data, pmd.Options{NoSync: true, Logger: quietLogger(), NoScrub: true, SegmentSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pad := pmd.EventData{Type: "P", Data: map[string]any{"p": strings.Repeat("x", 500)}}
	for range 20 {
		mustAppend(t, s, "keep", pmd.Any, pad)
	}
	mustAppend(t, s, "doomed", pmd.Any, pmd.EventData{Type: "D", Data: map[string]any{"d": "dead"}})
	for range 20 {
		mustAppend(t, s, "keep", pmd.Any, pad)
	}
	if err := s.DeleteStream(ctx, "doomed", pmd.Any); err != nil {
		t.Fatal(err)
	}
	for range 20 { // the deletion's segment sealed too
		mustAppend(t, s, "keep", pmd.Any, pad)
	}

	segName := regexp.MustCompile(`^[0-9]{20}$`)
	type fileState struct {
		ino uint64
		mod int64
	}
	states := func() map[string]fileState {
		t.Helper()
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		m := make(map[string]fileState)
		for _, e := range ents {
			if !segName.MatchString(e.Name()) {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			m[e.Name()] = fileState{fi.Sys().(*syscall.Stat_t).Ino, fi.ModTime().UnixNano()}
		}
		return m
	}
	before := states()
	if len(before) < 4 {
		t.Fatalf("%d segments, want at least 4 (3 sealed)", len(before))
	}

	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_CREATE|syscall.IN_MOVED_TO); err != nil {
		t.Fatal(err)
	}
	res, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1})
	if err != nil {
		t.Fatal(err)
	}
	// The kernel queued every event as the files were made: all are there to read.
	var created []string
	buf := make([]byte, 64<<10)
	for {
		n, err := syscall.Read(fd, buf)
		if errors.Is(err, syscall.EAGAIN) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := buf[off+syscall.SizeofInotifyEvent : off+syscall.SizeofInotifyEvent+int(ev.Len)]
			if ev.Mask&syscall.IN_CREATE != 0 {
				created = append(created, string(bytes.TrimRight(name, "\x00")))
			}
			off += syscall.SizeofInotifyEvent + int(ev.Len)
		}
	}

	after := states()
	var changed []string
	for name, st := range before {
		if after[name] != st {
			changed = append(changed, name)
		}
	}
	if len(changed) != 1 {
		t.Fatalf("segments changed: %v, want only the one with the dead event", changed)
	}
	if want := []string{changed[0] + ".scavenge.tmp"}; len(created) != 1 || created[0] != want[0] {
		t.Fatalf("files created in the log directory by the scavenge: %v, want %v", created, want)
	}
	if res.Rewritten != 1 || res.Segments != len(before)-1 || res.Gone != 1 || res.Freed() <= 0 {
		t.Fatalf("Scavenge = %+v: want %d segments read, 1 rewritten, 1 event gone, bytes freed", res, len(before)-1)
	}
	again, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1})
	if err != nil || again.Rewritten != 0 || again.Freed() != 0 {
		t.Fatalf("a second scavenge: %+v, %v; want nothing rewritten", again, err)
	}
	if got := states(); len(got) != len(after) {
		t.Fatalf("%d segments after a second scavenge, %d before", len(got), len(after))
	} else {
		for name, st := range after {
			if got[name] != st {
				t.Fatalf("a second scavenge changed segment %s", name)
			}
		}
	}
}
