package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/logevery"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configures a Server. The zero value gives the defaults noted on each field.
type Options struct {
	// MaxBody is the largest request body accepted, in bytes; 0 means 16 MiB.
	MaxBody int64
	// DefaultLimit is the page size of reads and listings without a limit; 0 means 100.
	DefaultLimit int
	// MaxLimit caps the limit of one page; 0 means 1000.
	MaxLimit int
	// RequestTimeout bounds the work of one request (a write waiting for its fsync, a
	// read) and the time to write its response; 0 means 30s. Subscriptions are not
	// bounded as a whole, but each of their writes is.
	RequestTimeout time.Duration
	// Heartbeat is the interval of SSE comment lines on an idle subscription; 0 means 15s.
	Heartbeat time.Duration
	// Processes answers the process-manager routes; nil means the daemon runs none.
	Processes Processes
	// Subscriptions answers the subscription routes; nil means the daemon runs none.
	Subscriptions Subscriptions
	// Commits, when the store was opened with its Observe as pmd.Options.OnCommit,
	// gives the stats route the write and commit-latency figures; nil leaves them out.
	Commits *Commits
	// Cluster, when set, says how the cluster stands, for the stats route (a node of a
	// cluster sets it; nil is a single node).
	Cluster func(context.Context) (ClusterStatus, error)
	// Node, for a node of a cluster, sends writes (and reads with ?consistency=leader,
	// and the process and subscription routes) to the leader; nil is a single node.
	Node Node
	// ForwardTLS is the TLS configuration of a follower's requests to an https leader,
	// for instance RootCAs holding a private CA; nil trusts the system's roots.
	ForwardTLS *tls.Config
	// Browser serves GET / and everything not under /v1/, /metrics or /healthz;
	// nil means a small page listing the API.
	Browser http.Handler
	// Registry receives the server's metrics and is served at /metrics; nil means a new
	// registry with the Go and process collectors.
	Registry *prometheus.Registry
	// MoreMetrics, when not nil, is gathered at /metrics beside Registry: metrics whose
	// collectors come and go, such as those of a cluster leader's process managers.
	MoreMetrics prometheus.Gatherer
	// Logger receives request errors and lifecycle messages; nil means slog.Default().
	Logger *slog.Logger
	// Tokens, when not nil, are the tokens every route but /healthz and the browser's
	// static files needs (Authorization: Bearer).
	Tokens *Tokens
	// AllowOrigins are the origins (https://dash.example) whose pages may call the API
	// besides the daemon's own; a request from any other Origin is refused.
	AllowOrigins []string
	// AllowHosts are the Host names served besides IP addresses, localhost and names
	// under .localhost; a request for any other Host is refused (DNS rebinding).
	// "*.example.com" serves any one label under example.com, as in a certificate.
	AllowHosts []string
	// PageBytes bounds a page of events: it stops before the event that would take
	// its JSON past this many bytes, always holding at least one; 0 means 4 MiB.
	PageBytes int
	// SubscriberBuffer bounds the bytes of events a subscription holds for a client
	// that reads slower than events are written; 0 means 16 MiB.
	SubscriberBuffer int
	// SubscribersBuffer bounds the bytes of events all subscriptions together hold
	// beyond the frame each is sending; 0 means 256 MiB. A live event that would take
	// them past it cuts its subscriber, as SubscriberBuffer does, unless that subscriber
	// holds nothing yet: many slow clients cannot add up to more.
	SubscribersBuffer int
	// MemoryBudget bounds the bytes that request bodies being read, the values parsed
	// from them, and pages of events being sent hold together; 0 means 256 MiB. Each
	// reserves its bytes before it allocates them (parsed values as they are made: they
	// hold up to 40 times their JSON, for small objects; a body and its values count as
	// the larger of the two; the answers that carry events' or commands' data but are no
	// page, an event by id, a process or parked commands, once encoded) and holds them
	// until its request ends: a request that
	// cannot get them within a second is refused with unavailable (503, Retry-After, but
	// none at an event beyond the whole budget, which retrying soon need not cure),
	// having changed nothing, and a page that cannot grow ends early, with next. A body
	// reserves its bytes as they arrive, not its whole Content-Length at once. The
	// oldest request holding bytes may always take more, so requests never wait on each
	// other for ever; the bytes held may exceed the budget by what that one request
	// holds (a body and its values, a page or answer, or the bound of the decoded data
	// of one event, which may be more than the whole budget). A subscription that cannot
	// get the bytes of an event's decoded data ends with an unavailable error event.
	// The budget is at least MaxBody +
	// PageBytes, so that the largest body always fits.
	MemoryBudget int64
}

