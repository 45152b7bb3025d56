package client_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/client"
	"github.com/pmd-dev/pmd/server"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// daemon is a store served by server.New on an httptest server.
type daemon struct {
	store *pmd.Store
	url   string
}

// startDaemon serves a new store; wrap, if not nil, wraps the API's handler.
func startDaemon(t *testing.T, opts server.Options, wrap func(http.Handler) http.Handler) *daemon {
	t.Helper()
	return startDaemonOf(t, t.TempDir(), pmd.Options{NoSync: true, Logger: quiet()}, opts, wrap)
}

// startDaemonOf serves the store in dir.
func startDaemonOf(t *testing.T, dir string, storeOpts pmd.Options, opts server.Options, wrap func(http.Handler) http.Handler) *daemon {
	t.Helper()
	store, err := pmd.Open(dir, storeOpts)
	if err != nil {
		t.Fatal(err)
	}
	opts.Logger = quiet()
	var h http.Handler = server.New(store, opts)
	if wrap != nil {
		h = wrap(h)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(func() {
		ts.Close()
		if err := store.Close(); err != nil {
			t.Error(err)
		}
	})
	return &daemon{store: store, url: ts.URL}
}

func newClient(t *testing.T, addr string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewAddresses(t *testing.T) {
	tests := []struct {
		addr, want, err string
	}{
		{addr: "127.0.0.1:7070", want: "http://127.0.0.1:7070"},
		{addr: "localhost:7070/", want: "http://localhost:7070"},
		{addr: "https://pmd.example:8443", want: "https://pmd.example:8443"},
		{addr: "http://proxy.example/pmd/", want: "http://proxy.example/pmd"},
		{addr: "", err: "address is empty"},
		{addr: "ftp://x:1", err: `the scheme must be http or https, not "ftp"`},
		{addr: "http://", err: "names no host"},
		{addr: "http://x:1/?a=b", err: "only scheme, host, port and path"},
		{addr: "http://x:1 2", err: "neither host:port nor a URL"},
		{addr: "127.0.0.1:99999", err: "the port must be 1 to 65535, not 99999"},
		{addr: "127.0.0.1:0", err: "the port must be 1 to 65535, not 0"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			c, err := client.New(tt.addr)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("New(%q) = %v, want an error with %q", tt.addr, err, tt.err)
				}
				return
			}
			if err != nil || c.URL() != tt.want {
				t.Fatalf("New(%q) = %v, %v; want %s", tt.addr, c, err, tt.want)
			}
		})
	}
	// A token or password given in the address is refused without being shown.
	for _, addr := range []string{"https://s3cret@pmd.example:8443", "http://user:s3cret@x:1/pmd", "ftp://s3cret@x:1", "s3cret@x:99999"} {
		_, err := client.New(addr)
		if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "WithToken") {
			t.Errorf("New(%q) = %v; want an error naming WithToken, without the secret", addr, err)
		}
	}
	if _, err := client.New("x:1", client.WithReconnectDelay(0)); err == nil {
		t.Fatal("a zero reconnect delay was accepted")
	}
}

// TestNewUnparsableAddressHidesUserinfo: an address holding user information that
// url.Parse refuses is refused without printing the user information either: the
// parse error quotes the address it was given whole, and parts of it (a port, an
// escape), which may be pieces of a token.
func TestNewUnparsableAddressHidesUserinfo(t *testing.T) {
	for _, tt := range []struct{ addr, still string }{
		{"https://s3cret@pmd.example:bad port", `invalid port ":bad port"`},
		{"http://user:s3cret@%zz", `invalid URL escape "%zz"`},
		{"user:s3cret@x:1 2", "neither host:port nor a URL"},
		{"http://user:s3cr#et@x:1", ""},              // "#" cuts the fragment inside the password
		{"http://user:s3cr et@x:1", ""},              // a space, refused in the host url.Parse sees
		{"http://us%zzer:s3cret@x:1", ""},            // a bad escape inside the user information
		{"https://s3cret@s3cret@x:1/p", ""},          // two @: the last ends the user information
		{"http://user:ab/s3cret@x:bad", ""},          // a "/" in a token: url.Parse reads "ab" as the port
		{"s3cret@tok://x:1", ""},                     // an "@" before the "://"
		{" http://s3cret@pmd.example:bad", ""},       // leading space, trimmed
		{"http://user:s3cret@x:1/a\x7fb", "control"}, // a control character in the path
	} {
		_, err := client.New(tt.addr)
		if err == nil {
			t.Errorf("New(%q) succeeded", tt.addr)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "s3cr") || strings.Contains(msg, "zzer") || !strings.Contains(msg, "WithToken") || !strings.Contains(msg, tt.still) {
			t.Errorf("New(%q) = %v; want an error naming WithToken and %q, without the user information", tt.addr, err, tt.still)
		}
	}
}

