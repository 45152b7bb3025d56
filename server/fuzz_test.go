package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"unicode/utf8"

	"github.com/pmd-dev/pmd"
)

// FuzzAppendBody sends arbitrary bodies to the append and link routes: each is either
// accepted (201, and then it was valid JSON and valid UTF-8) or refused with a 4xx and
// the contract's error JSON, never a 5xx, and a refused request writes nothing.
func FuzzAppendBody(f *testing.F) {
	for _, seed := range []string{
		`{"events":[{"type":"E","data":{"n":1,"f":1.5,"s":"x","l":[1,{"a":null}]}}]}`,
		`{"expected_version":"no_stream","events":[{"id":"0190c1d2-0000-7000-8000-000000000001","type":"E"}]}`,
		`{"expected_version":-1,"events":[{"type":"E","metadata":{"causation_id":"x"}}]}`,
		`{"expected_version":3,"event_ids":["0190c1d2-0000-7000-8000-000000000001"]}`,
		`{"events":[{"type":"E","data":{"big":1e400}}]}`,
		`{"events":[]}`, `{"events":[{}]}`, `[]`, `null`, `{"events":[{"type":"E"}]} x`, ``,
		`{"events":[{"type":"E","data":{"a":1,"a":2}}]}`, "{\"events\":[{\"type\":\"E\",\"data\":{\"s\":\"\xff\"}}]}",
		`{"events":[{"type":"E","data":{"s":"\ud800"}}]}`, `{"events":[{"type":"E","data":{"n":18446744073709551616}}]}`,
		`{"events":[{"type":"E","data":{"n":-9223372036854775808,"u":18446744073709551615}}]}`,
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	store, err := pmd.Open(f.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	srv := New(store, Options{Logger: quiet(), MaxBody: 1 << 16})
	f.Fuzz(func(t *testing.T, body []byte, link bool) {
		path := "/v1/streams/s"
		if link {
			path += "/links"
		}
		before := store.LastPosition()
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest("POST", path, bytes.NewReader(body)))
		switch {
		case rec.Code == http.StatusCreated:
			// Only strict JSON is accepted: valid, and valid UTF-8 throughout.
			if !json.Valid(body) || !utf8.Valid(body) {
				t.Fatalf("accepted %q", body)
			}
		case rec.Code >= 400 && rec.Code < 500:
			var e errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" || e.Message == "" {
				t.Fatalf("refusal %d without the error JSON: %s", rec.Code, rec.Body)
			}
			if store.LastPosition() != before {
				t.Fatalf("refused request (%s) wrote something", rec.Body)
			}
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
	})
}
