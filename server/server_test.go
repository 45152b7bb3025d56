package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/prometheus/client_golang/prometheus"
)

// env is a store with the API in front of it on a real listener.
type env struct {
	t     *testing.T
	store *pmd.Store
	srv   *Server
	ts    *httptest.Server
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	store, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = quiet()
	}
	srv := New(store, opts)
	ts := httptest.NewServer(srv)
	// Every exchange of the server tests is held to the OpenAPI document.
	ts.Client().Transport = newValidating(t, ts.Client().Transport)
	t.Cleanup(func() {
		ts.Close()
		if err := store.Close(); err != nil {
			t.Error(err)
		}
	})
	return &env{t: t, store: store, srv: srv, ts: ts}
}

// reply is a response with its JSON body decoded (numbers as json.Number).
type reply struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (e *env) do(method, path string, body any) reply {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, raw: raw}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&r.body); err != nil {
			e.t.Fatalf("%s %s: response is not a JSON object: %v: %s", method, path, err, raw)
		}
	}
	return r
}

// must checks the status of r and returns it.
func (r reply) must(t *testing.T, status int) reply {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	return r
}

// mustError checks that r is the contract's error with status and code.
func (r reply) mustError(t *testing.T, status int, code string) reply {
	t.Helper()
	r.must(t, status)
	if r.body["error"] != code || r.body["message"] == "" || r.body["message"] == nil {
		t.Fatalf("error body %s, want code %q and a message", r.raw, code)
	}
	return r
}

func (r reply) events(t *testing.T) []map[string]any {
	t.Helper()
	list, ok := r.body["events"].([]any)
	if !ok {
		t.Fatalf("no events list in %s", r.raw)
	}
	out := make([]map[string]any, len(list))
	for i, e := range list {
		out[i] = e.(map[string]any)
	}
	return out
}

func (e *env) append(stream string, expected any, events ...map[string]any) reply {
	e.t.Helper()
	body := map[string]any{"events": events}
	if expected != nil {
		body["expected_version"] = expected
	}
	return e.do("POST", "/v1/streams/"+escape(stream), body)
}

func escape(stream string) string {
	return strings.NewReplacer("$", "%24", "/", "%2F", "?", "%3F", "#", "%23", " ", "%20", "%", "%25").Replace(stream)
}

func ev(typ string, data map[string]any) map[string]any {
	return map[string]any{"type": typ, "data": data}
}

func num(n int) json.Number { return json.Number(fmt.Sprint(n)) }

func TestAppendAndReadStream(t *testing.T) {
	e := newEnv(t, Options{})
	id := "0190c1d2-0000-7000-8000-000000000001"
	r := e.append("Order$42", "no_stream",
		map[string]any{"id": id, "type": "OrderPlaced", "data": map[string]any{"n": 1, "f": 1.5, "s": "x", "list": []any{1, "a"}, "big": uint64(1) << 63}, "metadata": map[string]any{"correlation_id": "c1"}},
		ev("MenuChosen", map[string]any{"menu": "vegan", "nested": map[string]any{"k": -3}}),
	).must(t, http.StatusCreated)
	if r.body["first_position"] != num(1) || r.body["last_position"] != num(2) || r.body["version"] != num(1) {
		t.Fatalf("append answered %s", r.raw)
	}
	ids, _ := r.body["ids"].([]any)
	if len(ids) != 2 || ids[0] != id {
		t.Fatalf("append answered ids %v, want [%s, the made id]", r.body["ids"], id)
	}

	r = e.do("GET", "/v1/streams/Order%2442", nil).must(t, http.StatusOK)
	evs := r.events(t)
	if evs[1]["id"] != ids[1] {
		t.Fatalf("second event's id %v, append answered %v", evs[1]["id"], ids[1])
	}
	if len(evs) != 2 || r.body["next"] != nil {
		t.Fatalf("read %s", r.raw)
	}
	first := evs[0]
	if first["id"] != id || first["type"] != "OrderPlaced" || first["stream"] != "Order$42" ||
		first["version"] != num(0) || first["position"] != num(1) || first["link"] != false {
		t.Fatalf("first event %s", r.raw)
	}
	// Integers stay integers, other numbers stay numbers.
	data, _ := json.Marshal(first["data"])
	if want := `{"big":9223372036854775808,"f":1.5,"list":[1,"a"],"n":1,"s":"x"}`; string(data) != want {
		t.Fatalf("data came back as %s, want %s", data, want)
	}
	if md := first["metadata"].(map[string]any); md["correlation_id"] != "c1" {
		t.Fatalf("metadata %v", md)
	}
	ts, err := time.Parse(time.RFC3339Nano, first["timestamp"].(string))
	if err != nil || ts.Location() != time.UTC || time.Since(ts) > time.Minute || !strings.HasSuffix(first["timestamp"].(string), "Z") {
		t.Fatalf("timestamp %v: %v", first["timestamp"], err)
	}
	if evs[1]["metadata"] == nil || len(evs[1]["metadata"].(map[string]any)) != 0 {
		t.Fatalf("absent metadata must read as {}, got %v", evs[1]["metadata"])
	}

	// Backward from the end.
	r = e.do("GET", "/v1/streams/Order%2442?direction=backward", nil).must(t, http.StatusOK)
	if evs := r.events(t); len(evs) != 2 || evs[0]["version"] != num(1) {
		t.Fatalf("backward read %s", r.raw)
	}
}

