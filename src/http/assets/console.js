// churnwatch console. Hand-written, no dependencies: three views (inbox, customer,
// overview) routed by the URL hash, data from /v1/… with the token kept in
// sessionStorage, live alerts from /v1/alerts/stream read with fetch (EventSource cannot
// send an Authorization header, and a token in a URL would end up in logs). Every value
// is written with textContent, never as HTML.
'use strict';

const TOKEN_KEY = 'churnwatch.token';
const view = document.getElementById('view');
const feed = document.getElementById('feed');
const TIER_COLORS = ['#2457c5', '#1b9e77', '#7570b3', '#d95f02', '#999999', '#e7298a'];

class NeedToken extends Error {}

// ---- helpers --------------------------------------------------------------------

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'swatch') e.style.background = v; // CSSOM: allowed by the page's CSP, a style attribute is not
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return e;
}

function svg(tag, attrs, ...kids) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'text') e.textContent = v; else e.setAttribute(k, String(v));
  }
  for (const kid of kids.flat(Infinity)) if (kid) e.append(kid);
  return e;
}

function num(v, digits) {
  if (v === null || v === undefined) return '–';
  if (typeof v !== 'number') return String(v);
  const d = digits === undefined ? (Number.isInteger(v) ? 0 : 2) : digits;
  return v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}
const pct = (v) => (v === null || v === undefined ? '–' : num(v * 100, 1) + ' %');
const short = (t) => (t ? String(t).slice(0, 16).replace('T', ' ') : '–');

// A value shown on a page, with the raw value beside it for tests and copy-paste.
function field(name, value, text) {
  return el('span', { 'data-field': name, 'data-value': value === null || value === undefined ? '' : String(value) },
    text === undefined ? num(value) : text);
}

function badge(cls, text) { return el('span', { class: 'badge ' + cls, text }); }

function token() { return sessionStorage.getItem(TOKEN_KEY); }

function headers() {
  const t = token();
  return t ? { Authorization: 'Bearer ' + t } : {};
}

async function api(path) {
  const r = await fetch(path, { headers: headers(), cache: 'no-store' });
  if (r.status === 401) {
    askToken(token() ? 'The service refused that token.' : null);
    throw new NeedToken();
  }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || ('HTTP ' + r.status));
  hideToken();
  return body;
}

async function post(path, body) {
  const r = await fetch(path, { method: 'POST', headers: Object.assign({ 'Content-Type': 'application/json' }, headers()), body: JSON.stringify(body) });
  if (r.status === 401) {
    askToken(token() ? 'The service refused that token.' : null);
    throw new NeedToken();
  }
  const answer = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(answer.error || ('HTTP ' + r.status));
  return answer;
}

// An action is an `intervention` event on the input topic: the row shows "sent", and the
// warning's status changes once the service has consumed it (the next inbox refresh).
async function act(row, r, status) {
  const note = row.querySelector('.action-note');
  for (const b of row.querySelectorAll('button')) b.disabled = true;
  note.textContent = 'sending…';
  try {
    const body = { customer_id: r.customer_id, status };
    if (r.warning_id) body.warning_id = r.warning_id;
    await post('/v1/interventions', body);
    note.textContent = status.replace('_', ' ') + ' sent';
    row.dataset.sent = status;
    setTimeout(scheduleInbox, 800);
  } catch (e) {
    if (e instanceof NeedToken) return;
    note.textContent = 'not sent: ' + e.message;
    for (const b of row.querySelectorAll('button')) b.disabled = false;
  }
}

function actions(r) {
  const cell = el('td', { class: 'actions' });
  const done = r.status === 'done' || r.status === 'dismissed';
  for (const [status, label] of [['acknowledged', 'Acknowledge'], ['done', 'Done'], ['dismissed', 'Dismiss']]) {
    const b = el('button', { type: 'button', class: 'act', 'data-action': status, text: label });
    if (done || r.status === status) b.disabled = true;
    b.addEventListener('click', () => act(cell.parentElement, r, status));
    cell.appendChild(b);
  }
  cell.appendChild(el('span', { class: 'action-note muted' }));
  return cell;
}

// ---- token ----------------------------------------------------------------------

function askToken(message) {
  const panel = document.getElementById('token-panel');
  panel.hidden = false;
  const err = document.getElementById('token-error');
  err.hidden = !message;
  err.textContent = message || '';
  view.replaceChildren(el('p', { class: 'muted', id: 'locked', text: 'The console shows data once the service accepts a token.' }));
  stopStream();
}

