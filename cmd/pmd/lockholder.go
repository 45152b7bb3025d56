package main

import (
	"errors"
	"fmt"

	"github.com/pmd-dev/pmd/internal/engine"
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
// pid is the engine's (engine.LockedError), left out where it is not known. Any other
// err is returned as it is.
func lockedErr(dir string, err error, or string) error {
	if !errors.Is(err, engine.ErrLocked) {
		return err
	}
	who := "another pmd"
	if le := (*engine.LockedError)(nil); errors.As(err, &le) && le.PID > 0 {
		who = fmt.Sprintf("another pmd (pid %d)", le.PID)
	}
	return &lockedError{fmt.Sprintf("data directory %s is in use by %s: stop it first%s", dir, who, or), err}
}