func (o *Options) setDefaults() {
	if o.MaxBody <= 0 {
		o.MaxBody = 16 << 20
	}
	if o.DefaultLimit <= 0 {
		o.DefaultLimit = 100
	}
	if o.MaxLimit <= 0 {
		o.MaxLimit = 1000
	}
	if o.DefaultLimit > o.MaxLimit {
		o.DefaultLimit = o.MaxLimit
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 30 * time.Second
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.PageBytes <= 0 {
		o.PageBytes = 4 << 20
	}
	if o.SubscriberBuffer <= 0 {
		o.SubscriberBuffer = 16 << 20
	}
	if o.SubscribersBuffer <= 0 {
		o.SubscribersBuffer = 256 << 20
	}
	if o.MemoryBudget <= 0 {
		o.MemoryBudget = 256 << 20
	}
	o.MemoryBudget = max(o.MemoryBudget, o.MaxBody+int64(o.PageBytes))
}

// Server serves the HTTP API of one store. It is an http.Handler; Serve runs it on a
// listener with the timeouts and the graceful shutdown the daemon needs.
type Server struct {
	store   *pmd.Store
	opts    Options
	table   []route
	log     *slog.Logger
	mux     *http.ServeMux
	metrics *metrics

	// stopping is closed when Serve begins to shut down: subscriptions end, /healthz
	// turns 503, new requests are refused.
	stopping chan struct{}
	stopOnce sync.Once
	inFlight atomic.Int64
	held     atomic.Int64  // bytes all subscriptions hold queued; see SubscribersBuffer
	memory   *memoryBudget // bytes request bodies and pages hold; see MemoryBudget

	samples sampler // of the stats route; see stats.go

	// unavailable is when a request that failed as unavailable was last logged, per
	// cause (unavailableCause): while writes cannot be served (a full disk, no leader)
	// every one fails so, and clients that retry would log a line each; a cause
	// repeating does not hold back the first line of another.
	unavailableMu sync.Mutex
	unavailable   logevery.Lines
	// corrupt is the same for reads failing at a damaged record, per record: a reader
	// stuck there retries, and the scrub has logged the damage already (guarded by
	// unavailableMu too).
	corrupt logevery.Lines

	hosts atomic.Pointer[[]string] // Options.AllowHosts, or what SetAllowHosts set since
	// corsMethods are the methods of the routes, for the CORS preflight.
	corsMethods string
	// unclean answers a path of the API that is not clean (ServeHTTP); uncleanOpen
	// answers so, needing no token, one whose clean path is a route that needs none
	// (uncleanOpenPaths): a 401 would ask for a token that does not help.
	unclean, uncleanOpen http.Handler
	uncleanOpenPaths     map[string]bool

	forwarder *http.Client  // to the leader, for a cluster node (cluster.go)
	readFloor atomic.Uint64 // reads of this node's copy wait until it applied this Raft index

	// hooks are for tests, set before the server serves: none outside them.
	hooks serverHooks
}

// serverHooks are a Server's test hooks, each nil unless a test set it.
type serverHooks struct {
	// heldEncoded is called after each answer's JSON is appended to its buffer
	// (appendHeld), with what its request held of the memory budget then and the
	// buffer's capacity.
	heldEncoded func(held int64, capacity int)
	// queueWaits is called each time a subscription's reader waits for room in its
	// queue (sendQueue.room).
	queueWaits func()
}

// New returns a Server for store. The caller keeps ownership of store: the Server never
// closes it.
func New(store *pmd.Store, opts Options) *Server {
	opts.setDefaults()
	s := &Server{
		store:    store,
		opts:     opts,
		log:      opts.Logger,
		mux:      http.NewServeMux(),
		stopping: make(chan struct{}),
		memory:   newMemoryBudget(opts.MemoryBudget),
	}
	s.SetAllowHosts(opts.AllowHosts)
	s.metrics = newMetrics(opts.Registry, opts.MoreMetrics, store, opts.Processes, s.memory, s.problems)
	s.metrics.scrapeErrs.log = opts.Logger
	if opts.Node != nil {
		// Every writer of a follower is forwarded to the leader: keep a connection per
		// writer (http.DefaultTransport keeps two, and opens and closes the others at
		// each request).
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 256
		if opts.ForwardTLS != nil {
			t.TLSClientConfig = opts.ForwardTLS.Clone()
		}
		s.forwarder = &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	s.routes()
	return s
}

// route is one registered route: what answers it, who may call it and which query
// parameters it takes. The table in routes is the one list of the API: the mux, the
// access checks, GET /v1/ and the OpenAPI test all read it.
type route struct {
	method, path string
	name         string // the metrics label
	doc          string // one line, for GET /v1/
	params       []string
	access       access
	// long marks a long-lived response (SSE, a scavenge): no overall deadline, not
	// counted as in-flight work that shutdown waits for; it ends when the server stops.
	long bool
	// lenient takes any query parameter: the fallbacks answer 404 or 405 whatever
	// the query.
	lenient bool
	// local is answered by the node asked, never forwarded to a cluster's leader, with
	// any method and consistency: the fallbacks' 404 or 405 depends on no data, and a
	// node without a leader answers them too.
	local bool
	h     func(http.ResponseWriter, *http.Request) error
}

var (
	// httpMethods are the methods of RFC 9110 and PATCH: another method on a known path
	// is answered as an unknown route.
	httpMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace}
	pageParams = []string{"from", "direction", "limit"}
	read       = access{scope: ScopeRead}
	readStream = access{scope: ScopeRead, target: pathStream}
	write      = access{scope: ScopeWrite, target: pathStream}
)

func (s *Server) routes() {
	s.table = []route{
		{method: "POST", path: "/v1/streams/{stream}", name: "append", doc: "append events to a stream",
			params: []string{"expected_version"}, access: write, h: s.append},
		{method: "POST", path: "/v1/streams/{stream}/links", name: "link", doc: "link stored events into a stream",
			params: []string{"expected_version"}, access: write, h: s.link},
		{method: "GET", path: "/v1/streams/{stream}", name: "read_stream", doc: "read a stream, or $all",
			params: pageParams, access: readStream, h: s.readStream},
		{method: "DELETE", path: "/v1/streams/{stream}", name: "delete_stream", doc: "delete a stream (its events stay in the streams they are linked into; those in none are dead)",
			params: []string{"expected_version"}, access: write, h: s.deleteStream},
		{method: "GET", path: "/v1/streams/{stream}/metadata", name: "get_stream_metadata", doc: "a stream's retention settings",
			access: readStream, h: s.getMetadata},
		{method: "PUT", path: "/v1/streams/{stream}/metadata", name: "set_stream_metadata", doc: "set a stream's retention: max_age, max_count, truncate_before",
			access: write, h: s.putMetadata},
		{method: "POST", path: "/v1/streams/{stream}/erase", name: "erase_stream", doc: "erase the data and metadata of a stream's events",
			access: access{scope: ScopeAdmin, target: pathStream}, h: s.erase},
		{method: "POST", path: "/v1/admin/scavenge", name: "scavenge", doc: "rewrite sealed segments without the bytes of dead and erased events",
			access: access{scope: ScopeAdmin}, long: true, h: s.scavenge},
		{method: "GET", path: "/v1/streams", name: "list_streams", doc: "list stream names in order, with their last version",
			params: []string{"prefix", "after", "limit"}, access: access{scope: ScopeRead, target: queryPrefix}, h: s.listStreams},
		{method: "GET", path: "/v1/all", name: "read_all", doc: "read the global log, optionally of some event types",
			params: []string{"from", "direction", "limit", "types", "type"}, access: read, h: s.readAll},
		{method: "GET", path: "/v1/categories/{category}", name: "read_category", doc: "read the events of a category's streams",
			params: pageParams, access: read, h: s.readCategory},
		{method: "GET", path: "/v1/events/{id}", name: "event", doc: "one event, the streams it is in, its cause and the events it caused",
			access: read, h: s.event},
		{method: "GET", path: "/v1/subscribe", name: "subscribe", doc: "Server-Sent Events of the global log, a category or one stream: catch-up, then live",
			params: []string{"stream", "types", "type", "category", "from"}, access: access{scope: ScopeRead, target: queryStream}, long: true, h: s.subscribe},
		{method: "GET", path: "/v1/processes", name: "processes", doc: "the process managers, with counts of their processes",
			access: read, h: s.processes},
		{method: "GET", path: "/v1/processes/{name}", name: "process_list", doc: "the processes of one process manager, in id order or oldest first, by status, age and idleness",
			params: []string{"after", "limit", "status", "older_than", "idle_for", "sort"}, access: read, h: s.processList},
		{method: "GET", path: "/v1/processes/{name}/parked", name: "parked", doc: "the parked commands of one process manager, oldest first",
			params: []string{"from", "limit"}, access: read, h: s.parked},
		{method: "POST", path: "/v1/processes/{name}/{id}/commands/{command}/retry", name: "retry_command", doc: "queue a parked or failing command for delivery again",
			access: access{scope: ScopeAdmin}, h: s.retryCommand},
		{method: "POST", path: "/v1/processes/{name}/{id}/commands/{command}/skip", name: "skip_command", doc: "give up a parked or failing command",
			access: access{scope: ScopeAdmin}, h: s.skipCommand},
		{method: "GET", path: "/v1/processes/{name}/{id}", name: "process", doc: "one process: state, stream, commands, deliveries, deadlines",
			params: []string{"before", "limit", "commands_from", "commands_limit", "attempts_from", "attempts_limit"}, access: read, h: s.process},
		{method: "GET", path: "/v1/subscriptions", name: "subscriptions", doc: "the subscriptions with a server-side position: filter, position, lag, parked events, last error",
			access: read, h: s.subscriptions},
		{method: "GET", path: "/v1/subscriptions/{name}", name: "subscription", doc: "one subscription, with its parked events",
			access: read, h: s.subscription},
		{method: "POST", path: "/v1/subscriptions/{name}/events/{event}/retry", name: "retry_event", doc: "queue a subscription's parked or failing event for delivery again",
			access: access{scope: ScopeAdmin}, h: s.retryEvent},
		{method: "POST", path: "/v1/subscriptions/{name}/events/{event}/skip", name: "skip_event", doc: "give up a subscription's parked or failing event: the subscription moves past it",
			access: access{scope: ScopeAdmin}, h: s.skipEvent},
		{method: "GET", path: "/v1/", name: "routes", doc: "this list of routes",
			access: access{scope: ScopeRead, noData: true}, h: s.listRoutes},
		{method: "GET", path: "/v1/openapi.json", name: "openapi", doc: "the OpenAPI 3.1 document of the API",
			access: access{scope: ScopeRead, noData: true}, h: serveOpenAPI},
		{method: "GET", path: "/v1/stats", name: "stats", doc: "the store's figures, write rate, process managers, subscriptions, health and cluster, for a dashboard",
			access: read, h: s.stats},
		{method: "GET", path: "/v1/cluster", name: "cluster", doc: "the cluster's nodes, leader and Raft indexes, as this node sees them",
			access: read, h: s.cluster},
		{method: "POST", path: "/v1/cluster/nodes", name: "cluster_join", doc: "add a node to the cluster: {id, raft_addr}",
			access: access{scope: ScopeAdmin}, h: s.joinNode},
		{method: "DELETE", path: "/v1/cluster/nodes/{id}", name: "cluster_remove", doc: "remove a node from the cluster",
			access: access{scope: ScopeAdmin}, h: s.removeNode},
		{method: "GET", path: "/metrics", name: "metrics", doc: "Prometheus metrics",
			access: read, h: s.serveMetrics},
		{method: "GET", path: "/healthz", name: "healthz", doc: "200 when the store is open and serving, 503 when degraded, stopping or closed",
			h: s.healthz},
	}
	allowed := map[string][]string{} // path → its methods
	open := map[string]bool{}        // paths whose routes need no token (/healthz)
	var methods []string
	for _, rt := range s.table {
		if rt.access.scope == 0 {
			open[rt.path] = true
		}
		if !slices.Contains(methods, rt.method) {
			methods = append(methods, rt.method)
		}
		pattern := rt.method + " " + rt.path
		if rt.path == "/v1/" {
			pattern += "{$}"
		}
		s.mux.Handle(pattern, s.wrap(rt))
		allowed[rt.path] = append(allowed[rt.path], rt.method)
	}
	s.corsMethods = strings.Join(methods, ", ")
	// A known path with another method gets the contract's error JSON, not the mux's
	// plain-text 405. The fallbacks name their methods: a pattern for every method of
	// /v1/processes/{name}/parked would conflict with GET /v1/processes/{name}/{id} in
	// the mux (more methods, but a more specific path).
	for path, methods := range allowed {
		allow := strings.Join(methods, ", ")
		pattern := path
		if path == "/v1/" {
			pattern += "{$}"
		}
		// Another method on a path that needs no token needs none either: a 401 would
		// ask for a token that does not help.
		fallback := access{scope: ScopeRead, noData: true}
		if open[path] {
			fallback = access{}
		}
		h := s.wrap(route{name: "method_not_allowed", access: fallback, lenient: true, local: true,
			h: func(w http.ResponseWriter, r *http.Request) error {
				w.Header().Set("Allow", allow)
				return &apiError{http.StatusMethodNotAllowed, codeMethodNotAllowed,
					fmt.Sprintf("%s is not allowed on %s: use %s", r.Method, path, allow)}
			}})
		for _, m := range httpMethods {
			// A GET route answers HEAD as well.
			if !slices.Contains(methods, m) && (m != http.MethodHead || !slices.Contains(methods, http.MethodGet)) {
				s.mux.Handle(m+" "+pattern, h)
			}
		}
	}
	s.mux.Handle("/v1/", s.wrap(route{name: "unknown", access: access{scope: ScopeRead, noData: true}, lenient: true, local: true,
		h: func(http.ResponseWriter, *http.Request) error {
			return errNotFound("no such route: GET /v1/ lists them")
		}}))
	unclean := func(_ http.ResponseWriter, r *http.Request) error {
		p := r.URL.EscapedPath()
		clean := cleanPath(p)
		if clean == "/v1" {
			return errNotFound("no such route: %q lists the routes", "/v1/")
		}
		return errNotFound("no such route: the path %q has an empty or a dot segment; the API takes clean paths "+
			"only, such as %q (a name that is . or .. goes as %%2E or %%2E%%2E)", p, clean)
	}
	s.unclean = s.wrap(route{name: "unknown", access: access{scope: ScopeRead, noData: true}, lenient: true, local: true, h: unclean})
	s.uncleanOpen = s.wrap(route{name: "unknown", lenient: true, local: true, h: unclean})
	s.uncleanOpenPaths = open
	browser := s.opts.Browser
	if browser == nil {
		browser = http.HandlerFunc(s.apiIndex)
	}
	s.mux.Handle("/", browser)
}

// ServeHTTP implements http.Handler. Before any route, it refuses what a web page
// the user visits could send (checkSite) and answers the CORS preflight of origins
// given with Options.AllowOrigins.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := s.checkSite(r); err != nil {
		s.writeError(&statusRecorder{ResponseWriter: w, status: http.StatusOK}, r, err)
		s.metrics.observeRequest("refused", http.StatusForbidden, 0)
		return
	}
	if s.cors(w, r) {
		return
	}
	// The mux would redirect a path with an empty or a dot segment (//v1/streams/x,
	// /v1/x/../streams/y) to its clean form, but it escapes the escaped path once more
	// (Order%247 → Order%25247): a client that follows the 307, keeping the method and
	// body, would write to another stream. The API refuses such a path; the browser's
	// pages keep the redirect, with the path's escapes as they came. /v1 would be
	// redirected to /v1/ with an HTML body: it is refused as well.
	if p := r.URL.EscapedPath(); strings.HasPrefix(p, "/") && r.Method != http.MethodConnect {
		if clean := cleanPath(p); clean != p || clean == "/v1" {
			if s.uncleanOpenPaths[clean] {
				s.uncleanOpen.ServeHTTP(w, r)
				return
			}
			if clean == "/v1" || strings.HasPrefix(clean, "/v1/") || clean == "/metrics" || clean == "/healthz" {
				s.unclean.ServeHTTP(w, r)
				return
			}
			if r.URL.RawQuery != "" {
				clean += "?" + r.URL.RawQuery
			}
			w.Header().Set("Location", clean)
			w.WriteHeader(http.StatusTemporaryRedirect)
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// cleanPath is p, an escaped path starting with /, without its empty and dot segments,
// as net/http's ServeMux cleans it: "." and ".." resolved, a trailing slash kept. Escapes
// stay as they are: %2E%2E is a name, not a dot segment.
func cleanPath(p string) string {
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean
}

// wrap adapts a route's handler: it checks the token and the query parameters, bounds
// the request's time and body, writes an error as the contract's JSON and records
// metrics.
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		if !rt.long {
			s.inFlight.Add(1)
			defer s.inFlight.Add(-1)
			// A write deadline cuts off a client that does not read its response.
			_ = http.NewResponseController(w).SetWriteDeadline(start.Add(s.opts.RequestTimeout + 5*time.Second))
			ctx, cancel := context.WithTimeout(r.Context(), s.opts.RequestTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		var err error
		select {
		case <-s.stopping:
			err = errShutdown("the server is shutting down")
		default:
			if r, err = s.authorize(r, rt.access); err != nil {
				break
			}
			// A subscription must not outlive its token (whileAuthorized). A scavenge,
			// the other long route, is a task an allowed caller started: it finishes.
			if rt.long && rt.method == http.MethodGet && s.opts.Tokens != nil && rt.access.scope != 0 {
				var release context.CancelFunc
				r, release = s.whileAuthorized(r, rt.access)
				defer release()
			}
			var leaderRead bool
			if leaderRead, err = consistency(r); err != nil {
				break
			}
			if !rt.lenient {
				if err = checkQuery(r, rt); err != nil {
					break
				}
			}
			// A request that has run out of time before its turn is not started.
			if err = r.Context().Err(); err == nil {
				r.Body = http.MaxBytesReader(rec, r.Body, s.opts.MaxBody)
				// What the request reserves of the memory budget (its body, its page)
				// is given back here, however it ends.
				res := &reservation{s: s}
				defer res.free()
				r = r.WithContext(context.WithValue(r.Context(), reservationKey{}, res))
				err = s.serveRoute(rt, rec, r, leaderRead)
			}
		}
		if err != nil {
			s.writeError(rec, r, err)
		}
		s.metrics.observeRequest(rt.name, rec.status, time.Since(start))
	})
}

// repeatable are the query parameters that may be given more than once: type, once
// per event type.
var repeatable = []string{"type"}

// checkQuery refuses a query parameter the route does not take, one given twice (but
// those repeatable), one with no value and one that is not valid UTF-8: each would
// otherwise be ignored or altered without a word (?backward=true reading forward,
// ?stream= following the global log).
func checkQuery(r *http.Request, rt route) error {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return errBadRequest("malformed query string: %v", err)
	}
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if !slices.Contains(rt.params, k) {
			takes := "takes no query parameters"
			if len(rt.params) > 0 {
				takes = "takes " + list(rt.params)
			}
			return errBadRequest("unknown query parameter %q: %s %s %s", k, rt.method, rt.path, takes)
		}
		if n := len(q[k]); n > 1 && !slices.Contains(repeatable, k) {
			return errBadRequest("query parameter %s is given %d times: give it once", k, n)
		}
		for _, v := range q[k] {
			if v == "" {
				return errBadRequest("query parameter %s is empty: give it a value or leave it out", k)
			}
			if !utf8.ValidString(v) {
				return errBadRequest("query parameter %s is not valid UTF-8", k)
			}
		}
	}
	return nil
}