// TestTimestampsKeepNanoseconds: every read shows the stored timestamp as RFC 3339 in UTC
// with its nanoseconds. Strings are compared, because time.Parse(time.RFC3339Nano, …)
// also accepts a timestamp cut to whole seconds.
func TestTimestampsKeepNanoseconds(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.append("Order$1", nil, ev("Placed", nil)).must(t, http.StatusCreated)
	id, _ := r.body["ids"].([]any)[0].(string)
	e.do("POST", "/v1/streams/Audit/links", map[string]any{"event_ids": []any{id}}).must(t, http.StatusCreated)
	stored, err := e.store.Event(context.Background(), uuid.MustParse(id))
	if err != nil {
		t.Fatal(err)
	}
	want := stored.Timestamp.Format(time.RFC3339Nano)
	if !strings.HasSuffix(want, "Z") {
		t.Fatalf("stored timestamp %v is not in UTC", stored.Timestamp)
	}

	for _, path := range []string{
		"/v1/streams/Order%241", "/v1/streams/Audit", "/v1/streams/%24all",
		"/v1/all", "/v1/all?types=Placed", "/v1/categories/Order", "/v1/events/" + id,
	} {
		r := e.do("GET", path, nil).must(t, http.StatusOK)
		var got any
		if event, ok := r.body["event"].(map[string]any); ok {
			got = event["timestamp"]
		} else if evs := r.events(t); len(evs) == 1 {
			got = evs[0]["timestamp"]
		}
		if got != want {
			t.Errorf("GET %s: timestamp %v, want %s: %s", path, got, want, r.raw)
		}
	}
}

func TestReadStreamPaging(t *testing.T) {
	e := newEnv(t, Options{})
	for i := range 7 {
		e.append("s", nil, ev("E", map[string]any{"i": i})).must(t, http.StatusCreated)
	}
	tests := []struct {
		query    string
		versions []int
		next     any
	}{
		{"limit=3", []int{0, 1, 2}, num(3)},
		{"limit=3&from=3", []int{3, 4, 5}, num(6)},
		{"limit=3&from=6", []int{6}, nil},
		{"limit=7", []int{0, 1, 2, 3, 4, 5, 6}, nil},
		{"from=9", []int{}, nil},
		{"direction=backward&limit=3", []int{6, 5, 4}, num(3)},
		{"direction=backward&limit=3&from=3", []int{3, 2, 1}, num(0)},
		{"direction=backward&limit=3&from=0", []int{0}, nil},
		{"direction=backward&from=100&limit=1", []int{6}, num(5)},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := e.do("GET", "/v1/streams/s?"+tt.query, nil).must(t, http.StatusOK)
			evs := r.events(t)
			got := make([]int, len(evs))
			for i, ev := range evs {
				n, _ := ev["version"].(json.Number).Int64()
				got[i] = int(n)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.versions) || r.body["next"] != tt.next {
				t.Fatalf("versions %v next %v, want %v next %v", got, r.body["next"], tt.versions, tt.next)
			}
		})
	}
}

func TestLimitIsClamped(t *testing.T) {
	e := newEnv(t, Options{MaxLimit: 2})
	for range 3 {
		e.append("s", nil, ev("E", nil)).must(t, http.StatusCreated)
	}
	r := e.do("GET", "/v1/streams/s?limit=1000", nil).must(t, http.StatusOK)
	if len(r.events(t)) != 2 || r.body["next"] != num(2) {
		t.Fatalf("got %s, want 2 events and next 2", r.raw)
	}
}

