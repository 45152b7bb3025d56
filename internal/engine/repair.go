package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
	"github.com/pmd-dev/pmd/index"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// RepairPlan is the offline repair of a data directory: the log's (log.PlanRepair: cut
// the torn end as the next start would, replace every damaged record by a void record at
// the same position, and every position a damaged sealed segment hides (a segment file
// missing after it, the segment cut short or unframeable without its offsets file) whose
// record it cannot frame intact from the entries before the damage (records past framing
// damage are never kept; log.RepairAction's Unconfirmed counts, as a lower bound, those
// past the last damage that look intact but are voided), keeping the removed bytes in a
// quarantine file), and, when that
// changes anything, the removal of the index, which may point at voided positions: the
// next start rebuilds it from the repaired log; where the repaired log ends below the
// position the index held on disk (cut or not), the plan says so and Apply leaves RebuildFile naming the loss, for
// the next start to fill those positions with void records and report it, as Open does
// when it finds the loss (lostBelowIndex). A cluster node's directory (one with
// RaftDir) gets log.PlanReplicaRepair: the store reads the Raft index it applied off its
// log's last commit record, which a void record does not carry, so damaged records after
// the last intact one that Raft writes again at the next start (RepairOptions.Replayed)
// are cut, for Raft's replay to write them again, rather than voided. A RepairPlan holds
// the directory's lock from PlanRepair to Close, so that nothing changes the directory
// in between.
type RepairPlan struct {
	Dir     string
	Actions []pmdlog.RepairAction // the log's, in the order Apply does them
	Replica bool                  // the directory is a cluster node's (it has RaftDir)
	// Unrepaired is the damage outside the log that the next start fails on and a
	// repair does not change, each saying what to do about it: a STORE_ID that does not
	// read (a new id, or the cluster's, is for the operator to choose), or a lost log
	// (LostLogError: only a copy brings it back).
	Unrepaired []string

	log     *pmdlog.RepairPlan
	lock    *flock.Flock
	applied bool
	// lost, when not nil, is the loss of the synced records at positions lostFrom (the
	// log's cut) to lostHeld (the index's on disk, or the last the log's records past
	// its cut show written): lostBelowIndex.
	lost               *pmdlog.CorruptError
	lostFrom, lostHeld uint64
	lostWhy            string // what shows that the records up to lostHeld had been synced
}

// PlanRepair takes the lock of the data directory dir (failing with an error matching
// ErrLocked if a pmd has it open), reads its whole log and plans its repair, changing
// nothing. A plan without Actions means there is nothing in the log to repair (its
// Unrepaired lists damage elsewhere that the next start fails on). The error is for a
// directory that cannot be read or repaired, such as damage whose extent cannot be
// known (a *log.CorruptError). Close the plan to release the lock. progress, if not
// nil, is called from time to time and at the end with the bytes of the log read and to
// read.
func PlanRepair(dir string, progress func(done, total int64)) (*RepairPlan, error) {
	return PlanRepairWith(dir, RepairOptions{Progress: progress})
}

// RepairOptions are the options of PlanRepairWith.
type RepairOptions struct {
	// Progress, if not nil, is called from time to time and at the end with the bytes of
	// the log read and to read.
	Progress func(done, total int64)
	// Replayed, for a cluster node's directory (one with RaftDir), gives the store
	// position above which the node's Raft state writes the store's records again at its
	// next start (the cluster package reads it off its snapshots and Raft log). It is
	// called, with the directory's lock held, only if the log would end at damaged
	// records after its last intact commit record (log.PlanReplicaRepair). nil, or an
	// error, fails such a plan: which of them Raft writes again cannot be told.
	Replayed func() (uint64, error)
}