// TestErrorsMatchTheStoresSentinels provokes each error the API answers through the
// client and checks that errors.Is finds the root package's sentinel (or the client's)
// and that the message names what it is about.
func TestErrorsMatchTheStoresSentinels(t *testing.T) {
	d := startDaemon(t, server.Options{MaxBody: 1 << 10}, nil)
	c := newClient(t, d.url)
	ctx := context.Background()
	id := uuid.MustParse("0190c1d2-0000-7000-8000-000000000001")
	if _, err := c.Append(ctx, "Order$1", pmd.NoStream, pmd.EventData{ID: id, Type: "Placed"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		call   func() error
		target error
		status int
		msg    string
	}{
		{"wrong expected version", func() error {
			_, err := c.Append(ctx, "Order$1", pmd.NoStream, pmd.EventData{Type: "Placed"})
			return err
		}, pmd.ErrWrongExpectedVersion, http.StatusConflict, `"Order$1": expected no_stream, actual 0`},
		{"duplicate event", func() error {
			_, err := c.Append(ctx, "Order$2", pmd.Any, pmd.EventData{ID: id, Type: "Placed"})
			return err
		}, pmd.ErrDuplicateEvent, http.StatusConflict, id.String()},
		{"stream not found", func() error {
			_, err := c.ReadStream(ctx, "Order$404", pmd.ReadOptions{})
			return err
		}, pmd.ErrStreamNotFound, http.StatusNotFound, `"Order$404"`},
		{"event not found", func() error {
			_, err := c.Event(ctx, uuid.MustParse("0190c1d2-0000-7000-8000-000000000404"))
			return err
		}, pmd.ErrEventNotFound, http.StatusNotFound, "0190c1d2-0000-7000-8000-000000000404"},
		{"link of an unknown event", func() error {
			_, err := c.Link(ctx, "Audit", pmd.Any, uuid.MustParse("0190c1d2-0000-7000-8000-000000000405"))
			return err
		}, pmd.ErrEventNotFound, http.StatusNotFound, "0190c1d2-0000-7000-8000-000000000405"},
		{"invalid argument", func() error {
			// The client checks what the store checks itself (TestBadInputIsTheStoresInvalidArgument);
			// a listing's after that is not UTF-8 only the daemon refuses.
			_, err := c.ListStreams(ctx, client.ListOptions{After: "\xff"})
			return err
		}, pmd.ErrInvalidArgument, http.StatusBadRequest, "after"},
		{"no process manager", func() error {
			_, err := c.Process(ctx, "CateringMatch", "42")
			return err
		}, client.ErrNotFound, http.StatusNotFound, "CateringMatch"},
		{"payload too large", func() error {
			_, err := c.Append(ctx, "Order$3", pmd.Any, pmd.EventData{Type: "Big", Data: map[string]any{"s": strings.Repeat("x", 2<<10)}})
			return err
		}, client.ErrPayloadTooLarge, http.StatusRequestEntityTooLarge, "1024 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, tt.target) {
				t.Fatalf("got %v, want errors.Is %v", err, tt.target)
			}
			var api *client.Error
			if !errors.As(err, &api) || api.Status != tt.status || !strings.Contains(api.Message, tt.msg) {
				t.Fatalf("got %#v, want status %d and a message with %q", err, tt.status, tt.msg)
			}
			if errors.Is(err, pmd.ErrClosed) {
				t.Fatalf("%v matches a sentinel of another code", err)
			}
		})
	}
}

// TestErrorCodes checks the mapping of every code to its sentinel, including the codes
// this test's server cannot be made to answer (access, damage, a closing store).
func TestErrorCodes(t *testing.T) {
	all := []error{pmd.ErrWrongExpectedVersion, pmd.ErrDuplicateEvent, pmd.ErrStreamNotFound, pmd.ErrEventNotFound,
		pmd.ErrInvalidArgument, pmd.ErrUnavailable, pmd.ErrCorrupt, pmd.ErrClosed, client.ErrNotFound,
		client.ErrPayloadTooLarge, client.ErrUnauthorized, client.ErrForbidden, client.ErrConflict, client.ErrTooSlow}
	// Every code of the contract (sections 2, 5, 9, 10, 11), the server's two others
	// and the subscription's too_slow.
	codes := map[string]error{
		"wrong_expected_version": pmd.ErrWrongExpectedVersion, "duplicate_event": pmd.ErrDuplicateEvent,
		"stream_not_found": pmd.ErrStreamNotFound, "event_not_found": pmd.ErrEventNotFound,
		"bad_request": pmd.ErrInvalidArgument, "unavailable": pmd.ErrUnavailable, "corrupt": pmd.ErrCorrupt,
		"not_found": client.ErrNotFound, "payload_too_large": client.ErrPayloadTooLarge,
		"unauthorized": client.ErrUnauthorized, "forbidden": client.ErrForbidden, "conflict": client.ErrConflict,
		"too_slow": client.ErrTooSlow, "internal": nil, "method_not_allowed": nil,
	}
	for code, want := range codes {
		msg := "the daemon's words about " + code
		err := fmt.Errorf("wrapped: %w", &client.Error{Status: 400, Code: code, Message: msg})
		for _, s := range all {
			if got := errors.Is(err, s); got != (s == want) {
				t.Errorf("code %s: errors.Is(%v) = %v", code, s, got)
			}
		}
		var api *client.Error
		if !errors.As(err, &api) || api.Code != code || !strings.Contains(err.Error(), msg) {
			t.Errorf("code %s: %v does not keep the code and the message", code, err)
		}
	}
}

func TestConnectionError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c := newClient(t, addr)
	_, err = c.Health(context.Background())
	var ce *client.ConnectionError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "cannot reach pmd at http://"+addr) {
		t.Fatalf("got %v, want a ConnectionError naming %s", err, addr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Health(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("with a cancelled context: %v", err)
	}
}

// cancelOnBody is a transport whose answers' bodies cancel their request's context at
// the first read and fail, as a read does that a cancelled context breaks.
type cancelOnBody struct{ cancel context.CancelFunc }

func (t cancelOnBody) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		resp.Body = cancelBody{resp.Body, t.cancel}
	}
	return resp, err
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b cancelBody) Read([]byte) (int, error) {
	b.cancel()
	return 0, errors.New("read broken by the cancelled context")
}

// TestContextEndsReadingTheAnswer: a context cancelled while the answer is read makes
// every call fail with the context's error, not a *ConnectionError.
func TestContextEndsReadingTheAnswer(t *testing.T) {
	d := startDaemon(t, server.Options{}, nil)
	calls := map[string]func(*client.Client, context.Context) error{
		"ReadAll": func(c *client.Client, ctx context.Context) error {
			_, err := c.ReadAll(ctx, pmd.ReadOptions{})
			return err
		},
		"Health":  func(c *client.Client, ctx context.Context) error { _, err := c.Health(ctx); return err },
		"Metrics": func(c *client.Client, ctx context.Context) error { _, err := c.Metrics(ctx); return err },
		"OpenAPI": func(c *client.Client, ctx context.Context) error { _, err := c.OpenAPI(ctx); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c := newClient(t, d.url, client.WithHTTPClient(&http.Client{Transport: cancelOnBody{cancel}}))
			var ce *client.ConnectionError
			if err := call(c, ctx); !errors.Is(err, context.Canceled) || errors.As(err, &ce) {
				t.Fatalf("got %v, want context.Canceled", err)
			}
		})
	}
}

