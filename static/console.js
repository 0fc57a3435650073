// The dispatcher console: the map of one comprehensive layer with the
// reports on it, the open reports in view, a report's detail and workflow
// actions, and what the map answers for a point. State lives in `state`;
// the views render from it.
import * as api from '/api.js';
import { chosenLanguage, language, t, useLanguage } from '/i18n.js';
import * as gm from '/map.js';

const $ = (id) => document.getElementById(id);

const state = {
  caller: null,
  layer: null,
  map: null,
  filter: 'open',
  reports: [],
  next: null,
  listError: '',
  selected: null, // { report, events, message }
  lookup: null, // { lon, lat, answer, message }
  categories: {}, // code -> name
};

const statuses = ['reported', 'registered', 'dispatched', 'in_progress', 'resolved', 'verified', 'closed', 'rejected', 'suspended'];
const filters = ['open', 'all', 'done', ...statuses];

// The moves each status allows (mirrors dispatch/workflow.go; the server
// decides, and says why when it refuses).
const moves = {
  reported: ['register', 'reject'],
  registered: ['dispatch', 'escalate', 'suspend', 'reject'],
  dispatched: ['start', 'escalate', 'extend', 'suspend'],
  in_progress: ['resolve', 'escalate', 'extend', 'suspend'],
  resolved: ['verify', 'reject'],
  verified: ['close'],
  suspended: ['resume'],
};

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null) continue;
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k in e) e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}

// fill replaces root's children, skipping empty ones and flattening lists.
function fill(root, ...children) {
  root.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

function formatTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat(language(), { timeZone: 'Asia/Shanghai', dateStyle: 'short', timeStyle: 'short' }).format(d);
}

function duration(ms) {
  const min = Math.max(0, Math.round(Math.abs(ms) / 60000));
  const d = Math.floor(min / 1440);
  const h = Math.floor((min % 1440) / 60);
  const m = min % 60;
  if (d > 0) return t('console.dur.dh', { d, h });
  if (h > 0) return t('console.dur.hm', { h, m });
  return t('console.dur.m', { m });
}

// timeLeft is the text and whether it is overdue for a due time.
function timeLeft(due) {
  if (!due) return null;
  const ms = new Date(due).getTime() - Date.now();
  if (Number.isNaN(ms)) return null;
  return ms < 0 ? { text: t('console.overdue', { time: duration(ms) }), overdue: true } : { text: t('console.left', { time: duration(ms) }), overdue: false };
}

const statusText = (s) => (statuses.includes(s) ? t(`console.status.${s}`) : s);
const tierText = (s) => (['grid', 'street', 'district', 'city'].includes(s) ? t(`console.tier.${s}`) : s ?? '—');
const actions = ['report', 'register', 'dispatch', 'start', 'resolve', 'verify', 'close', 'reject', 'escalate', 'extend', 'suspend', 'resume', 'report_in'];
const actionText = (a) => (actions.includes(a) ? t(`console.action.${a}`) : a);
const levels = ['district', 'street', 'community', 'grid', 'microgrid'];
const levelText = (l) => (levels.includes(l) ? t(`console.level.${l}`) : l ?? '');
const categoryText = (code) => (state.categories[code] ? `${state.categories[code]}` : code ?? '');

// highlightCodes are the grids to outline for a report: its primary grid
// and its owners below the street, so it shows at every zoom.
function highlightCodes(a) {
  const codes = (a?.primary?.chain ?? []).slice(2).map((g) => g.code);
  if (a?.primary?.code) codes.push(a.primary.code);
  return codes;
}

// ---- header ----

async function showStatus() {
  const ok = await api.ready();
  $('status').dataset.i18n = ok ? 'console.ready' : 'console.notReady';
  $('status').textContent = t($('status').dataset.i18n);
  $('status').className = 'status ' + (ok ? 'ok' : 'bad');
}

function renderWho() {
  const c = state.caller;
  if (!c) return;
  const scope = c.scope ? ` · ${c.scope.layer} ${c.scope.code}` : '';
  $('who').textContent = `${c.display_name || c.name} (${t(`console.role.${c.role}`)}${scope})`;
  $('signout').hidden = c.kind !== 'account';
}

