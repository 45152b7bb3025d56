package server

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/jsonfloat"
)

// TestHeldJSONAsEncodingJSON: the answers counted before they are written (held.go) are
// written byte for byte as encoding/json writes them, and their count is exact.
func TestHeldJSONAsEncodingJSON(t *testing.T) {
	at := time.Date(2026, 11, 30, 21, 0, 0, 123, time.UTC)
	retry := at.Add(time.Second)
	data := map[string]any{
		"html": "<script>a && b</script>", "ctl": "\x00\x01\b\f\n\r\t\x1f\x7f", "quote": `"\`,
		"bad": "a\xffb\xc3", "sep": "\u2028\u2029", "uni": "é✓😀",
		"f": 2.5, "small": 1e-7, "big": 1e21, "neg": -1e-9, "f32": float32(0.1), "f32big": float32(3e21),
		"whole": jsonfloat.Whole(2), "wholebig": jsonfloat.Whole(1e20), "negzero": jsonfloat.Whole(math.Copysign(0, -1)),
		"i8": int8(-128), "i16": int16(300), "i32": int32(-7), "i64": int64(math.MinInt64), "int": 42,
		"u8": uint8(255), "u16": uint16(7), "u32": uint32(7), "u64": uint64(math.MaxUint64),
		"bin": []byte("\x00\xffbytes"), "nilbin": []byte(nil), "time": at, "nil": nil, "t": true, "f0": false,
		"list": []any{1.5, "x", nil, map[string]any{"b": 1, "a": []any{}}}, "empty": map[string]any{},
		"nilmap": map[string]any(nil), "nillist": []any(nil), "ints": map[int]string{2: "b", 1: "a"},
		"typed": []float64{2}, "strs": map[string]string{"z": "<", "a": ""},
	}
	v := uint64(3)
	event := eventJSON{ID: "0190c1d2-0000-7000-8000-0000000000e1", Type: "T<>", Data: data, Metadata: map[string]any{},
		Timestamp: "2026-11-30T21:00:00Z", Position: 7, Stream: "s&", Version: &v, Link: true}
	type inner struct {
		A string `json:"a"`
		B int    `json:"b,omitempty"`
	}
	type Embedded struct {
		inner
		C string `json:"c"`
		A string // a rival of inner's a at a shallower depth: "A", not "a"
	}
	type outer struct {
		Embedded
		*inner
		C       string `json:"c"` // wins over Embedded's
		Skip    string `json:"-"`
		Ptr     *eventJSON
		NilPtr  *eventJSON     `json:"nil_ptr"`
		Any     any            `json:"any"`
		Omitted map[string]any `json:"omitted,omitempty"`
		private int
	}
	tests := []struct {
		name string
		v    any
	}{
		{"event", event},
		{"event with no version, erased", eventJSON{ID: "x", Data: map[string]any{}, Metadata: map[string]any{}, Erased: true}},
		{"answer by id", eventResponse{Event: event, Streams: []string{"a", "<b>"}, Causation: &event, Caused: []eventJSON{event, event}, CausedTruncated: true}},
		{"process", processJSON{Process: Process{Manager: "M", ID: "1", State: map[string]any{"n": jsonfloat.Whole(2)},
			Commands:  []Command{{ID: "c", Data: map[string]any{"f": 2.0, "s": "<"}, Attempts: []Attempt{{Attempt: 1, At: at, RetryAt: &retry}}}},
			Deadlines: []Deadline{{Due: at, Issue: "D"}}, Snapshot: &Snapshot{ID: "s", Timestamp: at}},
			Events: []processEventJSON{{eventJSON: event, State: []any{2.5}}}}},
		{"parked", parkedResponse{Parked: []ParkedCommand{{ID: "c", Data: map[string]any{"f": 3.0, "l": []any{4.0}}}}, Total: 1}},
		{"embedded, promoted and rival fields", outer{Embedded: Embedded{inner: inner{A: "x"}, C: "y", A: "z"}, C: "w", Ptr: &event, Any: data, private: 1}},
		{"nil", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			n, err := heldSize(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(want) {
				t.Errorf("counted %d bytes, encoding/json writes %d", n, len(want))
			}
			got, err := new(Server).appendHeld(context.Background(), make([]byte, 0, n), tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Fatalf("written\n%s\nencoding/json writes\n%s", got, want)
			}
		})
	}
	for _, bad := range []any{math.NaN(), map[string]any{"x": math.Inf(1)}} {
		if _, err := heldSize(bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

// ltParked is fakeProcesses whose parked commands and process carry data full of <.
type ltParked struct{ pagedProcesses }

func (f *ltParked) Parked(ctx context.Context, name string, q ParkedQuery) (ParkedPage, error) {
	page, err := f.fakeProcesses.Parked(ctx, name, q)
	for i := range page.Parked {
		page.Parked[i].Data = map[string]any{"pad": strings.Repeat("<", 40<<10)}
	}
	return page, err
}

func (f *ltParked) ProcessPage(ctx context.Context, name, id string, q ProcessQuery) (Process, error) {
	p, err := f.pagedProcesses.ProcessPage(ctx, name, id, q)
	for i := range p.Events {
		p.Events[i].Data["pad"] = strings.Repeat("<", 40<<10)
	}
	return p, err
}

// TestAnswersHeldBeforeEncoded: a page of events, an event by id, a process and parked
// commands hold the bytes of their JSON of the memory budget before the JSON is
// written: each < of an event's data is six bytes of JSON (\u003c), so a 40 KiB event
// is 240 KiB of it. They were encoded first and their bytes reserved after, so the
// JSON of clients' reads, several times the events' size, was held beyond any budget
// (12 reads of a 16 MiB event full of <: 5.6 GB of RSS, with a 256 MiB budget).
func TestAnswersHeldBeforeEncoded(t *testing.T) {
	procs := &ltParked{pagedProcesses{sizes: []int{100}}}
	e := newEnv(t, Options{Processes: procs})
	const id = "0190c1d2-0000-7000-8000-0000000000e2"
	lt := ev("E", map[string]any{"pad": strings.Repeat("<", 40<<10)})
	lt["id"] = id
	e.append("s", nil, lt).must(t, http.StatusCreated)
	cause := ev("F", map[string]any{"pad": strings.Repeat("<", 40<<10)})
	cause["metadata"] = map[string]any{pmd.CausationID: id}
	e.append("s", nil, cause).must(t, http.StatusCreated)

	var mu sync.Mutex
	var calls, largest int
	var short []string
	hook := func(held int64, capacity int) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		largest = max(largest, capacity)
		if held < int64(capacity) {
			short = append(short, fmt.Sprintf("held %d of a buffer of %d", held, capacity))
		}
	}
	e.srv.hooks.heldEncoded = hook

	for _, path := range []string{"/v1/streams/s", "/v1/streams/$all", "/v1/events/" + id, "/v1/processes/M/1", "/v1/processes/M/parked"} {
		t.Run(path, func(t *testing.T) {
			mu.Lock()
			calls, largest, short = 0, 0, nil
			mu.Unlock()
			rec := e.serve(httptest.NewRequest("GET", path, nil))
			if rec.Code != http.StatusOK || !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("%d %.200s", rec.Code, rec.Body)
			}
			mu.Lock()
			defer mu.Unlock()
			if calls == 0 || largest < 6*(40<<10) {
				t.Fatalf("%d answers written, the largest into %d bytes: want the JSON of the data (%d bytes) counted", calls, largest, 6*(40<<10))
			}
			if len(short) > 0 {
				t.Fatalf("JSON written into bytes the request did not hold: %s", strings.Join(short, "; "))
			}
			if h := e.srv.memory.Held(); h != 0 {
				t.Fatalf("%d bytes held after the answer", h)
			}
		})
	}
}

// growingJSON writes more each time it is asked: its count is short of what it writes.
type growingJSON struct{ calls *int }

func (g growingJSON) MarshalJSON() ([]byte, error) {
	*g.calls++
	return []byte(`"` + strings.Repeat("<", *g.calls) + `"`), nil
}

// TestHeldJSONNeverGrowsItsBuffer: a value that writes more than it was counted fails
// its answer, written no further than the capacity reserved for it: the overflow was
// found only once append had grown the buffer, allocating bytes nobody reserved.
func TestHeldJSONNeverGrowsItsBuffer(t *testing.T) {
	for _, tt := range []struct {
		name string
		v    func(calls *int) any
	}{
		{"marshaler", func(calls *int) any { return map[string]any{"a": growingJSON{calls}} }},
		{"before bytes", func(calls *int) any {
			return []any{growingJSON{calls}, []byte(strings.Repeat("x", 300))}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var calls int
			v := tt.v(&calls)
			n, err := heldSize(v)
			if err != nil {
				t.Fatal(err)
			}
			o := heldOut{b: make([]byte, 0, n)}
			if err := o.value(v); err != nil {
				t.Fatal(err)
			}
			if cap(o.b) != n {
				t.Fatalf("counted %d bytes, wrote into a buffer grown to %d", n, cap(o.b))
			}
			if _, err := new(Server).appendHeld(context.Background(), make([]byte, 0, n), v); err == nil ||
				!strings.Contains(err.Error(), "more than were counted") {
				t.Fatalf("error %v, want one saying more was written than counted", err)
			}
		})
	}
}
