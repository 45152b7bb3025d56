package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// tasks runs the long-lived work of the config file (process managers, subscriptions)
// in goroutines until stop. The first to fail calls failed, once: the daemon then shuts
// down rather than serve without it.
type tasks struct {
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	failOnce sync.Once
	mu       sync.Mutex
	errs     []error
}

// start derives the context the tasks run in: stop cancels it.
func (t *tasks) start(ctx context.Context) context.Context {
	ctx, t.cancel = context.WithCancel(ctx)
	return ctx
}

// run runs fn, the work of the kind named name ("process manager", "CateringMatch"), in a
// goroutine.
func (t *tasks) run(ctx context.Context, kind, name string, fn func(context.Context) error, logger *slog.Logger, failed func()) {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		if err := fn(ctx); err != nil {
			logger.Error(kind+" stopped", "name", name, "err", err)
			t.mu.Lock()
			t.errs = append(t.errs, fmt.Errorf("%s %s: %w", kind, name, err))
			t.mu.Unlock()
			t.failOnce.Do(failed)
		}
	}()
}

// stop stops the tasks and waits for them (each writes where it stands). It returns the
// errors that stopped any of them.
func (t *tasks) stop() error {
	if t.cancel != nil {
		t.cancel()
	}
	t.wg.Wait()
	t.mu.Lock()
	defer t.mu.Unlock()
	return errors.Join(t.errs...)
}