function renderLanguageButtons() {
  for (const b of document.querySelectorAll('[data-lang]')) b.setAttribute('aria-pressed', String(b.dataset.lang === language()));
}

// ---- the list ----

function renderFilter() {
  const sel = $('status-filter');
  sel.replaceChildren(...filters.map((f) => el('option', { value: f, textContent: f === 'open' || f === 'all' || f === 'done' ? t(`console.filter.${f}`) : statusText(f) })));
  sel.value = state.filter;
}

function renderList() {
  const list = $('report-list');
  const scroll = list.scrollTop;
  const items = state.reports.map((r) => {
    const left = timeLeft(r.assignment?.due_at);
    const open = !['closed', 'rejected'].includes(r.status);
    return el('li', {
      class: 'report' + (state.selected?.report.id === r.id ? ' selected' : '') + (r.urgent ? ' urgent' : ''),
      dataset: { reportId: String(r.id), status: r.status },
      tabIndex: 0,
      onclick: () => select(r.id),
      onkeydown: (e) => { if (e.key === 'Enter') select(r.id); },
    },
    el('span', { class: 'report-id', textContent: `#${r.id}` }),
    el('span', { class: 'report-category', textContent: categoryText(r.category), title: r.category }),
    el('span', { class: `badge status-${r.status}`, textContent: statusText(r.status) }),
    r.urgent ? el('span', { class: 'badge urgent', textContent: t('console.urgent') }) : null,
    el('span', { class: 'report-tier', textContent: tierText(r.assignment?.tier) }),
    el('span', { class: 'report-left' + (left?.overdue && open ? ' overdue' : ''), textContent: open && left ? left.text : formatTime(r.reported_at) }));
  });
  list.replaceChildren(...items);
  list.scrollTop = scroll;
  $('report-count').textContent = t(state.next ? 'console.countMore' : 'console.count', { n: state.reports.length });
  $('list-message').textContent = state.listError || (state.reports.length === 0 ? t('console.noReports') : '');
}

let listSeq = 0;
async function loadList() {
  if (!state.map) return;
  const seq = ++listSeq;
  const q = new URLSearchParams({ bbox: gm.bbox(state.map), limit: '200' });
  if (state.filter !== 'all') q.set('status', state.filter);
  try {
    const body = await api.get(`/v1/reports?${q}`);
    if (seq !== listSeq) return;
    state.reports = body.reports ?? [];
    state.next = body.next || null;
    state.listError = '';
  } catch (err) {
    if (seq !== listSeq) return;
    state.listError = t('console.error', { message: err.message });
  }
  renderList();
}

function debounce(fn, ms) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}
const loadListSoon = debounce(loadList, 300);

// ---- the detail ----

async function select(id) {
  state.lookup = null;
  renderLookup();
  try {
    const [report, ev] = await Promise.all([api.get(`/v1/reports/${id}`), api.get(`/v1/reports/${id}/events`)]);
    state.selected = { report, events: ev.events ?? [], message: '' };
  } catch (err) {
    state.selected = { report: { id }, events: [], message: t('console.error', { message: err.message }) };
  }
  gm.highlight(state.map, highlightCodes(state.selected.report.assignment));
  renderDetail();
  renderList();
}

async function reloadSelected() {
  if (!state.selected) return;
  const id = state.selected.report.id;
  try {
    const [report, ev] = await Promise.all([api.get(`/v1/reports/${id}`), api.get(`/v1/reports/${id}/events`)]);
    if (state.selected?.report.id !== id) return;
    state.selected.report = report;
    state.selected.events = ev.events ?? [];
    renderDetail();
  } catch {
    // Keep what is shown; the next event tries again.
  }
}

