// Package redact makes text that is shown or stored safe to show: it masks the
// credentials a URL can carry (a webhook's password and query values; the raw URL is
// only for dialling), and the control characters of words another party chose.
package redact

import (
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode"
)

// Mask replaces each credential, as in url.URL.Redacted.
const Mask = "xxxxx"

// URL is raw with its credentials masked: the password of its user information (the
// user name too when no password follows it, as in https://TOKEN@host/, a common way to
// pass a token), and the value of each query parameter (a parameter without "=" whole).
// Scheme, host, path and parameter names stay, so that the URL still says where it
// goes. A raw that does not parse as a URL is masked from its user information or its
// query on, whichever comes first, if it has either.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return fallback(raw)
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), Mask)
		} else if u.User.Username() != "" {
			u.User = url.User(Mask)
		}
	}
	if u.RawQuery != "" {
		u.RawQuery = maskQuery(u.RawQuery)
	}
	return u.String()
}

func maskQuery(q string) string {
	parts := strings.Split(q, "&")
	for i, p := range parts {
		switch name, _, ok := strings.Cut(p, "="); {
		case ok:
			parts[i] = name + "=" + Mask
		case p != "":
			parts[i] = Mask
		}
	}
	return strings.Join(parts, "&")
}

// fallback masks a raw URL url.Parse refused: its user information (up to an "@"
// before the first "/", "?" or "#" after the scheme) and everything from "?" on. An
// "@" further on may end a password that holds one of those: then all after the
// scheme is masked.
func fallback(raw string) string {
	prefix, rest := "", raw
	if scheme, after, ok := strings.Cut(raw, "://"); ok {
		prefix, rest = scheme+"://", after
	}
	end := len(rest)
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		end = i
	}
	if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
		rest = Mask + rest[at:]
	} else if strings.Contains(rest[end:], "@") {
		return prefix + Mask
	}
	if before, _, ok := strings.Cut(rest, "?"); ok {
		rest = before + "?" + Mask
	}
	return prefix + rest
}

// inText finds a URL in text: one Go quoted (as a url.Error does, with %q) runs to
// its closing quote, spaces and escaped quotes included; any other to the next white
// space or quote before its query, and from its "?" on at least to the next white space,
// quotes included (queryEnd says how much further). A password may hold ' and a query
// value ' < > or ", which url.Parse takes: a quote in the query does not end the URL, so
// the rest of its value is not left unmasked (a quote just after a URL with a query is
// taken as part of its query).
var inText = regexp.MustCompile(`(?i)"https?://(?:[^"\\]|\\.)*"|\bhttps?://[^\s"?]+(?:\?\S*)?`)

// nextURL finds the white space before another URL, which ends an unquoted URL's query.
var nextURL = regexp.MustCompile(`(?i)\s+"?https?://`)

// afterURL are what the error texts of older versions wrote after a webhook's URL
// ("webhook URL: ...", "webhook URL answered 500 ...", "webhook URL timed out: ..."),
// and a line's end: an unquoted URL's query with a space in it runs to the first of them.
var afterURL = []string{": ", " answered ", " timed out", "\n", "\r"}