// statusRecorder remembers the status written, for metrics and to know whether an error
// can still be sent as JSON.
type statusRecorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	written     int64
}

func (w *statusRecorder) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	w.wroteHeader = true
	n, err := w.ResponseWriter.Write(b)
	w.written += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (flush, deadlines).
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Serve serves on ln until ctx is done, then shuts down gracefully: it stops accepting
// connections, ends subscriptions, and waits up to grace for requests in flight (an
// append waiting for its fsync finishes and is answered). It does not close the store.
// It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       s.opts.RequestTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          log.New(&httpErrorLog{log: s.log}, "", 0),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(jsonErrorListener{ln}) }()
	sampling, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	go s.sampleLoop(sampling)
	select {
	case err := <-errc:
		s.stop()
		return fmt.Errorf("server: serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	s.stop()
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-errc // http.ErrServerClosed
	if err != nil {
		return fmt.Errorf("server: shutdown: %d requests still in flight after %s: %w", s.inFlight.Load(), grace, err)
	}
	return nil
}

// stop marks the server as shutting down: subscriptions end and new requests are refused.
func (s *Server) stop() { s.stopOnce.Do(func() { close(s.stopping) }) }

// isStopping tells whether stop was called.
func (s *Server) isStopping() bool {
	select {
	case <-s.stopping:
		return true
	default:
		return false
	}
}

// healthz answers 200 while the store is open and serving. A server that is shutting
// down does not get here: wrap answers for every route.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	h, err := s.health()
	if err != nil {
		return err
	}
	if h.Status != healthOK {
		return writeJSON(w, http.StatusServiceUnavailable, map[string]any{
			"status":        h.Status,
			"problems":      h.Problems,
			"last_position": s.store.LastPosition(),
		})
	}
	return writeJSON(w, http.StatusOK, map[string]any{
		"status":        h.Status,
		"last_position": s.store.LastPosition(),
	})
}

