package engine_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd/internal/engine"
)

// TestLockedErrorNamesTheHolder: Open, Verify and PlanRepair of a data directory another
// Open holds fail with a *engine.LockedError matching ErrLocked and carrying the pid of
// the process holding the lock (this one), which its message names. The engine said only
// "in use by another process", and pmd's commands read /proc/locks themselves.
func TestLockedErrorNamesTheHolder(t *testing.T) {
	dir := t.TempDir()
	opts := engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NoScrub: true}
	e, err := engine.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	pid := fmt.Sprintf("(pid %d)", os.Getpid())
	for _, tc := range []struct {
		name string
		try  func() error
	}{
		{"Open", func() error { _, err := engine.Open(dir, opts); return err }},
		{"Verify", func() error { _, err := engine.Verify(t.Context(), dir, nil); return err }},
		{"PlanRepair", func() error { _, err := engine.PlanRepair(dir, nil); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.try()
			if !errors.Is(err, engine.ErrLocked) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), pid) {
				t.Fatalf("%v; want ErrLocked naming %s and %s", err, dir, pid)
			}
			var le *engine.LockedError
			if !errors.As(err, &le) || le.PID != os.Getpid() || le.Dir != dir {
				t.Fatalf("%#v; want a *LockedError of %s with pid %d", le, dir, os.Getpid())
			}
		})
	}
}
