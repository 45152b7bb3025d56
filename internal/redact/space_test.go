package redact

import (
	"fmt"
	"strings"
	"testing"
)

// TestURLsInQueryWithASpace: a query value may hold a space (url.Parse takes it, and an
// older version recorded its webhook URL in full, unquoted, before the error that quoted
// it again). The unquoted URL's query runs as far as a quoted copy of it in the same text
// shows it does, else to the words older versions wrote after a webhook's URL (": ",
// " answered ", " timed out"), the end of the line or the white space before another URL:
// the value is masked whole, not only up to its space.
func TestURLsInQueryWithASpace(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{`Post "http://u:p@h/x?key=a b": dial tcp 10.0.0.1:80: connect: connection refused`,
			`Post "http://u:xxxxx@h/x?key=xxxxx": dial tcp 10.0.0.1:80: connect: connection refused`},
		{`webhook http://u:p@h/x?key=a b: Post "http://u:***@h/x?key=a b": dial tcp 10.0.0.1:80: connect: connection refused`,
			`webhook http://u:xxxxx@h/x?key=xxxxx: Post "http://u:xxxxx@h/x?key=xxxxx": dial tcp 10.0.0.1:80: connect: connection refused`},
		{`webhook https://h/x?key=a b&n=1 timed out: Post "https://h/x?key=a b&n=1": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`,
			`webhook https://h/x?key=xxxxx&n=xxxxx timed out: Post "https://h/x?key=xxxxx&n=xxxxx": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`},
		{`webhook https://h/x?key=a b answered 400 Bad Request`,
			`webhook https://h/x?key=xxxxx answered 400 Bad Request`},
		{`webhook https://h/x?key=a b c: encode 0190a0e6-7b1c-7f00-8000-000000000001: json: unsupported value: NaN`,
			`webhook https://h/x?key=xxxxx: encode 0190a0e6-7b1c-7f00-8000-000000000001: json: unsupported value: NaN`},
		// The quoted copy shows the value goes on past a ": " in it.
		{`webhook https://h/x?key=a: b c: Post "https://h/x?key=a: b c": EOF`,
			`webhook https://h/x?key=xxxxx: Post "https://h/x?key=xxxxx": EOF`},
		{`webhook https://h/x?key="a b": Post "https://h/x?key=\"a b\"": EOF`,
			`webhook https://h/x?key=xxxxx: Post "https://h/x?key=xxxxx": EOF`},
		// Another URL, or the end of the line, ends it.
		{"https://h/x?k=a b and https://h/y?t=c d", "https://h/x?k=xxxxx https://h/y?t=xxxxx"},
		{"webhook https://h/x?k=a b\nnext line", "webhook https://h/x?k=xxxxx\nnext line"},
		{"webhook https://h/x?k=a b.", "webhook https://h/x?k=xxxxx."},
		// A URL without a query ends at white space, as before.
		{"webhook https://u:p@h/x answered 500 Internal Server Error", "webhook https://u:xxxxx@h/x answered 500 Internal Server Error"},
	} {
		if got := URLsIn(tt.text); got != tt.want {
			t.Errorf("URLsIn(%q)\n = %q\nwant %q", tt.text, got, tt.want)
		}
	}
}

