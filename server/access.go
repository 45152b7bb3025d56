package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// Scope is what a token may do. Each scope includes the ones before it: read reads and
// subscribes, write also appends, links and deletes, admin also administers.
type Scope int

// The scopes, in order.
const (
	ScopeRead Scope = iota + 1
	ScopeWrite
	ScopeAdmin
)

var scopeNames = map[string]Scope{"read": ScopeRead, "write": ScopeWrite, "admin": ScopeAdmin}

func (s Scope) String() string {
	switch s {
	case ScopeRead:
		return "read"
	case ScopeWrite:
		return "write"
	case ScopeAdmin:
		return "admin"
	}
	return fmt.Sprintf("Scope(%d)", int(s))
}

// token is one entry of the token file.
type token struct {
	name  string
	hash  [sha256.Size]byte
	scope Scope
	// streams are the stream-name prefixes the token is limited to; nil means all.
	streams []string
}

// Tokens are the tokens of an --auth file. The file holds only each token's SHA-256,
// so reading it does not reveal a token. Reload reads the file again; requests in
// flight finish with the tokens they started with, but subscriptions, which last as long
// as their client keeps them, end once a reload no longer lets their token open them
// (Server.whileAuthorized). It is safe for concurrent use.
type Tokens struct {
	path string
	mu   sync.RWMutex
	list []token
	// reloaded is closed, and replaced, by each reload that takes.
	reloaded chan struct{}
	// owner is what SetOwner set: nil, no stream is owned.
	owner func(stream string) (owner string, ok bool)
}

// SetOwner says which streams a process manager or subscription owns: owner names the
// one that owns a stream ("process manager Order", true), or says none does. A change
// to an owned stream (append, link into it, delete, retention, erase) then needs the
// admin scope, as its owner folds the records there as its own: a write token could
// otherwise suppress a command, cancel a deadline, skip events or move a subscription.
// Reads are unaffected. pmd serve sets it from its config file, on every node.
func (t *Tokens) SetOwner(owner func(stream string) (owner string, ok bool)) {
	t.mu.Lock()
	t.owner = owner
	t.mu.Unlock()
}

func (t *Tokens) ownerOf(stream string) (string, bool) {
	t.mu.RLock()
	owner := t.owner
	t.mu.RUnlock()
	if owner == nil {
		return "", false
	}
	return owner(stream)
}

// LoadTokens reads a token file:
//
//	tokens:
//	  - name: ci                       # shown in logs, never the token
//	    sha256: 5e884898da28...        # hex SHA-256 of the token
//	    scopes: [write]                # read, write or admin
//	    streams: ["Order$", "Customer$"] # optional: stream-name prefixes; absent: all
func LoadTokens(path string) (*Tokens, error) {
	t := &Tokens{path: path, reloaded: make(chan struct{})}
	if err := t.Reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// Reload reads the file again. On an error the tokens in use stay as they were.
func (t *Tokens) Reload() error {
	list, err := readTokens(t.path)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.list = list
	close(t.reloaded)
	t.reloaded = make(chan struct{})
	t.mu.Unlock()
	return nil
}

// changed returns a channel closed at the next reload that takes.
func (t *Tokens) changed() <-chan struct{} {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.reloaded
}

// Len is the number of tokens loaded.
func (t *Tokens) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.list)
}

// tokenFile is the file's layout; KnownFields refuses any other key, so that a
// misspelt "stream:" does not silently grant every stream.
type tokenFile struct {
	Tokens []struct {
		Name   string   `yaml:"name"`
		SHA256 string   `yaml:"sha256"`
		Scopes []string `yaml:"scopes"`
		// Streams is kept as a node to tell "streams:" with no value (null, which
		// must not grant every stream) from no streams key at all.
		Streams yaml.Node `yaml:"streams"`
	} `yaml:"tokens"`
}