func TestWriteAndRead(t *testing.T) {
	d := startDaemon(t, server.Options{}, nil)
	c := newClient(t, d.url)
	ctx := context.Background()

	given := uuid.MustParse("0190c1d2-0000-7000-8000-000000000001")
	res, err := c.Append(ctx, "Order$42", pmd.NoStream,
		pmd.EventData{ID: given, Type: "Placed", Data: map[string]any{"big": uint64(1<<63 + 1), "n": int64(1<<53 + 1), "f": 1.5, "list": []any{int64(1), "a"}}},
		pmd.EventData{Type: "Paid", Metadata: map[string]any{pmd.CausationID: given.String()}})
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstPosition != 1 || res.LastPosition != 2 || res.Version != 1 || len(res.IDs) != 2 || res.IDs[0] != given || res.IDs[1] == uuid.Nil {
		t.Fatalf("append: %+v", res)
	}
	paid := res.IDs[1]
	// An exact retry succeeds and writes nothing.
	again, err := c.Append(ctx, "Order$42", pmd.NoStream, pmd.EventData{ID: given, Type: "Placed", Data: map[string]any{"big": uint64(1<<63 + 1), "n": int64(1<<53 + 1), "f": 1.5, "list": []any{int64(1), "a"}}}, pmd.EventData{ID: paid, Type: "Paid", Metadata: map[string]any{pmd.CausationID: given.String()}})
	if err != nil || again.FirstPosition != 1 {
		t.Fatalf("exact retry: %+v, %v", again, err)
	}
	if _, err := c.Append(ctx, "Shipment$7", pmd.Any, pmd.EventData{Type: "Shipped"}); err != nil {
		t.Fatal(err)
	}
	link, err := c.Link(ctx, "Audit", pmd.NoStream, given, paid)
	if err != nil || link.Version != 1 {
		t.Fatalf("link: %+v, %v", link, err)
	}

	page, err := c.ReadStream(ctx, "Order$42", pmd.ReadOptions{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 || page.Next == nil || *page.Next != 1 {
		t.Fatalf("first page: %+v", page)
	}
	e := page.Events[0]
	if e.ID != given || e.Type != "Placed" || e.Stream != "Order$42" || e.Version == nil || *e.Version != 0 || e.Position != 1 || e.Link || e.Timestamp.IsZero() || e.Timestamp.Location() != time.UTC {
		t.Fatalf("event: %+v", e)
	}
	// Numbers come back exactly, typed as the embedded store types them.
	wantData := map[string]any{"big": uint64(1<<63 + 1), "n": int64(1<<53 + 1), "f": 1.5, "list": []any{int64(1), "a"}}
	if fmt.Sprintf("%#v", e.Data) != fmt.Sprintf("%#v", wantData) {
		t.Fatalf("data %#v, want %#v", e.Data, wantData)
	}

	tests := []struct {
		name  string
		read  func() (client.Page, error)
		types []string
		vers  bool
		next  bool
	}{
		{"stream backward", func() (client.Page, error) {
			return c.ReadStream(ctx, "Order$42", pmd.ReadOptions{Backward: true, From: pmd.End})
		}, []string{"Paid", "Placed"}, true, false},
		{"stream from a version", func() (client.Page, error) { return c.ReadStream(ctx, "Order$42", pmd.ReadOptions{From: 1}) }, []string{"Paid"}, true, false},
		{"links", func() (client.Page, error) { return c.ReadStream(ctx, "Audit", pmd.ReadOptions{}) }, []string{"Placed", "Paid"}, true, false},
		{"$all as a stream", func() (client.Page, error) { return c.ReadStream(ctx, pmd.All, pmd.ReadOptions{}) }, []string{"Placed", "Paid", "Shipped"}, false, false},
		{"$all by type", func() (client.Page, error) {
			return c.ReadAll(ctx, pmd.ReadOptions{Types: []string{"Shipped", "Placed"}})
		}, []string{"Placed", "Shipped"}, false, false},
		{"$all backward from 2", func() (client.Page, error) {
			return c.ReadAll(ctx, pmd.ReadOptions{Backward: true, From: 2, Limit: 1})
		}, []string{"Paid"}, false, true},
		{"category", func() (client.Page, error) { return c.ReadCategory(ctx, "Order", pmd.ReadOptions{}) }, []string{"Placed", "Paid"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.read()
			if err != nil {
				t.Fatal(err)
			}
			var types []string
			for _, e := range p.Events {
				types = append(types, e.Type)
				if (e.Version != nil) != tt.vers {
					t.Errorf("event %s: version %v, want one: %v", e.Type, e.Version, tt.vers)
				}
			}
			if !slices.Equal(types, tt.types) || (p.Next != nil) != tt.next {
				t.Fatalf("got %v next %v, want %v next %v", types, p.Next, tt.types, tt.next)
			}
		})
	}
	if _, err := c.ReadStream(ctx, "Order$42", pmd.ReadOptions{Types: []string{"Paid"}}); !errors.Is(err, pmd.ErrInvalidArgument) || !strings.Contains(err.Error(), "types: filter only reads of the global log") {
		t.Fatalf("types on a stream read: %v", err)
	}

	detail, err := c.Event(ctx, given)
	if err != nil {
		t.Fatal(err)
	}
	if detail.Event.ID != given || !slices.Equal(detail.Streams, []string{"Order$42", "Audit"}) || len(detail.Caused) != 1 || detail.Caused[0].ID != paid || detail.Causation != nil {
		t.Fatalf("event detail: %+v", detail)
	}
	if detail, err = c.Event(ctx, paid); err != nil || detail.Causation == nil || detail.Causation.ID != given {
		t.Fatalf("event detail of the caused event: %+v, %v", detail, err)
	}

	list, err := c.ListStreams(ctx, client.ListOptions{Limit: 2})
	if err != nil || len(list.Streams) != 2 || list.Streams[0].Name != "Audit" || list.Next == nil {
		t.Fatalf("stream listing: %+v, %v", list, err)
	}
	list, err = c.ListStreams(ctx, client.ListOptions{After: *list.Next})
	if err != nil || len(list.Streams) != 1 || list.Streams[0] != (client.StreamInfo{Name: "Shipment$7", Version: 0, Exists: true}) || list.Next != nil {
		t.Fatalf("second page of the stream listing: %+v, %v", list, err)
	}

	if err := c.DeleteStream(ctx, "Order$42", pmd.AtVersion(0)); !errors.Is(err, pmd.ErrWrongExpectedVersion) {
		t.Fatalf("delete at a wrong version: %v", err)
	}
	if err := c.DeleteStream(ctx, "Order$42", pmd.AtVersion(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadStream(ctx, "Order$42", pmd.ReadOptions{}); !errors.Is(err, pmd.ErrStreamNotFound) {
		t.Fatalf("read of a deleted stream: %v", err)
	}
	if p, err := c.ReadStream(ctx, "Audit", pmd.ReadOptions{}); err != nil || len(p.Events) != 2 {
		t.Fatalf("the links survive the deletion: %+v, %v", p, err)
	}

	h, err := c.Health(ctx)
	if err != nil || h.Status != "ok" || h.LastPosition < 4 {
		t.Fatalf("health: %+v, %v", h, err)
	}
}

// TestLeaderReads: with WithLeaderReads every read of the store asks for
// consistency=leader, which every route takes (a single node answers as it would
// without), and writes do not; nor do the routes that describe the node asked (its
// health, metrics, figures, cluster view and API), which a node with
// consistency=leader hands to the leader: a follower's Health was the leader's, and
// failed while there was no leader.
func TestLeaderReads(t *testing.T) {
	var mu sync.Mutex
	queries := map[string]string{} // method and path → query
	record := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			queries[r.Method+" "+r.URL.Path] = r.URL.RawQuery
			mu.Unlock()
			h.ServeHTTP(w, r)
		})
	}
	d := startDaemon(t, server.Options{}, record)
	c := newClient(t, d.url, client.WithLeaderReads())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Append(ctx, "Order$1", pmd.NoStream, pmd.EventData{Type: "Placed"})
	if err != nil {
		t.Fatal(err)
	}
	reads := []func() error{
		func() error { _, err := c.ReadStream(ctx, "Order$1", pmd.ReadOptions{Limit: 1}); return err },
		func() error { _, err := c.ReadAll(ctx, pmd.ReadOptions{}); return err },
		func() error { _, err := c.Event(ctx, res.IDs[0]); return err },
		func() error { collect(t, c.Subscribe(ctx, client.SubscribeOptions{}), 1); return nil },
		func() error { _, err := c.Health(ctx); return err },
		func() error { _, err := c.Metrics(ctx); return err },
		func() error { _, err := c.Stats(ctx); return err },
		func() error { _, err := c.Routes(ctx); return err },
		func() error { _, err := c.OpenAPI(ctx); return err },
		func() error {
			if _, err := c.Cluster(ctx); !errors.Is(err, client.ErrNotFound) {
				return fmt.Errorf("a single node's cluster: %v", err)
			}
			return nil
		},
	}
	nodeLocal := []string{"GET /healthz", "GET /metrics", "GET /v1/stats", "GET /v1/", "GET /v1/openapi.json", "GET /v1/cluster"}
	for i, read := range reads {
		if err := read(); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for route, q := range queries {
		leader := strings.Contains(q, "consistency=leader")
		if want := strings.HasPrefix(route, "GET ") && !slices.Contains(nodeLocal, route); leader != want {
			t.Errorf("%s?%s: consistency=leader sent %v, want %v", route, q, leader, want)
		}
	}
	if len(queries) != 11 {
		t.Fatalf("requests %v, want 11", queries)
	}
}

// TestEventCausedTruncated: an event that caused more events, or is in more streams,
// than the daemon lists says so.
func TestEventCausedTruncated(t *testing.T) {
	d := startDaemon(t, server.Options{MaxLimit: 2}, nil)
	c := newClient(t, d.url)
	ctx := context.Background()
	cause := uuid.MustParse("0190c1d2-0000-7000-8000-0000000000ca")
	events := []pmd.EventData{{ID: cause, Type: "Placed"}}
	for range 3 {
		events = append(events, pmd.EventData{Type: "Done", Metadata: map[string]any{pmd.CausationID: cause.String()}})
	}
	if _, err := c.Append(ctx, "Order$1", pmd.NoStream, events...); err != nil {
		t.Fatal(err)
	}
	detail, err := c.Event(ctx, cause)
	if err != nil || len(detail.Caused) != 2 || !detail.CausedTruncated {
		t.Fatalf("event detail: %+v, %v; want 2 caused, truncated", detail, err)
	}
	if detail, err = c.Event(ctx, detail.Caused[0].ID); err != nil || detail.CausedTruncated {
		t.Fatalf("event detail of a caused event: %+v, %v; want none caused, not truncated", detail, err)
	}
	if detail.StreamsTruncated {
		t.Fatalf("event detail of an event in one stream: streams %q truncated", detail.Streams)
	}
	for _, s := range []string{"Copy$1", "Copy$2"} {
		if _, err := c.Link(ctx, s, pmd.Any, cause); err != nil {
			t.Fatal(err)
		}
	}
	if detail, err = c.Event(ctx, cause); err != nil || len(detail.Streams) != 2 || !detail.StreamsTruncated {
		t.Fatalf("event detail of an event in 3 streams: %+v, %v; want 2 streams, truncated", detail, err)
	}
}

// TestHealthOfADegradedStore: a degraded store answers /healthz with 503 and its
// problems; that is an answer, not an error. A daemon shutting down is one.
func TestHealthOfADegradedStore(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		want       client.Health
		err        error
	}{
		{"healthy", `{"status":"ok","last_position":41}`, http.StatusOK, client.Health{Status: "ok", LastPosition: 41}, nil},
		{"degraded", `{"status":"degraded","problems":["damaged"],"last_position":42}`, http.StatusServiceUnavailable,
			client.Health{Status: "degraded", Problems: []string{"damaged"}, LastPosition: 42}, nil},
		{"shutting down", `{"error":"unavailable","message":"the server is shutting down"}`, http.StatusServiceUnavailable, client.Health{}, pmd.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer ts.Close()
			got, err := newClient(t, ts.URL).Health(context.Background())
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) || !slices.Equal(got.Problems, tt.want.Problems) ||
				got.Status != tt.want.Status || got.LastPosition != tt.want.LastPosition {
				t.Fatalf("Health = %+v, %v; want %+v, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestToken(t *testing.T) {
	tests := []struct {
		name string
		opts []client.Option
		want string
	}{
		{"none", nil, ""},
		{"bearer", []client.Option{client.WithToken("s3cret")}, "Bearer s3cret"},
		{"empty", []client.Option{client.WithToken("")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan string, 2)
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got <- r.Header.Get("Authorization")
				if r.URL.Path == "/v1/subscribe" {
					// Refused as a daemon with --auth refuses a token it does not know.
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusUnauthorized)
					io.WriteString(w, `{"error":"unauthorized","message":"unknown token"}`)
					return
				}
				io.WriteString(w, `{"status":"ok","last_position":0}`)
			}))
			defer ts.Close()
			c := newClient(t, ts.URL, tt.opts...)
			if _, err := c.Health(context.Background()); err != nil {
				t.Fatal(err)
			}
			for _, err := range c.Subscribe(context.Background(), client.SubscribeOptions{}) {
				if !errors.Is(err, client.ErrUnauthorized) {
					t.Fatalf("subscribe: %v, want unauthorized", err)
				}
			}
			for range 2 {
				if h := <-got; h != tt.want {
					t.Fatalf("Authorization %q, want %q", h, tt.want)
				}
			}
		})
	}
}

