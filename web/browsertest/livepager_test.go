package browsertest

import (
	"fmt"
	"os"
	"testing"
)

// TestBrowserLiveTableLinksWhatItPushesOff: the newest page keeps at most a page of
// rows as events come live, and the rows it pushes off stay a click away: its older
// link starts at the newest of them. It kept the link the page was read with, which
// skipped the rows pushed off, and a page that held the first event had no older link
// at all, so those events could not be reached without a reload. In a stream (by
// version) and in $all by type (by position).
func TestBrowserLiveTableLinksWhatItPushesOff(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pmd and drives a headless chromium; skipped in -short")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not found at /usr/bin/chromium: run scripts/install-chromium.sh")
	}
	d := startDaemon(t)
	b := newBrowser(t, d.browserBase(t))
	t.Cleanup(func() { b.check(t) })
	live := `document.getElementById('live').textContent === '● live'`

	for _, c := range []struct {
		name   string
		before int // events written before the page is opened
	}{
		{"an older page before", 3},
		{"the first event shown", 2},
	} {
		t.Run("stream, "+c.name, func(t *testing.T) {
			defer b.check(t)
			stream := "Pushed$" + fmt.Sprint(c.before)
			for range c.before {
				d.append(t, stream, fact{Type: "Pushed"})
			}
			b.open(t, "#/streams/Pushed%24"+fmt.Sprint(c.before)+"?limit=2", "stream")
			b.poll(t, live)
			// Two more: the rows of the two events that were the newest go.
			d.append(t, stream, fact{Type: "Pushed"}, fact{Type: "Pushed"})
			newest := c.before + 1
			b.poll(t, numsJS+fmt.Sprintf(` === '%d,%d'`, newest, newest-1))
			want := fmt.Sprintf("#/streams/Pushed%%24%d?limit=2&from=%d", c.before, newest-2)
			if got := nextLink(t, b); got != want {
				t.Fatalf("after two live events the older link is %q, want %q", got, want)
			}
			b.click(t, "a[rel=next]", "stream")
			b.poll(t, numsJS+fmt.Sprintf(` === '%d,%d'`, newest-2, newest-3))
		})
	}

	t.Run("$all by type", func(t *testing.T) {
		defer b.check(t)
		d.append(t, "Other$1", fact{Type: "PushedA"}, fact{Type: "PushedA"})
		b.open(t, "#/all?types=PushedA&limit=2", "all")
		b.poll(t, live)
		d.append(t, "Other$1", fact{Type: "PushedA"})
		p := d.positions(t, "?types=PushedA")
		if len(p) != 3 {
			t.Fatalf("PushedA at %v, want 3 positions", p)
		}
		b.poll(t, numsJS+fmt.Sprintf(` === '%d,%d'`, p[2], p[1]))
		want := fmt.Sprintf("#/all?types=PushedA&limit=2&from=%d", p[0])
		if got := nextLink(t, b); got != want {
			t.Fatalf("after a live event the older link is %q, want %q", got, want)
		}
		b.click(t, "a[rel=next]", "all")
		b.poll(t, numsJS+fmt.Sprintf(` === '%d'`, p[0]))
	})
}
