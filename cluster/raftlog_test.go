package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

func testLog(i uint64) *raft.Log {
	l := &raft.Log{Index: i, Term: 1 + i/100, Type: raft.LogCommand, Data: []byte(fmt.Sprintf("entry %d %s", i, strings.Repeat("x", int(i%50))))}
	switch i % 4 {
	case 1:
		l.AppendedAt = time.Unix(1_700_000_000, int64(i))
	case 2:
		l.Extensions = []byte{byte(i), 2, 3}
		l.Type = raft.LogConfiguration
	case 3:
		l.Data = nil
		l.Type = raft.LogNoop
	}
	return l
}

func storeRange(t *testing.T, s raft.LogStore, first, last uint64) {
	t.Helper()
	var logs []*raft.Log
	for i := first; i <= last; i++ {
		if logs = append(logs, testLog(i)); len(logs) == 17 || i == last {
			if err := s.StoreLogs(logs); err != nil {
				t.Fatalf("store %d-%d: %v", logs[0].Index, i, err)
			}
			logs = nil
		}
	}
}

// checkLog checks that s holds exactly the entries first to last, as testLog makes them.
func checkLog(t *testing.T, s raft.LogStore, first, last uint64) {
	t.Helper()
	f, err := s.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	if f != first || l != last {
		t.Fatalf("log holds %d-%d, want %d-%d", f, l, first, last)
	}
	if first == 0 {
		return
	}
	for _, i := range []uint64{first - 1, last + 1} {
		var got raft.Log
		if err := s.GetLog(i, &got); !errors.Is(err, raft.ErrLogNotFound) {
			t.Fatalf("GetLog(%d) outside %d-%d: %v", i, first, last, err)
		}
	}
	for i := first; i <= last; i++ {
		var got raft.Log
		if err := s.GetLog(i, &got); err != nil {
			t.Fatalf("GetLog(%d): %v", i, err)
		}
		sameLog(t, &got, testLog(i))
	}
}

func sameLog(t *testing.T, got, want *raft.Log) {
	t.Helper()
	if got.Index != want.Index || got.Term != want.Term || got.Type != want.Type ||
		!bytes.Equal(got.Data, want.Data) || !bytes.Equal(got.Extensions, want.Extensions) || !got.AppendedAt.Equal(want.AppendedAt) {
		t.Fatalf("entry %d: got %+v, want %+v", want.Index, got, want)
	}
}

