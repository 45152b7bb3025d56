package redact

import "testing"

func TestURL(t *testing.T) {
	for _, tt := range []struct{ raw, want string }{
		{"https://hooks.example/pmd", "https://hooks.example/pmd"},
		{"https://user:pw@hooks.example/pmd", "https://user:xxxxx@hooks.example/pmd"},
		{"https://token@hooks.example/pmd", "https://xxxxx@hooks.example/pmd"},
		{"https://hooks.example/pmd?key=abc&sig=def", "https://hooks.example/pmd?key=xxxxx&sig=xxxxx"},
		{"https://hooks.example/pmd?abc&x=", "https://hooks.example/pmd?xxxxx&x=xxxxx"},
		{"http://u:p@127.0.0.1:8080/h?k=v#frag", "http://u:xxxxx@127.0.0.1:8080/h?k=xxxxx#frag"},
		// url.Parse refuses these (a bad escape, a bad port): masked all the same.
		{"http://u:p@host/%zz?k=v", "http://xxxxx@host/%zz?xxxxx"},
		{"http://u:p@host:port/h", "http://xxxxx@host:port/h"},
	} {
		if got := URL(tt.raw); got != tt.want {
			t.Errorf("URL(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

func TestURLsIn(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{"no url here", "no url here"},
		{"webhook http://u:pw@h:1/x?k=v: Post \"http://u:***@h:1/x?k=v\": dial tcp: refused",
			"webhook http://u:xxxxx@h:1/x?k=xxxxx: Post \"http://u:xxxxx@h:1/x?k=xxxxx\": dial tcp: refused"},
		{"webhook https://h/x?k=v answered 500 Internal Server Error", "webhook https://h/x?k=xxxxx answered 500 Internal Server Error"},
		{"see (https://a:b@h/x).", "see (https://a:xxxxx@h/x)."},
		// ' < > are valid in a password (' is) or a query value url.Parse takes: they
		// do not end the URL.
		{"webhook https://u:ab'cd@h/x answered 500 Internal Server Error",
			"webhook https://u:xxxxx@h/x answered 500 Internal Server Error"},
		{"webhook https://h/x?key=ab'cd answered 500", "webhook https://h/x?key=xxxxx answered 500"},
		{"webhook https://h/x?key=a<b>c answered 500", "webhook https://h/x?key=xxxxx answered 500"},
		// A query value may hold a quote too: an unquoted URL runs from its "?" to the
		// next white space, masking a little too much rather than leaking the rest.
		{`webhook https://h/x?key="s3cr3t": Post "https://h/x?key=\"s3cr3t\"": dial tcp: refused`,
			`webhook https://h/x?key=xxxxx: Post "https://h/x?key=xxxxx": dial tcp: refused`},
		{`webhook https://h/x?key=ab"cd answered 500`, "webhook https://h/x?key=xxxxx answered 500"},
		// Go's url.Error quotes the URL with %q: it ends at the closing quote, spaces and
		// escaped quotes included.
		{`webhook https://h/x: Post "https://h/x?k=a b": EOF`, `webhook https://h/x: Post "https://h/x?k=xxxxx": EOF`},
		{`Post "https://u:a\"b@h/x?k=v": net/url: invalid userinfo`,
			`Post "https://xxxxx@h/x?xxxxx": net/url: invalid userinfo`},
		// A URL that does not parse is masked from its user information on.
		{"webhook http://u:a/b@h/x answered 500", "webhook http://xxxxx answered 500"},
		{"webhook http://u:a<b@h/x answered 500", "webhook http://xxxxx@h/x answered 500"},
	} {
		if got := URLsIn(tt.text); got != tt.want {
			t.Errorf("URLsIn(%q)\n = %q\nwant %q", tt.text, got, tt.want)
		}
	}
}
