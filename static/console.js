// The dispatcher console: the map of one comprehensive layer with the
// reports on it, the open reports in view, a report's detail and workflow
// actions, what the map answers for a point, and the indicators panel
// beside the list (indicators.js), the grid workers live on the map with
// their tracks (workers.js) and the patrol coverage (patrol.js). State
// lives in `state`; the views render from it.
import * as api from '/api.js';
import { chosenLanguage, language, t, useLanguage } from '/i18n.js';
import { el, fill, leaving } from '/dom.js';
import * as gm from '/map.js';
import { createIndicators } from '/indicators.js';
import { createWorkers } from '/workers.js';
import { createPatrol } from '/patrol.js';

const $ = (id) => document.getElementById(id);

const state = {
  caller: null,
  layer: null,
  map: null,
  timeZone: 'Asia/Shanghai', // the deployment's, from /v1/config
  // What the list shows: the reports in the map's view that pass these.
  filters: { status: 'open', category: '', tier: '', source: '', since: '', mine: false, sort: 'deadline' },
  reports: [],
  next: null,
  loadingMore: false,
  filterGen: 0, // counts filter changes: a page asked for under other filters is dropped
  counts: null, // GET /v1/reports/counts for the view and filters
  sources: new Set(), // sources seen, offered by the source filter
  listError: '',
  selected: null, // { report, events, message }
  lookup: null, // { lon, lat, answer, message }
  categories: {}, // code -> { name, parent }
};

// The indicators panel, a tab beside the list; it reads state.
const indicators = createIndicators(state);
// The on-duty grid workers and their tracks; the patrol coverage layers and tab.
const workers = createWorkers(state);
const patrol = createPatrol(state);

const statuses = ['reported', 'registered', 'dispatched', 'in_progress', 'resolved', 'verified', 'closed', 'rejected', 'suspended'];
const statusFilters = ['open', 'overdue', 'all', 'done', ...statuses];
const tiers = ['grid', 'street', 'district', 'city'];
// The time windows of the list, by how far back they reach.
const windows = { '24h': 864e5, '7d': 7 * 864e5, '30d': 30 * 864e5 };
const sorts = ['deadline', 'arrival'];
// A page of the list; more pages load on demand, never every report.
const pageSize = 100;

function formatTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat(language(), { timeZone: state.timeZone, dateStyle: 'short', timeStyle: 'short' }).format(d);
}

// duration says how long ms is; working time is told in working days of 8
// hours (a day of the clock has 24).
function duration(ms, working = false) {
  const dayMin = working ? 480 : 1440;
  const min = Math.max(0, Math.round(Math.abs(ms) / 60000));
  const d = Math.floor(min / dayMin);
  const h = Math.floor((min % dayMin) / 60);
  const m = min % 60;
  if (d > 0) return t(working ? 'console.dur.wdh' : 'console.dur.dh', { d, h });
  if (h > 0) return t('console.dur.hm', { h, m });
  return t('console.dur.m', { m });
}

// The clocks deadlines run on that count only working time (the server
// names the clock with each report's time left).
const workingClocks = ['working_hours', 'working_days'];

// timeLeft is the text and whether it is overdue for a report's time left
// as the server counted it, on the clock its deadline runs on: working
// time as read, round-the-clock time counted on from when it was read.
function timeLeft(r) {
  const left = r?.left;
  if (!left) return null;
  const working = workingClocks.includes(left.clock);
  const secs = working ? left.working_seconds : left.seconds - Math.round((Date.now() - (r.readAt ?? Date.now())) / 1000);
  const overdue = left.overdue || secs < 0;
  const key = `console.${overdue ? 'overdue' : 'left'}${working ? 'Working' : ''}`;
  return { text: t(key, { time: duration(secs * 1000, working) }), overdue };
}

const statusText = (s) => (statuses.includes(s) ? t(`console.status.${s}`) : s);
const tierText = (s) => (tiers.includes(s) ? t(`console.tier.${s}`) : s ?? '—');
const sourceText = (s) => t(`console.source.${s}`, {}, s);
const personRoleText = (r) => t(`console.person.${r}`, {}, r);
const reasonText = (r) => t(`console.reason.${r}`, {}, r);
const actionText = (a) => t(`console.action.${a}`, {}, a);
const levels = ['district', 'street', 'community', 'grid', 'microgrid'];
const levelText = (l) => (levels.includes(l) ? t(`console.level.${l}`) : l ?? '');
const categoryText = (code) => state.categories[code]?.name ?? code ?? '';