function hideToken() {
  document.getElementById('token-panel').hidden = true;
  document.getElementById('forget-token').hidden = !token();
}

document.getElementById('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const v = document.getElementById('token-input').value.trim();
  if (v) sessionStorage.setItem(TOKEN_KEY, v);
  document.getElementById('token-input').value = '';
  route();
  startStream();
});

document.getElementById('forget-token').addEventListener('click', (ev) => {
  ev.preventDefault();
  sessionStorage.removeItem(TOKEN_KEY);
  location.reload();
});

document.getElementById('lookup').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const id = document.getElementById('lookup-id').value.trim();
  if (id) location.hash = '#/customer/' + encodeURIComponent(id);
});

// ---- live alerts ----------------------------------------------------------------

let streamAbort = null;
let feedCount = 0;
const recent = new Set();

function stopStream() {
  if (streamAbort) streamAbort.abort();
  streamAbort = null;
  setLive(false);
}

function setLive(on) {
  const s = document.getElementById('live-state');
  s.textContent = on ? '● live' : '○ offline';
  s.classList.toggle('on', on);
}

async function startStream() {
  stopStream();
  const ctl = new AbortController();
  streamAbort = ctl;
  let wait = 1000;
  while (!ctl.signal.aborted) {
    try {
      const r = await fetch('/v1/alerts/stream', { headers: headers(), signal: ctl.signal, cache: 'no-store' });
      if (r.status === 401) { askToken(token() ? 'The service refused that token.' : null); return; }
      if (!r.ok || !r.body) throw new Error('stream ' + r.status);
      setLive(true);
      wait = 1000;
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          sseMessage(buf.slice(0, cut));
          buf = buf.slice(cut + 2);
        }
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
    }
    setLive(false);
    await new Promise((res) => setTimeout(res, wait));
    wait = Math.min(wait * 2, 15000);
  }
}

function sseMessage(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) event = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  if (event !== 'alert' || !data.length) return;
  let a;
  try { a = JSON.parse(data.join('\n')); } catch (e) { return; }
  showAlert(a);
}

function alertText(a) {
  switch (a.kind) {
    case 'churn_warning': return [badge(a.level, a.level), ' ', (a.rules || []).join(', '), a.owner ? ' · ' + a.owner : ''];
    case 'churn_warning_cleared': return [badge('low', 'cleared'), ' ', a.previous_level + ' warning'];
    case 'tier_changed': return [badge('tier', (a.from || 'new') + ' → ' + a.to), a.trigger === 'time' ? ' (time)' : ''];
    case 'churn_warning_overdue': return [badge('overdue', 'overdue'), ' ', (a.level || '') + ' warning', a.owner ? ' → ' + a.owner : ''];
    default: return [a.kind];
  }
}

function showAlert(a) {
  const cls = a.kind === 'churn_warning' ? a.level : a.kind === 'churn_warning_cleared' ? 'cleared' : 'tier';
  const li = el('li', { class: cls + ' fresh', 'data-kind': a.kind, 'data-customer': a.customer_id },
    el('div', {}, el('a', { href: '#/customer/' + encodeURIComponent(a.customer_id), text: a.customer_id }),
      el('span', { class: 'muted', text: '  ' + short(a.event_time) })),
    el('div', {}, alertText(a)));
  feed.prepend(li);
  while (feed.children.length > 60) feed.lastChild.remove();
  feedCount += 1;
  document.getElementById('feed-count').textContent = '(' + feedCount + ' since opened)';
  if (a.kind === 'churn_warning' || a.kind === 'churn_warning_cleared') {
    recent.add(a.customer_id);
    if (current().name === 'inbox') scheduleInbox();
  }
}

// ---- routing --------------------------------------------------------------------

