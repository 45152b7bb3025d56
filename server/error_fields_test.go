package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// TestErrorBodiesCarryTheStoresFields: the error body of each route whose error is one
// of the store's typed errors carries its fields beside error and message, which stay
// as they were (the message is the store's error text): stream, expected_version (as a
// write gives it) and actual_version of wrong_expected_version, id and stream of
// duplicate_event, id of event_not_found, stream of stream_not_found, argument and
// reason of a bad_request the store refused. A bad request the server's own parsing
// refused has error and message only. A follower relays the leader's body byte for
// byte, not an answer of its own. Every answer is held to the OpenAPI document.
func TestErrorBodiesCarryTheStoresFields(t *testing.T) {
	leader := newEnv(t, Options{})
	ctx := context.Background()
	id := uuid.MustParse("0190c1d2-0000-7000-8000-000000000001")
	unknown := "0190c1d2-0000-7000-8000-000000000404"
	if _, err := leader.store.Append(ctx, "Order$1", pmd.NoStream, pmd.EventData{ID: id, Type: "Placed"}); err != nil {
		t.Fatal(err)
	}
	// A follower whose reads asked with consistency=leader, and writes, go to leader.
	store, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	// The follower's own store holds what the leader's lacks, so that an answer of its
	// own to a read (an event, a stream) would differ from the leader's error it relays.
	if _, err := store.Append(ctx, "Order$404", pmd.NoStream, pmd.EventData{ID: uuid.MustParse(unknown), Type: "Placed"}); err != nil {
		t.Fatal(err)
	}
	fts := httptest.NewServer(New(store, Options{Logger: quiet(), Node: follower{leader: strings.TrimPrefix(leader.ts.URL, "http://")}}))
	fts.Client().Transport = newValidating(t, fts.Client().Transport)
	t.Cleanup(func() {
		fts.Close()
		store.Close()
	})
	relayed := &env{t: t, store: store, ts: fts}

	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"append, expected no_stream", "POST", "/v1/streams/Order%241", `{"expected_version":"no_stream","events":[{"type":"X"}]}`, 409,
			`{"error":"wrong_expected_version","message":"wrong expected version for stream \"Order$1\": expected no_stream, actual 0","stream":"Order$1","expected_version":"no_stream","actual_version":0}`},
		{"append, expected -1", "POST", "/v1/streams/Order%241", `{"expected_version":-1,"events":[{"type":"X"}]}`, 409,
			`{"error":"wrong_expected_version","message":"wrong expected version for stream \"Order$1\": expected no_stream, actual 0","stream":"Order$1","expected_version":"no_stream","actual_version":0}`},
		{"append, expected an integer", "POST", "/v1/streams/Order%241", `{"expected_version":18446744073709551615,"events":[{"type":"X"}]}`, 409,
			`{"error":"wrong_expected_version","message":"wrong expected version for stream \"Order$1\": expected 18446744073709551615, actual 0","stream":"Order$1","expected_version":18446744073709551615,"actual_version":0}`},
		{"append, expected stream_exists", "POST", "/v1/streams/Order%242?expected_version=stream_exists", `{"events":[{"type":"X"}]}`, 409,
			`{"error":"wrong_expected_version","message":"wrong expected version for stream \"Order$2\": expected stream_exists, actual no_stream","stream":"Order$2","expected_version":"stream_exists","actual_version":-1}`},
		{"link, expected an integer", "POST", "/v1/streams/Audit%241/links", `{"expected_version":3,"event_ids":["` + id.String() + `"]}`, 409,
			`{"error":"wrong_expected_version","message":"wrong expected version for stream \"Audit$1\": expected 3, actual no_stream","stream":"Audit$1","expected_version":3,"actual_version":-1}`},
		{"delete, expected an integer", "DELETE", "/v1/streams/Order%241?expected_version=7", "", 409,
			`{"error":"wrong_expected_version","message":"wrong expected version for stream \"Order$1\": expected 7, actual 0","stream":"Order$1","expected_version":7,"actual_version":0}`},
		{"append of a stored id", "POST", "/v1/streams/Order%242", `{"events":[{"id":"` + id.String() + `","type":"X"}]}`, 409,
			`{"error":"duplicate_event","message":"duplicate event ` + id.String() + ` in stream \"Order$2\"","stream":"Order$2","id":"` + id.String() + `"}`},
		{"link into a stream holding the event", "POST", "/v1/streams/Order%241/links", `{"event_ids":["` + id.String() + `"]}`, 409,
			`{"error":"duplicate_event","message":"duplicate event ` + id.String() + ` in stream \"Order$1\"","stream":"Order$1","id":"` + id.String() + `"}`},
		{"link of an unknown event", "POST", "/v1/streams/Audit%241/links", `{"event_ids":["` + unknown + `"]}`, 404,
			`{"error":"event_not_found","message":"event ` + unknown + ` not found","id":"` + unknown + `"}`},
		{"event by id", "GET", "/v1/events/" + unknown, "", 404,
			`{"error":"event_not_found","message":"event ` + unknown + ` not found","id":"` + unknown + `"}`},
		{"read of a stream never written", "GET", "/v1/streams/Order%24404?direction=backward", "", 404,
			`{"error":"stream_not_found","message":"stream \"Order$404\" not found","stream":"Order$404"}`},
		{"retention past the stream's end", "PUT", "/v1/streams/Order%241/metadata", `{"truncate_before":10}`, 400,
			`{"error":"bad_request","message":"invalid argument truncate_before: 10 is past the end of stream \"Order$1\", whose next version is 1","argument":"truncate_before","reason":"10 is past the end of stream \"Order$1\", whose next version is 1"}`},
		{"a stream name the store refuses", "POST", "/v1/streams/%24all", `{"events":[{"type":"X"}]}`, 400, ""},
		// Names the server checks by the store's rules, before the store is asked.
		{"retention of a bad stream name", "GET", "/v1/streams/a%01/metadata", "", 400,
			`{"error":"bad_request","message":"stream \"a\\x01\" contains the control character U+0001","argument":"stream","reason":"\"a\\x01\" contains the control character U+0001"}`},
		{"a read of a bad type", "GET", "/v1/all?types=Placed,a%01", "", 400,
			`{"error":"bad_request","message":"types[1] \"a\\x01\" contains the control character U+0001","argument":"types[1]","reason":"\"a\\x01\" contains the control character U+0001"}`},
		{"a subscription to a bad type", "GET", "/v1/subscribe?type=a%01", "", 400,
			`{"error":"bad_request","message":"type[0] \"a\\x01\" contains the control character U+0001","argument":"type[0]","reason":"\"a\\x01\" contains the control character U+0001"}`},
		{"a subscription to a bad stream name", "GET", "/v1/subscribe?stream=a%01", "", 400,
			`{"error":"bad_request","message":"stream \"a\\x01\" contains the control character U+0001","argument":"stream","reason":"\"a\\x01\" contains the control character U+0001"}`},
		{"a subscription to a bad category", "GET", "/v1/subscribe?category=Order%24", "", 400,
			`{"error":"bad_request","message":"category \"Order$\" holds a $: a category is the part of a stream name before its first $ (here \"Order\")","argument":"category","reason":"\"Order$\" holds a $: a category is the part of a stream name before its first $ (here \"Order\")"}`},
		{"a bad request of the server's own parsing", "POST", "/v1/streams/Order%241", `{"expected_version":"soon","events":[{"type":"X"}]}`, 400,
			`{"error":"bad_request","message":"expected_version must be \"any\", \"no_stream\", \"stream_exists\" or an integer ≥ -1, got \"soon\""}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leader.t, relayed.t = t, t
			got := leader.do(tt.method, tt.path, tt.body).must(t, tt.status)
			if tt.want == "" {
				// Whatever the store says: the body names its argument and reason.
				if got.body["argument"] == nil || got.body["reason"] == nil || len(got.body) != 4 {
					t.Fatalf("body %s, want error, message, argument and reason", got.raw)
				}
			} else if string(got.raw) != tt.want+"\n" {
				t.Fatalf("body\n%s\nwant\n%s", got.raw, tt.want)
			}
			path := tt.path
			if tt.method == "GET" {
				path += map[bool]string{true: "&", false: "?"}[strings.Contains(path, "?")] + "consistency=leader"
			}
			if r := relayed.do(tt.method, path, tt.body).must(t, tt.status); string(r.raw) != string(got.raw) {
				t.Fatalf("the follower relayed\n%s\nthe leader answered\n%s", r.raw, got.raw)
			}
		})
	}
}

// TestErrorFieldsOfTheCodeOnly: an error wrapping typed errors of two codes gets the
// code classify gives it and the fields of that code's typed error only, not the
// other's (a stream or an id of the other error would name the wrong one).
func TestErrorFieldsOfTheCodeOnly(t *testing.T) {
	dup := uuid.MustParse("0190c1d2-0000-7000-8000-000000000001")
	missing := uuid.MustParse("0190c1d2-0000-7000-8000-000000000404")
	wrong := &pmd.WrongExpectedVersionError{Stream: "A$1", Expected: pmd.AtVersion(3), Actual: 4}
	tests := []struct {
		name string
		err  error
		want string // the body without error and message
	}{
		{"wrong expected version and duplicate event", errors.Join(&pmd.DuplicateEventError{ID: dup, Stream: "B$1"}, wrong),
			`"error":"wrong_expected_version","stream":"A$1","expected_version":3,"actual_version":4`},
		{"duplicate event and event not found", fmt.Errorf("%w, then %w", &pmd.EventNotFoundError{ID: missing}, &pmd.DuplicateEventError{ID: dup, Stream: "B$1"}),
			`"error":"duplicate_event","stream":"B$1","id":"` + dup.String() + `"`},
		{"stream not found and event not found", errors.Join(&pmd.EventNotFoundError{ID: missing}, &pmd.StreamNotFoundError{Stream: "C$1"}),
			`"error":"stream_not_found","stream":"C$1"`},
		{"invalid argument and stream not found", errors.Join(&pmd.StreamNotFoundError{Stream: "C$1"}, &pmd.InvalidArgumentError{Arg: "limit", Reason: "is 0"}),
			`"error":"bad_request","argument":"limit","reason":"is 0"`},
		{"event not found and wrong expected version, as not found", errors.Join(wrong, &apiError{status: http.StatusNotFound, code: codeEventNotFound, msg: "gone"}, &pmd.EventNotFoundError{ID: missing}),
			`"error":"event_not_found","id":"` + missing.String() + `"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, code := classify(tt.err)
			b := newErrorBody(code, "m", tt.err)
			got, err := json.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			want := `{` + strings.Replace(tt.want, `"error":"`+code+`"`, `"error":"`+code+`","message":"m"`, 1) + `}`
			if string(got) != want {
				t.Fatalf("body\n%s\nwant\n%s", got, want)
			}
		})
	}
}
