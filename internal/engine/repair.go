package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// RepairPlan is the offline repair of a data directory: the log's (log.PlanRepair: cut
// the torn end as the next start would, replace every damaged record by a void record at
// the same position, keeping the removed bytes in a quarantine file), and, when that
// changes anything, the removal of the index, which may point at voided positions: the
// next start rebuilds it from the repaired log. A cluster node's directory (one with
// RaftDir) gets log.PlanReplicaRepair: its log must end at an intact commit record, which
// carries the Raft index the store applied, so damage after the last one is cut, for the
// cluster to write it again, rather than voided. A RepairPlan holds the directory's lock
// from PlanRepair to Close, so that nothing changes the directory in between.
type RepairPlan struct {
	Dir     string
	Actions []pmdlog.RepairAction // the log's, in the order Apply does them

	log     *pmdlog.RepairPlan
	lock    *flock.Flock
	applied bool
}

// PlanRepair takes the lock of the data directory dir (failing with an error matching
// ErrLocked if a pmd has it open), reads its whole log and plans its repair, changing
// nothing. A plan without Actions means there is nothing to repair. The error is for a
// directory that cannot be read or repaired, such as damage whose extent cannot be
// known (a *log.CorruptError). Close the plan to release the lock. progress, if not
// nil, is called from time to time and at the end with the bytes of the log read and to
// read.
func PlanRepair(dir string, progress func(done, total int64)) (*RepairPlan, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("pmd: repair: %w", err)
	}
	if _, err := readFormat(dir); err != nil {
		return nil, fmt.Errorf("pmd: repair %s: %w", dir, err)
	}
	logDir := filepath.Join(dir, LogDir)
	if _, err := os.Stat(logDir); err != nil {
		return nil, fmt.Errorf("pmd: repair %s: no log: %w", dir, err)
	}
	lock, err := Lock(dir)
	if err != nil {
		return nil, err
	}
	plan := pmdlog.PlanRepair
	if _, err := os.Stat(filepath.Join(dir, RaftDir)); err == nil {
		plan = pmdlog.PlanReplicaRepair
	} else if !errors.Is(err, fs.ErrNotExist) {
		lock.Unlock()
		return nil, fmt.Errorf("pmd: repair %s: %w", dir, err)
	}
	lp, err := plan(logDir, progress)
	if err != nil {
		lock.Unlock()
		return nil, fmt.Errorf("pmd: repair %s: %w", dir, err)
	}
	return &RepairPlan{Dir: dir, Actions: lp.Actions, log: lp, lock: lock}, nil
}

// Lines describes the plan for a person deciding whether to apply it, one line per
// action, then what becomes of the index; none for a plan with nothing to do.
func (p *RepairPlan) Lines() []string {
	if len(p.Actions) == 0 {
		return nil
	}
	var out []string
	for _, a := range p.Actions {
		out = append(out, a.String())
	}
	return append(out, fmt.Sprintf("remove the index (%s): the next start rebuilds it from the repaired log",
		filepath.Join(p.Dir, IndexDir)))
}

// DefaultQuarantine is the quarantine file of a repair of the data directory dir made at
// time now: dir/quarantine-<UTC timestamp>.bin.
func DefaultQuarantine(dir string, now time.Time) string {
	return filepath.Join(dir, quarantinePrefix+now.UTC().Format(repairQuarantineTime)+".bin")
}

// Apply carries the plan out: it does nothing for a plan without Actions. Otherwise it
// first removes the index (and the index checkpoint of a format 1 directory), so that no
// crash can leave an index pointing at a voided position, then applies the log's plan
// (log.RepairPlan.Apply), which appends every byte it removes to the file quarantine
// before it changes a segment. Run again after a crash (PlanRepair, Apply), it reaches
// the same result.
func (p *RepairPlan) Apply(quarantine string) error {
	if p.applied {
		return fmt.Errorf("pmd: repair %s: the plan was applied already", p.Dir)
	}
	if len(p.Actions) == 0 {
		return nil
	}
	p.applied = true
	if err := os.RemoveAll(filepath.Join(p.Dir, IndexDir)); err != nil {
		return fmt.Errorf("pmd: repair %s: remove the index: %w", p.Dir, err)
	}
	// A format 1 checkpoint stops the next start from cutting below its position.
	if err := os.Remove(filepath.Join(p.Dir, oldCkpt)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pmd: repair %s: remove the index checkpoint: %w", p.Dir, err)
	}
	if err := SyncFile(p.Dir); err != nil {
		return fmt.Errorf("pmd: repair %s: %w", p.Dir, err)
	}
	if err := p.log.Apply(quarantine); err != nil {
		return fmt.Errorf("pmd: repair %s: %w", p.Dir, err)
	}
	return nil
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