func readTokens(path string) ([]token, error) {
	data, err := readPrivate(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	if err := unknownKeys(&doc, path); err != nil {
		return nil, err
	}
	var f tokenFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	if err := dec.Decode(new(yaml.Node)); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("token file %s: a second YAML document (after ---): put every token in the one tokens list", path)
	}
	if len(f.Tokens) == 0 {
		return nil, fmt.Errorf("token file %s: no tokens: with --auth every request needs one", path)
	}
	lines := entryLines(&doc)
	var list []token
	names := map[string]bool{}
	for i, e := range f.Tokens {
		at := fmt.Sprintf("token file %s: tokens[%d]", path, i)
		if i < len(lines) {
			at = fmt.Sprintf("%s:%d: tokens[%d]", path, lines[i], i)
		}
		if e.Name == "" {
			return nil, fmt.Errorf("%s: name is missing", at)
		}
		if names[e.Name] {
			return nil, fmt.Errorf("%s: the name %q is used twice", at, e.Name)
		}
		names[e.Name] = true
		tk := token{name: e.Name}
		raw, err := hex.DecodeString(e.SHA256)
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("%s (%s): sha256 must be 64 hex digits, the SHA-256 of the token (printf %%s TOKEN | sha256sum)", at, e.Name)
		}
		copy(tk.hash[:], raw)
		if tk.hash == emptyToken {
			return nil, fmt.Errorf("%s (%s): sha256 is that of an empty token, which no request can send: was the token's variable unset when it was hashed? (printf %%s TOKEN | sha256sum)", at, e.Name)
		}
		for _, other := range list {
			if other.hash == tk.hash {
				return nil, fmt.Errorf("%s (%s): the same token as %s", at, e.Name, other.name)
			}
		}
		if len(e.Scopes) == 0 {
			return nil, fmt.Errorf("%s (%s): scopes is missing: give read, write or admin", at, e.Name)
		}
		for _, s := range e.Scopes {
			sc, ok := scopeNames[s]
			if !ok {
				return nil, fmt.Errorf("%s (%s): unknown scope %q: give read, write or admin", at, e.Name, s)
			}
			tk.scope = max(tk.scope, sc)
		}
		if !e.Streams.IsZero() {
			var streams []string
			if err := e.Streams.Decode(&streams); err != nil {
				return nil, fmt.Errorf("%s (%s): streams must be a list of stream-name prefixes: %w", at, e.Name, err)
			}
			if len(streams) == 0 {
				return nil, fmt.Errorf("%s (%s): streams is empty: leave it out for every stream, or name prefixes", at, e.Name)
			}
			for _, p := range streams {
				if p == "" {
					return nil, fmt.Errorf("%s (%s): an empty stream prefix: leave streams out for every stream", at, e.Name)
				}
				if strings.HasPrefix(p, "$") {
					return nil, fmt.Errorf("%s (%s): stream prefix %q starts with $: names starting with $ are the store's own, so a token limited to them reaches no stream", at, e.Name, p)
				}
			}
			tk.streams = streams
		}
		list = append(list, tk)
	}
	return list, nil
}

// emptyToken is the SHA-256 of no bytes: what hashing an unset variable gives.
var emptyToken = sha256.Sum256(nil)

// readPrivate reads the token file, refusing one that every user may write: any local
// user could add a token of their own, with the admin scope. The mode is that of the
// file read (not of a path that may be replaced between a check and the read). Windows
// has no such mode bits (Go shows every writable file as 0666 there).
func readPrivate(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o002 != 0 {
		return nil, fmt.Errorf("token file %s is writable by every user (mode %04o): any of them could add a token of their own; chmod o-w %s", path, perm, path)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	return data, nil
}

// unknownKeys names the first key of the file that tokenFile does not have, with its
// line and the keys that are known: the decoder's own message names a Go type.
func unknownKeys(doc *yaml.Node, path string) error {
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil // the decoder says what is wrong
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if k.Value != "tokens" {
			return fmt.Errorf("%s:%d: unknown key %q (known keys: tokens)", path, k.Line, k.Value)
		}
		if m.Content[i+1].Kind != yaml.SequenceNode {
			continue
		}
		for j, e := range m.Content[i+1].Content {
			if e.Kind != yaml.MappingNode {
				continue
			}
			for n := 0; n+1 < len(e.Content); n += 2 {
				k := e.Content[n]
				if k.Tag == "!!merge" {
					continue // <<: *entry, whose keys the decoder checks
				}
				switch k.Value {
				case "name", "sha256", "scopes", "streams":
				default:
					return fmt.Errorf("%s:%d: tokens[%d]: unknown key %q (known keys: name, sha256, scopes, streams)", path, e.Line, j, k.Value)
				}
			}
		}
	}
	return nil
}

