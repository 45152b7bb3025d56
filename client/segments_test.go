package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/client"
	"github.com/pmd-dev/pmd/server"
)

// echoProcesses is a server.Processes with a manager of every name and a process of
// every id: each answer names what the route handed it, so a test sees the segments
// the daemon got.
type echoProcesses struct {
	mu      sync.Mutex
	retried []string // name + " " + id, of each Retry and Skip
}

func (*echoProcesses) Managers(context.Context) ([]server.Manager, error) {
	return []server.Manager{{Name: "Listed"}}, nil
}

func (*echoProcesses) List(_ context.Context, name, _ string, _ int) ([]server.ProcessSummary, error) {
	return []server.ProcessSummary{{ID: name, Status: "open"}}, nil
}

func (*echoProcesses) Process(_ context.Context, name, id string) (server.Process, error) {
	return server.Process{Manager: name, ID: id, Stream: name + "$" + id, Status: "open", DeliveriesVersion: -1}, nil
}

func (*echoProcesses) Holding(context.Context, pmd.Event) ([]string, error) { return nil, nil }

func (*echoProcesses) Parked(_ context.Context, name string, _ server.ParkedQuery) (server.ParkedPage, error) {
	return server.ParkedPage{Parked: []server.ParkedCommand{{ProcessID: name, ID: parkedCommand.String(), Type: "T", Attempts: 1}}, Total: 1}, nil
}

func (p *echoProcesses) Retry(_ context.Context, name, id string, _ uuid.UUID) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.retried = append(p.retried, name+" "+id)
	return nil
}

func (p *echoProcesses) Skip(ctx context.Context, name, id string, command uuid.UUID) error {
	return p.Retry(ctx, name, id, command)
}

// echoSubscriptions is a server.Subscriptions with a subscription of every name.
type echoSubscriptions struct {
	mu      sync.Mutex
	retried []string // the name of each Retry and Skip
}

func (*echoSubscriptions) List(context.Context) ([]server.Subscription, error) {
	return []server.Subscription{{Name: "Listed"}}, nil
}

func (*echoSubscriptions) Subscription(_ context.Context, name string) (server.SubscriptionDetail, error) {
	return server.SubscriptionDetail{Subscription: server.Subscription{Name: name, Status: "ok"}}, nil
}

func (s *echoSubscriptions) Retry(_ context.Context, name string, _ uuid.UUID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retried = append(s.retried, name)
	return nil
}

func (s *echoSubscriptions) Skip(ctx context.Context, name string, event uuid.UUID) error {
	return s.Retry(ctx, name, event)
}