// processes is a fixed server.Processes: one manager with one process.
type processes struct{}

func (processes) Managers(context.Context) ([]server.Manager, error) {
	return []server.Manager{{Name: "CateringMatch", Handles: []string{"A", "B"}, Open: 1}}, nil
}

func (processes) List(_ context.Context, name, after string, limit int) ([]server.ProcessSummary, error) {
	if name != "CateringMatch" {
		return nil, fmt.Errorf("no process manager %q: %w", name, server.ErrNotFound)
	}
	return []server.ProcessSummary{{ID: "42", Status: "open", Events: 1}, {ID: "43", Status: "open"}}[:min(limit, 2)], nil
}

func (processes) Process(_ context.Context, name, id string) (server.Process, error) {
	if name != "CateringMatch" || id != "42" {
		return server.Process{}, fmt.Errorf("no process %q of %s: %w", id, name, server.ErrNotFound)
	}
	due := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return server.Process{
		Manager: name, ID: id, Stream: "CateringMatch$42", Status: "open", State: map[string]any{"seen": int64(1)},
		Events: []pmd.Event{{ID: uuid.MustParse("0190c1d2-0000-7000-8000-000000000001"), Type: "A", Stream: "Customer$7", Link: true, Position: 1}},
		States: []any{map[string]any{"seen": int64(1)}},
		Commands: []server.Command{{ID: "c1", Type: "Confirm", Data: map[string]any{"n": int64(1 << 60)},
			Attempts: []server.Attempt{{Attempt: 1, At: due, Error: "503", RetryAt: &due}}}},
		Deadlines:        []server.Deadline{{Due: due, Issue: "Cancel"}},
		DeliveriesStream: "CateringMatch-deliveries$42", DeliveriesVersion: 0,
	}, nil
}

