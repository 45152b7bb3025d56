package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestStrictInput: what encoding/json and net/url would accept, alter or ignore
// without a word is refused with a message that names the field and no Go type, and
// writes nothing.
func TestStrictInput(t *testing.T) {
	e := newEnv(t, Options{})
	e.append("s", nil, ev("E", nil)).must(t, http.StatusCreated)
	before := e.store.LastPosition()
	valid := `{"type":"E"}`
	tests := []struct {
		name, method, path, body string
		want                     string // in the message
	}{
		{"unknown query parameter", "GET", "/v1/streams/s?backward=true", "", `unknown query parameter "backward": GET /v1/streams/{stream} takes from, direction and limit`},
		{"unknown query parameter on append", "POST", "/v1/streams/s?expected=1", `{"events":[` + valid + `]}`, `unknown query parameter "expected"`},
		{"query parameter on a route without any", "GET", "/v1/processes?x=1", "", `GET /v1/processes takes no query parameters`},
		{"query parameter twice", "GET", "/v1/all?limit=1&limit=2", "", "query parameter limit is given 2 times"},
		{"query parameter not UTF-8", "GET", "/v1/streams?prefix=%FF", "", "query parameter prefix is not valid UTF-8"},
		{"malformed query", "GET", "/v1/all?from=%zz", "", "malformed query string"},
		{"unknown field", "POST", "/v1/streams/s", `{"evnts":[` + valid + `]}`, `unknown field "evnts": an append takes expected_version and events`},
		{"unknown event field", "POST", "/v1/streams/s", `{"events":[` + valid + `,{"tyep":"E"}]}`, `unknown field "events[1].tyep": an event takes id, type, data and metadata`},
		{"unknown link field", "POST", "/v1/streams/s/links", `{"ids":[]}`, `unknown field "ids": a link takes expected_version and event_ids`},
		{"data not an object", "POST", "/v1/streams/s", `{"events":[` + valid + `,` + valid + `,{"type":"E","data":[1]}]}`, "events[2].data must be a JSON object, got an array"},
		{"body not an object", "POST", "/v1/streams/s", `[]`, "the body must be a JSON object, got an array"},
		{"type not a string", "POST", "/v1/streams/s", `{"events":[{"type":7}]}`, "events[0].type must be a string, got a number"},
		{"events not a list", "POST", "/v1/streams/s", `{"events":{}}`, "events must be an array of events, got an object"},
		{"id not a string", "POST", "/v1/streams/s/links", `{"event_ids":[true]}`, "event_ids[0] must be a UUID string, got a boolean"},
		{"invalid UTF-8", "POST", "/v1/streams/s", "{\"events\":[{\"type\":\"E\",\"data\":{\"s\":\"a\xffb\"}}]}", "events[0].data.s: a string that is not valid UTF-8"},
		{"invalid UTF-8 after an escape", "POST", "/v1/streams/s", "{\"events\":[{\"type\":\"E\",\"data\":{\"s\":\"\\n\xc3\"}}]}", "events[0].data.s: a string that is not valid UTF-8"},
		{"lone surrogate escape", "POST", "/v1/streams/s", `{"events":[{"type":"E","data":{"s":"\ud800x"}}]}`, "events[0].data.s: a string that is not valid UTF-8 (a lone UTF-16 surrogate escape)"},
		{"reversed surrogate pair", "POST", "/v1/streams/s", `{"events":[{"type":"E","data":{"s":"\udc00\ud800"}}]}`, "events[0].data.s: a string that is not valid UTF-8"},
		{"invalid UTF-8 in a key", "POST", "/v1/streams/s", "{\"events\":[{\"type\":\"E\",\"data\":{\"\xff\":1}}]}", "events[0].data: a string that is not valid UTF-8"},
		{"max_count above uint64", "PUT", "/v1/streams/s/metadata", `{"max_count":18446744073709551616}`, "max_count: the integer 18446744073709551616 is outside the 64-bit range (-2^63 to 2^64-1); in event data, send it as a string"},
		{"integer above uint64", "POST", "/v1/streams/s", `{"events":[{"type":"E","data":{"n":18446744073709551616}}]}`, "events[0].data.n: the integer 18446744073709551616 is outside the 64-bit range"},
		{"integer below int64", "POST", "/v1/streams/s", `{"events":[{"type":"E","data":{"l":[0,-9223372036854775809]}}]}`, "events[0].data.l[1]: the integer -9223372036854775809 is outside the 64-bit range"},
		{"float beyond float64", "POST", "/v1/streams/s", `{"events":[{"type":"E","metadata":{"f":1e400}}]}`, "events[0].metadata.f: the number 1e400 is outside the range of a 64-bit float"},
		{"key twice at the top", "POST", "/v1/streams/s", `{"events":[` + valid + `],"events":[` + valid + `]}`, "events: the key is given twice in one object"},
		{"key twice in data", "POST", "/v1/streams/s", `{"events":[{"type":"E","data":{"a":{"b":1,"b":2}}}]}`, "events[0].data.a.b: the key is given twice in one object"},
		{"key twice in an event", "POST", "/v1/streams/s", `{"events":[{"type":"E","type":"F"}]}`, "events[0].type: the key is given twice in one object"},
		{"syntax error names where", "POST", "/v1/streams/s", `{"events":[{"type":"E","data":{"a":tru}}]}`, "malformed JSON at byte 35 in events[0].data.a"},
		{"body ends early", "POST", "/v1/streams/s", `{"events":[{"type":"E"`, "the body ends too early"},
		{"leading zero", "POST", "/v1/streams/s", `{"events":[{"type":"E","data":{"n":01}}]}`, "a number with a leading zero"},
		{"control character", "POST", "/v1/streams/s", "{\"events\":[{\"type\":\"E\",\"data\":{\"s\":\"a\tb\"}}]}", "events[0].data.s: a control character (byte 0x09) in a string"},
		{"too deep", "POST", "/v1/streams/s", `{"events":[{"type":"E","data":{"d":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `}}]}`, "nested deeper than 256 levels"},
		{"expected_version in query and body", "POST", "/v1/streams/s?expected_version=0", `{"expected_version":0,"events":[` + valid + `]}`, "expected_version is given both in the query and in the body"},
		{"bad expected_version in query", "POST", "/v1/streams/s?expected_version=maybe", `{"events":[` + valid + `]}`, `expected_version must be "any", "no_stream", "stream_exists" or an integer ≥ -1, got "maybe" in the query`},
		{"bad expected_version in body", "POST", "/v1/streams/s", `{"expected_version":1.5,"events":[` + valid + `]}`, `expected_version must be "any", "no_stream", "stream_exists" or an integer ≥ -1, got 1.5`},
		{"bad expected_version on delete", "DELETE", "/v1/streams/s?expected_version=-2", "", `got "-2" in the query`},
		{"bad expected_version in a delete's body", "DELETE", "/v1/streams/s", `{"expected_version":"maybe"}`, `got "maybe"`},
		{"unknown field on delete", "DELETE", "/v1/streams/s", `{"expected":0}`, `unknown field "expected": a delete takes expected_version`},
		{"expected_version in query and body on delete", "DELETE", "/v1/streams/s?expected_version=0", `{"expected_version":0}`, "expected_version is given both in the query and in the body"},
		{"malformed query with consistency", "GET", "/v1/all?consistency=local&from=%zz", "", "malformed query string"},
		{"semicolon with consistency", "GET", "/v1/all?consistency=local&limit=1;direction=backward", "", "malformed query string"},
		{"unknown query parameter with consistency", "GET", "/v1/streams/s?backward=true&consistency=leader", "", `unknown query parameter "backward"`},
		{"query parameter twice with consistency", "GET", "/v1/all?limit=1&consistency=local&limit=2", "", "query parameter limit is given 2 times"},
		{"consistency twice", "GET", "/v1/all?consistency=local&consistency=leader", "", "query parameter consistency is given 2 times"},
		{"bad consistency", "GET", "/v1/all?consistency=eventual", "", `consistency must be leader or local, got "eventual"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.method, tt.path, tt.body).mustError(t, http.StatusBadRequest, "bad_request")
			msg := r.body["message"].(string)
			if !strings.Contains(msg, tt.want) {
				t.Fatalf("message %q lacks %q", msg, tt.want)
			}
			for _, goType := range []string{"interface", "map[", "server.", "json:", "[]", "uint64", "int64"} {
				if strings.Contains(msg, goType) && !strings.Contains(tt.want, goType) {
					t.Fatalf("message %q shows a Go type (%s)", msg, goType)
				}
			}
			if e.store.LastPosition() != before {
				t.Fatalf("a refused request wrote: last position %d, was %d", e.store.LastPosition(), before)
			}
		})
	}
}