// entryLines returns the line of each entry of the tokens list, for messages.
func entryLines(doc *yaml.Node) []int {
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "tokens" && m.Content[i+1].Kind == yaml.SequenceNode {
			var lines []int
			for _, e := range m.Content[i+1].Content {
				lines = append(lines, e.Line)
			}
			return lines
		}
	}
	return nil
}

// find returns the token whose SHA-256 is that of presented. Every entry is compared,
// in constant time, so the time taken says nothing about which entry, if any, matched.
func (t *Tokens) find(presented string) (token, bool) {
	sum := sha256.Sum256([]byte(presented))
	t.mu.RLock()
	defer t.mu.RUnlock()
	var found token
	ok := 0
	for _, tk := range t.list {
		eq := subtle.ConstantTimeCompare(sum[:], tk.hash[:])
		if eq == 1 {
			found = tk
		}
		ok |= eq
	}
	return found, ok == 1
}

// access says who may call a route.
type access struct {
	// scope is the scope the route needs; 0 means no token at all (/healthz, the
	// browser's static files).
	scope Scope
	// target returns the stream name (or stream-name prefix, for the listing) the
	// request is limited to, for tokens limited to streams; ok false means the route
	// reaches more than named streams and needs a token for every stream. nil is the
	// same as ok false.
	target func(r *http.Request) (name string, ok bool)
	// noData lets a token limited to streams call a route that shows no stream's
	// data (the route list, the API document).
	noData bool
}

func pathStream(r *http.Request) (string, bool) {
	name := r.PathValue("stream")
	return name, !strings.HasPrefix(name, "$")
}

func queryStream(r *http.Request) (string, bool) {
	name := r.URL.Query().Get("stream")
	return name, name != "" && !strings.HasPrefix(name, "$")
}

func queryPrefix(r *http.Request) (string, bool) {
	return r.URL.Query().Get("prefix"), true
}

// authorize checks the request's token against a, and returns the request to serve: r,
// or, for a token limited to streams, r with the token in its context (limitedToken), for
// the handlers whose request reaches more than its target stream.
func (s *Server) authorize(r *http.Request, a access) (*http.Request, error) {
	if s.opts.Tokens == nil || a.scope == 0 {
		return r, nil
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return r, errUnauthorized("this pmd needs a token: send Authorization: Bearer <token>")
	}
	scheme, presented, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(presented) == "" {
		return r, errUnauthorized("the Authorization header must be Bearer <token>")
	}
	tk, ok := s.opts.Tokens.find(strings.TrimSpace(presented))
	if !ok {
		return r, errUnknownToken
	}
	if tk.scope < a.scope {
		return r, errForbidden("token %q has scope %s; this needs %s", tk.name, tk.scope, a.scope)
	}
	if err := s.checkOwner(tk, a, r); err != nil {
		return r, err
	}
	if tk.streams == nil || a.noData {
		return r, nil
	}
	name, ok := "", false
	if a.target != nil {
		name, ok = a.target(r)
	}
	if !ok {
		return r, errForbidden("token %q is limited to streams %s; this needs a token for every stream", tk.name, strings.Join(quoteAll(tk.streams), ", "))
	}
	if !tk.allows(name) {
		return r, errForbidden("token %q is limited to streams %s, not %q", tk.name, strings.Join(quoteAll(tk.streams), ", "), name)
	}
	return r.WithContext(context.WithValue(r.Context(), limitedKey{}, &tk)), nil
}

