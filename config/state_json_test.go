package config

import (
	"encoding/json"
	"testing"
	"time"
)

// A process's state is shown by the process routes as JSON: a float of its data with no
// fraction is written 2.0, as the API writes event data, so that a reader keeps it a
// float; written 2, the Go client read it as int64(2), and 1e20 as an integer outside
// the 64-bit range.
func TestStateWritesWholeFloats(t *testing.T) {
	data := map[string]any{"amount": float64(2), "big": 1e20, "n": int64(2), "half": 2.5}
	s := State{ID: "1", Seen: map[string]int{"A": 1}, Data: data, Events: 1, First: time.Unix(0, 0).UTC(),
		Last: LastEvent{ID: "e", Type: "A", Stream: "S$1", Data: data}}
	got, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	const d = `{"amount":2.0,"big":100000000000000000000.0,"half":2.5,"n":2}`
	want := `{"id":"1","seen":{"A":1},"data":` + d + `,"events":1,"first":"1970-01-01T00:00:00Z","issued":null,` +
		`"completed":false,"expired":false,"last":{"id":"e","type":"A","stream":"S$1","data":` + d + `}}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if _, ok := data["amount"].(float64); !ok {
		t.Errorf("the state's data was changed: amount is %T", data["amount"])
	}
}