func (processes) Holding(context.Context, pmd.Event) ([]string, error) { return nil, nil }

// parkedCommand is the one parked command of processes, of process 42.
var parkedCommand = uuid.MustParse("0190c1d2-0000-7000-8000-0000000000c1")

func (processes) Parked(_ context.Context, name string, _ server.ParkedQuery) (server.ParkedPage, error) {
	if name != "CateringMatch" {
		return server.ParkedPage{}, fmt.Errorf("no process manager %q: %w", name, server.ErrNotFound)
	}
	return server.ParkedPage{Parked: []server.ParkedCommand{{ProcessID: "42", ID: parkedCommand.String(), Type: "Confirm",
		Data: map[string]any{"n": int64(1 << 60)}, Receiver: "http://r", Attempts: 3, Error: "503"}}, Total: 1}, nil
}

// Retry and Skip accept the parked command; another command of process 42 is being
// delivered (a conflict), and any other is unknown.
func (processes) Retry(_ context.Context, name, id string, command uuid.UUID) error {
	switch {
	case name != "CateringMatch" || id != "42":
		return fmt.Errorf("no process %q of %s: %w", id, name, server.ErrNotFound)
	case command != parkedCommand:
		return fmt.Errorf("command %s is being delivered: %w", command, server.ErrConflict)
	}
	return nil
}

func (p processes) Skip(ctx context.Context, name, id string, command uuid.UUID) error {
	return p.Retry(ctx, name, id, command)
}

