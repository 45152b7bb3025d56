package browsertest

import (
	"fmt"
	"net/http"
	"testing"
)

// TestBrowserLiveLogPagesDropWhatRetentionNoLongerKeeps: the live newest page of a
// category and of $all drops, as an event of a stream that keeps its newest 2 versions
// (max_count) comes, the row of that stream's event the store keeps no more, and
// keeps the rows of a stream with no retention: it shows what a read of the page
// shows. Every live row was kept: the pages showed events the store had dropped.
func TestBrowserLiveLogPagesDropWhatRetentionNoLongerKeeps(t *testing.T) {
	skipWithoutBrowser(t)
	d := startDaemon(t)
	d.append(t, "Kept$a", fact{Type: "Noted"})
	d.append(t, "Kept$b", fact{Type: "Noted"})
	d.append(t, "Kept$a", fact{Type: "Noted"})
	d.call(t, "PUT", "/v1/streams/Kept%24a/metadata", `{"max_count":2}`, http.StatusOK)
	b := newBrowser(t, d.browserBase(t))
	t.Cleanup(func() { b.check(t) })
	const rowsJS = `[...document.querySelectorAll('main tbody tr')].map((tr) => tr.dataset.stream + '@' + tr.dataset.at).join(',')`
	live := ` && document.getElementById('live').textContent === '● live'`

	for i, c := range []struct{ page, fragment, reread string }{
		{"category", "#/categories/Kept?limit=20", "#/categories/Kept?limit=21"},
		{"all", "#/all?types=Noted&limit=20", "#/all?types=Noted&limit=21"},
	} {
		b.open(t, c.fragment, c.page)
		b.poll(t, `document.querySelectorAll('main tbody tr').length === `+fmt.Sprint(3+i)+live)
		d.append(t, "Kept$a", fact{Type: "Noted"})
		d.append(t, "Kept$b", fact{Type: "Noted"})
		// Of Kept$a, two rows (the newest two), of Kept$b every row.
		b.poll(t, `document.querySelectorAll('main tbody tr[data-stream="Kept$b"]').length === `+fmt.Sprint(2+i)+
			` && document.querySelectorAll('main tbody tr[data-stream="Kept$a"]').length === 2`)
		shown := b.text(t, rowsJS)
		b.open(t, c.reread, c.page)
		b.poll(t, `document.querySelectorAll('main tbody tr').length === `+fmt.Sprint(4+i))
		if read := b.text(t, rowsJS); shown != read {
			t.Errorf("%s shows live %s, read again %s", c.fragment, shown, read)
		}
	}
}
