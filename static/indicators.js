// The console's indicators panel: the figures of GET /v1/stats by grid,
// street, district or department over a window, in a sortable table with
// small charts (uPlot); a grid's trend; the grids flagged by threshold or
// surge, filled on the map; the workload per resident; a CSV of every
// table; and the map's hotspot layer, which follows the panel's window and
// category. Every part reads the same window, sent as explicit from and
// to. What a server does not offer (a 404 for the route itself) is said to
// be unavailable while the rest works. State lives in `ind`; the views
// render from it.
import * as api from '/api.js';
import { language, t } from '/i18n.js';
import { el, fill } from '/dom.js';
import * as gm from '/map.js';
import { Latest } from '/latest.js';

const $ = (id) => document.getElementById(id);
// uPlot loads when a chart is first drawn, not with the console.
const uplot = () => import('uplot').then((m) => m.default);

export const groups = ['grid', 'street', 'district', 'department'];
export const windows = ['month', 'lastMonth', '30d', 'year', 'custom'];
// The groups the charts show: the busiest.
const topN = 12;
// Live changes read the figures again at most this often.
const refreshEvery = 5000;

// Columns as [field, kind]; the kind says how a value shows and sorts.
const statColumns = [
  ['rank', 'int'], ['name', 'text'], ['received', 'int'], ['registered', 'int'], ['closed', 'int'], ['overdue', 'int'],
  ['on_time_rate', 'rate'], ['closure_rate', 'rate'], ['rework_rate', 'rate'], ['median_handling_s', 'duration'],
];
// The assessment's workers (GET /v1/assessment): key is the username.
const assessmentColumns = [
  ['name', 'text'], ['grid_name', 'text'], ['filed', 'int'], ['filed_closed_on_time', 'int'], ['patrol_days', 'int'], ['points', 'int'],
  ['grid_coverage', 'rate'], ['visits', 'int'],
];
const workloadColumns = [
  ['name', 'text'], ['households', 'int'], ['population', 'int'], ['received', 'int'], ['open', 'int'],
  ['per_1000_residents', 'dec1'], ['per_100_households', 'dec1'], ['load_index', 'dec2'],
];

const colours = { received: '#1f5fbf', receivedFill: 'rgba(31, 95, 191, 0.35)', onTime: '#16a34a', closed: '#16a34a' };

// ---- time windows, in the deployment's time zone ----

function zonedParts(date, timeZone) {
  const p = Object.fromEntries(new Intl.DateTimeFormat('en-US', {
    timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
  }).formatToParts(date).map((x) => [x.type, Number(x.value)]));
  return { y: p.year, m: p.month, d: p.day, h: p.hour, min: p.minute, s: p.second };
}

// midnight is the instant 00:00 of y-m-d begins in timeZone (a day or
// month past the end rolls over, as Date.UTC does).
function midnight(y, m, d, timeZone) {
  const wall = Date.UTC(y, m - 1, d);
  let at = wall;
  for (let i = 0; i < 2; i++) {
    const p = zonedParts(new Date(at), timeZone);
    at = wall - (Date.UTC(p.y, p.m - 1, p.d, p.h, p.min, p.s) - at);
  }
  return new Date(at);
}

const iso = (d) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
const pad = (n) => String(n).padStart(2, '0');

// stamp is an RFC 3339 instant as a file name may carry it: its day in
// timeZone, with the hour and minute (2026-03-07T0815) unless midnight.
function stamp(isoTime, timeZone) {
  const p = zonedParts(new Date(isoTime), timeZone);
  return `${p.y}-${pad(p.m)}-${pad(p.d)}${p.h || p.min ? `T${pad(p.h)}${pad(p.min)}` : ''}`;
}

function dateParts(value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value ?? '');
  return m ? { y: Number(m[1]), m: Number(m[2]), d: Number(m[3]) } : null;
}

// ---- formatting ----