func TestProcesses(t *testing.T) {
	d := startDaemon(t, server.Options{Processes: processes{}}, nil)
	c := newClient(t, d.url)
	ctx := context.Background()
	managers, err := c.Managers(ctx)
	if err != nil || len(managers) != 1 || managers[0].Name != "CateringMatch" || managers[0].Open != 1 || !slices.Equal(managers[0].Handles, []string{"A", "B"}) {
		t.Fatalf("managers: %+v, %v", managers, err)
	}
	list, err := c.Processes(ctx, "CateringMatch", client.ListOptions{Limit: 1})
	if err != nil || len(list.Processes) != 1 || list.Processes[0].ID != "42" || list.Next == nil || *list.Next != "42" {
		t.Fatalf("processes: %+v, %v", list, err)
	}
	if _, err := c.Processes(ctx, "Nope", client.ListOptions{}); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("processes of an unknown manager: %v", err)
	}
	if _, err := c.Processes(ctx, "CateringMatch", client.ListOptions{Prefix: "4"}); err == nil {
		t.Fatal("a prefix was accepted for the process listing")
	}
	p, err := c.Process(ctx, "CateringMatch", "42")
	if err != nil {
		t.Fatal(err)
	}
	if p.Stream != "CateringMatch$42" || len(p.Events) != 1 || p.Events[0].Stream != "Customer$7" || !p.Events[0].Link ||
		fmt.Sprint(p.Events[0].State) != "map[seen:1]" || len(p.Commands) != 1 || p.Commands[0].Data["n"] != int64(1<<60) ||
		len(p.Commands[0].Attempts) != 1 || p.Commands[0].Attempts[0].RetryAt == nil || len(p.Deadlines) != 1 || p.Deadlines[0].Issue != "Cancel" {
		t.Fatalf("process: %+v", p)
	}
	if _, ok := p.State.(map[string]any)["seen"].(int64); !ok {
		t.Fatalf("state numbers are not int64: %#v", p.State)
	}
	found, err := c.FindProcesses(ctx, "CateringMatch", client.ProcessQuery{Limit: 1})
	if err != nil || len(found.Processes) != 1 || found.Next == nil {
		t.Fatalf("FindProcesses without a filter: %+v, %v", found, err)
	}
	// A negative bound is refused rather than left out of the query.
	for _, q := range []client.ProcessQuery{{Limit: -1}, {OlderThan: -time.Hour}, {IdleFor: -time.Hour}} {
		if _, err := c.FindProcesses(ctx, "CateringMatch", q); !errors.Is(err, pmd.ErrInvalidArgument) || !strings.Contains(err.Error(), "must not be negative") {
			t.Fatalf("FindProcesses(%+v): %v, want it refused", q, err)
		}
	}
	// This daemon's Processes lists in id order only: filters are refused.
	if _, err := c.FindProcesses(ctx, "CateringMatch", client.ProcessQuery{Status: "open", OlderThan: time.Hour, ByAge: true}); !errors.Is(err, pmd.ErrInvalidArgument) {
		t.Fatalf("FindProcesses with filters from a daemon that cannot filter: %v", err)
	}
	st, err := c.Stats(ctx)
	if err != nil || len(st.Processes) != 1 || st.Processes[0].Name != "CateringMatch" || st.Processes[0].Open != 1 ||
		st.Health.Status != "ok" || st.Store.Segments != 1 || st.Cluster != nil {
		t.Fatalf("stats: %+v, %v", st, err)
	}
}

// pagedProcesses is processes whose process "long" has five events, paged newest
// first as the daemon's process managers page them (server.ProcessPager).
type pagedProcesses struct{ processes }

func (pagedProcesses) ProcessPage(_ context.Context, name, id string, q server.ProcessQuery) (server.Process, error) {
	before, limit := q.Before, q.Limit
	if name != "CateringMatch" || id != "long" {
		return server.Process{}, fmt.Errorf("no process %q of %s: %w", id, name, server.ErrNotFound)
	}
	hi := int64(4)
	if before >= 0 {
		hi = min(hi, before-1)
	}
	lo := max(0, hi-int64(limit)+1)
	p := server.Process{Manager: name, ID: id, Stream: "CateringMatch$long", Status: "open", State: map[string]any{"n": int64(5)},
		Snapshot: &server.Snapshot{Version: 1, Stream: "CateringMatch-snapshots$long", Position: 9}}
	if lo > 0 {
		p.Older = &lo
	}
	for v := lo; v <= hi; v++ {
		p.Events = append(p.Events, pmd.Event{ID: uuid.New(), Type: "A", Stream: p.Stream, Version: uint64(v), Position: uint64(v + 1)})
		p.States = append(p.States, map[string]any{"n": v + 1})
	}
	return p, nil
}