// TestLogStore runs the log store through what Raft does with it: appends in batches
// across segments, compaction of a prefix, truncation of a conflicting suffix, the
// removal of everything and a restart at a later index after a snapshot install, and
// a reopen after each.
func TestLogStore(t *testing.T) {
	dir := t.TempDir()
	open := func() *logStore {
		s, err := openLogStoreSize(dir, false, 4<<10, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	checkLog(t, s, 0, 0)
	storeRange(t, s, 1, 500)
	checkLog(t, s, 1, 500)
	if segs, _ := listSegments(dir); len(segs) < 5 {
		t.Fatalf("%d segments: the test wants several", len(segs))
	}
	if err := s.StoreLog(testLog(300)); err == nil {
		t.Fatal("an entry that overwrites the log was stored")
	}
	if err := s.DeleteRange(200, 300); err == nil {
		t.Fatal("a range inside the log was deleted")
	}
	if err := s.StoreLog(&raft.Log{Index: 0}); err == nil {
		t.Fatal("an entry at index 0 was stored")
	}

	steps := []struct {
		name        string
		do          func()
		first, last uint64
	}{
		{"compact a prefix", func() { must(t, s.DeleteRange(1, 120)) }, 121, 500},
		{"drop a suffix", func() { must(t, s.DeleteRange(451, 500)) }, 121, 450},
		{"append after the suffix", func() { storeRange(t, s, 451, 470) }, 121, 470},
		{"remove everything", func() { must(t, s.DeleteRange(121, 470)) }, 0, 0},
		{"start again after a snapshot", func() { storeRange(t, s, 1000, 1100) }, 1000, 1100},
		{"a gap replaces the log", func() { storeRange(t, s, 2000, 2010) }, 2000, 2010},
	}
	for _, st := range steps {
		st.do()
		checkLog(t, s, st.first, st.last)
		must(t, s.Close())
		s = open()
		checkLog(t, s, st.first, st.last)
		if t.Failed() {
			t.Fatalf("after %s", st.name)
		}
	}
	must(t, s.Close())
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestLogStoreTornTail damages the end of the Raft log as a crash during an append does:
// the next open cuts the torn entry and keeps every whole one before it, and appends go
// on. Damage with valid entries after it is no crash: the open fails and changes nothing.
func TestLogStoreTornTail(t *testing.T) {
	cases := []struct {
		name   string
		damage func(b []byte) []byte // the tail segment's bytes, whose last entry is 40
		last   uint64                // what the log then holds
		fails  bool
	}{
		{"last entry cut short", func(b []byte) []byte { return b[:len(b)-3] }, 39, false},
		{"zeros after the last entry", func(b []byte) []byte { return append(b, make([]byte, 4096)...) }, 40, false},
		{"last entry's bytes changed", func(b []byte) []byte { b[len(b)-2] ^= 0xff; return b }, 39, false},
		{"garbage after the last entry", func(b []byte) []byte { return append(b, 5, 1, 2, 3, 4, 5, 9, 9) }, 40, false},
		{"an entry in the middle changed", func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b }, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := openLogStore(dir, false, nil)
			must(t, err)
			storeRange(t, s, 1, 40)
			must(t, s.Close())
			segs, err := listSegments(dir)
			must(t, err)
			path := filepath.Join(dir, segs[len(segs)-1].name)
			b, err := os.ReadFile(path)
			must(t, err)
			damaged := tc.damage(b)
			must(t, os.WriteFile(path, damaged, 0o640))

			var logged []string
			s, err = openLogStore(dir, false, func(msg string, args ...any) { logged = append(logged, fmt.Sprint(msg, args)) })
			if tc.fails {
				if !errors.Is(err, ErrRaftLogCorrupt) {
					t.Fatalf("open: %v, want ErrRaftLogCorrupt", err)
				}
				after, _ := os.ReadFile(path)
				if !bytes.Equal(after, damaged) {
					t.Fatal("a failed open changed the segment")
				}
				return
			}
			must(t, err)
			checkLog(t, s, 1, tc.last)
			if tc.last == 40 && len(damaged) > len(b) || tc.last < 40 {
				if len(logged) != 1 {
					t.Fatalf("the cut was not reported: %q", logged)
				}
			}
			storeRange(t, s, tc.last+1, 60)
			must(t, s.Close())
			s, err = openLogStore(dir, false, nil)
			must(t, err)
			checkLog(t, s, 1, 60)
			must(t, s.Close())
		})
	}
}

// TestStableStore: values survive a reopen; a key never set is "not found", as Raft
// expects; a damaged file fails the open.
func TestStableStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stable")
	s, err := openStableStore(path, false)
	must(t, err)
	if _, err := s.GetUint64([]byte("CurrentTerm")); err == nil || err.Error() != "not found" {
		t.Fatalf("a missing key: %v", err)
	}
	must(t, s.SetUint64([]byte("CurrentTerm"), 7))
	must(t, s.Set([]byte("LastVoteCand"), []byte("n2")))
	must(t, s.SetUint64([]byte("CurrentTerm"), 8))
	s, err = openStableStore(path, false)
	must(t, err)
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 8 {
		t.Fatalf("CurrentTerm: %d %v", v, err)
	}
	if v, err := s.Get([]byte("LastVoteCand")); err != nil || string(v) != "n2" {
		t.Fatalf("LastVoteCand: %q %v", v, err)
	}
	b, err := os.ReadFile(path)
	must(t, err)
	b[len(b)-1] ^= 1
	must(t, os.WriteFile(path, b, 0o640))
	if _, err := openStableStore(path, false); !errors.Is(err, ErrStableCorrupt) {
		t.Fatalf("open a damaged file: %v", err)
	}
}

