package peers_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/pmd-dev/pmd/bench/peers"
)

// Compare pmd with bbolt at test size and print the Markdown report.
func ExampleRunAll() {
	dir, err := os.MkdirTemp("", "peers-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	p := peers.ShortParams()
	results, err := peers.RunAll(context.Background(), []peers.Peer{peers.PMD(), peers.Bolt()}, p, dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	rep := peers.Report{When: time.Now(), Machine: peers.ThisMachine(), Params: p, Results: results}
	if err := rep.WriteMarkdown(os.Stdout); err != nil {
		log.Fatal(err)
	}
}