// TestReadProcessPages: a long process comes a page at a time, newest first; Older
// says where the next page ends, and following it reads every event once.
func TestReadProcessPages(t *testing.T) {
	d := startDaemon(t, server.Options{Processes: pagedProcesses{}, DefaultLimit: 2}, nil)
	c := newClient(t, d.url)
	ctx := context.Background()
	p, err := c.Process(ctx, "CateringMatch", "long")
	if err != nil || len(p.Events) != 2 || p.Older == nil || *p.Older != 3 || p.Snapshot == nil || p.Snapshot.Position != 9 {
		t.Fatalf("newest page: %+v, %v; want versions 3 and 4, older 3, the snapshot", p, err)
	}
	var versions []uint64
	opts := client.ProcessOptions{Limit: 1}
	for range 10 { // a page an event, and a bound in case Older never ends
		p, err := c.ReadProcess(ctx, "CateringMatch", "long", opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range slices.Backward(p.Events) {
			versions = append(versions, *e.Version)
		}
		if p.Older == nil {
			break
		}
		opts.Before = p.Older
	}
	if !slices.Equal(versions, []uint64{4, 3, 2, 1, 0}) {
		t.Fatalf("versions newest first: %v", versions)
	}
	bad := int64(-1)
	for _, opts := range []client.ProcessOptions{{Before: &bad}, {Limit: -1}} {
		if _, err := c.ReadProcess(ctx, "CateringMatch", "long", opts); err == nil {
			t.Fatalf("ReadProcess(%+v) was not refused", opts)
		}
	}
}

// TestParkedRetrySkip: the parked list with exact numbers, and retry and skip with
// their errors as the package's sentinels.
func TestParkedRetrySkip(t *testing.T) {
	d := startDaemon(t, server.Options{Processes: processes{}}, nil)
	c := newClient(t, d.url)
	ctx := context.Background()
	list, err := c.Parked(ctx, "CateringMatch", 10)
	if err != nil || list.Total != 1 || len(list.Parked) != 1 {
		t.Fatalf("parked: %+v, %v", list, err)
	}
	if p := list.Parked[0]; p.ProcessID != "42" || p.ID != parkedCommand.String() || p.Data["n"] != int64(1<<60) ||
		p.Receiver != "http://r" || p.Attempts != 3 || p.Error != "503" {
		t.Fatalf("parked command: %+v", p)
	}
	if _, err := c.Parked(ctx, "Nope", 0); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("parked of an unknown manager: %v", err)
	}
	if _, err := c.Parked(ctx, "CateringMatch", -1); err == nil {
		t.Fatal("a negative limit was sent")
	}
	other := "0190c1d2-0000-7000-8000-0000000000c2"
	tests := []struct {
		name        string
		op          func(context.Context, string, string, string) error
		id, command string
		want        error
	}{
		{"retry", c.Retry, "42", parkedCommand.String(), nil},
		{"skip", c.Skip, "42", parkedCommand.String(), nil},
		{"retry being delivered", c.Retry, "42", other, client.ErrConflict},
		{"skip being delivered", c.Skip, "42", other, client.ErrConflict},
		{"unknown process", c.Retry, "7", parkedCommand.String(), client.ErrNotFound},
		{"not a UUID", c.Skip, "42", "c1", pmd.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.op(ctx, "CateringMatch", tt.id, tt.command)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}

// collect reads sub until it has n events, failing on an error or after 10s.
func collect(t *testing.T, sub func(func(client.Event, error) bool), n int) []client.Event {
	t.Helper()
	var got []client.Event
	for e, err := range sub {
		if err != nil {
			t.Fatalf("after %d events: %v", len(got), err)
		}
		got = append(got, e)
		if len(got) == n {
			break
		}
	}
	return got
}

func positions(events []client.Event) []uint64 {
	var out []uint64
	for _, e := range events {
		out = append(out, e.Position)
	}
	return out
}

func TestSubscribeCatchUpThenLive(t *testing.T) {
	d := startDaemon(t, server.Options{}, nil)
	c := newClient(t, d.url)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, typ := range []string{"A", "B", "A"} {
		if _, err := c.Append(ctx, "s", pmd.Any, pmd.EventData{Type: typ}); err != nil {
			t.Fatal(err)
		}
	}
	// The live event is appended once the stored ones have arrived, so it comes live.
	var got []client.Event
	for e, err := range c.Subscribe(ctx, client.SubscribeOptions{Types: []string{"A"}, From: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
		if len(got) == 1 {
			if _, err := c.Append(ctx, "s", pmd.Any, pmd.EventData{Type: "B"}, pmd.EventData{Type: "A", Data: map[string]any{"n": 1}}); err != nil {
				t.Fatal(err)
			}
		}
		if len(got) == 2 {
			break
		}
	}
	if !slices.Equal(positions(got), []uint64{3, 5}) || got[1].Data["n"] != int64(1) || got[0].Version != nil {
		t.Fatalf("got %+v", got)
	}
	// One stream, by version.
	stream := collect(t, c.Subscribe(ctx, client.SubscribeOptions{Stream: "s", From: 3}), 2)
	if *stream[0].Version != 3 || *stream[1].Version != 4 {
		t.Fatalf("stream subscription: %+v", stream)
	}
	// Bad options end the iteration with an invalid argument, sent nowhere.
	for _, err := range c.Subscribe(ctx, client.SubscribeOptions{Stream: "s", Types: []string{"A"}}) {
		if !errors.Is(err, pmd.ErrInvalidArgument) {
			t.Fatalf("stream and types: %v", err)
		}
	}
}

// cutAfterFirstEvent ends the first subscription's response right after its first
// event was written, as a dropped connection would, and lets later ones be.
func cutAfterFirstEvent(h http.Handler) http.Handler {
	var once sync.Once
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/subscribe" {
			h.ServeHTTP(w, r)
			return
		}
		cut := false
		once.Do(func() { cut = true })
		if !cut {
			h.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		h.ServeHTTP(&cutWriter{ResponseWriter: w, cancel: cancel}, r.WithContext(ctx))
	})
}

// cutWriter passes writes on until the first event, then fails every write as a broken
// connection does, and cancels the request so the server's subscription ends.
type cutWriter struct {
	http.ResponseWriter
	cancel context.CancelFunc
	cut    bool
}

func (w *cutWriter) Write(b []byte) (int, error) {
	if w.cut {
		return 0, errors.New("connection cut by the test")
	}
	w.cut = strings.Contains(string(b), "data: ")
	if w.cut {
		w.cancel()
	}
	return w.ResponseWriter.Write(b)
}

func (w *cutWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestSubscribeResumesAfterADroppedConnection: the first connection ends after one
// event; the iterator reconnects with Last-Event-ID and goes on without a gap or a
// duplicate, and says that it did.
func TestSubscribeResumesAfterADroppedConnection(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts client.SubscribeOptions
		ids  func(client.Event) uint64
	}{
		{"global log", client.SubscribeOptions{}, func(e client.Event) uint64 { return e.Position }},
		{"stream", client.SubscribeOptions{Stream: "s"}, func(e client.Event) uint64 { return *e.Version }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := startDaemon(t, server.Options{}, cutAfterFirstEvent)
			c := newClient(t, d.url, client.WithReconnectDelay(time.Millisecond))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for i := range 4 {
				if _, err := c.Append(ctx, "s", pmd.Any, pmd.EventData{Type: "E", Data: map[string]any{"i": i}}); err != nil {
					t.Fatal(err)
				}
			}
			var drops []error
			opts := tt.opts
			opts.Dropped = func(err error) { drops = append(drops, err) }
			var got []int64
			for _, e := range collect(t, c.Subscribe(ctx, opts), 4) {
				got = append(got, e.Data["i"].(int64))
			}
			if !slices.Equal(got, []int64{0, 1, 2, 3}) {
				t.Fatalf("got events %v, want 0 1 2 3 once each", got)
			}
			if len(drops) != 1 {
				t.Fatalf("Dropped called %d times (%v), want once", len(drops), drops)
			}
		})
	}
}