const (
	healthOK       = "ok"
	healthDegraded = "degraded"
)

// health is how the store stands, as /healthz and /v1/stats say it: ok, degraded with
// its problems, or an error when it cannot be read at all (closed).
func (s *Server) health() (healthJSON, error) {
	// Problems first: a store whose writes stopped also fails reads that wait for the
	// index, and is degraded, with its problems, rather than merely unreadable.
	problems := s.problems()
	if len(problems) == 0 && s.opts.Node != nil {
		// A cluster node without a leader refuses every write (after waiting up to
		// leaderWait for one), as a single node whose log cannot write does. It says so
		// at once, from what Raft knows now: a probe's timeout (1 s in Kubernetes) is
		// shorter than a write's wait, and a follower knows its leader without asking it.
		if err := s.opts.Node.LeaderKnown(); err != nil {
			problems = append(problems, fmt.Sprintf("no leader known: writes wait up to %s for one, then fail: %v", leaderWait, err))
		}
	}
	if len(problems) > 0 {
		return healthJSON{Status: healthDegraded, Problems: problems}, nil
	}
	// The store's owner may close it under the server (Serve never does). Neither
	// LastPosition nor Problems notices; one index lookup does, with pmd.ErrClosed.
	if _, err := s.store.StreamInfo(pmd.All); err != nil {
		return healthJSON{}, fmt.Errorf("the store cannot be read: %w", err)
	}
	return healthJSON{Status: healthOK, Problems: []string{}}, nil
}