// TestPathSegments: every name or id the client puts into a URL path reaches the
// daemon's route as itself, a "." or ".." too, which a URL otherwise takes for a dot
// segment (the daemon's router cleaned /v1/processes/Ship/.. into a redirect to
// /v1/processes, and the client read the list of managers as a process).
func TestPathSegments(t *testing.T) {
	procs, subs := &echoProcesses{}, &echoSubscriptions{}
	var mu sync.Mutex
	var redirects []string
	d := startDaemon(t, server.Options{Processes: procs, Subscriptions: subs}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := &statusWriter{ResponseWriter: w}
			h.ServeHTTP(rec, r)
			if rec.status >= 300 && rec.status < 400 {
				mu.Lock()
				redirects = append(redirects, fmt.Sprintf("%s %s: %d", r.Method, r.URL.EscapedPath(), rec.status))
				mu.Unlock()
			}
		})
	})
	c := newClient(t, d.url)
	ctx := context.Background()
	ev := uuid.MustParse("0190c1d2-0000-7000-8000-0000000000e1")
	for _, seg := range []string{".", "..", "a/b", "%", "...", "a.b", "%2E", "a?b#c", " "} {
		t.Run(seg, func(t *testing.T) {
			if p, err := c.ReadProcess(ctx, seg, seg, client.ProcessOptions{}); err != nil || p.Manager != seg || p.ID != seg {
				t.Errorf("ReadProcess(%q, %q): manager %q, id %q, %v", seg, seg, p.Manager, p.ID, err)
			}
			if p, err := c.Processes(ctx, seg, client.ListOptions{}); err != nil || len(p.Processes) != 1 || p.Processes[0].ID != seg {
				t.Errorf("Processes(%q): %+v, %v", seg, p, err)
			}
			if p, err := c.FindProcesses(ctx, seg, client.ProcessQuery{Limit: 1}); err != nil || len(p.Processes) != 1 || p.Processes[0].ID != seg {
				t.Errorf("FindProcesses(%q): %+v, %v", seg, p, err)
			}
			if p, err := c.Parked(ctx, seg, 0); err != nil || len(p.Parked) != 1 || p.Parked[0].ProcessID != seg {
				t.Errorf("Parked(%q): %+v, %v", seg, p, err)
			}
			procs.mu.Lock()
			procs.retried = nil
			procs.mu.Unlock()
			if err := c.Retry(ctx, seg, seg, parkedCommand.String()); err != nil {
				t.Errorf("Retry(%q, %q): %v", seg, seg, err)
			}
			if err := c.Skip(ctx, seg, seg, parkedCommand.String()); err != nil {
				t.Errorf("Skip(%q, %q): %v", seg, seg, err)
			}
			procs.mu.Lock()
			if want := []string{seg + " " + seg, seg + " " + seg}; strings.Join(procs.retried, "|") != strings.Join(want, "|") {
				t.Errorf("Retry and Skip of %q reached the manager as %q", seg, procs.retried)
			}
			procs.mu.Unlock()
			// A command id is a UUID: any other segment is refused by the route, not
			// redirected elsewhere.
			if err := c.Retry(ctx, "M", "1", seg); !errors.Is(err, pmd.ErrInvalidArgument) {
				t.Errorf("Retry of command %q: %v, want bad_request", seg, err)
			}

			if s, err := c.Subscription(ctx, seg); err != nil || s.Name != seg {
				t.Errorf("Subscription(%q): %+v, %v", seg, s, err)
			}
			subs.mu.Lock()
			subs.retried = nil
			subs.mu.Unlock()
			if err := c.RetryEvent(ctx, seg, ev.String()); err != nil {
				t.Errorf("RetryEvent(%q): %v", seg, err)
			}
			if err := c.SkipEvent(ctx, seg, ev.String()); err != nil {
				t.Errorf("SkipEvent(%q): %v", seg, err)
			}
			subs.mu.Lock()
			if strings.Join(subs.retried, "|") != seg+"|"+seg {
				t.Errorf("RetryEvent and SkipEvent of %q reached the subscription as %q", seg, subs.retried)
			}
			subs.mu.Unlock()
			if err := c.RetryEvent(ctx, "S", seg); !errors.Is(err, pmd.ErrInvalidArgument) {
				t.Errorf("RetryEvent of event %q: %v, want bad_request", seg, err)
			}

			if err := c.RemoveNode(ctx, seg); err == nil || !strings.Contains(err.Error(), "single node") {
				t.Errorf("RemoveNode(%q): %v, want the single node's not_found", seg, err)
			}
			if _, err := c.ReadCategory(ctx, seg, pmd.ReadOptions{}); err != nil && !errors.Is(err, pmd.ErrInvalidArgument) {
				t.Errorf("ReadCategory(%q): %v", seg, err)
			}

			// A stream the store cannot write ("." and "..", see pmd.CheckWritable)
			// is refused by name or read as missing; any other is written and read
			// back.
			writable := pmd.CheckWritable(seg) == nil
			_, err := c.Append(ctx, seg, pmd.Any, pmd.EventData{Type: "T"})
			switch {
			case writable && err != nil:
				t.Fatalf("Append(%q): %v", seg, err)
			case !writable && !errors.Is(err, pmd.ErrInvalidArgument):
				t.Fatalf("Append(%q): %v, want it refused as an invalid stream", seg, err)
			}
			page, err := c.ReadStream(ctx, seg, pmd.ReadOptions{})
			switch {
			case writable && (err != nil || len(page.Events) != 1 || page.Events[0].Stream != seg):
				t.Errorf("ReadStream(%q): %+v, %v", seg, page, err)
			case !writable && !errors.Is(err, pmd.ErrStreamNotFound):
				t.Errorf("ReadStream(%q): %+v, %v, want stream_not_found", seg, page, err)
			}
			if _, err := c.Retention(ctx, seg); writable && err != nil {
				t.Errorf("Retention(%q): %v", seg, err)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(redirects) > 0 {
		t.Errorf("the daemon redirected %d requests: %q", len(redirects), redirects)
	}
}

// statusWriter records the status of an answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// TestRedirectIsAnError: an API answer is never a redirect, so the client follows
// none: a 3xx fails with an *Error naming the status and where it pointed, and the
// place pointed to is not asked, with the default http.Client and with one given.
func TestRedirectIsAnError(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	d := startDaemon(t, server.Options{Processes: processes{}}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			asked = append(asked, r.Method+" "+r.URL.Path)
			mu.Unlock()
			if r.URL.Path != "/v1/processes" && r.URL.Path != "/v1/" {
				http.Redirect(w, r, "/v1/processes", http.StatusTemporaryRedirect)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	ctx := context.Background()
	calls := []struct {
		name string
		do   func(c *client.Client) error
	}{
		{"ReadProcess", func(c *client.Client) error {
			_, err := c.ReadProcess(ctx, "CateringMatch", "42", client.ProcessOptions{})
			return err
		}},
		{"Retry", func(c *client.Client) error { return c.Retry(ctx, "CateringMatch", "42", parkedCommand.String()) }},
		{"ReadStream", func(c *client.Client) error { _, err := c.ReadStream(ctx, "S", pmd.ReadOptions{}); return err }},
		{"Append", func(c *client.Client) error {
			_, err := c.Append(ctx, "S", pmd.Any, pmd.EventData{Type: "T"})
			return err
		}},
		{"Health", func(c *client.Client) error { _, err := c.Health(ctx); return err }},
		{"OpenAPI", func(c *client.Client) error { _, err := c.OpenAPI(ctx); return err }},
	}
	for _, hc := range []struct {
		name string
		opts []client.Option
	}{
		{"default", nil},
		{"given", []client.Option{client.WithHTTPClient(&http.Client{})}},
	} {
		c := newClient(t, d.url, hc.opts...)
		for _, call := range calls {
			t.Run(hc.name+"/"+call.name, func(t *testing.T) {
				mu.Lock()
				asked = nil
				mu.Unlock()
				err := call.do(c)
				var e *client.Error
				if !errors.As(err, &e) || e.Status != http.StatusTemporaryRedirect ||
					!strings.Contains(e.Message, "307") || !strings.Contains(e.Message, "/v1/processes") {
					t.Fatalf("%v (%#v), want an *Error naming 307 and its Location", err, e)
				}
				mu.Lock()
				defer mu.Unlock()
				if len(asked) != 1 {
					t.Errorf("the client asked %q, want one request and no redirect followed", asked)
				}
			})
		}
	}
}

// TestProcessAnswerChecked: an answer to a process read that is not the process asked
// for (another route's JSON) is refused, not taken for an empty process.
func TestProcessAnswerChecked(t *testing.T) {
	answers := map[string]string{
		"/v1/processes/M/list":    `{"processes":[{"name":"M","open":1}]}`,
		"/v1/processes/M/empty":   `{}`,
		"/v1/processes/M/other":   `{"manager":"M","id":"other2","stream":"M$other2","status":"open"}`,
		"/v1/processes/M/nostrm":  `{"manager":"M","id":"nostrm","status":"open"}`,
		"/v1/processes/M/fine":    `{"manager":"M","id":"fine","stream":"M$fine","status":"open","deliveries_version":-1}`,
		"/v1/processes/M/%2E%2E":  `{"manager":"M","id":"..","stream":"M$..","status":"open","deliveries_version":-1}`,
		"/v1/subscriptions/list":  `{"subscriptions":[]}`,
		"/v1/subscriptions/fine":  `{"name":"fine","status":"ok"}`,
		"/v1/subscriptions/other": `{"name":"another","status":"ok"}`,
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := answers[r.URL.EscapedPath()]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(a))
	}))
	t.Cleanup(ts.Close)
	c := newClient(t, ts.URL)
	ctx := context.Background()
	for _, id := range []string{"list", "empty", "other", "nostrm", "fine", ".."} {
		t.Run("process "+id, func(t *testing.T) {
			p, err := c.Process(ctx, "M", id)
			switch id {
			case "fine", "..":
				if err != nil || p.ID != id || p.Manager != "M" {
					t.Fatalf("Process(M, %q): %+v, %v", id, p, err)
				}
			default:
				if err == nil || !strings.Contains(err.Error(), "not process") || !strings.Contains(err.Error(), id) {
					t.Fatalf("Process(M, %q): %+v, %v, want the answer refused naming the process", id, p, err)
				}
			}
		})
	}
	for _, name := range []string{"list", "other", "fine"} {
		t.Run("subscription "+name, func(t *testing.T) {
			s, err := c.Subscription(ctx, name)
			switch name {
			case "fine":
				if err != nil || s.Name != name {
					t.Fatalf("Subscription(%q): %+v, %v", name, s, err)
				}
			default:
				if err == nil || !strings.Contains(err.Error(), "not subscription") || !strings.Contains(err.Error(), name) {
					t.Fatalf("Subscription(%q): %+v, %v, want the answer refused naming the subscription", name, s, err)
				}
			}
		})
	}
}