async function act(action) {
  const s = state.selected;
  if (!s) return;
  const note = $('action-note')?.value ?? '';
  s.message = '';
  s.busy = true;
  renderDetail();
  try {
    s.report = await api.post(`/v1/reports/${s.report.id}/events`, { action, note });
    const ev = await api.get(`/v1/reports/${s.report.id}/events`);
    s.events = ev.events ?? [];
    s.message = t('console.done', { action: actionText(action) });
    s.error = false;
  } catch (err) {
    s.message = err.status === 409 || err.status === 403 ? err.message : t('console.error', { message: err.message });
    s.error = true;
  }
  s.busy = false;
  renderDetail();
  loadListSoon();
  gm.refresh(state.map, gm.REPORTS);
}

function chainText(chain) {
  return (chain ?? []).map((g) => g.name || g.code).join(' › ');
}

function row(key, ...value) {
  return [el('dt', { textContent: t(key) }), el('dd', {}, ...value)];
}

function renderDetail() {
  const box = $('detail');
  const s = state.selected;
  if (!s) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  const r = s.report;
  const a = r.assignment ?? {};
  const left = timeLeft(a.due_at);
  const open = r.status && !['closed', 'rejected'].includes(r.status);
  const canAct = state.caller && api.atLeast(state.caller.role, 'dispatcher');
  const coOwners = (a.co_owners ?? []).map((c) => el('li', {}, `${c.name || c.code} (${c.code}) · ${c.reason ?? ''} · ${t('console.metres', { n: Math.round(c.distance_m ?? 0) })}`));
  fill(box,
    el('div', { class: 'detail-head' },
      el('h2', { textContent: `#${r.id} ${categoryText(r.category)}` }),
      el('button', { type: 'button', class: 'close', id: 'detail-close', textContent: '×', ariaLabel: t('console.close'), onclick: () => { state.selected = null; gm.highlight(state.map, []); renderDetail(); renderList(); } })),
    r.description ? el('p', { class: 'description', textContent: r.description }) : null,
    el('dl', {},
      row('console.statusLabel', el('span', { class: `badge status-${r.status}`, textContent: statusText(r.status) }), r.urgent ? el('span', { class: 'badge urgent', textContent: t('console.urgent') }) : null),
      row('console.reportedAt', formatTime(r.reported_at)),
      row('console.primary', el('span', { id: 'detail-primary', class: 'code', textContent: a.primary?.code ?? '—' }), ' ', a.primary?.name ?? ''),
      row('console.chain', chainText(a.primary?.chain) || '—'),
      row('console.tier', tierText(a.tier)),
      row('console.departments', (a.departments ?? []).map((d) => d.name || d.code).join('、') || '—'),
      row('console.due', formatTime(a.due_at), ' ', left && open ? el('span', { class: 'report-left' + (left.overdue ? ' overdue' : ''), textContent: `(${left.text})` }) : null),
      a.next_step ? row('console.nextStep', actionText(a.next_step), a.step_due_at ? ` · ${formatTime(a.step_due_at)}` : '') : null,
      row('console.coOwners', coOwners.length ? el('ul', {}, coOwners) : '—'),
      a.explanation ? row('console.explanation', a.explanation) : null),
    canAct && moves[r.status] ? el('div', { class: 'actions' },
      el('input', { id: 'action-note', type: 'text', placeholder: t('console.note'), ariaLabel: t('console.note') }),
      el('div', { class: 'action-buttons' }, moves[r.status].map((m) => el('button', { type: 'button', dataset: { action: m }, disabled: !!s.busy, textContent: actionText(m), onclick: () => act(m) })))) : null,
    el('p', { id: 'detail-message', class: 'message' + (s.error ? ' error' : ''), role: 'status', textContent: s.message ?? '' }),
    el('h3', { textContent: t('console.history') }),
    el('ol', { class: 'history' }, s.events.map((e) => el('li', {},
      el('time', { textContent: formatTime(e.at) }), ' ',
      el('strong', { textContent: e.action ? actionText(e.action) : '' }), ' ',
      e.from || e.to ? `${e.from ? statusText(e.from) : ''} → ${e.to ? statusText(e.to) : ''} ` : '',
      e.actor ? `· ${e.actor}` : '', e.note ? ` · ${e.note}` : ''))),
  );
  box.hidden = false;
}

// ---- the lookup ----