// problems are the store's and, in a cluster, the node's.
func (s *Server) problems() []string {
	if s.opts.Node == nil {
		return s.store.Problems()
	}
	return slices.Concat(s.store.Problems(), s.opts.Node.Problems())
}

// routeJSON is a route as GET /v1/ lists it.
type routeJSON struct {
	Method      string   `json:"method"`
	Path        string   `json:"path"`
	Description string   `json:"description"`
	Query       []string `json:"query"`
	// Scope is the scope of token the route needs when the daemon runs with --auth;
	// empty for none.
	Scope string `json:"scope,omitempty"`
}

func (s *Server) routeList() []routeJSON {
	out := make([]routeJSON, len(s.table))
	for i, rt := range s.table {
		// Every route takes consistency too (cluster.go).
		out[i] = routeJSON{Method: rt.method, Path: rt.path, Description: rt.doc, Query: append(slices.Clone(rt.params), "consistency")}
		if rt.access.scope != 0 {
			out[i].Scope = rt.access.scope.String()
		}
	}
	return out
}

func (s *Server) listRoutes(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]any{"routes": s.routeList(), "openapi": "/v1/openapi.json"})
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	s.metrics.handler().ServeHTTP(w, r)
	return nil
}

// apiIndex is GET / when the daemon serves no browser: the routes, as text.
func (s *Server) apiIndex(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		writeJSON(w, http.StatusNotFound, errorBody{Error: codeNotFound, Message: fmt.Sprintf("no such page %q", r.URL.Path)})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, "pmd is running. HTTP API (JSON); the OpenAPI document is at /v1/openapi.json.\n\n")
	for _, rt := range s.table {
		line := fmt.Sprintf("  %-6s %-28s %s", rt.method, rt.path, rt.doc)
		if len(rt.params) > 0 {
			line += " ?" + strings.Join(rt.params, "=&") + "="
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprint(w, "\nEvery route also takes ?consistency=leader|local.\n")
}

// errors returned by handlers, mapped to the contract's codes by writeError.
const (
	codeBadRequest       = "bad_request"
	codeNotFound         = "not_found"
	codeStreamNotFound   = "stream_not_found"
	codeEventNotFound    = "event_not_found"
	codeWrongExpected    = "wrong_expected_version"
	codeDuplicateEvent   = "duplicate_event"
	codeConflict         = "conflict"
	codePayloadTooLarge  = "payload_too_large"
	codeMethodNotAllowed = "method_not_allowed"
	codeUnavailable      = "unavailable"
	codeCorrupt          = "corrupt"
	codeUnauthorized     = "unauthorized"
	codeForbidden        = "forbidden"
	codeInternal         = "internal"
)

// apiError is an error with its HTTP status and contract code.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errBadRequest(format string, a ...any) error {
	return &apiError{http.StatusBadRequest, codeBadRequest, fmt.Sprintf(format, a...)}
}

