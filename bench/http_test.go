package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/server"
)

// httpClients is how many concurrent keep-alive clients the HTTP benchmark runs.
const httpClients = 32

// BenchmarkHTTPAppend measures the daemon's HTTP append path against the in-process Go
// API in the same run: per op, one 256-byte event appended by each of two fleets of
// httpClients concurrent writers, first through store.Append, then as POST
// /v1/streams/{stream} over loopback keep-alive connections to a server.Server on its
// own store. It reports both rates and http/go, the share of the Go API's throughput
// that survives JSON and HTTP; and, as a floor, the rate of GET /healthz (no work at
// all) by the same clients, with http/floor, how close an append comes to a request
// that does nothing. fsync on is what a user of `pmd serve` gets; with it off the ratio
// shows the pure HTTP cost.
func BenchmarkHTTPAppend(b *testing.B) {
	for _, noSync := range []bool{false, true} {
		name := "fsync"
		if noSync {
			name = "nosync"
		}
		b.Run(name, func(b *testing.B) {
			goStore := openHTTPBenchStore(b, noSync)
			httpStore := openHTTPBenchStore(b, noSync)
			base, stop := serveHTTPBench(b, httpStore)
			defer stop()
			client := &http.Client{Transport: &http.Transport{
				MaxIdleConns: httpClients, MaxIdleConnsPerHost: httpClients, IdleConnTimeout: time.Minute,
			}}
			defer client.CloseIdleConnections()
			bodies := make([][]byte, httpClients)
			for i := range bodies {
				var err error
				bodies[i], err = json.Marshal(map[string]any{"events": []any{map[string]any{"type": "OrderPlaced", "data": httpPayload}}})
				if err != nil {
					b.Fatal(err)
				}
			}
			ctx := context.Background()

			b.ResetTimer()
			goTime := fleet(b, b.N, func(w int) error {
				_, err := goStore.Append(ctx, fmt.Sprintf("Order$%d", w), pmd.Any, pmd.EventData{Type: "OrderPlaced", Data: httpPayload})
				return err
			})
			httpTime := fleet(b, b.N, func(w int) error {
				resp, err := client.Post(fmt.Sprintf("%s/v1/streams/Order%%24%d", base, w), "application/json", bytes.NewReader(bodies[w]))
				if err != nil {
					return err
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					return fmt.Errorf("append answered %s", resp.Status)
				}
				return err
			})
			// The floor: the same clients asking GET /healthz, which does no work, so
			// this is what HTTP itself costs on this machine.
			floorTime := fleet(b, b.N, func(int) error {
				resp, err := client.Get(base + "/healthz")
				if err != nil {
					return err
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return err
			})
			b.StopTimer()
			goRate := float64(b.N) / goTime.Seconds()
			httpRate := float64(b.N) / httpTime.Seconds()
			floorRate := float64(b.N) / floorTime.Seconds()
			b.ReportMetric(goRate, "go-events/s")
			b.ReportMetric(httpRate, "http-events/s")
			b.ReportMetric(floorRate, "http-floor-req/s")
			b.ReportMetric(httpRate/goRate, "http/go")
			b.ReportMetric(httpRate/floorRate, "http/floor")
			b.ReportMetric(0, "ns/op") // two fleets per op: the rates say it better
		})
	}
}

// httpPayload is a 256-byte event body, as in the store benchmarks.
var httpPayload = map[string]any{"order_id": "0000000042", "pad": string(bytes.Repeat([]byte("p"), 226))}

func openHTTPBenchStore(b *testing.B, noSync bool) *pmd.Store {
	b.Helper()
	s, err := pmd.Open(b.TempDir(), pmd.Options{NoSync: noSync, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// serveHTTPBench runs the API for store on a loopback port.
func serveHTTPBench(b *testing.B, store *pmd.Store) (string, func()) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := server.New(store, server.Options{Logger: quiet()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, 10*time.Second) }()
	return "http://" + ln.Addr().String(), func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}
}

// fleet runs n calls of op spread over httpClients goroutines (op gets the goroutine's
// number) and returns the wall time they took.
func fleet(b *testing.B, n int, op func(w int) error) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var failure error
	start := time.Now()
	for w := range httpClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := op(w); err != nil {
					once.Do(func() { failure = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if failure != nil {
		b.Fatal(failure)
	}
	return elapsed
}