function current() {
  const h = location.hash.replace(/^#\/?/, '');
  const [path, query] = h.split('?');
  const parts = path.split('/');
  const params = new URLSearchParams(query || '');
  if (parts[0] === 'customer' && parts[1]) return { name: 'customer', id: decodeURIComponent(parts.slice(1).join('/')), params };
  if (parts[0] === 'overview') return { name: 'overview', params };
  return { name: 'inbox', params };
}

let generation = 0;
async function route() {
  const r = current();
  const gen = ++generation;
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('active', a.dataset.nav === r.name);
  try {
    const node = r.name === 'customer' ? await customerView(r.id) : r.name === 'overview' ? await overviewView() : await inboxView(r.params);
    if (gen === generation) view.replaceChildren(node);
  } catch (e) {
    if (e instanceof NeedToken) return;
    if (gen === generation) view.replaceChildren(el('p', { class: 'error', text: String(e.message || e) }));
  }
}

window.addEventListener('hashchange', route);

function setClock(asOf) {
  document.getElementById('clock').textContent = asOf ? 'as of ' + short(asOf) : '';
}

// ---- inbox ----------------------------------------------------------------------

let inboxTimer = null;
let inboxLast = 0;
function scheduleInbox() {
  if (inboxTimer) return;
  // At most one refresh every two seconds, however fast alerts come.
  const wait = Math.max(300, 2000 - (Date.now() - inboxLast));
  inboxTimer = setTimeout(async () => {
    inboxTimer = null;
    if (current().name !== 'inbox') return;
    inboxLast = Date.now();
    const gen = generation;
    try {
      const node = await inboxView(current().params);
      if (gen === generation) view.replaceChildren(node);
    } catch (e) { /* the next alert retries */ }
  }, wait);
}

function filterSelect(name, label, values, selected) {
  const s = el('select', { id: 'f-' + name, name },
    el('option', { value: '', text: 'any' }),
    values.map((v) => el('option', { value: v, text: v, selected: v === selected })));
  s.addEventListener('change', () => {
    const p = current().params;
    if (s.value) p.set(name, s.value); else p.delete(name);
    const q = p.toString();
    location.hash = '#/inbox' + (q ? '?' + q : '');
  });
  return el('label', {}, label, s);
}

async function inboxView(params) {
  const q = new URLSearchParams();
  for (const k of ['owner', 'level', 'segment', 'rule']) if (params.get(k)) q.set(k, params.get(k));
  const w = await api('/v1/warnings' + (q.toString() ? '?' + q : ''));
  setClock(w.as_of);
  const rows = w.warnings.map((r) => el('tr', { class: r.overdue ? 'overdue' : '', 'data-customer': r.customer_id, 'data-level': r.level, 'data-owner': r.owner || '', 'data-status': r.status || 'open' },
    el('td', {}, r.due ? short(r.due) : el('span', { class: 'muted', title: 'raised before this instance started or took the partition', text: 'unknown' }),
      r.overdue ? [' ', badge('overdue', 'overdue')] : null),
    el('td', {}, badge(r.level, r.level), recent.has(r.customer_id) ? el('span', { class: 'muted', text: ' new' }) : null),
    el('td', {}, el('a', { href: '#/customer/' + encodeURIComponent(r.customer_id), text: r.customer_id })),
    el('td', { text: r.tier }),
    el('td', { text: r.owner || '–' }),
    el('td', { text: r.segment || '–' }),
    el('td', { text: r.rules.join(', ') }),
    el('td', { class: 'muted', text: short(r.raised_at) }),
    el('td', { class: 'status', text: (r.status || 'open').replace('_', ' ') }),
    actions(r)));
  return el('div', {},
    el('h1', {}, 'Open warnings ', el('span', { class: 'muted', id: 'inbox-count', 'data-count': w.count, text: '(' + w.count + (w.overdue ? ', ' + w.overdue + ' overdue' : '') + ')' })),
    el('div', { class: 'filters' },
      filterSelect('owner', 'Owner', w.owners, params.get('owner')),
      filterSelect('level', 'Level', w.levels, params.get('level')),
      filterSelect('segment', 'Segment', w.segments, params.get('segment')),
      filterSelect('rule', 'Rule', w.rules, params.get('rule')),
      el('span', { class: 'muted', text: 'sorted by due time; overdue rows are red' })),
    el('table', { id: 'inbox' },
      el('thead', {}, el('tr', {}, ['Due', 'Level', 'Customer', 'Tier', 'Owner', 'Segment', 'Rules', 'Raised', 'Status', 'Act'].map((h) => el('th', { text: h })))),
      el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { colspan: 10, class: 'muted', text: 'No open warnings match.' })))));
}

// ---- customer -------------------------------------------------------------------

