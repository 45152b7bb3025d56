package server

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/prometheus/client_golang/prometheus"
)

// TestClientGoneNotCountedAsAnswered: a request whose client went away before it was
// answered gets no answer, and pmd_http_requests_total counts it under 499 (the code
// proxies log for it), not under 200, the status of a request served in full, which
// made a success rate count requests that never got an answer.
func TestClientGoneNotCountedAsAnswered(t *testing.T) {
	store, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	reg := prometheus.NewRegistry()
	srv := New(store, Options{Registry: reg, Logger: quiet()})
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the client hung up
	req := httptest.NewRequest("GET", "http://127.0.0.1/v1/all", nil).WithContext(ctx)
	srv.ServeHTTP(httptest.NewRecorder(), req)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range families {
		if f.GetName() != "pmd_http_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			got = append(got, fmt.Sprintf("%s %s %v", labels["route"], labels["code"], m.GetCounter().GetValue()))
		}
	}
	if strings.Join(got, ", ") != "read_all 499 1" {
		t.Fatalf("pmd_http_requests_total: %v, want read_all 499 1", got)
	}
}
