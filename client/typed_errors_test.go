package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/client"
	"github.com/pmd-dev/pmd/server"
)

// relay is a server.Node that never leads and names leader as the leader: the server
// forwards writes, and reads asked with consistency=leader, to leader and relays its
// answer, as a cluster's follower does.
type relay struct{ leader string }

func (r relay) IsLeader() bool { return false }
func (r relay) LeaderHTTP(context.Context, time.Duration) (string, error) {
	return r.leader, nil
}
func (relay) LeaderKnown() error                         { return nil }
func (relay) AppliedIndex() uint64                       { return 0 }
func (relay) WaitApplied(context.Context, uint64) error  { return nil }
func (relay) ReadBarrier(context.Context) error          { return nil }
func (relay) Join(context.Context, string, string) error { return nil }
func (relay) Remove(context.Context, string) error       { return nil }
func (relay) Problems() []string                         { return nil }

// storeErrProcesses is processes whose Retry fails with err, as a process manager
// whose write to the store failed.
type storeErrProcesses struct {
	processes
	err error
}

func (p storeErrProcesses) Retry(context.Context, string, string, uuid.UUID) error { return p.err }

// TestErrorsAsTheStoresTypedErrors: each error of a route that the embedded store
// returns as a typed error (*pmd.WrongExpectedVersionError, *pmd.DuplicateEventError,
// *pmd.EventNotFoundError, *pmd.StreamNotFoundError, *pmd.InvalidArgumentError) is
// found by errors.As through the client, with the fields the store's own has, while
// errors.Is still matches the sentinel and errors.As still finds the *client.Error with
// the status, code and the daemon's message. The same holds for an answer a follower
// relays from the leader. A bad request that the daemon's parsing refuses, not the
// store, names no argument: it matches the sentinel only.
func TestErrorsAsTheStoresTypedErrors(t *testing.T) {
	id := uuid.MustParse("0190c1d2-0000-7000-8000-000000000001")
	unknown := uuid.MustParse("0190c1d2-0000-7000-8000-000000000404")
	// pmErr is what storeErrProcesses' Retry fails with: a store's error wrapped by
	// the process manager.
	pmErr := &pmd.WrongExpectedVersionError{Stream: "CateringMatch-deliveries$42", Expected: pmd.AtVersion(3), Actual: 4}
	for _, mode := range []string{"single node", "relayed by a follower"} {
		t.Run(mode, func(t *testing.T) {
			d := startDaemon(t, server.Options{Processes: storeErrProcesses{err: fmt.Errorf("pm: CateringMatch$42: retry: %w", pmErr)}}, nil)
			url := d.url
			var opts []client.Option
			if mode != "single node" {
				own, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
				if err != nil {
					t.Fatal(err)
				}
				// The follower's own store holds what the leader's lacks (the unknown
				// event, Order$404, Order$9 not deleted), so that an answer of its own to
				// a read would not be the leader's error it relays.
				for _, e := range []struct {
					stream string
					id     uuid.UUID
				}{{"Order$404", unknown}, {"Order$9", uuid.Nil}} {
					if _, err := own.Append(context.Background(), e.stream, pmd.NoStream, pmd.EventData{ID: e.id, Type: "Placed"}); err != nil {
						t.Fatal(err)
					}
				}
				ts := httptest.NewServer(server.New(own, server.Options{Logger: quiet(), Node: relay{leader: strings.TrimPrefix(d.url, "http://")}}))
				t.Cleanup(func() {
					ts.Close()
					own.Close()
				})
				url = ts.URL
				opts = append(opts, client.WithLeaderReads())
			}
			c := newClient(t, url, opts...)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s := d.store
			if _, err := s.Append(ctx, "Order$1", pmd.NoStream, pmd.EventData{ID: id, Type: "Placed"}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Append(ctx, "Order$9", pmd.NoStream, pmd.EventData{Type: "Placed"}); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteStream(ctx, "Order$9", pmd.Any); err != nil {
				t.Fatal(err)
			}
			store, daemon := on{ctx: ctx, s: s}, on{ctx: ctx, c: c}
			tests := []struct {
				name   string
				status int
				code   string
				want   error // the typed error expected, nil for none
				// local is false when the embedded store cannot be asked the same: call
				// runs on the client only. Otherwise the store's error must be want too.
				local bool
				call  func(on) error
			}{
				{"append, expected no_stream", 409, "wrong_expected_version",
					&pmd.WrongExpectedVersionError{Stream: "Order$1", Expected: pmd.NoStream, Actual: 0}, true,
					func(o on) error { return o.append("Order$1", pmd.NoStream, pmd.EventData{Type: "X"}) }},
				{"append, expected an integer", 409, "wrong_expected_version",
					&pmd.WrongExpectedVersionError{Stream: "Order$1", Expected: pmd.AtVersion(5), Actual: 0}, true,
					func(o on) error { return o.append("Order$1", pmd.AtVersion(5), pmd.EventData{Type: "X"}) }},
				{"append, expected a version past 2^63", 409, "wrong_expected_version",
					&pmd.WrongExpectedVersionError{Stream: "Order$1", Expected: pmd.AtVersion(1 << 63), Actual: 0}, true,
					func(o on) error { return o.append("Order$1", pmd.AtVersion(1<<63), pmd.EventData{Type: "X"}) }},
				{"append, expected stream_exists, never written", 409, "wrong_expected_version",
					&pmd.WrongExpectedVersionError{Stream: "Order$2", Expected: pmd.StreamExists, Actual: -1}, true,
					func(o on) error { return o.append("Order$2", pmd.StreamExists, pmd.EventData{Type: "X"}) }},
				{"append, expected an integer, deleted", 409, "wrong_expected_version",
					&pmd.WrongExpectedVersionError{Stream: "Order$9", Expected: pmd.AtVersion(0), Actual: -1}, true,
					func(o on) error { return o.append("Order$9", pmd.AtVersion(0), pmd.EventData{Type: "X"}) }},
				{"link, expected stream_exists", 409, "wrong_expected_version",
					&pmd.WrongExpectedVersionError{Stream: "Audit$1", Expected: pmd.StreamExists, Actual: -1}, true,
					func(o on) error { return o.link("Audit$1", pmd.StreamExists, id) }},
				{"delete, expected an integer", 409, "wrong_expected_version",
					&pmd.WrongExpectedVersionError{Stream: "Order$1", Expected: pmd.AtVersion(7), Actual: 0}, true,
					func(o on) error { return o.delete("Order$1", pmd.AtVersion(7)) }},
				{"delete, expected no_stream", 409, "wrong_expected_version",
					&pmd.WrongExpectedVersionError{Stream: "Order$1", Expected: pmd.NoStream, Actual: 0}, true,
					func(o on) error { return o.delete("Order$1", pmd.NoStream) }},
				{"append of a stored id", 409, "duplicate_event",
					&pmd.DuplicateEventError{ID: id, Stream: "Order$2"}, true,
					func(o on) error { return o.append("Order$2", pmd.Any, pmd.EventData{ID: id, Type: "X"}) }},
				{"link into a stream holding the event", 409, "duplicate_event",
					&pmd.DuplicateEventError{ID: id, Stream: "Order$1"}, true,
					func(o on) error { return o.link("Order$1", pmd.Any, id) }},
				{"link of an unknown event", 404, "event_not_found",
					&pmd.EventNotFoundError{ID: unknown}, true,
					func(o on) error { return o.link("Audit$1", pmd.Any, id, unknown) }},
				{"event by id", 404, "event_not_found",
					&pmd.EventNotFoundError{ID: unknown}, true,
					func(o on) error { return o.event(unknown) }},
				{"read of a stream never written", 404, "stream_not_found",
					&pmd.StreamNotFoundError{Stream: "Order$404"}, true,
					func(o on) error { return o.read("Order$404", pmd.ReadOptions{}) }},
				{"backward read of a deleted stream", 404, "stream_not_found",
					&pmd.StreamNotFoundError{Stream: "Order$9"}, true,
					func(o on) error { return o.read("Order$9", pmd.ReadOptions{From: pmd.End, Backward: true}) }},
				{"retention past the stream's end", 400, "bad_request",
					&pmd.InvalidArgumentError{Arg: "truncate_before", Reason: "10 is past the end of stream \"Order$1\", whose next version is 1"}, true,
					func(o on) error { return o.setRetention("Order$1", pmd.Retention{TruncateBefore: 10}) }},
				{"a store's error a process manager wraps", 409, "wrong_expected_version", pmErr, false,
					func(on) error { return c.Retry(ctx, "CateringMatch", "42", parkedCommand.String()) }},
				{"a bad request of the daemon's own parsing", 400, "bad_request", nil, false,
					func(on) error { _, err := c.ListStreams(ctx, client.ListOptions{After: "\xff"}); return err }},
			}
			typed := []error{&pmd.WrongExpectedVersionError{}, &pmd.DuplicateEventError{}, &pmd.EventNotFoundError{},
				&pmd.StreamNotFoundError{}, &pmd.InvalidArgumentError{}, &pmd.CorruptError{}}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					if tt.local {
						if err := tt.call(store); !reflect.DeepEqual(asTyped(err, tt.want), tt.want) {
							t.Fatalf("the embedded store: %#v, want %#v", err, tt.want)
						}
					}
					err := tt.call(daemon)
					if err == nil {
						t.Fatal("no error")
					}
					if !errors.Is(err, sentinels[tt.code]) {
						t.Errorf("%v does not match %v", err, sentinels[tt.code])
					}
					var api *client.Error
					if !errors.As(err, &api) || api.Status != tt.status || api.Code != tt.code {
						t.Fatalf("got %#v, want a *client.Error with status %d and code %s", err, tt.status, tt.code)
					}
					if tt.want != nil && !strings.Contains(api.Message, tt.want.Error()) {
						t.Errorf("message %q, want the store's %q", api.Message, tt.want.Error())
					}
					for _, other := range typed {
						got := asTyped(err, other)
						if reflect.TypeOf(other) == reflect.TypeOf(tt.want) {
							if !reflect.DeepEqual(got, tt.want) {
								t.Errorf("errors.As found %#v, want %#v", got, tt.want)
							}
						} else if got != nil {
							t.Errorf("errors.As found %#v, want none of its type", got)
						}
					}
				})
			}
		})
	}
}

