package client_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/client"
	"github.com/pmd-dev/pmd/server"
)

// TestNewHostlessAddress: an address with a port and no host (":7070", as pmd serve
// --addr takes it for every interface) means this machine, 127.0.0.1. Sent as it is,
// its Host header ":7070" was refused as forbidden by the daemon's Host check, and no
// --allow-host could allow it.
func TestNewHostlessAddress(t *testing.T) {
	for _, tt := range []struct{ addr, want string }{
		{":7070", "http://127.0.0.1:7070"},
		{"http://:7070", "http://127.0.0.1:7070"},
		{"https://:8443/pmd/", "https://127.0.0.1:8443/pmd"},
	} {
		c, err := client.New(tt.addr)
		if err != nil || c.URL() != tt.want {
			t.Errorf("New(%q) = %v, %v; want %s", tt.addr, c, err, tt.want)
		}
	}
	if _, err := client.New(":"); err == nil || !strings.Contains(err.Error(), "names no host") {
		t.Errorf("New(\":\") = %v, want an error that it names no host", err)
	}

	// A daemon served on every interface answers a client given its port alone.
	store, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ts := httptest.NewServer(server.New(store, server.Options{}))
	defer ts.Close()
	port := ts.URL[strings.LastIndex(ts.URL, ":"):]
	c, err := client.New(port)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Append(context.Background(), "s", pmd.Any, pmd.EventData{Type: "E"}); err != nil {
		t.Fatalf("append through %q: %v", port, err)
	}
}