// TestMigrateFromBolt writes the Raft state of a node of the previous version with
// raft-boltdb (a compacted log and the stable values), then opens it as a node does: the
// entries and values are in the new stores, and raft.db is gone. A crash after the new
// log was in place, which left raft.db, only removes it.
func TestMigrateFromBolt(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, boltFile)
	bs, err := raftboltdb.New(raftboltdb.Options{Path: old})
	must(t, err)
	storeRange(t, bs, 1, 1500)
	must(t, bs.DeleteRange(1, 300))
	must(t, bs.SetUint64([]byte("CurrentTerm"), 12))
	must(t, bs.SetUint64([]byte("LastVoteTerm"), 11))
	must(t, bs.Set([]byte("LastVoteCand"), []byte("n3")))
	must(t, bs.Close())
	boltBytes, err := os.ReadFile(old)
	must(t, err)

	openAll := func() *logStore {
		t.Helper()
		var logged []string
		must(t, migrateBolt(dir, false, func(msg string, args ...any) { logged = append(logged, msg) }))
		if _, err := os.Stat(old); !os.IsNotExist(err) {
			t.Fatalf("raft.db is still there: %v", err)
		}
		ls, err := openLogStore(filepath.Join(dir, raftLogDir), false, nil)
		must(t, err)
		checkLog(t, ls, 301, 1500)
		st, err := openStableStore(filepath.Join(dir, raftStableFile), false)
		must(t, err)
		for k, want := range map[string]uint64{"CurrentTerm": 12, "LastVoteTerm": 11} {
			if v, err := st.GetUint64([]byte(k)); err != nil || v != want {
				t.Fatalf("%s: %d %v", k, v, err)
			}
		}
		if v, err := st.Get([]byte("LastVoteCand")); err != nil || string(v) != "n3" {
			t.Fatalf("LastVoteCand: %q %v", v, err)
		}
		return ls
	}
	ls := openAll()
	storeRange(t, ls, 1501, 1510) // the migrated log takes appends
	must(t, ls.Close())

	// raft.db back, as if its removal had not reached the disk: it is only removed.
	must(t, os.WriteFile(old, boltBytes, 0o640))
	must(t, migrateBolt(dir, false, nil))
	ls, err = openLogStore(filepath.Join(dir, raftLogDir), false, nil)
	must(t, err)
	checkLog(t, ls, 301, 1510)
	must(t, ls.Close())

	// A crash during the copy left a partial new log: it is built again.
	dir2 := t.TempDir()
	old = filepath.Join(dir2, boltFile)
	must(t, os.WriteFile(old, boltBytes, 0o640))
	partial, err := openLogStore(filepath.Join(dir2, raftLogDir+".migrating"), false, nil)
	must(t, err)
	storeRange(t, partial, 1, 10)
	must(t, partial.Close())
	dir = dir2
	must(t, openAll().Close())
}

// FuzzDecodeLog: the decoder of Raft log entries never panics, and what it accepts
// encodes back to the same bytes.
func FuzzDecodeLog(f *testing.F) {
	for i := range uint64(8) {
		f.Add(appendLog(nil, testLog(i)))
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var l raft.Log
		if err := decodeLog(b, &l); err != nil {
			if !errors.Is(err, errLogEntry) {
				t.Fatalf("error %v does not match errLogEntry", err)
			}
			return
		}
		if again := appendLog(nil, &l); !bytes.Equal(again, b) {
			t.Fatalf("decoded %+v from %x, which encodes to %x", l, b, again)
		}
	})
}

// FuzzDecodeStable: the stable store's decoder never panics, and what it accepts encodes
// back to the same bytes.
func FuzzDecodeStable(f *testing.F) {
	f.Add(encodeStable(map[string][]byte{"CurrentTerm": {0, 0, 0, 0, 0, 0, 0, 7}, "LastVoteCand": []byte("n2")}))
	f.Add(encodeStable(nil))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		vals, err := decodeStable(b)
		if err != nil {
			return
		}
		if again := encodeStable(vals); !bytes.Equal(again, b) {
			t.Fatalf("decoded %v from %x, which encodes to %x", vals, b, again)
		}
	})
}