async function lookup(lngLat) {
  state.selected = null;
  gm.highlight(state.map, []);
  renderDetail();
  const { lng, lat } = lngLat;
  state.lookup = { lon: lng, lat, answer: null, message: t('console.loading') };
  renderLookup();
  try {
    const q = new URLSearchParams({ lon: lng.toFixed(6), lat: lat.toFixed(6), layer: state.layer.id });
    const body = await api.get(`/v1/lookup?${q}`);
    state.lookup.answer = body.layers?.[state.layer.id] ?? null;
    state.lookup.message = state.lookup.answer?.chain?.length ? '' : t('console.nothingHere');
  } catch (err) {
    state.lookup.message = t('console.error', { message: err.message });
  }
  renderLookup();
  renderList();
}

function renderLookup() {
  const box = $('lookup');
  const l = state.lookup;
  if (!l) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  const a = l.answer;
  fill(box,
    el('div', { class: 'detail-head' },
      el('h2', { textContent: t('console.here') }),
      el('button', { type: 'button', class: 'close', textContent: '×', ariaLabel: t('console.close'), onclick: () => { state.lookup = null; renderLookup(); } })),
    el('p', { class: 'coords', textContent: `${l.lon.toFixed(5)}, ${l.lat.toFixed(5)}` }),
    l.message ? el('p', { class: 'message', textContent: l.message }) : null,
    a?.chain?.length ? el('ol', { id: 'lookup-chain', class: 'chain' }, a.chain.map((g) => el('li', {}, el('span', { class: 'level', textContent: levelText(g.level) }), ' ', g.name || '', ' ', el('span', { class: 'code', textContent: g.code })))) : null,
    a?.people?.length ? [el('h3', { textContent: t('console.people') }), el('ul', { class: 'people' }, a.people.map((p) => el('li', {}, `${p.role ?? ''} ${p.name ?? ''} `, p.phone ? el('a', { href: `tel:${p.phone}`, textContent: p.phone }) : '')))] : null,
    a?.co_owners?.length ? [el('h3', { textContent: t('console.coOwners') }), el('ul', {}, a.co_owners.map((c) => el('li', {}, `${c.name || c.code} (${c.code})${c.reason ? ' · ' + c.reason : ''}${c.distance_m != null ? ' · ' + t('console.metres', { n: Math.round(c.distance_m) }) : ''}`)))] : null,
  );
  box.hidden = false;
}

// ---- the search ----

// search is the header's search: the hits for the text last searched,
// whether the list under the box is open, and the option the arrow keys
// point at.
const search = { seq: 0, grids: [], reports: [], status: '', error: '', open: false, active: -1 };
let searchTimer = null;

function searchHits() {
  return [...search.grids.map((g) => ({ grid: g })), ...search.reports.map((r) => ({ report: r }))];
}

// runSearch asks /v1/search for text and shows what it found; it resolves
// to the hits, or null when the text is empty or a newer search overtook it.
async function runSearch(text) {
  clearTimeout(searchTimer);
  const q = text.trim();
  const seq = ++search.seq;
  if (!q) {
    closeSearch();
    return null;
  }
  Object.assign(search, { grids: [], reports: [], status: 'searching', error: '', open: true, active: -1 });
  renderSearch();
  try {
    const params = new URLSearchParams({ q });
    if (state.layer) params.set('layer', state.layer.id);
    const body = await api.get(`/v1/search?${params}`);
    if (seq !== search.seq) return null;
    search.grids = body?.grids ?? [];
    search.reports = body?.reports ?? [];
    search.status = searchHits().length ? '' : 'none';
  } catch (err) {
    if (seq !== search.seq) return null;
    search.status = 'error';
    search.error = err.message;
  }
  renderSearch();
  return searchHits();
}

function closeSearch() {
  search.open = false;
  search.active = -1;
  renderSearch();
}

function clearSearch() {
  clearTimeout(searchTimer);
  search.seq++;
  $('search').value = '';
  Object.assign(search, { grids: [], reports: [], status: '', error: '' });
  closeSearch();
}