function card(k, v, s) {
  return el('div', { class: 'card' }, el('div', { class: 'k', text: k }), el('div', { class: 'v' }, v), s ? el('div', { class: 's' }, s) : null);
}

async function customerView(id) {
  const enc = encodeURIComponent(id);
  const [c, h] = await Promise.all([api('/v1/customers/' + enc), api('/v1/customers/' + enc + '/history')]);
  setClock(c.facts.as_of);
  const f = c.facts;
  const w = c.warning;
  const st = c.standing;
  const win = f.windows.map((x) => el('tr', { 'data-window': x.days },
    el('td', { text: x.days + ' days' }),
    el('td', { class: 'num' }, field('windows.' + x.days + '.orders', x.orders)),
    el('td', { class: 'num' }, field('windows.' + x.days + '.monetary', x.monetary)),
    el('td', { class: 'num' }, field('windows.' + x.days + '.aov', x.aov)),
    el('td', { class: 'num' }, field('windows.' + x.days + '.visits', x.visits)),
    el('td', { class: 'num' }, field('windows.' + x.days + '.complaints', x.complaints)),
    el('td', { class: 'num' }, field('windows.' + x.days + '.satisfaction', x.satisfaction)),
    el('td', { class: 'num' }, field('windows.' + x.days + '.campaign_touches', x.campaign_touches), ' / ', field('windows.' + x.days + '.campaign_participations', x.campaign_participations), ' / ', field('windows.' + x.days + '.campaign_conversions', x.campaign_conversions))));
  const reasons = (w.reasons || []).map((r) => el('li', {}, el('b', { text: r.rule }), ' (' + r.level + '): ',
    r.conditions.map((cv, i) => [i ? ', ' : '', el('code', { text: cv.condition }), ' = ', el('b', { text: num(cv.value) })])));
  // The task (from the state: survives restarts), else what this process saw of the alert.
  const t = w.task || {};
  const raised = t.raised_at ? { raised_at: t.raised_at, due: t.due, overdue: t.overdue } : h.warning;
  const task = w.level === 'low' || !t.status ? null
    : ['task ', field('warning.task.status', t.status, t.status.replace('_', ' ')), t.owner ? ' · owner ' + t.owner : '',
      t.actor ? ' · by ' + t.actor + (t.acted_at ? ' ' + short(t.acted_at) : '') : '', t.outcome ? ' (' + t.outcome + ')' : ''];
  return el('div', { id: 'customer', 'data-customer': c.customer_id },
    el('h1', {}, 'Customer ', field('customer_id', c.customer_id, c.customer_id), ' ', badge('tier', c.tier), ' ', badge(w.level, w.level)),
    el('div', { class: 'cards' },
      card('Tier', field('tier', c.tier, c.tier), c.action),
      card('Warning', field('warning.level', w.level, w.level),
        raised ? ['raised ' + short(raised.raised_at) + ', due ' + short(raised.due), raised.overdue ? [' ', badge('overdue', 'overdue')] : null,
          task ? [el('br'), task] : null]
          : (w.level === 'low' ? 'no open warning' : 'raised before this instance held the customer')),
      card('P(alive)', field('facts.p_alive', f.p_alive, f.p_alive === null ? '–' : num(f.p_alive, 3)),
        'expected purchases in ' + f.horizon_days + ' d: ' + num(f.expected_purchases, 2)),
      card('CLV (' + f.horizon_days + ' d)', field('facts.clv', f.clv, num(f.clv, 0)), 'expected order value ' + num(f.expected_order_value, 0)),
      card('Standing', st ? field('standing.value_tier', st.value_tier, 'value ' + st.value_tier + ' · ABC ' + st.abc_class) : '–',
        st ? ['score ', field('standing.value_score', st.value_score, num(st.value_score, 1)), st.core_customer ? ' · core customer' : ''] : 'analytics off'),
      card('Lifetime', field('facts.lifetime_orders', f.lifetime_orders, num(f.lifetime_orders) + ' orders'),
        ['value ', field('facts.lifetime_value', f.lifetime_value, num(f.lifetime_value, 0))])),
    el('div', { class: 'grid2' },
      el('div', { class: 'panel' }, el('h3', { text: 'Orders and visits, last 12 months (weekly)' }), historyChart(h),
        el('div', { class: 'legend' }, el('span', {}, el('i', { swatch: '#b9cdf5' }), 'visits (left axis)'),
          el('span', {}, el('i', { swatch: '#c62828' }), 'orders (right axis)'))),
      el('div', { class: 'panel' }, el('h3', { text: 'Why' }),
        reasons.length ? el('ul', { class: 'reasons' }, reasons) : el('p', { class: 'muted', text: 'No warning rule matches.' }),
        el('p', { class: 'muted' }, 'In ' + c.tier + ' since ', field('tier_since', c.tier_since, c.tier_since || 'unknown'),
          ' · best tier held: ', field('peak_tier', c.peak_tier, c.peak_tier || '–'),
          ' · first seen ' + (f.first_seen || '–') + ', first order ' + (f.first_order || '–') + ', last order ' + (f.last_order || '–') + '.'))),
    el('h2', { text: 'Facts per window' }),
    el('table', { id: 'windows' },
      el('thead', {}, el('tr', {}, ['Window', 'Orders', 'Monetary', 'Avg order', 'Visits', 'Complaints', 'Satisfaction', 'Campaigns touched / took part / converted'].map((x, i) => el('th', { class: i ? 'num' : '', text: x })))),
      el('tbody', {}, win)),
    el('h2', { text: 'Other facts' }),
    el('div', { class: 'cards' },
      card('Recency', field('facts.recency_days', f.recency_days), 'days since the last order'),
      card('Days without order', field('facts.days_without_order', f.days_without_order)),
      card('Tenure', field('facts.tenure_days', f.tenure_days, num(f.tenure_days) + ' d'), f.lifecycle),
      card('Churn risk index', field('facts.churn_risk_index', f.churn_risk_index, num(f.churn_risk_index, 1))),
      card('Activity score', field('facts.activity_score', f.activity_score, num(f.activity_score, 1))),
      card('Open complaints', field('facts.open_complaints', f.open_complaints), 'last NPS ' + num(f.last_nps)),
      card('Owner', field('facts.account_manager', f.account_manager, f.account_manager || '–'), [f.segment || '', f.industry ? ' · ' + f.industry : '', f.region ? ' · ' + f.region : '']),
      card('Preferred', el('span', { text: f.preferred_channel || '–' }), f.preferred_category || '')),
    el('p', { class: 'muted', text: 'Input ' + c.input.topic + ' partition ' + c.input.partition + ' offset ' + c.input.offset + ' · facts as of ' + short(f.as_of) }));
}

