package server

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
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

// floatProcesses is fakeProcesses with floats that have no fraction in its state,
// the states after its events and the data of its commands, as a config file's
// `event.data.amount / 2` makes them.
type floatProcesses struct{ fakeProcesses }

// floatData is data holding whole floats, an integer and a fraction.
func floatData() map[string]any {
	return map[string]any{"amount": float64(2), "big": 1e20, "n": int64(2), "half": 2.5,
		"list": []any{float64(4)}}
}

func (f *floatProcesses) Process(ctx context.Context, name, id string) (Process, error) {
	p, err := f.fakeProcesses.Process(ctx, name, id)
	if err != nil {
		return p, err
	}
	p.State = floatData()
	p.States = []any{floatData(), float64(3)}
	p.Commands[0].Data = floatData()
	return p, nil
}

func (f *floatProcesses) Parked(ctx context.Context, name string, q ParkedQuery) (ParkedPage, error) {
	page, err := f.fakeProcesses.Parked(ctx, name, q)
	for i := range page.Parked {
		page.Parked[i].Data = floatData()
	}
	return page, err
}

// The process routes write a float with no fraction as one, as the stream routes do:
// the commands' data, the state and the states after the events were written 2, which
// every reader of the API takes for an integer, and 1e20 for one outside the 64-bit
// range, while the events' data beside them said 2.0.
func TestWholeFloatsStayFloatsInProcesses(t *testing.T) {
	e := newEnv(t, Options{Processes: &floatProcesses{}})
	const want = `{"amount":2.0,"big":100000000000000000000.0,"half":2.5,"list":[4.0],"n":2}`
	var process struct {
		State    json.RawMessage `json:"state"`
		Commands []struct {
			Data json.RawMessage `json:"data"`
		} `json:"commands"`
		Events []struct {
			State json.RawMessage `json:"state"`
		} `json:"events"`
	}
	r := e.do("GET", "/v1/processes/M/1", nil).must(t, http.StatusOK)
	if err := json.Unmarshal(r.raw, &process); err != nil || len(process.Commands) != 1 || len(process.Events) != 2 {
		t.Fatalf("process %s: %v", r.raw, err)
	}
	var parked struct {
		Parked []struct {
			Data json.RawMessage `json:"data"`
		} `json:"parked"`
	}
	r = e.do("GET", "/v1/processes/M/parked", nil).must(t, http.StatusOK)
	if err := json.Unmarshal(r.raw, &parked); err != nil || len(parked.Parked) != 2 {
		t.Fatalf("parked %s: %v", r.raw, err)
	}
	tests := []struct {
		field string
		raw   json.RawMessage
		want  string
	}{
		{"state", process.State, want},
		{"commands[0].data", process.Commands[0].Data, want},
		{"events[0].state", process.Events[0].State, want},
		{"events[1].state", process.Events[1].State, "3.0"},
		{"parked[0].data", parked.Parked[0].Data, want},
		{"parked[1].data", parked.Parked[1].Data, want},
	}
	for _, tt := range tests {
		if string(tt.raw) != tt.want {
			t.Errorf("%s is %s, want %s", tt.field, tt.raw, tt.want)
		}
	}
}

// A webhook receives a command's floats with no fraction as floats (2.0): written 2,
// a receiver reading it as this API's clients do took it for an integer.
func TestWebhookCommandKeepsWholeFloats(t *testing.T) {
	got := make(chan []byte, 1)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- body
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()
	data := floatData()
	c := WebhookCommand{ID: "c1", Type: "T", Manager: "M", ProcessID: "1", Data: data, Correlation: "k"}
	if err := NewWebhooks(nil, 0).Deliver(context.Background(), receiver.URL, c); err != nil {
		t.Fatal(err)
	}
	body := <-got
	want := `{"id":"c1","type":"T","process_manager":"M","process_id":"1",` +
		`"data":{"amount":2.0,"big":100000000000000000000.0,"half":2.5,"list":[4.0],"n":2},"correlation_id":"k"}`
	if string(body) != want {
		t.Errorf("body %s\nwant %s", body, want)
	}
	if _, ok := data["amount"].(float64); !ok {
		t.Errorf("the command's data was changed: amount is %T", data["amount"])
	}
}
