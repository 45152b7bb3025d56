package server

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
)

// Go's HTTP server refuses a request it cannot parse before any handler sees it, writing
// a plain-text 400 onto the connection itself: most often a path with a malformed
// percent-escape (/v1/streams/a%zz), which url.ParseRequestURI rejects. The contract
// answers every error in JSON, so Serve's connections are wrapped to write that answer
// as the contract's bad_request instead, naming the escape from the request line they
// saw. A TLS connection is served as it is: net/http needs the *tls.Conn itself (its
// handshake, Request.TLS), so over TLS the plain-text answer stays.

// goBadRequest is what net/http writes for a request it could not parse (conn.serve);
// goBadRequestWith, the start of what it writes for one with a reason of its own (a
// statusError: "missing required Host header"), the reason following up to the headers.
const (
	goErrorHeaders   = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
	goBadRequest     = "HTTP/1.1 400 Bad Request" + goErrorHeaders + "400 Bad Request"
	goBadRequestWith = "HTTP/1.1 400 Bad Request: "
	// goBadRequestStart starts both; of a handler's answers, only a 400's first write
	// starts so ("HTTP/1.1 400 Bad Request\r\n", the headers after it), written as it
	// is.
	goBadRequestStart = "HTTP/1.1 400 Bad Request"
)

// maxSeenLine bounds what a connection keeps of a request line to name a malformed
// escape in it: one past it is refused all the same, without the escape named.
const maxSeenLine = 8 << 10

// jsonErrorListener wraps the connections of a listener in jsonErrorConn, but TLS ones.
type jsonErrorListener struct{ net.Listener }

func (l jsonErrorListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if _, ok := c.(*tls.Conn); ok {
		return c, nil
	}
	return &jsonErrorConn{Conn: c}, nil
}

// jsonErrorConn keeps the first line of what the client sent since the server last
// wrote (the request line of the request being read, as a client sends its next
// request once answered), and writes net/http's plain-text 400 as the contract's JSON.
type jsonErrorConn struct {
	net.Conn
	mu   sync.Mutex
	line []byte
	done bool // line holds a whole line, or maxSeenLine bytes of it
}

func (c *jsonErrorConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	if !c.done && n > 0 {
		b := p[:n]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b, c.done = b[:i], true
		}
		room := maxSeenLine - len(c.line)
		if len(b) >= room {
			b, c.done = b[:room], true
		}
		c.line = append(c.line, b...)
	}
	c.mu.Unlock()
	return n, err
}

func (c *jsonErrorConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	line := c.line
	c.line, c.done = nil, false
	c.mu.Unlock()
	if !bytes.HasPrefix(p, []byte(goBadRequestStart)) {
		return c.Conn.Write(p) // any answer of a handler: written as it is, not copied
	}
	s := string(p)
	var msg string
	switch {
	case s == goBadRequest:
		msg = malformedRequest(string(line))
	case strings.HasPrefix(s, goBadRequestWith) && strings.Contains(s, goErrorHeaders):
		reason, _, _ := strings.Cut(strings.TrimPrefix(s, goBadRequestWith), goErrorHeaders)
		msg = "malformed request: " + reason
	default:
		return c.Conn.Write(p)
	}
	body, err := json.Marshal(apiErrorBody{Error: codeBadRequest, Message: msg})
	if err != nil {
		return c.Conn.Write(p)
	}
	if _, err := fmt.Fprintf(c.Conn, "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		len(body), body); err != nil {
		return 0, err
	}
	return len(p), nil
}

// CloseWrite and ReadFrom are those of the connection wrapped, which net/http uses when
// it has them (a TCP connection's half-close before it closes, sendfile).
func (c *jsonErrorConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *jsonErrorConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// apiErrorBody is the contract's error body.
type apiErrorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// malformedRequest says what is wrong with a request net/http could not parse, from its
// request line as seen: the first malformed percent-escape of its path, at which byte,
// quoted and cut; or, when the line holds none, that the request could not be parsed.
func malformedRequest(line string) string {
	const generic = "malformed request: the request line or its headers could not be parsed as HTTP/1.1"
	fields := strings.Fields(strings.TrimSuffix(line, "\r"))
	if len(fields) != 3 || !strings.HasPrefix(fields[2], "HTTP/") {
		return generic
	}
	path, _, _ := strings.Cut(fields[1], "?")
	for i := 0; i < len(path); i++ {
		if path[i] != '%' {
			continue
		}
		if i+2 < len(path) && isHex(path[i+1]) && isHex(path[i+2]) {
			i += 2
			continue
		}
		esc := path[i:min(i+3, len(path))]
		return fmt.Sprintf("malformed escape %s at byte %d of the path %s: a %% takes two hex digits (%%2F); write a %% itself as %%25",
			quoteCut(esc), i, quoteCut(path))
	}
	return generic
}

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}
