// The hotline dashboard. Everything a caller said is untrusted: it is only
// ever put into the page as text (textContent / text nodes), never as HTML.
'use strict';

const $ = (id) => document.getElementById(id);

// An element with text children (strings become text nodes) and elements.
function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'onclick') e.addEventListener('click', v);
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

async function getJson(url) {
  const r = await fetch(url, { headers: { Accept: 'application/json' } });
  let body = null;
  try { body = await r.json(); } catch (_) { body = null; }
  if (!r.ok) throw new Error((body && body.error) || `${r.status} ${r.statusText}`);
  return body;
}

function showNote(id, text) {
  const note = $(id);
  note.textContent = text || '';
  note.hidden = !text;
}

// Calls in progress: the list the event stream last sent, and when it came.
let active = [];
let activeAt = performance.now();

function renderActive() {
  $('active-count').textContent = String(active.length);
  const since = performance.now() - activeAt;
  const rows = active.map((c) => el('tr', { 'data-call': c.call_id },
    el('td', {}, callLink(c.call_id, false)),
    el('td', { text: c.transport }),
    el('td', { text: c.dialplan }),
    el('td', { class: 'call-menu', text: c.menu || '' }),
    el('td', { class: 'num', text: String(Math.floor((c.elapsed_ms + since) / 1000)) }),
    el('td', { class: 'words', text: c.last_utterance || '' }),
    el('td', { text: c.last_intent ? `${c.last_intent} (${c.last_intent_source})` : '' })));
  $('active-calls').replaceChildren(...rows);
}

function callLink(id, clickable) {
  if (!clickable) return el('span', { text: id });
  return el('button', { class: 'link', type: 'button', text: id, onclick: () => openCall(id) });
}

function connectEvents() {
  const events = new EventSource('/api/events');
  events.addEventListener('open', () => { $('stream-state').textContent = 'live'; });
  events.addEventListener('error', () => { $('stream-state').textContent = 'reconnecting…'; });
  events.addEventListener('active', (e) => {
    active = JSON.parse(e.data).calls;
    activeAt = performance.now();
    renderActive();
  });
  // A call ended: its record is written a moment later.
  events.addEventListener('finished', scheduleRefresh);
}

async function refreshRecent() {
  try {
    const body = await getJson('/api/calls/recent?limit=20');
    showNote('recent-note', '');
    const rows = body.calls.map((c) => el('tr', { 'data-call': c.call_id },
      el('td', { text: new Date(c.start_unix_ms).toLocaleString() }),
      el('td', {}, callLink(c.call_id, true)),
      el('td', { text: c.dialplan || '' }),
      el('td', { class: 'num', text: (c.duration_ms / 1000).toFixed(1) }),
      el('td', { class: `outcome outcome-${c.outcome || ''}`, text: c.outcome || '' }),
      el('td', { text: c.transfer_target ? `${c.transfer_target} (${c.transfer_reason || ''}): ${c.transfer_result || ''}` : '' })));
    $('recent-calls').replaceChildren(...rows);
  } catch (err) {
    showNote('recent-note', err.message);
  }
}

async function loadDialplans() {
  try {
    const body = await getJson('/api/dialplans');
    const select = $('funnel-dialplan');
    const names = body.in_service.length ? body.in_service : [body.default];
    select.replaceChildren(...names.map((n) => el('option', { value: n, text: n })));
    select.value = names.includes(body.default) ? body.default : names[0];
  } catch (err) {
    showNote('funnel-note', err.message);
  }
}

function pct(x) { return `${(100 * x).toFixed(0)} %`; }