// highlightCodes are the grids to outline for a report: its primary grid
// and its owners below the street, so it shows at every zoom.
function highlightCodes(a) {
  const codes = (a?.primary?.chain ?? []).slice(2).map((g) => g.code);
  if (a?.primary?.code) codes.push(a.primary.code);
  return codes;
}

// ---- header ----

async function showStatus() {
  state.ready = await api.ready();
  renderStatus();
}

// renderStatus says whether the service is ready and, when it is, whether
// live updates arrive (the feed may be reconnecting).
function renderStatus() {
  const key = !state.ready ? 'console.notReady' : state.live === false ? 'console.liveLost' : 'console.ready';
  $('status').dataset.i18n = key;
  $('status').textContent = t(key);
  $('status').className = 'status ' + (key === 'console.ready' ? 'ok' : 'bad');
}

function renderWho() {
  const c = state.caller;
  if (!c) return;
  const scope = c.scope ? ` · ${c.scope.layer} ${c.scope.code}` : '';
  $('who').textContent = `${c.display_name || c.name} (${t(`console.role.${c.role}`)}${scope})`;
  $('signout').hidden = c.kind !== 'account';
  $('to-editor').hidden = !api.atLeast(c.role, 'editor');
  if (state.layer) $('to-editor').href = `/editor?layer=${encodeURIComponent(state.layer.id)}`;
}

function renderLanguageButtons() {
  for (const b of document.querySelectorAll('[data-lang]')) b.setAttribute('aria-pressed', String(b.dataset.lang === language()));
}

// ---- the list ----

function option(value, text) {
  return el('option', { value, textContent: text });
}

function statusFilterText(f) {
  return ['open', 'overdue', 'all', 'done'].includes(f) ? t(`console.filter.${f}`) : statusText(f);
}

function renderFilters() {
  const f = state.filters;
  const set = (id, options, value) => {
    const sel = $(id);
    sel.replaceChildren(...options);
    sel.value = value;
  };
  set('status-filter', statusFilters.map((s) => option(s, statusFilterText(s))), f.status);
  // Categories by code: a major class selects its subclasses too.
  const cats = Object.entries(state.categories).sort(([a], [b]) => a.localeCompare(b));
  set('filter-category', [option('', t('console.filter.any')), ...cats.map(([code, c]) => option(code, `${c.parent ? '　' : ''}${c.name}`))], f.category);
  set('filter-tier', [option('', t('console.filter.any')), ...tiers.map((x) => option(x, tierText(x)))], f.tier);
  renderSourceFilter();
  set('filter-since', [option('', t('console.filter.anyTime')), ...Object.keys(windows).map((w) => option(w, t(`console.filter.since.${w}`)))], f.since);
  set('sort', sorts.map((x) => option(x, t(`console.sort.${x}`))), f.sort);
  $('filter-mine').checked = f.mine;
}

// renderSourceFilter offers the sources seen so far.
function renderSourceFilter() {
  const sel = $('filter-source');
  const f = state.filters;
  const sources = [...new Set([...state.sources, f.source].filter(Boolean))].sort();
  sel.replaceChildren(option('', t('console.filter.any')), ...sources.map((x) => option(x, sourceText(x))));
  sel.value = f.source;
}

// renderCounts shows how many reports of the view and filters are open,
// overdue and in each status; each count selects its reports.
function renderCounts() {
  const box = $('status-counts');
  const focused = box.contains(document.activeElement) ? document.activeElement.dataset.filter : null;
  drawCounts(box);
  if (focused) box.querySelector(`[data-filter="${focused}"]`)?.focus();
}

function drawCounts(box) {
  const c = state.counts;
  if (!c) {
    box.replaceChildren();
    return;
  }
  const chip = (filter, n, extra = '') => el('button', {
    type: 'button',
    class: `chip ${extra}`,
    dataset: { filter },
    'aria-pressed': String(state.filters.status === filter),
    onclick: () => setFilter('status', state.filters.status === filter ? 'all' : filter),
  }, el('span', { class: 'chip-name', textContent: statusFilterText(filter) }), ' ', el('span', { class: 'chip-n', textContent: String(n) }));
  fill(box,
    chip('open', c.open ?? 0),
    chip('overdue', c.overdue ?? 0, (c.overdue ?? 0) > 0 ? 'late' : ''),
    statuses.filter((s) => c.counts?.[s]).map((s) => chip(s, c.counts[s], `status-chip status-${s}`)));
}