// TestURLsInPathWithASpace: a webhook URL's path may hold a space too (url.Parse takes it,
// and the configuration accepted such a URL), and an older version recorded it unquoted
// before the error that quoted it again ("webhook URL: Post \"URL\": ...", the path's
// space escaped, a password as ***). The unquoted URL runs across the white space of its
// path only as far as that quoted copy shows (compared unescaped), its query then masked
// as a query is: never on the guess that a "?" after a space begins a query, so prose
// after a URL is left as it is, not masked or escaped.
func TestURLsInPathWithASpace(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{`webhook https://h/my path?key=secret: Post "https://h/my%20path?key=secret": EOF`,
			`webhook https://h/my%20path?key=xxxxx: Post "https://h/my%20path?key=xxxxx": EOF`},
		{`webhook https://h/a b/c d?key=s e&n=1 timed out: Post "https://h/a%20b/c%20d?key=s e&n=1": context deadline exceeded`,
			`webhook https://h/a%20b/c%20d?key=xxxxx&n=xxxxx timed out: Post "https://h/a%20b/c%20d?key=xxxxx&n=xxxxx": context deadline exceeded`},
		{`webhook https://h/my path?key=secret: Post "https://h/my path?key=secret": EOF`,
			`webhook https://h/my%20path?key=xxxxx: Post "https://h/my%20path?key=xxxxx": EOF`},
		{`webhook https://u:pw@h/my path?key=secret: Post "https://u:***@h/my%20path?key=secret": EOF`,
			`webhook https://u:xxxxx@h/my%20path?key=xxxxx: Post "https://u:xxxxx@h/my%20path?key=xxxxx": EOF`},
		{`webhook https://u:pw@h/my path: Post "https://u:***@h/my%20path": EOF`,
			`webhook https://u:xxxxx@h/my%20path: Post "https://u:xxxxx@h/my%20path": EOF`},
		// Without a quoted copy (the answered and encode forms older versions wrote),
		// a path runs across white space up to the first separator when a "?" followed
		// by a parameter name and "=" comes before it.
		{"webhook https://h/my path?key=secret answered 500 Internal Server Error",
			"webhook https://h/my%20path?key=xxxxx answered 500 Internal Server Error"},
		{"webhook https://h/my path?key=secret: encode 123: boom",
			"webhook https://h/my%20path?key=xxxxx: encode 123: boom"},
		{"webhook https://u:pw@h/a b/c d?tok.en_1-x=s e timed out: context deadline exceeded",
			"webhook https://u:xxxxx@h/a%20b/c%20d?tok.en_1-x=xxxxx timed out: context deadline exceeded"},
		// Text after a URL that no quoted copy shows goes on is the text's.
		{"webhook https://h/x answered 500 Internal Server Error", "webhook https://h/x answered 500 Internal Server Error"},
		{"see https://h/x for why? it failed: EOF", "see https://h/x for why? it failed: EOF"},
		{"see https://docs/x (why?) it failed: EOF", "see https://docs/x (why?) it failed: EOF"},
		{"is https://h/x reachable?, retrying", "is https://h/x reachable?, retrying"},
		{"is https://h/x down?! retrying in 5s", "is https://h/x down?! retrying in 5s"},
		{"see https://h/x; why?? nobody knows", "see https://h/x; why?? nobody knows"},
		{"docs at https://h/x, why?retry later", "docs at https://h/x, why?retry later"},
		{`see https://h/x why?a=b: Post "https://h/y?a=b": EOF`, `see https://h/x why?a=b: Post "https://h/y?a=xxxxx": EOF`},
		{"see https://h/x or mail ops@example.com: EOF", "see https://h/x or mail ops@example.com: EOF"},
		{"see https://h:8080 or mail ops@example.com", "see https://h:8080 or mail ops@example.com"},
		{"see https://h/x and https://h/y?k=v", "see https://h/x and https://h/y?k=xxxxx"},
		{`webhook https://h/x "quoted?a=b": EOF`, `webhook https://h/x "quoted?a=b": EOF`},
		// A URL that masks nothing is left as written, not escaped again.
		{"see https://h/a%7Eb (why?)", "see https://h/a%7Eb (why?)"},
	} {
		if got := URLsIn(tt.text); got != tt.want {
			t.Errorf("URLsIn(%q)\n = %q\nwant %q", tt.text, got, tt.want)
		}
	}
}

// TestURLsInLongText: a recorded handler error may be long and hold many URLs with
// quoted copies; the search for where an unquoted URL with a space in its path ends is
// bounded by the length of a quoted copy, not by the text, so a 1 MB text costs work in
// proportion to its size.
func TestURLsInLongText(t *testing.T) {
	var b strings.Builder
	for i := 0; b.Len() < 3<<18; i++ {
		fmt.Fprintf(&b, "webhook https://h/p%d x: Post \"https://h/p%d%%20x\": EOF, see https://h/q%d a, b. c; ", i, i, i)
	}
	// An unquoted URL far before a quoted one, with every kind of end between them.
	b.WriteString("webhook https://h/x")
	for b.Len() < 1<<20 {
		b.WriteString(" a, b. c: d; e)")
	}
	b.WriteString(` "https://h/y"`)
	text := b.String()
	comparableCalls.Store(0)
	got := URLsIn(text)
	n := comparableCalls.Load()
	t.Logf("%d bytes, %d prefixes compared", len(text), n)
	if n > int64(len(text)/10) {
		t.Errorf("URLsIn of %d bytes compared %d prefixes, want at most %d", len(text), n, len(text)/10)
	}
	if want := `webhook https://h/p7 x: Post "https://h/p7%20x": EOF, see https://h/q7 a, b. c; `; !strings.Contains(got, want) {
		t.Errorf("URLsIn changed %q", want)
	}
	if len(got) != len(text) {
		t.Errorf("URLsIn changed the text's length from %d to %d", len(text), len(got))
	}
}

// TestURLsInMaskInCredential: a credential that holds the mask's letters is masked all
// the same: what decides is whether the URL has a credential, not whether the mask
// appears more often after masking.
func TestURLsInMaskInCredential(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{"webhook https://u:xxxxxSECRET@h/p answered 500", "webhook https://u:xxxxx@h/p answered 500"},
		{"webhook https://h/p?token=xxxxxSECRET answered 500", "webhook https://h/p?token=xxxxx answered 500"},
		{"webhook https://xxxxxSECRET@h/p answered 500", "webhook https://xxxxx@h/p answered 500"},
		{"webhook https://h/p?xxxxxSECRET answered 500", "webhook https://h/p?xxxxx answered 500"},
		{"webhook https://u:xxxxx%zzSECRET@h/p answered 500", "webhook https://xxxxx@h/p answered 500"},
		// Nothing to mask: as written.
		{"see https://h/a%7Eb/xxxxx (why?)", "see https://h/a%7Eb/xxxxx (why?)"},
	} {
		if got := URLsIn(tt.text); got != tt.want {
			t.Errorf("URLsIn(%q)\n = %q\nwant %q", tt.text, got, tt.want)
		}
	}
}