func errNotFound(format string, a ...any) error {
	return &apiError{http.StatusNotFound, codeNotFound, fmt.Sprintf(format, a...)}
}

func errUnauthorized(msg string) error {
	return &apiError{http.StatusUnauthorized, codeUnauthorized, msg}
}

func errForbidden(format string, a ...any) error {
	return &apiError{http.StatusForbidden, codeForbidden, fmt.Sprintf(format, a...)}
}

func errUnavailable(msg string) error {
	return &apiError{http.StatusServiceUnavailable, codeUnavailable, msg}
}

// badArgument is a bad request the server refused by the store's own rules (a stream
// name, an event type or a category in the path or the query): its body names the
// argument and the reason, as that of a bad request the store refused (errorFields).
type badArgument struct {
	apiError
	invalid *pmd.InvalidArgumentError
}

func (e *badArgument) Unwrap() []error { return []error{&e.apiError, e.invalid} }

// errBadArgument is the bad request of arg refused for reason (the text of a
// pmd.CheckName error): its message is arg and reason, "stream must not be empty".
func errBadArgument(arg, reason string) error {
	return &badArgument{apiError{http.StatusBadRequest, codeBadRequest, arg + " " + reason},
		&pmd.InvalidArgumentError{Arg: arg, Reason: reason}}
}

