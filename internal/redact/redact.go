// Package redact masks the credentials a URL can carry, for URLs that are shown or
// stored: a webhook's password and query values. The raw URL is only for dialling.
package redact

import (
	"net/url"
	"regexp"
	"strings"
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
// space or quote before its query, and from its "?" on to the next white space, quotes
// included. A password may hold ' and a query value ' < > or ", which url.Parse takes:
// a quote in the query does not end the URL, so the rest of its value is not left
// unmasked (a quote just after a URL with a query is taken as part of its query).
var inText = regexp.MustCompile(`(?i)"https?://(?:[^"\\]|\\.)*"|\bhttps?://[^\s"?]+(?:\?\S*)?`)

// URLsIn is text with each http or https URL in it masked as URL says: for text that
// may hold a URL, such as an error recorded by an earlier version, which named its
// webhook in full. Punctuation that ends an unquoted URL in prose (".", ",", ":", ";",
// ")") is taken as the text's, not the URL's.
func URLsIn(text string) string {
	if !strings.Contains(text, "://") {
		return text
	}
	return inText.ReplaceAllStringFunc(text, func(m string) string {
		if strings.HasPrefix(m, `"`) {
			// Masked as quoted: an escape's backslash keeps a user information that
			// holds one from parsing, so it is masked whole.
			return `"` + URL(m[1:len(m)-1]) + `"`
		}
		trimmed := strings.TrimRight(m, ".,:;)")
		return URL(trimmed) + m[len(trimmed):]
	})
}