// checkOwner refuses a change to a stream that a configured process manager or
// subscription owns (Tokens.SetOwner) unless the token has the admin scope. A route
// that needs write or admin and is about one stream (append, link, delete, retention,
// erase) changes that stream.
func (s *Server) checkOwner(tk token, a access, r *http.Request) error {
	if a.scope < ScopeWrite || tk.scope >= ScopeAdmin || a.target == nil {
		return nil
	}
	name, ok := a.target(r)
	if !ok {
		return nil
	}
	if owner, owned := s.opts.Tokens.ownerOf(name); owned {
		return errForbidden("stream %q belongs to %s: changing it needs an admin token (token %q has scope %s)", name, owner, tk.name, tk.scope)
	}
	return nil
}

// whileAuthorized returns r with a context that ends when a reload of the tokens no
// longer lets r's token call the route under a (the token gone, its scope lowered, its
// streams changed), and the function that releases what it holds, to be called when the
// request ends. A subscription lasts days if its client keeps it: without this, a token
// revoked with SIGHUP would go on reading every event written. The context's cause is
// then a *revokedError (revoked), for the subscription to tell its client why it ends;
// the client's reconnect is refused as any new request is.
func (s *Server) whileAuthorized(r *http.Request, a access) (*http.Request, context.CancelFunc) {
	ctx, cancelCause := context.WithCancelCause(r.Context())
	cancel := func() { cancelCause(nil) }
	r = r.WithContext(ctx)
	// The handler goes on changing r (its body, its query): the checks read a copy.
	probe := r.Clone(ctx)
	go func() {
		for {
			reloaded := s.opts.Tokens.changed()
			// Checked after taking the channel, so that a reload since the request was
			// authorized is not missed.
			if _, err := s.authorize(probe, a); err != nil {
				s.log.Info("subscription ended: the reloaded tokens no longer allow it", "path", probe.URL.Path, "err", err)
				cancelCause(&revokedError{err})
				return
			}
			select {
			case <-reloaded:
			case <-ctx.Done():
				return
			}
		}
	}()
	return r, cancel
}

// revokedError is the cause of the end of a request's context that whileAuthorized
// ended: err is the refusal the reloaded tokens give the request.
type revokedError struct{ err error }

func (e *revokedError) Error() string {
	return "the reloaded tokens no longer allow this: " + e.err.Error()
}

func (e *revokedError) Unwrap() error { return e.err }

// revoked returns the refusal for which a reload of the tokens ended ctx
// (whileAuthorized), or nil if none did.
func revoked(ctx context.Context) error {
	var rv *revokedError
	if errors.As(context.Cause(ctx), &rv) {
		return rv
	}
	return nil
}

// errUnknownToken answers a Bearer token that is not in the token file.
var errUnknownToken = errUnauthorized("unknown token")

// challenge is the WWW-Authenticate header of a 401 answer (RFC 9110 requires one; RFC
// 6750 gives its form): a token that is not known is invalid_token; no token, or one
// that is not Bearer, is asked for.
func challenge(err error) string {
	if errors.Is(err, errUnknownToken) {
		return `Bearer realm="pmd", error="invalid_token"`
	}
	return `Bearer realm="pmd"`
}

// allows reports whether the token reaches stream.
func (tk *token) allows(stream string) bool {
	if tk.streams == nil {
		return true
	}
	for _, p := range tk.streams {
		if strings.HasPrefix(stream, p) {
			return true
		}
	}
	return false
}

type limitedKey struct{}

// limitedToken is the request's token if it is limited to streams (authorize), else nil.
func limitedToken(r *http.Request) *token {
	tk, _ := r.Context().Value(limitedKey{}).(*token)
	return tk
}

