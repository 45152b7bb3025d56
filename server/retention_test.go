package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

func TestStreamMetadataRoutes(t *testing.T) {
	e := newEnv(t, Options{})
	for i := range 5 {
		e.append("Order$1", nil, ev("Placed", map[string]any{"i": i})).must(t, http.StatusCreated)
	}
	r := e.do("GET", "/v1/streams/Order%241/metadata", nil).must(t, http.StatusOK)
	if len(r.body) != 0 {
		t.Fatalf("metadata of a stream without retention: %s", r.raw)
	}
	e.do("PUT", "/v1/streams/Order%241/metadata", `{"max_age":"720h","max_count":3,"truncate_before":1}`).must(t, http.StatusOK)
	r = e.do("GET", "/v1/streams/Order%241/metadata", nil).must(t, http.StatusOK)
	if r.body["max_age"] != "720h0m0s" || r.body["max_count"] != num(3) || r.body["truncate_before"] != num(1) {
		t.Fatalf("metadata read back as %s", r.raw)
	}
	if evs := e.do("GET", "/v1/streams/Order%241", nil).must(t, http.StatusOK).events(t); len(evs) != 3 || evs[0]["version"] != num(2) {
		t.Fatalf("a stream with max_count 3 reads %d events from version %v", len(evs), evs[0]["version"])
	}
	for _, tc := range []struct{ body, says string }{
		{`{"max_age":"forever"}`, "max_age"},
		{`{"max_age":"-1h"}`, "max_age"},
		{`{"max_age":"9999999h"}`, `max_age "9999999h" is not a duration from 0 to 2562047h`},
		{`{"max_age":720}`, "max_age"},
		{`{"max_count":-1}`, "max_count"},
		{`{"max_count":1.5}`, "max_count"},
		{`{"truncate_before":"3"}`, "truncate_before"},
		{`{"truncate_before":6}`, "truncate_before: 6 is past the end of stream \"Order$1\", whose next version is 5"},
		{`{"maxCount":3}`, "maxCount"},
		{`[]`, "object"},
	} {
		r := e.do("PUT", "/v1/streams/Order%241/metadata", tc.body).mustError(t, http.StatusBadRequest, "bad_request")
		if !strings.Contains(r.body["message"].(string), tc.says) {
			t.Errorf("%s: message %q does not name %s", tc.body, r.body["message"], tc.says)
		}
	}
	// Refused input changed nothing.
	if r := e.do("GET", "/v1/streams/Order%241/metadata", nil).must(t, http.StatusOK); r.body["max_count"] != num(3) {
		t.Fatalf("metadata after refused writes: %s", r.raw)
	}
	e.do("PUT", "/v1/streams/%24all/metadata", `{}`).mustError(t, http.StatusBadRequest, "bad_request")
}

func TestEraseAndScavengeRoutes(t *testing.T) {
	e := newEnv(t, Options{})
	e.append("Customer$7", nil, ev("AddressGiven", map[string]any{"street": "Secret Lane"})).must(t, http.StatusCreated)
	e.do("POST", "/v1/streams/Customer%247/erase", "").must(t, http.StatusNoContent)
	evs := e.do("GET", "/v1/streams/Customer%247", nil).must(t, http.StatusOK).events(t)
	if len(evs) != 1 || evs[0]["erased"] != true || len(evs[0]["data"].(map[string]any)) != 0 || evs[0]["type"] != "AddressGiven" {
		t.Fatalf("erased stream reads %v", evs)
	}
	e.do("POST", "/v1/streams/Customer%247/erase", `{"why":"gdpr"}`).mustError(t, http.StatusBadRequest, "bad_request")

	r := e.do("POST", "/v1/admin/scavenge", "").must(t, http.StatusOK)
	for _, k := range []string{"expired_streams", "segments", "rewritten", "gone", "dead_kept", "erased", "bytes_before", "bytes_after", "freed_bytes"} {
		if _, ok := r.body[k]; !ok {
			t.Fatalf("scavenge answered %s, without %s", r.raw, k)
		}
	}
	// The bytes freed are reported, and add up: the erased data left the disk.
	n := func(k string) int64 {
		t.Helper()
		v, ok := r.body[k].(json.Number)
		i, err := v.Int64()
		if !ok || err != nil {
			t.Fatalf("scavenge answered %s: %s is not a whole number", r.raw, k)
		}
		return i
	}
	before, after, freed := n("bytes_before"), n("bytes_after"), n("freed_bytes")
	if n("erased") != 1 || n("dead_kept") != 0 || n("rewritten") != 1 || freed <= 0 || freed != before-after {
		t.Fatalf("scavenge answered %s: want one event erased (none dead) in one segment rewritten, and freed_bytes > 0 = bytes_before - bytes_after", r.raw)
	}
	metrics := e.do("GET", "/metrics", nil).must(t, http.StatusOK)
	if !strings.Contains(string(metrics.raw), "pmd_scavenges_total 1\n") || !strings.Contains(string(metrics.raw), fmt.Sprintf("pmd_scavenged_bytes_total %d\n", freed)) {
		t.Fatalf("/metrics does not count the scavenge and its %d bytes freed", freed)
	}
}

