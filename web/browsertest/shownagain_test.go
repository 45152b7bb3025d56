package browsertest

import (
	"fmt"
	"testing"
)

// rowsAddedJS counts the table rows the page builds from now on, whether one at a time
// (a live event's row) or in a table put on screen whole. It replaces the counter of
// an earlier call.
const rowsAddedJS = `if (window.rowsCounter) window.rowsCounter.disconnect();
	window.rowsAdded = 0;
	window.rowsCounter = new MutationObserver((records) => {
		for (const r of records) {
			for (const n of r.addedNodes) {
				if (n.nodeType !== Node.ELEMENT_NODE) continue;
				window.rowsAdded += n.matches('tbody tr') ? 1 : n.querySelectorAll('tbody tr').length;
			}
		}
	});
	window.rowsCounter.observe(document.getElementById('main'), {childList: true, subtree: true})`

// TestBrowserShownAgainReadsTheNewestPage: a page of the newest events (a stream, $all,
// a category) whose tab was hidden reads its newest page again once shown, rather than
// replaying every event written meanwhile through its table: after a night in the
// background on a busy daemon that was a row built and dropped for each of millions of
// events (20,000 took 5 s), to show the newest 50.
func TestBrowserShownAgainReadsTheNewestPage(t *testing.T) {
	skipWithoutBrowser(t)
	d := startDaemon(t)
	b := newBrowser(t, d.browserBase(t))
	t.Cleanup(func() { b.check(t) })

	const limit, written = 5, 100
	for _, c := range []struct{ name, stream, fragment, page string }{
		{"stream", "Shown$1", "#/streams/Shown%241?limit=5", "stream"},
		{"$all", "Shown$2", "#/all?limit=5", "all"},
		{"category", "Shown$3", "#/categories/Shown?limit=5", "category"},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer b.check(t)
			d.append(t, c.stream, fact{Type: "ShownBefore"})
			b.open(t, c.fragment, c.page)
			b.poll(t, badgeJS+` === '● live'`)

			b.eval(t, hideJS, nil)
			b.poll(t, badgeJS+` === '○ paused while the tab is hidden'`)
			events := make([]fact, written)
			for i := range events {
				events[i] = fact{Type: "ShownMeanwhile", Data: map[string]any{"i": i}}
			}
			d.append(t, c.stream, events...)
			newest := d.lastPosition(t)

			b.eval(t, rowsAddedJS, nil)
			b.eval(t, showJS, nil)
			b.poll(t, badgeJS+` === '● live'`)
			// The rows of a stream are numbered by version, the others by position.
			at := fmt.Sprint(newest)
			if c.page == "stream" {
				at = fmt.Sprint(written)
			}
			b.poll(t, fmt.Sprintf(`document.querySelector('main tbody tr').dataset.at === %q && document.querySelectorAll('main tbody tr').length === %d`, at, limit))
			var added int
			b.eval(t, `window.rowsAdded`, &added)
			if added > limit {
				t.Errorf("shown again, the page built %d rows to show the newest %d of the %d events written while it was hidden", added, limit, written)
			}
			// It is live from there: the next event shows on top.
			d.append(t, c.stream, fact{Type: "ShownAfter"})
			b.poll(t, `document.querySelector('main tbody tr').dataset.type === 'ShownAfter'`)
		})
	}
}
