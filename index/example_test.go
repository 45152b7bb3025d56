package index_test

import (
	"fmt"
	"log"
	"os"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/index"
)

func Example() {
	dir, err := os.MkdirTemp("", "index-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	x, err := index.Open(dir, index.Options{CacheSize: 8 << 20})
	if err != nil {
		log.Fatal(err)
	}
	defer x.Close()

	// The store feeds every durable record, in log order, in batches.
	b := x.NewBatch()
	b.AddEvent(1, uuid.MustParse("0190a1c4-0000-7000-8000-000000000001"), "Order$42", "OrderPlaced")
	b.AddEvent(2, uuid.MustParse("0190a1c4-0000-7000-8000-000000000002"), "Payment$7", "PaymentReceived")
	v, _ := b.AddLink(3, "Order$42", 2) // link record at 3 puts the event at 2 into Order$42
	if err := x.Apply(b); err != nil {
		log.Fatal(err)
	}
	fmt.Println("linked at version", v)

	_, entries, _ := x.Versions(nil, "Order$42", 0, false, 0)
	for _, e := range entries {
		fmt.Printf("version %d: event at %d, link %v\n", e.Version, e.Position, e.Link)
	}
	linked, _ := x.LinkedInto(nil, 2)
	fmt.Println("event at 2 is linked into", linked)

	b.DeleteStream(4, "Order$42")
	if err := x.Apply(b); err != nil {
		log.Fatal(err)
	}
	st, _ := x.Stream("Order$42")
	fmt.Printf("exists %v, next version %d\n", st.Exists, st.Next)
	// The event at 1 was in Order$42 only: it is dead now, and leaves its category. The
	// event at 2 is still in Payment$7.
	dead1, _ := x.Dead(1)
	dead2, _ := x.Dead(2)
	fmt.Println("dead:", dead1, dead2)
	cat, _ := x.Category(nil, "Order", 0, false, 0)
	fmt.Println("category Order:", cat)

	// Flush makes it durable: a crash after it replays the log from position 5.
	if err := x.Flush(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("durable up to", x.Durable())
	// Output:
	// linked at version 1
	// version 0: event at 1, link false
	// version 1: event at 2, link true
	// event at 2 is linked into [Order$42]
	// exists false, next version 2
	// dead: true false
	// category Order: []
	// durable up to 4
}
