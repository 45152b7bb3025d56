package client_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
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
		// encoding/json calls a MarshalJSON of a pointer receiver only on an addressable
		// value: stored by value in a map or an interface, its fields are written.
		{"in a pointer-receiver MarshalJSON's fields", pmd.EventData{Type: "T", Data: map[string]any{"v": ptrMarshalJSON{S: "a\xffb"}}}, "events[0].data.v.S"},
		{"in a map[string]ptrMarshalJSON", pmd.EventData{Type: "T", Data: map[string]any{"m": map[string]ptrMarshalJSON{"k": {S: "\xff"}}}}, "events[0].data.m.k.S"},
		// A MarshalText's text is written as a string, each bad byte as U+FFFD.
		{"in a MarshalText's text", pmd.EventData{Type: "T", Data: map[string]any{"v": text("a\xffb")}}, "events[0].data.v"},
		{"in a pointer-receiver MarshalText's text", pmd.EventData{Type: "T", Data: map[string]any{"v": &struct{ P ptrText }{P: ptrText{s: "\xff"}}}}, "events[0].data.v.P"},
		{"in a MarshalText map key", pmd.EventData{Type: "T", Data: map[string]any{"m": map[textKey]int{{s: "k\xff"}: 1}}}, "events[0].data.m"},
		// An embedded struct's fields are written as its own, whatever its methods (two
		// MarshalTexts, neither promoted).
		{"in an embedded struct with a MarshalText", pmd.EventData{Type: "T", Data: map[string]any{"v": twoTexts{okText: okText{S: "\xff"}, hexText: "x"}}}, "events[0].data.v.S"},
		{"in a recursive type", pmd.EventData{Type: "T", Data: map[string]any{"n": &node{N: 1, Next: &node{inner: inner{S: "\xff"}}}}}, "events[0].data.n.Next.S"},
		{"in a []node", pmd.EventData{Type: "T", Data: map[string]any{"l": []node{{N: 1}, {inner: inner{S: "\xff"}}}}}, "events[0].data.l[1].S"},
		{"in a json.Number", pmd.EventData{Type: "T", Data: map[string]any{"n": json.Number("1\xff")}}, "events[0].data.n"},
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
	// So does what a MarshalJSON or a MarshalText writes instead of bad text: a
	// pointer-receiver MarshalJSON of an addressable value, a MarshalText's text.
	valid := map[string]any{"s": "a\uFFFDb ✓", "line": line{Text: "ok", Skip: "\xff"}, "q": quoted{Note: "✓"},
		"pj": &ptrMarshalJSON{S: "\xff"}, "pt": ptrText{s: "\xff"}, "tk": map[textKey]string{{s: "\xff", hex: true}: "x"},
		"th": hexText("\xff")}
	if _, err := c.Append(ctx, "Text$1", pmd.NoStream, pmd.EventData{Type: "T", Data: valid}); err != nil {
		t.Fatal(err)
	}
	page, err := c.ReadStream(ctx, "Text$1", pmd.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := page.Events; len(got) != 1 || got[0].Data["s"] != "a\uFFFDb ✓" || got[0].Data["th"] != "ff" ||
		!reflect.DeepEqual(got[0].Data["pj"], map[string]any{"s": "ok"}) || !reflect.DeepEqual(got[0].Data["tk"], map[string]any{"ff": "x"}) {
		t.Fatalf("read %+v, want the one event appended", page.Events)
	}
}

// ptrMarshalJSON writes itself only where encoding/json can take its address.
type ptrMarshalJSON struct{ S string }

func (*ptrMarshalJSON) MarshalJSON() ([]byte, error) { return []byte(`{"s":"ok"}`), nil }

// text is written as its text, as it is.
type text string

func (t text) MarshalText() ([]byte, error) { return []byte(t), nil }

// hexText is written as its text in hex, valid whatever it holds.
type hexText string

func (t hexText) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString([]byte(t))), nil }

// ptrText is written as its text where encoding/json can take its address, else as {}.
type ptrText struct{ s string }

func (p *ptrText) MarshalText() ([]byte, error) { return []byte(p.s), nil }

// textKey is a map key written as its text (in hex if hex).
type textKey struct {
	s   string
	hex bool
}

func (k textKey) MarshalText() ([]byte, error) {
	if k.hex {
		return []byte(hex.EncodeToString([]byte(k.s))), nil
	}
	return []byte(k.s), nil
}

// okText is written as "ok", but embedded with hexText its fields are written instead.
type okText struct{ S string }

func (okText) MarshalText() ([]byte, error) { return []byte("ok"), nil }

type twoTexts struct {
	okText
	hexText
}

// node is recursive, numbers but for its embedded struct's string.
type node struct {
	N    int
	Next *node
	inner
}

type inner struct{ S string }
