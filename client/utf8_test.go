package client_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/server"
)

// An append whose data or metadata holds text that is not valid UTF-8 is refused
// before it is sent, naming where: encoding/json sent each bad byte as U+FFFD, so the
// daemon stored other text than the caller's without a word, where the API refuses
// such a string (bad_request) sent as it is.
func TestAppendRefusesTextThatIsNotUTF8(t *testing.T) {
	var sent atomic.Int64
	d := startDaemon(t, server.Options{}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sent.Add(1)
			h.ServeHTTP(w, r)
		})
	})
	c := newClient(t, d.url)
	ctx := context.Background()
	type line struct {
		Text string `json:"text"`
		Skip string `json:"-"`
	}
	type note string
	type quoted struct {
		line
		Note note `json:"note,omitempty"`
	}
	tests := []struct {
		name string
		ev   pmd.EventData
		arg  string
	}{
		{"a data value", pmd.EventData{Type: "T", Data: map[string]any{"s": "a\xffb"}}, "events[0].data.s"},
		{"a data key", pmd.EventData{Type: "T", Data: map[string]any{"k\xfe": 1}}, "events[0].data"},
		{"in a list", pmd.EventData{Type: "T", Data: map[string]any{"l": []any{"ok", "\xc3"}}}, "events[0].data.l[1]"},
		{"in a nested map", pmd.EventData{Type: "T", Data: map[string]any{"m": map[string]any{"n": "\xc3("}}}, "events[0].data.m.n"},
		{"in a []string", pmd.EventData{Type: "T", Data: map[string]any{"l": []string{"\xe2\x82"}}}, "events[0].data.l[0]"},
		{"in a map[string]string", pmd.EventData{Type: "T", Data: map[string]any{"m": map[string]string{"k": "\x80"}}}, "events[0].data.m.k"},
		{"in a struct field", pmd.EventData{Type: "T", Data: map[string]any{"line": &line{Text: "\xff"}}}, "events[0].data.line.text"},
		{"in an embedded struct", pmd.EventData{Type: "T", Data: map[string]any{"q": quoted{line: line{Text: "\xff"}}}}, "events[0].data.q.text"},
		{"of a string type", pmd.EventData{Type: "T", Data: map[string]any{"note": note("\xff")}}, "events[0].data.note"},
		{"a metadata value", pmd.EventData{Type: "T", Metadata: map[string]any{"m": "\xff"}}, "events[0].metadata.m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := sent.Load()
			_, err := c.Append(ctx, "Text$1", pmd.Any, tt.ev)
			var got *pmd.InvalidArgumentError
			if !errors.Is(err, pmd.ErrInvalidArgument) || !errors.As(err, &got) {
				t.Fatalf("append: %v, want an *pmd.InvalidArgumentError", err)
			}
			if got.Arg != tt.arg {
				t.Errorf("%v names %q, want %q", err, got.Arg, tt.arg)
			}
			if n := sent.Load() - before; n != 0 {
				t.Errorf("the client sent %d requests", n)
			}
		})
	}
	// Valid text goes as it is, U+FFFD and a field json leaves out included.
	valid := map[string]any{"s": "a\uFFFDb ✓", "line": line{Text: "ok", Skip: "\xff"}, "q": quoted{Note: "✓"}}
	if _, err := c.Append(ctx, "Text$1", pmd.NoStream, pmd.EventData{Type: "T", Data: valid}); err != nil {
		t.Fatal(err)
	}
	page, err := c.ReadStream(ctx, "Text$1", pmd.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 || page.Events[0].Data["s"] != "a\uFFFDb ✓" {
		t.Fatalf("read %+v, want the one event appended", page.Events)
	}
}