// TestExpectedVersionInQuery: expected_version in the query string is honoured by
// every write, as in the body.
func TestExpectedVersionInQuery(t *testing.T) {
	e := newEnv(t, Options{})
	body := `{"events":[{"type":"E"}]}`
	e.do("POST", "/v1/streams/q?expected_version=no_stream", body).must(t, http.StatusCreated)
	e.do("POST", "/v1/streams/q?expected_version=no_stream", body).mustError(t, http.StatusConflict, "wrong_expected_version")
	e.do("POST", "/v1/streams/q?expected_version=1", body).mustError(t, http.StatusConflict, "wrong_expected_version")
	e.do("POST", "/v1/streams/q?expected_version=0", body).must(t, http.StatusCreated)
	id := e.do("GET", "/v1/streams/q", nil).events(t)[0]["id"].(string)
	link := `{"event_ids":["` + id + `"]}`
	e.do("POST", "/v1/streams/l/links?expected_version=stream_exists", link).mustError(t, http.StatusConflict, "wrong_expected_version")
	e.do("POST", "/v1/streams/l/links?expected_version=-1", link).must(t, http.StatusCreated)
	e.do("DELETE", "/v1/streams/q?expected_version=0", nil).mustError(t, http.StatusConflict, "wrong_expected_version")
	e.do("DELETE", "/v1/streams/q?expected_version=1", nil).must(t, http.StatusNoContent)
}