func TestStreamNamesInPaths(t *testing.T) {
	e := newEnv(t, Options{})
	for _, name := range []string{"Order$42", "a/b", "with space", "ünï$cödé", "100%", "q?x#y", "links"} {
		t.Run(name, func(t *testing.T) {
			e.append(name, "no_stream", ev("E", nil)).must(t, http.StatusCreated)
			r := e.do("GET", "/v1/streams/"+escape(name), nil).must(t, http.StatusOK)
			if evs := r.events(t); len(evs) != 1 || evs[0]["stream"] != name {
				t.Fatalf("read %s", r.raw)
			}
		})
	}
}

func TestExpectedVersion(t *testing.T) {
	tests := []struct {
		name     string
		existing int // events in the stream before
		expected any
		ok       bool
	}{
		{"absent on new", 0, nil, true},
		{"any on new", 0, "any", true},
		{"any on existing", 2, "any", true},
		{"no_stream on new", 0, "no_stream", true},
		{"-1 on new", 0, -1, true},
		{"no_stream on existing", 1, "no_stream", false},
		{"-1 on existing", 1, -1, false},
		{"stream_exists on new", 0, "stream_exists", false},
		{"stream_exists on existing", 1, "stream_exists", true},
		{"exact", 2, 1, true},
		{"exact too low", 2, 0, false},
		{"exact too high", 2, 2, false},
		{"exact on new", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			for range tt.existing {
				e.append("s", nil, ev("E", nil)).must(t, http.StatusCreated)
			}
			before := e.store.LastPosition()
			r := e.append("s", tt.expected, ev("F", nil))
			if tt.ok {
				r.must(t, http.StatusCreated)
				return
			}
			r.mustError(t, http.StatusConflict, "wrong_expected_version")
			if msg := r.body["message"].(string); !strings.Contains(msg, `"s"`) {
				t.Fatalf("message %q does not name the stream", msg)
			}
			if e.store.LastPosition() != before {
				t.Fatal("a refused append wrote something")
			}
		})
	}
}

func TestDuplicateEventAndRetry(t *testing.T) {
	e := newEnv(t, Options{})
	id := "0190c1d2-0000-7000-8000-0000000000aa"
	one := map[string]any{"id": id, "type": "E"}
	first := e.append("s", nil, one).must(t, http.StatusCreated)
	// An exact retry answers the original result and writes nothing.
	again := e.append("s", nil, one).must(t, http.StatusCreated)
	if string(again.raw) != string(first.raw) || e.store.LastPosition() != 1 {
		t.Fatalf("retry answered %s, first %s", again.raw, first.raw)
	}
	r := e.append("other", nil, one).mustError(t, http.StatusConflict, "duplicate_event")
	if !strings.Contains(r.body["message"].(string), id) {
		t.Fatalf("message %q does not name the event", r.body["message"])
	}
	if e.store.LastPosition() != 1 {
		t.Fatal("a duplicate wrote something")
	}
}

func TestLink(t *testing.T) {
	e := newEnv(t, Options{})
	id := "0190c1d2-0000-7000-8000-0000000000bb"
	e.append("Customer$7", nil, map[string]any{"id": id, "type": "CustomerConfirmedMenu", "data": map[string]any{"order_id": "42"}}).must(t, http.StatusCreated)
	r := e.do("POST", "/v1/streams/CateringMatch%2442/links", map[string]any{"expected_version": "no_stream", "event_ids": []string{id}}).must(t, http.StatusCreated)
	if r.body["version"] != num(0) || len(r.body) != 1 {
		t.Fatalf("link answered %s", r.raw)
	}
	r = e.do("GET", "/v1/streams/CateringMatch%2442", nil).must(t, http.StatusOK)
	evs := r.events(t)
	if len(evs) != 1 || evs[0]["id"] != id || evs[0]["link"] != true || evs[0]["stream"] != "Customer$7" || evs[0]["version"] != num(0) {
		t.Fatalf("linked read %s", r.raw)
	}
	before := e.store.LastPosition()
	e.do("POST", "/v1/streams/CateringMatch%2442/links", map[string]any{"event_ids": []string{id}}).mustError(t, http.StatusConflict, "duplicate_event")
	e.do("POST", "/v1/streams/CateringMatch%2442/links", map[string]any{"expected_version": 5, "event_ids": []string{id}}).mustError(t, http.StatusConflict, "wrong_expected_version")
	missing := "0190c1d2-0000-7000-8000-0000000000cc"
	r = e.do("POST", "/v1/streams/x/links", map[string]any{"event_ids": []string{missing}}).mustError(t, http.StatusNotFound, "event_not_found")
	if !strings.Contains(r.body["message"].(string), missing) {
		t.Fatalf("message %q does not name the event", r.body["message"])
	}
	if e.store.LastPosition() != before {
		t.Fatal("a refused link wrote something")
	}
}

