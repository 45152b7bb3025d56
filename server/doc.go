// Package server is pmd's HTTP API: the routes of the contract (CONTRACT.md section 5)
// over a *pmd.Store, with live subscriptions as Server-Sent Events, Prometheus metrics
// and the process-manager queries of the daemon.
//
// What it promises to a client:
//
//   - JSON in and out. Every error is {"error": code, "message": text} with one of the
//     contract's codes: bad_request (400), not_found, stream_not_found, event_not_found
//     (404), wrong_expected_version, duplicate_event (409), payload_too_large (413);
//     and, for conditions the contract leaves open, method_not_allowed (405, with an
//     Allow header), unavailable (503, the store is closing or the request ran out of
//     time) and internal (500).
//   - Bad input is refused before the store is asked and writes nothing.
//   - Numbers in event data round-trip: integers stay integers ({"n":1} reads back as
//     {"n":1}), other numbers come back as floating point.
//   - Every list that can be long is paged: a page is at most Options.MaxLimit entries
//     (a larger limit is clamped) and "next" is the value to pass as from (or after, for
//     the stream listing) to get the following page, or null on the last page.
//   - GET /v1/subscribe sends each event as one "data:" line of JSON with the SSE "id:"
//     set to its position (global log) or version (one stream). A client that reconnects
//     with Last-Event-ID gets the event after that id next: no gap, no duplicate.
//     Comment lines are sent as heartbeats while nothing happens, and each write has a
//     deadline, so a client that stops reading is cut off instead of holding the server.
//
// Choices the contract leaves open are written down here:
//
//   - Unknown JSON fields in a request body are refused (400): a misspelt field would
//     otherwise be silently ignored.
//   - The nil UUID is refused as an event id: the store would read it as "assign one".
//   - limit defaults to Options.DefaultLimit; from defaults to the start (forward) or the
//     end (backward).
//   - GET /v1/processes/{name}?after=&limit= lists the processes of one process manager
//     in id order, each with its status and counts, paged with "next" like the stream
//     listing. It is not in the contract's table; the browser needs it.
//   - GET /v1/events/{id} answers with the event, the streams it is in, its causation
//     parent and the events whose causation_id names it. The last is answered from an
//     index of causation ids the server keeps in memory and brings up to date from the
//     log on each such query.
package server
