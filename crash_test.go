package pmd_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// The crash test runs a writer in a child process (this test binary, re-executed) and
// kills it with SIGKILL while it appends. The child prints one line per acknowledged
// write; whatever it printed must survive, and nothing half-written may show.

const crashChildEnv = "PMD_CRASH_CHILD_DIR"

// ack is what the child reports for each acknowledged append or link.
type ack struct {
	Replayed *uint64     `json:"replayed,omitempty"` // the child's first line: what its Open replayed
	Stream   string      `json:"stream"`
	IDs      []uuid.UUID `json:"ids"`
	Version  uint64      `json:"version"` // the stream's version after the write
	Link     bool        `json:"link"`
}

func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("run by TestCrashKill9 as its child process")
	}
	s, err := pmd.Open(dir, pmd.Options{Logger: quietLogger(), SegmentSize: 32 << 10, IndexFlushEvery: childFlushEvery})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	var out sync.Mutex
	enc := json.NewEncoder(os.Stdout)
	replayed := s.Stats().Replayed
	if err := enc.Encode(ack{Replayed: &replayed}); err != nil {
		os.Exit(3)
	}
	report := func(a ack) {
		out.Lock()
		defer out.Unlock()
		if err := enc.Encode(a); err != nil {
			os.Exit(3)
		}
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(w)))
			for {
				// Each writer owns its streams, so it can expect exact versions.
				stream := fmt.Sprintf("Crash$%d-%d", w, rng.IntN(5))
				n := 1 + rng.IntN(4)
				batch := uuid.New()
				events := make([]pmd.EventData, n)
				for i := range events {
					events[i] = pmd.EventData{ID: uuid.New(), Type: "Wrote", Data: map[string]any{
						"batch": batch.String(), "n": n, "i": i, "pad": strings.Repeat("x", rng.IntN(300)),
					}}
				}
				info, err := s.StreamInfo(stream)
				if err != nil {
					fmt.Fprintln(os.Stderr, "stream info:", err)
					os.Exit(4)
				}
				expected := pmd.NoStream
				if info.Exists {
					expected = pmd.AtVersion(uint64(info.Version))
				}
				res, err := s.Append(ctx, stream, expected, events...)
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(4)
				}
				a := ack{Stream: stream, Version: res.Version}
				for _, e := range events {
					a.IDs = append(a.IDs, e.ID)
				}
				report(a)
				if rng.IntN(3) == 0 {
					target := fmt.Sprintf("Link$%d", w)
					info, err := s.StreamInfo(target)
					if err != nil {
						fmt.Fprintln(os.Stderr, "stream info:", err)
						os.Exit(4)
					}
					expected := pmd.NoStream
					if info.Exists {
						expected = pmd.AtVersion(uint64(info.Version))
					}
					res, err := s.Link(ctx, target, expected, events[0].ID)
					if err != nil {
						fmt.Fprintln(os.Stderr, "link:", err)
						os.Exit(5)
					}
					report(ack{Stream: target, IDs: []uuid.UUID{events[0].ID}, Version: res.Version, Link: true})
				}
			}
		}(w)
	}
	wg.Wait()
}

// childFlushEvery is how often the child flushes its index: often, so that kills land
// during flushes and the compactions their many small tables bring.
const childFlushEvery = 50

// maxReplay bounds the records a restart after a kill may replay: what the child wrote
// since its last index flush (childFlushEvery, and what came in while that flush ran).
// It does not grow with the log or the number of crashes; a child that never flushed
// would leave up to a thousand records.
const maxReplay = 400

func TestCrashKill9(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip("child")
	}
	dir := t.TempDir()
	rounds := 6
	if testing.Short() {
		rounds = 3
	}
	if n, err := strconv.Atoi(os.Getenv("PMD_SOAK_ROUNDS")); err == nil && n > 0 {
		rounds = n // make soak
	}
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), 42))
	var acked []ack
	for round := 0; round < rounds; round++ {
		acked = append(acked, runAndKill(t, dir, 20+rng.IntN(400))...)
		// Most rounds restart the child straight away, as a crash loop would; every
		// few the store is checked (and closed cleanly).
		if round%5 == 4 || round == rounds-1 {
			checkCrashedStore(t, dir, acked)
		}
	}
}

