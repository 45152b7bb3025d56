// mkfixture writes a format 2 data directory with index layout 2: one session closed cleanly (its index
// flushed), then a second one that exits without closing, so the log runs past the
// index's durable point. It prints what a reader must find, as JSON. It is format 1's
// mkfixture with the API of the version that wrote format 2 (Streams returns an error).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

type want struct {
	Streams map[string][]string `json:"streams"` // stream -> event ids in version order
	All     []string            `json:"all"`     // $all ids in order
	Caused  map[string][]string `json:"caused"`
}

func id(n int) uuid.UUID { return uuid.MustParse(fmt.Sprintf("00000000-0000-7000-8000-%012d", n)) }

func main() {
	dir := os.Args[1]
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	open := func() *pmd.Store {
		s, err := pmd.Open(dir, pmd.Options{Logger: quiet, SegmentSize: 8 << 10})
		if err != nil {
			panic(err)
		}
		return s
	}
	must := func(_ any, err error) {
		if err != nil {
			panic(err)
		}
	}
	n := 0
	event := func(typ string, cause uuid.UUID) pmd.EventData {
		n++
		e := pmd.EventData{ID: id(n), Type: typ, Data: map[string]any{"order_id": fmt.Sprint(n % 5), "n": n, "pad": "padding padding padding padding"}}
		if cause != uuid.Nil {
			e.Metadata = map[string]any{pmd.CausationID: cause.String(), pmd.CorrelationID: cause.String()}
		}
		return e
	}
	s := open()
	for i := 0; i < 60; i++ {
		var cause uuid.UUID
		if i%4 == 3 {
			cause = id(i - 2)
		}
		must(s.Append(ctx, fmt.Sprintf("Order$%d", i%5), pmd.Any, event("OrderPlaced", cause)))
		if i%3 == 0 {
			must(s.Link(ctx, fmt.Sprintf("Match$%d", i%5), pmd.Any, id(n)))
		}
	}
	must(nil, s.DeleteStream(ctx, "Order$2", pmd.Any))
	if err := s.Close(); err != nil { // writes index.ckpt
		panic(err)
	}
	s = open()
	for i := 0; i < 25; i++ {
		must(s.Append(ctx, fmt.Sprintf("Order$%d", i%5), pmd.Any, event("OrderPaid", id(1))))
		if i%2 == 0 {
			must(s.Link(ctx, "Match$9", pmd.Any, id(n)))
		}
	}
	// What a reader must find, read through this version.
	w := want{Streams: map[string][]string{}, Caused: map[string][]string{}}
	for e, err := range s.ReadAll(ctx, pmd.ReadOptions{}) {
		if err != nil {
			panic(err)
		}
		w.All = append(w.All, e.ID.String())
		caused, err := s.Caused(ctx, e.ID, 0)
		if err != nil {
			panic(err)
		}
		for _, c := range caused {
			w.Caused[e.ID.String()] = append(w.Caused[e.ID.String()], c.ID.String())
		}
	}
	infos, err := s.Streams("", "", 1000)
	if err != nil {
		panic(err)
	}
	for _, info := range infos {
		w.Streams[info.Name] = []string{}
		for e, err := range s.ReadStream(ctx, info.Name, pmd.ReadOptions{}) {
			if err != nil {
				break // a deleted stream reads as not found
			}
			w.Streams[info.Name] = append(w.Streams[info.Name], e.ID.String())
		}
	}
	out, _ := json.MarshalIndent(w, "", " ")
	os.Stdout.Write(append(out, '\n'))
	os.Exit(0) // no Close: the log runs past the checkpoint, as after a crash
}
