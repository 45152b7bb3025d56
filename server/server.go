package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pmd-dev/pmd"
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
	// Browser serves GET / and everything not under /v1/, /metrics or /healthz;
	// nil means a small page listing the API.
	Browser http.Handler
	// Registry receives the server's metrics and is served at /metrics; nil means a new
	// registry with the Go and process collectors.
	Registry *prometheus.Registry
	// Logger receives request errors and lifecycle messages; nil means slog.Default().
	Logger *slog.Logger
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
}

// Server serves the HTTP API of one store. It is an http.Handler; Serve runs it on a
// listener with the timeouts and the graceful shutdown the daemon needs.
type Server struct {
	store   *pmd.Store
	opts    Options
	log     *slog.Logger
	mux     *http.ServeMux
	metrics *metrics

	// stopping is closed when Serve begins to shut down: subscriptions end, /healthz
	// turns 503, new requests are refused.
	stopping chan struct{}
	stopOnce sync.Once
	inFlight atomic.Int64
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
	}
	s.metrics = newMetrics(opts.Registry, store, opts.Processes)
	s.routes()
	return s
}

func (s *Server) routes() {
	allowed := map[string][]string{} // path pattern → its methods
	handle := func(method, path, route string, h func(http.ResponseWriter, *http.Request) error) {
		s.mux.Handle(method+" "+path, s.wrap(route, h))
		allowed[path] = append(allowed[path], method)
	}
	handle("POST", "/v1/streams/{stream}", "append", s.append)
	handle("POST", "/v1/streams/{stream}/links", "link", s.link)
	handle("GET", "/v1/streams/{stream}", "read_stream", s.readStream)
	handle("DELETE", "/v1/streams/{stream}", "delete_stream", s.deleteStream)
	handle("GET", "/v1/streams", "list_streams", s.listStreams)
	handle("GET", "/v1/all", "read_all", s.readAll)
	handle("GET", "/v1/categories/{category}", "read_category", s.readCategory)
	handle("GET", "/v1/events/{id}", "event", s.event)
	handle("GET", "/v1/processes", "processes", s.processes)
	handle("GET", "/v1/processes/{name}", "process_list", s.processList)
	handle("GET", "/v1/processes/{name}/{id}", "process", s.process)
	handle("GET", "/healthz", "healthz", s.healthz)
	// Subscriptions manage their own deadlines and are not counted as in-flight work
	// that shutdown must wait for: they end when shutdown begins.
	s.mux.Handle("GET /v1/subscribe", s.wrapStream("subscribe", s.subscribe))
	allowed["/v1/subscribe"] = []string{"GET"}
	s.mux.Handle("GET /metrics", s.metrics.handler())
	allowed["/metrics"] = []string{"GET"}
	// A known path with another method gets the contract's error JSON, not the mux's
	// plain-text 405.
	for path, methods := range allowed {
		allow := strings.Join(methods, ", ")
		s.mux.Handle(path, s.wrap("method_not_allowed", func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Allow", allow)
			return &apiError{http.StatusMethodNotAllowed, codeMethodNotAllowed,
				fmt.Sprintf("%s is not allowed on %s: use %s", r.Method, path, allow)}
		}))
	}
	s.mux.Handle("/v1/", s.wrap("unknown", func(http.ResponseWriter, *http.Request) error {
		return errNotFound("no such route")
	}))
	browser := s.opts.Browser
	if browser == nil {
		browser = http.HandlerFunc(apiIndex)
	}
	s.mux.Handle("/", browser)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// wrap adapts a handler that returns an error: it bounds the request's time, writes the