function dayNumber(date) { return Math.floor(Date.parse(date + 'T00:00:00Z') / 86400000); }

function historyChart(h) {
  const W = 560, H = 170, L = 34, R = 30, T = 10, B = 22;
  const end = dayNumber(h.to);
  const weeks = 52;
  const visits = new Array(weeks).fill(0), orders = new Array(weeks).fill(0);
  for (const d of h.days) {
    const i = weeks - 1 - Math.floor((end - dayNumber(d.date)) / 7);
    if (i >= 0 && i < weeks) { visits[i] += d.visits; orders[i] += d.orders; }
  }
  const vmax = Math.max(1, ...visits), omax = Math.max(1, ...orders);
  const bw = (W - L - R) / weeks;
  const y = (v, max) => T + (H - T - B) * (1 - v / max);
  const g = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: '100%', role: 'img', 'aria-label': 'orders and visits per week', id: 'history-chart',
    'data-orders': orders.reduce((a, b) => a + b, 0), 'data-visits': visits.reduce((a, b) => a + b, 0) });
  g.append(svg('line', { x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: '#c7ccd6' }));
  for (const [v, yy] of [[vmax, y(vmax, vmax)], [0, H - B]]) g.append(svg('text', { x: L - 4, y: yy + 4, 'text-anchor': 'end', text: String(v) }));
  g.append(svg('text', { x: W - R + 4, y: T + 4, text: String(omax) }));
  visits.forEach((v, i) => { if (v) g.append(svg('rect', { x: L + i * bw + 1, y: y(v, vmax), width: Math.max(1, bw - 2), height: H - B - y(v, vmax), fill: '#b9cdf5' })); });
  const pts = orders.map((o, i) => `${L + i * bw + bw / 2},${y(o, omax)}`).join(' ');
  g.append(svg('polyline', { points: pts, fill: 'none', stroke: '#c62828', 'stroke-width': 1.5 }));
  orders.forEach((o, i) => { if (o) g.append(svg('circle', { cx: L + i * bw + bw / 2, cy: y(o, omax), r: 2.5, fill: '#c62828' })); });
  for (let m = 0; m < 12; m += 3) {
    const day = end - (weeks - m * 4.33) * 7;
    const label = new Date(day * 86400000).toISOString().slice(0, 7);
    g.append(svg('text', { x: L + m * 4.33 * bw, y: H - 6, text: label }));
  }
  return g;
}