function renderList() {
  const list = $('report-list');
  const scroll = list.scrollTop;
  const items = state.reports.map((r) => {
    const left = timeLeft(r);
    return el('li', {
      class: 'report' + (state.selected?.report.id === r.id ? ' selected' : '') + (r.urgent ? ' urgent' : '') + (left?.overdue ? ' late' : ''),
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
    el('span', { class: 'report-where', textContent: r.assignment?.primary?.name ?? '' }),
    el('span', { class: 'report-left' + (left?.overdue ? ' overdue' : ''), textContent: left ? left.text : formatTime(r.reported_at) }));
  });
  list.replaceChildren(...items);
  list.scrollTop = scroll;
  $('report-count').textContent = t(state.next ? 'console.countMore' : 'console.count', { n: state.reports.length });
  $('list-message').textContent = state.listError || (state.reports.length === 0 ? t('console.noReports') : '');
  const more = $('more');
  more.hidden = !state.next;
  more.disabled = state.loadingMore;
  more.textContent = t(state.loadingMore ? 'console.loadingMore' : 'console.more');
}

// viewParams are the filters of the list and its counts, for the map's view.
function viewParams() {
  const f = state.filters;
  const q = new URLSearchParams({ bbox: gm.bbox(state.map) });
  if (f.category) q.set('category', f.category);
  if (f.tier) q.set('tier', f.tier);
  if (f.source) q.set('source', f.source);
  if (f.since) q.set('since', sinceTime(f.since));
  if (f.mine) q.set('mine', 'true');
  return q;
}

function listParams(cursor) {
  const f = state.filters;
  const q = viewParams();
  if (f.status === 'overdue') q.set('overdue', 'true');
  else if (f.status !== 'all') q.set('status', f.status);
  q.set('sort', f.sort);
  q.set('limit', String(pageSize));
  if (cursor) q.set('cursor', cursor);
  return q;
}

// received stamps reports with when they were read, so their time left
// counts on, and notes their sources for the source filter.
function received(reports) {
  const now = Date.now();
  let newSource = false;
  for (const r of reports) {
    r.readAt = now;
    if (r.source && !state.sources.has(r.source)) {
      state.sources.add(r.source);
      newSource = true;
    }
  }
  if (newSource && document.activeElement !== $('filter-source')) renderSourceFilter();
  return reports;
}

let listSeq = 0;
// loadList reads the list and the counts again: the first page, or with
// keep as many reports as are listed now (up to 1000), so that a change
// elsewhere does not take away the pages a dispatcher has loaded.
async function loadList({ keep = false } = {}) {
  if (!state.map) return;
  const seq = ++listSeq;
  const params = listParams();
  if (keep) params.set('limit', String(Math.min(1000, Math.max(pageSize, state.reports.length))));
  try {
    const [page, counts] = await Promise.all([api.get(`/v1/reports?${params}`), api.get(`/v1/reports/counts?${viewParams()}`)]);
    if (seq !== listSeq) return;
    state.reports = received(page.reports ?? []);
    state.next = page.next || null;
    state.nextSeq = seq;
    state.counts = counts;
    state.listError = '';
  } catch (err) {
    if (seq !== listSeq) return;
    state.listError = t('console.error', { message: err.message });
  }
  state.loadingMore = false;
  renderCounts();
  renderList();
  if (state.moreWanted && seq === listSeq) {
    state.moreWanted = false;
    loadMore();
  }
}

// loadMore appends the next page of the list last loaded (not of one being
// loaded: its cursor would belong to other filters).
async function loadMore() {
  if (state.nextSeq !== listSeq) {
    // The list is being read again (a live change): the next page follows it.
    state.moreWanted = true;
    return;
  }
  if (!state.next || state.loadingMore) return;
  const seq = listSeq;
  const filters = state.filterGen;
  state.loadingMore = true;
  renderList();
  // A live reload that overtook this page read the list as it was: the
  // page is asked for again once that reload is in (or now, if it is),
  // unless the filters changed meanwhile.
  const overtaken = () => {
    state.loadingMore = false;
    if (filters !== state.filterGen) return;
    if (state.nextSeq === listSeq) loadMore();
    else state.moreWanted = true;
  };
  try {
    const page = await api.get(`/v1/reports?${listParams(state.next)}`);
    if (seq !== listSeq) return overtaken();
    const seen = new Set(state.reports.map((r) => r.id));
    state.reports.push(...received(page.reports ?? []).filter((r) => !seen.has(r.id)));
    state.next = page.next || null;
    state.nextSeq = seq;
  } catch (err) {
    if (seq !== listSeq) return overtaken();
    state.listError = t('console.error', { message: err.message });
  }
  state.loadingMore = false;
  renderList();
}

// setFilter changes one filter; the map's reports follow the status and
// category, the list and counts every filter.
function setFilter(name, value) {
  state.filters[name] = value;
  state.filterGen++;
  state.next = null; // the cursor belongs to the filters before
  state.moreWanted = false;
  renderFilters();
  renderList(); // no "more" for the filters before
  if (state.map && ['status', 'category', 'since'].includes(name)) gm.showReportsWith(state.map, tileFilters());
  loadList();
}

// tileFilters are the list's filters the reports tiles apply too.
function tileFilters() {
  const f = state.filters;
  return { status: tileStatus(), category: f.category, since: f.since ? sinceTime(f.since) : '' };
}

// sinceTime is the start of a time window, to the minute (so that tiles
// asked for within a minute share their address, and the browser's cache).
function sinceTime(w) {
  return new Date(Math.floor((Date.now() - windows[w]) / 60000) * 60000).toISOString();
}

// tileStatus is the status filter the reports tiles can apply: overdue
// reports are among the open ones.
function tileStatus() {
  return state.filters.status === 'overdue' ? 'open' : state.filters.status;
}

// debounce runs fn ms after the last call, and at least every maxWait ms
// while calls keep coming (a storm of events still refreshes the view).
function debounce(fn, ms, maxWait = Infinity) {
  let timer = null;
  let first = 0;
  return () => {
    const now = Date.now();
    if (!timer) first = now;
    clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      fn();
    }, now - first >= maxWait ? 0 : ms);
  };
}
const loadListSoon = debounce(loadList, 300);

