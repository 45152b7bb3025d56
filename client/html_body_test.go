package client_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/server"
)

// An event whose data holds HTML fits the daemon's body limit as the embedded store and
// any other client send it: encoding/json's default escapes each of <, > and & as six
// bytes (\u003c), so the client's body of a 6 MiB mail body passed the default 16 MiB
// --max-body and the append failed with payload_too_large.
func TestAppendSendsHTMLUnescaped(t *testing.T) {
	const maxBody = 4 << 10
	d := startDaemon(t, server.Options{MaxBody: maxBody}, nil)
	c := newClient(t, d.url)
	ctx := context.Background()
	// 3 KiB of data: under the limit as it is, over it with <, > and & escaped.
	html := strings.Repeat("<p>a&amp;b</p>\u2028", 3<<10/17)
	meta := map[string]any{"source": "<mail>"}
	res, err := c.Append(ctx, "Mail$1", pmd.NoStream, pmd.EventData{Type: "Received", Data: map[string]any{"body": html}, Metadata: meta})
	if err != nil {
		t.Fatalf("append %d bytes of HTML to a daemon with a %d-byte body limit: %v", len(html), maxBody, err)
	}
	page, err := c.ReadStream(ctx, "Mail$1", pmd.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 || page.Events[0].ID != res.IDs[0] {
		t.Fatalf("read %+v, want the event appended, %s", page.Events, res.IDs[0])
	}
	if got := page.Events[0].Data["body"]; got != html {
		t.Errorf("body read back is %d bytes, not the %d appended", len(got.(string)), len(html))
	}
	if got := page.Events[0].Metadata["source"]; got != "<mail>" {
		t.Errorf("metadata source read back is %q, want <mail>", got)
	}
}