// ---- overview -------------------------------------------------------------------

function lineChart(series, names, opts) {
  const W = 560, H = 190, L = 44, R = 10, T = 10, B = 22;
  const n = series.length ? series[0].values.length : 0; // points per series
  const max = Math.max(1, ...series.flatMap((s) => s.values.filter((v) => v !== null)));
  const x = (i) => L + (n <= 1 ? 0 : (W - L - R) * i / (n - 1));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const g = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: '100%', role: 'img', 'aria-label': opts.label, id: opts.id });
  g.append(svg('line', { x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: '#c7ccd6' }));
  g.append(svg('text', { x: L - 4, y: T + 4, 'text-anchor': 'end', text: num(max, 0) }));
  g.append(svg('text', { x: L - 4, y: H - B + 4, 'text-anchor': 'end', text: '0' }));
  if (names.length) {
    g.append(svg('text', { x: L, y: H - 6, text: names[0] }));
    g.append(svg('text', { x: W - R, y: H - 6, 'text-anchor': 'end', text: names[names.length - 1] }));
  }
  for (const s of series) {
    if (opts.bars) {
      const bw = Math.max(1, (W - L - R) / Math.max(1, n) - 1);
      s.values.forEach((v, i) => { if (v) g.append(svg('rect', { x: x(i) - bw / 2 + s.offset * bw / 2, y: y(v), width: bw / 2, height: H - B - y(v), fill: s.color })); });
    } else {
      const pts = s.values.map((v, i) => (v === null ? null : `${x(i)},${y(v)}`)).filter(Boolean).join(' ');
      g.append(svg('polyline', { points: pts, fill: 'none', stroke: s.color, 'stroke-width': 2 }));
    }
  }
  const legend = el('div', { class: 'legend' }, series.map((s) => el('span', {}, el('i', { swatch: s.color }), s.name)));
  return el('div', {}, g, legend);
}