// ---- the detail ----

let selectSeq = 0;
async function select(id) {
  const seq = ++selectSeq;
  state.lookup = null;
  renderLookup();
  let selected;
  try {
    const [report, ev] = await Promise.all([api.get(`/v1/reports/${id}`), api.get(`/v1/reports/${id}/events`)]);
    selected = { report: received([report])[0], events: ev.events ?? [], message: '', note: '' };
  } catch (err) {
    selected = { report: { id }, events: [], message: t('console.error', { message: err.message }), error: true, note: '' };
  }
  if (seq !== selectSeq) return; // another report was chosen meanwhile
  state.selected = selected;
  gm.highlight(state.map, highlightCodes(state.selected.report.assignment));
  renderDetail();
  renderList();
  if (!selected.error) loadNearby();
}

// loadNearby reads the on-duty workers near the selected report, to show
// beside it and to dispatch to. A caller who may not see workers (403)
// gets no list; a server without the route says so.
async function loadNearby() {
  const s = state.selected;
  if (!s || !state.caller || !api.atLeast(state.caller.role, 'dispatcher')) return;
  const id = s.report.id;
  s.nearby = { loading: !s.nearby?.workers, workers: s.nearby?.workers ?? null, error: null, hidden: false };
  renderDetail();
  let nearby;
  try {
    const body = await api.get(`/v1/reports/${id}/nearby-workers`);
    nearby = { loading: false, workers: body.workers ?? [], error: null, hidden: false };
  } catch (err) {
    nearby = {
      loading: false, workers: null, hidden: err.status === 403,
      error: api.notOffered(err) ? { text: t('workers.unavailable'), unavailable: true } : { text: t('console.error', { message: err.message }), unavailable: false },
    };
  }
  if (state.selected !== s) return;
  s.nearby = nearby;
  // A worker chosen stays chosen only while still listed.
  if (s.assignee && !(nearby.workers ?? []).some((w) => w.worker === s.assignee)) s.assignee = null;
  renderDetail();
}

async function reloadSelected() {
  if (!state.selected || state.selected.busy) return; // a move under way answers with the report
  const id = state.selected.report.id;
  try {
    const [report, ev] = await Promise.all([api.get(`/v1/reports/${id}`), api.get(`/v1/reports/${id}/events`)]);
    if (state.selected?.report.id !== id || state.selected.busy) return;
    state.selected.report = received([report])[0];
    state.selected.events = ev.events ?? [];
    renderDetail();
  } catch {
    // Keep what is shown; the next event tries again.
  }
}