// PlanRepairWith is PlanRepair with options.
func PlanRepairWith(dir string, opts RepairOptions) (*RepairPlan, error) {
	progress := opts.Progress
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("pmd: repair: %w", err)
	}
	_, err := readFormat(dir)
	lost := (*LostLogError)(nil)
	if err != nil && !errors.As(err, &lost) {
		return nil, fmt.Errorf("pmd: repair %s: %w", dir, err)
	}
	logDir := filepath.Join(dir, LogDir)
	if _, err := os.Stat(logDir); err != nil && lost == nil {
		return nil, fmt.Errorf("pmd: repair %s: no log: %w", dir, err)
	}
	lock, err := Lock(dir)
	if err != nil {
		return nil, err
	}
	if lost != nil {
		// Nothing in a log to repair: only a copy of the log brings the store back.
		return &RepairPlan{Dir: dir, lock: lock, Unrepaired: []string{lost.Error()}}, nil
	}
	if _, err := readID(dir); errors.Is(err, fs.ErrPermission) {
		// Not damage: the user, not the store, is wrong, and would repair it as another.
		lock.Unlock()
		return nil, fmt.Errorf("pmd: repair %s: %w", dir, err)
	}
	replica := false
	if _, err := os.Stat(filepath.Join(dir, RaftDir)); err == nil {
		replica = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		lock.Unlock()
		return nil, fmt.Errorf("pmd: repair %s: %w", dir, err)
	}
	var lp *pmdlog.RepairPlan
	if replica {
		lp, err = pmdlog.PlanReplicaRepair(logDir, opts.Replayed, progress)
	} else {
		lp, err = pmdlog.PlanRepair(logDir, progress)
	}
	if err != nil {
		lock.Unlock()
		return nil, fmt.Errorf("pmd: repair %s: %w", dir, err)
	}
	p := &RepairPlan{Dir: dir, Actions: lp.Actions, Replica: replica, log: lp, lock: lock}
	if _, err := readID(dir); err != nil {
		p.Unrepaired = append(p.Unrepaired, err.Error())
	}
	if !replica {
		// A cluster node's positions are the cluster's: Raft applies the lost entries
		// again at the next start, as after a crash.
		p.lostBelowIndex()
	}
	return p, nil
}

// lostBelowIndex notes the loss of the synced records between the end of the repaired
// log and the position the index held on disk, if the log ends below it (cut there, or
// ending there at a record boundary with only void records to write elsewhere): the
// index is flushed only after the log is synced, so those records were acknowledged. The
// repair removes the index, which alone says so; Apply leaves RebuildFile naming the
// loss instead, as Open does when it finds the log ends below the index, and the next
// start fills those positions with void records, so that no later write takes them
// again (a subscriber past them would never read it), and reports the loss. An index
// that cannot be read says nothing (pmd verify reports it); nor does one a RebuildFile
// already condemns, unless that names such a loss. A store that ran with syncing off
// may have lost them to a power cut, which repair cannot tell: the loss says so. A cut
// of framing damage in the log's last segment that records of later synced writes past
// it show durable (log.RepairAction.Written) loses the records up to the last position
// those show written, even above the index's position (the index is flushed only from
// time to time): those positions are filled the same way.
func (p *RepairPlan) lostBelowIndex() {
	if len(p.Actions) == 0 {
		return // nothing to apply: the next start finds any such loss itself
	}
	var cut *pmdlog.RepairAction
	var written uint64 // the last position the log's records past its cut show written
	for i, a := range p.Actions {
		if a.Op == pmdlog.RepairCut && (cut == nil || a.Position < cut.Position) {
			cut = &p.Actions[i]
		}
		written = max(written, a.Written)
	}
	last := p.log.Last() // void records keep their positions
	var held uint64
	if why, err := os.ReadFile(filepath.Join(p.Dir, RebuildFile)); err == nil {
		held, _, _ = parseLostMarker(why)
	} else if dir := filepath.Join(p.Dir, IndexDir); dirExists(dir) {
		if idx, err := index.Open(dir, index.Options{ReadOnly: true, Logger: quietLogger()}); err == nil {
			held = idx.Position()
			idx.Close()
		}
	}
	if held <= last && written <= last {
		return
	}
	// The index's position on disk says the records up to it had been synced (unless
	// the store ran with syncing off: because and qualified say so); records of later synced
	// writes past framing damage in the log's last segment (a cut past a refusal) say
	// the records up to the last they show written had been, whatever the syncing.
	shown := fmt.Sprintf("the index held position %d on disk", held)
	because, qualified := shown+"; "+syncingOff, " ("+syncingOff+")"
	switch {
	case written > held:
		shown = fmt.Sprintf("records of writes made after the damaged bytes were synced, past the damage, show position %d written", written)
		because, qualified, held = shown, "", written
	case written == held:
		shown += ", and records of later writes past the damage show it written"
		because, qualified = shown, ""
	}
	ends := fmt.Sprintf("the repaired log ends at position %d", last)
	p.lost = &pmdlog.CorruptError{}
	if cut != nil {
		ends = fmt.Sprintf("a repair cut the log after position %d", last)
		p.lost.Segment, p.lost.Offset = cut.Segment, cut.Offset
	}
	p.lostFrom, p.lostHeld, p.lostWhy = last+1, held, because
	p.lost.Reason = fmt.Sprintf("%s, but %s: the synced records from position %d to %d are lost%s; "+
		"their positions are filled with void records, so that no later write takes them again", ends, shown, last+1, held, qualified)
}