func TestDeleteStream(t *testing.T) {
	e := newEnv(t, Options{})
	e.append("s", nil, ev("E", nil), ev("E", nil)).must(t, http.StatusCreated)
	e.append("t", nil, ev("E", nil)).must(t, http.StatusCreated)
	e.do("DELETE", "/v1/streams/s?expected_version=0", nil).mustError(t, http.StatusConflict, "wrong_expected_version")
	r := e.do("DELETE", "/v1/streams/s", nil).must(t, http.StatusNoContent)
	if len(r.raw) != 0 {
		t.Fatalf("204 with a body: %s", r.raw)
	}
	e.do("GET", "/v1/streams/s", nil).mustError(t, http.StatusNotFound, "stream_not_found")
	// No stream shows s's events any more: they are dead and leave $all too.
	if n := len(e.do("GET", "/v1/all", nil).must(t, http.StatusOK).events(t)); n != 1 {
		t.Fatalf("$all has %d events after a delete, want 1", n)
	}
	// Starts again with no_stream, at the next version.
	r = e.append("s", "no_stream", ev("E", nil)).must(t, http.StatusCreated)
	if r.body["version"] != num(2) {
		t.Fatalf("append after delete answered %s, want version 2", r.raw)
	}
	// expected_version in the body is honoured as in the query: a wrong one deletes nothing.
	e.do("DELETE", "/v1/streams/s", `{"expected_version":7}`).mustError(t, http.StatusConflict, "wrong_expected_version")
	e.do("GET", "/v1/streams/s", nil).must(t, http.StatusOK)
	e.do("DELETE", "/v1/streams/s", `{"expected_version":2}`).must(t, http.StatusNoContent)
	e.do("DELETE", "/v1/streams/t?expected_version=stream_exists", nil).must(t, http.StatusNoContent)
	e.do("DELETE", "/v1/streams/t?expected_version=sometimes", nil).mustError(t, http.StatusBadRequest, "bad_request")
	e.do("DELETE", "/v1/streams/%24all", nil).mustError(t, http.StatusBadRequest, "bad_request")
}

func TestReadAllAndCategory(t *testing.T) {
	e := newEnv(t, Options{})
	e.append("Order$1", nil, ev("Placed", nil), ev("Paid", nil)).must(t, http.StatusCreated)
	e.append("Order$2", nil, ev("Placed", nil)).must(t, http.StatusCreated)
	e.append("Customer$1", nil, ev("Registered", nil)).must(t, http.StatusCreated)
	ids := e.do("GET", "/v1/streams/Order%241", nil).events(t)
	e.do("POST", "/v1/streams/Order%243/links", map[string]any{"event_ids": []any{ids[0]["id"]}}).must(t, http.StatusCreated)

	types := func(r reply) string {
		var out []string
		for _, ev := range r.events(t) {
			if _, has := ev["version"]; has {
				t.Fatalf("version in a read that is not of one stream: %s", r.raw)
			}
			out = append(out, ev["stream"].(string)+"/"+ev["type"].(string))
		}
		return strings.Join(out, " ")
	}
	tests := []struct {
		path, want string
		next       any
	}{
		{"/v1/all", "Order$1/Placed Order$1/Paid Order$2/Placed Customer$1/Registered", nil},
		{"/v1/all?limit=2", "Order$1/Placed Order$1/Paid", num(3)},
		{"/v1/all?from=3&limit=2", "Order$2/Placed Customer$1/Registered", nil},
		{"/v1/all?direction=backward&limit=3", "Customer$1/Registered Order$2/Placed Order$1/Paid", num(1)},
		{"/v1/all?types=Placed,Registered", "Order$1/Placed Order$2/Placed Customer$1/Registered", nil},
		{"/v1/all?types=Placed&limit=1", "Order$1/Placed", num(3)},
		{"/v1/all?types=Nope", "", nil},
		{"/v1/categories/Order", "Order$1/Placed Order$1/Paid Order$2/Placed", nil},
		{"/v1/categories/Order?limit=2", "Order$1/Placed Order$1/Paid", num(3)},
		{"/v1/categories/Order?direction=backward&limit=1", "Order$2/Placed", num(2)},
		{"/v1/categories/Nope", "", nil},
		{"/v1/streams/%24all?limit=1", "Order$1/Placed", num(2)},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := e.do("GET", tt.path, nil).must(t, http.StatusOK)
			if got := types(r); got != tt.want || r.body["next"] != tt.next {
				t.Fatalf("got %q next %v, want %q next %v", got, r.body["next"], tt.want, tt.next)
			}
		})
	}
}

