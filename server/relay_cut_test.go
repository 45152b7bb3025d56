package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// sseDispatch is an event as a browser's EventSource dispatches it: its type, its data
// and the source's last event id once it is dispatched.
type sseDispatch struct{ typ, data, lastID string }

// dispatchSSE reads stream as the HTML standard's EventSource does: fields gather until
// a blank line dispatches them (one with no data sets only the last event id), an id
// holding NUL is ignored, and an event the stream ends inside is never dispatched. It
// returns the events dispatched and the last event id a reconnect would send, starting
// from lastID.
func dispatchSSE(stream, lastID string) ([]sseDispatch, string) {
	var out []sseDispatch
	var typ, data, id strings.Builder
	id.WriteString(lastID)
	lines := strings.Split(stream, "\n")
	for _, line := range lines[:len(lines)-1] { // the last, unended, is discarded
		if line == "" {
			lastID = id.String()
			if data.Len() > 0 {
				t := typ.String()
				if t == "" {
					t = "message"
				}
				out = append(out, sseDispatch{t, strings.TrimSuffix(data.String(), "\n"), lastID})
			}
			typ.Reset()
			data.Reset()
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			typ.Reset()
			typ.WriteString(value)
		case "data":
			data.WriteString(value + "\n")
		case "id":
			if !strings.Contains(value, "\x00") {
				id.Reset()
				id.WriteString(value)
			}
		}
	}
	return out, lastID
}

// TestRelayedSubscriptionCutByTheLeader: a subscription a follower relays from its
// leader (?consistency=leader) whose leader's stream is cut (the leader killed, its
// connection reset), inside a message or between two, ends with an unavailable error
// event naming the leader's stream, as a stop of the follower ends it, so that a client
// can tell the cut from a quiet stream and reconnects with the last event it received
// whole: the relay ended with no word, and a message cut short went to the client as
// it was, so that a browser given a blank line after it would have dispatched it, and
// taken its id as the last event received. A stream the leader ended with an error
// event of its own is passed on as it is.
func TestRelayedSubscriptionCutByTheLeader(t *testing.T) {
	const whole = "retry: 1000\n\nid: 5\ndata: {\"n\":5}\n\n: heartbeat\n\n"
	tests := []struct {
		name, sent, lastEventID string
		// cut: the leader's connection breaks after sent (else it ends the
		// stream as a handler that returns).
		cut bool
		// wantLast is the last event id a reconnect sends; wantError the
		// message of the last error event, "" for the leader's own.
		wantLast, wantError string
	}{
		{"inside a data line", whole + "id: 6\ndata: {\"n\":", "", true, "5", "the leader"},
		{"after an id line", whole + "id: 6\n", "", true, "5", "the leader"},
		{"inside an id line", whole + "id: 6", "", true, "5", "the leader"},
		{"after a data line", whole + "id: 6\ndata: {\"n\":6}\n", "", true, "5", "the leader"},
		{"between messages", whole, "", true, "5", "the leader"},
		{"ended between messages", whole, "", false, "5", "the leader"},
		{"before any event, resumed", "retry: 1000\n\nid: 4\ndata: {\"n\"", "3", true, "3", "the leader"},
		{"before any event", "retry: 1000\n\nid: 4\ndata: {\"n\"", "", true, "", "the leader"},
		{"ended by the leader's error event", whole + "event: error\ndata: {\"error\":\"too_slow\",\"message\":\"m\"}\n\n", "", false, "5", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if got := r.Header.Get("Last-Event-ID"); got != tt.lastEventID {
					t.Errorf("the leader was sent Last-Event-ID %q, want %q", got, tt.lastEventID)
				}
				w.Header().Set("Content-Type", "text/event-stream")
				w.WriteHeader(http.StatusOK)
				io.WriteString(w, tt.sent)
				http.NewResponseController(w).Flush()
				if tt.cut {
					panic(http.ErrAbortHandler) // the connection closes, the chunked body unended
				}
			}))
			defer leader.Close()
			node := newEnv(t, Options{Node: follower{leader: strings.TrimPrefix(leader.URL, "http://")}})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", node.ts.URL+"/v1/subscribe?consistency=leader", nil)
			if tt.lastEventID != "" {
				req.Header.Set("Last-Event-ID", tt.lastEventID)
			}
			resp, err := (&http.Client{}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("reading the relayed stream: %v (got %q)", err, raw)
			}
			checkRelayEnd(t, string(raw), tt.sent, tt.lastEventID, tt.wantLast, tt.wantError)
		})
	}
}

