package server

import (
	"context"
	"encoding/json"
	"math"
	"testing"

	"github.com/pmd-dev/pmd"
)

// A float with no fraction is read back as a float, not as an integer: encoding/json
// writes float64(2) as 2, which the daemon's own parser and the Go client take for the
// integer 2, so an event the embedded store gives as float64(2) came back over HTTP as
// int64(2).
func TestWholeFloatsStayFloats(t *testing.T) {
	e := newEnv(t, Options{})
	data := map[string]any{
		"whole": float64(2), "neg_zero": math.Copysign(0, -1), "big": 1e20, "huge": 1e21,
		"half": 2.5, "int": int64(2), "f32": float32(3),
		"list": []any{float64(4), int64(4), "4"}, "nested": map[string]any{"amount": float64(5)},
	}
	meta := map[string]any{"score": float64(6)}
	if _, err := e.store.Append(context.Background(), "Float$1", pmd.NoStream, pmd.EventData{Type: "Priced", Data: data, Metadata: meta}); err != nil {
		t.Fatal(err)
	}
	got := e.do("GET", "/v1/streams/Float$1", nil).must(t, 200)
	var page struct {
		Events []struct {
			Data     map[string]json.RawMessage `json:"data"`
			Metadata map[string]json.RawMessage `json:"metadata"`
		} `json:"events"`
	}
	if err := json.Unmarshal(got.raw, &page); err != nil || len(page.Events) != 1 {
		t.Fatalf("page %s: %v", got.raw, err)
	}
	ev := page.Events[0]
	tests := []struct {
		field string
		raw   json.RawMessage
		want  string
	}{
		{"data.whole", ev.Data["whole"], "2.0"},
		{"data.neg_zero", ev.Data["neg_zero"], "-0.0"},
		{"data.big", ev.Data["big"], "100000000000000000000.0"},
		{"data.huge", ev.Data["huge"], "1e+21"},
		{"data.half", ev.Data["half"], "2.5"},
		{"data.int", ev.Data["int"], "2"},
		{"data.f32", ev.Data["f32"], "3.0"},
		{"data.list", ev.Data["list"], `[4.0,4,"4"]`},
		{"data.nested", ev.Data["nested"], `{"amount":5.0}`},
		{"metadata.score", ev.Metadata["score"], "6.0"},
	}
	for _, tt := range tests {
		if string(tt.raw) != tt.want {
			t.Errorf("%s is %s, want %s", tt.field, tt.raw, tt.want)
		}
	}

	// What the daemon writes, its parser reads back as it was stored: appended again
	// over HTTP, the event's data holds the same floats and integers.
	again := map[string]any{"events": []any{map[string]any{"type": "Priced", "data": json.RawMessage(mustMarshal(t, ev.Data))}}}
	e.do("POST", "/v1/streams/Float$2", again).must(t, 201)
	for stored, err := range e.store.ReadStream(context.Background(), "Float$2", pmd.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"whole", "big", "huge", "f32"} {
			if _, ok := stored.Data[f].(float64); !ok {
				t.Errorf("appended again, data.%s is %T %v, want a float64", f, stored.Data[f], stored.Data[f])
			}
		}
		if v, ok := stored.Data["neg_zero"].(float64); !ok || !math.Signbit(v) {
			t.Errorf("appended again, data.neg_zero is %T %v, want float64 -0", stored.Data["neg_zero"], stored.Data["neg_zero"])
		}
		if _, ok := stored.Data["int"].(int64); !ok {
			t.Errorf("appended again, data.int is %T %v, want an int64", stored.Data["int"], stored.Data["int"])
		}
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