async function overviewView() {
  const [r, t] = await Promise.all([api('/v1/report'), api('/v1/timeline')]);
  setClock(r.as_of);
  const o = r.overall;
  const sampled = t.days.filter((d) => d.tiers);
  const tierSeries = t.tiers.map((name, i) => ({ name, color: TIER_COLORS[i % TIER_COLORS.length], values: sampled.map((d) => d.tiers[i]) }));
  const days = t.days;
  const warnSeries = [
    { name: 'raised (medium + high)', color: '#d98e04', offset: 0, values: days.map((d) => d.raised[0] + d.raised[1]) },
    { name: 'cleared', color: '#2e7d32', offset: 1, values: days.map((d) => d.cleared) },
  ];
  // Open and overdue counts exist only on the days the sampler saw.
  const openDays = days.filter((d) => d.open);
  const overdueSeries = [
    { name: 'open high', color: '#c62828', values: openDays.map((d) => d.open[1]) },
    { name: 'open medium', color: '#d98e04', values: openDays.map((d) => d.open[0]) },
    { name: 'overdue', color: '#6a1b9a', values: openDays.map((d) => d.overdue) },
  ];
  const a = r.analytics;
  return el('div', { id: 'overview' },
    el('h1', { text: 'Overview' }),
    el('div', { class: 'cards' },
      card('Customers', field('overall.customers', o.customers), ['active ', field('overall.active_customers', o.active_customers)]),
      card('Repurchase rate', field('overall.repurchase_rate', o.repurchase_rate, pct(o.repurchase_rate)), '≥ 2 orders'),
      card('Retention', field('overall.retention', o.retention, pct(o.retention)), 'last ' + r.period_days + ' d buyers who bought again'),
      card('Average order value', field('overall.average_order_value', o.average_order_value, num(o.average_order_value, 0))),
      card('Complaint rate', field('overall.complaint_rate', o.complaint_rate, pct(o.complaint_rate))),
      card('Satisfaction', field('overall.mean_satisfaction', o.mean_satisfaction, num(o.mean_satisfaction, 2)), ['NPS ', field('overall.nps', o.nps, num(o.nps, 1))]),
      card('Open warnings', [field('overall.warnings_open.high', o.warnings_open.high), ' high'], [field('overall.warnings_open.medium', o.warnings_open.medium), ' medium'])),
    el('div', { class: 'grid2' },
      el('div', { class: 'panel' }, el('h3', { text: 'Customers per tier' }),
        sampled.length ? lineChart(tierSeries, sampled.map((d) => d.date), { id: 'tiers-chart', label: 'customers per tier per day' }) : el('p', { class: 'muted', text: 'No sample yet.' })),
      el('div', { class: 'panel' }, el('h3', { text: 'Warnings raised and cleared per day' }),
        lineChart(warnSeries, days.map((d) => d.date), { id: 'warnings-chart', label: 'warnings per day' })),
      el('div', { class: 'panel' }, el('h3', { text: 'Open and overdue warnings' }),
        lineChart(overdueSeries, openDays.map((d) => d.date), { id: 'open-chart', label: 'open and overdue warnings' })),
      el('div', { class: 'panel' }, el('h3', { text: 'Per tier' }),
        el('table', { id: 'tier-table' },
          el('thead', {}, el('tr', {}, ['Tier', 'Customers', 'Share', 'Avg order', 'Avg frequency', 'Total spend'].map((x, i) => el('th', { class: i ? 'num' : '', text: x })))),
          el('tbody', {}, r.tiers.map((l) => el('tr', { 'data-tier': l.tier },
            el('td', { text: l.tier }),
            el('td', { class: 'num' }, field('tiers.' + l.tier + '.customers', l.customers)),
            el('td', { class: 'num', text: pct(l.share) }),
            el('td', { class: 'num', text: num(l.average_order_value, 0) }),
            el('td', { class: 'num', text: num(l.average_frequency, 1) }),
            el('td', { class: 'num', text: num(l.total_spend, 0) }))))))),
    a ? el('div', { class: 'grid2' },
      el('div', { class: 'panel' }, el('h3', { text: 'Value tiers and ABC classes' }),
        el('p', {}, Object.entries(a.value_tiers).map(([k, v]) => [badge('tier', k), ' ', field('value_tiers.' + k, v), '   '])),
        el('table', {}, el('thead', {}, el('tr', {}, ['Class', 'Customers', 'Share of spend'].map((x) => el('th', { text: x })))),
          el('tbody', {}, Object.entries(a.abc_classes).map(([k, v]) => el('tr', {}, el('td', { text: k }), el('td', { class: 'num', text: num(v.customers) }), el('td', { class: 'num', text: pct(v.share_of_spend) }))),
            el('tr', {}, el('td', { text: 'core (top 10 %)' }), el('td', { class: 'num', text: num(a.core_customers.customers) }), el('td', { class: 'num', text: pct(a.core_customers.share_of_spend) }))))),
      el('div', { class: 'panel' }, el('h3', { text: 'Campaign effect' }),
        el('table', { id: 'campaigns' },
          el('thead', {}, el('tr', {}, ['Campaign', 'Touched', 'Took part', 'Converted', 'Rate', 'Cost', 'Cost / converted', 'Revenue', 'ROI', 'Satisfaction'].map((x, i) => el('th', { class: i ? 'num' : '', text: x })))),
          el('tbody', {}, a.campaigns.map((c) => el('tr', {},
            el('td', { text: c.campaign }), el('td', { class: 'num', text: num(c.touched) }), el('td', { class: 'num', text: num(c.participated) }), el('td', { class: 'num', text: num(c.converted) }),
            el('td', { class: 'num', text: pct(c.conversion_rate) }), el('td', { class: 'num', text: num(c.cost, 0) }),
            el('td', { class: 'num', text: num(c.cost_per_converted_customer, 1) }), el('td', { class: 'num', text: num(c.revenue, 0) }), el('td', { class: 'num', text: c.roi == null ? '–' : '1 : ' + num(c.roi, 1) }), el('td', { class: 'num', text: num(c.mean_satisfaction, 2) }))))))) : null,
    el('p', { class: 'muted', text: 'Figures as of ' + short(r.as_of) + ', the same numbers as /v1/report. The time series starts when this process started.' }));
}

// ---- start ----------------------------------------------------------------------

hideToken();
route().then(() => { if (document.getElementById('token-panel').hidden) startStream(); });