// TestIntegersKeptExactly: every integer of int64 and uint64 reads back with all its
// digits, floats as floats.
func TestIntegersKeptExactly(t *testing.T) {
	e := newEnv(t, Options{})
	data := `{"above_2_53":9007199254740993,"max_int64":9223372036854775807,"min_int64":-9223372036854775808,` +
		`"max_uint64":18446744073709551615,"neg":-9007199254740993,"zero":-0,"f":1.5,"tiny":5e-324,"e":1e300}`
	e.do("POST", "/v1/streams/n", `{"events":[{"type":"E","data":`+data+`}]}`).must(t, http.StatusCreated)
	raw := string(e.do("GET", "/v1/streams/n", nil).must(t, http.StatusOK).raw)
	for _, want := range []string{
		`"above_2_53":9007199254740993`, `"max_int64":9223372036854775807`, `"min_int64":-9223372036854775808`,
		`"max_uint64":18446744073709551615`, `"neg":-9007199254740993`, `"zero":0`, `"f":1.5`, `"tiny":5e-324`, `"e":1e+300`,
	} {
		if !strings.Contains(raw, want) {
			t.Errorf("read back %s, lacks %s", raw, want)
		}
	}
}

// TestParseJSONValues: what parseJSON makes of each kind of value.
func TestParseJSONValues(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{`"plain"`, "plain"},
		{`"ab\ncd\"e\\f\/g\u00e9\ud83d\ude00h"`, "ab\ncd\"e\\f/g\u00e9\U0001F600h"},
		{`"\t"`, "\t"},
		{`7`, int64(7)},
		{`-9223372036854775808`, int64(-9223372036854775808)},
		{`18446744073709551615`, uint64(18446744073709551615)},
		{`1.5`, 1.5},
		{`1e2`, 100.0},
		{`1e-400`, 0.0},
		{` [true, false, null] `, []any{true, false, nil}},
		{`{"a":{"b":[]}}`, map[string]any{"a": map[string]any{"b": []any{}}}},
	}
	for _, tt := range tests {
		got, err := parseJSON([]byte(tt.in))
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseJSON(%s) = %#v, %v; want %#v", tt.in, got, err, tt.want)
		}
	}
}

// FuzzParseJSON holds parseJSON to encoding/json's grammar: what it accepts is valid
// JSON, and valid JSON it refuses is refused for one of the contract's reasons (a
// duplicate key, bad UTF-8, a number out of range, too deep), never as malformed; an
// accepted document encodes back to the same values encoding/json reads.
func FuzzParseJSON(f *testing.F) {
	for _, seed := range []string{
		`{"a":1,"b":[1,2.5,-3e2,"x",null,true,false,{}],"c":{"d":"\u00e9\ud83d\ude00\n"}}`, `"ab\ncd"`,
		`{"a":1,"a":2}`, `"\ud800"`, "\"\xff\"", `18446744073709551616`, `1e400`, `-0`, `0.1e-5`,
		`[`, `{"a"}`, `01`, `"\u12"`, ` [ ] `, `{"x":[[[[]]]]}`, `1 2`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := parseJSON(data)
		if err == nil {
			if !json.Valid(data) {
				t.Fatalf("accepted invalid JSON %q", data)
			}
			out, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("accepted %q but cannot encode it: %v", data, err)
			}
			var a, b any
			if err := json.Unmarshal(data, &a); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(out, &b); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("%q parsed as %s, encoding/json reads %v", data, out, a)
			}
			return
		}
		var api *apiError
		if !errors.As(err, &api) || api.code != codeBadRequest {
			t.Fatalf("error %v is not a bad_request", err)
		}
		if json.Valid(data) && strings.Contains(api.msg, "malformed") {
			t.Fatalf("valid JSON %q refused as malformed: %s", data, api.msg)
		}
		if !utf8.ValidString(api.msg) {
			t.Fatalf("message is not UTF-8: %q", api.msg)
		}
	})
}