// A scavenge is not bound by the request timeout: it takes as long as the log at the
// scavenge's rate (a few GiB would never finish within 30 s, and every retry would stop
// at the same segments). Here no request could finish within the timeout.
func TestScavengeOutlivesTheRequestTimeout(t *testing.T) {
	e := newEnv(t, Options{RequestTimeout: time.Nanosecond})
	ctx := context.Background()
	if _, err := e.store.Append(ctx, "Customer$7", pmd.NoStream, pmd.EventData{Type: "AddressGiven", Data: map[string]any{"street": "Secret Lane"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.EraseStream(ctx, "Customer$7"); err != nil {
		t.Fatal(err)
	}
	e.do("GET", "/v1/streams/Customer%247", nil).mustError(t, http.StatusServiceUnavailable, "unavailable")
	r := e.do("POST", "/v1/admin/scavenge", "").must(t, http.StatusOK)
	if r.body["erased"] != num(1) {
		t.Fatalf("scavenge answered %s, want the erased event's data removed", r.raw)
	}
}

// A long request's work ends when its client goes away or the server shuts down.
func TestUntilStop(t *testing.T) {
	e := newEnv(t, Options{})
	parent, cancelParent := context.WithCancel(context.Background())
	ctx, cancel := e.srv.untilStop(parent)
	defer cancel()
	cancelParent()
	<-ctx.Done() // would hang (the test's deadline) if it did not end with its parent

	ctx, cancel = e.srv.untilStop(context.Background())
	defer cancel()
	if ctx.Err() != nil {
		t.Fatal("the context ended before the server stopped")
	}
	e.srv.stop()
	<-ctx.Done()
}

// A dead event, deleted or truncated away and linked nowhere, is not found by its id;
// one its stream hid but another stream still shows is.
func TestDeadEventByID(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	ids := map[string]string{}
	for _, name := range []string{"deleted", "truncated", "linked", "kept"} {
		stream := "Order$" + name
		res, err := e.store.Append(ctx, stream, pmd.NoStream, pmd.EventData{Type: "Placed"})
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = res.IDs[0].String()
	}
	if _, err := e.store.Link(ctx, "PM$1", pmd.NoStream, uuid.MustParse(ids["linked"])); err != nil {
		t.Fatal(err)
	}
	e.do("DELETE", "/v1/streams/Order%24deleted", nil).must(t, http.StatusNoContent)
	for _, stream := range []string{"truncated", "linked"} {
		e.do("PUT", "/v1/streams/Order%24"+stream+"/metadata", `{"truncate_before":1}`).must(t, http.StatusOK)
	}
	for name, want := range map[string]int{"deleted": 404, "truncated": 404, "linked": 200, "kept": 200} {
		r := e.do("GET", "/v1/events/"+ids[name], nil)
		if want == http.StatusOK {
			r.must(t, want)
			continue
		}
		r.mustError(t, want, "event_not_found")
	}
}

// A scavenge of a store that has erased data removes the quarantines in its data
// directory, which may hold the erased bytes, and its answer names each: a quarantine
// of a cut at start holds acknowledged records the store lost, which its operator
// must learn are gone. An answer with none removed says so with an empty list.
func TestScavengeNamesTheQuarantinesItRemoved(t *testing.T) {
	dir := t.TempDir()
	store, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	srv := New(store, Options{Logger: quiet()})
	ts := httptest.NewServer(srv)
	ts.Client().Transport = newValidating(t, ts.Client().Transport)
	t.Cleanup(func() {
		ts.Close()
		if err := store.Close(); err != nil {
			t.Error(err)
		}
	})
	e := &env{t: t, store: store, srv: srv, ts: ts}
	removed := func(r reply) []any {
		t.Helper()
		q, ok := r.body["quarantines_removed"].([]any)
		if !ok {
			t.Fatalf("scavenge answered %s, without a list quarantines_removed", r.raw)
		}
		return q
	}
	if q := removed(e.do("POST", "/v1/admin/scavenge", "").must(t, http.StatusOK)); len(q) != 0 {
		t.Fatalf("nothing to remove, quarantines_removed %v", q)
	}
	ctx := context.Background()
	if _, err := store.Append(ctx, "Customer$7", pmd.NoStream, pmd.EventData{Type: "AddressGiven", Data: map[string]any{"street": "Secret Lane"}}); err != nil {
		t.Fatal(err)
	}
	if err := store.EraseStream(ctx, "Customer$7"); err != nil {
		t.Fatal(err)
	}
	q := filepath.Join(dir, "quarantine-20261129T120000Z.bin")
	if err := os.WriteFile(q, []byte("Secret Lane"), 0o600); err != nil {
		t.Fatal(err)
	}
	got := removed(e.do("POST", "/v1/admin/scavenge", "").must(t, http.StatusOK))
	if len(got) != 1 || got[0] != q {
		t.Fatalf("quarantines_removed %v, want [%s]", got, q)
	}
	if _, err := os.Stat(q); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the quarantine is still there: %v", err)
	}
}

// TestRetentionOfAProcessStreamIsRefused: retention settings for a stream whose records
// a process manager decides on (its process streams, deliveries, removal markers and
// checkpoint) were refused only when the daemon was told of the manager
// (Options.KeepsAll, set by pmd serve for the managers of its configuration): a
// program serving a store it runs a pm.Manager on took them, admin token or none, and
// they hid what the process issued, which it then issued again. The store refuses
// them for every caller now: 400 bad_request naming the manager and what to use
// instead; clearing them is taken, the manager's other streams take them, and deleting
// the process stays possible.
func TestRetentionOfAProcessStreamIsRefused(t *testing.T) {
	e := newEnv(t, Options{})
	def := pm.Definition[int]{Name: "Shipping", Handles: []string{"Placed"}, ProcessID: pm.DataField("order"),
		Init: func(string) int { return 0 }, Apply: func(n int, _ pmd.Event) int { return n + 1 },
		Decide: func(int) []pm.Command { return nil }}
	if _, err := pm.New(e.store, def, pm.Options{Logger: quiet()}); err != nil {
		t.Fatal(err)
	}
	for _, stream := range []string{"Shipping$1", "Shipping.removed$1", "Shipping.snapshots$1"} {
		e.append(stream, nil, ev("Placed", nil)).must(t, http.StatusCreated)
	}
	for _, stream := range []string{"Shipping%241", "Shipping.removed%241", "Shipping.deliveries%241", "Shipping.checkpoint"} {
		r := e.do("PUT", "/v1/streams/"+stream+"/metadata", `{"max_count":1}`).mustError(t, http.StatusBadRequest, "bad_request")
		if msg := r.body["message"].(string); !strings.Contains(msg, "process manager Shipping") || !strings.Contains(msg, "retention: {completed") {
			t.Errorf("%s: message %q", stream, msg)
		}
		if r := e.do("GET", "/v1/streams/"+stream+"/metadata", nil).must(t, http.StatusOK); len(r.body) != 0 {
			t.Errorf("%s: refused settings were set: %s", stream, r.raw)
		}
		e.do("PUT", "/v1/streams/"+stream+"/metadata", `{}`).must(t, http.StatusOK)
	}
	e.do("PUT", "/v1/streams/Shipping.snapshots%241/metadata", `{"max_count":1}`).must(t, http.StatusOK)
	// Deleting a process is an operator action the store keeps possible (docs/retention.md).
	e.do("DELETE", "/v1/streams/Shipping%241", nil).must(t, http.StatusNoContent)
}
