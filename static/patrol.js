// The console's patrol views: the grids of the finest grid level coloured
// by a day's patrol coverage (GET /v1/patrol/coverage, set on the grid
// tiles as feature state by code) with a legend; the grids nobody patrolled
// for N days outlined (GET /v1/patrol/idle); the grids without a Party
// organisation outlined (GET /v1/party?missing=true); and the patrol tab's
// table of the day's coverage with its CSV. State lives in `pt`; the views
// render from it.
import * as api from '/api.js';
import { language, t } from '/i18n.js';
import { el, fill } from '/dom.js';
import * as gm from '/map.js';
import { today } from '/workers.js';
import { Latest } from '/latest.js';

const $ = (id) => document.getElementById(id);

// createPatrol makes the patrol views inside the console: con is the
// console's state (layer, map, mapLoaded, timeZone), read when needed.
export function createPatrol(con) {
  const pt = {
    shown: false, // the patrol tab
    coverageOn: false, // the header toggles
    partyOn: false,
    day: '', // yyyy-mm-dd, today by default
    days: 3, // idle for this many days
    coverage: null, // GET /v1/patrol/coverage
    coverageQuery: '', // the query coverage was read with: its CSV downloads exactly that
    coverageError: null,
    coverageLoading: false,
    idle: null,
    idleError: null,
    party: null,
    partyError: null,
    partyLoading: false,
    downloading: false,
  };
  // Only the latest read of the coverage and idle grids, and of the Party
  // outline, shows.
  const reads = new Latest();
  const partyReads = new Latest();

  const problem = (err) => (api.notOffered(err)
    ? { text: t('patrol.unavailable'), unavailable: true }
    : { text: t('console.error', { message: err?.message ?? String(err) }), unavailable: false });

  const percent = (v) => (v == null ? '—' : new Intl.NumberFormat(language(), { style: 'percent', maximumFractionDigits: 0 }).format(v));
  const number = (v) => (v == null ? '—' : new Intl.NumberFormat(language()).format(v));

  function say(box, prob, text = '') {
    box.textContent = prob?.text || text;
    box.classList.toggle('error', !!prob && !prob.unavailable);
    box.classList.toggle('unavailable', !!prob?.unavailable);
  }

  // ---- loading ----

  // load reads the day's coverage and the idle grids, when the layer or
  // the tab shows them. The level is left to the server (the layer's
  // finest grid-tier level, whatever it is named): the answers say which
  // it used, and the grids of that level are coloured.
  async function load() {
    if (!con.layer || (!pt.coverageOn && !pt.shown)) return;
    if (!pt.day) pt.day = today(con.timeZone);
    const current = reads.start();
    const q = new URLSearchParams({ layer: con.layer.id, day: pt.day });
    const idleQuery = new URLSearchParams({ layer: con.layer.id, days: String(pt.days) });
    pt.coverageLoading = true;
    render();
    const [cov, idle] = await Promise.allSettled([api.get(`/v1/patrol/coverage?${q}`), api.get(`/v1/patrol/idle?${idleQuery}`)]);
    if (!current()) return;
    pt.coverage = cov.status === 'fulfilled' ? cov.value : null;
    // The CSV reads exactly the table: the same day at the level answered.
    if (pt.coverage?.level) q.set('level', pt.coverage.level);
    pt.coverageQuery = pt.coverage ? q.toString() : '';
    pt.coverageError = cov.status === 'rejected' ? problem(cov.reason) : null;
    pt.idle = idle.status === 'fulfilled' ? idle.value : null;
    pt.idleError = idle.status === 'rejected' ? problem(idle.reason) : null;
    pt.coverageLoading = false;
    render();
    drawCoverage();
  }

  async function loadParty() {
    if (!con.layer || !pt.partyOn) return;
    const current = partyReads.start();
    pt.partyLoading = true;
    renderLegend();
    try {
      // Without a level: the server's (party coverage: the finest grid-tier level).
      const body = await api.get(`/v1/party?${new URLSearchParams({ layer: con.layer.id, missing: 'true' })}`);
      if (!current()) return;
      pt.party = body;
      pt.partyError = null;
    } catch (err) {
      if (!current()) return;
      pt.party = null;
      pt.partyError = problem(err);
    }
    pt.partyLoading = false;
    renderLegend();
    drawParty();
  }

  // idleCodes are the grids with no patrol within the days asked.
  const idleCodes = () => (pt.idle?.rows ?? []).map((r) => r.code);
  // partyCodes are the grids without a Party organisation.
  const partyCodes = () => (pt.party?.rows ?? []).filter((r) => !r.party).map((r) => r.code);

  // ---- the map ----

  function drawCoverage() {
    if (!con.map || !con.mapLoaded) return;
    const on = pt.coverageOn && !!pt.coverage;
    const values = Object.fromEntries((pt.coverage?.rows ?? []).map((r) => [r.code, Math.max(0, Math.min(1, Number(r.coverage) || 0))]));
    gm.showCoverage(con.map, pt.coverage?.level ?? '', values, on);
    gm.outlineIdle(con.map, pt.coverageOn ? idleCodes() : []);
  }

  function drawParty() {
    if (!con.map || !con.mapLoaded) return;
    gm.outlineParty(con.map, pt.partyOn ? partyCodes() : []);
  }

  // renderLegend shows, over the map, what the coloured and outlined
  // grids mean, or why they are not drawn.
  function renderLegend() {
    const box = $('patrol-legend');
    if (!pt.coverageOn && !pt.partyOn) {
      box.hidden = true;
      box.replaceChildren();
      return;
    }
    const steps = gm.coverageLegend();
    // Colours from the map's style, set through the CSSOM (no inline styles).
    const swatch = (cls, fillColour, lineColour) => {
      const e = el('span', { class: `swatch ${cls}` });
      if (fillColour) e.style.backgroundColor = fillColour;
      if (lineColour) e.style.borderColor = lineColour;
      return e;
    };
    const coverageMsg = pt.coverageError?.text || (pt.coverageLoading ? t('console.loading') : '');
    fill(box,
      pt.coverageOn ? [
        el('h4', { textContent: t('patrol.legend', { day: pt.coverage?.day ?? pt.day }) }),
        coverageMsg ? el('p', { class: 'message' + (pt.coverageError && !pt.coverageError.unavailable ? ' error' : ''), textContent: coverageMsg }) : null,
        el('ul', { class: 'legend' }, steps.map((s, i) => el('li', {}, swatch(`coverage-${i}`, s.colour), i + 1 < steps.length ? `${percent(s.at)}–${percent(steps[i + 1].at)}` : `≥ ${percent(s.at)}`)),
          el('li', {}, swatch('idle', '', gm.style.idle), t('patrol.idleLegend', { n: pt.days }), pt.idle ? ` (${idleCodes().length})` : ''),
          pt.idleError ? el('li', { class: 'message error', textContent: pt.idleError.text }) : null),
      ] : null,
      pt.partyOn ? el('ul', { class: 'legend' },
        el('li', {}, swatch('party', '', gm.style.party), t('patrol.partyLegend'), pt.party ? ` (${partyCodes().length})` : ''),
        pt.partyLoading ? el('li', { textContent: t('console.loading') }) : null,
        pt.partyError ? el('li', { class: 'message error', textContent: pt.partyError.text }) : null) : null);
    box.hidden = false;
  }

  // ---- the tab ----

  const csvOff = () => !pt.coverage || !pt.coverageQuery || pt.coverageLoading || pt.downloading;

  function renderTable() {
    const rows = [...(pt.coverage?.rows ?? [])].sort((a, b) => (a.coverage ?? 0) - (b.coverage ?? 0) || String(a.code).localeCompare(String(b.code)));
    const idle = new Set(idleCodes());
    const cols = ['name', 'workers', 'points', 'coverage'];
    fill($('patrol-table'),
      el('thead', {}, el('tr', {}, cols.map((c) => el('th', { scope: 'col', class: c === 'name' ? '' : 'num', textContent: t(`patrol.col.${c}`) })))),
      el('tbody', {}, rows.map((r) => el('tr', {
        dataset: { code: r.code },
        class: idle.has(r.code) ? 'idle' : '',
        tabIndex: 0,
        onclick: () => pick(r.code),
        onkeydown: (e) => { if (e.key === 'Enter') pick(r.code); },
      },
      el('td', { dataset: { col: 'name' }, title: r.code, textContent: (r.name || r.code) + (idle.has(r.code) ? ` · ${t('patrol.idleMark')}` : '') }),
      el('td', { class: 'num', dataset: { col: 'workers' }, textContent: number(r.workers) }),
      el('td', { class: 'num', dataset: { col: 'points' }, textContent: number(r.points) }),
      el('td', { class: 'num', dataset: { col: 'coverage' }, textContent: percent(r.coverage) })))));
  }

  function pick(code) {
    if (con.map && con.mapLoaded) gm.highlight(con.map, [code]);
  }

  function renderTab() {
    $('patrol-day').value = pt.day || today(con.timeZone);
    $('patrol-day').max = today(con.timeZone);
    $('patrol-days').value = String(pt.days);
    const c = pt.coverage;
    say($('patrol-message'), pt.coverageError, pt.coverageLoading ? t('console.loading') : c && !c.rows?.length ? t('indicators.noRows') : '');
    say($('patrol-idle-message'), pt.idleError, pt.idle ? t('patrol.idleCount', { n: idleCodes().length, days: pt.days }) : '');
    $('patrol-csv').disabled = csvOff();
    renderTable();
  }

  function render() {
    renderTab();
    renderLegend();
    $('coverage').checked = pt.coverageOn;
    $('party').checked = pt.partyOn;
  }

  // download saves the day's coverage as CSV, as read for the table.
  async function download() {
    if (csvOff()) return;
    const q = new URLSearchParams(pt.coverageQuery);
    const name = `${['coverage', q.get('layer'), q.get('level'), q.get('day')].filter(Boolean).join('-')}.csv`;
    pt.downloading = true;
    $('patrol-csv').disabled = true;
    try {
      const blob = await api.csv(`/v1/patrol/coverage?${pt.coverageQuery}`);
      const url = URL.createObjectURL(blob);
      const a = el('a', { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (err) {
      say($('patrol-message'), problem(err));
    } finally {
      pt.downloading = false;
      $('patrol-csv').disabled = csvOff();
    }
  }

  // show opens the patrol tab (on) or closes it.
  function show(on) {
    pt.shown = on;
    $('patrol').hidden = !on;
    if (on && !pt.coverage && !pt.coverageLoading) load();
  }

  function mapReady() {
    $('coverage-toggle').hidden = false;
    $('party-toggle').hidden = false;
    drawCoverage();
    drawParty();
  }

  function start() {
    $('coverage').addEventListener('change', (e) => {
      pt.coverageOn = e.target.checked;
      render();
      if (pt.coverageOn && !pt.coverage) load();
      else drawCoverage();
    });
    $('party').addEventListener('change', (e) => {
      pt.partyOn = e.target.checked;
      renderLegend();
      if (pt.partyOn && !pt.party) loadParty();
      else drawParty();
    });
    $('patrol-day').addEventListener('change', (e) => {
      if (!e.target.value) return;
      pt.day = e.target.value;
      load();
    });
    $('patrol-days').addEventListener('change', (e) => {
      const n = Math.round(Number(e.target.value));
      if (!(n >= 1 && n <= 90)) {
        e.target.value = String(pt.days);
        return;
      }
      pt.days = n;
      load();
    });
    $('patrol-csv').addEventListener('click', download);
    render();
  }

  return { state: pt, start, show, render, mapReady, load };
}