// error as the contract's JSON and records metrics.
func (s *Server) wrap(route string, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		// A write deadline cuts off a client that does not read its response.
		_ = http.NewResponseController(w).SetWriteDeadline(start.Add(s.opts.RequestTimeout + 5*time.Second))
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.RequestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		var err error
		select {
		case <-s.stopping:
			err = errUnavailable("the server is shutting down")
		default:
			// A request that has run out of time before its turn is not started.
			if err = ctx.Err(); err == nil {
				r.Body = http.MaxBytesReader(rec, r.Body, s.opts.MaxBody)
				err = h(rec, r)
			}
		}
		if err != nil {
			s.writeError(rec, r, err)
		}
		s.metrics.observeRequest(route, rec.status, time.Since(start))
	})
}

// wrapStream is wrap for long-lived responses: no overall deadline.
func (s *Server) wrapStream(route string, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		var err error
		select {
		case <-s.stopping:
			err = errUnavailable("the server is shutting down")
		default:
			err = h(rec, r)
		}
		if err != nil {
			s.writeError(rec, r, err)
		}
		s.metrics.observeRequest(route, rec.status, time.Since(start))
	})
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
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
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

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	select {
	case <-s.stopping:
		return errUnavailable("the server is shutting down")
	default:
	}
	if problems := s.store.Problems(); len(problems) > 0 {
		return writeJSON(w, http.StatusServiceUnavailable, map[string]any{
			"status":        "degraded",
			"problems":      problems,
			"last_position": s.store.LastPosition(),
		})
	}
	return writeJSON(w, http.StatusOK, map[string]any{
		"status":        "ok",
		"last_position": s.store.LastPosition(),
	})
}

func apiIndex(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		writeJSON(w, http.StatusNotFound, errorBody{Error: codeNotFound, Message: fmt.Sprintf("no such page %q", r.URL.Path)})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, apiText)
}

const apiText = `pmd is running. HTTP API (JSON):

  POST   /v1/streams/{stream}          append  {"expected_version": ..., "events": [{"type", "data", "metadata"?, "id"?}]}
  POST   /v1/streams/{stream}/links    link    {"expected_version": ..., "event_ids": [...]}
  GET    /v1/streams/{stream}          read a stream   ?from=&direction=forward|backward&limit=
  DELETE /v1/streams/{stream}          delete a stream
  GET    /v1/streams                   list streams    ?prefix=&after=&limit=
  GET    /v1/all                       read $all       ?from=&direction=&limit=&types=A,B
  GET    /v1/categories/{category}     read a category ?from=&direction=&limit=
  GET    /v1/events/{id}               one event, its streams, its cause and what it caused
  GET    /v1/subscribe                 Server-Sent Events ?stream= or ?types=, &from=
  GET    /v1/processes                 process managers
  GET    /v1/processes/{name}          its processes   ?after=&limit=
  GET    /v1/processes/{name}/{id}     one process
  GET    /metrics                      Prometheus metrics
  GET    /healthz                      health
`

// errors returned by handlers, mapped to the contract's codes by writeError.
const (
	codeBadRequest       = "bad_request"
	codeNotFound         = "not_found"
	codeStreamNotFound   = "stream_not_found"
	codeEventNotFound    = "event_not_found"
	codeWrongExpected    = "wrong_expected_version"
	codeDuplicateEvent   = "duplicate_event"
	codePayloadTooLarge  = "payload_too_large"
	codeMethodNotAllowed = "method_not_allowed"
	codeUnavailable      = "unavailable"
	codeCorrupt          = "corrupt"
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

func errUnavailable(msg string) error {
	return &apiError{http.StatusServiceUnavailable, codeUnavailable, msg}
}

type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
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

func (s *Server) writeError(w *statusRecorder, r *http.Request, err error) {
	status, code := classify(err)
	msg := err.Error()
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		msg = fmt.Sprintf("request body is larger than %d bytes", tooLarge.Limit)
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away: nobody to answer
	}
	if errors.Is(err, context.DeadlineExceeded) {
		msg = fmt.Sprintf("the request did not finish within %s", s.opts.RequestTimeout)
	}
	if status >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
	}
	if w.wroteHeader {
		return // a streamed response already started; the client sees it end
	}
	writeJSON(w, status, errorBody{Error: code, Message: msg})
}