func TestListStreams(t *testing.T) {
	e := newEnv(t, Options{})
	for _, s := range []string{"Order$3", "Order$1", "Customer$1", "Order$2"} {
		e.append(s, nil, ev("E", nil)).must(t, http.StatusCreated)
	}
	e.append("Order$2", nil, ev("E", nil)).must(t, http.StatusCreated)
	e.do("DELETE", "/v1/streams/Order%243", nil).must(t, http.StatusNoContent)

	r := e.do("GET", "/v1/streams?prefix=Order&limit=2", nil).must(t, http.StatusOK)
	got, _ := json.Marshal(r.body)
	if want := `{"next":"Order$2","streams":[{"exists":true,"name":"Order$1","version":0},{"exists":true,"name":"Order$2","version":1}]}`; string(got) != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	r = e.do("GET", "/v1/streams?prefix=Order&after=Order%242", nil).must(t, http.StatusOK)
	got, _ = json.Marshal(r.body)
	if want := `{"next":null,"streams":[{"exists":false,"name":"Order$3","version":0}]}`; string(got) != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	r = e.do("GET", "/v1/streams", nil).must(t, http.StatusOK)
	if n := len(r.body["streams"].([]any)); n != 4 {
		t.Fatalf("listed %d streams, want 4", n)
	}
	e.do("GET", "/v1/streams?limit=0", nil).mustError(t, http.StatusBadRequest, "bad_request")
}

func TestEventByID(t *testing.T) {
	e := newEnv(t, Options{})
	cause := "0190c1d2-0000-7000-8000-000000000001"
	effect := "0190c1d2-0000-7000-8000-000000000002"
	e.append("Order$1", nil, map[string]any{"id": cause, "type": "Placed"}).must(t, http.StatusCreated)
	e.append("Kitchen$1", nil, map[string]any{"id": effect, "type": "Cook", "metadata": map[string]any{"causation_id": cause, "correlation_id": cause}}).must(t, http.StatusCreated)

	r := e.do("GET", "/v1/events/"+cause, nil).must(t, http.StatusOK)
	event := r.body["event"].(map[string]any)
	if event["id"] != cause || event["type"] != "Placed" || r.body["causation"] != nil {
		t.Fatalf("event %s", r.raw)
	}
	if streams := r.body["streams"].([]any); len(streams) != 1 || streams[0] != "Order$1" {
		t.Fatalf("streams %v", streams)
	}
	if caused := r.body["caused"].([]any); len(caused) != 1 || caused[0].(map[string]any)["id"] != effect {
		t.Fatalf("caused %v", caused)
	}

	r = e.do("GET", "/v1/events/"+effect, nil).must(t, http.StatusOK)
	if c, ok := r.body["causation"].(map[string]any); !ok || c["id"] != cause {
		t.Fatalf("causation of the effect: %s", r.raw)
	}
	if caused := r.body["caused"].([]any); len(caused) != 0 {
		t.Fatalf("the effect caused %v", caused)
	}
	// Events written after the index was built show up too.
	later := "0190c1d2-0000-7000-8000-000000000003"
	e.append("Kitchen$1", nil, map[string]any{"id": later, "type": "Serve", "metadata": map[string]any{"causation_id": cause}}).must(t, http.StatusCreated)
	r = e.do("GET", "/v1/events/"+cause, nil).must(t, http.StatusOK)
	if caused := r.body["caused"].([]any); len(caused) != 2 || caused[1].(map[string]any)["id"] != later {
		t.Fatalf("caused after another write: %v", caused)
	}

	e.do("GET", "/v1/events/0190c1d2-0000-7000-8000-0000000000ff", nil).mustError(t, http.StatusNotFound, "event_not_found")
	e.do("GET", "/v1/events/nope", nil).mustError(t, http.StatusBadRequest, "bad_request")
}

