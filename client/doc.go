// Package client is a Go client of the pmd daemon's HTTP API (`pmd serve`): appends,
// links, deletes, reads of streams, of $all and of categories, the stream listing,
// single events, live subscriptions, health, the process managers' queries, and the
// API's own description (its routes, its OpenAPI document) and metrics.
//
// A Client is made by New from an address, "127.0.0.1:7070" or a URL with http or
// https, and is safe for concurrent use:
//
//	c, err := client.New("127.0.0.1:7070", client.WithToken(os.Getenv("PMD_TOKEN")))
//	res, err := c.Append(ctx, "Order$42", pmd.NoStream, pmd.EventData{Type: "OrderPlaced"})
//
// It speaks in the root package's types where they mean the same thing over HTTP as
// in the embedded store: pmd.EventData to append, pmd.ExpectedVersion, pmd.ReadOptions
// and pmd.WriteResult. Events read come back as Event, whose Version is nil where the
// API has none (reads of $all, of a category or by type).
//
// # Errors
//
// An error the daemon answers is an *Error with the HTTP status, the API's error code
// and its message. errors.Is matches it against the root package's sentinel errors,
// as an error of the embedded store would be:
//
//	code                     errors.Is(err, ...)
//	wrong_expected_version   pmd.ErrWrongExpectedVersion
//	duplicate_event          pmd.ErrDuplicateEvent
//	stream_not_found         pmd.ErrStreamNotFound
//	event_not_found          pmd.ErrEventNotFound
//	bad_request              pmd.ErrInvalidArgument
//	unavailable              pmd.ErrUnavailable
//	corrupt                  pmd.ErrCorrupt
//	not_found                ErrNotFound (no such process manager, process, command or route)
//	conflict                 ErrConflict (a retry or skip of a command neither parked nor failing; a join of a too old pmd)
//	payload_too_large        ErrPayloadTooLarge
//	unauthorized             ErrUnauthorized (no token, or one the daemon does not know)
//	forbidden                ErrForbidden (the token may not do this; or a foreign Origin)
//	too_slow                 ErrTooSlow (a subscriber cut for falling behind; given to Dropped)
//
// errors.As finds in it, as in an error of the embedded store, the store's typed error
// with the fields the daemon's answer names beside its message (every route names them,
// and a cluster's follower relays the leader's answer as it is):
//
//	code                     errors.As(err, &target) with target a
//	wrong_expected_version   *pmd.WrongExpectedVersionError (Stream, Expected, Actual)
//	duplicate_event          *pmd.DuplicateEventError (ID, Stream)
//	event_not_found          *pmd.EventNotFoundError (ID)
//	stream_not_found         *pmd.StreamNotFoundError (Stream)
//	bad_request              *pmd.InvalidArgumentError (Arg, Reason), of a value against the store's rules
//	corrupt                  *pmd.CorruptError (Position; Stream and Version for a read of one stream)
//
// There is none for a bad request the daemon's parsing refused (malformed JSON, an
// unknown query parameter: its message names what), nor from a daemon older than those
// fields: errors.Is still matches the sentinel, and the message says the same.
//
// Input the embedded store would refuse before writing or reading anything — a stream
// name that is empty, too long or holds a control character (or, for a write, starts
// with $), a category holding a $, an append without events or with an id given twice,
// an event without a type, data or metadata holding NaN or an infinity, a link without
// ids or with the nil id or one given twice, a negative limit or max age — the client
// refuses before sending anything, with the store's own *pmd.InvalidArgumentError
// (errors.Is(err, pmd.ErrInvalidArgument), its Arg naming the argument as the store
// does). So are the options of the process routes the daemon would refuse (a negative
// limit, older_than, idle_for or before), Arg naming the query parameter, and text in
// an event's data or metadata (a string, a key, the text of a MarshalText) that is not
// valid UTF-8, Arg naming where (events[0].data.note): the embedded store keeps it, but
// JSON cannot carry it (encoding/json would send each bad byte as U+FFFD, and the
// daemon would store other text), and the API refuses it sent as it is.
//
// The codes internal (a server error) and method_not_allowed (a daemon of another
// version) have no sentinel: errors.As finds the *Error and its Code. A request that
// got no answer at all (the daemon is not running, the connection broke) fails with a
// *ConnectionError instead.
//
// # Numbers
//
// Numbers in event data and metadata come back as the embedded store gives them:
// integers as int64 (uint64 above its range), exactly, however large; other numbers
// as float64, those with no fraction included (the daemon writes float64(2) as 2.0).
// Append sends a float64 or float32 with no fraction as one too, so that the daemon
// stores a float, where the embedded store would, when it is in the data or metadata
// map or in the maps and slices ([]any) inside it; one in a value of another type (a
// []float64, a struct) goes as encoding/json writes it, 2, and is stored as an integer.
// The same holds for the data of commands and the states of processes. Event, Process,
// ProcessEvent, Command and ParkedCommand are written to JSON (json.Marshal) as the API
// writes them, 2.0 included, so that what is printed or stored that way reads back, or
// is appended again, with its floats; and read (json.Unmarshal) as the client reads the
// API, integers as int64, so that their JSON form round-trips. A struct that embeds one
// of them takes over its MarshalJSON and UnmarshalJSON (and loses its own fields in
// JSON): give it methods of its own, as ProcessEvent has.
//
// # Subscriptions
//
// Subscribe returns an iterator over the events of $all, of a category (those written
// to its streams, SubscribeOptions.Category) or of one stream, first the stored ones
// from a position, then live ones as they are written. When the connection
// drops or goes silent (nothing, not even the daemon's heartbeat, for a minute:
// WithIdleTimeout), or the daemon cuts a subscriber that fell behind, the iterator
// reconnects by itself and resumes after the last event it yielded (SSE Last-Event-ID): no event is
// skipped and none comes twice. It ends when its context is done, or with an error
// that a retry would not change: one the daemon answered (a bad request, a missing
// token), an answer that is not an event stream (another server at the address), a
// connection TLS refuses (an https address that answers plain HTTP, a certificate the
// client does not trust; an expired one is waited for, until the daemon has a renewed
// one), or an event over WithMaxEventSize (default 128 MiB of JSON, which holds any event of a
// daemon with the default --max-body).
//
// At a damaged record it yields, as the embedded store's Subscribe does, a
// *pmd.CorruptError (errors.Is(err, pmd.ErrCorrupt)) naming the record, around the
// daemon's *Error; a caller that goes on with its loop gets the events after the
// record, and one that stops at the error ends the subscription.
//
// # Clusters
//
// Any node of a cluster takes any request: writes go to the leader and the client gets
// its answer. Reads come from the node's own copy, which holds every write acknowledged
// through that node; a Client made WithLeaderReads reads through the leader, seeing
// every write acknowledged through any node (Health, Metrics, Stats and Cluster still
// describe the node asked). Cluster, JoinNode and RemoveNode see and change the
// membership. A Client talks to one node: when that node is down, its calls fail with a
// *ConnectionError and its subscriptions wait for it, whatever the other nodes do.
//
// # Retries
//
// The client retries nothing but a subscription's connection, which only reads. An
// append that got no answer (a *ConnectionError, or its context's error) may or may
// not be stored, and so may one answered with unavailable (pmd.ErrUnavailable) for
// running past the daemon's 30 s request timeout ("the request did not finish within
// 30s": that ends the request, not the write, which may be stored after the answer),
// or by a cluster node while the leader changed (its forward to the old leader can
// fail after the write was committed). Retry it with the same event ids (set
// pmd.EventData.ID before the first try) and the daemon answers an exact retry of a
// stored append with its original result, writing nothing again, even with an expected
// version that no longer holds; without ids, a retry can store the events twice. A
// link has no such retry: one sent again after it was stored fails with
// pmd.ErrDuplicateEvent, naming an id the stream already holds.
//
// A call has no time limit of its own: it lasts until the daemon answers or its
// context ends. The daemon answers most calls within its 30 s request timeout (unless
// it hangs), but not Scavenge, which takes as long as the log (about 8 s a GiB), nor a
// subscription, which lasts as long as its context. Give ctx a deadline. Only
// reaching the daemon has limits of its own in the default transport: 30 s to connect
// and 10 s for the TLS handshake of an https address.
//
// # Connections
//
// A Client made without WithHTTPClient takes its transport from http.DefaultTransport
// as New finds it:
//
//   - While it is the transport it was when this package was initialised (the standard
//     library's own, unless a package initialised earlier replaced it), every such
//     Client shares one copy of it, made at the first of them, which keeps an idle
//     connection to each daemon for each of up to 256 concurrent callers
//     (http.DefaultTransport keeps two, and the callers beyond them would dial again
//     at every call), with no cap over all daemons, and closes one idle for 90 s. So a
//     program may make a Client per call as well as share one, and leaves no connection
//     behind either way beyond those 90 s; CloseIdleConnections closes them at once.
//   - If the program set it to another *http.Transport (in its main or an init, which
//     runs after this package's), the Clients made while it is that transport share
//     one copy of it, made at the first of them, with the program's settings as they
//     were then but for the same 256 idle connections per daemon and no cap over all
//     daemons; the program's transport is left as it is. So such a program too may make
//     a Client per call as well as share one. The copy's idle connections are closed
//     after the transport's IdleConnTimeout (never if it is unset) or by
//     CloseIdleConnections.
//   - If it is any other RoundTripper (a mock, a tracing wrapper), the Client's requests
//     are sent through that RoundTripper as it is.
//
// A change to http.DefaultTransport after New does not change the Clients made before.
package client
