package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pmd-dev/pmd"
)

// push queues frame as the subscription's reader does (sseFrame, then add).
func (q *sendQueue) push(ctx context.Context, frame []byte, wait bool) bool {
	for {
		ok, full := q.reserve(len(frame), wait)
		if ok {
			q.add(frame)
			return true
		}
		if !full || !q.room(ctx, len(frame)) {
			return false
		}
	}
}

// TestSSEFrameCountedBeforeItIsMade: a subscription's frame is counted by its queue
// before it is made, and made into exactly its bytes, as encoding/json writes the event;
// a live event that does not fit cuts the subscriber without its frame being made. The
// frame was encoded by encoding/json (its buffers, the JSON copied out of them, into the
// frame: four times its bytes) and only then found not to fit.
func TestSSEFrameCountedBeforeItIsMade(t *testing.T) {
	store := openStore(t)
	ctx := context.Background()
	data := map[string]any{"lt": strings.Repeat("<", 100)}
	if _, err := store.Append(ctx, "s", pmd.Any, pmd.EventData{Type: "E", Data: data}); err != nil {
		t.Fatal(err)
	}
	var ev, plain pmd.Event
	for e, err := range store.ReadAll(ctx, pmd.ReadOptions{Encoded: true}) {
		if err != nil {
			t.Fatal(err)
		}
		ev = e
	}
	for e, err := range store.ReadAll(ctx, pmd.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		plain = e
	}
	js, err := json.Marshal(toJSON(plain, false))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("id: %d\ndata: %s\n\n", ev.Position, js)
	var made atomic.Int32
	srv := &Server{hooks: serverHooks{heldEncoded: func(int64, int) { made.Add(1) }}}

	var held atomic.Int64
	q := newSendQueue(len(want)+10, &held, 1<<20)
	frame, err := srv.sseFrame(ctx, q, ev, ev.Position, "", false)
	if err != nil || string(frame) != want || cap(frame) != len(want) {
		t.Fatalf("frame %q (capacity %d), %v; want %q, in as many bytes", frame, cap(frame), err, want)
	}
	if q.bytes != len(want) || held.Load() != int64(len(want)) {
		t.Fatalf("the queue counts %d bytes, the server %d, before the frame is added; want %d", q.bytes, held.Load(), len(want))
	}
	q.add(frame)
	// The queue has a frame waiting and no room for another: the live event cuts the
	// subscriber, its frame not made.
	made.Store(0)
	if frame, err := srv.sseFrame(ctx, q, ev, ev.Position, "", false); frame != nil || err != nil {
		t.Fatalf("a live frame past the queue's limit: %q, %v; want none", frame, err)
	}
	if !q.end.cut || made.Load() != 0 {
		t.Fatalf("cut %v, frames made %d: want the subscriber cut before its frame is made", q.end.cut, made.Load())
	}
}
