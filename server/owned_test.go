package server

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// ownedOptions are the options of a daemon that runs the process manager Order and the
// subscription billing, with the test tokens.
func ownedOptions(t *testing.T) Options {
	t.Helper()
	tokens, err := LoadTokens(testTokenFile(t))
	if err != nil {
		t.Fatal(err)
	}
	owners := pm.NewOwners([]string{"Order"}, []string{"billing"})
	tokens.SetOwner(func(stream string) (string, bool) {
		kind, name, ok := owners.Owner(stream)
		return kind + " " + name, ok
	})
	return Options{Tokens: tokens}
}

// TestOwnedStreamsNeedAdmin: every route that changes a stream refuses a write token a
// stream of a configured process manager or subscription, naming the owner, and serves
// it an ordinary stream, including one whose name only looks like a manager's; an admin
// token changes both.
func TestOwnedStreamsNeedAdmin(t *testing.T) {
	e := newEnv(t, ownedOptions(t))
	ctx := context.Background()
	routes := map[string]struct{ method, suffix, body string }{
		"append":              {"POST", "", `{"events":[{"type":"E"}]}`},
		"link":                {"POST", "/links", `{"event_ids":["ID"]}`},
		"delete_stream":       {"DELETE", "", ""},
		"set_stream_metadata": {"PUT", "/metadata", `{"max_count":5}`},
		"erase_stream":        {"POST", "/erase", ""},
	}
	// Every route that changes a stream is in routes, so that a new one is tested too.
	for _, rt := range e.srv.table {
		_, listed := routes[rt.name]
		takesStream := strings.Contains(rt.path, "{stream}")
		if takesStream && rt.method != http.MethodGet && !listed {
			t.Fatalf("route %s %s changes a stream and is not tested here", rt.method, rt.path)
		}
		if listed && (rt.access.scope < ScopeWrite || rt.access.target == nil) {
			t.Fatalf("route %s is not checked as changing its stream: it needs %s", rt.name, rt.access.scope)
		}
	}
	owned := map[string]string{
		"Order$1":              "process manager Order",
		"Order.checkpoint":     "process manager Order",
		"Order.deliveries$1":   "process manager Order",
		"Order.removed$1":      "process manager Order",
		"Order.snapshots$1":    "process manager Order",
		"billing.subscription": "subscription billing",
	}
	ordinary := []string{"Orders$1", "Ship$1", "Order.checkpoints", "Order.other$1", "billing2.subscription", "billing$1"}
	type stream struct{ name, owner string }
	var streams []stream
	for name, owner := range owned {
		streams = append(streams, stream{name, owner})
	}
	for _, name := range ordinary {
		streams = append(streams, stream{name, ""})
	}
	for route, rt := range routes {
		for _, token := range []string{"w-secret", "a-secret"} {
			for _, st := range streams {
				t.Run(route+"/"+strings.TrimSuffix(token, "-secret")+"/"+st.name, func(t *testing.T) {
					// Each stream exists, so that delete, retention and erase have
					// something to change.
					if _, err := e.store.Append(ctx, st.name, pmd.Any, pmd.EventData{Type: "E"}); err != nil {
						t.Fatal(err)
					}
					// A new event to link, as an event is linked into a stream once.
					seed, err := e.store.Append(ctx, "Seed", pmd.Any, pmd.EventData{Type: "E"})
					if err != nil {
						t.Fatal(err)
					}
					reqBody := strings.ReplaceAll(rt.body, "ID", seed.IDs[0].String())
					before := e.store.LastPosition()
					status, body := e.call(rt.method, "/v1/streams/"+url.PathEscape(st.name)+rt.suffix, reqBody, token, nil)
					switch {
					case route == "erase_stream" && token == "w-secret":
						if status != http.StatusForbidden || !strings.Contains(body, "this needs admin") {
							t.Fatalf("status %d %s, want 403 for the scope", status, body)
						}
					case st.owner != "" && token == "w-secret":
						want := `stream \"` + st.name + `\" belongs to ` + st.owner + `: changing it needs an admin token`
						if status != http.StatusForbidden || !strings.Contains(body, want) || !strings.Contains(body, `"error":"forbidden"`) {
							t.Fatalf("status %d %s, want 403 with %s", status, body, want)
						}
						if got := e.store.LastPosition(); got != before {
							t.Fatalf("a refused request wrote: last position %d, was %d", got, before)
						}
					default:
						if status >= 300 {
							t.Fatalf("status %d %s, want the change made", status, body)
						}
					}
				})
			}
		}
	}
}

// TestWriteTokenCannotForgeSubscriptionPosition is the forgery of the report: a write
// token deleted "<name>.subscription" and appended a position of its own, which the
// subscription honoured on its next start. Both are refused, and the stream is as the
// subscription left it.
func TestWriteTokenCannotForgeSubscriptionPosition(t *testing.T) {
	e := newEnv(t, ownedOptions(t))
	ctx := context.Background()
	const stream = "billing.subscription"
	if _, err := e.store.Append(ctx, stream, pmd.NoStream, pmd.EventData{Type: "SubscriptionPosition", Data: map[string]any{"position": 7}}); err != nil {
		t.Fatal(err)
	}
	forged := `{"events":[{"type":"SubscriptionPosition","data":{"position":1000000}}]}`
	for _, req := range []struct{ method, path, body string }{
		{"DELETE", "/v1/streams/billing.subscription", ""},
		{"POST", "/v1/streams/billing.subscription?expected_version=-1", forged},
		{"POST", "/v1/streams/billing.subscription", forged},
		{"PUT", "/v1/streams/billing.subscription/metadata", `{"truncate_before":1}`},
	} {
		status, body := e.call(req.method, req.path, req.body, "w-secret", nil)
		if status != http.StatusForbidden || !strings.Contains(body, "belongs to subscription billing") {
			t.Errorf("%s %s with a write token: %d %s, want 403 naming the subscription", req.method, req.path, status, body)
		}
	}
	info, err := e.store.StreamInfo(stream)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Exists || info.Version != 0 {
		t.Fatalf("%s after the refusals: %+v, want the one record the subscription wrote", stream, info)
	}
	// Reading it stays open to a read token.
	if status, body := e.call("GET", "/v1/streams/billing.subscription", "", "r-secret", nil); status != http.StatusOK {
		t.Fatalf("read with a read token: %d %s", status, body)
	}
}

// TestOwnedStreamsWithoutAuth: without tokens every request is served as before, owned
// streams included.
func TestOwnedStreamsWithoutAuth(t *testing.T) {
	opts := ownedOptions(t)
	opts.Tokens = nil
	e := newEnv(t, opts)
	if status, body := e.call("POST", "/v1/streams/Order%241", `{"events":[{"type":"E"}]}`, "", nil); status != http.StatusCreated {
		t.Fatalf("append to Order$1 without --auth: %d %s", status, body)
	}
}
