package pmd_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

func exampleStore() (*pmd.Store, func()) {
	dir, err := os.MkdirTemp("", "pmd-example")
	if err != nil {
		log.Fatal(err)
	}
	s, err := pmd.Open(dir, pmd.Options{Logger: quietLogger()})
	if err != nil {
		log.Fatal(err)
	}
	return s, func() { s.Close(); os.RemoveAll(dir) }
}

func ExampleStore_Append() {
	s, done := exampleStore()
	defer done()
	ctx := context.Background()

	res, err := s.Append(ctx, "Order$42", pmd.NoStream,
		pmd.EventData{Type: "OrderPlaced", Data: map[string]any{"order_id": "42"}},
		pmd.EventData{Type: "MenuChosen", Data: map[string]any{"menu": "vegan"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("version", res.Version)

	// The same expectation again fails: the stream exists now.
	_, err = s.Append(ctx, "Order$42", pmd.NoStream, pmd.EventData{Type: "OrderPlaced"})
	fmt.Println(err)
	// Output:
	// version 1
	// wrong expected version for stream "Order$42": expected no_stream, actual 1
}

func ExampleStore_Link() {
	s, done := exampleStore()
	defer done()
	ctx := context.Background()

	fact := pmd.EventData{ID: uuid.MustParse("0190c1d2-0000-7000-8000-000000000001"), Type: "CustomerConfirmedMenu",
		Data: map[string]any{"order_id": "42"}}
	if _, err := s.Append(ctx, "Customer$7", pmd.Any, fact); err != nil {
		log.Fatal(err)
	}
	// The event is written once and linked into the process stream.
	if _, err := s.Link(ctx, "CateringMatch$42", pmd.NoStream, fact.ID); err != nil {
		log.Fatal(err)
	}
	for e, err := range s.ReadStream(ctx, "CateringMatch$42", pmd.ReadOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Version, e.Type, "from", e.Stream, "link:", e.Link)
	}
	// Output:
	// 0 CustomerConfirmedMenu from Customer$7 link: true
}

func ExampleStore_ReadStream() {
	s, done := exampleStore()
	defer done()
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if _, err := s.Append(ctx, "Counter", pmd.Any, pmd.EventData{Type: "Ticked", Data: map[string]any{"n": i}}); err != nil {
			log.Fatal(err)
		}
	}
	// The newest two, newest first.
	for e, err := range s.ReadStream(ctx, "Counter", pmd.ReadOptions{From: pmd.End, Backward: true, Limit: 2}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Version, e.Data["n"])
	}
	// Output:
	// 4 4
	// 3 3
}

func ExampleStore_Subscribe() {
	s, done := exampleStore()
	defer done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := s.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "OrderPlaced"}); err != nil {
		log.Fatal(err)
	}
	go func() {
		// Written after the subscription started: delivered live.
		s.Append(ctx, "Order$2", pmd.Any, pmd.EventData{Type: "OrderPlaced"})
	}()
	n := 0
	for e, err := range s.Subscribe(ctx, pmd.SubscribeOptions{Types: []string{"OrderPlaced"}}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Stream)
		if n++; n == 2 {
			cancel()
		}
	}
	// Output:
	// Order$1
	// Order$2
}

func ExampleStore_DeleteStream() {
	s, done := exampleStore()
	defer done()
	ctx := context.Background()
	s.Append(ctx, "Cart$1", pmd.NoStream, pmd.EventData{Type: "ItemAdded"})
	if err := s.DeleteStream(ctx, "Cart$1", pmd.AtVersion(0)); err != nil {
		log.Fatal(err)
	}
	// Versions are never reused: the stream starts again at version 1.
	res, _ := s.Append(ctx, "Cart$1", pmd.NoStream, pmd.EventData{Type: "ItemAdded"})
	fmt.Println(res.Version)
	// Output: 1
}

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "pmd-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// The zero Options is a durable store: every acknowledged write is fsynced.
	s, err := pmd.Open(dir, pmd.Options{Logger: quietLogger()})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	fmt.Println(s.LastPosition())
	// Output: 0
}

func ExampleStore_Write() {
	s, done := exampleStore()
	defer done()
	ctx := context.Background()

	fact := pmd.EventData{ID: uuid.New(), Type: "CatererConfirmedMenu", Data: map[string]any{"order_id": "42"}}
	if _, err := s.Append(ctx, "Caterer$3", pmd.Any, fact); err != nil {
		log.Fatal(err)
	}
	// Link the fact and issue the command it completes, in one atomic write.
	res, err := s.Write(ctx, "CateringMatch$42", pmd.NoStream,
		pmd.LinkTo(fact.ID),
		pmd.NewEvent(pmd.EventData{Type: "ConfirmOrder", Data: map[string]any{"order_id": "42"},
			Metadata: map[string]any{pmd.CausationID: fact.ID.String()}}))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("version", res.Version)
	// Output: version 1
}

func ExampleStore_ReadAll() {
	s, done := exampleStore()
	defer done()
	ctx := context.Background()
	s.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "OrderPlaced"})
	s.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "OrderPaid"})
	s.Append(ctx, "Order$2", pmd.Any, pmd.EventData{Type: "OrderPlaced"})
	for e, err := range s.ReadAll(ctx, pmd.ReadOptions{Types: []string{"OrderPlaced"}}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Position, e.Stream, e.Type)
	}
	// Output:
	// 1 Order$1 OrderPlaced
	// 3 Order$2 OrderPlaced
}

func ExampleStore_ReadCategory() {
	s, done := exampleStore()
	defer done()
	ctx := context.Background()
	s.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "OrderPlaced"})
	s.Append(ctx, "Invoice$1", pmd.Any, pmd.EventData{Type: "InvoiceSent"})
	s.Append(ctx, "Order$2", pmd.Any, pmd.EventData{Type: "OrderPlaced"})
	for e, err := range s.ReadCategory(ctx, "Order", pmd.ReadOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Stream)
	}
	// Output:
	// Order$1
	// Order$2
}

func ExampleStore_Event() {
	s, done := exampleStore()
	defer done()
	ctx := context.Background()
	id := uuid.New()
	s.Append(ctx, "Order$1", pmd.Any, pmd.EventData{ID: id, Type: "OrderPlaced"})
	e, err := s.Event(ctx, id)
	fmt.Println(e.Type, e.Stream, err)

	_, err = s.Event(ctx, uuid.New())
	fmt.Println(errors.Is(err, pmd.ErrEventNotFound))
	// Output:
	// OrderPlaced Order$1 <nil>
	// true
}

// Example is the README's "Embedding the store" snippet; TestReadmeSnippet keeps the two
// the same.
func Example() {
	dir, err := os.MkdirTemp("", "pmd-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// README begins
	ctx := context.Background()
	s, err := pmd.Open(dir, pmd.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	fact := pmd.EventData{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": "42"}}
	res, err := s.Append(ctx, "Customer$7", pmd.NoStream, fact)
	if err != nil {
		log.Fatal(err)
	}
	// The store made the event's id; link the event, written once, into the process stream.
	if _, err := s.Link(ctx, "CateringMatch$42", pmd.NoStream, res.IDs[0]); err != nil {
		log.Fatal(err)
	}
	for e, err := range s.ReadStream(ctx, "CateringMatch$42", pmd.ReadOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Version, e.Type, "from", e.Stream, "linked:", e.Link)
	}
	// README ends

	// Output:
	// 0 CustomerConfirmedMenu from Customer$7 linked: true
}
