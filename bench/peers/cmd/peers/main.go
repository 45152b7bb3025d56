// Command peers runs the peer benchmarks of issue 6 (see package
// github.com/pmd-dev/pmd/bench/peers) at full size, prints the results and writes
// them to <out>/peers.md and <out>/peers.png. `make bench-peers` runs it. It is in the
// module bench/peers, so it runs from there:
//
//	cd bench/peers && go run ./cmd/peers [-scale 1] [-write-for 3s] [-out ../results] [-peers pmd,postgres,nats,bbolt]
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pmd-dev/pmd/bench/peers"
)

func main() {
	scale := flag.Float64("scale", 1, "size of the replay log: 1 is 100k orders of 10 events (1M events)")
	writeFor := flag.Duration("write-for", 3*time.Second, "how long each append and link workload runs")
	out := flag.String("out", filepath.Join("..", "results"), "directory for peers.md and peers.png")
	work := flag.String("work", "", "directory for the stores' data (default: the system temp dir); removed after")
	only := flag.String("peers", "pmd,postgres,nats,bbolt", "comma-separated peers to run")
	flag.Parse()
	log.SetFlags(log.Ltime)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *scale, *writeFor, *out, *work, strings.Split(*only, ",")); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, scale float64, writeFor time.Duration, out, work string, only []string) error {
	p := peers.FullParams(scale)
	p.WriteFor = writeFor
	if err := p.Validate(); err != nil {
		return err
	}
	rep := peers.Report{When: time.Now(), Machine: peers.ThisMachine(), Params: p}
	if scale != 1 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("The replay log is scaled by %g: %d orders, %d events, instead of the issue's 100,000 orders and 1,000,000 events.",
			scale, p.Orders, p.Orders*p.EventsPerOrder))
	}
	m := rep.Machine
	log.Printf("machine: %d cores (%s), %s, %s", m.Cores, m.CPU, m.GoVersion, m.Kernel)
	log.Printf("parameters: %+v", p)

	dir, err := os.MkdirTemp(work, "pmd-bench-peers-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	var all []peers.Peer
	defer func() {
		for _, peer := range all {
			if peer.Close != nil {
				if err := peer.Close(); err != nil {
					log.Printf("%s: close: %v", peer.Name, err)
				}
			}
		}
	}()
	for _, name := range only {
		peer, err := open(ctx, strings.TrimSpace(name))
		if errors.Is(err, peers.ErrNoPostgres) {
			log.Printf("skipping PostgreSQL: %v", err)
			rep.Notes = append(rep.Notes, "PostgreSQL was skipped: "+err.Error())
			continue
		}
		if err != nil {
			return err
		}
		log.Printf("%s (%s): %s", peer.Name, peer.Version, peer.Durability)
		all = append(all, peer)
	}
	if rep.Results, err = peers.RunAll(ctx, all, p, dir, log.Printf); err != nil {
		return err
	}
	// pmd first, the baseline every ratio is taken against.
	slices.SortStableFunc(rep.Results, func(a, b peers.Result) int {
		return boolInt(b.Peer == peers.PMD().Name) - boolInt(a.Peer == peers.PMD().Name)
	})

	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		return err
	}
	fmt.Print(md.String())
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "peers.md"), md.Bytes(), 0o644); err != nil {
		return err
	}
	var png bytes.Buffer
	if err := rep.WriteChart(&png); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "peers.png"), png.Bytes(), 0o644); err != nil {
		return err
	}
	log.Printf("wrote %s and %s", filepath.Join(out, "peers.md"), filepath.Join(out, "peers.png"))
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func open(ctx context.Context, name string) (peers.Peer, error) {
	switch name {
	case "pmd":
		return peers.PMD(), nil
	case "postgres":
		return peers.Postgres(ctx)
	case "nats":
		return peers.NATS(), nil
	case "bbolt":
		return peers.Bolt(), nil
	}
	return peers.Peer{}, fmt.Errorf("unknown peer %q (want pmd, postgres, nats or bbolt)", name)
}
