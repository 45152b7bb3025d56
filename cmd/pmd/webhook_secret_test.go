package main

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/config"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/server"
)

// TestWebhookCredentialsAreMasked: a webhook URL's password and query values are
// credentials. The receiver is dialled with them, but they show nowhere else: not in
// the API (a subscription's webhook, parked commands' receiver and errors, a process's
// deliveries, a parked event's error), not in the log lines, not in the records of the
// store, not in check-config's summary.
func TestWebhookCredentialsAreMasked(t *testing.T) {
	const secret = "SECRET"
	dialled := make(chan string, 16)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pw, _ := r.URL.User.Password()
		if u, p, ok := r.BasicAuth(); ok {
			pw = u + ":" + p
		}
		select {
		case dialled <- pw + "?" + r.URL.RawQuery:
		default:
		}
		http.Error(w, "receiver broken", http.StatusInternalServerError)
	}))
	defer rcv.Close()
	host := strings.TrimPrefix(rcv.URL, "http://")
	hook := "http://hook-user:pw-" + secret + "@" + host + "/hook?key=q-" + secret + "&sig=" + secret + "2"
	yaml := `
processes:
  - name: CateringMatch
    correlate_by: order_id
    handles: [CustomerConfirmedMenu, CatererConfirmedMenu]
    issue: {type: ConfirmOrder}
    deliver: {webhook: "` + hook + `", max_attempts: 1}
subscriptions:
  - name: billing
    types: [CustomerConfirmedMenu]
    deliver: {webhook: "` + hook + `", max_attempts: 1}
`
	cfgFile := filepath.Join(t.TempDir(), "pmd.yaml")
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(cfgFile, []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}

	var logs syncBuffer
	dir := t.TempDir()
	d := startInProcessAt(t, cfg, dir, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx := context.Background()
	for _, e := range []pmd.EventData{
		{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": "7"}},
		{Type: "CatererConfirmedMenu", Data: map[string]any{"order_id": "7"}},
	} {
		if _, err := d.store.Append(ctx, "facts", pmd.Any, e); err != nil {
			t.Fatal(err)
		}
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := d.procs.managers[0].m.WaitIdle(wctx); err != nil {
		t.Fatal(err)
	}
	if err := d.subs.subs[0].sub.WaitIdle(wctx); err != nil {
		t.Fatal(err)
	}
	// The receiver was dialled with the credentials.
	select {
	case got := <-dialled:
		if got != "hook-user:pw-"+secret+"?key=q-"+secret+"&sig="+secret+"2" {
			t.Errorf("the receiver was dialled with %q, not the webhook's credentials", got)
		}
	default:
		t.Fatal("the receiver was never dialled")
	}
	if page, err := d.procs.managers[0].m.Parked(context.Background(), pm.ParkedOptions{}); err != nil || page.Total != 1 {
		t.Fatalf("%d parked commands (%v), want 1", page.Total, err)
	}

	for _, path := range []string{
		"/v1/subscriptions", "/v1/subscriptions/billing",
		"/v1/processes/CateringMatch/parked", "/v1/processes/CateringMatch/7",
	} {
		resp, err := http.Get(d.url + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %s", path, resp.Status, body)
		}
		if bytes.Contains(body, []byte(secret)) {
			t.Errorf("GET %s shows a credential of the webhook:\n%s", path, body)
		}
		if !bytes.Contains(body, []byte("hook-user:xxxxx@"+host+"/hook?key=xxxxx\\u0026sig=xxxxx")) &&
			!bytes.Contains(body, []byte("hook-user:xxxxx@"+host+"/hook?key=xxxxx&sig=xxxxx")) {
			t.Errorf("GET %s does not name the webhook masked:\n%s", path, body)
		}
	}

	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("the log lines show a credential of the webhook:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "hook-user:xxxxx@") {
		t.Errorf("the log lines do not name the webhook masked:\n%s", logs.String())
	}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s stores a credential of the webhook", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := runPMD(t, context.Background(), "check-config", cfgFile)
	if code != 0 || strings.Contains(stdout+stderr, secret) || !strings.Contains(stdout, "hook-user:xxxxx@") {
		t.Errorf("check-config: exit %d, printed\n%s%s\nwant the webhook masked", code, stdout, stderr)
	}
}

// TestWebhookErrorsMaskCredentials: the errors of a delivery attempt name the webhook
// with its password and query values masked, whatever failed: the receiver's answer, a
// connection refused, a timeout.
func TestWebhookErrorsMaskCredentials(t *testing.T) {
	answer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusBadGateway)
	}))
	defer answer.Close()
	hang := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer hung.Close()
	defer close(hang)
	refused := httptest.NewServer(http.NotFoundHandler())
	refusedURL := refused.URL
	refused.Close()
	hooks := server.NewWebhooks(nil, 0)
	for _, tt := range []struct {
		name, base string
		timeout    time.Duration
		want       string
	}{
		{"answer", answer.URL, time.Minute, "502"},
		{"refused", refusedURL, time.Minute, "refused"},
		{"timeout", hung.URL, 50 * time.Millisecond, "timed out"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.Parse(tt.base)
			if err != nil {
				t.Fatal(err)
			}
			raw := "http://u:pw-SECRET@" + u.Host + "/h?token=SECRET"
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			err = hooks.Deliver(ctx, raw, server.WebhookCommand{ID: "id", Manager: "m"})
			if err == nil || strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), "http://u:xxxxx@"+u.Host+"/h?token=xxxxx") ||
				!strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v; want it to name http://u:xxxxx@%s/h?token=xxxxx and %q, without the credentials", err, u.Host, tt.want)
			}
		})
	}
}
