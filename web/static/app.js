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
    return s === '{}' ? '' : s.length > 160 ? s.slice(0, 160) + '…' : s;
  }

  function time(ts) {
    // 2024-05-01T10:11:12.123456789Z → 2024-05-01 10:11:12.123Z; the full value on hover.
    const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d{1,3})?\d*Z$/.exec(ts || '');
    return el('span', { title: ts }, m ? `${m[1]} ${m[2]}${m[3] || ''}Z` : ts || '');
  }

  function errorBox(err) {
    return el('div', { class: 'error', role: 'alert' },
      err.code ? `${err.code}: ${err.message}` : String(err.message || err));
  }

  // --- URLs --------------------------------------------------------------------------

  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) {
      if (v !== null && v !== undefined && v !== '') q.set(k, String(v));
    }
    const s = q.toString();
    return s ? '?' + s : '';
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
  const streamLink = (name) => el('a', { href: href(['streams', name]), class: 'stream' }, name);
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

  function authHeaders(headers) {
    const t = token();
    return t ? Object.assign(headers, { Authorization: 'Bearer ' + t }) : headers;
  }

  async function api(path, params) {
    const res = await fetch('/v1/' + path + query(params), { headers: authHeaders({ Accept: 'application/json' }) });
    let body = null;
    try {
      body = await res.json();
    } catch (_) {
      // not JSON: the status says enough
    }
    if (!res.ok) {
      const err = new Error((body && body.message) || `${res.status} ${res.statusText}`);
      err.code = body && body.error;
      err.status = res.status;
      throw err;
    }
    return body;
  }

  const streamPath = (name) => 'streams/' + encodeURIComponent(name);

  // endOfLog is the position a live subscription to $all starts at to see only events
  // written from now on.
  async function endOfLog() {
    const r = await api('all', { direction: 'backward', limit: 1 });
    return r.events.length ? r.events[0].position + 1 : 0;
  }

  // managers caches the process manager names for the page's lifetime: they come from
  // the daemon's config and only change with a restart.
  let managersPromise = null;
  function managers() {
    managersPromise = managersPromise || api('processes').then(
      (r) => r.processes.map((m) => m.name),
      () => { managersPromise = null; return []; });
    return managersPromise;
  }

  // --- page lifecycle ----------------------------------------------------------------

  let cleanup = []; // run when the page is left: close subscriptions, stop timers
  let renderSeq = 0; // which navigation is current; late answers of earlier ones are dropped

  function setLive(state) {
    liveBadge.textContent = state === null ? '' : state ? '● live' : '○ reconnecting…';
    liveBadge.className = state === false ? 'live down' : 'live';
  }

  // live follows a subscription for as long as the page is shown. EventSource
  // reconnects by itself, resuming after the last id it saw; it cannot send a token, so
  // with one the subscription is read with fetch, and resumed the same way.
  function live(params, onEvent) {
    if (token()) {
      liveWithToken(params, onEvent);
      return;
    }
    const es = new EventSource('/v1/subscribe' + query(params));
    es.onopen = () => setLive(true);
    es.onerror = () => setLive(false);
    es.onmessage = (m) => {
      let ev;
      try {
        ev = JSON.parse(m.data);
      } catch (_) {
        return;
      }
      onEvent(ev);
    };
    cleanup.push(() => { es.close(); setLive(null); });
  }

  function liveWithToken(params, onEvent) {
    const ctrl = new AbortController();
    let lastID = null;
    let stopped = false;
    cleanup.push(() => { stopped = true; ctrl.abort(); setLive(null); });
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
      if (type !== 'message' || data === '') return;
      if (id !== null) lastID = id;
      let ev;
      try {
        ev = JSON.parse(data);
      } catch (_) {
        return;
      }
      onEvent(ev);
    };
    (async () => {
      while (!stopped) {
        try {
          const headers = authHeaders({ Accept: 'text/event-stream' });
          if (lastID !== null) headers['Last-Event-ID'] = lastID;
          const res = await fetch('/v1/subscribe' + query(params), { headers, signal: ctrl.signal });
          if (res.ok) {
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
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    })();
  }

  // tokenPage asks for the token of a daemon run with --auth. refused says the one
  // given was not accepted.
  function tokenPage(refused) {
    const input = el('input', { type: 'password', id: 'token', autocomplete: 'off', 'aria-label': 'token', placeholder: 'token' });
    const form = el('form', { class: 'token' },
      el('p', null, refused
        ? 'The token was refused. Give another one.'
        : 'This pmd needs a token (it runs with --auth). It is kept for this tab only.'),
      input, ' ', el('button', { type: 'submit' }, 'Use token'));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (input.value.trim() === '') return;
      sessionStorage.setItem(TOKEN, input.value.trim());
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
  function show(page, ...nodes) {
    main.replaceChildren(...nodes.filter(Boolean));
    main.dataset.page = page;
    main.dataset.route = location.hash;
  }

  function pager(links) {
    return el('div', { class: 'pager' }, links.filter(Boolean));
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
      const r = await api('streams', { prefix, after, limit });
      if (!current() || mine !== loads) return false;
      const rows = r.streams.map((s) => el('tr', { dataset: { stream: s.name } },
        el('td', { class: 'name' }, streamLink(s.name), s.exists ? null : el('span', { class: 'mark deleted' }, 'deleted')),
        el('td', { class: 'num' }, s.version)));
      body.replaceChildren(
        rows.length ? table(['Stream', 'Last version'], rows)
          : el('p', { class: 'empty' }, prefix ? `No stream starts with “${prefix}”.` : 'No streams yet.'),
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
        load('').then((shown) => { if (shown) main.dataset.route = location.hash; }, (e) => body.replaceChildren(errorBox(e)));
      }, 150);
    });
    cleanup.push(() => clearTimeout(typing));
    await load(params.get('after') || '');
    if (!current()) return;
    show('streams', el('h1', null, 'Streams'),
      el('div', { class: 'toolbar' }, input, el('span', { class: 'hint' }, 'in name order')), body);
  }

  function eventRow(ev, inStream) {
    const origin = ev.link
      ? [el('span', { class: 'mark link', title: 'linked: the event was written to another stream' }, 'link'), 'written to ', streamLink(ev.stream)]
      : inStream ? null : streamLink(ev.stream);
    return el('tr', { dataset: { id: ev.id, type: ev.type, link: String(ev.link) } },
      el('td', { class: 'num' }, inStream ? ev.version : ev.position),
      el('td', null, ev.type),
      el('td', { class: 'time' }, time(ev.timestamp)),
      el('td', { class: 'id' }, eventLink(ev.id, shortID(ev.id))),
      el('td', { class: 'origin' }, origin),
      el('td', { class: 'preview' }, ev.erased
        ? el('span', { class: 'mark deleted', title: 'erased: the data and metadata were erased' }, 'erased')
        : preview(ev.data)));
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
    const from = params.get('from');
    let r;
    try {
      r = await api(streamPath(name), { direction: 'backward', from, limit });
    } catch (e) {
      if (e.code !== 'stream_not_found') throw e;
      r = { events: [], next: null };
    }
    const names = await managers();
    const meta = await api(streamPath(name) + '/metadata').catch(() => ({}));
    if (!current()) return;
    const kept = retentionText(meta);
    const category = name.includes('$') ? name.slice(0, name.indexOf('$')) : '';
    const process = names.includes(category)
      ? el('p', null, 'The stream of a process: ', el('a', { href: href(['processes', category, name.slice(category.length + 1)]) }, 'show its timeline'))
      : null;
    const tbody = el('tbody', null, r.events.map((ev) => eventRow(ev, true)));
    const empty = el('p', { class: 'empty' }, 'This stream has no events.');
    show('stream',
      el('h1', null, el('span', { class: 'kind' }, 'Stream'), name),
      process,
      kept ? el('p', { id: 'retention', class: 'hint' }, kept) : null,
      el('table', null,
        el('thead', null, el('tr', null, ['Version', 'Type', 'Timestamp', 'Event', 'Written to', 'Data'].map((h) => el('th', null, h)))),
        tbody),
      r.events.length ? null : empty,
      pager([
        from !== null ? el('a', { href: href(['streams', name], { limit: params.get('limit') }) }, '« newest') : null,
        r.next !== null ? el('a', { href: href(['streams', name], { from: r.next, limit: params.get('limit') }), rel: 'next' }, 'older »') : null,
      ]));
    if (from !== null) return; // an older page stays as it is
    const next = r.events.length ? r.events[0].version + 1 : 0;
    live({ stream: name, from: next }, (ev) => {
      empty.remove();
      const row = eventRow(ev, true);
      row.classList.add('new');
      tbody.prepend(row);
    });
  }

  async function eventPage({ segs }, current) {
    const id = segs[1];
    const r = await api('events/' + encodeURIComponent(id));
    if (!current()) return;
    const ev = r.event;
    const md = ev.metadata || {};
    let cause = 'none';
    if (r.causation) {
      cause = [eventLink(r.causation.id), ' ', r.causation.type, ' in ', streamLink(r.causation.stream)];
    } else if (md.causation_id) {
      cause = `${md.causation_id} (not stored)`;
    }
    const caused = r.caused.map((c) => el('tr', { dataset: { id: c.id, type: c.type } },
      el('td', null, c.type),
      el('td', null, (c.metadata && c.metadata.pm_kind) || ''),
      el('td', { class: 'name' }, streamLink(c.stream)),
      el('td', { class: 'time' }, time(c.timestamp)),
      el('td', { class: 'id' }, eventLink(c.id, shortID(c.id)))));
    show('event',
      el('h1', null, el('span', { class: 'kind' }, 'Event'), ev.type),
      el('dl', { class: 'facts' },
        el('dt', null, 'Id'), el('dd', { class: 'mono', id: 'event-id' }, ev.id),
        el('dt', null, 'Position'), el('dd', null, ev.position),
        el('dt', null, 'Timestamp'), el('dd', null, ev.timestamp),
        el('dt', null, 'Written to'), el('dd', null, streamLink(ev.stream)),
        el('dt', null, 'In streams'), el('dd', null, el('ul', { class: 'inline', id: 'streams' }, r.streams.map((s) => el('li', null, streamLink(s))))),
        el('dt', null, 'Correlation'), el('dd', null, !md.correlation_id ? 'none' : UUID.test(md.correlation_id) ? eventLink(md.correlation_id) : String(md.correlation_id)),
        el('dt', null, 'Caused by'), el('dd', { id: 'causation' }, cause)),
      el('h2', null, 'Caused'),
      caused.length ? el('table', { id: 'caused' },
        el('thead', null, el('tr', null, ['Type', 'Kind', 'Stream', 'Timestamp', 'Event'].map((h) => el('th', null, h)))),
        el('tbody', null, caused)) : el('p', { class: 'empty', id: 'caused' }, 'No stored event names this one as its cause.'),
      el('div', { class: 'cols' },
        el('div', null, el('h2', null, 'Data'), json(ev.data)),
        el('div', null, el('h2', null, 'Metadata'), json(md))));
  }

  async function allPage({ params }, current) {
    const types = params.get('types') || '';
    const from = params.get('from');
    const limit = limitOf(params);
    const end = await endOfLog();
    const r = await api('all', { direction: 'backward', from, limit, types });
    if (!current()) return;
    const input = el('input', {
      type: 'search', id: 'types', value: types, placeholder: 'Event types, comma separated',
      'aria-label': 'event types', autocomplete: 'off',
    });
    input.addEventListener('change', () => {
      location.hash = href(['all'], { types: input.value.split(',').map((t) => t.trim()).filter(Boolean).join(','), limit: params.get('limit') });
    });
    const tbody = el('tbody', null, r.events.map((ev) => eventRow(ev, false)));
    const empty = el('p', { class: 'empty' }, types ? `No event of type ${types}.` : 'The log is empty.');
    show('all',
      el('h1', null, el('span', { class: 'kind' }, 'Stream'), '$all'),
      el('div', { class: 'toolbar' }, input, el('span', { class: 'hint' }, 'newest first')),
      el('table', null,
        el('thead', null, el('tr', null, ['Position', 'Type', 'Timestamp', 'Event', 'Stream', 'Data'].map((h) => el('th', null, h)))),
        tbody),
      r.events.length ? null : empty,
      pager([
        from !== null ? el('a', { href: href(['all'], { types, limit: params.get('limit') }) }, '« newest') : null,
        r.next !== null ? el('a', { href: href(['all'], { types, from: r.next, limit: params.get('limit') }), rel: 'next' }, 'older »') : null,
      ]));
    if (from !== null) return;
    live({ types, from: r.events.length ? r.events[0].position + 1 : end }, (ev) => {
      empty.remove();
      const row = eventRow(ev, false);
      row.classList.add('new');
      tbody.prepend(row);
    });
  }

  const status = (s) => el('span', { class: 'status ' + s }, s);

  // followFacts calls reload soon after each new event of the handled types: the counts
  // and states of processes change as the process managers handle them (a deadline
  // that fires while no event comes shows on the next visit).
  function followFacts(from, handles, reload) {
    if (handles.length) live({ types: [...new Set(handles)].join(','), from }, soon(reload, 500));
  }

  async function processesPage(_, current) {
    const from = await endOfLog();
    const body = el('div');
    let handles = [];
    const load = async () => {
      const r = await api('processes');
      if (!current()) return;
      handles = r.processes.flatMap((m) => m.handles || []);
      body.replaceChildren(r.processes.length
        ? table(['Process manager', 'Handles', 'Open', 'Completed', 'Expired'], r.processes.map((m) => el('tr', { dataset: { manager: m.name } },
          el('td', null, el('a', { href: href(['processes', m.name]) }, m.name)),
          el('td', null, (m.handles || []).join(', ')),
          el('td', { class: 'num open' }, m.open),
          el('td', { class: 'num completed' }, m.completed),
          el('td', { class: 'num expired' }, m.expired))))
        : el('p', { class: 'empty' }, 'The daemon runs no process manager: start it with pmd serve --config FILE.'));
    };
    await load();
    if (!current()) return;
    show('processes', el('h1', null, 'Process managers'), body);
    followFacts(from, handles, () => load().catch(() => {}));
  }

  async function processListPage({ segs, params }, current) {
    const name = segs[1];
    const after = params.get('after') || '';
    const limit = limitOf(params);
    const from = await endOfLog();
    const body = el('div');
    const load = async () => {
      const r = await api('processes/' + encodeURIComponent(name), { after, limit });
      if (!current()) return;
      const rows = r.processes.map((p) => el('tr', { dataset: { process: p.id } },
        el('td', { class: 'name' }, el('a', { href: href(['processes', name, p.id]) }, p.id)),
        el('td', null, status(p.status)),
        el('td', { class: 'num' }, p.events),
        el('td', { class: 'num' }, p.commands),
        el('td', { class: 'num' }, p.deadlines),
        el('td', { class: 'num' }, p.version)));
      body.replaceChildren(
        rows.length ? table(['Process', 'Status', 'Facts', 'Commands', 'Pending deadlines', 'Version'], rows)
          : el('p', { class: 'empty' }, 'No processes yet.'),
        pager([
          after ? el('a', { href: href(['processes', name], { limit: params.get('limit') }) }, '« first') : null,
          r.next !== null ? el('a', { href: href(['processes', name], { after: r.next, limit: params.get('limit') }), rel: 'next' }, 'next »') : null,
        ]));
    };
    await load();
    const manager = (await api('processes')).processes.find((m) => m.name === name);
    if (!current()) return;
    show('process-list', el('h1', null, el('span', { class: 'kind' }, 'Processes of'), name), body);
    followFacts(from, (manager && manager.handles) || [], () => load().catch(() => {}));
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
  // the process's state after it.
  function timelineEntry(ev, commands) {
    const md = ev.metadata || {};
    const d = ev.data || {};
    let kind = 'record';
    let cls = 'record';
    let what = [ev.type];
    let extra = null;
    if (ev.link) {
      kind = 'fact';
      cls = 'fact';
      what = [ev.type, el('span', { class: 'meta' }, ' from '), streamLink(ev.stream)];
    } else if (md.pm_kind === 'command') {
      kind = 'command';
      cls = 'command';
      const c = commands.get(ev.id);
      const attempts = c ? c.attempts : [];
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
        el('span', { class: 'what' }, what),
        el('span', { class: 'meta' }, 'v', ev.version, ' · ', time(ev.timestamp), ' · ', eventLink(ev.id, shortID(ev.id)))),
      extra,
      el('details', { dataset: { part: 'data' } }, el('summary', null, 'data'), json(d)),
      el('details', { class: 'state', dataset: { part: 'state' } }, el('summary', null, 'state after'), json(ev.state)));
  }

  async function processPage({ segs, params }, current) {
    const [, name, id] = segs;
    const before = params.get('before');
    const view = el('div');
    const load = async () => {
      // A long process is shown a page at a time, the newest first: the daemon never
      // loads every event of its stream for one page.
      const query = new URLSearchParams();
      if (before !== null) query.set('before', before);
      if (params.get('limit') !== null) query.set('limit', params.get('limit'));
      const qs = query.toString();
      const p = await api('processes/' + encodeURIComponent(name) + '/' + encodeURIComponent(id) + (qs ? '?' + qs : ''));
      if (!current()) return null;
      const commands = new Map(p.commands.map((c) => [c.id, c]));
      // A live reload keeps open what the reader opened.
      const open = new Set([...view.querySelectorAll('#timeline > li details[open]')]
        .map((d) => d.closest('li').dataset.id + ' ' + d.dataset.part));
      view.replaceChildren(
        el('h1', null, el('span', { class: 'kind' }, 'Process'), p.stream),
        el('dl', { class: 'facts' },
          el('dt', null, 'Status'), el('dd', { id: 'status' }, status(p.status)),
          el('dt', null, 'Process manager'), el('dd', null, el('a', { href: href(['processes', p.manager]) }, p.manager)),
          el('dt', null, 'Stream'), el('dd', null, streamLink(p.stream)),
          el('dt', null, 'Commands'), el('dd', null, p.commands.length ? p.commands.map((c) => c.type).join(', ') : 'none yet')),
        el('h2', null, 'Timeline'),
        before !== null
          ? el('p', { class: 'pager' }, el('a', { href: href(['processes', name, id], { limit: params.get('limit') }), rel: 'first' }, '« newest'))
          : null,
        el('ol', { class: 'timeline', id: 'timeline' }, p.events.map((ev) => timelineEntry(ev, commands))),
        p.older !== null && p.older !== undefined
          ? el('p', { class: 'pager' }, el('a', { href: href(['processes', name, id], { before: p.older, limit: params.get('limit') }), rel: 'next', id: 'older' }, 'older events »'))
          : null,
        el('h2', null, 'Pending deadlines'),
        p.deadlines.length
          ? table(['Due', 'Issues'], p.deadlines.map((d) => el('tr', null, el('td', { class: 'time' }, time(d.due)), el('td', null, d.issue))))
          : el('p', { class: 'empty', id: 'deadlines' }, 'None.'),
        el('h2', null, 'State now'),
        p.snapshot
          ? el('p', { id: 'snapshot' }, 'Folded from the snapshot of version ' + p.snapshot.version + ' (',
            el('a', { href: href(['events', p.snapshot.id]) }, 'written ', time(p.snapshot.timestamp)),
            '), then the events after it.')
          : el('p', { id: 'snapshot' }, 'Folded from the first event of the stream.'),
        json(p.state));
      for (const d of view.querySelectorAll('#timeline > li details')) {
        if (open.has(d.closest('li').dataset.id + ' ' + d.dataset.part)) d.open = true;
      }
      return p;
    };
    const p = await load();
    if (!p) return;
    show('process', view);
    if (before !== null) return; // an older page stays as it is
    // The timeline changes with the process stream (facts, commands, deadlines) and
    // with its deliveries stream (each delivery attempt).
    const reload = soon(() => load().catch((e) => view.prepend(errorBox(e))), 200);
    const next = p.events.length ? p.events[p.events.length - 1].version + 1 : 0;
    live({ stream: p.stream, from: next }, reload);
    live({ stream: p.deliveries_stream, from: p.deliveries_version + 1 }, reload);
  }

  function notFound() {
    show('not-found', el('h1', null, 'No such page'), el('p', null, el('a', { href: '#/streams' }, 'Streams')));
  }

  // routes maps the first path segment and the number of segments to a page.
  const routes = {
    streams: [streamsPage, streamPage],
    events: [null, eventPage],
    all: [allPage],
    processes: [processesPage, processListPage, processPage],
  };

  async function route() {
    for (const f of cleanup.splice(0)) f();
    const seq = ++renderSeq;
    const current = () => seq === renderSeq;
    delete main.dataset.page;
    delete main.dataset.route;
    let r;
    try {
      r = parseRoute();
    } catch (_) {
      show('error', errorBox(new Error('This address is not valid: a part of it is wrongly escaped.')));
      return;
    }
    if (r.segs.length === 0) r.segs = ['streams'];
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
      if (e.status === 401) {
        const refused = token() !== null;
        sessionStorage.removeItem(TOKEN);
        tokenPage(refused);
        return;
      }
      show('error', errorBox(e));
    }
  }

  window.addEventListener('hashchange', route);
  route();
})();