// shutdownError is a 503 the shutdown itself causes (a request refused once the server
// is stopping, a scavenge it stopped): expected, and logged as such.
type shutdownError struct{ apiError }

func (e *shutdownError) Unwrap() error { return &e.apiError }

func errShutdown(msg string) error {
	return &shutdownError{apiError{http.StatusServiceUnavailable, codeUnavailable, msg}}
}

type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	// Position is the damaged record's position in a corrupt error, and Version its
	// version, and Stream that stream, when the read followed one stream: a read goes
	// on from the record next to it, and a program should not have to parse the
	// message to find which.
	Position *uint64 `json:"position,omitempty"`
	Version  *uint64 `json:"version,omitempty"`
	// NeedsRestart marks an unavailable error that will not go away by itself
	// (pmd.ErrNeedsRestart): a client that waits out a full disk gives up on it.
	NeedsRestart bool `json:"needs_restart,omitempty"`
	// The fields of the store's typed error behind the code (errorFields), so that a
	// program (the Go client's errors.As) need not parse the message: stream with
	// wrong_expected_version, duplicate_event and stream_not_found; expected_version
	// (as a write gives it) and actual_version (-1 for none) with wrong_expected_version;
	// id with duplicate_event and event_not_found; stream with corrupt, as above;
	// argument and reason with a bad_request the store refused (*pmd.InvalidArgumentError) or the server refused by the store's
	// rules (badArgument). Each is absent when the error is not the store's typed one (a
	// bad request of the server's own parsing: a malformed body, query or expected version).
	Stream          *string              `json:"stream,omitempty"`
	ExpectedVersion *pmd.ExpectedVersion `json:"expected_version,omitempty"`
	ActualVersion   *int64               `json:"actual_version,omitempty"`
	ID              string               `json:"id,omitempty"`
	Argument        *string              `json:"argument,omitempty"`
	Reason          *string              `json:"reason,omitempty"`
}

// newErrorBody is the body of an error answer with code and msg, naming the damaged
// record when err is a *pmd.CorruptError that names one, and carrying the fields of
// the store's typed error of code (errorFields).
func newErrorBody(code, msg string, err error) errorBody {
	b := errorBody{Error: code, Message: msg, NeedsRestart: errors.Is(err, pmd.ErrNeedsRestart)}
	var ce *pmd.CorruptError
	if errors.As(err, &ce) && ce.Position > 0 {
		b.Position = &ce.Position
		if ce.Stream != "" {
			b.Version, b.Stream = &ce.Version, &ce.Stream
		}
	}
	b.errorFields(code, err)
	return b
}

// errorFields sets the fields of b from err's typed error of code, if it has one: only
// that of code, so that an error wrapping the typed errors of two codes shows the
// fields of the one its code names.
func (b *errorBody) errorFields(code string, err error) {
	switch code {
	case codeWrongExpected:
		var e *pmd.WrongExpectedVersionError
		if errors.As(err, &e) {
			b.Stream, b.ExpectedVersion, b.ActualVersion = &e.Stream, &e.Expected, &e.Actual
		}
	case codeDuplicateEvent:
		var e *pmd.DuplicateEventError
		if errors.As(err, &e) {
			b.ID, b.Stream = e.ID.String(), &e.Stream
		}
	case codeEventNotFound:
		var e *pmd.EventNotFoundError
		if errors.As(err, &e) {
			b.ID = e.ID.String()
		}
	case codeStreamNotFound:
		var e *pmd.StreamNotFoundError
		if errors.As(err, &e) {
			b.Stream = &e.Stream
		}
	case codeBadRequest:
		var e *pmd.InvalidArgumentError
		if errors.As(err, &e) {
			b.Argument, b.Reason = &e.Arg, &e.Reason
		}
	}
}