func quoteAll(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// checkSite refuses what a web page the user happens to visit could send: a request
// from a foreign Origin (cross-site request forgery, which needs no preflight for a
// POST with Content-Type text/plain) and a request for a Host name pmd does not serve
// (DNS rebinding: evil.example resolving to 127.0.0.1, making the page same-origin
// with pmd). Clients that send no Origin, as curl and SDKs do, are unaffected.
func (s *Server) checkSite(r *http.Request) error {
	if !s.hostAllowed(r.Host) {
		return errForbidden("Host %q is not a name this pmd serves; start it with --allow-host to serve it", r.Host)
	}
	origin := r.Header.Get("Origin")
	if origin == "" || s.ownOrigin(r, origin) || s.originAllowed(origin) {
		return nil
	}
	return errForbidden("requests from Origin %q are refused: it is not this pmd's own; start it with --allow-origin to allow it", origin)
}

// SetAllowHosts replaces the Host names served besides IP addresses and localhost
// (Options.AllowHosts), while the server runs: a renewed certificate may name others.
func (s *Server) SetAllowHosts(hosts []string) {
	hosts = slices.Clone(hosts)
	s.hosts.Store(&hosts)
}

// hostAllowed is true for an IP address (a page cannot rebind a literal address), for
// localhost and names under .localhost, which resolve only to this machine, and for
// the names in Options.AllowHosts, where "*.example.com" is any one label under
// example.com, as in a certificate. A request with no Host at all (HTTP/1.0, such as a
// load balancer's health check) is served too: a browser always sends one, so it is no
// rebinding.
func (s *Server) hostAllowed(host string) bool {
	if host == "" {
		return true
	}
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.TrimSuffix(strings.ToLower(strings.Trim(name, "[]")), ".")
	if net.ParseIP(name) != nil || name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return true
	}
	label, parent, _ := strings.Cut(name, ".")
	for _, a := range *s.hosts.Load() {
		a = strings.ToLower(strings.TrimSuffix(a, "."))
		if a == name {
			return true
		}
		if domain, ok := strings.CutPrefix(a, "*."); ok && label != "" && parent == domain {
			return true
		}
	}
	return false
}

// ownOrigin is true when origin is the address the request was sent to.
func (s *Server) ownOrigin(r *http.Request, origin string) bool {
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://"
	}
	return strings.EqualFold(origin, scheme+r.Host)
}

func (s *Server) originAllowed(origin string) bool {
	for _, a := range s.opts.AllowOrigins {
		if strings.EqualFold(strings.TrimSuffix(a, "/"), origin) {
			return true
		}
	}
	return false
}

// exposedHeaders are the response headers the API tells clients to use that are not
// CORS-safelisted (Content-Type, Content-Length and Cache-Control are): a browser shows
// a page of another origin only the headers an answer names in
// Access-Control-Expose-Headers, so without them such a page could not see how long
// to wait (Retry-After), which methods a path takes (Allow), why a token was refused
// (WWW-Authenticate), where a browser page was moved (Location), or up to which Raft
// index a cluster node's answer was current (Pmd-Applied-Index).
const exposedHeaders = "Retry-After, Allow, WWW-Authenticate, Location, " + headerApplied

// cors answers for an origin given with --allow-origin: the headers that let a page
// there read the answers and their headers, and the preflight its Authorization and
// JSON requests need. It reports whether the request was a preflight, now answered.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || s.ownOrigin(r, origin) || !s.originAllowed(origin) {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Expose-Headers", exposedHeaders)
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	h.Set("Access-Control-Allow-Methods", s.corsMethods)
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return true
}

// ListenCheck refuses to serve on addr, a listener's address, without tokens unless
// insecure says so: anyone who reaches a non-loopback port could write and delete.
func ListenCheck(addr net.Addr, auth, insecure bool) error {
	if auth || insecure {
		return nil
	}
	tcp, ok := addr.(*net.TCPAddr)
	if ok && tcp.IP.IsLoopback() {
		return nil
	}
	return errors.New("refusing to serve " + addr.String() + " without --auth: it is not a loopback address, so anyone who reaches it could write and delete; give --auth FILE, or --insecure if the network is trusted")
}
