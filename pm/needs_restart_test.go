package pm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestAWriteStoppedUntilARestartFailsRun: a store that stopped writing until a restart
// (its index could not take a durable batch) refuses writes as unavailable, as a full
// disk does, but never recovers by itself. The manager's and the subscription's waits
// for a full disk give up on it, with the store's error, so that Run fails as it did
// before they waited and pmd serve exits for its supervisor to restart it; they waited
// for ever, with a warning to free the disk.
func TestAWriteStoppedUntilARestartFailsRun(t *testing.T) {
	transient := &pmd.UnavailableError{Cause: fmt.Errorf("write log: %w", syscall.ENOSPC)}
	sticky := &pmd.UnavailableError{Cause: errors.New("index: closed"), NeedsRestart: true}
	store, err := pmd.Open(filepath.Join(t.TempDir(), "data"), pmd.Options{Logger: slog.New(slog.DiscardHandler), NoScrub: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	m, err := New(store, Definition[int]{
		Name: "M", Handles: []string{"E"}, ProcessID: DataField("id"), Init: func(string) int { return 0 },
		Apply: func(s int, _ pmd.Event) int { return s }, Decide: func(int) []Command { return nil },
	}, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		errs  []error // what the write returns at each try, nil past the end
		want  error
		tries int
	}{
		{name: "written", tries: 1},
		{name: "full disk, then written", errs: []error{transient, transient}, tries: 3},
		{name: "stopped until a restart", errs: []error{sticky}, want: pmd.ErrNeedsRestart, tries: 1},
		{name: "full disk, then stopped until a restart", errs: []error{transient, sticky}, want: pmd.ErrNeedsRestart, tries: 2},
		{name: "another error", errs: []error{pmd.ErrClosed}, want: pmd.ErrClosed, tries: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, e := range tc.errs {
				if got, want := waitable(e), e == transient; got != want {
					t.Errorf("waitable(%v) = %v, want %v", e, got, want)
				}
			}
			tries := 0
			err := m.untilWritable(context.Background(), "the test waits", func() error {
				tries++
				if tries <= len(tc.errs) {
					return tc.errs[tries-1]
				}
				return nil
			})
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("untilWritable: %v, want %v", err, tc.want)
			}
			if tries != tc.tries {
				t.Errorf("%d tries, want %d", tries, tc.tries)
			}
		})
	}
}
