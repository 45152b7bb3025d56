package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/powercut"
)

// The crash-step tests run a pmd command (repair --yes, scavenge) in a child process
// (this test binary, re-executed) on a FUSE disk (internal/powercut) and kill it with
// SIGKILL just before its Nth change to the disk (a file made, written, truncated,
// fsynced, renamed or removed), for a sample of N (every N with PMD_CRASH_STEPS=all),
// each time with and without a power cut after the kill. After each crash the store must open and read every event an
// uninterrupted run keeps, at its position, and the command run again must reach the
// uninterrupted run's result.

// crashStepEnv names the command the child runs: its arguments, one a line.
const crashStepEnv = "PMD_CRASH_STEP_ARGS"

func TestCrashStepChild(t *testing.T) {
	args := os.Getenv(crashStepEnv)
	if args == "" {
		t.Skip("run by the crash-step tests as their child process")
	}
	os.Exit(run(context.Background(), strings.Split(args, "\n"), os.Stdout, os.Stderr))
}

// crashStep is one run of the child that a kill stopped (or not).
type crashStep struct {
	changes []string // the changes the child made, as "op path"
	killed  bool     // the child was killed before its last change
	// unsynced are the names the child changed that no fsync of their directory made
	// durable (powercut.Disk.UnsyncedNames).
	unsynced []string
}

// checkNamesSynced fails the test if a run that was not killed left a name of the
// data directory, its quarantines or its log segments not durable: every file it made
// and renamed into place, or removed, must survive a power cut. The index is pebble's,
// the log's offsets files are rebuilt when lost, and a temporary file removed may come
// back (Open removes it).
func checkNamesSynced(t *testing.T, step crashStep) {
	t.Helper()
	for _, what := range step.unsynced {
		if strings.Contains(what, "/index/") || strings.Contains(what, "/offsets/") ||
			(strings.HasPrefix(what, "remove ") && strings.HasSuffix(what, ".tmp")) {
			continue
		}
		t.Errorf("not made durable by an fsync of its directory: %s", what)
	}
}