// URLsIn is text with each http or https URL in it masked as URL says: for text that
// may hold a URL, such as an error recorded by an earlier version, which named its
// webhook in full. Punctuation that ends an unquoted URL in prose (".", ",", ":", ";",
// ")") is taken as the text's, not the URL's.
//
// A query value may hold a space, which url.Parse takes, and an unquoted URL does not
// say where it ends: an earlier version wrote "webhook URL: Post \"URL\": ..." with the
// same URL unquoted and quoted. An unquoted URL's query runs as far as the query of a
// quoted URL in the same text that it begins with (the longest), else to the first of
// afterURL or the white space before another URL, else to the end of the text: masking
// some words of the text after it rather than leaving the rest of a value shown. A path
// may hold a space too: an unquoted URL runs across white space only as far as a quoted
// copy of it later in the text shows (see pathEnd). A URL with nothing to mask is left
// as written.
func URLsIn(text string) string {
	if !strings.Contains(text, "://") {
		return text
	}
	ms := inText.FindAllStringIndex(text, -1)
	var quoted []string // the queries of the quoted URLs, unquoted
	var twins []twin    // the quoted URLs, unquoted
	for _, m := range ms {
		if text[m[0]] != '"' {
			continue
		}
		u, err := strconv.Unquote(text[m[0]:m[1]])
		if err != nil {
			u = text[m[0]+1 : m[1]-1]
		}
		want, _, query := strings.Cut(u, "?")
		twins = append(twins, twin{url: u, at: m[0], want: comparable(want), query: query})
		if _, q, ok := strings.Cut(u, "?"); ok && q != "" {
			quoted = append(quoted, q)
		}
	}
	var b strings.Builder
	sc := separators{text: text}
	done := 0
	for _, m := range ms {
		if m[0] < done {
			continue // inside the query of the URL before it
		}
		b.WriteString(text[done:m[0]])
		match := text[m[0]:m[1]]
		if strings.HasPrefix(match, `"`) {
			// Masked as quoted: an escape's backslash keeps a user information that
			// holds one from parsing, so it is masked whole.
			b.WriteString(`"` + URL(match[1:len(match)-1]) + `"`)
			done = m[1]
			continue
		}
		end := m[1]
		if !strings.Contains(match, "?") {
			end = pathEnd(text, m[0], end, twins)
			if end == m[1] && !twinAfter(twins, end) {
				end = pathToQuery(text, end, &sc)
			}
			match = text[m[0]:end]
		}
		if q := strings.IndexByte(match, '?'); q >= 0 {
			end = max(end, queryEnd(text, m[0]+q+1, quoted, &sc))
		}
		match = text[m[0]:end]
		trimmed := strings.TrimRight(match, ".,:;)")
		if hasCredentials(trimmed) {
			b.WriteString(URL(trimmed) + match[len(trimmed):])
		} else {
			b.WriteString(match) // nothing to mask: as written, not escaped again
		}
		done = end
	}
	b.WriteString(text[done:])
	return b.String()
}

// queryEnd is where the query of an unquoted URL that starts at q in text ends (see
// URLsIn), given the queries of the quoted URLs in text.
func queryEnd(text string, q int, quoted []string, sc *separators) int {
	rest := text[q:]
	twin := -1
	for _, qq := range quoted {
		if strings.HasPrefix(rest, qq) {
			twin = max(twin, len(qq))
		}
	}
	if twin >= 0 {
		return q + twin
	}
	return sc.first(q)
}

// separators finds in text the first of afterURL or the white space before another URL
// from a position on, for positions that do not go back: it remembers where each was
// found, so that a text with many URLs is searched once, not once for each URL.
type separators struct {
	text string
	at   []int // where each of afterURL, then nextURL, was found last; len(text) if not
}

// first is where the first separator at or after from is, len(text) if there is none.
func (sc *separators) first(from int) int {
	if sc.at == nil {
		sc.at = make([]int, len(afterURL)+1)
		for i := range sc.at {
			sc.at[i] = -1
		}
	}
	end := len(sc.text)
	for i := range sc.at {
		if sc.at[i] < from && sc.at[i] != len(sc.text) {
			sc.at[i] = len(sc.text)
			if i < len(afterURL) {
				if j := strings.Index(sc.text[from:], afterURL[i]); j >= 0 {
					sc.at[i] = from + j
				}
			} else if loc := nextURL.FindStringIndex(sc.text[from:]); loc != nil {
				sc.at[i] = from + loc[0]
			}
		}
		end = min(end, sc.at[i])
	}
	return end
}

// pathEnd is where an unquoted URL that starts at start in text, and that inText ends
// at end (at white space or a quote, before any "?"), ends if its path holds white space:
// an older version recorded a webhook URL whose path holds a space (url.Parse takes one)
// unquoted, and then the same URL quoted ("webhook URL: Post \"URL\": ...", the path's
// space escaped, a password as ***). The URL runs on past white space only as far as one
// of twins, the quoted URLs in text (unquoted) and where they start, that begins after it
// shows: up to its "?" (taken too), or the whole of it if it has no query, compared unescaped and
// with any password left out. Else it ends at end: text after a URL that no quoted copy
// shows goes on is the text's, whatever it holds.
//
// Only a copy close after the URL counts (older versions wrote it right after), and the
// URL is taken at most about three times as long as its copy (an escape such as %20 is
// three bytes for one) plus its own user information: the work stays in proportion to
// the text, however many URLs and copies it holds.
func pathEnd(text string, start, end int, twins []twin) int {
	best := end
	first := comparable(text[start:end])
	user := userInfoLen(text[start:end])
	i, _ := slices.BinarySearchFunc(twins, end, func(tw twin, at int) int { return tw.at - at })
	for _, tw := range twins[i:] {
		if tw.at-end > twinWindow {
			break
		}
		want, query := tw.want, tw.query
		if len(want) <= len(first) || !strings.HasPrefix(want, first) || want[len(first)] != text[end] {
			continue
		}
		limit := min(tw.at, start+3*len(tw.url)+user+8, len(text)-1)
		for e := limit; e > best; e-- {
			if query && text[e] != '?' || !query && !endsURL(text, e) {
				continue
			}
			if comparable(text[start:e]) == want {
				if best = e; query {
					best++ // its "?", for its query to be masked
				}
				break
			}
		}
	}
	return best
}