const number = (v, digits = 0) => new Intl.NumberFormat(language(), { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(v);
const percent = (v) => new Intl.NumberFormat(language(), { style: 'percent', minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(v);

// handling says a median handling time in hours, or in days past two.
function handling(seconds) {
  const hours = seconds / 3600;
  return hours < 48 ? t('indicators.hours', { n: number(hours, 1) }) : t('indicators.days', { n: number(hours / 24, 1) });
}

const rowName = (r) => r.name || r.key || '';

function cell(r, key, kind) {
  if (key === 'name') return rowName(r);
  const v = r[key];
  if (v === null || v === undefined) return '—';
  switch (kind) {
    case 'rate': return percent(v);
    case 'duration': return handling(v);
    case 'dec1': return number(v, 1);
    case 'dec2': return number(v, 2);
    default: return typeof v === 'number' ? number(v) : String(v);
  }
}

const { notOffered } = api;

// problem says why a part could not be read: unavailable for a route the
// server does not offer or one the signed-in role may not read, else the
// server's message.
function problem(err) {
  if (notOffered(err)) return { text: t('indicators.unavailable', { message: err.message }), unavailable: true };
  if (err?.status === 403) return { text: t('indicators.forbidden'), unavailable: true };
  return { text: t('console.error', { message: err?.message ?? String(err) }), unavailable: false };
}

// say shows a part's problem (an error, or a note when unavailable), else
// the text given.
function say(box, prob, text = '') {
  box.textContent = prob?.text || text;
  box.classList.toggle('error', !!prob && !prob.unavailable);
  box.classList.toggle('unavailable', !!prob?.unavailable);
}

// sorted orders rows by sort.key in sort.dir (1 up, -1 down), values
// missing last either way, then by key.
function sorted(rows, columns, sort) {
  const kind = columns.find(([k]) => k === sort.key)?.[1];
  const value = (r) => (sort.key === 'name' ? rowName(r) : r[sort.key]);
  return [...rows].sort((a, b) => {
    const x = value(a);
    const y = value(b);
    const xNone = x === null || x === undefined;
    const yNone = y === null || y === undefined;
    if (xNone || yNone) return xNone === yNone ? 0 : xNone ? 1 : -1;
    const c = kind === 'text' ? String(x).localeCompare(String(y), language()) : x - y;
    return c * sort.dir || String(a.key).localeCompare(String(b.key));
  });
}

// createIndicators makes the panel inside the console: con is the
// console's state (layer, map, mapLoaded, categories, timeZone), read when
// needed.
export function createIndicators(con) {
  const ind = {
    shown: false,
    group: 'grid',
    window: 'month',
    category: '',
    from: '', // the custom window's first and last day, yyyy-mm-dd
    to: '',
    loading: false,
    stats: null,
    statsError: null, // a problem(): { text, unavailable }
    flags: null,
    flagsError: null,
    workload: null,
    workloadError: null,
    assessment: null, // GET /v1/assessment, its workers given a key
    assessmentError: null,
    selected: null, // { key, name }: the grid whose trend shows
    trend: null,
    trendError: null,
    trendLoading: false,
    sort: { stats: { key: 'rank', dir: 1 }, workload: { key: 'load_index', dir: -1 }, assessment: { key: 'filed', dir: -1 } },
    hotspots: false,
    range: null, // the window last read: range()
    needFrom: false, // a custom window without its first day: nothing is read
    // The query of each table's data, set with it: { query, label, group,
    // window }, null without data. A CSV downloads exactly that.
    queries: { stats: null, flags: null, workload: null, assessment: null },
    pending: { stats: false, flags: false, workload: false, assessment: false }, // being read again: no CSV meanwhile
    downloading: { stats: false, flags: false, workload: false, assessment: false },
    stale: true, // live changes came while the panel was hidden
    loadedAt: 0,
  };
  const charts = { groups: null, trend: null };
  // The reads of the figures, of the trend, and the group chart's wait
  // for uPlot: only the latest one of each shows.
  const reads = new Latest();
  const trendReads = new Latest();
  const chartDraws = new Latest();

  // ---- queries ----

  // range is the window as explicit from and to (RFC 3339; to before)
  // and a label for file names: the window's name and its real from and
  // to. A window open at its end ends at the next whole minute: every part
  // reads the same window, a report filed now is in it, and tiles asked
  // for within a minute share their address. A custom window without its
  // first day has no from and needFrom set: it is not read.
  function range() {
    const tz = con.timeZone;
    const now = new Date();
    const p = zonedParts(now, tz);
    const end = new Date(Math.floor(now.getTime() / 60000) * 60000 + 60000);
    let from = '';
    let to = iso(end);
    switch (ind.window) {
      case 'lastMonth': {
        const y = p.m === 1 ? p.y - 1 : p.y;
        const m = p.m === 1 ? 12 : p.m - 1;
        from = iso(midnight(y, m, 1, tz));
        to = iso(midnight(p.y, p.m, 1, tz));
        break;
      }
      case '30d':
        from = iso(new Date(end.getTime() - 30 * 864e5));
        break;
      case 'year':
        from = iso(midnight(p.y, 1, 1, tz));
        break;
      case 'custom': {
        const f = dateParts(ind.from);
        const l = dateParts(ind.to);
        if (f) from = iso(midnight(f.y, f.m, f.d, tz));
        if (l) to = iso(midnight(l.y, l.m, l.d + 1, tz));
        break;
      }
      default:
        from = iso(midnight(p.y, p.m, 1, tz));
    }
    if (!from) return { from, to, label: '', needFrom: true };
    return { from, to, label: `${ind.window}-${stamp(from, tz)}_${stamp(to, tz)}`, needFrom: false };
  }

  function params(r, extra) {
    const q = new URLSearchParams({ layer: con.layer.id, from: r.from, to: r.to });
    for (const [k, v] of Object.entries(extra)) if (v) q.set(k, v);
    return q;
  }

  // ---- loading ----

  // load reads the figures, then the flags and the workload of the level
  // they are of, for the window; each table's query is kept with its data,
  // and its CSV waits while it is read again.
  async function load() {
    if (!con.layer || !ind.shown) {
      ind.stale = true;
      return;
    }
    const current = reads.start();
    const r = range();
    const category = ind.category;
    ind.range = r;
    ind.stale = false;
    ind.loadedAt = Date.now();
    if (ind.hotspots) showHotspots(r);
    if (r.needFrom) {
      // Nothing is read until the window has its first day.
      trendReads.drop();
      Object.assign(ind, {
        needFrom: true, loading: false, stats: null, statsError: null, flags: null, flagsError: null, workload: null, workloadError: null,
        assessment: null, assessmentError: null, trend: null, trendError: null, trendLoading: false,
        queries: { stats: null, flags: null, workload: null, assessment: null },
        pending: { stats: false, flags: false, workload: false, assessment: false },
      });
      renderStats();
      renderFlags();
      renderWorkload();
      renderAssessment();
      renderTrend();
      showFlags();
      drawGroupChart();
      return;
    }
    ind.needFrom = false;
    const base = { label: r.label, group: ind.group, window: ind.window };
    const statsQuery = { ...base, query: params(r, { group: ind.group, category }).toString() };
    ind.loading = true;
    // The assessment is of the grids workers patrol, at the server's level;
    // it is for dispatchers and up, and read again only when its window
    // moves (at most once a minute): it changes slowly and costs more.
    const assessmentQuery = { ...base, group: 'workers', query: params(r, { of: 'workers' }).toString() };
    const mayAssess = api.atLeast(con.caller?.role, 'dispatcher');
    const assessAgain = mayAssess && (!!ind.assessmentError || ind.queries.assessment?.query !== assessmentQuery.query);
    ind.pending = { stats: true, flags: true, workload: true, assessment: assessAgain };
    renderStats();
    renderFlags();
    renderWorkload();
    renderAssessment();
    let level = '';
    try {
      const stats = await api.get(`/v1/stats?${statsQuery.query}`);
      if (!current()) return;
      ind.stats = stats;
      ind.statsError = null;
      ind.queries.stats = statsQuery;
      level = stats.level ?? '';
    } catch (err) {
      if (!current()) return;
      ind.stats = null;
      ind.statsError = problem(err);
      ind.queries.stats = null;
    }
    ind.pending.stats = false;
    renderStats();
    drawGroupChart();
    // Flags and workload are of the grids at the level the figures are of.
    const flagsQuery = { ...base, query: params(r, { level, category }).toString() };
    const workloadQuery = { ...base, query: params(r, { level }).toString() };
    const [flags, workload, assessment] = await Promise.allSettled([api.get(`/v1/stats/flags?${flagsQuery.query}`),
      api.get(`/v1/stats/workload?${workloadQuery.query}`), assessAgain ? api.get(`/v1/assessment?${assessmentQuery.query}`) : null]);
    if (!current()) return;
    if (!mayAssess) {
      ind.assessment = null;
      ind.assessmentError = { text: t('indicators.forbidden'), unavailable: true };
      ind.queries.assessment = null;
    } else if (assessAgain) {
      ind.assessment = assessment.status === 'fulfilled'
        ? { ...assessment.value, workers: (assessment.value.workers ?? []).map((w) => ({ ...w, key: w.worker })) } : null;
      ind.assessmentError = assessment.status === 'rejected' ? problem(assessment.reason) : null;
      ind.queries.assessment = ind.assessment ? assessmentQuery : null;
    }
    ind.flags = flags.status === 'fulfilled' ? flags.value : null;
    ind.flagsError = flags.status === 'rejected' ? problem(flags.reason) : null;
    ind.queries.flags = ind.flags ? flagsQuery : null;
    ind.workload = workload.status === 'fulfilled' ? workload.value : null;
    ind.workloadError = workload.status === 'rejected' ? problem(workload.reason) : null;
    ind.queries.workload = ind.workload ? workloadQuery : null;
    ind.loading = false;
    ind.pending = { stats: false, flags: false, workload: false, assessment: false };
    renderStatus();
    renderFlags();
    renderWorkload();
    renderAssessment();
    showFlags();
    if (ind.selected) loadTrend();
  }

  // loadTrend reads the selected grid's trend, week by week over the
  // window the figures were read for.
  async function loadTrend() {
    const sel = ind.selected;
    if (!sel || !ind.shown || !con.layer) return;
    const current = trendReads.start();
    const r = ind.range ?? range();
    if (r.needFrom) {
      ind.trend = null;
      ind.trendError = null;
      ind.trendLoading = false;
      renderTrend();
      return;
    }
    ind.trendLoading = true;
    renderTrend();
    try {
      const q = params(r, { code: sel.key, bucket: 'week', category: ind.category });
      const trend = await api.get(`/v1/stats/trend?${q}`);
      if (!current()) return;
      ind.trend = trend;
      ind.trendError = null;
    } catch (err) {
      if (!current()) return;
      ind.trend = null;
      ind.trendError = problem(err);
    }
    ind.trendLoading = false;
    renderTrend();
  }

  // csvOff tells whether a table's CSV button is off: no data, the data
  // being read again, or a download under way.
  const csvOff = (table) => !ind[table] || !ind.queries[table] || ind.pending[table] || ind.downloading[table];

  // ---- the tables ----

  function sortBy(table, key, kind) {
    const s = ind.sort[table];
    if (s.key === key) s.dir = -s.dir;
    else Object.assign(s, { key, dir: kind === 'text' || key === 'rank' ? 1 : -1 });
    if (table === 'stats') renderStats();
    else if (table === 'assessment') renderAssessment();
    else renderWorkload();
    $(`ind-${table}`).querySelector(`[data-sort="${key}"]`)?.focus();
  }

  function renderTable(table, name, columns, rows, total, onRow) {
    const s = ind.sort[name];
    const num = (kind) => (kind === 'text' ? '' : 'num');
    const head = el('thead', {}, el('tr', {}, columns.map(([key, kind]) => el('th', {
      scope: 'col',
      class: num(kind),
      'aria-sort': s.key === key ? (s.dir > 0 ? 'ascending' : 'descending') : 'none',
    }, el('button', { type: 'button', class: 'sort', dataset: { sort: key }, onclick: () => sortBy(name, key, kind) },
      t(`indicators.col.${key}`), s.key === key ? (s.dir > 0 ? ' ▲' : ' ▼') : '')))));
    const body = el('tbody', {}, rows.map((r) => el('tr', {
      class: ind.selected?.key === r.key ? 'selected' : '',
      dataset: { key: r.key },
      tabIndex: onRow ? 0 : undefined,
      onclick: onRow ? () => onRow(r) : undefined,
      onkeydown: onRow ? (e) => { if (e.key === 'Enter') onRow(r); } : undefined,
    }, columns.map(([key, kind]) => el('td', { class: num(kind), dataset: { col: key }, title: key === 'name' ? r.key : undefined, textContent: cell(r, key, kind) })))));
    const foot = total ? el('tfoot', {}, el('tr', {}, columns.map(([key, kind]) => el('td', {
      class: num(kind),
      dataset: { col: key },
      textContent: key === 'rank' ? '' : key === 'name' ? t('indicators.total') : cell(total, key, kind),
    })))) : null;
    fill(table, head, body, foot);
  }

  function renderStatus() {
    const s = ind.stats;
    $('ind-asof').textContent = ind.loading ? t('console.loading') : s?.as_of ? t('indicators.asOf', { time: formatTime(s.as_of) }) : '';
  }

  function renderStats() {
    renderStatus();
    say($('ind-stats-message'), ind.statsError, ind.needFrom ? t('indicators.pickFrom') : ind.stats && !ind.stats.rows?.length ? t('indicators.noRows') : '');
    $('ind-stats-csv').disabled = csvOff('stats');
    const rows = ind.stats ? sorted(ind.stats.rows ?? [], statColumns, ind.sort.stats) : [];
    const pickable = ind.stats && ind.stats.group !== 'department';
    renderTable($('ind-stats'), 'stats', statColumns, rows, ind.stats?.total ?? null, pickable ? select : null);
  }

  function renderWorkload() {
    const w = ind.workload;
    say($('ind-workload-message'), ind.workloadError, w && !w.rows?.length ? t('indicators.noRows') : '');
    $('ind-workload-csv').disabled = csvOff('workload');
    $('ind-workload-mean').textContent = w?.mean_per_1000_residents != null ? t('indicators.meanPer1000', { n: number(w.mean_per_1000_residents, 1) }) : '';
    renderTable($('ind-workload'), 'workload', workloadColumns, w ? sorted(w.rows ?? [], workloadColumns, ind.sort.workload) : [], null, select);
  }

  // renderAssessment tables each worker's figures over the window's whole
  // days; a row selects the worker's grid.
  function renderAssessment() {
    const a = ind.assessment;
    say($('ind-assessment-message'), ind.assessmentError, a && !a.workers.length ? t('indicators.noWorkers') : '');
    $('ind-assessment-csv').disabled = csvOff('assessment');
    $('ind-assessment-days').textContent = a?.days ? t('indicators.patrolDays', { from: a.first_day, to: a.last_day, n: a.days }) : '';
    const rows = a ? sorted(a.workers, assessmentColumns, ind.sort.assessment) : [];
    renderTable($('ind-assessment'), 'assessment', assessmentColumns, rows, null, (r) => select({ key: r.grid, name: r.grid_name }));
  }

  // ---- flags ----

  const indicatorText = (key) => t(`indicators.col.${key}`, {}, key);
  const indicatorValue = (key, v) => (v === null || v === undefined ? '—' : /_rate$/.test(key ?? '') ? percent(v) : number(v, Number.isInteger(v) ? 0 : 1));

  function renderFlags() {
    const f = ind.flags;
    const list = f?.flags ?? [];
    say($('ind-flags-message'), ind.flagsError, f && list.length === 0 ? t('indicators.noFlags') : '');
    $('ind-flags-csv').disabled = csvOff('flags');
    $('ind-flags-count').textContent = f ? t('console.count', { n: list.length }) : '';
    fill($('ind-flags'), list.map((x) => el('li', {
      class: `flag flag-${x.kind}` + (ind.selected?.key === x.key ? ' selected' : ''),
      dataset: { key: x.key, kind: x.kind },
      tabIndex: 0,
      onclick: () => select({ key: x.key, name: x.name }),
      onkeydown: (e) => { if (e.key === 'Enter') select({ key: x.key, name: x.name }); },
    },
    el('span', { class: 'flag-name', title: x.key, textContent: x.name || x.key }),
    el('span', { class: `badge flag-kind ${x.kind}`, textContent: t(`indicators.flag.${x.kind}`, {}, x.kind) }),
    el('span', { class: 'flag-what', textContent: `${indicatorText(x.indicator)}${x.category ? ` · ${con.categories[x.category]?.name ?? x.category}` : ''}: ${indicatorValue(x.indicator, x.value)}${x.limit != null ? ` / ${t('indicators.limit')} ${indicatorValue(x.indicator, x.limit)}` : ''}` }),
    x.reason ? el('p', { class: 'flag-reason', textContent: x.reason }) : null)));
  }

  // showFlags fills the flagged grids on the map while the panel shows.
  function showFlags() {
    if (!con.map || !con.mapLoaded) return;
    gm.flag(con.map, ind.shown ? [...new Set((ind.flags?.flags ?? []).map((f) => f.key))] : []);
  }

  // ---- charts ----

  function monthNames() {
    if (language() !== 'zh-CN') return undefined;
    const months = Array.from({ length: 12 }, (_, i) => `${i + 1}月`);
    const days = ['周日', '周一', '周二', '周三', '周四', '周五', '周六'];
    return { MMMM: months, MMM: months, WWWW: days, WWW: days };
  }

  // drawGroupChart draws received (bars) and the on-time rate (points) of
  // the busiest groups.
  async function drawGroupChart() {
    const current = chartDraws.start();
    const box = $('ind-chart');
    const rows = (ind.stats?.rows ?? []).filter((r) => r.received > 0)
      .sort((a, b) => b.received - a.received || String(a.key).localeCompare(String(b.key))).slice(0, topN);
    if (!ind.shown || rows.length === 0) {
      charts.groups?.destroy();
      charts.groups = null;
      box.replaceChildren();
      return;
    }
    const uPlot = await uplot();
    if (!current()) return;
    charts.groups?.destroy();
    box.replaceChildren();
    const names = rows.map(rowName);
    const short = (s) => (s.length > 8 ? `${s.slice(0, 7)}…` : s);
    charts.groups = new uPlot({
      width: Math.max(240, box.clientWidth),
      height: 240,
      title: t('indicators.chart.groups', { n: rows.length }),
      scales: { x: { time: false, range: [-0.6, rows.length - 0.4] }, y: { range: (u, min, max) => [0, Math.max(1, max) * 1.1] }, pct: { range: [0, 100] } },
      axes: [
        { splits: () => rows.map((_, i) => i), values: (u, splits) => splits.map((i) => short(names[i] ?? '')), rotate: -35, size: 64, grid: { show: false } },
        { scale: 'y', incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000], values: (u, vals) => vals.map((v) => number(v)) },
        { scale: 'pct', side: 1, grid: { show: false }, values: (u, vals) => vals.map((v) => `${v}%`) },
      ],
      series: [
        { label: t('indicators.col.name'), value: (u, i) => (i == null ? '' : names[i] ?? '') },
        { label: t('indicators.col.received'), stroke: colours.received, fill: colours.receivedFill, paths: uPlot.paths.bars({ size: [0.6, 48] }), points: { show: false } },
        { label: t('indicators.col.on_time_rate'), scale: 'pct', stroke: colours.onTime, width: 0, points: { show: true, size: 8, fill: colours.onTime }, value: (u, v) => (v == null ? '—' : `${number(v, 1)}%`) },
      ],
    }, [rows.map((_, i) => i), rows.map((r) => r.received), rows.map((r) => (r.on_time_rate == null ? null : r.on_time_rate * 100))], box);
  }

  function renderTrend() {
    const box = $('ind-trend');
    const sel = ind.selected;
    box.hidden = !sel;
    charts.trend?.destroy();
    charts.trend = null;
    if (!sel) {
      box.replaceChildren();
      return;
    }
    const chart = el('div', { id: 'ind-trend-chart', class: 'ind-chart' });
    const message = el('p', { id: 'ind-trend-message', class: 'message', role: 'status' });
    say(message, ind.trendLoading ? null : ind.trendError,
      ind.needFrom ? t('indicators.pickFrom') : ind.trendLoading ? t('console.loading') : ind.trend && !ind.trend.points?.length ? t('indicators.noRows') : '');
    fill(box,
      el('div', { class: 'ind-head' },
        el('h3', { textContent: t('indicators.trend', { name: sel.name }) }),
        el('button', { type: 'button', class: 'close', textContent: '×', ariaLabel: t('console.close'), onclick: () => select(null) })),
      message,
      chart);
    if (ind.trendLoading || !ind.trend?.points?.length) return;
    drawTrend(chart, ind.trend);
  }

  async function drawTrend(box, trend) {
    const uPlot = await uplot();
    if (trend !== ind.trend || !box.isConnected) return;
    const pts = trend.points;
    const tz = trend.time_zone || con.timeZone;
    const names = monthNames();
    charts.trend = new uPlot({
      width: Math.max(240, box.clientWidth),
      height: 180,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), tz),
      fmtDate: names ? (tpl) => uPlot.fmtDate(tpl, names) : undefined,
      scales: { y: { range: (u, min, max) => [0, Math.max(1, max) * 1.1] } },
      axes: [{}, { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000], values: (u, vals) => vals.map((v) => number(v)) }],
      series: [
        { label: t('indicators.week') },
        { label: t('indicators.col.received'), stroke: colours.received, width: 2 },
        { label: t('indicators.col.closed'), stroke: colours.closed, width: 2 },
      ],
    }, [pts.map((p) => Date.parse(p.start) / 1000), pts.map((p) => p.received), pts.map((p) => p.closed)], box);
  }

  // ---- selection ----

  // select shows the trend of a grid (a row { key, name }, or null for
  // none), outlines it on the map and, with fly, brings it into view.
  function select(row, { fly = true } = {}) {
    ind.selected = row ? { key: row.key, name: rowName(row) } : null;
    ind.trend = null;
    ind.trendError = null;
    if (con.map && con.mapLoaded) gm.highlight(con.map, row ? [row.key] : []);
    renderStats();
    renderWorkload();
    renderFlags();
    renderTrend();
    if (!row) return;
    loadTrend();
    if (fly) flyTo(row.key);
  }

  // flyTo fits the map to a grid, found by its code as the search box
  // finds it, unless another has been selected meanwhile.
  async function flyTo(code) {
    try {
      const body = await api.get(`/v1/search?${new URLSearchParams({ q: code, layer: con.layer.id })}`);
      const g = (body?.grids ?? []).find((x) => x.code === code);
      if (!g?.bbox || !con.map || ind.selected?.key !== code) return;
      const [w, s, e, n] = g.bbox;
      con.map.fitBounds([[w, s], [e, n]], { padding: 60, maxZoom: 16 });
    } catch {
      // The map stays where it is.
    }
  }

  // ---- CSV ----

  // download saves a table as CSV: the query its data was read with,
  // named by the layer, the group and the window with its from and to.
  async function download(table) {
    const q = ind.queries[table];
    if (csvOff(table)) return;
    const path = { stats: '/v1/stats', flags: '/v1/stats/flags', workload: '/v1/stats/workload', assessment: '/v1/assessment' }[table];
    const button = $(`ind-${table}-csv`);
    const name = `${table}-${con.layer.id}-${q.group}-${q.label}.csv`;
    ind.downloading[table] = true;
    button.disabled = true;
    try {
      const blob = await api.csv(`${path}?${q.query}`);
      const url = URL.createObjectURL(blob);
      const a = el('a', { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (err) {
      say($(`ind-${table}-message`), problem(err));
    } finally {
      ind.downloading[table] = false;
      button.disabled = csvOff(table);
    }
  }

  // ---- controls ----

  function option(value, text) {
    return el('option', { value, textContent: text });
  }

  function renderControls() {
    const set = (id, options, value) => {
      const sel = $(id);
      sel.replaceChildren(...options);
      sel.value = value;
    };
    set('ind-group', groups.map((g) => option(g, t(`indicators.group.${g}`))), ind.group);
    set('ind-window', windows.map((w) => option(w, t(`indicators.window.${w}`))), ind.window);
    const cats = Object.entries(con.categories).sort(([a], [b]) => a.localeCompare(b));
    set('ind-category', [option('', t('console.filter.any')), ...cats.map(([code, c]) => option(code, `${c.parent ? '　' : ''}${c.name}`))], ind.category);
    for (const label of document.querySelectorAll('.ind-custom')) label.hidden = ind.window !== 'custom';
    $('ind-from').value = ind.from;
    $('ind-to').value = ind.to;
  }

  // changeFilter sets a control's value and reads the figures and the
  // hotspots for it.
  function changeFilter(name, value) {
    ind[name] = value;
    if (name === 'group') select(null);
    renderControls();
    // load shows the hotspots for the window it reads.
    if (ind.hotspots && !ind.shown) showHotspots();
    load();
  }

  function formatTime(isoTime) {
    const d = new Date(isoTime);
    if (Number.isNaN(d.getTime())) return isoTime;
    return new Intl.DateTimeFormat(language(), { timeZone: con.timeZone, dateStyle: 'short', timeStyle: 'short' }).format(d);
  }

  // ---- the panel and the map ----

  // show opens the panel (on) or closes it; the console's tabs say which
  // view shows and widen the panel for it.
  function show(on) {
    ind.shown = on;
    $('indicators').hidden = !on;
    showFlags();
    if (!on) return;
    if (ind.stale || Date.now() - ind.loadedAt > refreshEvery) load();
    else drawGroupChart();
  }

  // showHotspots draws or hides the hotspots for window r: by default the
  // one the panel last read while it shows, else the window now. A window
  // the server would refuse (no first day, or ending before it starts)
  // leaves the tiles as they are. Returns whether the tiles' window or
  // category changed (their address, so they are read again).
  let hotspotsShown = '';
  function showHotspots(r = ind.shown && ind.range ? ind.range : range()) {
    if (!con.map || !con.mapLoaded) return false;
    const f = { category: ind.category, since: r.from, until: r.to };
    if (ind.hotspots && (!f.since || Date.parse(f.until) <= Date.parse(f.since))) return false;
    gm.showHotspots(con.map, f, ind.hotspots);
    if (!ind.hotspots) return false;
    const key = JSON.stringify(f);
    const moved = key !== hotspotsShown;
    hotspotsShown = key;
    return moved;
  }

  // mapReady offers the hotspot layer once the map has loaded.
  function mapReady() {
    $('hotspots-toggle').hidden = false;
    showHotspots();
    showFlags();
  }

  // changed follows a live change of reports: the hotspots and the figures
  // are read again, at most once every refreshEvery ms; a hidden panel
  // reads them when it opens.
  let timer = null;
  let lastRefresh = 0;
  function changed() {
    if (!ind.shown) ind.stale = true;
    if (timer || (!ind.shown && !ind.hotspots)) return;
    timer = setTimeout(() => {
      timer = null;
      lastRefresh = Date.now();
      // The window moves on with the clock: the hotspots follow it (load
      // shows them for the window it reads), and are read again in place
      // when it has not moved.
      const before = hotspotsShown;
      if (ind.shown) load();
      else if (ind.hotspots) showHotspots();
      if (ind.hotspots && con.map && hotspotsShown === before) gm.refresh(con.map, gm.HOTSPOTS);
    }, Math.max(300, refreshEvery - (Date.now() - lastRefresh)));
  }

  function render() {
    renderControls();
    renderStats();
    renderFlags();
    renderWorkload();
    renderAssessment();
    renderTrend();
    if (ind.shown) drawGroupChart();
  }

  function start() {
    for (const [id, name] of [['ind-group', 'group'], ['ind-window', 'window'], ['ind-category', 'category'], ['ind-from', 'from'], ['ind-to', 'to']]) {
      $(id).addEventListener('change', (e) => changeFilter(name, e.target.value));
    }
    for (const table of ['stats', 'flags', 'workload', 'assessment']) $(`ind-${table}-csv`).addEventListener('click', () => download(table));
    $('hotspots').addEventListener('change', (e) => {
      ind.hotspots = e.target.checked;
      showHotspots();
    });
    render();
  }

  return { state: ind, start, render, show, changed, mapReady, select };
}
