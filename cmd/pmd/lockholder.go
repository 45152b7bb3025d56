package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/pmd-dev/pmd/internal/engine"
	"golang.org/x/sys/unix"
)

// lockHolder says who holds the lock of the data directory dir: "another pmd (pid N) is
// running on DIR", the pid read off /proc/locks (Linux), or without it where that does
// not tell (another system, another pid namespace, a lock gone since).
func lockHolder(dir string) string {
	if pid := lockPID(filepath.Join(dir, engine.LockFile)); pid > 0 {
		return fmt.Sprintf("another pmd (pid %d) is running on %s", pid, dir)
	}
	return fmt.Sprintf("another pmd is running on %s", dir)
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