// twinWindow is how far after an unquoted URL's first white space a quoted copy of it
// may start to count: older versions wrote it a few words on ("webhook URL timed out:
// Post \"URL\""), after the URL itself.
const twinWindow = 4096

// userInfoLen is the length of the user information (with its "@") of the URL u, 0 if it
// has none.
func userInfoLen(u string) int {
	_, rest, ok := strings.Cut(u, "://")
	if !ok {
		return 0
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	return strings.LastIndexByte(rest, '@') + 1
}

// twinAfter reports whether one of twins starts at or after end.
func twinAfter(twins []twin, end int) bool {
	return len(twins) > 0 && twins[len(twins)-1].at >= end
}

// queryStart finds a "?" followed by a parameter name and "=": what a query looks like,
// unlike a question mark in prose ("why?", "down?!", "(why?)").
var queryStart = regexp.MustCompile(`\?[A-Za-z0-9_.-]+=`)

// pathToQuery is where an unquoted URL that inText ends at end (at white space, before
// any "?") ends when no quoted URL follows it: older versions also recorded a webhook
// URL with no quoted copy ("webhook URL answered 500 ...", "webhook URL: encode ID:
// ..."), and its path may hold a space. The URL runs across white space, up to the first
// of afterURL or the white space before another URL, only if a query (see queryStart)
// comes first, with no quote before it: then it ends just after that "?", for its query
// to be masked. Else it ends at end.
func pathToQuery(text string, end int, sc *separators) int {
	if end >= len(text) || !isSpace(text[end]) {
		return end
	}
	rest := text[end:sc.first(end)]
	loc := queryStart.FindStringIndex(rest)
	if loc == nil || strings.ContainsAny(rest[:loc[0]], `"`) {
		return end
	}
	return end + loc[0] + 1
}

// hasCredentials reports whether URL masks anything in raw: a password, a user name, a
// query; for one url.Parse refuses, a user information or a query. It looks at what raw
// holds, not at how often Mask appears, so a credential that holds Mask is masked too.
func hasCredentials(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return fallback(raw) != raw
	}
	return u.User != nil && (u.User.Username() != "" || hasPassword(u.User)) || u.RawQuery != ""
}

func hasPassword(u *url.Userinfo) bool {
	_, ok := u.Password()
	return ok
}

// twin is a quoted URL in a text, unquoted, and where it starts.
type twin struct {
	url   string
	at    int
	want  string // url up to any "?", comparable
	query bool   // whether url has a "?"
}

// endsURL reports whether an unquoted URL can end before text[e].
func endsURL(text string, e int) bool {
	return e == len(text) || isSpace(text[e]) || strings.IndexByte(`".,:;)`, text[e]) >= 0
}

// comparable is the URL u unescaped, without the password of its user information, to
// compare a URL with a copy of it written otherwise.
func comparable(u string) string {
	comparableCalls.Add(1)
	if un, err := url.PathUnescape(u); err == nil {
		u = un
	}
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	auth := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		auth = rest[:i]
	}
	if at := strings.LastIndexByte(auth, '@'); at >= 0 {
		user, _, _ := strings.Cut(auth[:at], ":")
		rest = user + rest[at:]
	}
	return scheme + "://" + rest
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// comparableCalls counts calls of comparable, for a test to bound the work of URLsIn.
var comparableCalls atomic.Int64

// Controls is s, words another party chose (a webhook receiver's status line and body),
// with its control characters as spaces: such text is recorded, logged, served and
// printed in a terminal, where an escape sequence would act (clear the screen, rewrite
// what was printed) and a line break would break a table.
func Controls(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}
