// The pmd browser: one page, routed by the URL fragment, built from the daemon's HTTP
// API (/v1/...). Everything that comes from the store is put into the page as text
// (createElement, textContent), never parsed as HTML.
'use strict';

(() => {
  const PAGE = 50; // rows per page unless the URL says limit=
  const main = document.getElementById('main');
  const liveBadge = document.getElementById('live');

  // --- DOM -------------------------------------------------------------------------

  // el builds an element. Children that are not Nodes become text nodes; props set
  // attributes (class, dataset and on* handlers are special).
  function el(tag, props, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') n.className = v;
      else if (k === 'dataset') Object.assign(n.dataset, v);
      else if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
      else n.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      n.append(c instanceof Node ? c : String(c));
    }
    return n;
  }

  function table(headers, rows) {
    return el('table', null,
      el('thead', null, el('tr', null, headers.map((h) => el('th', null, h)))),
      el('tbody', null, rows));
  }

  function json(v) {
    return el('pre', { class: 'json' }, JSON.stringify(v, null, 2));
  }

  // preview is a one-line JSON summary of event data for tables.
  function preview(data) {
    const s = JSON.stringify(data || {});
    return s.length > 160 ? s.slice(0, 160) + '…' : s;
  }

  // bytes is a size for people: 1.5 MiB.
  function bytes(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return (i === 0 ? String(n) : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i];
  }

  // count is a figure with thousands separated; null (not known yet) is an ellipsis.
  const count = (n) => (n === null || n === undefined ? '…' : Number(n).toLocaleString('en'));

  // span says a duration in milliseconds the short way: 45s, 12m, 3h 20m, 2d 4h.
  function span(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return s + 's';
    const m = Math.floor(s / 60);
    if (m < 60) return m + 'm';
    const h = Math.floor(m / 60);
    if (h < 48) return h + 'h' + (m % 60 ? ' ' + (m % 60) + 'm' : '');
    return Math.floor(h / 24) + 'd' + (h % 24 ? ' ' + (h % 24) + 'h' : '');
  }

  // duration reads a Go duration of whole units (90s, 30m, 48h, 1h30m) as
  // milliseconds; null when it is not one.
  function duration(text) {
    const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text || '');
    if (!m || text === '') return null;
    return ((+(m[1] || 0) * 60 + +(m[2] || 0)) * 60 + +(m[3] || 0)) * 1000;
  }

  function time(ts) {
    // 2024-05-01T10:11:12.123456789Z → 2024-05-01 10:11:12.123Z; the full value on hover.
    const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d{1,3})?\d*Z$/.exec(ts || '');
    return el('span', { title: ts }, m ? `${m[1]} ${m[2]}${m[3] || ''}Z` : ts || '');
  }

  // asText is a metadata value as the page shows it: a string as it is, any other JSON
  // value as JSON. Metadata is any JSON object, and String() would show an object as
  // [object Object] and throws on an integer past 2^53, which parseJSON keeps as written.
  const asText = (v) => (typeof v === 'string' ? v : JSON.stringify(v));
  // given says a metadata key has a value: 0 and false are values, as an id or a kind.
  const given = (v) => v !== undefined && v !== null && v !== '';

  const errorText = (err) => (err.code ? `${err.code}: ${err.message}` : String(err.message || err));

  function errorBox(err) {
    return el('div', { class: 'error', role: 'alert' }, errorText(err));
  }

  // transient says whether a read that failed with e may work if asked for again: a 5xx
  // (the leader changing, the store stopped) or no answer (the daemon restarting), but
  // not a damaged record (corrupt), which stays until pmd repair.
  const transient = (e) => (!e.status || e.status >= 500) && e.code !== 'corrupt';

  // notCurrent is the one notice of a page whose live reload failed: what is shown is
  // no longer current, and why; the next reload that works hides it. Reloads may be
  // answered out of order (a slow one overtaken by the next): load is given fresh(),
  // true until a later reload is asked for, and shows nothing once it is false; the
  // failure of such a read is dropped too. An older answer never replaces a newer one.
  // current says the page is still shown. A reload that failed where a later one may
  // work (transient) is asked for again, later each time (1s, 2s, … up to 30s), not while
  // the tab is hidden: the page comes back by itself, where it waited for the next
  // live event, which may never come.
  function notCurrent(current) {
    const node = el('div', { class: 'error', role: 'alert', id: 'not-current', hidden: true, dataset: { failed: 0 } });
    let asked = 0;
    let retry = null;
    cleanup.push(() => clearTimeout(retry));
    const reload = (load) => {
      const mine = ++asked;
      const fresh = () => mine === asked;
      clearTimeout(retry);
      retry = null;
      return load(fresh).then(() => {
        if (!fresh()) return;
        node.hidden = true;
        node.dataset.failed = 0;
      }, (e) => {
        if (!fresh()) return;
        // A 401 (the tab's token revoked, or one now needed) asks for a token, as the
        // page's first read and its live subscription do, while the page is shown.
        if (e.status === 401 && current()) {
          refused(e);
          return;
        }
        node.hidden = false;
        node.dataset.failed = +node.dataset.failed + 1; // in a row
        node.textContent = 'Not current: ' + errorText(e);
        if (!current() || !transient(e)) return;
        const wait = Math.min(1000 * 2 ** (+node.dataset.failed - 1), 30000);
        const again = () => {
          retry = document.hidden ? setTimeout(again, wait) : null;
          if (retry === null && current()) reload(load);
        };
        retry = setTimeout(again, wait);
      });
    };
    return { node, reload };
  }

  // --- URLs --------------------------------------------------------------------------

  // query spells params as a query string. A value that is null, undefined or empty is
  // left out, to take its default: the API refuses a parameter with no value (?limit=).
  // An array is the parameter once per element (type=A&type=B).
  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) {
      for (const x of Array.isArray(v) ? v : [v]) {
        if (x !== null && x !== undefined && x !== '') q.append(k, String(x));
      }
    }
    const s = q.toString();
    return s ? '?' + s : '';
  }

  // typeParams are the query parameters of a filter by event types, as the Go client
  // sends them: types=A,B, which every daemon takes, unless a type holds a comma, which
  // types= would split; then type=, once per type, each whole. No types: no parameter.
  const typeParams = (types) => (types.some((t) => t.includes(',')) ? { type: types } : { types: types.join(',') });

  // typesOf is the filter by event types of a page's address, spelt as the API takes
  // it: type=, once per type, and types=A,B.
  const typesOf = (params) => [...params.getAll('type'), ...(params.get('types') || '').split(',')].filter(Boolean);

  // The types field of $all: types separated by commas, each trimmed; one that holds a
  // comma (or starts with a double quote, or with or before a space) is written as a
  // JSON string: "A,B", C.
  const formatTypes = (types) => types.map((t) => (t.includes(',') || t.startsWith('"') || t !== t.trim() ? JSON.stringify(t) : t)).join(', ');

  function parseTypes(text) {
    const types = [];
    let rest = text;
    while (rest.trim() !== '') {
      rest = rest.trimStart();
      const quoted = /^"(?:[^"\\]|\\.)*"/.exec(rest);
      let t;
      if (quoted && /^\s*(?:,|$)/.test(rest.slice(quoted[0].length))) {
        try {
          t = JSON.parse(quoted[0]);
        } catch (_) {
          t = quoted[0]; // not a JSON string ("\q"): taken as typed
        }
        rest = rest.slice(quoted[0].length).replace(/^\s*,?/, '');
      } else {
        const i = rest.indexOf(',');
        t = (i < 0 ? rest : rest.slice(0, i)).trim();
        rest = i < 0 ? '' : rest.slice(i + 1);
      }
      if (t !== '') types.push(t);
    }
    return types;
  }

  // href is the fragment URL of a page: each segment escaped, so any stream name or id
  // round-trips.
  function href(segments, params) {
    return '#/' + segments.map(encodeURIComponent).join('/') + query(params);
  }

  function parseRoute() {
    const h = location.hash.replace(/^#\/?/, '');
    const i = h.indexOf('?');
    const path = i < 0 ? h : h.slice(0, i);
    return {
      segs: path === '' ? [] : path.split('/').map(decodeURIComponent),
      params: new URLSearchParams(i < 0 ? '' : h.slice(i + 1)),
    };
  }

  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  // A path segment . or .. is a step within the address to a browser, even escaped as
  // %2E%2E (the URL standard), so fetch cannot ask the API for a process whose id (or
  // manager) is one of them: /v1/processes/M/%2E%2E goes out as /v1/processes/. The
  // pages say so rather than ask.
  const dotSegment = (s) => s === '.' || s === '..';
  const streamLink = (name) => el('a', { href: href(['streams', name]), class: 'stream' }, name);
  // categoryOf is the category of a stream, the part of its name before the first $;
  // '' for a stream of none (no $, or one the name starts with, as in $all).
  const categoryOf = (name) => (name.indexOf('$') > 0 ? name.slice(0, name.indexOf('$')) : '');
  const categoryLink = (stream) => (categoryOf(stream)
    ? el('a', { href: href(['categories', categoryOf(stream)]), class: 'category' }, categoryOf(stream)) : null);
  const eventLink = (id, text) => el('a', { href: href(['events', id]), class: 'event mono', title: id }, text || id);
  // shortID is the tail of an id: UUIDv7 ids made close together share their head
  // (it is their time), not their tail.
  const shortID = (id) => '…' + id.slice(-12);

  function limitOf(params) {
    const n = Number(params.get('limit'));
    return Number.isInteger(n) && n > 0 ? n : PAGE;
  }

  // --- API ---------------------------------------------------------------------------

  // The token of a daemon run with --auth, kept for this tab only (sessionStorage):
  // asked for when the API answers 401, sent as Authorization: Bearer.
  const TOKEN = 'pmd-token';
  const token = () => sessionStorage.getItem(TOKEN);
  // A header carries printable ASCII only: fetch refuses any other token before asking.
  const sendable = (t) => /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(t);

  // authHeaders adds the token to headers. One that a header cannot carry (kept by an
  // earlier version of this page) is refused as the daemon refuses an unknown one.
  function authHeaders(headers) {
    const t = token();
    if (t && !sendable(t)) {
      const err = new Error('the token kept for this tab has characters a request header cannot carry');
      err.code = 'unauthorized';
      err.status = 401;
      throw err;
    }
    return t ? Object.assign(headers, { Authorization: 'Bearer ' + t }) : headers;
  }

  // api reads the API. Never from the browser's cache, and a read does not wait there
  // for an earlier read of the same address (a browser lets one request at a time
  // fill a cache entry): a slow read must not hold back the reads of a page after it.
  async function api(path, params) {
    const headers = authHeaders({ Accept: 'application/json' });
    let res;
    try {
      res = await fetch('/v1/' + path + query(params), { headers, cache: 'no-store' });
    } catch (e) {
      // No answer at all: the browser says only "Failed to fetch".
      throw new Error('could not reach pmd: ' + e.message);
    }
    let body = null;
    try {
      body = parseJSON(await res.text());
    } catch (_) {
      // not JSON: the status says enough
    }
    if (!res.ok) {
      const err = new Error((body && body.message) || `${res.status} ${res.statusText}`);
      err.code = body && body.error;
      err.status = res.status;
      err.body = body; // a corrupt error's position and version, among others
      throw err;
    }
    return body;
  }

  const streamPath = (name) => 'streams/' + encodeURIComponent(name);

  // parseJSON reads the daemon's JSON keeping integers past 2^53 as written: the
  // store keeps int64 and uint64 exactly, a JavaScript number would round them. It
  // keeps a float with no fraction as written too (2.0, 100000000000000000000.0, -0.0,
  // 1e+21): the store keeps it a float, and as a number it would show as the integer
  // 2 (-0.0 as 0). JSON.rawJSON keeps the source text, and JSON.stringify writes it
  // back as it was. Only a safe integer written as one is read as a number.
  function parseJSON(text) {
    return JSON.parse(text, (_, v, ctx) => (typeof v === 'number' && Number.isInteger(v) && ctx &&
      !(Number.isSafeInteger(v) && /^-?\d+$/.test(ctx.source)) && typeof JSON.rawJSON === 'function' ? JSON.rawJSON(ctx.source) : v));
  }

  // post sends an action (retry, skip) and returns the answer, failed or not: ok,
  // status, code and message.
  async function post(path) {
    const res = await fetch('/v1/' + path, { method: 'POST', headers: authHeaders({ Accept: 'application/json' }) });
    let body = null;
    try {
      body = await res.json();
    } catch (_) {
      // 204 has no body
    }
    return { ok: res.ok, status: res.status, code: body && body.error, message: (body && body.message) || `${res.status} ${res.statusText}` };
  }

  // endOfLog is the position a live subscription to $all (or a category) starts at to
  // see only events written from now on: the one after the log's last record. /healthz
  // says it without reading an event (the newest may be megabytes of data) and from this
  // node alone: the stats of a cluster node ask every peer how it stands. A degraded
  // store answers 503 with the position all the same.
  async function endOfLog() {
    let res;
    try {
      res = await fetch('/healthz', { headers: { Accept: 'application/json' } });
    } catch (e) {
      throw new Error('could not reach pmd: ' + e.message);
    }
    let body = null;
    try {
      body = parseJSON(await res.text());
    } catch (_) {
      // not JSON: the status says enough
    }
    if (!body || typeof body.last_position !== 'number') {
      const err = new Error((body && body.message) || `${res.status} ${res.statusText}`);
      err.code = body && body.error;
      err.status = res.status;
      throw err;
    }
    return body.last_position + 1;
  }

  // managers caches the process manager names for the page's lifetime, for the tab's
  // token: they come from the daemon's config and only change with a restart. A
  // failure is not kept: the next call asks again, and another token may not list them.
  let managersPromise = null;
  let managersToken = null;
  function managers() {
    if (!managersPromise || managersToken !== token()) {
      const asked = api('processes').then((r) => r.processes.map((m) => m.name));
      asked.catch(() => { if (managersPromise === asked) managersPromise = null; });
      managersPromise = asked;
      managersToken = token();
    }
    return managersPromise;
  }

  // --- page lifecycle ----------------------------------------------------------------

  let cleanup = []; // run when the page is left: close subscriptions, stop timers
  let renderSeq = 0; // which navigation is current; late answers of earlier ones are dropped

  // liveProblem is the error event of a damaged record (corrupt) that last ended one of
  // the page's subscriptions, as "code: message", shown with the badge until the page is
  // left: the subscription goes on past the record, and the page lacks that event. What
  // else ended one (the daemon's shutdown, a subscriber cut for being too slow, an answer
  // other than 200) is its problem, shown until it is live again: resumed from its last
  // event, it lacks none.
  let liveProblem = '';

  // setLive shows the state of the page's subscriptions: true live, false reconnecting,
  // 'stopped' given up (an answer that another try would not change), 'paused' closed
  // while the tab is hidden, null none.
  function setLive(state) {
    if (state === null) liveProblem = '';
    const text = state === null ? '' : state === 'stopped' ? '○ not live' : state === 'paused' ? '○ paused while the tab is hidden'
      : state ? '● live' : '○ reconnecting…';
    const problem = [...new Set([liveProblem, ...subs.map((sub) => sub.problem)].filter(Boolean))].join(' · ');
    liveBadge.textContent = problem && text ? `${text} · ${problem}` : text;
    liveBadge.title = problem;
    liveBadge.className = state === false || state === 'stopped' ? 'live down' : 'live';
  }

  // liveError shows an error event, {"error", "message"}, with which the daemon ended
  // sub; the subscription reconnects by itself, resuming after the event's id: past a
  // damaged record, or from the last event received when it was too slow or the daemon
  // stopped.
  function liveError(sub, data) {
    let body = null;
    try {
      body = JSON.parse(data);
    } catch (_) {
      // not the daemon's JSON: shown as it came
    }
    const problem = body && body.error ? `${body.error}: ${body.message}` : data;
    if (body && body.error === 'corrupt') liveProblem = problem;
    else sub.problem = problem;
    setLive(false);
  }

  // subs are the live subscriptions of the page shown. While the tab is hidden they are
  // closed, and once it is shown opened again from after their last event, or the page
  // read again (reread): over HTTP/1.1
  // a browser gives one server six connections for all its tabs, each subscription
  // holds one, and a few live tabs left in the background would keep every other page
  // of the daemon, this tab's and a new tab's, from loading at all.
  let subs = [];

  // kept is the page left on screen while it is read again in place (route(true)): its
  // cleanup and subscriptions, until the page read is shown (they are dropped then) or
  // the read fails before it shows anything (the daemon unreachable: they are resumed).
  let kept = null;

  // live follows a subscription for as long as the page is shown (and the tab visible).
  // reread says the page only keeps the newest of what it follows on screen (a table
  // of the newest events, the counts of the process managers): shown again after the
  // tab was hidden, it reads that afresh rather than resume, which would replay every
  // event written meanwhile through it, after a night on a busy daemon millions of
  // them, each a row built and dropped, to show the newest 50.
  function live(params, onEvent, reread) {
    // lastID is the id of the last message received, close ends the connection (null
    // while none is open), done says an answer ended it that asking again would not
    // change, and problem is what ended it last, until it is live again.
    const sub = { params, onEvent, reread: !!reread, lastID: null, close: null, done: false, problem: '' };
    subs.push(sub);
    cleanup.push(() => { if (sub.close) sub.close(); setLive(null); });
    if (document.hidden) setLive('paused');
    else connect(sub);
  }

  document.addEventListener('visibilitychange', () => {
    const open = subs.filter((sub) => !sub.done);
    if (document.hidden) {
      for (const sub of open) {
        if (sub.close) sub.close();
        sub.close = null;
      }
      if (open.length || kept) setLive('paused');
      return;
    }
    if (kept) {
      setLive(false); // read again already: that read shows the page, or resumes it
      return;
    }
    if (open.some((sub) => sub.reread)) {
      route(true);
      return;
    }
    for (const sub of open) {
      if (!sub.close) connect(sub);
    }
  });

  // connect opens a subscription, from after its last message if it had one.
  // EventSource reconnects by itself, resuming after the last id it saw, that of an
  // error event too; it cannot send a token, so with one the subscription is read with
  // fetch, and resumed the same way. EventSource gives up for good at an answer other
  // than 200 and does not say which: the fetch loop then takes over from the last id,
  // and says.
  function connect(sub) {
    if (token()) {
      liveWithToken(sub);
      return;
    }
    // The SSE id is the event's version in a stream, its position in the log, as from is.
    const from = sub.lastID === null ? {} : { from: following(sub.lastID) };
    const es = new EventSource('/v1/subscribe' + query(Object.assign({}, sub.params, from)));
    sub.close = () => es.close();
    es.onopen = () => {
      sub.problem = '';
      setLive(true);
    };
    es.onerror = (e) => {
      // The daemon's error events have data; a dropped connection's error has none.
      if (e.lastEventId) sub.lastID = e.lastEventId;
      if (e.data) liveError(sub, e.data);
      else if (es.readyState !== EventSource.CLOSED) setLive(false);
      else {
        es.close();
        liveWithToken(sub);
      }
    };
    es.onmessage = (m) => {
      if (m.lastEventId) sub.lastID = m.lastEventId;
      let ev;
      try {
        ev = parseJSON(m.data);
      } catch (_) {
        return;
      }
      sub.onEvent(ev);
    };
  }

  // liveWithToken reads a subscription with fetch, from after sub.lastID (null: from
  // the start given by its params). An answer other than 200 shows with the badge: a 5xx
  // is tried again, ever later (up to 30s between tries); a 4xx stops it, since the same
  // request would get the same answer, and a 401 asks for another token.
  function liveWithToken(sub) {
    const ctrl = new AbortController();
    let stopped = false;
    let failures = 0;
    sub.close = () => { stopped = true; ctrl.abort(); };
    // dispatch handles one SSE message: "id:", "event:" and "data:" lines.
    const dispatch = (block) => {
      let id = null;
      let type = 'message';
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('id: ')) id = line.slice(4);
        else if (line.startsWith('event: ')) type = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      // Every message's id counts, as with EventSource: the error event of a damaged
      // record carries its id, so that the reconnect resumes after it.
      if (id !== null) sub.lastID = id;
      if (type === 'error') {
        liveError(sub, data);
        return;
      }
      if (type !== 'message' || data === '') return;
      let ev;
      try {
        ev = parseJSON(data);
      } catch (_) {
        return;
      }
      sub.onEvent(ev);
    };
    (async () => {
      while (!stopped) {
        try {
          const headers = authHeaders({ Accept: 'text/event-stream' });
          if (sub.lastID !== null) headers['Last-Event-ID'] = sub.lastID;
          const res = await fetch('/v1/subscribe' + query(sub.params), { headers, signal: ctrl.signal });
          if (!res.ok) {
            let body = null;
            try {
              body = await res.json();
            } catch (_) {
              // not the daemon's JSON: the status says enough
            }
            sub.problem = `${(body && body.error) || res.status}: ${(body && body.message) || res.statusText}`;
            if (res.status < 500) {
              sub.done = true;
              sub.close = null;
            }
            if (res.status === 401) {
              // The tab's token was revoked (the token file reloaded): ask for
              // another, as every page does, rather than only stopping.
              setLive('stopped');
              refused({ status: 401 });
              return;
            }
            if (res.status < 500) {
              setLive('stopped');
              return;
            }
          } else {
            failures = 0;
            sub.problem = ''; // answered now
            setLive(true);
            const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
            let buf = '';
            for (;;) {
              const { value, done } = await reader.read();
              if (done) break;
              buf += value;
              let i;
              while ((i = buf.indexOf('\n\n')) >= 0) {
                dispatch(buf.slice(0, i));
                buf = buf.slice(i + 2);
              }
            }
          }
        } catch (_) {
          // aborted, or the connection dropped: reconnect below unless stopped
        }
        if (stopped) return;
        setLive(false);
        const wait = Math.min(1000 * 2 ** failures++, 30000);
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    })();
  }

  // tokenPage asks for the token of a daemon run with --auth. refused says the one
  // given was not accepted. It leaves the page it replaces, as a navigation does: that
  // page's subscriptions are closed, not opened again when the tab is shown (without a
  // token, which would be refused and put a new form in place of this one), and its
  // answers still to come are dropped.
  function tokenPage(refused) {
    leave();
    renderSeq++;
    const input = el('input', { type: 'password', id: 'token', autocomplete: 'off', 'aria-label': 'token', placeholder: 'token' });
    const form = el('form', { class: 'token' },
      el('p', null, refused
        ? 'The token was refused. Give another one.'
        : 'This pmd needs a token (it runs with --auth). It is kept for this tab only.'),
      input, ' ', el('button', { type: 'submit' }, 'Use token'));
    const problem = el('p', { class: 'error', id: 'token-problem', role: 'alert', hidden: true });
    form.append(problem);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const t = input.value.trim();
      if (!sendable(t)) {
        problem.hidden = false;
        problem.textContent = t === ''
          ? 'Give a token: it is empty.'
          : 'This is not a token pmd can be sent: a token is printable ASCII (letters, digits, punctuation), without characters such as é or emoji.';
        return;
      }
      sessionStorage.setItem(TOKEN, t);
      route();
    });
    show('token', form);
    input.focus();
  }

  // soon returns a function that runs fn once, ms after its first call since the last
  // run: a burst of live events costs one reload.
  function soon(fn, ms) {
    let timer = null;
    cleanup.push(() => clearTimeout(timer));
    return () => {
      if (timer === null) timer = setTimeout(() => { timer = null; fn(); }, ms);
    };
  }

  // show puts a page on screen. data-page and data-route say which page is shown for
  // which address once it is complete (tests wait for them).
  // A page read again in place keeps the text field being typed in (its id, value,
  // selection): a filter typed but not yet applied stays, still to apply with Enter or
  // a tab out. What the page replaced does on its way out (a field taken away while
  // typed in says change) is not heard: it navigated to the half-typed filter.
  function show(page, ...nodes) {
    const active = document.activeElement;
    const typed = kept && active && active.id && main.contains(active) && /^(INPUT|TEXTAREA)$/.test(active.tagName)
      ? { id: active.id, tag: active.tagName, value: active.value, start: active.selectionStart, end: active.selectionEnd }
      : null;
    dropKept();
    const unheard = (e) => e.stopImmediatePropagation();
    main.addEventListener('change', unheard, true);
    try {
      main.replaceChildren(...nodes.filter(Boolean));
    } finally {
      main.removeEventListener('change', unheard, true);
    }
    main.dataset.page = page;
    main.dataset.route = location.hash;
    const field = typed && document.getElementById(typed.id);
    if (field && field.tagName === typed.tag && main.contains(field)) {
      field.focus();
      if (field.value !== typed.value) {
        // As typed, not set: a value set by a script is not a change (no change event
        // at Enter or a tab out), and the field would not apply it.
        field.select();
        document.execCommand(typed.value === '' ? 'delete' : 'insertText', false, typed.value);
      }
      try {
        field.setSelectionRange(typed.start, typed.end);
      } catch (_) {
        // a field without a selection
      }
    }
  }

  function pager(links) {
    return el('div', { class: 'pager' }, links.filter(Boolean));
  }

  // damaged shows a page whose read met a damaged record (corrupt): the error, and the
  // links to the newest page and past the record (at is the record's version in a
  // stream or position in the log): read backward from the one before it (olderHref
  // makes the link of a page from there), or, for a read of newer events, forward from
  // the one after it (newerHref, the link of the page after at).
  function damaged(page, title, e, at, newest, olderHref, newerHref) {
    let past = null;
    if (typeof at === 'number' && newerHref) {
      past = el('a', { href: newerHref(at), rel: 'prev', id: 'past-damage' }, '‹ newer, past the damaged record');
    } else if (typeof at === 'number' && at > 0) {
      past = el('a', { href: olderHref(at - 1), rel: 'next', id: 'past-damage' }, 'older, past the damaged record »');
    }
    show(page, title, errorBox(e),
      el('p', { class: 'hint' }, 'A record of the log is damaged: it cannot be shown, the events around it can.'),
      pager([newest, past]));
  }

  // following is the version or position after id, as from= takes it: an id that is
  // not a number goes as it is, for the API to refuse and say why.
  const following = (id) => (/^\d+$/.test(id) ? String(BigInt(id) + 1n) : id);

  // readPage reads the page of a stream or the log that a page's address names, newest
  // first: from=N, the events at N and before (empty: the newest); after=N, the events
  // after N, read forward. It returns null for an after= page that reaches the newest
  // event: that page is the newest page, which is followed live. Its next is where the
  // page of older events starts, null if there is none; at is an event's version or
  // position.
  async function readPage(path, from, after, limit, filter, at) {
    if (after === null) return api(path, Object.assign({ direction: 'backward', from, limit }, filter));
    const r = await api(path, Object.assign({ direction: 'forward', from: following(after), limit }, filter));
    if (r.next === null) return null;
    r.events.reverse();
    // A forward read does not say whether anything is older than what it read: one
    // event read backward from just before the oldest shown does. Retention hides the
    // first events of a stream, and of the log, and a filter by type skips others, so
    // an oldest event not at 0 may have none before it.
    const last = r.events[r.events.length - 1];
    const before = last ? at(last) - 1 : Number(after);
    r.next = null;
    if (Number.isSafeInteger(before) && before >= 0) {
      try {
        const o = await api(path, Object.assign({ direction: 'backward', from: before, limit: 1 }, filter));
        if (o.events.length) r.next = before;
      } catch (e) {
        // A damaged record there: the older page shows it, and the way past it.
        if (e.code !== 'corrupt') throw e;
        r.next = before;
      }
    }
    return r;
  }

  // pagerLinks are the links of a page of events shown newest first: to the newest page
  // and the next newer one unless it is the newest, and to the next older one (r.next).
  // at is an event's version or position; link(params) makes a page's address.
  function pagerLinks(r, newest, at, link) {
    const first = r.events[0];
    const older = r.next;
    return pager([
      newest ? null : el('a', { href: link({}), rel: 'first' }, '« newest'),
      newest || !first ? null : el('a', { href: link({ after: at(first) }), rel: 'prev', id: 'newer' }, '‹ newer'),
      older !== null ? el('a', { href: link({ from: older }), rel: 'next' }, 'older »') : null,
    ]);
  }

  // --- pages -------------------------------------------------------------------------

  async function streamsPage({ params }, current) {
    const limit = limitOf(params);
    const input = el('input', {
      type: 'search', id: 'prefix', placeholder: 'Filter by name prefix, e.g. Order$',
      value: params.get('prefix') || '', 'aria-label': 'stream name prefix', autocomplete: 'off',
    });
    const body = el('div');
    let loads = 0;
    const load = async (after) => {
      const mine = ++loads;
      const prefix = input.value;
      let r;
      try {
        r = await api('streams', { prefix, after, limit });
      } catch (e) {
        // A failed read of what was typed before is dropped as an answer is: the list
        // of what was typed since stays.
        if (!current() || mine !== loads) return false;
        throw e;
      }
      if (!current() || mine !== loads) return false;
      const rows = r.streams.map((s) => el('tr', { dataset: { stream: s.name } },
        el('td', { class: 'name' }, streamLink(s.name), s.exists ? null : el('span', { class: 'mark deleted' }, 'deleted')),
        el('td', { class: 'name' }, categoryLink(s.name)),
        el('td', { class: 'num' }, s.version)));
      body.replaceChildren(
        rows.length ? table(['Stream', 'Category', 'Last version'], rows)
          : el('p', { class: 'empty' }, after
            ? (prefix ? `No more streams start with “${prefix}”.` : 'No more streams.')
            : prefix ? `No stream starts with “${prefix}”.` : 'No streams yet.'),
        pager([
          after ? el('a', { href: href(['streams'], { prefix, limit: params.get('limit') }) }, '« first') : null,
          r.next !== null ? el('a', { href: href(['streams'], { prefix, after: r.next, limit: params.get('limit') }), rel: 'next' }, 'next »') : null,
        ]));
      return true;
    };
    let typing = null;
    input.addEventListener('input', () => {
      clearTimeout(typing);
      typing = setTimeout(() => {
        // The URL follows the filter without a navigation, so typing keeps focus.
        history.replaceState(null, '', href(['streams'], { prefix: input.value, limit: params.get('limit') }));
        // A prefix typed is refused as the first one is: a 403 under the filter, a 401
        // asks for a token.
        load('').then((shown) => { if (shown) main.dataset.route = location.hash; }, (e) => {
          if (!current()) return;
          if (e.status === 403) notListed(e);
          else if (!refused(e)) body.replaceChildren(errorBox(e));
        });
      }, 150);
    });
    cleanup.push(() => clearTimeout(typing));
    // A token limited to some streams lists only the names of a prefix it reaches: the
    // filter stays, to give one, with the refusal under it.
    const notListed = (e) => body.replaceChildren(errorBox(e),
      el('p', null, 'The token of this tab lists only the names of the streams it reaches: give a prefix of them above, or ', anotherToken('use-token')));
    try {
      await load(params.get('after') || '');
    } catch (e) {
      if (e.status !== 403 || !current()) throw e;
      notListed(e);
    }
    if (!current()) return;
    show('streams', el('h1', null, 'Streams'),
      el('div', { class: 'toolbar' }, input, el('span', { class: 'hint' }, 'in name order')), body);
  }

  function eventRow(ev, inStream) {
    const origin = ev.link
      ? [el('span', { class: 'mark link', title: 'linked: the event was written to another stream' }, 'link'), 'written to ', streamLink(ev.stream)]
      : inStream ? null : streamLink(ev.stream);
    return el('tr', { dataset: { id: ev.id, type: ev.type, link: String(ev.link), stream: ev.stream, at: inStream ? ev.version : ev.position } },
      el('td', { class: 'num' }, inStream ? ev.version : ev.position),
      el('td', null, ev.type),
      el('td', { class: 'time' }, time(ev.timestamp)),
      el('td', { class: 'id' }, eventLink(ev.id, shortID(ev.id))),
      el('td', { class: 'origin' }, origin),
      el('td', { class: 'preview' }, ev.erased
        ? el('span', { class: 'mark deleted', title: 'erased: the data and metadata were erased' }, 'erased')
        : preview(ev.data)));
  }

  // prependLive puts the row of an event that came live on top of a newest-first table,
  // which keeps at most limit rows, as a page of it would: older ones are a page away.
  // The pager's older link then starts at the newest row pushed off (older(at) is its
  // address), not where the page was read from, which would skip the rows pushed off,
  // nor nowhere when the page held the first event.
  function prependLive(tbody, empty, row, limit, pager, older) {
    empty.remove();
    row.classList.add('new');
    tbody.prepend(row);
    while (tbody.rows.length > limit) {
      const off = tbody.lastElementChild;
      off.remove();
      const link = pager.querySelector('a[rel=next]') || pager.appendChild(el('a', { rel: 'next' }, 'older »'));
      link.setAttribute('href', older(off.dataset.at));
    }
  }

  // keptByMaxCount follows a live newest-first table of the log's events (a category,
  // $all): given the stream of an event that came live, it drops the rows of that
  // stream past its newest max_count, which the store keeps no more, as a reload would
  // show. Those answers carry no version, so only what the rows show is dropped: a
  // stream with events linked into it keeps fewer of its own, and those rows stay. A
  // stream's settings are read once, when a second row of it is shown; one whose
  // settings cannot be read keeps its rows.
  function keptByMaxCount(tbody, limit, current) {
    const maxCounts = new Map(); // stream -> a promise of its max_count, 0 for none
    const rowsOf = (stream) => [...tbody.rows].filter((row) => row.dataset.stream === stream);
    return (stream) => {
      if (rowsOf(stream).length < 2) return;
      if (!maxCounts.has(stream)) {
        if (maxCounts.size >= limit) { // keep those of the streams still shown
          const shown = new Set([...tbody.rows].map((row) => row.dataset.stream));
          for (const s of maxCounts.keys()) if (!shown.has(s)) maxCounts.delete(s);
        }
        maxCounts.set(stream, api(streamPath(stream) + '/metadata').then((m) => Number(m.max_count) || 0, () => 0));
      }
      maxCounts.get(stream).then((n) => {
        if (n > 0 && current()) for (const row of rowsOf(stream).slice(n)) row.remove();
      });
    };
  }

  // retentionText says in words what a stream's retention settings keep, '' if none.
  function retentionText(m) {
    const parts = [];
    if (m.max_age) parts.push(`events younger than ${m.max_age}`);
    if (m.max_count) parts.push(`the newest ${m.max_count} versions`);
    if (m.truncate_before) parts.push(`versions from ${m.truncate_before} on`);
    return parts.length ? 'Retention keeps ' + parts.join(', ') + '.' : '';
  }

  async function streamPage({ segs, params }, current) {
    const name = segs[1];
    if (name === '$all') {
      location.replace(href(['all']));
      return;
    }
    const limit = limitOf(params);
    const from = params.get('from') || null; // ?from= empty: the newest page, followed live
    const after = from === null ? params.get('after') || null : null;
    const link = (more) => href(['streams', name], Object.assign({ limit: params.get('limit') }, more));
    let r;
    try {
      r = await readPage(streamPath(name), from, after, limit, {}, (ev) => ev.version);
    } catch (e) {
      if (e.code === 'corrupt' && current()) {
        damaged('stream', el('h1', null, el('span', { class: 'kind' }, 'Stream'), name), e, e.body.version,
          from !== null || after !== null ? el('a', { href: link({}) }, '« newest') : null,
          (at) => link({ from: at }), after !== null ? (at) => link({ after: at }) : null);
        return;
      }
      if (e.code !== 'stream_not_found') throw e;
      if (!current()) return;
      // Nothing to follow live: the page says so rather than wait on an empty table.
      show('stream',
        el('h1', null, el('span', { class: 'kind' }, 'Stream'), name),
        el('p', { class: 'empty', id: 'not-found' }, 'No such stream: nothing was written to ', el('code', null, name), ', or it was deleted.'),
        el('p', null, el('a', { href: href(['streams'], { prefix: name }) }, 'Streams whose names start with it'), ' · ',
          el('a', { href: href(['search'], { q: name }) }, 'search for it')));
      return;
    }
    if (r === null) {
      if (current()) location.replace(link({}));
      return;
    }
    const category = categoryOf(name);
    // A stream of a category may be a process's (the manager's name, $, its id): the
    // process managers say. What keeps them from saying (403: a token limited to
    // streams may not list them; a 503) is said in place of the link.
    let process = null;
    if (category) {
      try {
        if ((await managers()).includes(category)) {
          process = el('p', null, 'The stream of a process: ', el('a', { href: href(['processes', category, name.slice(category.length + 1)]) }, 'show its timeline'));
        }
      } catch (e) {
        if (e.status === 401) throw e;
        const unknown = 'whether this is the stream of a process is not known.';
        process = e.status === 403
          ? el('p', { class: 'hint', id: 'processes-not-allowed' }, `The token of this tab may not list the process managers (${errorText(e)}): ${unknown}`)
          : el('p', { class: 'hint', id: 'processes-failed' }, `The process managers could not be read (${errorText(e)}): ${unknown}`);
      }
    }
    // The retention settings say what the stream keeps, and what the live page drops as
    // events come: what keeps them from being read is said in place.
    let meta = {};
    let retention = null;
    try {
      meta = await api(streamPath(name) + '/metadata');
      const kept = retentionText(meta);
      if (kept) retention = el('p', { id: 'retention', class: 'hint' }, kept);
    } catch (e) {
      if (e.status === 401) throw e;
      retention = el('p', { class: 'hint', id: 'retention-failed' },
        `The retention settings of this stream could not be read (${errorText(e)}): what it keeps is not known, and the rows of versions it no longer keeps stay until the page is read again.`);
    }
    if (!current()) return;
    const inCategory = category ? el('p', { id: 'category' }, 'In category ', categoryLink(name), el('span', { class: 'meta' }, ` (the streams ${category}$…)`)) : null;
    const tbody = el('tbody', null, r.events.map((ev) => eventRow(ev, true)));
    const pager = pagerLinks(r, from === null && after === null, (ev) => ev.version, link);
    // An older page that is empty starts before the first event kept (retention). A
    // stream that exists holds an event whenever it was written to (an event linked
    // into it stays while the link does), so its newest page is empty only when its
    // retention hides every event.
    const empty = el('p', { class: 'empty' }, from !== null
      ? `No event of this stream is at or before version ${from}.` : 'No event of this stream is kept: its retention hides every one written so far.');
    show('stream',
      el('h1', null, el('span', { class: 'kind' }, 'Stream'), name),
      process,
      inCategory,
      retention,
      el('table', null,
        el('thead', null, el('tr', null, ['Version', 'Type', 'Timestamp', 'Event', 'Written to', 'Data'].map((h) => el('th', null, h)))),
        tbody),
      r.events.length ? null : empty,
      pager);
    if (from !== null || after !== null) return; // an older page stays as it is
    const next = r.events.length ? r.events[0].version + 1 : 0;
    // A stream that keeps its newest max_count versions drops its oldest as events
    // come: so does the page, as a reload would show, and its older link with them
    // when nothing older is kept.
    const maxCount = Number(meta.max_count) || 0;
    const keepNewest = (version) => {
      const firstKept = version - maxCount + 1;
      const rows = [...tbody.rows];
      const gone = rows.filter((row) => Number(row.dataset.at) < firstKept);
      for (const row of gone) row.remove();
      const oldest = rows.length > gone.length ? Number(rows[rows.length - gone.length - 1].dataset.at) : version;
      const older = pager.querySelector('a[rel=next]');
      if (older && oldest <= firstKept) older.remove();
    };
    live({ stream: name, from: next }, (ev) => {
      if (maxCount > 0) keepNewest(ev.version);
      prependLive(tbody, empty, eventRow(ev, true), limit, pager, (at) => link({ from: at }));
    }, true);
  }

  async function eventPage({ segs }, current) {
    const id = segs[1];
    let r;
    try {
      r = await api('events/' + encodeURIComponent(id));
    } catch (e) {
      if (e.status !== 404 && e.code !== 'bad_request') throw e;
      if (!current()) return;
      show('event', el('h1', null, el('span', { class: 'kind' }, 'Event'), id),
        el('p', { class: 'empty', id: 'not-found' }, e.code === 'bad_request'
          ? 'This is not an event id: event ids are UUIDs.'
          : 'No such event: no stored event has this id (or it is dead: no stream shows it any more).'));
      return;
    }
    if (!current()) return;
    const ev = r.event;
    const md = ev.metadata || {};
    // An erased event's metadata is gone: its correlation and cause are not known.
    const unknown = el('span', { class: 'meta' }, 'not known: the metadata was erased');
    let cause = ev.erased ? unknown.cloneNode(true) : 'none';
    if (r.causation) {
      cause = [eventLink(r.causation.id), ' ', r.causation.type, ' in ', streamLink(r.causation.stream)];
    } else if (r.causation_omitted && given(md.causation_id)) {
      // Stored, but left out of the answer: the daemon's memory budget had no room for it.
      cause = [eventLink(asText(md.causation_id)), el('span', { class: 'meta', id: 'causation-omitted' },
        ' (stored: the server\'s memory budget had no room to show it here)')];
    } else if (given(md.causation_id)) {
      cause = `${asText(md.causation_id)} (not stored)`;
    }
    const erased = (what) => el('p', { class: 'empty erased' }, `Erased: the ${what} of this event were erased with its stream; its id, type, position and timestamp stay.`);
    const caused = r.caused.map((c) => el('tr', { dataset: { id: c.id, type: c.type } },
      el('td', null, c.type),
      el('td', null, c.metadata && given(c.metadata.pm_kind) ? asText(c.metadata.pm_kind) : ''),
      el('td', { class: 'name' }, streamLink(c.stream)),
      el('td', { class: 'time' }, time(c.timestamp)),
      el('td', { class: 'id' }, eventLink(c.id, shortID(c.id)))));
    show('event',
      el('h1', null, el('span', { class: 'kind' }, 'Event'), ev.type,
        ev.erased ? el('span', { class: 'mark deleted', id: 'erased' }, 'erased') : null),
      el('dl', { class: 'facts' },
        el('dt', null, 'Id'), el('dd', { class: 'mono', id: 'event-id' }, ev.id),
        el('dt', null, 'Position'), el('dd', null, ev.position),
        el('dt', null, 'Timestamp'), el('dd', null, ev.timestamp),
        el('dt', null, 'Written to'), el('dd', null, streamLink(ev.stream)),
        el('dt', null, 'In streams'), el('dd', null, el('ul', { class: 'inline', id: 'streams' }, r.streams.map((s) => el('li', null, streamLink(s))),
          r.streams_truncated ? el('li', { class: 'meta', id: 'streams-truncated' }, 'and more: only the first are listed') : null)),
        el('dt', null, 'Correlation'), el('dd', { id: 'correlation' }, !given(md.correlation_id) ? (ev.erased ? unknown : 'none')
          : typeof md.correlation_id === 'string' && UUID.test(md.correlation_id) ? eventLink(md.correlation_id) : asText(md.correlation_id)),
        el('dt', null, 'Caused by'), el('dd', { id: 'causation' }, cause)),
      el('h2', null, 'Caused', r.caused_truncated && caused.length
        ? el('span', { class: 'meta', id: 'caused-truncated' }, ` (the first ${caused.length}: more events name this one as their cause)`) : null),
      caused.length ? el('table', { id: 'caused' },
        el('thead', null, el('tr', null, ['Type', 'Kind', 'Stream', 'Timestamp', 'Event'].map((h) => el('th', null, h)))),
        el('tbody', null, caused))
        // None listed yet some stored: the daemon's memory budget had no room for the first.
        : r.caused_truncated ? el('p', { class: 'empty', id: 'caused' }, 'Stored events name this one as their cause, but none could be listed within the server\'s memory budget: read this page again later.')
          : el('p', { class: 'empty', id: 'caused' }, 'No stored event names this one as its cause.'),
      el('div', { class: 'cols' },
        el('div', null, el('h2', null, 'Data'), ev.erased ? erased('data') : json(ev.data)),
        el('div', null, el('h2', null, 'Metadata'), ev.erased ? erased('metadata') : json(md))));
  }

  async function allPage({ params }, current) {
    const types = typesOf(params);
    const filter = typeParams(types);
    const from = params.get('from') || null; // ?from= empty: the newest page, followed live
    const after = from === null ? params.get('after') || null : null;
    const limit = limitOf(params);
    const link = (more) => href(['all'], Object.assign({}, filter, { limit: params.get('limit') }, more));
    let end;
    let r;
    try {
      end = await endOfLog();
      r = await readPage('all', from, after, limit, filter, (ev) => ev.position);
    } catch (e) {
      if (e.code !== 'corrupt' || !current()) throw e;
      damaged('all', el('h1', null, el('span', { class: 'kind' }, 'Stream'), '$all'), e, e.body.position,
        from !== null || after !== null ? el('a', { href: link({}) }, '« newest') : null,
        (at) => link({ from: at }), after !== null ? (at) => link({ after: at }) : null);
      return;
    }
    if (!current()) return;
    if (r === null) {
      location.replace(link({}));
      return;
    }
    const input = el('input', {
      type: 'search', id: 'types', value: formatTypes(types), placeholder: 'Event types, comma separated',
      title: 'Event types, separated by commas; one that holds a comma in double quotes: "A,B", C',
      'aria-label': 'event types', autocomplete: 'off',
    });
    input.addEventListener('change', () => {
      location.hash = href(['all'], Object.assign(typeParams(parseTypes(input.value)), { limit: params.get('limit') }));
    });
    const tbody = el('tbody', null, r.events.map((ev) => eventRow(ev, false)));
    const pager = pagerLinks(r, from === null && after === null, (ev) => ev.position, link);
    // An older page that is empty starts before the first event kept (retention), or
    // of the types asked for. A log that holds records may show none: deleted streams'
    // events are not shown, nor those retention hides.
    const where = from !== null ? ` is at or before position ${from}` : '';
    const empty = el('p', { class: 'empty' }, types.length ? `No event of type ${formatTypes(types)}${where}.`
      : end <= 1 ? 'The log is empty.' : where ? `No event${where}.` : 'No event to show: the log holds none that is kept (the events of deleted streams, and those retention hides, are not shown).');
    show('all',
      el('h1', null, el('span', { class: 'kind' }, 'Stream'), '$all'),
      el('div', { class: 'toolbar' }, input, el('span', { class: 'hint' }, 'newest first')),
      el('table', null,
        el('thead', null, el('tr', null, ['Position', 'Type', 'Timestamp', 'Event', 'Stream', 'Data'].map((h) => el('th', null, h)))),
        tbody),
      r.events.length ? null : empty,
      pager);
    if (from !== null || after !== null) return;
    const keep = keptByMaxCount(tbody, limit, current);
    live(Object.assign({}, filter, { from: r.events.length ? r.events[0].position + 1 : end }), (ev) => {
      prependLive(tbody, empty, eventRow(ev, false), limit, pager, (at) => link({ from: at }));
      keep(ev.stream);
    }, true);
  }

  // categoryPage shows the events written to the streams of a category (Order for
  // Order$42, …), newest first, paged as $all is; the newest page is followed live.
  async function categoryPage({ segs, params }, current) {
    const name = segs[1];
    const title = el('h1', null, el('span', { class: 'kind' }, 'Category'), name);
    if (dotSegment(name)) {
      show('category', title, el('p', { class: 'empty', id: 'cannot-read' }, 'A browser cannot read a category named ', el('code', null, name),
        ': it takes that, even escaped, for a step in the address. ', el('code', null, `pmd category ${name}`), ' can.'));
      return;
    }
    const path = 'categories/' + encodeURIComponent(name);
    const from = params.get('from') || null; // ?from= empty: the newest page, followed live
    const after = from === null ? params.get('after') || null : null;
    const limit = limitOf(params);
    const newest = from === null && after === null;
    const link = (more) => href(['categories', name], Object.assign({ limit: params.get('limit') }, more));
    let end = null;
    let r;
    try {
      // Where the log ends is taken before the read: an event written between the two
      // is then on the page or comes live, never neither.
      if (newest) end = await endOfLog();
      r = await readPage(path, from, after, limit, {}, (ev) => ev.position);
    } catch (e) {
      if (!current()) return;
      if (e.code === 'corrupt') {
        damaged('category', title, e, e.body.position, newest ? null : el('a', { href: link({}) }, '« newest'),
          (at) => link({ from: at }), after !== null ? (at) => link({ after: at }) : null);
        return;
      }
      if (e.code !== 'bad_request') throw e;
      // A stream's name given as a category (Order$42): the error says why, the link
      // goes where it was likely meant to.
      show('category', title, errorBox(e), name.includes('$')
        ? el('p', null, 'A category is the part of a stream name before its first $: ', streamLink(name), ' is a stream',
          categoryOf(name) ? [' of category ', categoryLink(name)] : null, '.')
        : null);
      return;
    }
    if (!current()) return;
    if (r === null) {
      location.replace(link({}));
      return;
    }
    const tbody = el('tbody', null, r.events.map((ev) => eventRow(ev, false)));
    const pager = pagerLinks(r, newest, (ev) => ev.position, link);
    // An older page that is empty starts before the first event kept (retention).
    const empty = el('p', { class: 'empty' }, from !== null
      ? `No event of a stream ${name}$… is at or before position ${from}.`
      // Events of the category's streams may have been, and been deleted since.
      : end !== null && end <= 1 ? `No event was written to a stream ${name}$… yet.` : `No event of a stream ${name}$… is kept.`);
    show('category', title,
      el('p', { class: 'hint' }, `The events written to the streams ${name}$…, newest first; events linked into them are not theirs.`),
      el('table', null,
        el('thead', null, el('tr', null, ['Position', 'Type', 'Timestamp', 'Event', 'Stream', 'Data'].map((h) => el('th', null, h)))),
        tbody),
      r.events.length ? null : empty,
      pager);
    if (!newest) return; // an older page stays as it is
    const keep = keptByMaxCount(tbody, limit, current);
    live({ category: name, from: r.events.length ? r.events[0].position + 1 : end }, (ev) => {
      prependLive(tbody, empty, eventRow(ev, false), limit, pager, (at) => link({ from: at }));
      keep(ev.stream);
    }, true);
  }

  const status = (s) => el('span', { class: 'status ' + s }, s);

  // processStatus is the status of a process, marked when its process stream was
  // erased: that ended the process for good (completed), and its commands and deadlines
  // went with the stream's records.
  const processStatus = (p) => p.erased
    ? [status(p.status), ' · ', el('span', {
      class: 'mark deleted erased',
      title: 'the process stream was erased, so the process ended: it issues no command and fires no deadline again, and its commands and deadlines are no longer known',
    }, 'erased')]
    : status(p.status);

  // lagCell is the Lag cell of a process manager or a subscription. The daemon answers a
  // lag of null where it could not read it (a damaged index; /healthz is degraded then):
  // that shows as unknown, with the warning style, never as empty or as "…" (loading).
  const lagCell = (lag) => (lag === null || lag === undefined
    ? el('td', { class: 'num lag warn', title: 'unknown: the lag could not be read (a damaged index?); see Health on the dashboard' }, 'unknown')
    : el('td', { class: 'num lag' + (lag > 0 ? ' warn' : ''), title: 'log positions behind' }, count(lag)));

  // managerRecords are the types of the records a process manager writes that change
  // its counts or a process's status with no fact (pm/FORMAT.md): a deadline fired, a
  // command parked after its last failed attempt, retried or skipped by hand.
  const managerRecords = ['DeadlineFired', 'CommandParked', 'CommandRetried', 'CommandSkipped'];

  // followFacts calls reload soon after each new event of the handled types, and each
  // record of managerRecords: the counts and states of processes change as the process
  // managers handle facts, and as deadlines fire and deliveries park, which no fact
  // comes with (a parking after 10 failed attempts is half a minute later or more).
  function followFacts(from, handles, reload) {
    if (handles.length) live(Object.assign(typeParams([...new Set([...handles, ...managerRecords])]), { from }), soon(reload, 500), true);
  }

  // whileBehind reads a page of processes again every two seconds while behind() says
  // that a process manager it shows is behind the log (lag > 0), and returns what to
  // call after each read. The facts the page follows come as they are written, before
  // the managers have handled them: the read they cause can find a manager behind, and
  // no fact may come after it to read the page again (4,000 facts in one append left
  // the page at 263 open processes and a lag of 3,862 for good, the manager long caught
  // up). A hidden tab reads nothing: shown again, it reads the page afresh.
  function whileBehind(current, behind, reload) {
    let timer = null;
    cleanup.push(() => clearTimeout(timer));
    const check = () => {
      if (timer !== null || !current() || !behind()) return;
      timer = setTimeout(() => {
        timer = null;
        if (!document.hidden) reload().then(check);
      }, 2000);
    };
    return check;
  }

  async function processesPage(_, current) {
    const from = await endOfLog();
    const body = el('div');
    let handles = [];
    let behind = false;
    const load = async (fresh = () => true) => {
      const r = await api('processes');
      if (!current() || !fresh()) return;
      handles = r.processes.flatMap((m) => m.handles || []);
      behind = r.processes.some((m) => m.lag > 0);
      body.replaceChildren(r.processes.length
        ? table(['Process manager', 'Handles', 'Open', 'Completed', 'Expired', 'Lag', 'Parked'], r.processes.map((m) => el('tr', { dataset: { manager: m.name } },
          el('td', null, el('a', { href: href(['processes', m.name]) }, m.name)),
          el('td', null, (m.handles || []).join(', ')),
          el('td', { class: 'num open' }, el('a', { href: href(['processes', m.name], { status: 'open', sort: 'age' }), title: 'the open ones, oldest first' }, m.open)),
          el('td', { class: 'num completed' }, m.completed),
          el('td', { class: 'num expired' }, m.expired),
          lagCell(m.lag),
          el('td', { class: 'num parked' + (m.parked > 0 ? ' warn' : '') }, m.parked > 0 ? el('a', { href: '#/parked' }, m.parked) : '0'))))
        : el('p', { class: 'empty' }, 'The daemon runs no process manager: start it with pmd serve --config FILE.'));
    };
    await load();
    if (!current()) return;
    const stale = notCurrent(current);
    show('processes', el('h1', null, 'Process managers'), stale.node, body);
    const check = whileBehind(current, () => behind, () => stale.reload(load));
    followFacts(from, handles, () => stale.reload(load).then(check));
    check();
  }

  // processListPage lists the processes of one manager, filtered by status, age and
  // idleness, in id order or the oldest first. An open process older than the stuck
  // threshold (stuck=, 1h by default) is marked: it waits for something that has not
  // come.
  async function processListPage({ segs, params }, current) {
    const name = segs[1];
    const limit = limitOf(params);
    const filters = {
      status: params.get('status') || '', sort: params.get('sort') || '',
      older_than: params.get('older_than') || '', idle_for: params.get('idle_for') || '',
    };
    // stuck= is a duration of whole units; any other value is said to be wrong, and 1h used.
    const threshold = duration(params.get('stuck') || '1h');
    const stuck = threshold === null ? '1h' : params.get('stuck') || '1h';
    const stuckMs = threshold === null ? 3600 * 1000 : threshold;
    const badStuck = threshold === null
      ? el('div', { class: 'error', role: 'alert', id: 'bad-stuck' }, 'stuck= takes a duration such as 90s, 30m, 48h or 1h30m: 1h is used.')
      : null;
    const after = params.get('after') || '';
    const from = await endOfLog();
    const page = (more) => href(['processes', name], Object.assign({}, filters, { stuck: params.get('stuck'), limit: params.get('limit') }, more));
    const body = el('div');
    // The manager, as GET /v1/processes has it: what it handles, and its lag. Its lag is
    // read before the processes: a lag of 0 then says the list read after it holds what
    // the manager had handled of the log. Read together, the list could be read before
    // the manager handled a fact and the lag after, 0: the page kept the list without
    // the fact's process, with nothing to read it again.
    let manager = null;
    const load = async (fresh = () => true) => {
      const managers = await api('processes');
      const r = await api('processes/' + encodeURIComponent(name), Object.assign({ after, limit }, filters));
      if (!current() || !fresh()) return;
      manager = managers.processes.find((m) => m.name === name) || null;
      const now = Date.now();
      const rows = r.processes.map((p) => {
        const age = p.created ? now - Date.parse(p.created) : null;
        const isStuck = p.status === 'open' && age !== null && age >= stuckMs;
        return el('tr', { dataset: { process: p.id, status: p.status, stuck: String(isStuck), erased: String(!!p.erased) }, class: isStuck ? 'stuck' : null },
          el('td', { class: 'name' }, el('a', { href: href(['processes', name, p.id]) }, p.id)),
          el('td', null, processStatus(p), isStuck ? el('span', { class: 'mark stuck', title: `open for longer than ${stuck}` }, 'stuck') : null,
            p.parked ? el('span', { class: 'mark parked' }, `${p.parked} parked`) : null,
            p.panic ? el('span', { class: 'mark stuck held', title: p.panic }, 'held: panicked') : null,
            p.damaged ? el('span', { class: 'mark deleted damaged', title: 'damaged records of its stream passed over, until pmd repair' }, `${p.damaged} damaged`) : null),
          el('td', { class: 'num age', title: p.created || '' }, age === null ? '' : span(age)),
          el('td', { class: 'time' }, p.last_activity ? [time(p.last_activity), el('span', { class: 'meta' }, ` (${span(now - Date.parse(p.last_activity))} ago)`)] : ''),
          el('td', { class: 'num' }, p.events),
          el('td', { class: 'num' }, p.commands),
          el('td', { class: 'num' }, p.deadlines),
          el('td', { class: 'num' }, p.version));
      });
      const what = [filters.status ? filters.status + ' ' : '', 'processes',
        filters.older_than ? ` older than ${filters.older_than}` : '', filters.idle_for ? ` idle for ${filters.idle_for}` : ''].join('');
      body.replaceChildren(
        rows.length ? table(['Process', 'Status', 'Age', 'Last activity', 'Facts', 'Commands', 'Pending deadlines', 'Version'], rows)
          : el('p', { class: 'empty' }, after ? 'No more ' + what + '.' : 'No ' + what + '.'),
        pager([
          after ? el('a', { href: page({}) }, '« first') : null,
          r.next !== null ? el('a', { href: page({ after: r.next }), rel: 'next' }, 'next »') : null,
        ]));
    };
    let refusedFilter = false;
    try {
      await load();
    } catch (e) {
      if (!current()) return;
      if (e.code === 'bad_request') {
        // A filter the daemon refuses: the error shows under the filters, to be mended.
        refusedFilter = true;
        body.replaceChildren(errorBox(e));
      } else if (e.code !== 'not_found') {
        throw e;
      } else {
        show('process-list', el('h1', null, el('span', { class: 'kind' }, 'Processes of'), name),
          el('p', { class: 'empty', id: 'not-found' }, 'No such process manager: the daemon runs ', el('a', { href: '#/processes' }, 'these'), '.'));
        return;
      }
    }
    if (!current()) return;
    const stale = notCurrent(current);
    const select = (id, label, value, options) => {
      const sel = el('select', { id, 'aria-label': label }, options.map(([v, text]) => el('option', { value: v, selected: v === value }, text)));
      sel.addEventListener('change', () => { location.hash = page({ [id]: sel.value }); });
      return sel;
    };
    const field = (id, label, value, placeholder) => {
      const input = el('input', { type: 'text', id: id.replace('_', '-'), class: 'short', value, placeholder, 'aria-label': label, autocomplete: 'off' });
      input.addEventListener('change', () => { location.hash = page({ [id]: input.value.trim() }); });
      return el('label', null, label, input);
    };
    show('process-list', el('h1', null, el('span', { class: 'kind' }, 'Processes of'), name),
      el('div', { class: 'toolbar' },
        select('status', 'status', filters.status, [['', 'every status'], ['open', 'open'], ['completed', 'completed'], ['expired', 'expired'], ['parked', 'with a parked command']]),
        select('sort', 'order', filters.sort, [['', 'in id order'], ['age', 'oldest first']]),
        field('older_than', 'older than', filters.older_than, 'e.g. 1h'),
        field('idle_for', 'idle for', filters.idle_for, 'e.g. 30m'),
        field('stuck', 'stuck after', params.get('stuck') || '', '1h')),
      badStuck,
      el('p', { class: 'hint' }, `An open process older than ${stuck} is marked stuck. `,
        el('a', { href: page({ status: 'open', sort: 'age', after: null }), id: 'show-stuck' }, 'Show the open ones, oldest first'), '.'),
      stale.node, body);
    if (refusedFilter) return;
    const check = whileBehind(current, () => manager !== null && manager.lag > 0, () => stale.reload(load));
    followFacts(from, (manager && manager.handles) || [], () => stale.reload(load).then(check));
    check();
  }

  // attemptItem renders one delivery record of a command: an attempt, when it ended, how,
  // and for a failed one when it is tried again; or the parking after max_attempts
  // failures, and the retry or skip done by hand since.
  function attemptItem(a) {
    const data = { attempt: a.attempt, outcome: a.outcome };
    switch (a.outcome) {
      case 'parked':
        return el('li', { class: 'failed', dataset: data }, `parked after attempt ${a.attempt} at `, time(a.at),
          el('span', { class: 'meta' }, ': no more attempts until it is retried or skipped (pmd retry, pmd skip)'));
      case 'retried':
        return el('li', { class: 'record', dataset: data }, 'retried by hand at ', time(a.at));
      case 'skipped':
        return el('li', { class: 'record', dataset: data }, 'skipped by hand at ', time(a.at), ': never delivered');
    }
    return el('li', { class: a.error ? 'failed' : 'ok', dataset: data },
      `attempt ${a.attempt} at `, time(a.at),
      a.error ? [`: failed: ${a.error}`, a.retry_at ? [el('span', { class: 'meta' }, ' · retry at '), time(a.retry_at)] : null] : ': delivered');
  }

  // timelineEntry renders one event of a process stream: a fact the process handled
  // (linked in from the stream it was written to) or a record the runtime wrote, with
  // the process's state after it. An erased record (its stream was erased) lost the
  // metadata that said what it was (a command, a deadline): it shows as erased, with its
  // type, as an erased event does elsewhere; an erased fact stays a fact, marked. A
  // process that was erased (processErased) has no state to show after any event.
  function timelineEntry(ev, commands, actions, processErased) {
    const md = ev.metadata || {};
    const d = ev.data || {};
    let kind = 'record';
    let cls = 'record';
    let what = [ev.type];
    let extra = null;
    const mark = ev.erased
      ? el('span', { class: 'mark deleted erased', title: 'erased with its stream: its data and metadata are gone' }, 'erased')
      : null;
    if (ev.link) {
      kind = 'fact';
      cls = 'fact';
      what = [ev.type, el('span', { class: 'meta' }, ' from '), streamLink(ev.stream)];
    } else if (ev.erased) {
      kind = 'erased';
      cls = 'record erased';
    } else if (md.pm_kind === 'command') {
      kind = 'command';
      cls = 'command';
      const c = commands.get(ev.id);
      const attempts = c ? c.attempts : [];
      if (c && c.status) {
        what = [ev.type, ' ', el('span', { class: 'status ' + c.status, dataset: { status: c.status } }, c.status),
          c.status === 'failing' || c.status === 'parked' ? el('span', { class: 'actions' }, ' ', actions(c)) : null];
      }
      extra = el('ul', { class: 'attempts' }, attempts.length
        ? attempts.map(attemptItem)
        : el('li', null, c && c.delivered ? 'delivered' : 'no delivery attempt recorded'));
    } else if (md.pm_kind === 'deadline_scheduled') {
      kind = 'deadline';
      cls = 'deadline';
      what = ['deadline set: ', d.type || '', el('span', { class: 'meta' }, ' due '), time(d.due)];
    } else if (md.pm_kind === 'deadline_fired') {
      kind = 'deadline';
      cls = 'deadline';
      what = ['deadline fired', el('span', { class: 'meta' }, ' due '), time(d.due)];
    } else if (md.pm_kind === 'deadline_cancelled') {
      kind = 'deadline';
      cls = 'deadline';
      what = ['deadline cancelled: ', d.key || md.pm_key || ''];
    }
    return el('li', { class: cls, dataset: { kind, id: ev.id, type: ev.type, stream: ev.stream } },
      el('div', { class: 'entry-head' },
        el('span', { class: 'kind' }, kind),
        el('span', { class: 'what' }, what, mark ? [' ', mark] : null),
        el('span', { class: 'meta' }, 'v', ev.version, ' · ', time(ev.timestamp), ' · ', eventLink(ev.id, shortID(ev.id)))),
      extra,
      el('details', { dataset: { part: 'data' } }, el('summary', null, 'data'), ev.erased
        ? el('p', { class: 'empty erased' }, 'Erased: the data and metadata of this event were erased with its stream; its id, type, position and timestamp stay.')
        : json(d)),
      processErased ? null : el('details', { class: 'state', dataset: { part: 'state' } }, el('summary', null, 'state after'), json(ev.state)));
  }

  async function processPage({ segs, params }, current) {
    const [, name, id] = segs;
    if (id === 'parked') {
      // GET /v1/processes/{name}/parked is the manager's parked commands: that route
      // takes the path, and the API cannot read a process of this id.
      show('process', el('h1', null, el('span', { class: 'kind' }, 'Process'), name + '$' + id),
        el('p', { class: 'empty', id: 'cannot-read' }, 'The API cannot read a process whose id is parked: its address is that of the parked commands of ', name,
          ' (', el('a', { href: '#/parked' }, 'these'), '). Its stream shows what it handled: ', streamLink(name + '$' + id), '.'));
      return;
    }
    if (dotSegment(name) || dotSegment(id)) {
      show('process', el('h1', null, el('span', { class: 'kind' }, 'Process'), name + '$' + id),
        el('p', { class: 'empty', id: 'cannot-read' }, 'A browser cannot open a process whose ', dotSegment(id) ? 'id' : 'manager', ' is ',
          el('code', null, dotSegment(id) ? id : name), ': it takes that, even escaped, for a step in the address, so this page cannot ask the API for it. ',
          el('code', null, `pmd process ${name} ${id}`), ' shows it; its stream shows what it handled: ', streamLink(name + '$' + id), '.'));
      return;
    }
    const before = params.get('before') || null; // ?before= empty: the newest page
    const view = el('div');
    const result = el('div', { id: 'action-result', role: 'status', hidden: true });
    const stale = notCurrent(current);
    const actions = actor(result, current, () => stale.reload(load));
    const load = async (fresh = () => true) => {
      // A long process is shown a page at a time, the newest first: the daemon never
      // loads every event of its stream for one page.
      let p;
      try {
        p = await api('processes/' + encodeURIComponent(name) + '/' + encodeURIComponent(id), { before, limit: params.get('limit') });
      } catch (e) {
        if (e.code !== 'not_found' || !current() || !fresh()) throw e;
        show('process', el('h1', null, el('span', { class: 'kind' }, 'Process'), name + '$' + id),
          el('p', { class: 'empty', id: 'not-found' }, 'No such process: ', e.message, '.'));
        return null;
      }
      if (!current() || !fresh()) return null;
      const commands = new Map(p.commands.map((c) => [c.id, c]));
      // The daemon pages the commands of a process with many, in the order issued: those
      // of the events shown are then read from the first event's version on.
      if (p.commands_next !== null && p.commands_next !== undefined && p.events.length
        && p.events.some((ev) => (ev.metadata || {}).pm_kind === 'command' && !commands.has(ev.id))) {
        const more = await api('processes/' + encodeURIComponent(name) + '/' + encodeURIComponent(id),
          { before, limit: params.get('limit'), commands_from: p.events[0].version });
        if (!current() || !fresh()) return null;
        for (const c of more.commands) commands.set(c.id, c);
      }
      // The newest page holds an event whenever the stream holds one it can show. An
      // empty one is a process held at its first event (the definition panicked there),
      // of which nothing was written, or one whose stream's retention hides every record
      // (a process with no stream is not found unless it is held). The route sends no
      // version to say so.
      const shownNone = before === null && p.events.length === 0 && !p.erased && !(p.damaged && p.damaged.length);
      const unwritten = shownNone && !!p.panic;
      const retained = shownNone && !p.panic;
      // A live reload keeps open what the reader opened.
      const open = new Set([...view.querySelectorAll('#timeline > li details[open]')]
        .map((d) => d.closest('li').dataset.id + ' ' + d.dataset.part));
      // replaceChildren would show a null as the text "null": the absent parts are left out.
      view.replaceChildren(...[
        el('h1', null, el('span', { class: 'kind' }, 'Process'), p.stream),
        el('dl', { class: 'facts' },
          el('dt', null, 'Status'), el('dd', { id: 'status' }, processStatus(p)),
          el('dt', null, 'Process manager'), el('dd', null, el('a', { href: href(['processes', p.manager]) }, p.manager)),
          el('dt', null, 'Stream'), el('dd', null, streamLink(p.stream)),
          el('dt', null, 'Commands'), el('dd', null, p.commands.length ? p.commands.map((c) => c.type).join(', ')
            + (p.commands_next !== null && p.commands_next !== undefined ? ', and more (see the timeline)' : '')
            : p.erased ? 'not known: the process stream was erased' : 'none yet')),
        // What the daemon passed over or holds the process for (older daemons say neither).
        p.panic
          ? el('p', { class: 'error', role: 'alert', id: 'panic' }, 'Held: the definition panicked for this process (', p.panic,
            '). Nothing is decided or issued for it until pmd starts again; the state shown is the one before the panic.')
          : null,
        p.damaged && p.damaged.length
          ? el('p', { class: 'error', id: 'damaged' }, `Damaged record${p.damaged.length > 1 ? 's' : ''} of the stream passed over: version `,
            p.damaged.join(', '), '. Missing from the timeline, with any command or deadline such a record held; the process manager stops at a record of its own until ',
            el('code', null, 'pmd repair'), '.')
          : null,
        el('h2', null, 'Timeline'),
        before !== null
          ? el('p', { class: 'pager' }, el('a', { href: href(['processes', name, id], { limit: params.get('limit') }), rel: 'first' }, '« newest'))
          : null,
        el('ol', { class: 'timeline', id: 'timeline' }, p.events.map((ev) => timelineEntry(ev, commands, (c) =>
          actions(`${c.type} of ${name}$${id}`, `processes/${encodeURIComponent(name)}/${encodeURIComponent(id)}/commands/${c.id}`, { command: c.id }), p.erased))),
        unwritten ? el('p', { class: 'empty', id: 'no-events' }, 'No event: nothing of this process was written yet.')
          : retained ? el('p', { class: 'empty', id: 'no-events' }, "No event shown: the stream's retention hides every record of it.") : null,
        p.older !== null && p.older !== undefined
          ? el('p', { class: 'pager' }, el('a', { href: href(['processes', name, id], { before: p.older, limit: params.get('limit') }), rel: 'next', id: 'older' }, 'older events »'))
          : null,
        el('h2', null, 'Pending deadlines'),
        p.deadlines.length
          ? table(['Due', 'Issues'], p.deadlines.map((d) => el('tr', null, el('td', { class: 'time' }, time(d.due)), el('td', null, d.issue))))
          : el('p', { class: 'empty', id: 'deadlines' }, p.erased ? 'None: the process stream was erased, which ended the process.' : 'None.'),
        el('h2', null, 'State now'),
        // The daemon shows no state of an erased process: it ended, and its state held
        // what the erasure was for.
        p.erased
          ? el('p', { class: 'empty', id: 'state' }, 'None: the process stream was erased, which ended the process.')
          : p.snapshot
            ? el('p', { id: 'snapshot' }, 'Folded from the snapshot of version ' + p.snapshot.version + ' (',
              el('a', { href: href(['events', p.snapshot.id]) }, 'written ', time(p.snapshot.timestamp)),
              '), then the events after it.')
            : unwritten
              ? el('p', { id: 'snapshot' }, "Its stream holds no event yet: the state is the one it starts from (Init's, or the zero state if Init panicked).")
              : retained
                ? el('p', { id: 'snapshot' }, 'Its stream shows no record (retention hides them): the state is the one it starts from.')
              : el('p', { id: 'snapshot' }, 'Folded from the first event of the stream.'),
        p.erased ? null : json(p.state)].filter((n) => n !== null));
      for (const d of view.querySelectorAll('#timeline > li details')) {
        if (open.has(d.closest('li').dataset.id + ' ' + d.dataset.part)) d.open = true;
      }
      return p;
    };
    const p = await load();
    if (!p) return;
    show('process', stale.node, result, view);
    if (before !== null) return; // an older page stays as it is
    // The timeline changes with the process stream (facts, commands, deadlines) and
    // with its deliveries stream (each delivery attempt).
    const reload = soon(() => stale.reload(load), 200);
    const next = p.events.length ? p.events[p.events.length - 1].version + 1 : 0;
    live({ stream: p.stream, from: next }, reload);
    // A process whose commands are not delivered has none (pm/view.go).
    if (p.deliveries_stream) live({ stream: p.deliveries_stream, from: p.deliveries_version + 1 }, reload);
  }

  // --- dashboard ---------------------------------------------------------------------

  // lineChart draws series over time with uPlot (vendored in /vendor/uplot) in
  // container, and returns a function that takes new data. Without uPlot (the script
  // did not load) it says so instead.
  function lineChart(container, series) {
    if (typeof uPlot !== 'function') {
      container.append(el('p', { class: 'empty' }, 'Charts are not available: the chart library did not load.'));
      return () => {};
    }
    const grid = { stroke: '#eef0f4', width: 1 };
    const plot = new uPlot({
      width: Math.max(container.clientWidth, 280),
      height: 130,
      scales: { x: { time: true } },
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5 }))],
      axes: [{ stroke: '#667085', grid, ticks: grid }, { stroke: '#667085', grid, ticks: grid, size: 56 }],
      legend: { show: true },
    }, [[], ...series.map(() => [])], container);
    cleanup.push(() => plot.destroy());
    return (data) => plot.setData(data);
  }

  // percent says a rate of failures: to a whole percent, to a tenth below 10%, and to
  // as many places as it takes for some but not all never to read as 0% or 100% (1 of
  // 2,500 is 0.04%, 2,499 of 2,500 99.96%).
  function percent(rate) {
    const p = rate * 100;
    let places = p > 0 && p < 10 ? 1 : 0;
    while (rate > 0 && rate < 1 && [0, 100].includes(Number(p.toFixed(places)))) places++;
    return p.toFixed(places) + '%';
  }

  // failures says how a manager's deliveries went over the window.
  function failures(m) {
    if (m.failure_rate === null) {
      return el('span', { class: 'meta', title: `no delivery attempt in the last ${span(m.window_seconds * 1000)}` }, '–');
    }
    return el('span', { class: m.window_failures ? 'bad' : 'ok', title: `over the last ${span(m.window_seconds * 1000)}` },
      percent(m.failure_rate),
      el('span', { class: 'meta' }, ` (${m.window_failures} of ${m.window_attempts})`));
  }

  function figure(label, value, id) {
    return el('div', null, el('dt', null, label), el('dd', { id }, value));
  }

  // dashboardPage answers "is everything healthy, what is stuck, what is behind" from
  // GET /v1/stats, asked again every two seconds.
  async function dashboardPage(_, current) {
    const first = await api('stats');
    if (!current()) return;
    const figures = el('dl', { class: 'figures' });
    const health = el('div', { id: 'health' });
    const writes = el('div', { class: 'chart', id: 'chart-writes' }, el('div', { class: 'title' }, 'Log records written per second'));
    const commits = el('div', { class: 'chart', id: 'chart-commits' }, el('div', { class: 'title' }, 'Group commit (write and fsync), ms'));
    const managersPanel = el('section', { class: 'panel', id: 'managers' });
    const subsPanel = el('section', { class: 'panel', id: 'subscriptions' });
    const clusterPanel = el('section', { class: 'panel', id: 'cluster' });
    let drawWrites = null;
    let drawCommits = null;

    const update = (st) => {
      const s = st.store;
      figures.replaceChildren(
        figure('Events', count(s.events), 'store-events'),
        figure('Streams', count(s.streams), 'store-streams'),
        figure('Disk', bytes(s.disk_bytes), 'store-disk'),
        figure('Segments', count(s.segments), 'store-segments'),
        figure('Last position', count(s.last_position), 'store-position'),
        figure('Write failures', count(s.write_failures), 'store-failures'));
      health.dataset.status = st.health.status;
      health.replaceChildren(...(st.health.status === 'ok'
        ? [el('p', { class: 'ok' }, '● healthy: no damage found, writes succeed')]
        : [el('p', { class: 'bad' }, '● degraded'), el('ul', { class: 'problems' }, st.health.problems.map((p) => el('li', null, p)))]));
      const x = st.series.time;
      if (drawWrites) drawWrites([x, st.series.records_per_second, st.series.writes_per_second]);
      if (drawCommits) drawCommits([x, st.series.commit_mean_ms, st.series.commit_max_ms]);

      // A cluster runs its process managers and subscriptions on the leader; a follower's
      // stats list none, as it cannot say how they stand.
      const c = st.cluster;
      const leader = c && c.leader_id !== c.node_id ? c.nodes.find((n) => n.id === c.leader_id) : null;
      const elsewhere = c && c.leader_id !== c.node_id && st.processes.length === 0
        ? el('p', { class: 'empty', id: 'on-leader' }, 'The process managers and subscriptions of a cluster, if its config has any, run on the leader, ',
          c.leader_id ? [c.leader_id, leader ? [' (', el('code', null, leader.http_addr), ')'] : null,
            ': its dashboard shows how they stand, and the Process managers and Parked pages of this node ask it.']
            : 'and no leader is known now.')
        : null;
      managersPanel.replaceChildren(el('h2', null, 'Process managers'), elsewhere || (st.processes.length
        ? table(['Process manager', 'Open', 'Completed', 'Expired', 'Lag', 'Parked', 'Delivery failures'], st.processes.map((m) => el('tr', { dataset: { manager: m.name } },
          el('td', null, el('a', { href: href(['processes', m.name]) }, m.name)),
          el('td', { class: 'num open' }, el('a', { href: href(['processes', m.name], { status: 'open', sort: 'age' }), title: 'the open ones, oldest first' }, count(m.open))),
          el('td', { class: 'num completed' }, count(m.completed)),
          el('td', { class: 'num expired' }, count(m.expired)),
          lagCell(m.lag),
          el('td', { class: 'num parked' + (m.parked > 0 ? ' warn' : '') }, m.parked > 0 ? el('a', { href: '#/parked' }, count(m.parked)) : '0'),
          el('td', { class: 'num failures' }, failures(m)))))
        : el('p', { class: 'empty' }, 'The daemon runs no process manager: start it with pmd serve --config FILE.')));

      subsPanel.hidden = st.subscriptions.length === 0;
      subsPanel.replaceChildren(el('h2', null, 'Subscriptions'), table(['Subscription', 'Delivers', 'Status', 'Position', 'Lag', 'Parked', 'Last error'],
        st.subscriptions.map((sub) => el('tr', { dataset: { subscription: sub.name } },
          el('td', null, sub.name),
          el('td', null, sub.filter.types && sub.filter.types.length ? sub.filter.types.join(', ')
            : sub.filter.stream ? ['stream ', streamLink(sub.filter.stream)] : sub.filter.category ? 'category ' + sub.filter.category : ''),
          el('td', { class: 'status ' + (sub.status === 'delivering' ? 'ok' : 'bad') }, sub.status === 'failing'
            ? el('a', { href: '#/parked', title: 'the event it is failing on, with Retry and Skip' }, sub.status) : sub.status),
          el('td', { class: 'num' }, count(sub.position)),
          lagCell(sub.lag),
          el('td', { class: 'num parked' + (sub.parked > 0 ? ' warn' : '') }, sub.parked > 0 ? el('a', { href: '#/parked' }, count(sub.parked)) : '0'),
          el('td', { class: 'last-error' }, sub.last_error
            ? [el('span', { class: 'preview', title: sub.last_error }, sub.last_error), el('span', { class: 'meta' }, ' at '), time(sub.last_error_at),
              sub.retry_at ? [el('span', { class: 'meta' }, ' · retry at '), time(sub.retry_at)] : null]
            : el('span', { class: 'meta' }, 'none'))))));

      // A single node has no cluster panel; a node of a cluster shows every node.
      clusterPanel.hidden = !c;
      clusterPanel.replaceChildren(...(c ? [
        el('h2', null, 'Cluster'),
        el('p', { class: 'hint' }, `This is node ${c.node_id}; `, c.leader_id ? `the leader is ${c.leader_id}` : el('span', { class: 'bad' }, 'no leader is known'),
          `; commit index ${count(c.commit_index)}, applied ${count(c.applied_index)}.`),
        table(['Node', 'State', 'HTTP', 'Raft', 'Applied index', 'Lag'], c.nodes.map((n) => el('tr', { dataset: { node: n.id, state: n.state } },
          el('td', null, n.id, n.id === c.node_id ? el('span', { class: 'meta' }, ' (this node)') : null),
          el('td', { class: n.state === 'leader' || n.state === 'follower' ? 'ok' : 'bad' }, n.state),
          el('td', { class: 'mono' }, n.http_addr), el('td', { class: 'mono' }, n.raft_addr),
          el('td', { class: 'num' }, n.applied_index === null ? '–' : count(n.applied_index)),
          // Counted in Raft entries, where a process manager's lag is in log positions.
          // Only the leader knows it, of the nodes that answered it (applied_index).
          el('td', { class: 'num lag' + (n.lag > 0 ? ' warn' : ''), title: n.lag !== null ? 'Raft log entries behind the commit index'
            : n.applied_index === null ? 'not known: the node did not answer within a second'
              : "not known: only the leader knows a node's lag" }, n.lag === null ? '–' : count(n.lag))))),
      ] : []));
    };

    show('dashboard', el('h1', null, 'Dashboard'),
      el('div', { class: 'panels' },
        el('section', { class: 'panel', id: 'store' }, el('h2', null, 'Store'), figures, writes, commits),
        el('section', { class: 'panel' }, el('h2', null, 'Health'), health)),
      managersPanel, subsPanel, clusterPanel);
    drawWrites = lineChart(writes, [{ label: 'records/s', color: '#24508f' }, { label: 'writes/s', color: '#2f7d4f' }]);
    drawCommits = lineChart(commits, [{ label: 'mean', color: '#8a4b0f' }, { label: 'max', color: '#b42318' }]);
    update(first);
    main.dataset.updated = first.time;
    // The next poll is asked for two seconds after the answer to the last: a slow daemon
    // gets one request at a time. A hidden tab asks for nothing (the stats of a cluster
    // node ask every other node): a poll that comes due then waits, said by the badge,
    // until the tab is shown.
    let timer = null;
    let due = false;
    const later = () => {
      timer = setTimeout(() => {
        if (!document.hidden) {
          poll();
          return;
        }
        due = true;
        setLive('paused');
      }, 2000);
    };
    const shown = () => {
      if (document.hidden || !due) return;
      due = false;
      setLive(null);
      poll();
    };
    const poll = () => api('stats').then((st) => {
      if (!current()) return;
      update(st);
      main.dataset.updated = st.time;
      later();
    }, (e) => {
      if (!current()) return;
      // A token revoked or narrowed since: the page asks for another, the store is fine.
      if (refused(e)) return;
      // The stats fail where /healthz does (the store is closed), or the daemon is
      // gone: the last figures stay, and health says why they are not current.
      health.dataset.status = 'unavailable';
      health.replaceChildren(el('p', { class: 'bad' }, '● unavailable'), errorBox(e));
      later();
    });
    later();
    document.addEventListener('visibilitychange', shown);
    cleanup.push(() => {
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', shown);
      delete main.dataset.updated;
    });
  }

  // --- parked --------------------------------------------------------------------------

  // actor makes the Retry and Skip buttons of a page's commands or subscription events:
  // result says how each action went, and reload reads the page again after any
  // answer, since a refusal too says it changed. The buttons wait for the answer, so a
  // second click cannot send an action again (and read as a refusal of one that was done).
  function actor(result, current, reload) {
    const act = async (label, path, holder) => {
      for (const b of holder.querySelectorAll('button.action')) b.disabled = true;
      result.hidden = false;
      result.className = 'result';
      delete result.dataset.outcome;
      result.textContent = label + '…';
      let r;
      try {
        r = await post(path);
      } catch (e) {
        // fetch failed before an answer: the daemon is gone, or the token cannot be sent
        r = { ok: false, unreached: e };
      }
      if (!current()) return;
      result.dataset.outcome = r.ok ? 'done' : 'failed';
      result.className = 'result ' + result.dataset.outcome;
      if (r.ok) {
        result.textContent = label + ': done.';
      } else if (r.unreached) {
        result.textContent = `${label}: failed: could not reach pmd: ${r.unreached.message}.`;
      } else {
        const tokenHelp = r.status === 401 || r.status === 403
          ? [' It needs a token with the admin scope. ', anotherToken('use-token')]
          : null;
        result.replaceChildren(el('span', null, `${label}: refused: ${r.code || r.status}: ${r.message}.`, tokenHelp));
      }
      try {
        await reload();
      } finally {
        // A reload that failed left the row on the page: its buttons work again.
        if (holder.isConnected) {
          for (const b of holder.querySelectorAll('button.action')) b.disabled = false;
        }
      }
    };
    const button = (action, text, label, path, data) => el('button', {
      class: 'action', type: 'button', dataset: Object.assign({ action }, data),
      onclick: (e) => act(`${text} ${label}`, `${path}/${action}`, e.currentTarget.parentElement),
    }, text);
    return (label, path, data) => [button('retry', 'Retry', label, path, data), button('skip', 'Skip', label, path, data)];
  }

  // parkedPage lists the parked commands of every process manager and the parked events
  // of every subscription, each with Retry and Skip (an admin token when the daemon
  // runs with --auth), and says how each action went. A manager's commands come 200 a
  // page, with a link to the next (?manager=NAME&from=P: that manager's from position P,
  // the others' first page).
  async function parkedPage({ params }, current) {
    const pagedManager = params.get('manager');
    const pagedFrom = /^\d+$/.test(params.get('from') || '') ? params.get('from') : '0';
    const pageFrom = (name) => (name === pagedManager ? pagedFrom : null);
    const from = await endOfLog();
    const result = el('div', { id: 'action-result', role: 'status', hidden: true });
    const body = el('div');
    // A reload that fails (after an action, or live) keeps the list, paging links and
    // all, and says it is not current.
    const stale = notCurrent(current);
    const reload = () => stale.reload(load);
    const later = soon(reload, 500);
    const actions = actor(result, current, reload);
    const buttons = (label, path, data) => el('td', { class: 'actions' }, actions(label, path, data));
    let failing = new Set(); // the streams of the subscriptions shown failing on an event
    // The subscription streams whose positions (SubscriptionPosition) came since the
    // latest read of the page began: that read may have found one failing before its
    // delivery.
    let moved = new Set();
    const load = async (fresh = () => true) => {
      moved = new Set();
      const [managers, subs] = await Promise.all([api('processes'), api('subscriptions')]);
      const commands = await Promise.all(managers.processes.map((m) =>
        api('processes/' + encodeURIComponent(m.name) + '/parked', { limit: 200, from: pageFrom(m.name) }).then((r) => ({ name: m.name, r }))));
      const events = await Promise.all(subs.subscriptions.filter((sub) => sub.parked > 0 || sub.status === 'failing').map((sub) =>
        api('subscriptions/' + encodeURIComponent(sub.name)).then((d) => ({ name: sub.name, d }))));
      if (!current() || !fresh()) return;
      failing = new Set(events.filter(({ d }) => d.failing_event).map(({ d }) => d.stream));
      if ([...moved].some((stream) => failing.has(stream))) later();
      const sections = [];
      for (const { name, r } of commands) {
        const at = pageFrom(name);
        if (r.parked.length === 0 && (at === null || r.total === 0)) continue;
        const counted = at !== null
          ? ` (${r.parked.length} of ${r.total}, from position ${at} on)`
          : r.total > r.parked.length ? ` (the first ${r.parked.length} of ${r.total})` : null;
        sections.push(el('h2', null, `Commands of ${name}`, counted ? el('span', { class: 'meta' }, counted) : null),
          r.parked.length === 0 ? el('p', { class: 'empty', dataset: { manager: name } }, 'None from there on: they were retried or skipped.') : table(['Process', 'Command', 'Id', 'Attempts', 'Last error', ''], r.parked.map((c) => el('tr', { dataset: { command: c.id, manager: name, process: c.process_id } },
            el('td', { class: 'name' }, el('a', { href: href(['processes', name, c.process_id]) }, c.process_id)),
            el('td', null, c.type, c.receiver ? el('span', { class: 'meta' }, ' → ' + c.receiver) : null),
            el('td', { class: 'id mono', title: c.id }, shortID(c.id)),
            el('td', { class: 'num' }, c.attempts),
            el('td', { class: 'preview', title: c.error }, c.error),
            dotSegment(name) || dotSegment(c.process_id)
              ? el('td', { class: 'actions cannot-act' }, 'A browser cannot retry or skip a command of a process whose id or manager is . or ..: ',
                el('code', null, `pmd retry ${name} ${c.process_id} ${c.id}`), ' can.')
              : buttons(`${c.type} of ${name}$${c.process_id}`,
                `processes/${encodeURIComponent(name)}/${encodeURIComponent(c.process_id)}/commands/${c.id}`, { command: c.id })))),
          at !== null || r.next !== null ? pager([
            at !== null ? el('a', { href: href(['parked']), class: 'first-parked', dataset: { manager: name } }, '« first') : null,
            r.next !== null ? el('a', { href: href(['parked'], { manager: name, from: r.next }), class: 'next-parked', dataset: { manager: name } }, 'next »') : null]) : null);
      }
      // A subscription's parked events, and the event it is failing on (not parked yet:
      // retried at its next attempt time), each with the same Retry and Skip.
      const subEvent = (name, ev, state, next) => el('tr', { dataset: { event: ev.id, subscription: name, state } },
        el('td', { class: 'id' }, eventLink(ev.id, shortID(ev.id))),
        el('td', null, ev.type),
        el('td', { class: 'name' }, streamLink(ev.stream)),
        el('td', { class: 'num' }, ev.attempts),
        el('td', { class: 'preview', title: ev.error }, ev.error, next),
        buttons(`${ev.type} for ${name}`, `subscriptions/${encodeURIComponent(name)}/events/${ev.id}`, { event: ev.id }));
      const headers = ['Event', 'Type', 'Stream', 'Attempts', 'Last error', ''];
      for (const { name, d } of events) {
        const f = d.failing_event;
        if (f) {
          sections.push(el('h2', null, `Event subscription ${name} is failing on`),
            table(headers, [subEvent(name, f, 'failing', el('span', { class: 'meta next-attempt' },
              f.retry_at ? [' · next attempt ', time(f.retry_at)] : ' · being attempted again'))]));
        }
        if (d.parked_events.length === 0) continue;
        sections.push(el('h2', null, `Events of subscription ${name}`),
          table(headers, d.parked_events.map((ev) => subEvent(name, ev, 'parked', null))));
      }
      body.replaceChildren(...(sections.length ? sections
        : [el('p', { class: 'empty', id: 'none-parked' }, 'Nothing is parked: every command and subscription event is delivered or still being tried.')]));
    };
    await load();
    if (!current()) return;
    show('parked', el('h1', null, 'Parked'),
      el('p', { class: 'hint' }, 'Commands and subscription events that failed their max_attempts deliveries in a row, and the event each failing subscription is still retrying. Retry delivers one again at once; Skip gives it up for good. Both are recorded, and show in the timeline (a subscription\'s in its stream).'),
      result, stale.node, body);
    // What it lists changes with the records written when a command or subscription
    // event parks, is retried or skipped, and when a subscription's attempt fails (the
    // event it is failing on): the page follows them live. A failing event delivered at
    // last writes none of them, only the subscription's position (SubscriptionPosition
    // in its stream <name>.subscription, written once the position moves past it): the
    // page follows those too, and reads itself again at one of a subscription it shows
    // failing, or once a read under way when it came finds that subscription failing
    // (the read may have found it so before the delivery, and sets what it shows failing
    // only once done). The others, every second while events flow, it passes over: a
    // position of another subscription during a read does not read the page again, or
    // reads slower than a second would follow each other for good.
    const records = ['CommandParked', 'CommandRetried', 'CommandSkipped', 'EventDeliveryFailed', 'EventParked', 'EventRetried', 'EventSkipped'];
    live(Object.assign(typeParams([...records, 'SubscriptionPosition']), { from }), (ev) => {
      if (ev.type !== 'SubscriptionPosition' || failing.has(ev.stream)) later();
      else moved.add(ev.stream);
    }, true);
  }

  // --- search ----------------------------------------------------------------------------

  // searchPage finds what q names: an event by id (shown at once), streams whose names
  // start with q, and processes of id q, and says so when there is nothing. What the
  // tab's token may not look at (403: a token limited to streams may not look events up
  // by id, list the streams of a prefix outside its own, nor list the process managers)
  // is said in its place, and so is what could not be read (a 503 while the leader
  // changes, the daemon unreachable), and the rest shown: the search is not given up to
  // Not allowed or to an error page.
  async function searchPage({ params }, current) {
    const q = (params.get('q') || '').trim();
    document.getElementById('search').value = q;
    if (q === '') {
      show('search', el('h1', null, 'Search'), el('p', { class: 'empty' }, 'Type an event id, the start of a stream name, or a process id in the box above.'));
      return;
    }
    const notAllowed = []; // what the token refused, said where it would have shown
    const unread = []; // what failed otherwise, said there too
    // unreadable notes the failure e of what (its notice's id is id-not-allowed or
    // id-failed) and returns fallback; a 401 is the page's to ask for a token.
    const unreadable = (id, what, e, fallback) => {
      if (e.status === 401) throw e;
      if (e.status === 403) {
        notAllowed.push(el('div', { class: 'error', role: 'alert', id: id + '-not-allowed' }, `${what}: not allowed to the token of this tab: ${errorText(e)}`));
      } else {
        unread.push(el('div', { class: 'error', role: 'alert', id: id + '-failed' }, `${what}: could not be read: ${errorText(e)}`));
      }
      return fallback;
    };
    let eventUnread = false;
    if (UUID.test(q)) {
      try {
        await api('events/' + encodeURIComponent(q));
        if (current()) location.replace(href(['events', q]));
        return;
      } catch (e) {
        if (e.status !== 404) eventUnread = unreadable('event', 'An event by its id', e, true);
      }
    }
    const [streams, names] = await Promise.all([
      api('streams', { prefix: q, limit: 20 }).catch((e) => unreadable('streams', `Streams whose names start with “${q}”`, e, { streams: [], next: null })),
      managers().catch((e) => unreadable('processes', 'Processes of this id', e, null))]);
    // A process of id parked cannot be read: that address is the parked commands; nor
    // one of id . or .. (dotSegment). A manager whose process could not be read is
    // said once, by name.
    const lookups = q === 'parked' || dotSegment(q) || names === null ? [] : await Promise.all(names.filter((name) => !dotSegment(name)).map((name) =>
      api('processes/' + encodeURIComponent(name) + '/' + encodeURIComponent(q), { limit: 1 })
        .then(() => name, (e) => {
          if (e.status === 401) throw e;
          return e.status === 404 || e.status === 400 ? null : { name, e };
        })));
    const processes = lookups.filter((l) => typeof l === 'string');
    const failedLookups = lookups.filter((l) => l !== null && typeof l === 'object');
    if (failedLookups.length) {
      unreadable('processes', `Processes of this id (of ${failedLookups.map((l) => l.name).join(', ')})`, failedLookups[0].e, null);
    }
    if (!current()) return;
    const found = [];
    if (processes.length) {
      found.push(el('h2', null, 'Processes'), el('ul', { id: 'found-processes' }, processes.map((name) =>
        el('li', null, el('a', { href: href(['processes', name, q]) }, `${name}$${q}`), el('span', { class: 'meta' }, ' — its timeline')))));
    }
    if (streams.streams.length) {
      found.push(el('h2', null, 'Streams'), el('ul', { id: 'found-streams' }, streams.streams.map((st) =>
        el('li', null, streamLink(st.name), st.exists ? null : el('span', { class: 'mark deleted' }, 'deleted')))),
      streams.next !== null ? el('p', null, el('a', { href: href(['streams'], { prefix: q }) }, 'More streams starting with it')) : null);
    }
    show('search', el('h1', null, el('span', { class: 'kind' }, 'Search'), q),
      UUID.test(q) && !eventUnread ? el('p', { class: 'empty', id: 'no-event' }, 'No stored event has this id.') : null,
      dotSegment(q) ? el('p', { class: 'empty', id: 'cannot-search' }, 'A browser cannot look up a process of id ', el('code', null, q),
        ': it takes that, even escaped, for a step in the address. ', el('code', null, `pmd process NAME ${q}`), ' can.') : null,
      ...notAllowed, notAllowed.length ? el('p', null, anotherToken('use-token')) : null, ...unread,
      ...(found.length ? found : [el('p', { class: 'empty', id: 'nothing-found' }, unread.length
        ? 'Nothing found among what could be read.'
        : notAllowed.length ? 'Nothing found among what the token of this tab may see.'
          : 'Nothing found: no event has this id, no stream name starts with it' + (dotSegment(q) ? '.' : ', and no process manager has a process of this id.'))]));
  }

  function notFound() {
    show('not-found', el('h1', null, 'No such page'), el('p', null, el('a', { href: '#/' }, 'Dashboard'), ' · ', el('a', { href: '#/streams' }, 'Streams')));
  }

  // routes maps the first path segment and the number of segments to a page.
  const routes = {
    dashboard: [dashboardPage],
    parked: [parkedPage],
    search: [searchPage],
    streams: [streamsPage, streamPage],
    events: [null, eventPage],
    all: [allPage],
    categories: [null, categoryPage],
    processes: [processesPage, processListPage, processPage],
  };

  // anotherToken is the button that forgets the tab's token and asks for another.
  const anotherToken = (id) => el('button', {
    class: 'action', id, type: 'button',
    onclick: () => { sessionStorage.removeItem(TOKEN); tokenControl(); tokenPage(false); },
  }, 'Use another token');

  // tokenControl shows, in the header, the way to change the tab's token while it has one.
  function tokenControl() {
    const slot = document.getElementById('token-slot');
    slot.replaceChildren(token() ? anotherToken('header-token') : '');
  }

  // refused handles an answer of 401 or 403 to what a page asked: 401 asks for a token
  // (saying the one given was refused), 403 says what the token may not do and offers
  // another. It returns false for any other error.
  function refused(e) {
    if (e.status === 401) {
      const given = token() !== null;
      sessionStorage.removeItem(TOKEN);
      tokenControl();
      tokenPage(given);
      return true;
    }
    if (e.status === 403) {
      show('forbidden', el('h1', null, 'Not allowed'), errorBox(e),
        el('p', null, token() ? 'The token of this tab does not reach this page. ' : 'pmd refuses this page. ', anotherToken('use-token')));
      return true;
    }
    return false;
  }

  // leave closes the subscriptions of the page shown and stops its timers.
  function leave() {
    dropKept();
    for (const f of cleanup.splice(0)) f();
    subs = [];
    setLive(null);
  }

  // dropKept leaves the page kept on screen while it was read again.
  function dropKept() {
    if (!kept) return;
    const old = kept;
    kept = null;
    for (const f of old.cleanup) f();
  }

  // resumeKept puts back the page kept on screen, whose read again failed (e, before it
  // showed anything): its subscriptions resume from after their last event, as if the
  // tab had not been hidden, asked for again, later each time, until the daemon answers:
  // it comes back by itself, where an error page would stay with nothing asked again.
  function resumeKept(e) {
    for (const f of cleanup.splice(0)) f(); // what the failed read had started
    ({ cleanup, subs } = kept);
    kept = null;
    const open = subs.filter((sub) => !sub.done);
    if (e) for (const sub of open) sub.problem = errorText(e);
    if (document.hidden) {
      setLive('paused'); // hidden again meanwhile: shown, it is read again
      return;
    }
    setLive(false);
    for (const sub of open) {
      if (!sub.close) connect(sub);
    }
  }

  // failedRoute is the address whose page failed to read, and how many times in a row.
  const failedRoute = { hash: null, count: 0 };

  // errorPage shows the error that kept the page of the address from being read. One
  // that a later read may not meet (transient) is read again, later each time (1s, 2s,
  // … up to 30s), not while the tab is hidden: the page comes back by itself, where it
  // stayed an error page until read again by hand.
  function errorPage(e) {
    if (failedRoute.hash !== location.hash) Object.assign(failedRoute, { hash: location.hash, count: 0 });
    const again = transient(e);
    const wait = Math.min(1000 * 2 ** failedRoute.count++, 30000);
    show('error', errorBox(e), again
      ? el('p', { class: 'hint', id: 'read-again' }, `Read again in ${wait / 1000}s, and later each time while it fails.`) : null);
    if (!again) return;
    const seq = renderSeq;
    let timer = null;
    const read = () => {
      timer = document.hidden ? setTimeout(read, wait) : null;
      if (timer === null && seq === renderSeq) route();
    };
    timer = setTimeout(read, wait);
    cleanup.push(() => clearTimeout(timer));
  }

  // route shows the page of the address. inPlace (true) reads the page shown again, its
  // tab shown after it was hidden: it stays on screen until the new read is shown, and
  // if that read fails, is resumed (resumeKept).
  async function route(inPlace) {
    let seq = renderSeq;
    let failed = false;
    if (inPlace === true) {
      kept = { cleanup: cleanup.splice(0), subs };
      subs = [];
      setLive(false);
    } else {
      leave();
      seq = ++renderSeq;
      delete main.dataset.page;
      delete main.dataset.route;
    }
    const mine = kept;
    tokenControl();
    const current = () => seq === renderSeq && !failed;
    let r;
    try {
      r = parseRoute();
    } catch (_) {
      show('error', errorBox(new Error('This address is not valid: a part of it is wrongly escaped.')));
      return;
    }
    if (r.segs.length === 0) r.segs = ['dashboard'];
    for (const a of document.querySelectorAll('header nav a')) {
      a.classList.toggle('current', a.id === 'nav-' + r.segs[0]);
    }
    const page = (routes[r.segs[0]] || [])[r.segs.length - 1];
    if (!page) {
      notFound();
      return;
    }
    document.title = 'pmd · ' + r.segs.slice(1).concat(r.segs[0]).join(' · ');
    try {
      await page(r, current);
    } catch (e) {
      if (!current()) return;
      if (mine && kept === mine && e.status !== 401 && e.status !== 403) {
        failed = true;
        resumeKept(e);
        return;
      }
      if (refused(e)) return;
      errorPage(e);
      return;
    }
    if (failedRoute.hash === location.hash) failedRoute.count = 0;
    // Read again, it showed nothing (it went to another address): the page stays, resumed.
    if (mine && kept === mine && current()) {
      failed = true;
      resumeKept(null);
    }
  }

  document.getElementById('search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const q = document.getElementById('search').value.trim();
    if (q !== '') location.hash = href(['search'], { q });
  });
  window.addEventListener('hashchange', route);
  route();
})();
