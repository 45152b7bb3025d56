package index_test

import (
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/index"
)

func ExampleIndex_AddEvent() {
	x := index.New()
	// The store feeds every durable record, in log order.
	x.AddEvent(1, uuid.MustParse("0190a1c4-0000-7000-8000-000000000001"), "Order$42", "OrderPlaced")
	x.AddEvent(2, uuid.MustParse("0190a1c4-0000-7000-8000-000000000002"), "Payment$7", "PaymentReceived")
	v := x.AddLink(3, "Order$42", 2) // link record at 3 puts the event at 2 into Order$42
	fmt.Println("linked at version", v)

	for _, e := range x.Versions(nil, "Order$42", 0, false, 0) {
		fmt.Printf("version %d: event at %d, link %v\n", e.Version, e.Position, e.Link)
	}
	fmt.Printf("%+v\n", x.Stream("Order$42"))

	x.DeleteStream(4, "Order$42")
	fmt.Printf("%+v\n", x.Stream("Order$42"))
	fmt.Println("category Order:", x.Category(nil, "Order", 0, false, 0))
	// Output:
	// linked at version 1
	// version 0: event at 1, link false
	// version 1: event at 2, link true
	// {Exists:true Last:1 Next:2 First:0}
	// {Exists:false Last:1 Next:2 First:2}
	// category Order: [1]
}

func ExampleIndex_SaveCheckpoint() {
	dir, err := os.MkdirTemp("", "index-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "index.ckpt")

	x := index.New()
	x.AddEvent(1, uuid.MustParse("0190a1c4-0000-7000-8000-000000000001"), "Order$42", "OrderPlaced")
	if err := x.SaveCheckpoint(path); err != nil {
		log.Fatal(err)
	}

	y, err := index.LoadCheckpoint(path)
	if err != nil {
		log.Fatal(err)
	}
	// The store would now feed y the records after y.Position().
	fmt.Println("position", y.Position())
	fmt.Println(y.Lookup(uuid.MustParse("0190a1c4-0000-7000-8000-000000000001")))
	// Output:
	// position 1
	// 1 true
}

func ExampleLoadCheckpoint() {
	x, err := index.LoadCheckpoint(filepath.Join(os.TempDir(), "no-such-dir", "index.ckpt"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// No checkpoint yet: start empty and replay the whole log.
		x = index.New()
	case errors.Is(err, index.ErrBadCheckpoint):
		// Damaged: the log still has everything, so rebuild from it too.
		x = index.New()
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println("replay from position", x.Position()+1)
	// Output:
	// replay from position 1
}

func ExampleIndex_LinkedInto() {
	x := index.New()
	x.AddEvent(1, uuid.MustParse("0190a1c4-0000-7000-8000-000000000001"), "Customer$7", "MenuConfirmed")
	x.AddLink(2, "CateringMatch$42", 1)
	x.AddLink(3, "Audit$1", 1)
	fmt.Println(x.LinkedInto(nil, 1))

	// A deletion of a stream hides the links into it.
	x.DeleteStream(4, "CateringMatch$42")
	fmt.Println(x.LinkedInto(nil, 1))
	// Output:
	// [CateringMatch$42 Audit$1]
	// [Audit$1]
}

func ExampleIndex_Caused() {
	x := index.New()
	x.AddEvent(1, uuid.MustParse("0190a1c4-0000-7000-8000-000000000001"), "Order$42", "OrderPlaced")
	x.AddEvent(2, uuid.MustParse("0190a1c4-0000-7000-8000-000000000002"), "Kitchen$42", "CookMeal")
	x.AddCausation(2, 1) // its metadata names the event at 1 as causation_id
	x.AddEvent(3, uuid.MustParse("0190a1c4-0000-7000-8000-000000000003"), "Kitchen$42", "ReserveTable")
	x.AddCausation(3, 1)
	fmt.Println(x.Caused(nil, 1, 0))
	fmt.Println(x.Caused(nil, 1, 1))
	// Output:
	// [2 3]
	// [2]
}