// act sends a workflow move. A refusal (409: someone moved the report
// meanwhile) shows the server's reason and the moves allowed now.
async function act(action, departments) {
  const s = state.selected;
  if (!s) return;
  const note = s.note ?? '';
  s.message = '';
  s.busy = true;
  renderDetail();
  const id = s.report.id;
  try {
    const body = departments ? { action, note, departments } : { action, note };
    // A dispatch goes to the worker chosen from those nearby, if any.
    if (action === 'dispatch' && s.assignee) body.assignee = s.assignee;
    const report = await api.post(`/v1/reports/${id}/events`, body);
    s.report = received([report])[0];
    s.message = t('console.done', { action: actionText(action) });
    s.error = false;
    s.note = '';
    if (body.assignee) s.assignee = null;
  } catch (err) {
    s.error = true;
    s.message = err.status === 409 || err.status === 403 || err.status === 400 ? err.message : t('console.error', { message: err.message });
    if (err.status === 409) {
      await reloadSelected();
      const allowed = (state.selected?.report.moves ?? []).map(actionText).join('、');
      s.message = `${err.message} · ${t('console.allowedNow', { moves: allowed || t('console.noMoves') })}`;
    }
  }
  try {
    s.events = (await api.get(`/v1/reports/${id}/events`)).events ?? s.events;
  } catch {
    // The history shows again with the next change.
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

function departmentText(d) {
  const name = d.name || d.code;
  return d.unit ? `${name}（${d.unit.name || d.unit.code}）` : name;
}

const departmentName = (code) => {
  const d = (state.selected?.report.assignment?.departments ?? []).find((x) => x.code === code);
  return d ? d.name || d.code : code;
};

// renderTasks lists the departments an escalation called in (吹哨), each
// to report in (报到) by its own deadline, with a report-in button while
// the caller may record it.
function renderTasks(r, busy) {
  const tasks = r.tasks ?? [];
  if (!tasks.length) return null;
  const canReportIn = (r.moves ?? []).includes('report_in');
  return [
    el('h3', { textContent: t('console.tasks') }),
    el('ul', { id: 'detail-tasks', class: 'tasks' }, tasks.map((task) => {
      const done = task.status !== 'open';
      const late = !done && new Date(task.report_in_due).getTime() < Date.now();
      return el('li', { dataset: { department: task.department }, class: done ? 'done' : late ? 'late' : '' },
        el('strong', { textContent: departmentName(task.department) }), ' ',
        done
          ? t('console.task.reportedIn', { time: formatTime(task.reported_in_at) })
          : t(late ? 'console.task.late' : 'console.task.due', { time: formatTime(task.report_in_due) }),
        !done && canReportIn ? el('button', { type: 'button', class: 'small', disabled: busy, dataset: { action: 'report_in' }, textContent: actionText('report_in'), onclick: () => act('report_in', [task.department]) }) : null);
    })),
  ];
}

function renderDetail() {
  const box = $('detail');
  // What had the focus in the panel keeps it when the panel is drawn again.
  const focused = box.contains(document.activeElement) ? document.activeElement : null;
  const focusKey = focused && (focused.id || (focused.dataset.action ? `[data-action="${focused.dataset.action}"]` : ''));
  const caret = focused?.id === 'action-note' ? focused.selectionStart : null;
  try {
    drawDetail(box);
  } finally {
    if (focusKey && !box.hidden) {
      const again = focusKey.startsWith('[') ? box.querySelector(focusKey) : $(focusKey);
      again?.focus();
      if (again && caret !== null) again.setSelectionRange(caret, caret);
    }
  }
}

// workerName is a worker's name as the console knows it: from the
// report's nearby workers or the live ones, else the username.
function workerName(who) {
  if (!who) return '';
  if (typeof who === 'object') return who.name || who.worker || '';
  const near = (state.selected?.nearby?.workers ?? []).find((w) => w.worker === who);
  return near?.name || workers.state.workers[who]?.name || who;
}

// renderNearby lists the on-duty workers near the report with their
// distance; while the report can be dispatched each can be chosen as its
// assignee.
function renderNearby(s, canPick) {
  const n = s.nearby;
  if (!n || n.hidden) return null;
  const busy = !!s.busy;
  const pickOne = (worker) => {
    s.assignee = worker;
    renderDetail();
  };
  const radio = (id, worker, label) => el('label', { class: 'pick' },
    el('input', { type: 'radio', name: 'assignee', id, value: worker ?? '', checked: (s.assignee ?? null) === worker, disabled: busy, onchange: () => pickOne(worker) }), ' ', label);
  const list = n.workers ?? [];
  return [
    el('h3', { textContent: t('workers.nearby') }),
    n.loading ? el('p', { class: 'message', textContent: t('console.loading') }) : null,
    n.error ? el('p', { class: 'message' + (n.error.unavailable ? ' unavailable' : ' error'), textContent: n.error.text }) : null,
    n.workers && !list.length ? el('p', { class: 'message', textContent: t('workers.noneNearby') }) : null,
    list.length ? el('ul', { id: 'detail-nearby', class: 'nearby' },
      canPick ? el('li', { dataset: { worker: '' } }, radio('assignee-none', null, t('workers.noAssignee'))) : null,
      list.map((w) => {
        const text = [el('strong', { textContent: w.name || w.worker }), ' ', el('span', { class: 'code', textContent: w.grid ?? '' }), ' · ',
          el('span', { class: 'distance', textContent: t('console.metres', { n: Math.round(w.distance_m ?? 0) }) })];
        return el('li', { dataset: { worker: w.worker } }, canPick ? radio(`assignee-${w.worker}`, w.worker, text) : text);
      })) : null,
    canPick && s.assignee ? el('p', { id: 'detail-pick', class: 'message', textContent: t('workers.dispatchTo', { name: workerName(s.assignee), action: actionText('dispatch') }) }) : null,
  ];
}

function drawDetail(box) {
  const s = state.selected;
  if (!s) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  const r = s.report;
  const a = r.assignment ?? {};
  const left = timeLeft(r);
  // The moves the server offers this caller here; report-in goes by task.
  const moves = (r.moves ?? []).filter((m) => m !== 'report_in');
  const coOwners = (a.co_owners ?? []).map((c) => el('li', {}, `${c.name || c.code} (${c.code}) · ${c.reason ? reasonText(c.reason) : ''} · ${t('console.metres', { n: Math.round(c.distance_m ?? 0) })}`));
  fill(box,
    el('div', { class: 'detail-head' },
      el('h2', { textContent: `#${r.id} ${categoryText(r.category)}` }),
      el('button', { type: 'button', class: 'close', id: 'detail-close', textContent: '×', ariaLabel: t('console.close'), onclick: () => { state.selected = null; gm.highlight(state.map, []); renderDetail(); renderList(); } })),
    r.description ? el('p', { class: 'description', textContent: r.description }) : null,
    el('dl', {},
      row('console.statusLabel', el('span', { class: `badge status-${r.status}`, textContent: statusText(r.status) }), ' ', r.urgent ? el('span', { class: 'badge urgent', textContent: t('console.urgent') }) : null),
      row('console.reportedAt', formatTime(r.reported_at), r.source ? ` · ${sourceText(r.source)}` : ''),
      row('console.primary', el('span', { id: 'detail-primary', class: 'code', textContent: a.primary?.code ?? '—' }), ' ', a.primary?.name ?? ''),
      row('console.chain', chainText(a.primary?.chain) || '—'),
      row('console.tier', tierText(a.tier)),
      row('console.departments', (a.departments ?? []).map(departmentText).join('、') || '—'),
      r.assignee ? row('workers.assignee', el('span', { id: 'detail-assignee', textContent: workerName(r.assignee) })) : null,
      row('console.due', el('span', { id: 'detail-due', textContent: formatTime(a.due_at) }), ' ', left ? el('span', { id: 'detail-left', class: 'report-left' + (left.overdue ? ' overdue' : ''), textContent: left.text }) : null),
      a.next_step ? row('console.nextStep', actionText(a.next_step), a.step_due_at ? ` · ${formatTime(a.step_due_at)}` : '') : null,
      row('console.coOwners', coOwners.length ? el('ul', {}, coOwners) : '—'),
      a.explanation ? row('console.explanation', a.explanation) : null),
    renderNearby(s, moves.includes('dispatch')),
    moves.length ? el('div', { class: 'actions' },
      el('input', { id: 'action-note', type: 'text', value: s.note ?? '', placeholder: t('console.note'), ariaLabel: t('console.note'), oninput: (e) => { s.note = e.target.value; } }),
      el('div', { class: 'action-buttons' }, moves.map((m) => el('button', { type: 'button', dataset: { action: m }, disabled: !!s.busy, textContent: actionText(m), onclick: () => act(m) })))) : null,
    el('p', { id: 'detail-message', class: 'message' + (s.error ? ' error' : ''), role: 'status', textContent: s.message ?? '' }),
    renderTasks(r, !!s.busy),
    el('h3', { textContent: t('console.history') }),
    el('ol', { class: 'history' }, s.events.map((e) => el('li', {},
      el('time', { textContent: formatTime(e.at) }), ' ',
      el('strong', { textContent: e.action ? actionText(e.action) : '' }), ' ',
      e.from || e.to ? `${e.from ? statusText(e.from) : ''} → ${e.to ? statusText(e.to) : ''} ` : '',
      e.departments?.length ? `· ${e.departments.map(departmentName).join('、')} ` : '',
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
    a?.people?.length ? [el('h3', { textContent: t('console.people') }), el('ul', { class: 'people' }, a.people.map((p) => el('li', {}, `${p.role ? personRoleText(p.role) : ''} ${p.name ?? ''} `, p.phone ? el('a', { href: `tel:${p.phone}`, textContent: p.phone }) : '')))] : null,
    a?.co_owners?.length ? [el('h3', { textContent: t('console.coOwners') }), el('ul', {}, a.co_owners.map((c) => el('li', {}, `${c.name || c.code} (${c.code})${c.reason ? ' · ' + reasonText(c.reason) : ''}${c.distance_m != null ? ' · ' + t('console.metres', { n: Math.round(c.distance_m) }) : ''}`)))] : null,
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
  if (indicators.state.shown) indicators.select({ key: g.code, name: g.name }, { fly: false });
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
  const layers = [...gm.reportLayers, ...gm.workerLayers].filter((id) => state.map.getLayer(id));
  const hits = state.map.queryRenderedFeatures(e.point, { layers });
  if (workers.clicked(hits)) return;
  const point = hits.find((f) => f.layer.id === 'report-points' && f.properties.id != null);
  if (point) return select(point.properties.id);
  const cluster = hits.find((f) => f.layer.id === 'report-clusters');
  if (cluster) return state.map.easeTo({ center: e.lngLat, zoom: Math.min(state.map.getZoom() + 2, 15) });
  return lookup(e.lngLat);
}

// startMap shows layer (an entry of /v1/layers) and the departmental
// layer overlay may draw over it.
async function startMap(layers) {
  const wanted = new URLSearchParams(location.search).get('layer');
  state.layer = layers.find((l) => l.id === wanted) ?? layers.find((l) => l.kind === 'comprehensive') ?? layers[0];
  if (!state.layer) {
    state.listError = t('console.noLayers');
    renderList();
    return;
  }
  $('layer-name').textContent = state.layer.name;
  renderWho();
  let tilejson = null;
  try {
    tilejson = await api.get(`/tiles/${encodeURIComponent(state.layer.id)}.json`);
  } catch {
    // Without bounds the map starts at a default view.
  }
  const started = performance.now();
  const map = await gm.createMap($('map'), state.layer, tilejson, { ...tileFilters(), basemap: state.basemap });
  state.map = map;
  window.gridmap = { map, state, indicators: indicators.state, workers: workers.state, patrol: patrol.state };
  map.once('idle', () => {
    const ms = Math.round(performance.now());
    window.gridmap.firstIdleMs = ms;
    console.log(`map idle ${ms} ms after navigation (${Math.round(performance.now() - started)} ms after the map was made)`);
  });
  map.on('click', onMapClick);
  map.on('mousemove', (e) => {
    const hit = map.queryRenderedFeatures(e.point, { layers: [...gm.reportLayers, ...gm.workerLayers].filter((id) => map.getLayer(id)) }).length > 0;
    map.getCanvas().style.cursor = hit ? 'pointer' : '';
  });
  map.on('moveend', loadListSoon);
  map.once('load', () => {
    state.mapLoaded = true;
    showTiers();
    indicators.mapReady();
    workers.mapReady();
    patrol.mapReady();
    loadList();
  });
  // A departmental layer (police beats) can be drawn over the grids.
  const overlay = layers.find((l) => l.kind === 'departmental');
  if (overlay) {
    $('overlay-name').textContent = overlay.name;
    $('overlay-toggle').hidden = false;
    $('overlay').addEventListener('change', (e) => gm.showOverlay(state.map, overlay, e.target.checked));
  }
}

// showTiers labels single reports above the grid tier in the page's language.
function showTiers() {
  if (!state.mapLoaded) return;
  gm.showTiers(state.map, Object.fromEntries(tiers.slice(1).map((x) => [x, t(`console.tierShort.${x}`)])));
}

// ---- the panel's tabs ----

const tabs = ['reports', 'indicators', 'patrol'];
let tabShown = 'reports';

// showTab shows one of the panel's views: the list, the indicators or
// the patrol tab (both of which widen the panel).
function showTab(name) {
  tabShown = name;
  $('reports-view').hidden = name !== 'reports';
  document.querySelector('aside.panel').classList.toggle('wide', name !== 'reports');
  for (const x of tabs) {
    $(`tab-${x}`).setAttribute('aria-selected', String(x === name));
    $(`tab-${x}`).tabIndex = x === name ? 0 : -1;
  }
  state.map?.resize();
  if (indicators.state.shown !== (name === 'indicators')) indicators.show(name === 'indicators');
  patrol.show(name === 'patrol');
}

function startTabs() {
  for (const x of tabs) $(`tab-${x}`).addEventListener('click', () => showTab(x));
  $('panel-tabs').addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
    const i = tabs.indexOf(tabShown);
    const next = tabs[(i + (e.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length];
    showTab(next);
    $(`tab-${next}`).focus();
  });
}

// ---- live ----

const refreshReports = debounce(() => {
  gm.refresh(state.map, gm.REPORTS);
  loadList({ keep: true });
}, 300, 2000);

function follow() {
  state.events = api.events({
    report: (d) => {
      if (!state.map) return;
      refreshReports();
      indicators.changed();
      if (state.selected && d.report?.id === state.selected.report.id) reloadSelected();
    },
    worker: (d) => workers.moved(d),
    boundary: (d) => {
      if (state.map && (!d.layer || d.layer === state.layer?.id)) gm.refresh(state.map, gm.GRIDS);
    },
  }, (live) => {
    state.live = live;
    if (state.ready !== undefined) renderStatus();
  });
}

// ---- language ----

function renderAll() {
  renderLanguageButtons();
  renderWho();
  renderFilters();
  renderCounts();
  renderList();
  renderDetail();
  renderLookup();
  renderSearch();
  indicators.render();
  workers.render();
  patrol.render();
  showTiers();
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
  $('signout').addEventListener('click', () => {
    // Once the session ends every request answers 401: stop the live feed
    // and the map's tile requests first, so that nothing is left asking.
    state.events?.close();
    state.map?.remove();
    state.map = null;
    api.signOut();
  });
  startSearch();
  indicators.start();
  workers.start();
  patrol.start();
  startTabs();
  for (const [id, name] of [['status-filter', 'status'], ['filter-category', 'category'], ['filter-tier', 'tier'], ['filter-source', 'source'], ['filter-since', 'since'], ['sort', 'sort']]) {
    $(id).addEventListener('change', (e) => setFilter(name, e.target.value));
  }
  $('filter-mine').addEventListener('change', (e) => setFilter('mine', e.target.checked));
  $('more').addEventListener('click', loadMore);
  showStatus();
  // What the map needs first, at once.
  const [caller, { layers }, config] = await Promise.all([api.session(), api.get('/v1/layers'), api.get('/v1/config').catch(() => ({}))]);
  state.caller = caller;
  if (config.time_zone) state.timeZone = config.time_zone;
  state.basemap = await gm.basemapStyle(config.basemap_style);
  renderWho();
  api.get('/v1/categories').then((b) => {
    for (const c of b.categories ?? []) state.categories[c.code] = { name: c.name, parent: c.parent };
    renderFilters();
    renderList();
    renderDetail();
    indicators.render();
  }).catch(() => {});
  await startMap(layers);
  if (state.layer) workers.load();
  follow();
  // Time left moves on: read it again each minute, unless the dispatcher
  // has paged further down the list than a reload would keep.
  setInterval(() => {
    loadList({ keep: true });
    reloadSelected();
    loadNearby();
  }, 60_000);
}

main().catch((err) => {
  if (leaving() || (err instanceof api.ApiError && err.status === 401)) return;
  console.error(err);
  $('list-message').textContent = String(err.message ?? err);
});