// TestBadInput is the contract's bad-input matrix: each request is refused with its code
// and writes nothing.
func TestBadInput(t *testing.T) {
	e := newEnv(t, Options{MaxBody: 1 << 10})
	e.append("s", nil, ev("E", nil)).must(t, http.StatusCreated)
	before := e.store.LastPosition()
	valid := `{"type":"E"}`
	big := `{"events":[{"type":"E","data":{"x":"` + strings.Repeat("a", 2<<10) + `"}}]}`
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"malformed JSON", "POST", "/v1/streams/s", `{"events": [`, 400, "bad_request"},
		{"not JSON", "POST", "/v1/streams/s", `hello`, 400, "bad_request"},
		{"empty body", "POST", "/v1/streams/s", ``, 400, "bad_request"},
		{"trailing data", "POST", "/v1/streams/s", `{"events":[` + valid + `]} {}`, 400, "bad_request"},
		{"unknown field", "POST", "/v1/streams/s", `{"evnts":[` + valid + `]}`, 400, "bad_request"},
		{"events not a list", "POST", "/v1/streams/s", `{"events":{}}`, 400, "bad_request"},
		{"no events", "POST", "/v1/streams/s", `{"events":[]}`, 400, "bad_request"},
		{"events absent", "POST", "/v1/streams/s", `{}`, 400, "bad_request"},
		{"missing type", "POST", "/v1/streams/s", `{"events":[{"data":{}}]}`, 400, "bad_request"},
		{"empty type", "POST", "/v1/streams/s", `{"events":[{"type":""}]}`, 400, "bad_request"},
		{"type with control char", "POST", "/v1/streams/s", `{"events":[{"type":"a\u0007"}]}`, 400, "bad_request"},
		{"type too long", "POST", "/v1/streams/s", `{"events":[{"type":"` + strings.Repeat("t", 257) + `"}]}`, 400, "bad_request"},
		{"data not an object", "POST", "/v1/streams/s", `{"events":[{"type":"E","data":[1]}]}`, 400, "bad_request"},
		{"metadata not an object", "POST", "/v1/streams/s", `{"events":[{"type":"E","metadata":"x"}]}`, 400, "bad_request"},
		{"malformed id", "POST", "/v1/streams/s", `{"events":[{"id":"123","type":"E"}]}`, 400, "bad_request"},
		{"id without dashes", "POST", "/v1/streams/s", `{"events":[{"id":"0190c1d2000070008000000000000001","type":"E"}]}`, 400, "bad_request"},
		{"nil id", "POST", "/v1/streams/s", `{"events":[{"id":"00000000-0000-0000-0000-000000000000","type":"E"}]}`, 400, "bad_request"},
		{"id twice", "POST", "/v1/streams/s", `{"events":[{"id":"0190c1d2-0000-7000-8000-000000000009","type":"E"},{"id":"0190c1d2-0000-7000-8000-000000000009","type":"E"}]}`, 400, "bad_request"},
		{"expected_version word", "POST", "/v1/streams/s", `{"expected_version":"maybe","events":[` + valid + `]}`, 400, "bad_request"},
		{"expected_version -2", "POST", "/v1/streams/s", `{"expected_version":-2,"events":[` + valid + `]}`, 400, "bad_request"},
		{"expected_version float", "POST", "/v1/streams/s", `{"expected_version":1.5,"events":[` + valid + `]}`, 400, "bad_request"},
		{"expected_version number string", "POST", "/v1/streams/s", `{"expected_version":"0","events":[` + valid + `]}`, 400, "bad_request"},
		{"expected_version object", "POST", "/v1/streams/s", `{"expected_version":{},"events":[` + valid + `]}`, 400, "bad_request"},
		{"reserved stream", "POST", "/v1/streams/%24all", `{"events":[` + valid + `]}`, 400, "bad_request"},
		{"reserved stream prefix", "POST", "/v1/streams/%24mine", `{"events":[` + valid + `]}`, 400, "bad_request"},
		{"stream with control char", "POST", "/v1/streams/a%0Ab", `{"events":[` + valid + `]}`, 400, "bad_request"},
		{"stream not UTF-8", "POST", "/v1/streams/a%FFb", `{"events":[` + valid + `]}`, 400, "bad_request"},
		{"stream too long", "POST", "/v1/streams/" + strings.Repeat("s", 257), `{"events":[` + valid + `]}`, 400, "bad_request"},
		{"oversized body", "POST", "/v1/streams/s", big, 413, "payload_too_large"},
		{"link with no ids", "POST", "/v1/streams/t/links", `{"event_ids":[]}`, 400, "bad_request"},
		{"link malformed id", "POST", "/v1/streams/t/links", `{"event_ids":["zz"]}`, 400, "bad_request"},
		{"link id not a string", "POST", "/v1/streams/t/links", `{"event_ids":[1]}`, 400, "bad_request"},
		{"link into reserved", "POST", "/v1/streams/%24t/links", `{"event_ids":["0190c1d2-0000-7000-8000-000000000009"]}`, 400, "bad_request"},
		{"link bad expected", "POST", "/v1/streams/t/links", `{"expected_version":"x","event_ids":["0190c1d2-0000-7000-8000-000000000009"]}`, 400, "bad_request"},
		{"link oversized", "POST", "/v1/streams/t/links", `{"event_ids":["` + strings.Repeat("a", 2<<10) + `"]}`, 413, "payload_too_large"},
		{"limit zero", "GET", "/v1/streams/s?limit=0", "", 400, "bad_request"},
		{"limit negative", "GET", "/v1/streams/s?limit=-1", "", 400, "bad_request"},
		{"limit not a number", "GET", "/v1/all?limit=ten", "", 400, "bad_request"},
		{"from not a number", "GET", "/v1/all?from=x", "", 400, "bad_request"},
		{"from negative", "GET", "/v1/streams/s?from=-1", "", 400, "bad_request"},
		{"direction sideways", "GET", "/v1/streams/s?direction=sideways", "", 400, "bad_request"},
		{"category direction", "GET", "/v1/categories/s?direction=up", "", 400, "bad_request"},
		{"category with $", "GET", "/v1/categories/Order%241", "", 400, "bad_request"},
		{"empty type filter entry", "GET", "/v1/all?types=A,,B", "", 400, "bad_request"},
		{"read stream with control char", "GET", "/v1/streams/a%01", "", 400, "bad_request"},
		{"event id malformed", "GET", "/v1/events/0190c1d2", "", 400, "bad_request"},
		{"subscribe stream and types", "GET", "/v1/subscribe?stream=s&types=E", "", 400, "bad_request"},
		{"subscribe bad from", "GET", "/v1/subscribe?from=x", "", 400, "bad_request"},
		{"subscribe bad stream", "GET", "/v1/subscribe?stream=a%01", "", 400, "bad_request"},
		{"unknown route", "GET", "/v1/nothing", "", 404, "not_found"},
		{"wrong method on a stream", "PUT", "/v1/streams/s", `{"events":[` + valid + `]}`, 405, "method_not_allowed"},
		{"wrong method on $all", "POST", "/v1/all", `{}`, 405, "method_not_allowed"},
		{"wrong method on links", "GET", "/v1/streams/s/links", "", 405, "method_not_allowed"},
		{"wrong method on subscribe", "POST", "/v1/subscribe", "", 405, "method_not_allowed"},
		{"stream not found", "GET", "/v1/streams/nope", "", 404, "stream_not_found"},
		{"process without managers", "GET", "/v1/processes/M/1", "", 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.method, tt.path, tt.body).mustError(t, tt.status, tt.code)
			if r.header.Get("Content-Type") != "application/json" {
				t.Fatalf("content type %q", r.header.Get("Content-Type"))
			}
			if e.store.LastPosition() != before {
				t.Fatalf("refused request wrote: last position %d, was %d", e.store.LastPosition(), before)
			}
		})
	}
	if n := len(e.do("GET", "/v1/streams/s", nil).must(t, http.StatusOK).events(t)); n != 1 {
		t.Fatalf("stream s has %d events after the bad requests, want 1", n)
	}
	if allow := e.do("PATCH", "/v1/streams/s", nil).header.Get("Allow"); allow != "POST, GET, DELETE" {
		t.Fatalf("Allow %q", allow)
	}
}