function renderSearch() {
  const input = $('search');
  const list = $('search-results');
  const hits = searchHits();
  let i = 0;
  const option = (hit, ...children) => {
    const n = i++;
    return el('li', {
      id: `search-hit-${n}`,
      class: 'search-hit' + (n === search.active ? ' active' : ''),
      role: 'option',
      'aria-selected': String(n === search.active),
      dataset: hit.grid ? { code: hit.grid.code } : { reportId: String(hit.report.id) },
      // Keep the focus in the box while the pointer chooses.
      onmousedown: (e) => e.preventDefault(),
      onclick: () => choose(hit),
    }, ...children);
  };
  const note = search.status === 'searching' ? t('console.search.searching')
    : search.status === 'none' ? t('console.search.none')
      : search.status === 'error' ? t('console.error', { message: search.error }) : '';
  fill(list,
    note ? el('li', { class: 'search-note', role: 'presentation', textContent: note }) : null,
    search.grids.length ? el('li', { class: 'search-group', role: 'presentation', textContent: t('console.search.grids') }) : null,
    search.grids.map((g) => option({ grid: g },
      el('span', { class: 'code', textContent: g.code }),
      el('span', { class: 'name', textContent: g.name ?? '' }),
      el('span', { class: 'level', textContent: levelText(g.level) }))),
    search.reports.length ? el('li', { class: 'search-group', role: 'presentation', textContent: t('console.search.reports') }) : null,
    search.reports.map((r) => option({ report: r },
      el('span', { class: 'code', textContent: `#${r.id}` }),
      el('span', { class: 'name', textContent: r.external_id ?? '' }))),
  );
  const open = search.open && (note !== '' || hits.length > 0);
  list.hidden = !open;
  input.setAttribute('aria-expanded', String(open));
  if (open && search.active >= 0) {
    input.setAttribute('aria-activedescendant', `search-hit-${search.active}`);
    $(`search-hit-${search.active}`)?.scrollIntoView({ block: 'nearest' });
  } else {
    input.removeAttribute('aria-activedescendant');
  }
}

// choose goes to a hit: a grid is flown to and outlined, a report selected
// as a click in the list does.
function choose(hit) {
  closeSearch();
  if (hit.report) {
    const b = hit.report.bbox;
    if (state.map && b && !state.map.getBounds().contains([b[0], b[1]])) state.map.easeTo({ center: [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2] });
    select(hit.report.id);
    return;
  }
  const g = hit.grid;
  state.selected = null;
  state.lookup = null;
  renderDetail();
  renderLookup();
  renderList();
  if (!state.map) return;
  gm.highlight(state.map, [g.code]);
  const [w, s, e, n] = g.bbox;
  state.map.fitBounds([[w, s], [e, n]], { padding: 40, maxZoom: 17 });
}

function moveActive(step) {
  const n = searchHits().length;
  if (n === 0) return;
  search.open = true;
  search.active = search.active < 0 ? (step > 0 ? 0 : n - 1) : (search.active + step + n) % n;
  renderSearch();
}

function startSearch() {
  const input = $('search');
  input.addEventListener('input', () => {
    clearTimeout(searchTimer);
    if (!input.value.trim()) {
      clearSearch();
      return;
    }
    searchTimer = setTimeout(() => runSearch(input.value), 250);
  });
  input.addEventListener('keydown', async (e) => {
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      moveActive(e.key === 'ArrowDown' ? 1 : -1);
    } else if (e.key === 'Escape') {
      e.preventDefault();
      clearSearch();
    } else if (e.key === 'Enter') {
      e.preventDefault();
      const hits = searchHits();
      if (search.open && search.active >= 0 && hits[search.active]) {
        choose(hits[search.active]);
        return;
      }
      const found = await runSearch(input.value);
      if (found?.length === 1) choose(found[0]);
    }
  });
  input.addEventListener('focus', () => {
    if (searchHits().length || search.status) {
      search.open = true;
      renderSearch();
    }
  });
  $('search-box').addEventListener('focusout', (e) => {
    if (!$('search-box').contains(e.relatedTarget)) closeSearch();
  });
}

// ---- the map ----

