package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/signal"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/client"
	"github.com/pmd-dev/pmd/server"
)

// A client of a running daemon: append with an expected version, recognise the
// conflict with the root package's sentinel error, read back, and follow the log.
func Example() {
	// A daemon to talk to; a program would use the address of its `pmd serve`.
	dir, err := os.MkdirTemp("", "pmd-client-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := pmd.Open(dir, pmd.Options{Logger: logger})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	ts := httptest.NewServer(server.New(store, server.Options{Logger: logger}))
	defer ts.Close()

	addr := ts.URL // or "127.0.0.1:7070", the address of a `pmd serve`
	ctx := context.Background()
	// README begins
	c, err := client.New(addr, client.WithToken(os.Getenv("PMD_TOKEN")))
	if err != nil {
		log.Fatal(err)
	}
	placed := pmd.EventData{Type: "OrderPlaced", Data: map[string]any{"order_id": "42", "guests": 12}}
	res, err := c.Append(ctx, "Order$42", pmd.NoStream, placed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("appended at version", res.Version, "position", res.FirstPosition)

	// The same expectation again is refused, as the embedded store refuses it.
	_, err = c.Append(ctx, "Order$42", pmd.NoStream, placed)
	fmt.Println(errors.Is(err, pmd.ErrWrongExpectedVersion), err)

	if _, err := c.Link(ctx, "Party$12", pmd.Any, res.IDs[0]); err != nil {
		log.Fatal(err)
	}
	// One page; page.Next, when not nil, is where the next one starts.
	page, err := c.ReadStream(ctx, "Party$12", pmd.ReadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range page.Events {
		fmt.Println(e.Type, "from", e.Stream, "linked:", e.Link, "guests:", e.Data["guests"])
	}

	// Catch up from the start of the log, then go on live; a dropped connection
	// resumes where it stopped. Breaking out of the loop ends the subscription.
	for e, err := range c.Subscribe(ctx, client.SubscribeOptions{Types: []string{"OrderPlaced"}}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("followed", e.Type, "at position", e.Position)
		break
	}
	// README ends

	// Output:
	// appended at version 0 position 1
	// true wrong_expected_version: wrong expected version for stream "Order$42": expected no_stream, actual 0
	// OrderPlaced from Order$42 linked: true guests: 12
	// followed OrderPlaced at position 1
}

// Following a stream for as long as the program runs: a dropped connection resumes by
// itself, and a damaged record is reported and passed, as with the embedded store.
func ExampleClient_Subscribe() {
	c, err := client.New("127.0.0.1:7070")
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	opts := client.SubscribeOptions{
		Stream:  "Order$42",
		Dropped: func(err error) { log.Printf("reconnecting: %v", err) },
	}
	for e, err := range c.Subscribe(ctx, opts) {
		var damaged *pmd.CorruptError
		switch {
		case errors.As(err, &damaged):
			log.Printf("version %d is damaged, going on after it: %v", damaged.Version, err)
			continue
		case err != nil:
			log.Fatal(err) // refused: a bad option, a missing token
		}
		fmt.Println(*e.Version, e.Type)
	}
}

// Following a category, the events written to the streams Order$…, from the first one
// on: positions, not versions, say where each is, and where a restarted program would
// resume (From: the last position handled + 1).
func ExampleClient_Subscribe_category() {
	c, err := client.New("127.0.0.1:7070")
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	for e, err := range c.Subscribe(ctx, client.SubscribeOptions{Category: "Order"}) {
		if errors.Is(err, pmd.ErrCorrupt) {
			log.Printf("skipping a damaged record: %v", err)
			continue
		}
		if err != nil {
			log.Fatal(err) // refused: a category with a $, with Stream or Types, a token limited to streams
		}
		fmt.Println(e.Position, e.Stream, e.Type)
	}
}