// TestFollowerStopsInsideARelayedMessage: a follower that stops while the message it
// relays is cut short (the leader's next bytes not yet come) ends it so that its
// client takes none of it as an event, and tells the client it is shutting down, as
// at the end of a message: it said nothing, the error event would have ended up in
// the message.
func TestFollowerStopsInsideARelayedMessage(t *testing.T) {
	const sent = "retry: 1000\n\nid: 5\ndata: {\"n\":5}\n\nid: 6\ndata: {\"n\":"
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, sent)
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	}))
	defer leader.Close()
	srv := New(openStore(t), Options{Logger: quiet(), Node: follower{leader: strings.TrimPrefix(leader.URL, "http://")}})
	ln := listen(t)
	stop := serveOn(t, srv, ln, time.Minute)
	resp, err := http.Get("http://" + ln.Addr().String() + "/v1/subscribe?consistency=leader")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make([]byte, 0, len(sent))
	for len(got) < len(sent) {
		b := make([]byte, len(sent)-len(got))
		n, err := resp.Body.Read(b)
		got = append(got, b[:n]...)
		if err != nil {
			t.Fatalf("the stream relayed %q, then %v", got, err)
		}
	}
	rest := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(resp.Body)
		rest <- b
	}()
	if _, err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	checkRelayEnd(t, string(got)+string(<-rest), sent, "", "5", "shutting down")
}

// checkRelayEnd checks stream, a relayed subscription that ended, as a browser reads
// it: it is what the leader sent, then what ends it; no message cut short is an event;
// a reconnect would resume after wantLast; and it ends with one error event, of the
// leader's (too_slow) if wantError is "", else unavailable naming wantError.
func checkRelayEnd(t *testing.T, stream, sent, lastEventID, wantLast, wantError string) {
	t.Helper()
	if !strings.HasPrefix(stream, sent) {
		t.Fatalf("the relayed stream %q does not start with what the leader sent, %q", stream, sent)
	}
	events, last := dispatchSSE(stream, lastEventID)
	if last != wantLast {
		t.Errorf("a reconnect would send Last-Event-ID %q, want %q (stream %q)", last, wantLast, stream)
	}
	var errs []sseDispatch
	for _, ev := range events {
		switch ev.typ {
		case "message":
			if ev.data != `{"n":5}` {
				t.Errorf("a message cut short was dispatched: %q (stream %q)", ev.data, stream)
			}
		case "error":
			errs = append(errs, ev)
		}
	}
	if len(errs) != 1 {
		t.Fatalf("the stream ended with %d error events, want 1: %q", len(errs), stream)
	}
	var body struct{ Error, Message string }
	if err := json.Unmarshal([]byte(errs[0].data), &body); err != nil {
		t.Fatalf("the error event's data %q: %v", errs[0].data, err)
	}
	if wantError == "" {
		if body.Error != "too_slow" {
			t.Fatalf("the leader's own error event became %+v", body)
		}
		return
	}
	if body.Error != "unavailable" || !strings.Contains(body.Message, wantError) || !strings.Contains(body.Message, "Last-Event-ID") {
		t.Fatalf("the error event %+v; want unavailable, naming %q and Last-Event-ID", body, wantError)
	}
	if !strings.HasSuffix(stream, "\n\n") {
		t.Fatalf("the stream ends inside a message: %q", stream)
	}
}

// TestRelayTailAcrossReads: what ends a relayed stream cut short does not depend on how
// the leader's bytes were split into reads, and a long data line, of which the relay
// keeps the first bytes only, is not taken for an id.
func TestRelayTailAcrossReads(t *testing.T) {
	long := "data: " + strings.Repeat(`{"id: 9"}`, 40)
	for _, stream := range []string{
		"retry: 1000\n\nid: 5\ndata: {}\n\nid: 6\ndata: {",
		"id: 5\ndata: {}\n\nid: 6\n" + long + "\n",
		"id: 5\ndata: {}\n\n" + long[:100],
		"id: 5\ndata: {}\n\nevent: error\ndata: {}\n\n",
		"id: 5\ndata: {}\n\nevent: error\ndata: {}\n",
		"id: 5\n" + long + "\n\n: heartbeat\n\n",
		"id: 7",
	} {
		whole := relayTail{prevID: "1"}
		whole.feed([]byte(stream))
		for _, size := range []int{1, 2, 3, 7, 64, 65} {
			split := relayTail{prevID: "1"}
			for b := []byte(stream); len(b) > 0; b = b[min(size, len(b)):] {
				split.feed(b[:min(size, len(b))])
			}
			if string(split.cut()) != string(whole.cut()) || split.prevID != whole.prevID || split.endedByLeader() != whole.endedByLeader() {
				t.Errorf("%q in reads of %d: cut %q, last id %q, ended by the leader %v; read whole: %q, %q, %v",
					stream, size, split.cut(), split.prevID, split.endedByLeader(), whole.cut(), whole.prevID, whole.endedByLeader())
			}
		}
		// As a browser reads it, what the tail says is its last whole message's id.
		if _, last := dispatchSSE(stream+string(whole.cut()), "1"); last != whole.prevID {
			t.Errorf("%q: a browser's last event id %q, the relay's %q", stream, last, whole.prevID)
		}
	}
	var ended relayTail
	ended.feed([]byte("id: 5\ndata: {}\n\nevent: error\ndata: {}\n\n"))
	if !ended.endedByLeader() || ended.cut() != nil {
		t.Fatalf("a stream ended by the leader's error event: ended %v, cut %q", ended.endedByLeader(), ended.cut())
	}
}