// runAndKill starts the child on dir, lets it acknowledge after writes, kills it with
// SIGKILL, and returns every write it acknowledged.
func runAndKill(t *testing.T, dir string, after int) []ack {
	t.Helper()
	cmd, sc, stderr := startChild(t, "TestCrashChild", crashChildEnv+"="+dir)
	var acks []ack
	for len(acks) < after && sc.Scan() {
		var a ack
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			continue // the test framework's own output
		}
		if a.Replayed != nil {
			if *a.Replayed > maxReplay {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("the child's open replayed %d records, more than the %d a crash may leave unflushed", *a.Replayed, maxReplay)
			}
			continue
		}
		acks = append(acks, a)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Lines the child printed before it died are acknowledged writes too.
	for sc.Scan() {
		var a ack
		if json.Unmarshal(sc.Bytes(), &a) == nil && a.Replayed == nil {
			acks = append(acks, a)
		}
	}
	cmd.Wait()
	if len(acks) < after {
		t.Fatalf("child died after %d acks: %s", len(acks), stderr.String())
	}
	return acks
}

// startChild starts this test binary again, running only the test named test, with env
// added to the environment; it returns the command, a scanner of its standard output
// and what it writes to standard error.
func startChild(t *testing.T, test string, env ...string) (*exec.Cmd, *bufio.Scanner, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, bufio.NewScanner(stdout), stderr
}