// sentinels are the sentinels of the codes whose errors the store types.
var sentinels = map[string]error{
	"wrong_expected_version": pmd.ErrWrongExpectedVersion, "duplicate_event": pmd.ErrDuplicateEvent,
	"event_not_found": pmd.ErrEventNotFound, "stream_not_found": pmd.ErrStreamNotFound, "bad_request": pmd.ErrInvalidArgument,
}

// on makes a call on the embedded store s or, if s is nil, on the client c.
type on struct {
	ctx context.Context
	s   *pmd.Store
	c   *client.Client
}

func (o on) append(stream string, expected pmd.ExpectedVersion, events ...pmd.EventData) error {
	if o.s != nil {
		_, err := o.s.Append(o.ctx, stream, expected, events...)
		return err
	}
	_, err := o.c.Append(o.ctx, stream, expected, events...)
	return err
}

func (o on) link(stream string, expected pmd.ExpectedVersion, ids ...uuid.UUID) error {
	if o.s != nil {
		_, err := o.s.Link(o.ctx, stream, expected, ids...)
		return err
	}
	_, err := o.c.Link(o.ctx, stream, expected, ids...)
	return err
}

func (o on) delete(stream string, expected pmd.ExpectedVersion) error {
	if o.s != nil {
		return o.s.DeleteStream(o.ctx, stream, expected)
	}
	return o.c.DeleteStream(o.ctx, stream, expected)
}