function onMapClick(e) {
  const hits = state.map.queryRenderedFeatures(e.point, { layers: gm.reportLayers });
  const point = hits.find((f) => f.layer.id === 'report-points' && f.properties.id != null);
  if (point) return select(point.properties.id);
  const cluster = hits.find((f) => f.layer.id === 'report-clusters');
  if (cluster) return state.map.easeTo({ center: e.lngLat, zoom: Math.min(state.map.getZoom() + 2, 15) });
  return lookup(e.lngLat);
}

async function startMap() {
  const { layers } = await api.get('/v1/layers');
  const wanted = new URLSearchParams(location.search).get('layer');
  state.layer = layers.find((l) => l.id === wanted) ?? layers.find((l) => l.kind === 'comprehensive') ?? layers[0];
  if (!state.layer) {
    state.listError = t('console.noLayers');
    renderList();
    return;
  }
  $('layer-name').textContent = state.layer.name;
  // A departmental layer (police beats) can be drawn over the grids.
  const overlay = layers.find((l) => l.kind === 'departmental');
  if (overlay) {
    $('overlay-name').textContent = overlay.name;
    $('overlay-toggle').hidden = false;
    $('overlay').addEventListener('change', (e) => gm.showOverlay(state.map, overlay, e.target.checked));
  }
  let tilejson = null;
  try {
    tilejson = await api.get(`/tiles/${encodeURIComponent(state.layer.id)}.json`);
  } catch {
    // Without bounds the map starts at a default view.
  }
  const started = performance.now();
  const map = gm.createMap($('map'), state.layer, tilejson, state.filter);
  state.map = map;
  window.gridmap = { map, state };
  map.once('idle', () => {
    const ms = Math.round(performance.now());
    window.gridmap.firstIdleMs = ms;
    console.log(`map idle ${ms} ms after navigation (${Math.round(performance.now() - started)} ms after the map was made)`);
  });
  map.on('click', onMapClick);
  map.on('mousemove', (e) => {
    const hit = map.queryRenderedFeatures(e.point, { layers: gm.reportLayers }).length > 0;
    map.getCanvas().style.cursor = hit ? 'pointer' : '';
  });
  map.on('moveend', loadListSoon);
  map.once('load', loadList);
}

// ---- live ----

const refreshReports = debounce(() => {
  gm.refresh(state.map, gm.REPORTS);
  loadList();
}, 300);

function follow() {
  api.events({
    report: (d) => {
      if (!state.map) return;
      refreshReports();
      if (state.selected && d.report?.id === state.selected.report.id) reloadSelected();
    },
    boundary: (d) => {
      if (state.map && (!d.layer || d.layer === state.layer?.id)) gm.refresh(state.map, gm.GRIDS);
    },
  });
}

// ---- language ----

function renderAll() {
  renderLanguageButtons();
  renderWho();
  renderFilter();
  renderList();
  renderDetail();
  renderLookup();
  renderSearch();
  document.title = t('console.pageTitle');
}

async function switchLanguage(lang) {
  await useLanguage(lang, { save: true });
  renderAll();
}

async function main() {
  await useLanguage(chosenLanguage());
  renderAll();
  for (const b of document.querySelectorAll('[data-lang]')) b.addEventListener('click', () => switchLanguage(b.dataset.lang));
  $('signout').addEventListener('click', () => api.signOut());
  startSearch();
  $('status-filter').addEventListener('change', (e) => {
    state.filter = e.target.value;
    if (state.map) gm.showReportsWith(state.map, state.filter);
    loadList();
  });
  showStatus();
  state.caller = await api.session();
  renderWho();
  api.get('/v1/categories').then((b) => {
    for (const c of b.categories ?? []) state.categories[c.code] = c.name;
    renderList();
    renderDetail();
  }).catch(() => {});
  await startMap();
  follow();
  setInterval(() => renderList(), 60_000); // time left moves on
}

// A page being left aborts its requests: that is no error to report.
let leaving = false;
addEventListener('beforeunload', () => { leaving = true; });
addEventListener('pagehide', () => { leaving = true; });

main().catch((err) => {
  if (leaving || (err instanceof api.ApiError && err.status === 401)) return;
  console.error(err);
  $('list-message').textContent = String(err.message ?? err);
});
