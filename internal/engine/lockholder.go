package engine

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// LockedError is the error of Open and of the offline tools (Verify, PlanRepair) for a
// data directory another process has open: it matches ErrLocked, and says which
// process holds the lock where that is known.
type LockedError struct {
	Dir string
	// PID is the process holding the directory's lock, read off /proc/locks (Linux); 0
	// where that does not tell (another system, another pid namespace, a lock gone since).
	PID int
}

func (e *LockedError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = fmt.Sprintf("another process (pid %d)", e.PID)
	}
	return fmt.Sprintf("pmd: %s is in use by %s: %v", e.Dir, who, ErrLocked)
}

// Is makes errors.Is(err, ErrLocked) hold.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// lockHolder is the pid of the process holding the flock of the file path, from
// /proc/locks, whose lines read "1: FLOCK ADVISORY WRITE PID MAJOR:MINOR:INODE 0 EOF"
// (MAJOR and MINOR in hex); 0 if none is found.
func lockHolder(path string) int {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0
	}
	file := fmt.Sprintf("%02x:%02x:%d", unix.Major(uint64(st.Dev)), unix.Minor(uint64(st.Dev)), st.Ino)
	f, err := os.Open("/proc/locks")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// A waiting lock's line has "->" after its number: it holds nothing.
		if len(fields) < 6 || fields[1] != "FLOCK" || fields[5] != file {
			continue
		}
		if pid, err := strconv.Atoi(fields[4]); err == nil && pid > 0 {
			return pid
		}
	}
	return 0
}