func (o on) setRetention(stream string, r pmd.Retention) error {
	if o.s != nil {
		return o.s.SetRetention(o.ctx, stream, r)
	}
	return o.c.SetRetention(o.ctx, stream, r)
}

func (o on) event(id uuid.UUID) error {
	if o.s != nil {
		_, err := o.s.Event(o.ctx, id)
		return err
	}
	_, err := o.c.Event(o.ctx, id)
	return err
}

// read reads the first page (the first event) of stream.
func (o on) read(stream string, opts pmd.ReadOptions) error {
	if o.s != nil {
		for _, err := range o.s.ReadStream(o.ctx, stream, opts) {
			return err
		}
		return nil
	}
	_, err := o.c.ReadStream(o.ctx, stream, opts)
	return err
}

// asTyped is what errors.As finds in err of the type of like (a pointer to a struct),
// or nil.
func asTyped(err, like error) error {
	if like == nil {
		return nil
	}
	target := reflect.New(reflect.TypeOf(like))
	if !errors.As(err, target.Interface()) {
		return nil
	}
	return target.Elem().Interface().(error)
}

// TestErrorFieldsDecoded: the client reads the typed error of each code from the
// daemon's error body, each form of an expected version included, and gives none from
// a body without its fields (an older daemon's) or with a field missing or malformed,
// where a typed error would pretend to know a zero value. The *Error is the same in
// every case: its code, message and sentinel do not depend on the fields.
func TestErrorFieldsDecoded(t *testing.T) {
	id := uuid.MustParse("0190c1d2-0000-7000-8000-000000000001")
	msg := `"message":"the daemon's words"`
	tests := []struct {
		name   string
		status int
		body   string
		want   error // nil: no typed error
	}{
		{"expected any", 409, `{"error":"wrong_expected_version",` + msg + `,"stream":"S$1","expected_version":"any","actual_version":3}`,
			&pmd.WrongExpectedVersionError{Stream: "S$1", Expected: pmd.Any, Actual: 3}},
		{"expected no_stream", 409, `{"error":"wrong_expected_version",` + msg + `,"stream":"S$1","expected_version":"no_stream","actual_version":0}`,
			&pmd.WrongExpectedVersionError{Stream: "S$1", Expected: pmd.NoStream, Actual: 0}},
		{"expected stream_exists", 409, `{"error":"wrong_expected_version",` + msg + `,"stream":"S$1","expected_version":"stream_exists","actual_version":-1}`,
			&pmd.WrongExpectedVersionError{Stream: "S$1", Expected: pmd.StreamExists, Actual: -1}},
		{"expected an integer", 409, `{"error":"wrong_expected_version",` + msg + `,"stream":"S$1","expected_version":18446744073709551615,"actual_version":9223372036854775807}`,
			&pmd.WrongExpectedVersionError{Stream: "S$1", Expected: pmd.AtVersion(1<<64 - 1), Actual: 1<<63 - 1}},
		{"expected -1", 409, `{"error":"wrong_expected_version",` + msg + `,"stream":"S$1","expected_version":-1,"actual_version":0}`,
			&pmd.WrongExpectedVersionError{Stream: "S$1", Expected: pmd.NoStream, Actual: 0}},
		{"older daemon: wrong expected version", 409, `{"error":"wrong_expected_version",` + msg + `}`, nil},
		{"no expected version", 409, `{"error":"wrong_expected_version",` + msg + `,"stream":"S$1","actual_version":0}`, nil},
		{"no actual version", 409, `{"error":"wrong_expected_version",` + msg + `,"stream":"S$1","expected_version":"any"}`, nil},
		{"no stream", 409, `{"error":"wrong_expected_version",` + msg + `,"expected_version":"any","actual_version":0}`, nil},
		{"an expected version of another name", 409, `{"error":"wrong_expected_version",` + msg + `,"stream":"S$1","expected_version":"some","actual_version":0}`, nil},
		{"an expected version below -1", 409, `{"error":"wrong_expected_version",` + msg + `,"stream":"S$1","expected_version":-2,"actual_version":0}`, nil},
		{"an actual version below -1", 409, `{"error":"wrong_expected_version",` + msg + `,"stream":"S$1","expected_version":"any","actual_version":-2}`, nil},
		{"an actual version as a string", 409, `{"error":"wrong_expected_version",` + msg + `,"stream":"S$1","expected_version":"any","actual_version":"0"}`, nil},
		{"duplicate event", 409, `{"error":"duplicate_event",` + msg + `,"id":"` + id.String() + `","stream":"S$1"}`,
			&pmd.DuplicateEventError{ID: id, Stream: "S$1"}},
		{"older daemon: duplicate event", 409, `{"error":"duplicate_event",` + msg + `}`, nil},
		{"duplicate event without its stream", 409, `{"error":"duplicate_event",` + msg + `,"id":"` + id.String() + `"}`, nil},
		{"duplicate event with a bad id", 409, `{"error":"duplicate_event",` + msg + `,"id":"x","stream":"S$1"}`, nil},
		{"event not found", 404, `{"error":"event_not_found",` + msg + `,"id":"` + id.String() + `"}`, &pmd.EventNotFoundError{ID: id}},
		{"older daemon: event not found", 404, `{"error":"event_not_found",` + msg + `}`, nil},
		{"stream not found", 404, `{"error":"stream_not_found",` + msg + `,"stream":"S$1"}`, &pmd.StreamNotFoundError{Stream: "S$1"}},
		{"older daemon: stream not found", 404, `{"error":"stream_not_found",` + msg + `}`, nil},
		{"invalid argument", 400, `{"error":"bad_request",` + msg + `,"argument":"events[0].type","reason":"is empty"}`,
			&pmd.InvalidArgumentError{Arg: "events[0].type", Reason: "is empty"}},
		{"older daemon: bad request", 400, `{"error":"bad_request",` + msg + `}`, nil},
		{"a bad request without a reason", 400, `{"error":"bad_request",` + msg + `,"argument":"limit"}`, nil},
		{"fields of another code", 404, `{"error":"not_found",` + msg + `,"stream":"S$1","id":"` + id.String() + `"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				fmt.Fprintln(w, tt.body)
			}))
			defer ts.Close()
			err := newClient(t, ts.URL).DeleteStream(context.Background(), "S$1", pmd.Any)
			var api *client.Error
			if !errors.As(err, &api) || api.Status != tt.status || api.Message != "the daemon's words" {
				t.Fatalf("got %#v, want the daemon's *client.Error", err)
			}
			if s := sentinels[api.Code]; s != nil && !errors.Is(err, s) {
				t.Errorf("%v does not match %v", err, s)
			}
			for _, like := range []error{&pmd.WrongExpectedVersionError{}, &pmd.DuplicateEventError{}, &pmd.EventNotFoundError{},
				&pmd.StreamNotFoundError{}, &pmd.InvalidArgumentError{}} {
				got := asTyped(err, like)
				if tt.want != nil && reflect.TypeOf(like) == reflect.TypeOf(tt.want) {
					if !reflect.DeepEqual(got, tt.want) {
						t.Errorf("errors.As found %#v, want %#v", got, tt.want)
					}
					// The typed error's fields, not the daemon's message, make its text, as
					// the store's own.
					if got != nil && got.Error() != tt.want.Error() {
						t.Errorf("text %q, want %q", got.Error(), tt.want.Error())
					}
				} else if got != nil {
					t.Errorf("errors.As found %#v, want none of its type", got)
				}
			}
		})
	}
}
