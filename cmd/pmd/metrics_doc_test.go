package main

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/server"
	"github.com/prometheus/client_golang/prometheus"
)

// describing is a Registerer that keeps the names of the metrics registered with it:
// a vector without series yet is missing from a Gather.
type describing struct {
	prometheus.Registerer
	names map[string]bool
}

func (d *describing) Register(c prometheus.Collector) error {
	describe(c, d.names)
	return d.Registerer.Register(c)
}

func (d *describing) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := d.Register(c); err != nil {
			panic(err)
		}
	}
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// describe adds the names of c's metrics to names.
func describe(c prometheus.Collector, names map[string]bool) {
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			names[m[1]] = true
		}
	}
}

// TestMetricsDocumented: every pmd_ metric the daemon exports is named in docs/api.md,
// and every pmd_ name the docs give is one it exports. An operator writing alerts looks
// the names up there: pmd_writes_failing, pmd_write_failures_total and
// pmd_http_requests_total, among others, were named nowhere.
func TestMetricsDocumented(t *testing.T) {
	names := map[string]bool{}
	reg := prometheus.NewRegistry()
	server.NewCommits(&describing{reg, names})
	server.NewWebhooks(&describing{reg, names}, 0)
	server.NewEventWebhooks(&describing{reg, names}, 0)
	for _, c := range []prometheus.Collector{&managerCollector{}, &subscriptionCollector{}, newClusterCollector(nil)} {
		describe(c, names)
	}
	store, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ts := httptest.NewServer(server.New(store, server.Options{Registry: reg, Processes: oneManager{}, Logger: slog.New(slog.DiscardHandler)}))
	defer ts.Close()
	// One request, so that the requests' vectors have a series.
	resp, err := ts.Client().Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		names[f.GetName()] = true
	}
	if !names["pmd_http_requests_total"] || !names["pmd_processes"] || !names["pmd_raft_state"] {
		t.Fatalf("the metrics were not all found: %v", names)
	}

	api, err := os.ReadFile(filepath.Join("..", "..", "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	for name := range names {
		if strings.HasPrefix(name, "pmd_") && !regexp.MustCompile("`"+name+"[`{]").Match(api) {
			t.Errorf("docs/api.md does not name %s", name)
		}
	}
	// Names the docs give: a prefix (pmd_raft_*, pmd_pm_) and a histogram's own
	// series are not metrics of their own.
	given := regexp.MustCompile(`pmd_[a-z0-9_]*[a-z0-9]\b(?:[^*_]|$)`)
	for _, doc := range []string{"docs/api.md", "docs/config.md", "docs/cluster.md", "docs/semantics.md", "docs/retention.md", "README.md"} {
		text, err := os.ReadFile(filepath.Join("..", "..", doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range given.FindAllString(string(text), -1) {
			name := regexp.MustCompile(`^pmd_[a-z0-9_]*[a-z0-9]`).FindString(m)
			base := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				base = strings.TrimSuffix(base, suffix)
			}
			if !names[name] && !names[base] {
				t.Errorf("%s names %s, which pmd does not export", doc, name)
			}
		}
	}
}

// oneManager is a daemon's process managers: one, for pmd_processes.
type oneManager struct{ server.Processes }

func (oneManager) Managers(context.Context) ([]server.Manager, error) {
	return []server.Manager{{Name: "Shipping"}}, nil
}