func TestHealthzAndMetrics(t *testing.T) {
	e := newEnv(t, Options{})
	e.append("s", nil, ev("E", nil), ev("E", nil)).must(t, http.StatusCreated)
	id := e.do("GET", "/v1/streams/s", nil).events(t)[0]["id"]
	e.do("POST", "/v1/streams/t/links", map[string]any{"event_ids": []any{id}}).must(t, http.StatusCreated)
	r := e.do("GET", "/healthz", nil).must(t, http.StatusOK)
	if r.body["status"] != "ok" || r.body["last_position"] != num(3) {
		t.Fatalf("healthz %s", r.raw)
	}
	m := string(e.do("GET", "/metrics", nil).must(t, http.StatusOK).raw)
	for _, want := range []string{
		"pmd_events_appended_total 2",
		"pmd_events_linked_total 1",
		"pmd_events_read_total 2",
		"pmd_log_last_position 3",
		"pmd_subscriptions 0",
		`pmd_http_requests_total{code="201",route="append"} 1`,
		`pmd_http_request_duration_seconds_count{route="append"} 1`,
		"pmd_append_events_per_request_sum 2",
		"go_goroutines",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestIndexPage(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.do("GET", "/", nil).must(t, http.StatusOK)
	if !strings.Contains(string(r.raw), "/v1/streams/{stream}") {
		t.Fatalf("index page: %s", r.raw)
	}
	e.do("GET", "/nothing-here", nil).mustError(t, http.StatusNotFound, "not_found")
}

func TestRequestTimeout(t *testing.T) {
	e := newEnv(t, Options{RequestTimeout: time.Nanosecond})
	// The request's time is up before it starts: it is not started, and the client is
	// told why.
	r := e.append("s", nil, ev("E", nil)).mustError(t, http.StatusServiceUnavailable, "unavailable")
	if !strings.Contains(r.body["message"].(string), "did not finish within") {
		t.Fatalf("message %q", r.body["message"])
	}
	if e.store.LastPosition() != 0 {
		t.Fatal("an append that was never started wrote something")
	}
}

// TestServeShutdown checks the graceful shutdown: a subscription in progress ends, new
// requests are refused, Serve returns nil, and the store is still open for its owner to
// close.
func TestServeShutdown(t *testing.T) {
	store, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	srv := New(store, Options{Logger: quiet()})
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, 5*time.Second) }()
	base := "http://" + ln.Addr().String()

	sub := openSSE(t, base+"/v1/subscribe", "")
	sub.next(t) // the retry line: subscribed
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	sub.waitEnd(t)
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("the server still answers after shutdown")
	}
	if _, err := store.Append(context.Background(), "s", pmd.Any, pmd.EventData{Type: "E"}); err != nil {
		t.Fatalf("the store was closed by the server: %v", err)
	}
}

