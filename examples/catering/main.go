// Command catering runs the seed example of pmd: the CateringMatch process manager,
// embedded in a Go program with its own store.
//
//	go run ./examples/catering [-data DIR] [-timeout 2s]
//
// It confirms the menu of three orders: 42 by both sides, 43 by the customer only, 44
// by both with a duplicate. ConfirmOrder is issued once for 42 and once for 44; 43 gets
// CancelOrder when its timeout passes. The commands are handed to a Go handler that
// prints them, then the processes are listed. Run again on the -data directory of a run
// that ended, it appends the facts again and issues nothing more: every order is done.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

func main() {
	data := flag.String("data", "", "store directory (default: a temporary one, removed at exit)")
	timeout := flag.Duration("timeout", 2*time.Second, "how long an order may wait for its second confirmation")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *data, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "catering:", err)
		os.Exit(1)
	}
}

// facts are the confirmations the example appends, each to its sender's stream.
var facts = []struct {
	stream string
	typ    string
	order  string
}{
	{"Customer$ann", "CustomerConfirmedMenu", "42"},
	{"Customer$bob", "CustomerConfirmedMenu", "43"},
	{"Caterer$chez", "CatererConfirmedMenu", "44"},
	{"Caterer$chez", "CatererConfirmedMenu", "42"},
	{"Customer$cat", "CustomerConfirmedMenu", "44"},
	{"Customer$cat", "CustomerConfirmedMenu", "44"}, // she clicked twice
}

func run(ctx context.Context, out io.Writer, dir string, timeout time.Duration) error {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "catering-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	store, err := pmd.Open(dir, pmd.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer store.Close()

	// The handler receives every command at least once; it stops the example once the
	// last one it expects, the CancelOrder of 43, arrives.
	cancelled := make(chan struct{})
	var once sync.Once
	delivered := make(chan string, 16)
	manager, err := pm.New(store, CateringMatch(timeout), pm.Options{
		Deliver: func(_ context.Context, c pm.Command) error {
			delivered <- fmt.Sprintf("deliver %s for order %v (command %s)", c.Type, c.Data["order_id"], c.ID)
			if c.Type == "CancelOrder" {
				once.Do(func() { close(cancelled) })
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- manager.Run(ctx) }()

	for _, f := range facts {
		e := pmd.EventData{Type: f.typ, Data: map[string]any{"order_id": f.order}}
		if _, err := store.Append(ctx, f.stream, pmd.Any, e); err != nil {
			return err
		}
		fmt.Fprintf(out, "append %s %s for order %s\n", f.stream, f.typ, f.order)
	}
	wait := func() error {
		for {
			select {
			case line := <-delivered:
				fmt.Fprintln(out, line)
			case <-cancelled:
				return nil
			case err := <-done:
				return fmt.Errorf("the process manager stopped: %v", err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	// Once the facts are handled, order 43 waits for its deadline, unless a run before
	// this one on the same -data directory expired it: its CancelOrder, issued then, is
	// not issued again, and waiting for it would never end.
	if err := manager.WaitIdle(ctx); err != nil {
		return err
	}
	p, err := manager.Process(ctx, "43")
	if err != nil {
		return err
	}
	if p.Status == pm.StatusOpen {
		if err := wait(); err != nil {
			return err
		}
	}
	if err := manager.WaitIdle(ctx); err != nil {
		return err
	}
	for len(delivered) > 0 {
		fmt.Fprintln(out, <-delivered)
	}
	list, err := manager.Processes(ctx, "", 0)
	if err != nil {
		return err
	}
	for _, p := range list {
		fmt.Fprintf(out, "process %s: %s, %d events handled, %d commands\n", p.ID, p.Status, p.Events, p.Commands)
	}
	stop()
	return <-done
}