// syncingOff qualifies a loss that the index's position on disk shows: a store that ran
// with syncing off flushes its index past log bytes a power cut may lose.
const syncingOff = "with syncing off, a power cut explains it"

// Lines describes the plan for a person deciding whether to apply it, one line per
// action, then what becomes of the index; none for a plan with nothing to do.
func (p *RepairPlan) Lines() []string {
	if len(p.Actions) == 0 {
		return nil
	}
	var out []string
	voids := 0
	for _, a := range p.Actions {
		out = append(out, a.String())
		if a.Op == pmdlog.RepairVoid {
			voids += a.Records
		}
	}
	if p.lost != nil {
		out = append(out, fmt.Sprintf("fill positions %d to %d with void records at the next start, which reports them lost: their records had been synced (%s), and no later write may take their positions",
			p.lostFrom, p.lostHeld, p.lostWhy))
	}
	out = append(out, fmt.Sprintf("remove the index (%s): the next start rebuilds it from the repaired log",
		filepath.Join(p.Dir, IndexDir)))
	if p.Replica && voids > 0 {
		out = append(out, fmt.Sprintf("note: this is a cluster node's data directory: with %d void record(s) in place of events the other members hold, this node's copy of the store will differ from the cluster's, "+
			"and no Raft replay writes them again; if another member holds them, rebuild this node from the cluster instead (stop it, remove it from the cluster with pmd cluster remove and its node id, then start it with an empty data directory and --join)", voids))
	}
	return out
}

// DefaultQuarantine is the quarantine file of a repair of the data directory dir made at
// time now: dir/quarantine-<UTC timestamp>.bin.
func DefaultQuarantine(dir string, now time.Time) string {
	return filepath.Join(dir, quarantinePrefix+now.UTC().Format(repairQuarantineTime)+".bin")
}

// Apply carries the plan out: it does nothing for a plan without Actions. Otherwise it
// applies the log's plan (log.RepairPlan.Apply), which first adds every byte it removes
// to the file quarantine (through a temporary file renamed over it, so that a crash
// leaves it whole or as it was); then, before any segment changes, it removes the index
// (and the index checkpoint of a format 1 directory), so that no crash can leave an index
// pointing at a voided position. A quarantine that cannot be written leaves the index.
// Run again after a crash (PlanRepair, Apply), it reaches the same result.
func (p *RepairPlan) Apply(quarantine string) error {
	if p.applied {
		return fmt.Errorf("pmd: repair %s: the plan was applied already", p.Dir)
	}
	if len(p.Actions) == 0 {
		return nil
	}
	p.applied = true
	p.log.BeforeChange = func() error {
		if p.lost != nil {
			// Before the index goes: synced, it says what the index held.
			if err := ReplaceFile(filepath.Join(p.Dir, RebuildFile), lostMarker(p.lostHeld, p.lost), true); err != nil {
				return fmt.Errorf("mark the lost positions for the next start: %w", err)
			}
		}
		if err := os.RemoveAll(filepath.Join(p.Dir, IndexDir)); err != nil {
			return fmt.Errorf("remove the index: %w", err)
		}
		// It spoke of the index removed; the rebuild replays from position 1.
		if err := os.Remove(filepath.Join(p.Dir, SkippedFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", SkippedFile, err)
		}
		// A format 1 checkpoint stops the next start from cutting below its position.
		if err := os.Remove(filepath.Join(p.Dir, oldCkpt)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove the index checkpoint: %w", err)
		}
		return SyncFile(p.Dir)
	}
	if err := p.log.Apply(quarantine); err != nil {
		return fmt.Errorf("pmd: repair %s: %w", p.Dir, err)
	}
	return nil
}

// dirExists says whether path is a directory.
func dirExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// Close releases the directory's lock.
func (p *RepairPlan) Close() error {
	if p.lock == nil {
		return nil
	}
	err := p.lock.Unlock()
	p.lock = nil
	return err
}