func TestCommitObserver(t *testing.T) {
	reg := prometheus.NewRegistry()
	store, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quiet(), OnCommit: CommitObserver(reg)})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ts := httptest.NewServer(New(store, Options{Registry: reg, Logger: quiet()}))
	defer ts.Close()
	for range 3 {
		if _, err := store.Append(context.Background(), "s", pmd.Any, pmd.EventData{Type: "A"}, pmd.EventData{Type: "B"}); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		"pmd_commit_duration_seconds_count 3",
		"pmd_commit_batch_writes_sum 3",
		"pmd_commit_batch_records_sum 6",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestLimitValues: a limit larger than MaxLimit is clamped, however large (past the
// int range too); one that is not an integer ≥ 1 is refused, naming it.
func TestLimitValues(t *testing.T) {
	e := newEnv(t, Options{MaxLimit: 2})
	for range 3 {
		e.append("s", nil, ev("E", nil)).must(t, http.StatusCreated)
	}
	// The OpenAPI validator of e's client reads integers as int64: it would refuse the
	// larger ones, which the document (an integer ≥ 1) allows.
	e.ts.Client().Transport = http.DefaultTransport
	for _, c := range []struct {
		limit  string
		events int // 0: refused
	}{
		{"1", 1},
		{"2", 2},
		{"3", 2},
		{"%2B3", 2},
		{"9223372036854775807", 2},
		{"9223372036854775808", 2},
		{"99999999999999999999", 2},
		{"0", 0},
		{"-1", 0},
		{"-99999999999999999999", 0},
		{"1.5", 0},
		{"1e3", 0},
		{"x", 0},
		{"%2099999999999999999999", 0},
	} {
		r := e.do("GET", "/v1/streams/s?limit="+c.limit, nil)
		if c.events == 0 {
			r.mustError(t, http.StatusBadRequest, codeBadRequest)
			if !strings.Contains(r.body["message"].(string), "limit must be an integer ≥ 1") {
				t.Fatalf("limit=%s: message %q", c.limit, r.body["message"])
			}
			continue
		}
		r.must(t, http.StatusOK)
		if n := len(r.events(t)); n != c.events {
			t.Fatalf("limit=%s: %d events, want %d", c.limit, n, c.events)
		}
	}
}

// TestBadExpectedVersionNamesTheValueSent: a refused expected_version is named as the
// client wrote it: 1.0 is not shown as 1, which would look like a valid version.
func TestBadExpectedVersionNamesTheValueSent(t *testing.T) {
	e := newEnv(t, Options{})
	for _, c := range []struct{ sent, shown string }{
		{`1.0`, `got 1.0`},
		{`-1.0`, `got -1.0`},
		{`1.5`, `got 1.5`},
		{`2e0`, `got 2.0`},
		{`1e21`, `got 1e+21`},
		{`-2`, `got -2`},
		{`true`, `got true`},
		{`"one"`, `got "one"`},
		{`{}`, `got {}`},
	} {
		r := e.do("POST", "/v1/streams/s", `{"expected_version":`+c.sent+`,"events":[{"type":"E"}]}`)
		r.mustError(t, http.StatusBadRequest, codeBadRequest)
		if msg := r.body["message"].(string); !strings.Contains(msg, c.shown) || !strings.HasPrefix(msg, badExpected) {
			t.Errorf("expected_version %s: message %q, want %q", c.sent, msg, c.shown)
		}
	}
	if n := e.store.LastPosition(); n != 0 {
		t.Fatalf("refused appends wrote: last position %d", n)
	}
}
