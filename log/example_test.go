package log_test

import (
	"context"
	"fmt"
	"os"

	"github.com/google/uuid"
	pmdlog "github.com/pmd-dev/pmd/log"
)

func ExampleLog_Write() {
	dir, err := os.MkdirTemp("", "pmdlog")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	l, err := pmdlog.Open(dir, pmdlog.Options{})
	if err != nil {
		panic(err)
	}
	defer l.Close()

	// One atomic batch: an event, and a link of it into a second stream. The last record
	// is the commit; after a crash either both records are in the log or neither is.
	id := uuid.MustParse("0190c0de-0000-7000-8000-000000000001")
	batch := []pmdlog.Record{
		{Kind: pmdlog.KindEvent, Event: pmdlog.Event{
			ID: id, Stream: "Order$42", Version: 0, Type: "OrderPlaced", Timestamp: 1700000000000000000,
		}},
		{Kind: pmdlog.KindLink, Commit: true, Link: pmdlog.Link{
			Stream: "CateringMatch$42", Version: 0, Event: 1, ID: id,
		}},
	}
	if err := l.Write(batch); err != nil {
		panic(err)
	}
	fmt.Println("written at", batch[0].Position, "and", batch[1].Position)

	r, err := l.Read(1)
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Kind, r.Event.Stream, r.Event.Type)

	err = l.Scan(context.Background(), 1, func(r pmdlog.Record) error {
		fmt.Println(r.Position, r.Kind, r.Commit)
		return nil
	})
	if err != nil {
		panic(err)
	}
	// Output:
	// written at 1 and 2
	// event Order$42 OrderPlaced
	// 1 event false
	// 2 link true
}
