package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/client"
	"github.com/pmd-dev/pmd/internal/damagetest"
	"github.com/pmd-dev/pmd/server"
)

// damagedDaemon serves a store of n events of stream "s" whose event victim (version
// victim, position victim+1) fails its checksum.
func damagedDaemon(t *testing.T, n, victim int) *daemon {
	t.Helper()
	dir := t.TempDir()
	opts := pmd.Options{NoSync: true, Logger: quiet()}
	store, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		e := pmd.EventData{Type: "E", Data: map[string]any{"i": i, "mark": fmt.Sprintf("MARK-%03d-MARK", i)}}
		if _, err := store.Append(context.Background(), "s", pmd.Any, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	damagetest.FlipIn(t, dir, fmt.Sprintf("MARK-%03d-MARK", victim))
	return startDaemonOf(t, dir, opts, server.Options{}, nil)
}

// TestSubscribeGoesOnPastADamagedRecord: at a damaged record the daemon ends the
// subscription with a corrupt error event carrying the record's id. The iterator
// yields it as the store's Subscribe does, a *pmd.CorruptError naming the record with
// the daemon's message, and a caller that goes on gets the events after it, at once,
// without a drop.
func TestSubscribeGoesOnPastADamagedRecord(t *testing.T) {
	const n, victim = 20, 10
	d := damagedDaemon(t, n, victim)
	c := newClient(t, d.url, client.WithReconnectDelay(time.Hour))
	for _, tt := range []struct {
		name string
		opts client.SubscribeOptions
		want pmd.CorruptError
	}{
		{"global log", client.SubscribeOptions{From: 3}, pmd.CorruptError{Position: victim + 1}},
		{"stream", client.SubscribeOptions{Stream: "s", From: 2}, pmd.CorruptError{Position: victim + 1, Stream: "s", Version: victim}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			opts := tt.opts
			opts.Dropped = func(err error) { t.Errorf("dropped: %v", err) }
			var got []int64
			var damage []error
			for e, err := range c.Subscribe(ctx, opts) {
				if err != nil {
					damage = append(damage, err)
					continue
				}
				got = append(got, e.Data["i"].(int64))
				if len(got)+len(damage) == n-2 {
					break
				}
			}
			var want []int64
			for i := int64(2); i < n; i++ {
				if i != victim {
					want = append(want, i)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("events %v, want %v (context: %v)", got, want, ctx.Err())
			}
			if len(damage) != 1 {
				t.Fatalf("errors %v, want one", damage)
			}
			err := damage[0]
			var ce *pmd.CorruptError
			var api *client.Error
			if !errors.Is(err, pmd.ErrCorrupt) || !errors.As(err, &ce) || !errors.As(err, &api) || api.Code != "corrupt" {
				t.Fatalf("got %#v, want a *pmd.CorruptError around the daemon's corrupt error", err)
			}
			if ce.Position != tt.want.Position || ce.Stream != tt.want.Stream || ce.Version != tt.want.Version {
				t.Fatalf("got %+v, want %+v", ce, tt.want)
			}
			if api.Position != tt.want.Position || api.Version != tt.want.Version {
				t.Fatalf("the daemon's error names position %d, version %d; want %d, %d", api.Position, api.Version, tt.want.Position, tt.want.Version)
			}
			// The text is the daemon's message, once.
			if msg := err.Error(); strings.Count(msg, "damaged record") != 1 || !strings.Contains(msg, fmt.Sprintf("position %d", victim+1)) {
				t.Fatalf("message %q", msg)
			}
		})
	}
}

// TestSubscribeEndsAtADamagedRecordWithoutAnID: a daemon older than the id on the
// corrupt error event names no record to resume after; the iterator yields the
// daemon's error and ends instead of meeting the record again at every reconnect.
func TestSubscribeEndsAtADamagedRecordWithoutAnID(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: error\ndata: {\"error\":\"corrupt\",\"message\":\"damaged record at position 11: checksum\"}\n\n")
	}))
	defer ts.Close()
	c := newClient(t, ts.URL, client.WithReconnectDelay(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, err := range c.Subscribe(ctx, client.SubscribeOptions{Dropped: func(err error) { t.Errorf("reconnected after %v", err) }}) {
		errs = append(errs, err)
	}
	var api *client.Error
	if len(errs) != 1 || !errors.Is(errs[0], pmd.ErrCorrupt) || !errors.As(errs[0], &api) || api.Message != "damaged record at position 11: checksum" || ctx.Err() != nil {
		t.Fatalf("got %v (context %v), want the daemon's corrupt error once, before the deadline", errs, ctx.Err())
	}
}

// TestReadNamesTheDamagedRecord: a read that starts at a damaged record fails with the
// daemon's corrupt error, which names the record as fields, so that a caller reads on
// from the next one without parsing the message.
func TestReadNamesTheDamagedRecord(t *testing.T) {
	const n, victim = 20, 10
	d := damagedDaemon(t, n, victim)
	c := newClient(t, d.url)
	ctx := context.Background()
	for _, tt := range []struct {
		name              string
		read              func() (client.Page, error)
		position, version uint64
		stream            string
	}{
		{"global log", func() (client.Page, error) { return c.ReadAll(ctx, pmd.ReadOptions{From: victim + 1}) }, victim + 1, 0, ""},
		{"stream", func() (client.Page, error) { return c.ReadStream(ctx, "s", pmd.ReadOptions{From: victim}) }, victim + 1, victim, "s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.read()
			var api *client.Error
			if !errors.Is(err, pmd.ErrCorrupt) || !errors.As(err, &api) {
				t.Fatalf("got %v, want the daemon's corrupt error", err)
			}
			if api.Position != tt.position || api.Version != tt.version {
				t.Fatalf("the error names position %d, version %d; want %d, %d", api.Position, api.Version, tt.position, tt.version)
			}
			// errors.As finds the *pmd.CorruptError the store's read gives, as a
			// subscription's does (TestSubscribeGoesOnPastADamagedRecord).
			var ce *pmd.CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("errors.As found no *pmd.CorruptError in %#v", err)
			}
			if ce.Position != tt.position || ce.Version != tt.version || ce.Stream != tt.stream {
				t.Fatalf("got %+v, want position %d, version %d, stream %q", ce, tt.position, tt.version, tt.stream)
			}
			if got, want := "corrupt: "+ce.Error(), err.Error(); got != want {
				t.Fatalf("the *pmd.CorruptError says %q, the daemon %q", got, want)
			}
		})
	}
}
