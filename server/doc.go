// Package server is pmd's HTTP API over a *pmd.Store: the routes of docs/api.md, with
// live subscriptions as Server-Sent Events, Prometheus metrics, the process-manager
// queries of the daemon, access control, and the OpenAPI 3.1 document of it all
// (GET /v1/openapi.json; GET /v1/ lists the routes).
//
// What it promises to a client:
//
//   - JSON in and out. Every error is {"error": code, "message": text}: bad_request (400),
//     unauthorized (401), forbidden (403), not_found, stream_not_found, event_not_found
//     (404), method_not_allowed (405, with an Allow header), wrong_expected_version,
//     duplicate_event (409), payload_too_large (413), corrupt and internal (500),
//     unavailable (503: the store cannot write or is closing, or the request ran out of
//     time). Beside them, the fields of the store's typed error of the code, if it is
//     one: stream, expected_version and actual_version (wrong_expected_version), id and
//     stream (duplicate_event), id (event_not_found), stream (stream_not_found), argument
//     and reason (a bad_request of a value against the store's rules); position and
//     version (corrupt); needs_restart (unavailable). A request Go's HTTP server cannot
//     parse, before any route (a path with a malformed escape, /v1/streams/a%zz), is a
//     bad_request naming the escape too, from Serve, but over TLS: net/http needs the
//     *tls.Conn unwrapped, and its plain-text 400 stays.
//   - Strict input, refused before the store is asked and writing nothing: unknown JSON
//     fields and query parameters, a query parameter or JSON key given twice, invalid
//     UTF-8, integers outside int64/uint64 and numbers beyond float64. Messages name the
//     value by its path (events[2].data.n), never a Go type. Integers inside those ranges
//     round-trip exactly; other numbers come back as floating point.
//   - Every list that can be long is paged: a page holds at most limit entries
//     (Options.MaxLimit at most) and at most Options.PageBytes of JSON, always one
//     event; "next" is the value to pass as from (or after) for the following page,
//     null on the last.
//   - GET /v1/subscribe sends each event as one "data:" line of JSON with the SSE "id:"
//     set to its position (global log) or version (one stream). A client that reconnects
//     with Last-Event-ID gets the event after that id next: no gap, no duplicate. Stored
//     events are sent at the client's pace; a client that lets more than
//     Options.SubscriberBuffer bytes of live events pile up, or whose backlog would take
//     all subscribers past Options.SubscribersBuffer, is cut with an "error" event and
//     resumes with Last-Event-ID. When the server stops, every subscription (a relayed
//     one included) ends with an "unavailable" error event, which its client has a
//     second to take; so does a relayed one whose leader's stream ends without an
//     error event of its own (the leader stopped, was killed or cut off), a message of
//     the leader's cut short ended first as one of type "incomplete", with the id of
//     the last event sent whole, which no client takes as an event. Comment lines are
//     heartbeats.
//   - Request bodies being read and pages of events being sent (and the other answers
//     that carry events' or commands' data: an event by id, a process, parked commands)
//     together hold at most
//     Options.MemoryBudget bytes (at least MaxBody + PageBytes, so that the largest body
//     fits), plus what one request holds: a body reserves its
//     bytes as they arrive, and the oldest request holding bytes may always take more,
//     beyond the budget, so that requests never wait on each other for ever. An answer's
//     JSON is counted before it is written, and written into the bytes reserved for it
//     (not encoding/json's buffers, which would hold it, up to three times over, before
//     it could be counted): six times the data's size for strings of < (\u003c). The
//     events of a page are read undecoded and decoded one at a time, once the bytes their
//     decoded data takes are reserved too (tens of times its stored bytes for lists of
//     small values), given back once their JSON is written; so are those of a process's
//     page, of the folds of a list of processes and of parked commands, which the
//     Processes decodes with ProcessQuery.Hold, ListQuery.Hold and ParkedQuery.Hold,
//     and the states a process's page shows, made for it and
//     reserved once made, about what their values take (ProcessQuery.HoldState). A request
//     that cannot reserve its bytes within a second is refused with 503 unavailable and
//     Retry-After (none for an event larger than the whole budget, which only an idle
//     budget has room for), having changed nothing, and a page that cannot grow ends
//     early, with next.
//   - With Options.Tokens, every route but /healthz and the browser's static files needs
//     a bearer token of enough scope (and, for a token limited to stream prefixes, a
//     route about one of its streams); with Tokens.SetOwner, a change to a stream a
//     process manager or subscription owns needs admin. Whatever the options, a request from a foreign
//     Origin, or for a Host name the server does not serve, is refused with 403.
//   - A client that goes away mid-response is not a server error: it is logged at DEBUG.
//
// Choices left open elsewhere are written down here:
//
//   - The nil UUID is refused as an event id: the store would read it as "assign one".
//   - expected_version may be given in the query string of any write, or in its body,
//     not both.
//   - limit defaults to Options.DefaultLimit; from defaults to the start (forward) or the
//     end (backward).
//   - GET /v1/processes/{name} (after and limit optional) lists the processes of one
//     process manager in id order, each with its status and counts, paged with "next"
//     like the stream listing.
//   - GET /v1/events/{id} answers with the event, the streams it is in, its causation
//     parent and the events whose causation_id names it, bounded like a page
//     (streams_truncated and caused_truncated say when more exist).
package server