// TestSubscribeResumesAfterAnErrorEvent: a daemon that cuts a subscriber that fell
// behind sends an SSE error event, too_slow; the iterator tells Dropped, with
// ErrTooSlow, and resumes from the last event it got.
func TestSubscribeResumesAfterAnErrorEvent(t *testing.T) {
	var mu sync.Mutex
	var lastIDs []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		first := len(lastIDs) == 1
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		if first {
			io.WriteString(w, "retry: 1000\n\n: heartbeat\n\nid: 7\ndata: {\"id\":\"0190c1d2-0000-7000-8000-000000000007\",\n"+
				"data: \"type\":\"A\",\"position\":7}\n\nevent: error\ndata: {\"error\":\"too_slow\",\"message\":\"the subscriber is 16 MiB behind\"}\n\n")
			return
		}
		io.WriteString(w, "id: 8\ndata: {\"id\":\"0190c1d2-0000-7000-8000-000000000008\",\"type\":\"B\",\"position\":8}\n\n")
	}))
	defer ts.Close()
	c := newClient(t, ts.URL, client.WithReconnectDelay(time.Millisecond))
	var drops []error
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := collect(t, c.Subscribe(ctx, client.SubscribeOptions{From: 7, Dropped: func(err error) { drops = append(drops, err) }}), 2)
	if !slices.Equal(positions(got), []uint64{7, 8}) || got[0].Type != "A" {
		t.Fatalf("got %+v", got)
	}
	var api *client.Error
	if len(drops) != 1 || !errors.Is(drops[0], client.ErrTooSlow) || !errors.As(drops[0], &api) || api.Message != "the subscriber is 16 MiB behind" {
		t.Fatalf("drops: %v, want one, too_slow with the daemon's message", drops)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(lastIDs, []string{"", "7"}) {
		t.Fatalf("Last-Event-ID of each connection: %q", lastIDs)
	}
}

// TestSubscribeEndsWithItsContext: cancelling the context ends the iteration without an
// error, also while it waits to reconnect.
func TestSubscribeEndsWithItsContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := newClient(t, addr, client.WithReconnectDelay(time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	dropped := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		for _, err := range c.Subscribe(ctx, client.SubscribeOptions{Dropped: func(err error) { dropped <- err }}) {
			done <- err
			return
		}
		done <- nil
	}()
	var ce *client.ConnectionError
	if err := <-dropped; !errors.As(err, &ce) {
		t.Fatalf("dropped: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("iteration ended with %v", err)
	}
}

// TestSubscribeEndsOnAnAnswerThatIsNotAnEvent: an answer a retry would only repeat
// ends the iteration with an error instead of reconnecting forever.
func TestSubscribeEndsOnAnAnswerThatIsNotAnEvent(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "id: 1\ndata: {not json\n\n")
	}))
	defer ts.Close()
	c := newClient(t, ts.URL, client.WithReconnectDelay(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := 0
	for _, err := range c.Subscribe(ctx, client.SubscribeOptions{Dropped: func(err error) { t.Errorf("reconnected after %v", err) }}) {
		n++
		if err == nil || !strings.Contains(err.Error(), "not the JSON expected") {
			t.Fatalf("got %v, want a decoding error", err)
		}
	}
	if n != 1 || ctx.Err() != nil {
		t.Fatalf("%d results, context %v; want one error, before the deadline", n, ctx.Err())
	}
}

func TestRoutesOpenAPIAndMetrics(t *testing.T) {
	d := startDaemon(t, server.Options{}, nil)
	c := newClient(t, d.url)
	ctx := context.Background()
	routes, err := c.Routes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range routes {
		found = found || (r.Method == "POST" && r.Path == "/v1/streams/{stream}")
	}
	if !found {
		t.Fatalf("no append route in %+v", routes)
	}
	doc, err := c.OpenAPI(ctx)
	var openapi struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if err != nil || json.Unmarshal(doc, &openapi) != nil || !strings.HasPrefix(openapi.OpenAPI, "3.1") || openapi.Paths["/v1/streams/{stream}"] == nil {
		t.Fatalf("openapi: %v %.200s", err, doc)
	}
	metrics, err := c.Metrics(ctx)
	if err != nil || !strings.Contains(string(metrics), "# TYPE pmd_") {
		t.Fatalf("metrics: %v %.200s", err, metrics)
	}
}

// TestAccess: against a daemon with tokens, no token is unauthorized and a token
// without the scope is forbidden, both as the client's sentinels.
func TestAccess(t *testing.T) {
	hash := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }
	file := filepath.Join(t.TempDir(), "tokens.yaml")
	yaml := fmt.Sprintf("tokens:\n  - {name: reader, sha256: %s, scopes: [read]}\n  - {name: writer, sha256: %s, scopes: [write]}\n", hash("r-token"), hash("w-token"))
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := server.LoadTokens(file)
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, server.Options{Tokens: tokens}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// An event for the subscriptions that are allowed to see.
	if _, err := d.store.Append(ctx, "s", pmd.Any, pmd.EventData{Type: "E"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		token        string
		write, read  error
		subscribeErr error
	}{
		{"no token", "", client.ErrUnauthorized, client.ErrUnauthorized, client.ErrUnauthorized},
		{"unknown token", "nope", client.ErrUnauthorized, client.ErrUnauthorized, client.ErrUnauthorized},
		{"read scope", "r-token", client.ErrForbidden, nil, nil},
		{"write scope", "w-token", nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, d.url, client.WithToken(tt.token))
			_, err := c.Append(ctx, "s", pmd.Any, pmd.EventData{Type: "E"})
			if !errors.Is(err, tt.write) || (tt.write == nil) != (err == nil) {
				t.Fatalf("append: %v, want %v", err, tt.write)
			}
			_, err = c.ReadAll(ctx, pmd.ReadOptions{})
			if !errors.Is(err, tt.read) || (tt.read == nil) != (err == nil) {
				t.Fatalf("read: %v, want %v", err, tt.read)
			}
			answered := false
			for _, err := range c.Subscribe(ctx, client.SubscribeOptions{}) {
				if !errors.Is(err, tt.subscribeErr) || (tt.subscribeErr == nil) != (err == nil) {
					t.Fatalf("subscribe: %v, want %v", err, tt.subscribeErr)
				}
				answered = true
				break
			}
			if !answered {
				t.Fatalf("subscribe: neither an event nor an error: %v", ctx.Err())
			}
		})
	}
}
