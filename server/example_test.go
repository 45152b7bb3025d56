package server_test

import (
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/server"
)

// The API of a store, on any listener: here an httptest server.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "pmd-example")
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

	// The answer lists the ids written; the store makes one for an event sent
	// without.
	resp, err := http.Post(ts.URL+"/v1/streams/Order%2442", "application/json", strings.NewReader(
		`{"expected_version": "no_stream", "events": [{"id": "0190c1d2-0000-7000-8000-000000000042", "type": "OrderPlaced", "data": {"order_id": "42", "guests": 12}}]}`))
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(resp.StatusCode, " ", string(body))

	// The same expectation again is refused, and says why.
	resp, err = http.Post(ts.URL+"/v1/streams/Order%2442", "application/json", strings.NewReader(
		`{"expected_version": "no_stream", "events": [{"type": "OrderPlaced"}]}`))
	if err != nil {
		log.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(resp.StatusCode, " ", string(body))
	// Output:
	// 201 {"first_position":1,"last_position":1,"version":0,"ids":["0190c1d2-0000-7000-8000-000000000042"]}
	// 409 {"error":"wrong_expected_version","message":"wrong expected version for stream \"Order$42\": expected no_stream, actual 0","stream":"Order$42","expected_version":"no_stream","actual_version":0}
}