// runCrashStep copies the directory tmpl to a fresh disk, runs the child with args
// (in which the string DISK stands for the disk's mount point) and kills it just before
// its change number kill (counting from 1; 0: never). With cut, the disk then loses what
// was not synced. It returns the disk's backing directory, unmounted, and what the child did.
func runCrashStep(t *testing.T, tmpl string, args []string, kill int, cut bool) (string, crashStep) {
	t.Helper()
	backing, mnt := t.TempDir(), t.TempDir()
	if err := os.CopyFS(backing, os.DirFS(tmpl)); err != nil {
		t.Fatal(err)
	}
	disk, err := powercut.Mount(backing, mnt)
	if err != nil {
		t.Skipf("no power cuts here: %v", err)
	}
	defer func() {
		if err := disk.Unmount(); err != nil {
			t.Error(err)
		}
	}()
	var step crashStep
	var mu sync.Mutex
	started := make(chan int, 1) // the child's pid
	pid := 0
	errKilled := errors.New("killed")
	disk.BeforeChange(func(op, rel string) error {
		mu.Lock()
		defer mu.Unlock()
		if step.killed {
			return errKilled
		}
		step.changes = append(step.changes, op+" "+rel)
		if len(step.changes) != kill {
			return nil
		}
		step.changes = step.changes[:kill-1] // not made
		if pid == 0 {
			pid = <-started
		}
		syscall.Kill(pid, syscall.SIGKILL)
		step.killed = true
		return errKilled
	})
	childArgs := make([]string, len(args))
	for i, a := range args {
		childArgs[i] = strings.ReplaceAll(a, "DISK", mnt)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashStepChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashStepEnv+"="+strings.Join(childArgs, "\n"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started <- cmd.Process.Pid
	err = cmd.Wait()
	disk.BeforeChange(nil)
	mu.Lock()
	defer mu.Unlock()
	if !step.killed && err != nil {
		t.Fatalf("the child failed: %v\n%s", err, out.String())
	}
	step.unsynced = disk.UnsyncedNames()
	if cut {
		if err := disk.Cut(); err != nil {
			t.Fatal(err)
		}
	}
	return backing, step
}

// crashStepsEnv, set to "all", makes the crash-step tests kill their child before every
// change it makes, rather than before a sample of them: minutes rather than seconds.
const crashStepsEnv = "PMD_CRASH_STEPS"

// crashSteps returns the numbers (from 1) of the changes of an uninterrupted run to
// kill the child before: all of them if crashStepsEnv says so; otherwise a sample of
// at most 16, evenly spaced from a point that differs from run to run, of the changes
// that are neither inside the index directory (pebble's files: Open's crashes there are
// other tests' business, and a repair removes the directory whole), nor of an offsets
// file (rebuilt when lost), nor a third or later write in a row to one file (the second
// already tears it). Which were chosen is logged.
func crashSteps(t *testing.T, changes []string) []int {
	t.Helper()
	var steps []int
	for i, c := range changes {
		if os.Getenv(crashStepsEnv) != "all" && (strings.Contains(c, "/index/") || strings.Contains(c, "/offsets/") ||
			i >= 2 && strings.HasPrefix(c, "write ") && changes[i-1] == c && changes[i-2] == c) {
			continue
		}
		steps = append(steps, i+1)
	}
	const most = 16
	if os.Getenv(crashStepsEnv) == "all" || len(steps) <= most {
		return steps
	}
	stride := (len(steps) + most - 1) / most
	var sample []int
	for i := int(time.Now().UnixNano() % int64(stride)); i < len(steps); i += stride {
		sample = append(sample, steps[i])
	}
	t.Logf("killing before changes %v of %d (%s=all for every one)", sample, len(changes), crashStepsEnv)
	return sample
}

// crashAtEachStep runs args in a child on a copy of tmpl killed before each change
// crashSteps picks of full's (the uninterrupted run), with and without a power cut
// after the kill, and calls check on each copy's directory, with when saying where the
// child was killed.
func crashAtEachStep(t *testing.T, tmpl string, args []string, full crashStep, check func(dir, when string)) {
	t.Helper()
	for _, n := range crashSteps(t, full.changes) {
		for _, cut := range []bool{false, true} {
			when := fmt.Sprintf("killed before %q (change %d), power cut %t", full.changes[n-1], n, cut)
			dir, step := runCrashStep(t, tmpl, args, n, cut)
			if !step.killed {
				t.Fatalf("%s: the child made %d changes and was not killed", when, len(step.changes))
			}
			check(dir, when)
		}
	}
}

// storedEvent is what a read returns of an event, for comparing reads.
type storedEvent struct {
	Position uint64
	Stream   string
	Version  uint64
	Type     string
	Data     string
}

// readEvents returns every event of the store in dir as $all reads it, by id; the
// store is opened and closed.
func readEvents(t *testing.T, dir string) map[uuid.UUID]storedEvent {
	t.Helper()
	s, err := pmd.Open(dir, pmd.Options{NoScrub: true, Logger: quiet(), SegmentSize: crashStepSegment})
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	defer s.Close()
	got := make(map[uuid.UUID]storedEvent)
	for e, err := range s.ReadAll(context.Background(), pmd.ReadOptions{}) {
		if err != nil {
			t.Fatalf("read %s: %v", dir, err)
		}
		got[e.ID] = storedEvent{e.Position, e.Stream, e.Version, e.Type, fmt.Sprint(e.Data)}
	}
	return got
}

// checkEventsReadable opens a copy of the store in dir (Open may change it) and checks
// that it reads each event of want by its id as want has it.
func checkEventsReadable(t *testing.T, dir string, want map[uuid.UUID]storedEvent, when string) {
	t.Helper()
	for id, err := range readableEvents(t, dir, want, when) {
		if err != nil {
			t.Fatalf("%s: event %s (%+v): %v", when, id, want[id], err)
		}
	}
}

// readableEvents opens a copy of the store in dir (Open may change it) and reads each
// event of want by its id, returning for each the error of a read that failed or did
// not read it as want has it.
func readableEvents(t *testing.T, dir string, want map[uuid.UUID]storedEvent, when string) map[uuid.UUID]error {
	t.Helper()
	cp := t.TempDir()
	if err := os.CopyFS(cp, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	s, err := pmd.Open(cp, pmd.Options{NoScrub: true, Logger: quiet(), SegmentSize: crashStepSegment})
	if err != nil {
		t.Fatalf("%s: the store does not open: %v", when, err)
	}
	defer s.Close()
	out := make(map[uuid.UUID]error)
	for id, w := range want {
		e, err := s.Event(context.Background(), id)
		if got := (storedEvent{e.Position, e.Stream, e.Version, e.Type, fmt.Sprint(e.Data)}); err == nil && got != w {
			err = fmt.Errorf("reads %+v, want %+v", got, w)
		}
		out[id] = err
	}
	return out
}

// crashStepSegment is the segment size of the crash-step tests' stores: small, so that
// a few hundred events fill several segments.
const crashStepSegment = 4 << 10

// fillCrashStepStore makes a closed store in dir of a few segments, with the events whose
// data holds each of markers (to be damaged) in different segments, and returns how it
// reads.
func fillCrashStepStore(t *testing.T, dir string, markers []string, more func(s *pmd.Store)) map[uuid.UUID]storedEvent {
	t.Helper()
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, NoScrub: true, Logger: quiet(), SegmentSize: crashStepSegment})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 90 {
		data := map[string]any{"i": i, "pad": strings.Repeat("p", 100)}
		if i%30 == 15 && i/30 < len(markers) {
			// Big, so that the quarantine takes more than one write.
			data["mark"], data["pad"] = markers[i/30], strings.Repeat("q", 2500)
		}
		if _, err := s.Append(ctx, "Order$"+strconv.Itoa(i%7), pmd.Any, pmd.EventData{Type: "Placed", Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	if more != nil {
		more(s)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return readEvents(t, dir)
}

// quarantineEntry is one entry of a quarantine file (log/FORMAT.md).
type quarantineEntry struct {
	segment string
	offset  int64
	bytes   []byte
}

// parseQuarantine reads the quarantine file at path whole, failing the test on an entry
// cut short or bytes that are no entry.
func parseQuarantine(t *testing.T, path, when string) []quarantineEntry {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []quarantineEntry
	for off := 0; off < len(b); {
		line, _, ok := bytes.Cut(b[off:], []byte("\n"))
		if !ok || !bytes.HasPrefix(line, []byte("pmd-quarantine 1 ")) {
			t.Fatalf("%s: the quarantine file %s holds no entry header at offset %d: %q", when, path, off, b[off:min(len(b), off+80)])
		}
		var e quarantineEntry
		n := int64(-1)
		fields, _, _ := strings.Cut(string(line), " reason=") // the reason is free text
		for _, f := range strings.Fields(fields) {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "segment":
				e.segment = v
			case "offset":
				e.offset, _ = strconv.ParseInt(v, 10, 64)
			case "bytes":
				n, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		start := off + len(line) + 1
		end := start + int(n)
		if n < 0 || end >= len(b) || b[end] != '\n' {
			t.Fatalf("%s: the quarantine file %s has an entry cut short at offset %d: %q", when, path, off, line)
		}
		e.bytes = b[start:end]
		out = append(out, e)
		off = end + 1
	}
	return out
}

// TestRepairCrashAtAnyStep kills pmd repair --yes before each of its changes to the
// disk (crashSteps), with and without a power cut after the kill, for each kind of damage it
// repairs. After each crash the store opens (if it opened before the repair) and reads
// every event an uninterrupted repair keeps, at its position; the quarantine file is
// whole and holds only bytes of the damaged segments as they were; and pmd repair --yes
// run again (with the same --quarantine) reaches the result of an uninterrupted repair,
// its quarantine file holding the damaged records' bytes, after which nothing is left to
// repair.
func TestRepairCrashAtAnyStep(t *testing.T) {
	if testing.Short() {
		t.Skip("runs pmd repair dozens of times")
	}
	// A bit flipped in the middle of each marker damages its event; the first half of
	// the marker stays as it was.
	markers := []string{"FIRST-MARKED-X", "SECOND-MARKED-X"}
	for _, tc := range []struct {
		name string
		// damage damages the closed store whose log segments are segs, and returns
		// the markers of the events whose bytes the quarantine must hold.
		damage func(t *testing.T, segs []string) []string
		opens  bool // the damaged store opens
	}{
		{"damaged records and a torn tail", func(t *testing.T, segs []string) []string {
			for _, m := range markers {
				flipMarker(t, segs, m)
			}
			appendBytes(t, segs[len(segs)-1], []byte{0x50, 1, 2, 3}) // a write cut short
			return markers
		}, true},
		{"a sealed segment missing", func(t *testing.T, segs []string) []string {
			if err := os.Remove(segs[2]); err != nil {
				t.Fatal(err)
			}
			return nil
		}, false},
		{"framing damage without the offsets file", func(t *testing.T, segs []string) []string {
			b, err := os.ReadFile(segs[1])
			if err != nil {
				t.Fatal(err)
			}
			off := 0
			for range 3 { // the fourth entry's length prefix
				n, k := uvarint(b[off:])
				off += k + n
			}
			b[off] = 0xff
			if err := os.WriteFile(segs[1], b, 0o640); err != nil {
				t.Fatal(err)
			}
			sidecar := filepath.Join(filepath.Dir(segs[1]), "offsets", filepath.Base(segs[1])+".offsets")
			if err := os.Remove(sidecar); err != nil {
				t.Fatal(err)
			}
			return nil
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := t.TempDir()
			data := filepath.Join(tmpl, "data")
			before := fillCrashStepStore(t, data, markers, nil)
			segs := segmentsOf(t, data)
			mustHold := tc.damage(t, segs)
			original := make(map[string][]byte)
			for _, seg := range segs {
				if b, err := os.ReadFile(seg); err == nil {
					original[filepath.Base(seg)] = b
				}
			}

			args := []string{"repair", "--yes", "--quarantine", "DISK/q.bin", "DISK/data"}
			checkQuarantine := func(t *testing.T, dir, when string, complete bool) {
				t.Helper()
				var held []byte
				for _, e := range parseQuarantine(t, filepath.Join(dir, "q.bin"), when) {
					seg := original[e.segment]
					if e.offset+int64(len(e.bytes)) > int64(len(seg)) || !bytes.Equal(seg[e.offset:e.offset+int64(len(e.bytes))], e.bytes) {
						t.Fatalf("%s: the quarantine's entry for segment %s offset %d holds bytes the segment did not", when, e.segment, e.offset)
					}
					held = append(held, e.bytes...)
				}
				for _, m := range mustHold {
					if complete && !bytes.Contains(held, []byte(m[:len(m)/2])) {
						t.Fatalf("%s: the quarantine lacks the damaged record of %s", when, m)
					}
				}
			}

			// The uninterrupted repair, counting its changes: what it keeps is every
			// event as before, but those of the damaged records.
			dir, full := runCrashStep(t, tmpl, args, 0, false)
			checkNamesSynced(t, full)
			checkQuarantine(t, dir, "after the repair", true)
			want := readEvents(t, filepath.Join(dir, "data"))
			for id, e := range want {
				if before[id] != e {
					t.Fatalf("after the repair event %s reads %+v, want %+v as before", id, e, before[id])
				}
			}
			for id, e := range before {
				if _, ok := want[id]; !ok && len(mustHold) > 0 && !strings.Contains(e.Data, "MARKED") {
					t.Fatalf("the repair lost event %+v, which was not damaged", e)
				}
			}
			t.Logf("the repair keeps %d of %d events, making %d changes", len(want), len(before), len(full.changes))
			// Those of them the damaged store reads must stay readable through any
			// crash of the repair.
			readable := make(map[uuid.UUID]storedEvent)
			if tc.opens {
				for id, err := range readableEvents(t, data, want, "before the repair") {
					if err == nil {
						readable[id] = want[id]
					}
				}
			}

			crashAtEachStep(t, tmpl, args, full, func(dir, when string) {
				checkQuarantine(t, dir, when, false)
				if tc.opens {
					checkEventsReadable(t, filepath.Join(dir, "data"), readable, when)
				}
				code, out, errOut := runPMD(t, context.Background(), "repair", "--yes", "--quarantine", filepath.Join(dir, "q.bin"), filepath.Join(dir, "data"))
				if code != exitOK {
					t.Fatalf("%s: the repair run again: exit %d\n%s%s", when, code, out, errOut)
				}
				checkQuarantine(t, dir, when+", then repaired again", true)
				if got := readEvents(t, filepath.Join(dir, "data")); !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: after the repair run again the store reads %d events, want the %d of an uninterrupted repair", when, len(got), len(want))
				}
				code, out, _ = runPMD(t, context.Background(), "repair", filepath.Join(dir, "data"))
				if code != exitOK || !strings.Contains(out, "nothing to repair") {
					t.Fatalf("%s: a third repair: exit %d\n%s", when, code, out)
				}
			})
		})
	}
}

// segmentsOf returns the log segment files of the closed store in dir, in order.
func segmentsOf(t *testing.T, dir string) []string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "log", strings.Repeat("[0-9]", 20)))
	if err != nil || len(segs) < 3 {
		t.Fatalf("segments %q, %v: want 3 or more", segs, err)
	}
	return segs
}

// flipMarker flips a bit in the middle of marker in the segment of segs that holds it,
// which must not be the last.
func flipMarker(t *testing.T, segs []string, marker string) {
	t.Helper()
	for i, seg := range segs {
		b, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		if j := bytes.Index(b, []byte(marker)); j >= 0 {
			if i == len(segs)-1 {
				t.Fatalf("%s is in the last segment", marker)
			}
			b[j+len(marker)/2] ^= 0x08
			if err := os.WriteFile(seg, b, 0o640); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("%s is in no segment", marker)
}

// TestScavengeCrashAtAnyStep kills pmd scavenge before each of its changes to the
// disk (crashSteps), with and without a power cut after the kill, in a store with dead events, an
// erased stream and quarantines pmd made (which the scavenge of an erasing store
// removes). After each crash the store opens and reads as before, every event at its
// position; pmd scavenge run again finishes the job (the quarantines gone, pmd verify
// content), after which a scavenge has nothing to rewrite.
func TestScavengeCrashAtAnyStep(t *testing.T) {
	if testing.Short() {
		t.Skip("runs pmd scavenge dozens of times")
	}
	tmpl := t.TempDir()
	data := filepath.Join(tmpl, "data")
	ctx := context.Background()
	want := fillCrashStepStore(t, data, nil, func(s *pmd.Store) {
		if err := s.DeleteStream(ctx, "Order$1", pmd.Any); err != nil {
			t.Fatal(err)
		}
		if err := s.SetRetention(ctx, "Order$2", pmd.Retention{MaxCount: 2}); err != nil {
			t.Fatal(err)
		}
		if err := s.EraseStream(ctx, "Order$3"); err != nil {
			t.Fatal(err)
		}
		for i := range 20 { // the erasure's segment sealed
			if _, err := s.Append(ctx, "Filler", pmd.Any, pmd.EventData{Type: "F", Data: map[string]any{"i": i, "pad": strings.Repeat("f", 200)}}); err != nil {
				t.Fatal(err)
			}
		}
		// An erasure in the newest segment, which the scavenge seals first.
		if _, err := s.Append(ctx, "Tail$1", pmd.Any, pmd.EventData{Type: "T", Data: map[string]any{"secret": "s"}}); err != nil {
			t.Fatal(err)
		}
		if err := s.EraseStream(ctx, "Tail$1"); err != nil {
			t.Fatal(err)
		}
	})
	qfile := filepath.Join(data, "quarantine-20260101T000000Z.bin")
	qdir := filepath.Join(data, "quarantine-20260101T000000.000000000Z")
	if err := os.WriteFile(qfile, []byte("erased bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(qdir, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"00000000000000000001", "00000000000000000002"} {
		if err := os.WriteFile(filepath.Join(qdir, name), []byte("erased bytes"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	args := []string{"scavenge", "--rate", "0", "DISK/data"}
	scavengeAgain := func(t *testing.T, dir, when string) string {
		t.Helper()
		code, out, errOut := runPMD(t, ctx, "scavenge", "--rate", "0", filepath.Join(dir, "data"))
		if code != exitOK {
			t.Fatalf("%s: scavenge: exit %d\n%s%s", when, code, out, errOut)
		}
		return out
	}
	checkScavenged := func(t *testing.T, dir, when string) {
		t.Helper()
		if got := readEvents(t, filepath.Join(dir, "data")); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: the store reads %d events, differently than the %d before the scavenge", when, len(got), len(want))
		}
		for _, q := range []string{qfile, qdir} {
			if _, err := os.Stat(filepath.Join(dir, "data", filepath.Base(q))); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("%s: the quarantine %s is still there (%v)", when, filepath.Base(q), err)
			}
		}
		code, out, errOut := runPMD(t, ctx, "verify", filepath.Join(dir, "data"))
		if code != exitOK {
			t.Fatalf("%s: verify: exit %d\n%s%s", when, code, out, errOut)
		}
	}

	dir, full := runCrashStep(t, tmpl, args, 0, false)
	checkNamesSynced(t, full)
	checkScavenged(t, dir, "after the scavenge")
	if out := scavengeAgain(t, dir, "after the scavenge"); !strings.Contains(out, " 0 rewritten") {
		t.Fatalf("a second scavenge: %s", out)
	}
	t.Logf("the scavenge makes %d changes", len(full.changes))

	crashAtEachStep(t, tmpl, args, full, func(dir, when string) {
		checkEventsReadable(t, filepath.Join(dir, "data"), want, when)
		scavengeAgain(t, dir, when)
		checkScavenged(t, dir, when+", then scavenged again")
		if out := scavengeAgain(t, dir, when); !strings.Contains(out, " 0 rewritten") {
			t.Fatalf("%s: a third scavenge: %s", when, out)
		}
	})
}