// classify maps an error to its status and contract code.
func classify(err error) (int, string) {
	var api *apiError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &api):
		return api.status, api.code
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, codePayloadTooLarge
	case errors.Is(err, pmd.ErrInvalidArgument):
		return http.StatusBadRequest, codeBadRequest
	case errors.Is(err, pmd.ErrWrongExpectedVersion):
		return http.StatusConflict, codeWrongExpected
	case errors.Is(err, pmd.ErrDuplicateEvent):
		return http.StatusConflict, codeDuplicateEvent
	case errors.Is(err, pmd.ErrStreamNotFound):
		return http.StatusNotFound, codeStreamNotFound
	case errors.Is(err, pmd.ErrEventNotFound):
		return http.StatusNotFound, codeEventNotFound
	case errors.Is(err, pmd.ErrClosed), errors.Is(err, pmd.ErrUnavailable):
		return http.StatusServiceUnavailable, codeUnavailable
	case errors.Is(err, pmd.ErrCorrupt):
		return http.StatusInternalServerError, codeCorrupt
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, codeUnavailable
	default:
		return http.StatusInternalServerError, codeInternal
	}
}

// corruptCause is the damaged record a read failed at, as the key of its log line's
// throttle: its position, whichever stream the read followed; without one, the error's
// message without numbers.
func corruptCause(err error) string {
	var ce *pmd.CorruptError
	if errors.As(err, &ce) && ce.Position > 0 {
		return "position " + strconv.FormatUint(ce.Position, 10)
	}
	return logevery.Key(err.Error())
}

// unavailableCause is the cause of err, a request failing as unavailable, as the key
// of its log line's throttle: a request out of time, or canceled, or a closed store,
// whatever the message; any other (a full disk, an I/O error, writes stopped, no leader)
// its message without positions and other numbers.
func unavailableCause(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, pmd.ErrClosed) && !errors.Is(err, pmd.ErrUnavailable):
		return "closed"
	}
	return "unavailable: " + logevery.Key(err.Error())
}

// statusClientGone is the status pmd_http_requests_total counts a request under whose
// client went away before it was answered: no answer was sent (nginx's 499).
const statusClientGone = 499

func (s *Server) writeError(w *statusRecorder, r *http.Request, err error) {
	status, code := classify(err)
	msg := err.Error()
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		msg = fmt.Sprintf("request body is larger than %d bytes", tooLarge.Limit)
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away: nobody to answer. Unanswered, it is counted under the
		// code proxies log for it, not as the 200 of a request served.
		if !w.wroteHeader {
			w.status = statusClientGone
		}
		return
	}
	if errors.Is(err, context.DeadlineExceeded) {
		msg = fmt.Sprintf("the request did not finish within %s", s.opts.RequestTimeout)
	}
	if w.wroteHeader {
		// The response had started: what failed is sending it, because the client
		// went away or stopped reading. That is the client's doing, not a server
		// error.
		s.log.Debug("response not sent in full", "method", r.Method, "path", r.URL.Path, "err", err)
		return
	}
	beyond := errors.As(err, new(*budgetError))
	switch {
	case beyond:
		// An event larger than the whole budget, read only when no other request holds
		// bytes of it (beyondBudget): not a passing refusal, and retrying soon is no cure.
		s.log.Warn("request refused: an event is larger than the whole memory budget", "method", r.Method, "path", r.URL.Path,
			"held_bytes", s.memory.Held(), "budget_bytes", s.memory.limit, "err", err)
	case errors.Is(err, s.memory.full):
		// Load shedding, as MemoryBudget means: the request changed nothing, and its
		// client is told to retry.
		s.log.Warn("request refused at the memory budget", "method", r.Method, "path", r.URL.Path,
			"held_bytes", s.memory.Held(), "budget_bytes", s.memory.limit)
	case s.isStopping() && (errors.As(err, new(*shutdownError)) || errors.Is(err, pmd.ErrClosed)):
		// Refused because the server is shutting down (or the store closed under a
		// request still running when the grace ran out): expected, and the client is
		// told to come back, as at the memory budget. Another 503 while stopping (no
		// leader, a request out of time) is still a failed request.
		s.log.Warn("request refused: the server is shutting down", "method", r.Method, "path", r.URL.Path, "err", err)
	case status >= 500 && code == "unavailable":
		s.unavailableMu.Lock()
		suppressed, ok := s.unavailable.Log(unavailableCause(err), time.Now())
		s.unavailableMu.Unlock()
		if ok {
			s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "code", code, "err", err,
				"suppressed", suppressed, "note", "more requests failing as unavailable for this cause are counted, not logged, for a minute")
		}
	case code == codeCorrupt:
		s.unavailableMu.Lock()
		suppressed, ok := s.corrupt.Log(corruptCause(err), time.Now())
		s.unavailableMu.Unlock()
		if ok {
			s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "code", code, "err", err,
				"suppressed", suppressed, "note", "more requests failing at this damaged record are counted, not logged, for a minute")
		}
	case status >= 500:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", challenge(err))
	}
	if errors.Is(err, s.memory.full) && !beyond {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, newErrorBody(code, msg, err))
}
