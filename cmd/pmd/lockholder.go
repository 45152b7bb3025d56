package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/pmd-dev/pmd/internal/engine"
	"golang.org/x/sys/unix"
)

// lockedError is the error of a command that found its data directory locked by
// another process: it says so in place of the engine's error, which it wraps
// (engine.ErrLocked).
type lockedError struct {
	msg string
	err error
}

func (e *lockedError) Error() string { return e.msg }
func (e *lockedError) Unwrap() error { return e.err }

// lockedErr is what pmd serve and the offline commands say of the data directory dir
// when err, their error, is that another process holds it (engine.ErrLocked), in the
// same words for each: "data directory DIR is in use by another pmd (pid N): stop it
// first", then or, what else the command could do (", or serve another --data"). The
// pid is read off /proc/locks (Linux), and left out where that does not tell (another
// system, another pid namespace, a lock gone since). Any other err is returned as it is.
func lockedErr(dir string, err error, or string) error {
	if !errors.Is(err, engine.ErrLocked) {
		return err
	}
	who := "another pmd"
	if pid := lockPID(filepath.Join(dir, engine.LockFile)); pid > 0 {
		who = fmt.Sprintf("another pmd (pid %d)", pid)
	}
	return &lockedError{fmt.Sprintf("data directory %s is in use by %s: stop it first%s", dir, who, or), err}
}

// lockPID is the pid of the process holding the flock of the file path, from
// /proc/locks, whose lines read "1: FLOCK ADVISORY WRITE PID MAJOR:MINOR:INODE 0 EOF"
// (MAJOR and MINOR in hex); 0 if none is found.
func lockPID(path string) int {
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