async function refreshFunnel() {
  const dialplan = $('funnel-dialplan').value;
  if (!dialplan) return;
  const period = Number($('funnel-period').value);
  const since = period ? Date.now() - period : 0;
  let f;
  try {
    f = await getJson(`/api/funnel?dialplan=${encodeURIComponent(dialplan)}&since=${since}`);
    showNote('funnel-note', '');
  } catch (err) {
    showNote('funnel-note', err.message);
    $('funnel').replaceChildren();
    return;
  }
  const outcomes = Object.entries(f.outcomes).map(([k, n]) => el('span', { 'data-outcome': k }, `${k}: `, el('b', { class: 'n', text: String(n) })));
  const transfers = Object.entries(f.transfers).map(([k, n]) => el('span', { 'data-reason': k }, `${k}: `, el('b', { class: 'n', text: String(n) })));
  const menus = f.menus.map((m) => el('div', { class: 'menu', 'data-menu': m.menu },
    el('h3', { text: m.menu }),
    el('div', { class: 'figures' },
      el('span', {}, 'callers ', el('b', { class: 'callers', text: String(m.callers) })),
      el('span', {}, 'answers ', el('b', { class: 'answers', text: String(m.answers) })),
      el('span', {}, 'no match ', el('b', { class: 'no-match', text: String(m.no_match) }), ` (${pct(m.no_match_rate)})`),
      el('span', {}, 'no input ', el('b', { class: 'no-input', text: String(m.no_input) }), ` (${pct(m.no_input_rate)})`)),
    el('table', {},
      el('thead', {}, el('tr', {}, el('th', { text: 'option' }), el('th', { class: 'num', text: 'speech' }), el('th', { class: 'num', text: 'keys' }))),
      el('tbody', {}, ...m.options.map((o) => el('tr', { 'data-intent': o.intent },
        el('td', { text: o.intent }),
        el('td', { class: 'num speech', text: String(o.speech) }),
        el('td', { class: 'num dtmf', text: String(o.dtmf) }))))),
    m.unmatched.length ? el('h3', { text: 'Unmatched words' }) : null,
    m.unmatched.length ? el('table', { class: 'unmatched' }, el('tbody', {}, ...m.unmatched.map((u) => el('tr', {},
      el('td', { class: 'unmatched-text', text: u.text }),
      el('td', { class: 'num', text: `×${u.count}` }),
      el('td', {}, callLink(u.call_id, true)))))) : null));
  $('funnel').replaceChildren(
    el('div', { class: 'figures' },
      el('span', {}, 'calls ', el('b', { id: 'funnel-calls', text: String(f.calls) })), ...outcomes),
    el('div', { id: 'transfers', class: 'figures' }, 'transfers by reason: ', ...transfers),
    el('div', { class: 'menus' }, ...menus));
}

function refreshRecords() {
  refreshRecent();
  refreshFunnel();
}

// Calls ending in a busy hour must not turn into a query each: the
// records are read again at most every REFRESH_GAP_MS (a funnel over a
// month of calls takes the server a moment).
const REFRESH_GAP_MS = 3000;
let refreshDue = null;
let lastRefresh = 0;

function scheduleRefresh() {
  if (refreshDue !== null) return;
  const wait = Math.max(500, lastRefresh + REFRESH_GAP_MS - Date.now());
  refreshDue = setTimeout(() => {
    refreshDue = null;
    lastRefresh = Date.now();
    refreshRecords();
  }, wait);
}

// The details of an event: every field but its type and time, as text.
function details(event) {
  return Object.entries(event)
    .filter(([k]) => k !== 'type' && k !== 't_ms')
    .map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join('  ');
}

async function openCall(id) {
  const path = `/api/calls/${encodeURIComponent(id)}`;
  $('timeline').hidden = false;
  $('timeline-call').textContent = id;
  $('timeline-audio').replaceChildren();
  $('timeline-events').replaceChildren();
  let c;
  try {
    c = await getJson(path);
  } catch (err) {
    $('timeline-summary').textContent = err.message;
    return;
  }
  $('timeline-summary').textContent = `${c.dialplan || ''} · ${c.transport || ''} · ${new Date(c.start_unix_ms).toLocaleString()} · ${(c.duration_ms / 1000).toFixed(1)} s · ${c.outcome || ''}${c.transfer_target ? ` → ${c.transfer_target} (${c.transfer_reason || ''})` : ''} · ${c.hangup_cause}`;
  if (c.has_audio) $('timeline-audio').replaceChildren(el('audio', { controls: '', preload: 'none', src: `${path}/audio` }));
  $('timeline-events').replaceChildren(...c.events.map((e) => el('tr', { 'data-type': e.type },
    el('td', { class: 'num', text: (e.t_ms / 1000).toFixed(2) }),
    el('td', { text: e.type }),
    el('td', { class: 'unmatched-text', text: details(e) }))));
  $('timeline').scrollIntoView();
}

document.addEventListener('DOMContentLoaded', async () => {
  $('timeline-close').addEventListener('click', () => { $('timeline').hidden = true; });
  $('funnel-dialplan').addEventListener('change', refreshFunnel);
  $('funnel-period').addEventListener('change', refreshFunnel);
  connectEvents();
  setInterval(renderActive, 1000);
  await loadDialplans();
  refreshRecords();
  // The stream says when calls end; this catches what a reconnect missed.
  setInterval(refreshRecords, 30000);
});
