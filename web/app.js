/* streamscale dashboard — plain JavaScript, no build step.
 *
 * Two views, chosen by the URL hash: the overview (#/: queue, workers, jobs
 * with live progress) and a job page (#/jobs/<id>: facts, actions, events
 * timeline, renditions, timings, and an hls.js preview of completed jobs,
 * and of running ones once they are playable: docs/PLAYABLE.md).
 * Everything is read from the coordinator's /v1 API, polled every second
 * while the page is open, with the token the user typed once (kept in
 * sessionStorage, so it is gone when the tab closes). Finished file://
 * outputs are played from the coordinator's /files/<id>/...; s3:// outputs
 * from their public URL (the worker's or the coordinator's public_base_url).
 *
 * The DOM is built with createElement/textContent only (never innerHTML):
 * job specs and errors are user data.
 */
'use strict';
(function () {
  const TOKEN_KEY = 'streamscale.token';
  const POLL_MS = 1000;
  const PAGE = 50;
  const FINAL = new Set(['completed', 'failed', 'cancelled', 'dead']);
  const CANCELLABLE = new Set(['queued', 'running', 'retrying']);
  const RETRYABLE = new Set(['failed', 'dead', 'cancelled']);

  let cfg = { files: false, public_base_url: null };
  let gen = 0;             // bumped on every route change: stale polls stop
  let timer = null;
  let jobsOffset = 0;
  let view = null;         // per-view state

  const $ = (id) => document.getElementById(id);

  /* h('div', {class: 'x', text: 'y', onclick: fn}, child, ...) */
  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of kids) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }

  /* ---- formatting ------------------------------------------------------ */

  function ago(iso) {
    if (!iso) return '—';
    const s = (Date.now() - Date.parse(iso)) / 1000;
    return secondsText(Math.max(0, s)) + ' ago';
  }
  function secondsText(s) {
    if (s === null || s === undefined || isNaN(s)) return '—';
    if (s < 10) return s.toFixed(1) + ' s';
    if (s < 90) return Math.round(s) + ' s';
    if (s < 5400) return Math.round(s / 60) + ' min';
    if (s < 172800) return (s / 3600).toFixed(1) + ' h';
    return (s / 86400).toFixed(1) + ' d';
  }
  function bytesText(n) {
    if (n === null || n === undefined) return '—';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + ' ' + u[i];
  }
  function rateText(bps) {
    if (!bps) return '—';
    return bps >= 1e6 ? (bps / 1e6).toFixed(2) + ' Mb/s' : Math.round(bps / 1e3) + ' kb/s';
  }
  function timeText(iso) { return iso ? new Date(iso).toLocaleString() : '—'; }
  function shortSource(s) {
    if (!s) return '';
    try {
      const u = new URL(s);
      return u.protocol + '//' + u.host + u.pathname;   // never show a query (signed URLs)
    } catch (e) { return s; }
  }

  function bar(pct, state) {
    const b = h('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100 },
      h('div', { class: 'fill' }), h('span', { class: 'txt' }));
    setBar(b, pct, state);
    return b;
  }
  function setBar(b, pct, state) {
    pct = Math.max(0, Math.min(100, Number(pct) || 0));
    b.firstChild.style.width = pct + '%';
    b.setAttribute('aria-valuenow', pct.toFixed(1));
    b.lastChild.textContent = pct.toFixed(0) + '%';
    b.className = 'bar ' + (state || '');
  }
  function badge(state, extra) {
    return h('span', { class: 'badge ' + state, 'data-state': state }, state + (extra ? ' · ' + extra : ''));
  }

  /* ---- the API ------------------------------------------------------------ */

  class AuthError extends Error {}

  function token() { return sessionStorage.getItem(TOKEN_KEY); }

  async function api(method, path, body) {
    const t = token();
    if (!t) throw new AuthError('no token');
    const headers = { Authorization: 'Bearer ' + t };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await fetch(path, {
      method, headers, cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (r.status === 401) throw new AuthError('The coordinator refused this token.');
    // the read-only view_token: hide every button that would change something
    const ro = r.headers.get('X-Streamscale-Access') === 'read-only';
    document.body.classList.toggle('readonly', ro);
    $('readonly').hidden = !ro;
    let j = null;
    try { j = await r.json(); } catch (e) { j = null; }
    if (!r.ok) {
      const err = new Error(j && j.error ? j.error.message : 'HTTP ' + r.status);
      err.status = r.status;
      throw err;
    }
    return j;
  }

  function live(ok, msg) {
    const l = $('live');
    l.textContent = ok ? 'live · ' + new Date().toLocaleTimeString() : msg;
    l.className = ok ? 'muted' : 'error';
  }

  /* ---- routing and polling ---------------------------------------------- */

  function show(id) {
    for (const s of ['login', 'overview', 'job']) $(s).hidden = s !== id;
    $('signout').hidden = id === 'login';
  }

  function schedule(fn, ms) {
    const g = gen;
    clearTimeout(timer);
    // a background tab polls slowly; it catches up when shown again
    if (document.hidden) ms = Math.max(ms, 10000);
    timer = setTimeout(() => { if (g === gen) fn(g); }, ms);
  }

  async function poll(fn, g) {
    try {
      const next = await fn(g);
      if (g !== gen) return;
      live(true);
      schedule((g2) => poll(fn, g2), next || POLL_MS);
    } catch (e) {
      if (g !== gen) return;
      if (e instanceof AuthError) { logout(e.message); return; }
      live(false, 'API: ' + e.message);
      schedule((g2) => poll(fn, g2), POLL_MS * 2);
    }
  }

  function route() {
    gen++;
    clearTimeout(timer);
    if (view && view.destroy) view.destroy();
    view = null;
    if (!token()) { show('login'); $('token').focus(); return; }
    const m = /^#\/jobs\/([0-9a-f]{20})$/.exec(location.hash);
    if (m) openJob(m[1]);
    else openOverview();
  }

  function logout(msg) {
    sessionStorage.removeItem(TOKEN_KEY);
    gen++;
    clearTimeout(timer);
    if (view && view.destroy) view.destroy();
    view = null;
    const e = $('login-error');
    e.textContent = msg || '';
    e.hidden = !msg;
    show('login');
    $('token').value = '';
    $('token').focus();
  }

  /* ---- actions ---------------------------------------------------------------- */

  async function act(kind, id) {
    const msg = $('action-msg');
    try {
      if (kind === 'cancel') {
        if (!window.confirm('Cancel job ' + id + '?')) return;
        await api('DELETE', '/v1/jobs/' + id);
      } else {
        await api('POST', '/v1/jobs/' + id + '/retry', {});
      }
      if (msg) msg.textContent = kind === 'cancel' ? 'cancel requested' : 'queued again';
    } catch (e) {
      if (e instanceof AuthError) { logout(e.message); return; }
      if (msg) msg.textContent = e.message;
      else window.alert(e.message);
    }
    route();   // refresh now
  }

  /* ---- overview ----------------------------------------------------------------- */

  function openOverview() {
    show('overview');
    // rows are tracked per view: a new view (filter, search, page) starts empty
    clear($('jobs').tBodies[0]);
    clear($('workers').tBodies[0]);
    view = { rows: new Map(), wrows: new Map() };
    poll(overviewTick, gen);
  }

  async function overviewTick(g) {
    const state = $('state-filter').value;
    const search = $('search').value.trim();
    const q = '/v1/jobs?limit=' + PAGE + '&offset=' + jobsOffset + (state ? '&state=' + state : '') +
      (search ? '&q=' + encodeURIComponent(search.slice(0, 200)) : '');
    const [queue, workers, jobs, hist] = await Promise.all([
      api('GET', '/v1/queue'), api('GET', '/v1/workers'), api('GET', q),
      api('GET', '/v1/queue/history')]);
    renderQueue(queue);
    renderHistory(hist);
    renderWorkers(workers.workers || []);
    // a running split job's row shows its chunk strip: the list has no
    // items, so each running job on this page is read once a poll
    const running = (jobs.jobs || []).filter((j) => j.state === 'running');
    const full = await Promise.all(running.map((j) => api('GET', '/v1/jobs/' + j.id).catch((e) => {
      if (e instanceof AuthError) throw e;
      return null;   // gone meanwhile: no strip this time
    })));
    if (g !== gen) return POLL_MS;   // left the overview meanwhile
    const items = new Map();
    for (const f of full) if (f && f.state === 'running' && f.items && f.items.length) items.set(f.id, f.items);
    renderJobs(jobs, items);
    return POLL_MS;
  }

  function stat(n, label, cls) {
    return h('div', { class: 'stat ' + (cls || ''), 'data-stat': label },
      h('div', { class: 'n', text: String(n) }), h('div', { class: 'l', text: label }));
  }

  function renderQueue(q) {
    const d = q.depth || {}, s = q.states || {};
    clear($('queue')).append(stat(d.high || 0, 'high'), stat(d.normal || 0, 'normal'), stat(d.low || 0, 'low'));
    const st = clear($('states'));
    for (const k of ['running', 'retrying', 'completed', 'failed', 'dead', 'cancelled'])
      st.append(stat(s[k] || 0, k));
  }

  /* Queue depth (blue), completions (green) and failures (red) per sample,
   * the last hour of the coordinator's history, as one small SVG. */
  function renderHistory(hist) {
    const svg = $('history');
    const NS = 'http://www.w3.org/2000/svg';
    const per = hist.interval_seconds || 60;
    const s = (hist.samples || []).slice(-Math.max(2, Math.ceil(3600 / per)));
    clear(svg);
    svg.dataset.samples = String(s.length);
    const max = Math.max(1, ...s.map((x) => Math.max(x.queued, x.completed, x.failed + x.dead)));
    const line = (cls, f) => {
      const pts = s.map((x, i) => ((s.length < 2 ? 0 : i / (s.length - 1)) * 300).toFixed(1) + ',' +
        (78 - (f(x) / max) * 74).toFixed(1)).join(' ');
      const p = document.createElementNS(NS, 'polyline');
      p.setAttribute('class', cls);
      p.setAttribute('points', pts);
      svg.append(p);
    };
    line('depth', (x) => x.queued);
    line('done', (x) => x.completed);
    line('fail', (x) => x.failed + x.dead);
    const sum = (k) => s.reduce((a, x) => a + x[k], 0);
    $('history-legend').textContent = 'queued now ' + (s.length ? s[s.length - 1].queued : 0) +
      ' · completed ' + sum('completed') + ' · failed ' + (sum('failed') + sum('dead')) +
      ' (per ' + secondsText(per) + ')';
  }

  async function bulk(action, state) {
    const msg = $('bulk-msg');
    if (!window.confirm((action === 'retry' ? 'Retry every ' : 'Clear (forget) every ') + state + ' job?')) return;
    let total = 0, goal = null;
    try {
      // batches of 1000 until the jobs there were at the click are done (a
      // retried job that fails again is not retried twice by one click)
      for (;;) {
        const r = await api('POST', '/v1/queue/' + action, { state });
        total += r.done;
        if (goal === null) goal = r.done + r.remaining;
        msg.textContent = (action === 'retry' ? 'retried ' : 'cleared ') + total + ' ' + state + ' job(s)';
        if (!r.remaining || !r.done || total >= goal) break;
      }
    } catch (e) {
      if (e instanceof AuthError) { logout(e.message); return; }
      msg.textContent = e.message;
    }
    route();
  }

  async function drain(id, on) {
    try {
      await api('POST', '/v1/workers/' + encodeURIComponent(id) + (on ? '/drain' : '/resume'));
    } catch (e) {
      if (e instanceof AuthError) { logout(e.message); return; }
      window.alert(e.message);
    }
    route();
  }

  function renderWorkers(ws) {
    const tb = $('workers').tBodies[0];
    $('workers-count').textContent = ws.length ? '(' + ws.length + ')' : '';
    $('workers-empty').hidden = ws.length > 0;
    const seen = new Set();
    for (const w of ws) {
      seen.add(w.id);
      let r = view.wrows.get(w.id);
      if (!r) {
        r = { tr: h('tr', { 'data-worker': w.id }), load: bar(0) };
        r.cells = [h('td', { class: 'mono' }), h('td'), h('td', {}, r.load), h('td'), h('td'), h('td'),
          h('td', { class: 'mut' })];
        r.tr.append(...r.cells);
        view.wrows.set(w.id, r);
      }
      const c = r.cells;
      // why it takes no work now, as the worker's own gate says ("slots full (1/1)", ...)
      const gate = w.gate && w.gate !== 'open' ? w.gate : (w.draining ? 'draining' : '');
      clear(c[0]).append(w.id);
      if (gate) {
        const b = h('span', { class: 'badge gate', 'data-gate': gate, text: 'not claiming: ' + gate });
        c[0].append(' ', b);
      }
      if (w.drain_requested)
        c[0].append(' ', h('span', { class: 'badge drained', 'data-drained': '1', text: 'drain requested' }));
      if (r.drained !== !!w.drain_requested) {   // re-create the button only when it changes
        r.drained = !!w.drain_requested;
        clear(c[6]).append(h('button', { type: 'button', class: 'link' + (r.drained ? '' : ' danger'),
          'data-action': r.drained ? 'resume' : 'drain', text: r.drained ? 'Resume' : 'Drain',
          title: r.drained ? 'let it claim jobs again' : 'claim nothing more; running jobs finish',
          onclick: () => drain(w.id, !r.drained) }));
      }
      c[1].textContent = (w.host || '') + (w.cores ? ' · ' + w.cores + ' cores' : '') + (w.version ? ' · v' + w.version : '');
      setBar(r.load, w.cpu_load, w.cpu_load >= (w.cpu_threshold || 100) ? 'hot' : '');
      r.load.title = 'claims work under ' + (w.cpu_threshold || 100) + '%';
      c[3].textContent = (w.busy || 0) + ' / ' + (w.slots || 0);
      c[3].title = (w.busy || 0) > (w.slots || 0)   // prefetch: claims beyond the slots wait in its pool
        ? (w.busy - w.slots) + ' short jobs prefetched, waiting for a slot' : '';
      const jobs = h('div', { class: 'minijobs' });
      for (const j of w.jobs || []) {
        jobs.append(h('div', { class: 'minijob', 'data-job': j.id },
          h('a', { href: '#/jobs/' + j.id, class: 'mono', text: j.id.slice(0, 8) }),
          bar(j.progress, 'running'), h('span', { class: 'muted', text: (j.stage || '') + ' ' + Math.round(j.progress || 0) + '%' })));
      }
      clear(c[4]).append((w.jobs || []).length ? jobs : h('span', { class: 'muted', text: 'idle' }));
      c[5].textContent = w.last_heartbeat ? secondsText(w.heartbeat_age_seconds || 0) + ' ago' : '—';
      c[5].title = w.last_heartbeat || '';
      tb.append(r.tr);
    }
    for (const [id, r] of view.wrows) if (!seen.has(id)) { r.tr.remove(); view.wrows.delete(id); }
  }

  function actionButtons(j) {
    const td = h('td', { class: 'mut' });
    if (CANCELLABLE.has(j.state))
      td.append(h('button', { type: 'button', class: 'link danger', 'data-action': 'cancel', text: 'Cancel', onclick: () => act('cancel', j.id) }));
    if (RETRYABLE.has(j.state))
      td.append(h('button', { type: 'button', class: 'link', 'data-action': 'retry', text: 'Retry', onclick: () => act('retry', j.id) }));
    return td;
  }

  function renderJobs(list, items) {
    const tb = $('jobs').tBodies[0];
    const jobs = list.jobs || [];
    $('jobs-total').textContent = list.total ? (jobsOffset + 1) + '–' + (jobsOffset + jobs.length) + ' of ' + list.total : '';
    $('jobs-empty').hidden = jobs.length > 0;
    $('prev').disabled = jobsOffset === 0;
    $('next').disabled = list.next_offset === null || list.next_offset === undefined;
    const seen = new Set();
    for (const j of jobs) {
      seen.add(j.id);
      let r = view.rows.get(j.id);
      if (!r) {
        r = { tr: h('tr', { 'data-job': j.id }), prog: bar(0) };
        r.cells = [h('td', {}, h('a', { href: '#/jobs/' + j.id, class: 'mono', text: j.id })), h('td'),
          h('td', {}, r.prog), h('td', { class: 'speed' }), h('td', { class: 'eta' }), h('td'), h('td'),
          h('td', { class: 'mono' }), h('td'), h('td', { class: 'mut' })];
        r.tr.append(...r.cells);
        view.rows.set(j.id, r);
      }
      const c = r.cells;
      r.tr.dataset.state = j.state;
      clear(c[1]).append(badge(j.state, j.state === 'running' && j.stage ? j.stage : ''));
      setBar(r.prog, j.state === 'completed' ? 100 : j.progress, j.state);
      const its = items && items.get(j.id);
      if (its) {
        if (!r.strip) {
          r.strip = h('div', { class: 'strip mini', role: 'list', 'aria-label': 'chunk strip of job ' + j.id });
          r.stripCells = new Map();
          c[2].append(r.strip);
        }
        const { chunks } = fillStrip(r.strip, r.stripCells, its);
        r.strip.title = chunks.length + ' chunks, ' + chunks.filter((i) => i.state === 'done').length + ' done';
      } else if (r.strip) {
        r.strip.remove();
        r.strip = null;
      }
      const running = j.state === 'running';
      c[3].textContent = running && typeof j.speed === 'number' ? j.speed.toFixed(2) + '×' : '';
      c[3].title = running && typeof j.fps === 'number' ? j.fps.toFixed(1) + ' fps' : '';
      c[4].textContent = running && typeof j.eta_seconds === 'number' ? secondsText(j.eta_seconds) : '';
      c[5].textContent = j.priority;
      const src = shortSource(j.source);
      clear(c[6]).append(h('span', { class: 'src', title: src, text: src }));
      c[7].textContent = j.worker || '';
      c[8].textContent = ago(j.created_at);
      c[8].title = j.created_at || '';
      if (r.state !== j.state) {   // re-create the buttons only when they change
        c[9].replaceWith(c[9] = actionButtons(j));
        r.state = j.state;
      }
      tb.append(r.tr);   // keeps the API's order (newest first)
    }
    for (const [id, r] of view.rows) if (!seen.has(id)) { r.tr.remove(); view.rows.delete(id); }
  }

  /* ---- job page ------------------------------------------------------------------ */

  function openJob(id) {
    show('job');
    $('job-id').textContent = id;
    clear($('job-state'));
    clear($('job-progress')).append(bar(0));
    clear($('job-strip'));
    $('strip-box').hidden = true;
    clear($('events'));
    clear($('job-facts'));
    $('job-error').hidden = true;
    $('action-msg').textContent = '';
    $('preview-card').hidden = true;
    $('renditions-card').hidden = true;
    $('timings-card').hidden = true;
    const player = $('player');
    player.dataset.state = 'idle';
    player.dataset.frags = '0';
    delete player.dataset.error;
    $('player-msg').textContent = '';
    view = { id, after: 0, job: null, hls: null, previewFor: null, destroy: destroyPlayer };
    $('job-cancel').onclick = () => act('cancel', id);
    $('job-retry').onclick = () => act('retry', id);
    poll(jobTick, gen);
  }

  function destroyPlayer() {
    if (view && view.hls) { view.hls.destroy(); view.hls = null; }
    const v = $('video');
    v.pause();
    v.removeAttribute('src');
    v.removeAttribute('poster');
    v.load();
    $('poster-fig').hidden = true;
    $('poster').removeAttribute('src');
  }

  async function jobTick(g) {
    const id = view.id;
    let job;
    try {
      job = await api('GET', '/v1/jobs/' + id);
    } catch (e) {
      if (e.status === 404) {
        $('job-state').replaceWith(h('span', { id: 'job-state', class: 'badge failed', text: 'no such job' }));
        return 5000;
      }
      throw e;
    }
    if (g !== gen) return;
    const evs = await api('GET', '/v1/jobs/' + id + '/events?after=' + view.after + '&limit=500');
    if (g !== gen) return;
    renderJob(job);
    appendEvents(evs.events || []);
    view.after = evs.next_after || view.after;
    const settled = FINAL.has(job.state) && view.after >= (evs.last_seq || 0);
    return settled ? 3000 : POLL_MS;
  }

  function fact(dl, k, v) {
    if (v === null || v === undefined || v === '') return;
    dl.append(h('dt', { text: k }), h('dd', {}, v));
  }

  function renderJob(j) {
    view.job = j;
    const st = $('job-state');
    st.className = 'badge ' + j.state;
    st.dataset.state = j.state;
    st.textContent = j.state + (j.stage && j.state === 'running' ? ' · ' + j.stage : '');
    setBar($('job-progress').firstChild, j.state === 'completed' ? 100 : j.progress, j.state);
    renderStrip(j);
    const res = j.result || {};
    const dl = clear($('job-facts'));
    fact(dl, 'source', shortSource(j.source));
    fact(dl, 'destination', res.destination || (j.spec && j.spec.destination) || 'the worker\'s storage');
    fact(dl, 'priority', j.priority);
    fact(dl, 'attempts', j.attempts + ' of ' + j.max_attempts);
    fact(dl, 'worker', j.worker || res.worker);
    fact(dl, 'created', timeText(j.created_at));
    fact(dl, 'started', j.started_at && timeText(j.started_at));
    fact(dl, 'finished', j.finished_at && timeText(j.finished_at));
    if (j.state === 'retrying') fact(dl, 'next attempt', timeText(j.retry_at));
    if (j.spec) fact(dl, 'ladder', typeof j.spec.ladder === 'string' ? j.spec.ladder : JSON.stringify(j.spec.ladder));
    if (j.webhook) fact(dl, 'webhook', 'delivered up to event ' + j.webhook.delivered_seq +
      (j.webhook.undeliverable ? ', ' + j.webhook.undeliverable + ' undeliverable' : '') +
      (j.webhook.last_error ? ' (last error: ' + j.webhook.last_error + ')' : ''));
    if (j.spec && j.spec.metadata) fact(dl, 'metadata', JSON.stringify(j.spec.metadata));
    const err = $('job-error');
    err.hidden = !j.error;
    err.textContent = j.error ? (j.error.code + ': ' + j.error.message) : '';
    if (j.state === 'running' && typeof j.speed === 'number') fact(dl, 'speed', j.speed.toFixed(2) + '× real time' + (typeof j.fps === 'number' ? ' · ' + j.fps.toFixed(1) + ' fps' : ''));
    if (j.state === 'running' && typeof j.eta_seconds === 'number') fact(dl, 'ETA', secondsText(j.eta_seconds));
    $('job-cancel').hidden = !CANCELLABLE.has(j.state);
    $('job-retry').hidden = !RETRYABLE.has(j.state);
    if (j.state === 'completed' && j.result) {
      renderRenditions(j);
      renderTimings(j);
      if (view.previewFor !== j.id + ':' + (j.finished_at || '')) setupPreview(j);
    } else if (j.state === 'running' && j.playable_url) {
      // playable while encoding: the EVENT playlists grow, hls.js follows them
      $('renditions-card').hidden = true;
      $('timings-card').hidden = !j.timings || !j.timings.queued_seconds;
      if (!$('timings-card').hidden) renderTimings(j);
      if (view.previewFor !== j.id + ':live') setupPreview(j);
    } else {
      $('renditions-card').hidden = true;
      $('timings-card').hidden = !j.timings || !j.timings.queued_seconds;
      if (!$('timings-card').hidden) renderTimings(j);
      if (view.previewFor) { destroyPlayer(); view.previewFor = null; $('preview-card').hidden = true; }
    }
  }

  /* A split job's chunk strip: one cell per work item in time order (plan,
   * the chunks as wide as their time range, audio, finalize), coloured by
   * state, with the worker, attempts, CPU seconds and timings in its
   * tooltip and a short text alternative ("chunk 3 of 9: running on w2,
   * attempt 1"). Cells are kept by item name, so a poll only updates them. */
  const ITEM_LABEL = { plan: 'P', audio: 'A', finalize: 'F', delete: 'D' };
  function renderStrip(j) {
    const items = j.items || [];
    const box = $('strip-box');
    const strip = $('job-strip');
    box.hidden = !items.length;
    if (!view.strip) view.strip = new Map();
    if (!items.length) { clear(strip); view.strip.clear(); return; }
    const { chunks, counts } = fillStrip(strip, view.strip, items);
    const done = chunks.filter((i) => i.state === 'done').length;
    $('strip-summary').textContent = chunks.length + ' chunks, ' + done + ' done · ' + items.length +
      ' items: ' + Object.entries(counts).map(([st, n]) => n + ' ' + st).join(', ');
  }

  /* The cells of a strip (the job page's, or a running job's row on the
   * overview): cells is the Map item name -> cell of that strip. Returns
   * the chunk items and the count of items per state. */
  function fillStrip(strip, cells, items) {
    const chunks = items.filter((i) => i.kind === 'chunk');
    const counts = {};
    const seen = new Set();
    let k = 0;
    for (const it of items) {
      seen.add(it.name);
      counts[it.state] = (counts[it.state] || 0) + 1;
      let cell = cells.get(it.name);
      if (!cell) {
        cell = h('div', { role: 'listitem', tabindex: 0, 'data-item': it.name, 'data-kind': it.kind });
        cells.set(it.name, cell);
      }
      const chunk = it.kind === 'chunk';
      const what = chunk ? 'chunk ' + (++k) + ' of ' + chunks.length : it.kind;
      const dur = chunk && typeof it.end_seconds === 'number' ? Math.max(0, it.end_seconds - it.start_seconds) : null;
      cell.className = 'cell ' + it.state + (chunk ? '' : ' side');
      cell.dataset.state = it.state;
      if (chunk) cell.style.flexGrow = String(dur > 0 ? dur : 1);
      cell.textContent = chunk ? String(k) : ITEM_LABEL[it.kind] || it.kind[0].toUpperCase();
      let alt = what + ': ' + it.state;
      if (it.worker && it.state !== 'waiting' && it.state !== 'ready') alt += (it.state === 'running' ? ' on ' : ' by ') + it.worker;
      if (it.attempts) alt += ', attempt ' + it.attempts;
      cell.setAttribute('aria-label', alt);
      const tip = [what + (dur !== null ? ' (' + it.start_seconds.toFixed(1) + '–' + it.end_seconds.toFixed(1) + ' s)' : '') + ': ' + it.state];
      tip.push('worker: ' + (it.worker || '—'), 'attempts: ' + it.attempts);
      if (typeof it.cpu_seconds === 'number') tip.push('CPU: ' + it.cpu_seconds.toFixed(1) + ' s');
      if (it.state === 'running' && it.progress) tip.push('progress: ' + Math.round(it.progress) + '%');
      if (it.started_at) tip.push('started: ' + timeText(it.started_at));
      if (it.finished_at) tip.push('finished: ' + timeText(it.finished_at));
      if (it.started_at && it.finished_at) tip.push('ran: ' + secondsText((Date.parse(it.finished_at) - Date.parse(it.started_at)) / 1000));
      if (it.error && it.error.message) tip.push('error: ' + it.error.message);
      cell.title = tip.join('\n');
      strip.append(cell);   // keeps the API's order
    }
    for (const [n, c] of cells) if (!seen.has(n)) { c.remove(); cells.delete(n); }
    return { chunks, counts };
  }

  function renderRenditions(j) {
    const res = j.result || {};
    const out = res.output || {};
    const byName = new Map();
    for (const r of out.renditions || []) byName.set(r.name, r);
    const tb = clear($('renditions').tBodies[0]);
    const rs = res.renditions && res.renditions.length ? res.renditions : (out.renditions || []);
    for (const r of rs) {
      const o = Object.assign({}, byName.get(r.name) || {}, r);
      const q = [];
      if (o.psnr !== undefined && o.psnr !== null) q.push('PSNR ' + Number(o.psnr).toFixed(2) + ' dB');
      if (o.ssim !== undefined && o.ssim !== null) q.push('SSIM ' + Number(o.ssim).toFixed(4));
      if (!q.length && o.crf) q.push('CRF ' + o.crf + (o.maxrate_kbps ? ', cap ' + o.maxrate_kbps + ' kb/s' : ''));
      tb.append(h('tr', { 'data-rendition': o.name },
        h('td', { text: o.name }), h('td', { text: o.width + '×' + o.height }),
        h('td', { text: rateText(o.bandwidth) }), h('td', { text: rateText(o.average_bandwidth) }),
        h('td', { text: rateText(o.video_bitrate_avg) }), h('td', { text: bytesText(o.bytes) }),
        h('td', { text: q.join(', ') || '—' }), h('td', { class: 'mono', text: o.codecs || '' })));
    }
    if (out.audio) {
      const a = out.audio;
      tb.append(h('tr', { 'data-rendition': 'audio' }, h('td', { text: 'audio' }),
        h('td', { text: (a.channels || 2) + ' ch' + (a.sample_rate ? ', ' + a.sample_rate + ' Hz' : '') }),
        h('td', { text: rateText(a.bitrate_peak) }), h('td', { text: rateText(a.bitrate) }),
        h('td', { text: '' }), h('td', { text: bytesText(a.bytes) }), h('td', { text: '—' }),
        h('td', { class: 'mono', text: a.codecs || '' })));
    }
    $('renditions-card').hidden = false;
  }

  function renderTimings(j) {
    const dl = clear($('timings'));
    const t = j.timings || {};
    const res = j.result || {};
    const rt = res.timings || {};
    const out = res.output || {};
    fact(dl, 'waited in queue', t.queued_seconds !== undefined ? secondsText(t.queued_seconds) : null);
    fact(dl, 'ran', t.run_seconds !== undefined ? secondsText(t.run_seconds) : null);
    fact(dl, 'download', rt.download_seconds !== undefined ? secondsText(rt.download_seconds) : null);
    fact(dl, 'encode', rt.encode_seconds !== undefined ? secondsText(rt.encode_seconds) : null);
    fact(dl, 'upload', rt.upload_seconds !== undefined ? secondsText(rt.upload_seconds) : null);
    const enc = out.timings && out.timings.encode;
    if (enc > 0 && out.duration > 0) fact(dl, 'speed', (out.duration / enc).toFixed(2) + '× real time');
    if (out.duration) fact(dl, 'duration', secondsText(out.duration) + (out.frame_rate ? ' at ' + out.frame_rate + ' fps' : ''));
    const src = out.source;
    if (src && src.width) fact(dl, 'source', src.width + '×' + src.height + ' ' + (src.video_codec || '') + (src.audio_codec ? ' + ' + src.audio_codec : ''));
    if (res.upload) fact(dl, 'uploaded', res.upload.objects + ' objects, ' + bytesText(res.upload.bytes) + (res.upload.retries ? ', ' + res.upload.retries + ' retries' : ''));
    $('timings-card').hidden = dl.childElementCount === 0;
  }

  /* Where a browser can fetch one of the job's outputs: http(s) URLs as they
   * are; file:// through this coordinator's /files/<id>/ (when output_dir is
   * set); s3:// under the coordinator's public_base_url. */
  function outputUrl(j, url) {
    if (!url) return null;
    if (/^https?:\/\//.test(url)) return url;
    const marker = '/' + j.id + '/';
    const i = url.indexOf(marker);
    if (i < 0) return null;
    const rel = url.slice(i + marker.length);
    if (url.startsWith('file://')) return cfg.files ? '/files/' + j.id + '/' + rel : null;
    if (url.startsWith('s3://') && cfg.public_base_url)
      return cfg.public_base_url.replace(/\/?$/, '/') + j.id + '/' + rel;
    return null;
  }

  function setupPreview(j) {
    destroyPlayer();
    const live = j.state !== 'completed';
    view.previewFor = j.id + ':' + (live ? 'live' : (j.finished_at || ''));
    const urls = live ? { hls: j.playable_url } : (j.result && j.result.urls) || {};
    const card = $('preview-card');
    card.hidden = false;
    const links = clear($('outputs'));
    for (const [k, label] of [['hls', 'HLS master'], ['dash', 'DASH manifest'], ['poster', 'poster'],
      ['sprite', 'sprite'], ['storyboard', 'storyboard'], ['job_json', 'job.json']]) {
      const u = outputUrl(j, urls[k]);
      if (u) links.append(h('a', { href: u, target: '_blank', rel: 'noopener', 'data-output': k, text: label }));
    }
    const player = $('player');
    const msg = $('player-msg');
    const v = $('video');
    const master = outputUrl(j, urls.hls);
    const poster = outputUrl(j, urls.poster);
    if (poster) v.poster = poster;
    $('poster-fig').hidden = !poster;
    if (poster) $('poster').src = poster;
    if (!master) {
      player.dataset.state = 'unavailable';
      msg.textContent = urls.hls
        ? 'No preview: ' + urls.hls.split(':')[0] + ':// outputs need ' +
          (urls.hls.startsWith('s3://') ? 'public_base_url' : 'output_dir') + ' in the coordinator\'s config.'
        : 'This job produced no HLS output.';
      return;
    }
    v.onplaying = () => { player.dataset.state = 'playing'; };
    v.ontimeupdate = () => { player.dataset.time = v.currentTime.toFixed(2); };
    v.onerror = () => {
      player.dataset.state = 'error';
      player.dataset.error = v.error ? 'media error ' + v.error.code : 'media error';
      msg.textContent = 'The browser cannot play this: ' + player.dataset.error;
    };
    if (window.Hls && window.Hls.isSupported()) {
      const hls = new window.Hls({ enableWorker: true, capLevelToPlayerSize: true });
      view.hls = hls;
      hls.on(window.Hls.Events.MANIFEST_PARSED, (ev, d) => {
        player.dataset.state = player.dataset.state === 'playing' ? 'playing' : 'ready';
        player.dataset.levels = String(d.levels.length);
        msg.textContent = (live ? 'still encoding, playable so far · ' : '') + d.levels.length +
          ' rendition(s) · hls.js ' + window.Hls.version + ' · ' + master;
      });
      hls.on(window.Hls.Events.FRAG_LOADED, () => {
        player.dataset.frags = String(Number(player.dataset.frags || 0) + 1);
      });
      hls.on(window.Hls.Events.ERROR, (ev, d) => {
        if (!d.fatal) return;
        player.dataset.state = 'error';
        player.dataset.error = d.details;
        msg.textContent = 'Playback error: ' + d.details + (d.response && d.response.code ? ' (HTTP ' + d.response.code + ')' : '');
      });
      hls.loadSource(master);
      hls.attachMedia(v);
      player.dataset.state = 'loading';
      player.dataset.live = live ? '1' : '0';
    } else if (v.canPlayType('application/vnd.apple.mpegurl')) {
      v.src = master;   // Safari plays HLS itself
      player.dataset.state = 'native';
    } else {
      player.dataset.state = 'unsupported';
      msg.textContent = 'This browser has no Media Source Extensions; open the HLS link in a player.';
    }
  }

  function appendEvents(evs) {
    const ol = $('events');
    for (const e of evs) {
      if (ol.querySelector('li[data-seq="' + e.seq + '"]')) continue;
      let data = e.data && Object.keys(e.data).length ? JSON.stringify(e.data) : '';
      if (data.length > 400) data = data.slice(0, 400) + '…';
      ol.append(h('li', { 'data-seq': e.seq, 'data-type': e.type },
        h('span', { class: 'muted', text: '#' + e.seq }),
        h('span', { text: timeText(e.created_at) }),
        h('span', { class: 'type', text: e.type }),
        h('span', { class: 'data', text: data })));
    }
  }

  /* ---- start ---------------------------------------------------------------------- */

  async function loadConfig() {
    try {
      const r = await fetch('/dashboard.json', { cache: 'no-store' });
      if (r.ok) cfg = await r.json();
      $('coord-info').textContent = 'coordinator ' + (cfg.coordinator || '?') + ' · v' + (cfg.version || '?');
    } catch (e) {
      $('coord-info').textContent = '';
    }
  }

  function start() {
    $('login-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const t = $('token').value.trim();
      if (!t) return;
      sessionStorage.setItem(TOKEN_KEY, t);
      try {
        await api('GET', '/v1/queue');
      } catch (e) {
        logout(e instanceof AuthError ? e.message : 'Cannot reach the API: ' + e.message);
        return;
      }
      $('login-error').hidden = true;
      route();
    });
    $('signout').addEventListener('click', () => logout(''));
    $('state-filter').addEventListener('change', () => { jobsOffset = 0; route(); });
    let searchTimer = null;
    $('search').addEventListener('input', () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => { jobsOffset = 0; route(); }, 250);
    });
    for (const b of document.querySelectorAll('[data-bulk]')) {
      const [action, state] = b.dataset.bulk.split(':');
      b.addEventListener('click', () => bulk(action, state));
    }
    $('prev').addEventListener('click', () => { jobsOffset = Math.max(0, jobsOffset - PAGE); route(); });
    $('next').addEventListener('click', () => { jobsOffset += PAGE; route(); });
    window.addEventListener('hashchange', route);
    document.addEventListener('visibilitychange', () => { if (!document.hidden && token()) route(); });
    loadConfig().then(route);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