func checkCrashedStore(t *testing.T, dir string, acked []ack) {
	t.Helper()
	s, err := pmd.Open(dir, pmd.Options{Logger: quietLogger(), SegmentSize: 32 << 10})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	if st := s.Stats(); st.Replayed > maxReplay {
		t.Fatalf("the restart replayed %d of %d records, more than the %d a crash may leave unflushed", st.Replayed, st.LastPosition, maxReplay)
	}
	// Every acknowledged write is there, at the version it was acknowledged with.
	for _, a := range acked {
		events, err := readStream(t, s, a.Stream, pmd.ReadOptions{From: a.Version + 1 - uint64(len(a.IDs)), Limit: len(a.IDs)})
		if err != nil {
			t.Fatalf("acknowledged write to %s lost: %v", a.Stream, err)
		}
		if got := ids(events); fmt.Sprint(got) != fmt.Sprint(a.IDs) {
			t.Fatalf("acknowledged write to %s at version %d: got %v, want %v", a.Stream, a.Version, got, a.IDs)
		}
		for _, e := range events {
			if e.Link != a.Link {
				t.Fatalf("event %s in %s: link = %v, want %v", e.ID, a.Stream, e.Link, a.Link)
			}
		}
	}
	// No half batch: every batch in $all is whole.
	batches := map[string][]int{}
	sizes := map[string]int{}
	for e, err := range s.ReadAll(context.Background(), pmd.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		b := e.Data["batch"].(string)
		batches[b] = append(batches[b], int(toInt(e.Data["i"])))
		sizes[b] = int(toInt(e.Data["n"]))
	}
	for b, is := range batches {
		sort.Ints(is)
		if len(is) != sizes[b] {
			t.Fatalf("batch %s is half there: events %v of %d", b, is, sizes[b])
		}
	}
	// Versions are contiguous in every stream.
	for _, info := range streams(t, s, "", "", 1000) {
		events, err := readStream(t, s, info.Name, pmd.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range events {
			if e.Version != uint64(i) {
				t.Fatalf("stream %s: event %d at version %d", info.Name, i, e.Version)
			}
		}
	}
}

func toInt(v any) int64 {
	switch n := v.(type) {
	case int8:
		return int64(n)
	case int16:
		return int64(n)
	case int32:
		return int64(n)
	case int64:
		return n
	case uint8:
		return int64(n)
	case uint16:
		return int64(n)
	case uint32:
		return int64(n)
	case uint64:
		return int64(n)
	case int:
		return int64(n)
	case float64:
		return int64(n)
	}
	panic(fmt.Sprintf("not a number: %T", v))
}

// TestPowerCutDamage damages the files the way a power cut does and checks that
// reopening keeps every write that was durable and shows nothing half-written.
func TestPowerCutDamage(t *testing.T) {
	tests := []struct {
		name string
		// damage changes the segment file seg, whose first durable bytes are synced and
		// whose last size-durable bytes were not.
		damage func(t *testing.T, seg string, durable, size int64)
	}{
		{"torn tail", func(t *testing.T, seg string, durable, size int64) {
			truncate(t, seg, size-7)
		}},
		{"lost unsynced bytes", func(t *testing.T, seg string, durable, size int64) {
			truncate(t, seg, durable+(size-durable)/2)
		}},
		{"zero-filled tail", func(t *testing.T, seg string, durable, size int64) {
			f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write(make([]byte, 4096)); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			// Durable part: written and closed (synced, checkpointed).
			s := openStore(t, dir)
			var durable []pmd.EventData
			for i := 0; i < 50; i++ {
				e := ev("Durable", "i", i)
				durable = append(durable, e)
				mustAppend(t, s, "D", pmd.Any, e)
			}
			s.Close()
			oldIndex := t.TempDir()
			copyDir(t, filepath.Join(dir, "index"), oldIndex)
			seg, synced := newestSegment(t, dir)
			// Unsynced part: batches of three whose tail the power cut damages. The old
			// index is put back: a power cut loses the newer one too.
			s = openStore(t, dir)
			for i := 0; i < 20; i++ {
				mustAppend(t, s, fmt.Sprintf("U$%d", i), pmd.NoStream, ev("U", "i", 0), ev("U", "i", 1), ev("U", "i", 2))
			}
			s.Close()
			if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
				t.Fatal(err)
			}
			copyDir(t, oldIndex, filepath.Join(dir, "index"))
			if again, size := newestSegment(t, dir); again != seg {
				t.Fatalf("the test wants one segment, the log cycled to %s", again)
			} else {
				tt.damage(t, seg, synced, size)
			}

			s = openStore(t, dir)
			got, err := readStream(t, s, "D", pmd.ReadOptions{})
			if err != nil || fmt.Sprint(ids(got)) != fmt.Sprint(dataIDs(durable)) {
				t.Fatalf("durable stream after power cut: %v (%d events)", err, len(got))
			}
			infos, err := s.Streams("U$", "", 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, info := range infos {
				events, _ := readStream(t, s, info.Name, pmd.ReadOptions{})
				if len(events) != 3 {
					t.Fatalf("%s holds %d of its 3 events", info.Name, len(events))
				}
			}
			// The store takes writes again, right after what survived.
			mustAppend(t, s, "D", pmd.AtVersion(49), ev("After"))
		})
	}
}

func TestFlippedBitIsReportedNotServed(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	var written []pmd.EventData
	for i := 0; i < 400; i++ {
		e := ev("E", "pad", strings.Repeat("p", 200))
		written = append(written, e)
		mustAppend(t, s, fmt.Sprintf("S$%d", i%10), pmd.Any, e)
	}
	s.Close()
	// Flip a bit in the middle of the oldest segment.
	segs, _ := filepath.Glob(filepath.Join(dir, "log", "[0-9]*[0-9]"))
	sort.Strings(segs)
	if len(segs) < 2 {
		t.Fatalf("want several segments, have %v", segs)
	}
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x04
	if err := os.WriteFile(segs[0], b, 0o640); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	var corrupt *pmdlog.CorruptError
	served, failed := 0, 0
	for _, e := range written {
		got, err := s.Event(context.Background(), e.ID)
		switch {
		case err == nil:
			if got.ID != e.ID || got.Data["pad"] != e.Data["pad"] {
				t.Fatalf("event %s served with different content", e.ID)
			}
			served++
		case errors.As(err, &corrupt) && errors.Is(err, pmdlog.ErrCorrupt):
			if corrupt.Segment == "" {
				t.Errorf("corruption error does not name the segment: %v", err)
			}
			failed++
		default:
			t.Fatalf("event %s: %v", e.ID, err)
		}
	}
	if failed != 1 || served != len(written)-1 {
		t.Errorf("served %d, reported %d; want exactly the damaged one reported", served, failed)
	}
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func newestSegment(t *testing.T, dir string) (string, int64) {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "log", "[0-9]*[0-9]"))
	sort.Strings(segs)
	if len(segs) == 0 {
		t.Fatal("no segments")
	}
	fi, err := os.Stat(segs[len(segs)-1])
	if err != nil {
		t.Fatal(err)
	}
	return segs[len(segs)-1], fi.Size()
}

// copyDir copies the files of directory src into dst, creating it.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
}
