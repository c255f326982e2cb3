// troupe observer page. Plain JavaScript, no build step, nothing fetched but the admin server's
// own JSON: /api/tree and /api/stats polled every second, /api/events as server-sent events.
// Everything that came from a run (names, reasons, keys) is set with textContent, never as HTML.
'use strict';
(() => {
  const POLL_MS = 1000;
  const FETCH_TIMEOUT_MS = 5000;
  const WINDOW_MS = 5 * 60 * 1000;
  const MAX_EVENTS = 200;
  // The tree's geometry: boxes (as in observer.css) in columns by depth, one row per leaf.
  const BOX_W = 212, BOX_H = 90, GAP_X = 36, GAP_Y = 10, PAD = 6;

  const token = new URLSearchParams(location.search).get('token') || '';
  const authHeaders = token ? { Authorization: 'Bearer ' + token } : {};
  const eventsURL = 'api/events' + (token ? '?token=' + encodeURIComponent(token) : '');

  const SVG = 'http://www.w3.org/2000/svg';
  const $ = (id) => document.getElementById(id);
  const num = (x) => (typeof x === 'number' && isFinite(x) ? x : 0);
  const str = (x) => (typeof x === 'string' ? x : x == null ? '' : String(x));

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text != null) e.textContent = text;
    return e;
  }
  function setText(e, t) { if (e.textContent !== t) e.textContent = t; }
  function setData(e, k, v) { v = String(v); if (e.dataset[k] !== v) e.dataset[k] = v; }
  const fmtInt = (n) => Math.round(num(n)).toLocaleString('en-US');
  function fmtBytes(b) {
    b = num(b);
    if (b <= 0) return '–';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return (i === 0 ? b.toFixed(0) : b.toFixed(1)) + ' ' + u[i];
  }
  function fmtVal(v) {
    v = num(v);
    if (v === 0) return '0';
    if (Math.abs(v) >= 100) return fmtInt(v);
    if (Math.abs(v) >= 10) return v.toFixed(1);
    return v.toPrecision(2).replace(/\.?0+$/, '');
  }
  function clock(t) {
    const d = new Date(t);
    return isNaN(d) ? '' : d.toTimeString().slice(0, 8);
  }

  // ---- connection state, shown in the bar
  const conn = { tree: 'waiting', stats: 'waiting', events: 'connecting' };
  function setConn(part, err) {
    conn[part] = err;
    const bad = Object.keys(conn).filter((k) => conn[k]);
    const c = $('conn');
    let state = 'live', text = 'live';
    if (conn.tree || conn.stats) {
      const waiting = conn.tree === 'waiting' || conn.stats === 'waiting';
      state = waiting ? 'connecting' : 'down';
      text = waiting ? 'connecting…' : bad.map((k) => k + ': ' + conn[k]).join('; ');
    } else if (conn.events) {
      text = 'live (events: ' + conn.events + ')';
    }
    setData(c, 'conn', state);
    setText(c, text);
  }

  async function getJSON(path) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
    try {
      const r = await fetch(path, { headers: authHeaders, cache: 'no-store', signal: ctl.signal });
      if (!r.ok) throw new Error('HTTP ' + r.status + (r.status === 401 ? ' (token?)' : ''));
      return await r.json();
    } catch (e) {
      throw new Error(e.name === 'AbortError' ? 'no answer in ' + FETCH_TIMEOUT_MS / 1000 + ' s' : e.message);
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- the supervision tree
  const nodes = new Map(); // path → record of its element and what it last showed

  function makeNode(path) {
    const r = { el: el('div', 'node'), restarts: null, pid: null };
    const l1 = el('div', 'l1'), l2 = el('div', 'l2');
    r.kind = el('span', 'kind'); r.name = el('span', 'name');
    r.state = el('span', 'state'); r.restartsEl = el('span', 'restarts'); r.mailbox = el('span', 'mailbox');
    l1.append(r.kind, r.name);
    l2.append(r.state, r.restartsEl, r.mailbox);
    r.l3 = el('div', 'l3'); r.l4 = el('div', 'l4'); r.l5 = el('div', 'l5');
    r.el.append(l1, l2, r.l3, r.l4, r.l5);
    r.el.dataset.path = path;
    r.el.dataset.flashes = '0';
    r.el.style.width = BOX_W + 'px';
    r.el.style.height = BOX_H + 'px';
    r.el.addEventListener('animationend', () => r.el.classList.remove('flash'));
    $('tree').append(r.el);
    return r;
  }

  function flash(r) {
    r.el.classList.remove('flash');
    void r.el.offsetWidth; // restart the animation when it was running
    r.el.classList.add('flash');
    r.el.dataset.flashes = String(Number(r.el.dataset.flashes || 0) + 1);
  }

  // flashPath flashes the node of path, or, when the tree does not show it (yet), its nearest
  // ancestor that it does show.
  function flashPath(path) {
    for (let p = str(path); p; p = p.slice(0, Math.max(p.lastIndexOf('/'), 0))) {
      const r = nodes.get(p);
      if (r) { flash(r); return; }
      if (p === '/') break;
    }
    const root = nodes.get('/');
    if (root) flash(root);
  }

  function updateNode(r, n) {
    const kind = str(n.kind) || 'node', state = str(n.state) || 'unknown';
    const restarts = num(n.restarts), pid = num(n.pid);
    const flashing = r.el.classList.contains('flash');
    const cls = 'node k-' + kind + ' s-' + state;
    if (r.el.className.replace(' flash', '') !== cls) {
      r.el.className = cls;
      if (flashing) r.el.classList.add('flash');
    }
    setData(r.el, 'kind', kind);
    setData(r.el, 'state', state);
    setData(r.el, 'pid', pid);
    setData(r.el, 'restarts', restarts);
    setText(r.kind, kind);
    setText(r.name, str(n.name) || str(n.path));
    setText(r.state, state);
    setText(r.restartsEl, '↻ ' + restarts);
    setText(r.mailbox, kind === 'plugin' ? '' : 'mailbox ' + fmtInt(n.mailbox));
    const measured = num(n.rss_bytes) > 0 || num(n.cpu_percent) > 0;
    const usage = 'RSS ' + fmtBytes(n.rss_bytes) + ' · CPU ' + num(n.cpu_percent).toFixed(1) + '%';
    const pidText = 'pid ' + (pid > 0 ? pid : '–');
    if (kind === 'plugin') { // a process: its pid, then what it uses
      setText(r.l3, pidText);
      setText(r.l4, usage);
    } else {
      setText(r.l3, kind === 'supervisor' ? '' : 'in-flight ' + fmtInt(n.in_flight) + ' · credits ' + fmtInt(n.credits));
      setText(r.l4, measured ? pidText + ' · ' + usage : pidText);
    }
    const exit = str(n.last_exit);
    setText(r.l5, exit ? 'last exit: ' + exit : '');
    const title = str(n.path) + (exit ? '\nlast exit: ' + exit : '');
    if (r.el.title !== title) r.el.title = title;
    // A restart flashes the node: its count rose, or it runs as a new process.
    if ((r.restarts !== null && restarts > r.restarts) || (r.pid > 0 && pid > 0 && pid !== r.pid)) flash(r);
    r.restarts = restarts;
    r.pid = pid;
  }

  function renderTree(root) {
    const items = [], links = [];
    const seen = new Set();
    let rows = 0, depthMax = 0;
    const walk = (n, depth, parentPath) => {
      if (!n || typeof n !== 'object') return null;
      let path = str(n.path) || (parentPath === '/' ? '' : parentPath) + '/' + str(n.name);
      while (seen.has(path)) path += '#'; // never two elements for one key
      seen.add(path);
      const it = { n, path, depth, row: 0 };
      items.push(it);
      depthMax = Math.max(depthMax, depth);
      const kids = (Array.isArray(n.children) ? n.children : []).map((c) => walk(c, depth + 1, path)).filter(Boolean);
      if (kids.length === 0) it.row = rows++;
      else {
        it.row = (kids[0].row + kids[kids.length - 1].row) / 2;
        for (const k of kids) links.push([it, k]);
      }
      return it;
    };
    walk(root, 0, '');

    const x = (it) => PAD + it.depth * (BOX_W + GAP_X);
    const y = (it) => PAD + it.row * (BOX_H + GAP_Y);
    for (const it of items) {
      let r = nodes.get(it.path);
      if (!r) { r = makeNode(it.path); nodes.set(it.path, r); }
      r.el.style.left = x(it) + 'px';
      r.el.style.top = y(it) + 'px';
      updateNode(r, it.n);
    }
    for (const [path, r] of nodes) {
      if (!seen.has(path)) { r.el.remove(); nodes.delete(path); }
    }
    const w = 2 * PAD + (depthMax + 1) * (BOX_W + GAP_X) - GAP_X;
    const h = 2 * PAD + Math.max(rows, 1) * (BOX_H + GAP_Y) - GAP_Y;
    const tree = $('tree'), lines = $('links');
    tree.style.width = w + 'px';
    tree.style.height = h + 'px';
    lines.setAttribute('width', w);
    lines.setAttribute('height', h);
    lines.replaceChildren(...links.map(([p, c]) => {
      const x1 = x(p) + BOX_W, y1 = y(p) + BOX_H / 2, x2 = x(c), y2 = y(c) + BOX_H / 2, mx = x1 + GAP_X / 2;
      return svg('path', {
        d: `M${x1} ${y1}H${mx}V${y2}H${x2}`,
        class: str(c.n.state) === 'stopped' ? 'stopped' : '',
        'data-from': p.path, 'data-to': c.path,
      });
    }));
    $('tree-empty').hidden = items.length > 0;
  }

  // ---- charts: hand-drawn SVG line charts over the last WINDOW_MS
  function niceCeil(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  function fmtSpan(ms) {
    const s = Math.round(ms / 1000);
    return s >= 120 ? '−' + Math.round(s / 60) + ' min' : '−' + s + ' s';
  }

  // drawChart draws series ([{cls, label, pts: [[t, v], …]}]) into the svg element, the time
  // axis ending at now and spanning what was seen, from 30 s up to WINDOW_MS.
  function drawChart(chart, series, now, first, opts) {
    const W = 360, H = opts.height, L = 42, R = 10, T = 20, B = 16;
    chart.setAttribute('viewBox', `0 0 ${W} ${H}`);
    const span = Math.min(WINDOW_MS, Math.max(30000, now - first));
    const t0 = now - span;
    let max = 0;
    for (const s of series) for (const [t, v] of s.pts) if (t >= t0) max = Math.max(max, v);
    const top = niceCeil(max);
    const X = (t) => L + ((t - t0) / span) * (W - L - R);
    const Y = (v) => T + (1 - v / top) * (H - T - B);
    const parts = [];
    for (const f of [0, 0.5, 1]) {
      parts.push(svg('line', { class: 'grid', x1: L, x2: W - R, y1: Y(top * f), y2: Y(top * f) }));
      parts.push(svg('text', { class: 'axis', x: L - 4, y: Y(top * f) + 3, 'text-anchor': 'end' }, fmtVal(top * f)));
    }
    parts.push(svg('text', { class: 'axis', x: L, y: H - 3 }, fmtSpan(span)));
    parts.push(svg('text', { class: 'axis', x: W - R, y: H - 3, 'text-anchor': 'end' }, 'now'));
    if (opts.title) parts.push(svg('text', { class: 'title', x: L, y: 12 }, opts.title));
    const nowX = W - R;
    for (const s of series.slice().reverse()) {
      const pts = s.pts.filter(([t]) => t >= t0);
      if (pts.length === 0) continue;
      const d = pts.map(([t, v], i) => (i ? 'L' : 'M') + X(t).toFixed(1) + ' ' + Y(v).toFixed(1)).join('');
      parts.push(svg('path', { class: s.cls, d, 'data-points': pts.length }));
    }
    const labels = series.filter((s) => s.pts.length).map((s) => s.label + ' ' + fmtVal(s.pts[s.pts.length - 1][1]));
    if (labels.length) parts.push(svg('text', { class: 'now out', x: nowX, y: 12, 'text-anchor': 'end' }, labels.join('  ')));
    chart.replaceChildren(...parts);
  }

  // ---- stats: the bar, the charts, the dead letters
  const history = []; // {t, in, out, rateIn, rateOut, lat: {stage: [p50, p99]}}
  let lastDead = '';

  function renderStats(s) {
    const now = Date.parse(str(s.time)) || Date.now();
    const rin = num(s.records_in), rout = num(s.records_out);
    let prev = history[history.length - 1];
    if (prev && (now < prev.t || rin < prev.in || rout < prev.out)) { // another run: start over
      history.length = 0;
      prev = undefined;
    }
    let sample = prev;
    if (!prev || now > prev.t) { // a new sample (the same one again adds nothing)
      sample = { t: now, in: rin, out: rout, rateIn: null, rateOut: null, lat: {} };
      if (prev) {
        const dt = (now - prev.t) / 1000;
        sample.rateIn = (rin - prev.in) / dt;
        sample.rateOut = (rout - prev.out) / dt;
      }
      history.push(sample);
    }
    const stages = Array.isArray(s.stages) ? s.stages : [];
    for (const st of stages) {
      const lat = st && st.latency_ms ? st.latency_ms : {};
      sample.lat[str(st && st.name)] = [num(lat.p50), num(lat.p99)];
    }
    while (history.length && history[0].t < now - WINDOW_MS - 2 * POLL_MS) history.shift();

    const runState = str(s.state) || '…';
    setText($('run-state'), runState.replace('_', ' '));
    setData($('run-state'), 'state', runState);
    setText($('records-in'), fmtInt(rin));
    setText($('records-out'), fmtInt(rout));
    setText($('rate-out'), sample.rateOut == null ? '–' : fmtVal(Math.max(sample.rateOut, 0)));
    setText($('dead-count'), fmtInt(s.dead_letters));
    setText($('dropped-count'), fmtInt(s.dropped));

    const rated = history.filter((h) => h.rateOut != null);
    drawChart($('chart-throughput'), [
      { cls: 'out', label: 'out/s', pts: rated.map((h) => [h.t, Math.max(h.rateOut, 0)]) },
      { cls: 'in', label: 'in/s', pts: rated.map((h) => [h.t, Math.max(h.rateIn, 0)]) },
    ], now, history[0].t, { height: 130 });

    const box = $('latency');
    const want = stages.map((st) => str(st && st.name));
    const have = Array.from(box.children).map((c) => c.dataset.stage);
    if (want.join('\n') !== have.join('\n')) {
      box.replaceChildren(...want.map((name) => {
        const c = svg('svg', { class: 'chart', role: 'img', 'aria-label': 'latency of ' + name });
        c.dataset.stage = name;
        return c;
      }));
    }
    for (const c of box.children) {
      const name = c.dataset.stage;
      const pts = history.filter((h) => name in h.lat);
      drawChart(c, [
        { cls: 'p99', label: 'p99', pts: pts.map((h) => [h.t, h.lat[name][1]]) },
        { cls: 'p50', label: 'p50', pts: pts.map((h) => [h.t, h.lat[name][0]]) },
      ], now, history[0].t, { height: 96, title: name });
    }
    renderDead(s);
  }

  function renderDead(s) {
    const recent = Array.isArray(s.dead_letters_recent) ? s.dead_letters_recent : [];
    const total = num(s.dead_letters);
    const key = total + '\n' + JSON.stringify(recent);
    if (key === lastDead) return;
    lastDead = key;
    const body = $('dead-letters').tBodies[0];
    body.replaceChildren(...recent.slice().reverse().map((d) => { // the server lists them oldest first
      const tr = el('tr');
      tr.append(el('td', 'key', str(d && d.key)), el('td', 'stage', str(d && d.stage)),
        el('td', 'attempts', fmtInt(d && d.attempts)), el('td', 'reason', str(d && d.reason)));
      return tr;
    }));
    $('dead-empty').hidden = recent.length > 0 || total > 0;
    setText($('dead-note'), total === 0 ? '' : fmtInt(total) + ' so far' +
      (recent.length < total ? ', the last ' + recent.length + ' shown' : '') + ', newest first');
  }

  // ---- supervision events
  function onEvent(ev) {
    let e;
    try { e = JSON.parse(ev.data); } catch (_) { return; }
    if (!e || typeof e !== 'object') return;
    const type = str(e.type);
    const li = el('li');
    li.dataset.type = type;
    li.dataset.path = str(e.path);
    li.append(el('span', 't', clock(e.time)), el('span', 'type ' + type, type), el('span', 'path', str(e.path)));
    if (num(e.pid) > 0) li.append(el('span', 'pid', ' pid ' + num(e.pid)));
    if (str(e.reason)) li.append(el('span', 'reason', str(e.reason)));
    const list = $('events');
    list.prepend(li);
    while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
    $('events-empty').hidden = true;
    if (type === 'restarted' || type === 'exited' || type === 'gave_up') flashPath(e.path);
  }

  function listen() {
    const es = new EventSource(eventsURL);
    es.addEventListener('open', () => setConn('events', ''));
    es.addEventListener('supervision', onEvent);
    es.addEventListener('error', () => setConn('events', es.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting'));
  }

  // ---- the polling loop: one round at a time, never two in flight
  let polls = 0;
  async function poll() {
    await Promise.all([
      getJSON('api/tree').then((t) => { renderTree(t); setConn('tree', ''); },
        (e) => setConn('tree', e.message)),
      getJSON('api/stats').then((s) => { renderStats(s); setConn('stats', ''); },
        (e) => setConn('stats', e.message)),
    ]);
    document.body.dataset.polls = String(++polls);
    setTimeout(poll, POLL_MS);
  }

  listen();
  poll();
})();
