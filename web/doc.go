// Package web is pmd's browser: a single page, served from files embedded in the binary,
// that shows streams, events, the global log and process managers by calling the
// daemon's HTTP API (/v1/..., and /healthz) like any other client. It needs no build
// step, no CDN and no network beyond the daemon: its one library, uPlot for the
// dashboard's charts, is vendored in static/vendor/uplot (its LICENSE and VERSION beside
// it). Handler is mounted at "/" of the daemon with server.Options.Browser.
//
// What it promises:
//
//   - Every page has a URL to share. The route is in the fragment, so the server only
//     ever serves "/" and the page's assets; path segments are URL-escaped
//     (Customer$7 is Customer%247).
//   - Nothing that comes from the store is parsed as HTML: the page builds its DOM with
//     createElement and text nodes only, and the Content-Security-Policy the handler
//     sends refuses inline scripts and every origin but the daemon's, so a stream named
//     <script>alert(1)</script> shows as text, and the page could not load anything from
//     elsewhere even if it tried.
//   - Pages that show the newest events follow them live over GET /v1/subscribe
//     (EventSource): new events appear without a reload. Those that follow the log
//     from its end (the process managers, $all by type, a category) learn where it ends
//     from GET /healthz (its last_position), without reading its newest event, which may
//     be megabytes, and from the node itself: a cluster node's /v1/stats asks every peer
//     how it stands. The pages of process managers and of a manager's processes follow
//     the facts the managers handle and the records that change a process with no fact
//     (a deadline fired, a command parked, retried or skipped). Facts come before a
//     manager has handled them: while a manager they show is behind the log (its lag
//     above 0), they also read themselves again every two seconds. The page of a
//     manager's processes reads the manager's lag before its list, so that a lag of 0
//     vouches for the list. A page read again keeps the newest answer: a read answered
//     after a later one was asked for is dropped, and its failure too. The parked page
//     follows the records of commands and subscription events that park, are retried
//     or skipped, and of subscriptions' failed attempts, and the position of a
//     subscription it shows failing on an event (written once that event is delivered
//     at last, or any that comes while it is read again); a reload of it that fails
//     keeps its list and says it is not current, as the pages of process managers do,
//     but one answered 401 asks for a token; one that failed with a 5xx or no answer is
//     asked for again, later each time (1s up to 30s, not while the tab is hidden),
//     until it is answered. A subscription answered with an
//     error says which with the live badge; a 5xx is asked for again, later each time,
//     a 4xx is not. A hidden tab
//     closes its subscriptions and, shown again, reads its newest events afresh (a
//     process's timeline resumes from after the last event it had), not every event
//     written meanwhile: over HTTP/1.1 a browser gives one server six connections for
//     all its tabs, and live tabs left in the background would otherwise keep any other
//     page of the daemon from loading. Until that read is done the page shows what it
//     had, and keeps a filter being typed; if the read fails (the daemon restarting or
//     unreachable), the page stays and resumes from after the last event it had, asked
//     for again later each time, and comes back by itself. The page that asks for a token ("Use another token", a 401)
//     closes those of the page it replaces. The dashboard asks for GET /v1/stats every
//     two seconds, and not while its tab is hidden.
//   - A page whose read fails with a 5xx (the leader changing, the store stopped) or no
//     answer (the daemon restarting) shows the error and reads itself again, later each
//     time (1s up to 30s, not while its tab is hidden), until it is answered; one refused
//     with another 4xx than 401 and 403, or at a damaged record (corrupt, until pmd
//     repair), shows the error only, and a live reload is not asked for again either.
//   - A cluster's follower lists no process manager or subscription in its stats (they
//     run on the leader): its dashboard says so and names the leader.
//   - Integers past 2^53 in event data show as written (JSON.rawJSON), not rounded.
//
// The pages:
//
//	#/                                  the dashboard: store, write rate, managers, health, cluster
//	#/search?q=                         an event id, a stream-name prefix or a process id;
//	                                    what the tab's token may not look at, and what could
//	                                    not be read (a 503), is said in place, the rest shown
//	#/parked                            parked commands and subscription events: retry, skip
//	#/streams?prefix=&after=&limit=     streams in name order, filtered by prefix
//	#/streams/{stream}?from=&after=&limit=
//	                                    one stream, newest first; links marked with their origin;
//	                                    from=N is the page of N and before, after=N (‹ newer) that
//	                                    of the events after N, or the newest page if it holds them;
//	                                    older » only while an older event is kept (retention hides
//	                                    the first events, a type filter skips others); live, the
//	                                    newest page of a stream that keeps its newest max_count
//	                                    versions drops the rows of those it keeps no more, by
//	                                    the settings it read (rows max_age or a truncate_before
//	                                    set since hides stay until the page is read again); the
//	                                    live category and $all pages drop the rows of a stream
//	                                    past its newest max_count rows shown (their events carry
//	                                    no version: of a stream with events linked into it, rows
//	                                    of versions it keeps no more may stay); the stream
//	                                    of a process links its timeline, and says so when the
//	                                    process managers cannot be listed (a 403, a 503); its
//	                                    retention settings shown, or what kept them from being
//	                                    read
//	#/categories/{category}?from=&after=&limit=
//	                                    the events written to the streams {category}$…, newest
//	                                    first, paged as $all is; a stream page and the stream
//	                                    list link to their category
//	#/events/{id}                       one event: data, metadata, streams, cause, effects
//	#/all?types=A,B&from=&after=&limit=
//	                                    the global log, newest first, paged as a stream is, by type
//	                                    (type=A%2CB&type=C, once per type, for a type that holds a comma; in the
//	                                    types field, such a type goes in double quotes: "A,B", C)
//	#/processes                         process managers and their counts
//	#/processes/{name}?status=&sort=&older_than=&idle_for=&stuck=&after=&limit=
//	                                    the processes of one manager, oldest first with sort=age;
//	                                    one whose process stream was erased (which ended it) is
//	                                    "completed · erased"
//	#/processes/{name}/{id}             one process as a timeline; erased, it says so by its status,
//	                                    the records its stream lost (commands, deadlines) show
//	                                    as erased, and it shows no state, now or after an event;
//	                                    held at its first event (nothing of it written), it says
//	                                    so and shows the state it starts from
package web
