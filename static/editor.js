// The boundary editor: choose a layer and a level, select a grid (a click
// on the map or a search), and redraw it with its neighbours loaded for
// snapping. Every change stays a draft, with undo and redo, checked by a
// dry run as it changes: the problems drawn on the map and listed, the
// impact (grids changed, area moved, open reports that would change
// owner) shown. Publishing sends one changeset with a reason; a grid
// someone else changed meanwhile (412) shows their version and offers to
// redo the change on it or to discard it.
//
// The draft of a grid is a move_edge of its new outline: the server hands
// what the grid gives up to its neighbours and takes what it gains from
// them, so a vertex moved on a shared edge moves for both grids and no gap
// or overlap opens.
import * as api from '/api.js';
import { chosenLanguage, language, t, useLanguage } from '/i18n.js';
import { el, fill, leaving } from '/dom.js';
import * as gm from '/map.js';
import { TerraDraw, TerraDrawLineStringMode, TerraDrawPolygonMode, TerraDrawRenderMode, TerraDrawSelectMode } from 'terra-draw';
import { TerraDrawMapLibreGLAdapter } from 'terra-draw-maplibre-gl-adapter';

const $ = (id) => document.getElementById(id);

const state = {
  caller: null,
  layers: [],
  layer: null,
  level: '',
  map: null,
  draw: null,
  // The grid being edited: code, name, level, parent, version, the
  // terra-draw id of its feature, and whether its shape can be edited here.
  grid: null,
  neighbours: 0,
  // The draft's states: [0] as published, then one after each edit; at is
  // the one shown (undo and redo move it). A state is the grid's outline
  // and the other operations drafted (new grids, splits, deletions).
  history: [],
  at: 0,
  tool: 'select', // select, draw (a new grid), cut (split by a line), transfer (an area to a neighbour), merge
  check: null, // the last dry run: { problems, impact }
  checkSeq: 0,
  status: '',
  error: false,
  busy: false,
  conflict: null, // { text, theirs }
};

// Colours of problems on the map, by kind.
const problemColour = { overlaps_sibling: '#dc2626', outside_parent: '#7e22ce', gap: '#d97706' };
const PROBLEMS = 'problems';
// A grid of many vertices is reshaped without terra-draw, which redraws a
// handle for every vertex at every move: its outline and the handles of
// the vertices in view are drawn here, and a drag moves one vertex, drawing
// only the two edges that meet at it until it is dropped.
const bigGrid = 1000;
const BIG = 'big-grid';
const BIG_HANDLES = 'big-handles';
const handlePixels = 10;
const HISTORY = 'history';
const DRAFT = 'draft';
const SKETCHES = 'sketches';
const THEIRS = 'theirs';

const levelText = (l) => t(`console.level.${l}`, {}, l);
const kindText = (k) => t(`editor.kind.${k}`, {}, k);

function formatTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso ?? '';
  return new Intl.DateTimeFormat(language(), { timeZone: state.timeZone ?? 'Asia/Shanghai', dateStyle: 'short', timeStyle: 'short' }).format(d);
}

function bboxOf(geometry) {
  let w = Infinity;
  let s = Infinity;
  let e = -Infinity;
  let n = -Infinity;
  const walk = (c) => {
    if (typeof c[0] === 'number') {
      w = Math.min(w, c[0]);
      e = Math.max(e, c[0]);
      s = Math.min(s, c[1]);
      n = Math.max(n, c[1]);
    } else c.forEach(walk);
  };
  walk(geometry.coordinates);
  return [w, s, e, n];
}

// editable is the geometry as terra-draw edits it (one polygon without
// holes, coordinates to 9 decimals: a tenth of a millimetre), or null for
// a shape this page cannot edit.
function editable(geometry) {
  let rings = null;
  if (geometry.type === 'Polygon' && geometry.coordinates.length === 1) rings = geometry.coordinates;
  if (geometry.type === 'MultiPolygon' && geometry.coordinates.length === 1 && geometry.coordinates[0].length === 1) rings = geometry.coordinates[0];
  if (!rings) return null;
  const round = (v) => Math.round(v * 1e9) / 1e9;
  return { type: 'Polygon', coordinates: rings.map((ring) => ring.map(([x, y]) => [round(x), round(y)])) };
}

// ---- the draft ----

const edited = () => state.grid && state.at > 0;
const current = () => state.history[state.at];

// operations are the draft as changeset operations: the grid's new
// outline as a move_edge (when it changed), then the others in the order
// they were drafted.
function operations() {
  if (!edited()) return [];
  const { geometry, ops } = current();
  const out = [];
  if (JSON.stringify(geometry) !== JSON.stringify(state.history[0].geometry)) {
    out.push({ op: 'move_edge', code: state.grid.code, geometry, if_match: state.grid.version });
  }
  return [...out, ...ops];
}

// check validates the draft with a dry run; a newer check overtakes it.
async function check() {
  const seq = ++state.checkSeq;
  if (!edited()) {
    state.check = null;
    state.status = '';
    drawProblems([]);
    renderDraft();
    return;
  }
  state.status = t('editor.checking');
  state.error = false;
  renderDraft();
  let result;
  try {
    result = await api.post(`/v1/layers/${encodeURIComponent(state.layer.id)}/changesets`, { reason: 'draft', dry_run: true, operations: operations() });
  } catch (err) {
    if (seq !== state.checkSeq) return;
    if (err.status === 412) {
      await showConflict();
      if (seq !== state.checkSeq) state.conflict = null;
      renderDraft();
      return;
    }
    result = err.details ? { problems: err.details, impact: null, refused: err.message } : null;
    if (!result) {
      state.status = t('console.error', { message: err.message });
      state.error = true;
      renderDraft();
      return;
    }
  }
  if (seq !== state.checkSeq) return;
  state.check = result;
  const problems = result.problems ?? [];
  state.status = problems.length ? t('editor.hasProblems', { n: problems.length }) : t('editor.clean');
  state.error = problems.length > 0;
  drawProblems(problems);
  renderDraft();
}

// record adds a state to the draft (dropping what was undone): the grid's
// outline, and the other operations.
function record({ geometry = current().geometry, ops = current().ops } = {}) {
  state.history = [...state.history.slice(0, state.at + 1), { geometry, ops }];
  state.at = state.history.length - 1;
  drawSketches();
  renderSelection();
  check();
}

function show(at) {
  if (state.busy) return;
  state.at = at;
  state.tool = 'select'; // selecting the grid again ends any drawing
  const { draw, grid } = state;
  if (grid.big) {
    drawBig();
  } else if (grid.editable) {
    draw.deselectFeature(grid.id);
    draw.updateFeatureGeometry(grid.id, current().geometry);
    draw.selectFeature(grid.id);
  }
  drawSketches();
  renderSelection();
  check();
}

// ---- tools: a new grid, a split, a deletion ----

// useTool switches between reshaping (select), drawing a new grid beside
// the selected one, and cutting the selected one by a line.
function useTool(tool) {
  if (!state.grid) return;
  state.tool = tool;
  state.draw.setMode({ draw: 'newgrid', cut: 'cut', transfer: 'area' }[tool] ?? 'select');
  if (tool === 'select' && state.grid.editable && !state.grid.big) state.draw.selectFeature(state.grid.id);
  renderSelection();
}

// nextCode is a code for a new grid under the selected grid's parent that
// the draft has not taken: the parent's code and a number.
function nextCode(taken) {
  const prefix = state.grid.parent || state.grid.code;
  for (let n = 1; ; n++) {
    const code = `${prefix}-N${n}`;
    if (!taken.has(code)) return code;
  }
}

function draftedCodes() {
  return new Set(current().ops.flatMap((o) => [o.code, o.feature?.properties?.code, ...(o.new_codes ?? [])]).filter(Boolean));
}

// drafted turns what was just drawn into an operation of the draft.
function drafted(id, mode) {
  const f = state.draw.getSnapshotFeature(id);
  state.draw.removeFeatures([id]);
  useTool('select');
  if (!f) return;
  const ops = [...current().ops];
  if (mode === 'newgrid') {
    const code = nextCode(new Set([...draftedCodes(), state.grid.code]));
    ops.push({ op: 'put', feature: { type: 'Feature', geometry: f.geometry, properties: { code, name: '', level: state.grid.level, parent: state.grid.parent } } });
  } else if (mode === 'cut') {
    const code = state.grid.code;
    ops.push({ op: 'split', code, line: f.geometry, new_codes: [`${code}-1`, `${code}-2`], if_match: state.grid.version });
  } else if (mode === 'area') {
    const to = neighbourUnder(f.geometry);
    if (!to) {
      state.status = t('editor.noNeighbour');
      state.error = true;
      renderDraft();
      return;
    }
    ops.push({ op: 'transfer', from: state.grid.code, to: to.code, area: f.geometry, if_match: state.grid.version });
  }
  record({ ops });
}

// neighbours are the grids loaded around the selected one: code, version
// and outline.
function neighbours() {
  return (state.draw?.getSnapshot() ?? []).filter((f) => f.properties.mode === 'neighbours')
    .map((f) => ({ code: f.properties.code, version: f.properties.version, geometry: f.geometry }));
}

// neighbourUnder is the neighbour an area drawn for a transfer reaches
// into: the one holding most of its vertices, else the one with a vertex
// nearest to them.
function neighbourUnder(area) {
  const ring = area.coordinates[0].slice(0, -1);
  let best = null;
  let score = -Infinity;
  for (const n of neighbours()) {
    const inside = ring.filter((p) => ringContains(n.geometry.coordinates[0], p)).length;
    const near = Math.min(...ring.flatMap((p) => n.geometry.coordinates[0].map((q) => (p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2)));
    const s = inside > 0 ? inside : -near;
    if (s > score) {
      best = n;
      score = s;
    }
  }
  return best;
}

// ringContains says whether point p lies inside ring (even-odd rule).
function ringContains(ring, [x, y]) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i];
    const [xj, yj] = ring[j];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

// retarget changes the grid a drafted transfer goes to, or turns it round
// (the area taken from the neighbour instead), as a step of the draft.
// Only the selected grid's version is checked: the page does not follow
// the neighbours' versions (a transfer takes what the area covers of the
// grid as it is when published).
function retarget(index, value) {
  const ops = current().ops.map((o) => structuredClone(o));
  const [direction, code] = value.split(':');
  if (!neighbours().some((x) => x.code === code)) return;
  const { if_match: _, ...o } = ops[index];
  ops[index] = direction === 'to'
    ? { ...o, from: state.grid.code, to: code, if_match: state.grid.version }
    : { ...o, from: code, to: state.grid.code };
  record({ ops });
}

// mergeAt drafts merging the sibling at a clicked place into the selected
// grid (多格合一); the selected grid keeps its code.
async function mergeAt(lngLat) {
  const q = new URLSearchParams({ lon: lngLat.lng.toFixed(7), lat: lngLat.lat.toFixed(7), layer: state.layer.id });
  const chain = (await api.get(`/v1/lookup?${q}`)).layers?.[state.layer.id]?.chain ?? [];
  const hit = chain.find((g) => g.level === state.grid.level);
  useTool('select');
  if (!hit || hit.code === state.grid.code) return;
  const ops = [...current().ops];
  const merge = ops.find((o) => o.op === 'merge' && o.into === state.grid.code);
  if (merge) {
    if (merge.codes.includes(hit.code)) return;
    ops[ops.indexOf(merge)] = { ...merge, codes: [...merge.codes, hit.code] };
  } else {
    ops.push({ op: 'merge', codes: [state.grid.code, hit.code], into: state.grid.code });
  }
  record({ ops });
}

// gridKeys are the properties a grid feature carries besides its free
// attributes.
const gridKeys = new Set(['layer', 'code', 'name', 'level', 'parent', 'version', 'valid_from', 'valid_to', 'people']);

// shownProperties are the selected grid's name and free attributes as the
// draft leaves them.
function shownProperties() {
  const g = state.grid;
  const o = current()?.ops.find((x) => x.op === 'put' && x.code === g.code);
  if (!o) return { name: g.name ?? '', attributes: g.attributes };
  const { code, name, ...attributes } = o.feature.properties;
  return { name: name ?? g.name ?? '', attributes: Object.keys(attributes).length ? attributes : g.attributes };
}

// reshaped says whether the draft deletes or splits the selected grid:
// its name and attributes are then no longer the draft's to change.
function reshaped() {
  return (current()?.ops ?? []).some((o) => (o.op === 'delete' || o.op === 'split') && o.code === state.grid?.code);
}

// setProperties drafts the selected grid's name and free attributes as one
// put, its outline kept. A put keeps the current name and attributes when
// it leaves them out, so each is sent only when it changed.
function setProperties({ name, attributes }) {
  const g = state.grid;
  const ops = current().ops.filter((o) => !(o.op === 'put' && o.code === g.code));
  const nameChanged = name !== (g.name ?? '');
  const attrsChanged = !sameAttributes(attributes, g.attributes);
  if (nameChanged || attrsChanged) {
    ops.push({ op: 'put', code: g.code, if_match: g.version,
      feature: { type: 'Feature', geometry: null, properties: { ...(attrsChanged ? attributes : {}), code: g.code, ...(nameChanged ? { name } : {}) } } });
  }
  record({ ops });
}

function sameAttributes(a, b) {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => k in b && JSON.stringify(a[k]) === JSON.stringify(b[k]));
}

// rebaseProperties redoes the draft's change of the grid's name and
// attributes on their version: what the draft changed is applied to what
// they published, and the rest of theirs is kept.
function rebaseProperties(theirs) {
  const g = state.grid;
  const base = { ...g.attributes };
  g.name = theirs.name;
  g.attributes = Object.fromEntries(Object.entries(theirs).filter(([k]) => !gridKeys.has(k)));
  state.history = state.history.map((h) => ({ ...h, ops: h.ops.map((o) => {
    if (o.op !== 'put' || o.code !== g.code) return o;
    const { code, name, ...attrs } = o.feature.properties;
    const changed = Object.keys(attrs).length > 0;
    const merged = { ...g.attributes };
    if (changed) {
      for (const k of Object.keys(base)) if (!(k in attrs)) delete merged[k];
      for (const [k, v] of Object.entries(attrs)) if (JSON.stringify(v) !== JSON.stringify(base[k])) merged[k] = v;
    }
    const props = { ...(changed ? merged : {}), code, ...(name !== undefined ? { name } : {}) };
    return { ...o, feature: { ...o.feature, properties: props } };
  }) }));
}

// attributeValue reads what was typed for an attribute: of the type the
// attribute had (a number stays a number, JSON stays JSON), a new one as a
// number when it reads as one, else text.
function attributeValue(text, before) {
  if (typeof before === 'string') return text;
  // A number only when it reads back the same (not 010000, a postcode,
  // nor an 18-digit identity number), else text.
  const asNumber = Number(text);
  if (before === undefined) return text !== '' && String(asNumber) === text && Number.isSafeInteger(Math.trunc(asNumber)) ? asNumber : text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function setAttribute(key, text) {
  const { name, attributes } = shownProperties();
  setProperties({ name, attributes: { ...attributes, [key]: attributeValue(text, attributes[key]) } });
}

function removeAttribute(key) {
  const { name, attributes } = shownProperties();
  const rest = { ...attributes };
  delete rest[key];
  setProperties({ name, attributes: rest });
}

function addAttribute() {
  const key = $('attr-new-key').value.trim();
  const taken = key in shownProperties().attributes;
  if (!key || gridKeys.has(key) || taken) {
    $('attr-new-key').setCustomValidity(!key ? t('editor.attrNeedKey') : taken ? t('editor.attrTaken', { key }) : t('editor.attrReserved', { key }));
    $('attr-new-key').reportValidity();
    return;
  }
  setAttribute(key, $('attr-new-value').value.trim());
}

// renderAttributes is the form of the grid's free attributes: each one's
// value edited in place or removed, and a new one added; every change is a
// step of the draft.
function renderAttributes() {
  const { attributes } = shownProperties();
  const keys = Object.keys(attributes).sort();
  const text = (v) => (typeof v === 'string' ? v : JSON.stringify(v));
  return el('fieldset', { id: 'grid-attributes', class: 'attributes', disabled: reshaped() },
    el('legend', { textContent: t('editor.attributes') }),
    el('table', {}, el('tbody', {}, keys.map((k) => el('tr', { dataset: { attr: k } },
      el('th', { scope: 'row', textContent: k }),
      el('td', {}, el('input', { type: 'text', value: text(attributes[k]), ariaLabel: k, onchange: (e) => setAttribute(k, e.target.value.trim()) })),
      // A put with no attributes keeps them all: the last one cannot go.
      el('td', {}, el('button', { type: 'button', class: 'remove', textContent: '×', ariaLabel: t('editor.attrRemove', { key: k }),
        disabled: keys.length === 1, title: keys.length === 1 ? t('editor.attrLast') : t('editor.attrRemove', { key: k }), onclick: () => removeAttribute(k) })))),
    el('tr', {},
      el('td', {}, el('input', { id: 'attr-new-key', type: 'text', placeholder: t('editor.attrKey'), ariaLabel: t('editor.attrKey'), oninput: (e) => e.target.setCustomValidity('') })),
      el('td', {}, el('input', { id: 'attr-new-value', type: 'text', placeholder: t('editor.attrValue'), ariaLabel: t('editor.attrValue') })),
      el('td', {}, el('button', { type: 'button', id: 'attr-add', textContent: '+', ariaLabel: t('editor.attrAdd'), title: t('editor.attrAdd'), onclick: addAttribute }))))));
}

// savePeople replaces the people responsible for the selected grid (not a
// boundary change: saved at once).
async function savePeople(text) {
  const people = text.split('\n').map((line) => line.trim()).filter(Boolean).map((line) => {
    const [role = '', name = '', phone = ''] = line.split(/[,，\t]/).map((x) => x.trim());
    return { role, name, phone };
  });
  try {
    await api.put(`${layerPath()}/grids/${encodeURIComponent(state.grid.code)}/people`, { people });
    state.grid.people = people;
    state.peopleStatus = t('editor.peopleSaved', { n: people.length });
  } catch (err) {
    state.peopleStatus = t('console.error', { message: err.message });
  }
  renderSelection();
}

// showHistory draws the outline of version i of the grid over today's.
function showHistory(i) {
  const f = state.gridHistory?.[i];
  state.historyAt = i;
  state.map.getSource(HISTORY)?.setData({ type: 'FeatureCollection', features: f?.geometry ? [{ type: 'Feature', geometry: f.geometry, properties: {} }] : [] });
  renderSelection();
}

// showCoverage draws what keeps the selected grid's children from tiling
// it: gaps, overlaps, parts outside.
async function showCoverage() {
  try {
    const cov = await api.get(`${layerPath()}/coverage?parent=${encodeURIComponent(state.grid.code)}`);
    const as = (kind) => (items) => (items ?? []).map((it) => ({ kind, codes: it.codes, area_m2: it.area_m2, where: { type: it.type, coordinates: it.coordinates } }));
    const problems = [...as('gap')(cov.gaps), ...as('overlaps_sibling')(cov.overlaps), ...as('outside_parent')(cov.outside)];
    state.coverage = problems;
    drawProblems(problems);
  } catch (err) {
    state.coverage = null;
    state.peopleStatus = t('console.error', { message: err.message });
  }
  renderSelection();
}

function deleteGrid() {
  if (!state.grid || current().ops.some((o) => o.op === 'delete' && o.code === state.grid.code)) return;
  record({ ops: [...current().ops, { op: 'delete', code: state.grid.code, if_match: state.grid.version }] });
}

// rename changes a code or name the draft gives (a new grid's, or a split
// part's), as a step of the draft that undo takes back.
function rename(index, field, value) {
  const ops = current().ops.map((o) => structuredClone(o));
  const o = ops[index];
  if (o.op === 'put') o.feature.properties[field] = value;
  else if (o.op === 'split') o.new_codes[field] = value;
  record({ ops });
}

// drawSketches shows the drafted new grids and cutting lines on the map.
function drawSketches() {
  const features = (current()?.ops ?? []).flatMap((o) => {
    if (o.op === 'put' && o.feature.geometry) return [{ type: 'Feature', geometry: o.feature.geometry, properties: { kind: 'new' } }];
    if (o.op === 'split') return [{ type: 'Feature', geometry: o.line, properties: { kind: 'cut' } }];
    if (o.op === 'transfer') return [{ type: 'Feature', geometry: o.area, properties: { kind: 'transfer' } }];
    return [];
  });
  state.map?.getSource(SKETCHES)?.setData({ type: 'FeatureCollection', features });
}

function discard() {
  if (!state.grid) return;
  state.history = state.history.slice(0, 1);
  show(0);
}

async function publish() {
  const reason = $('reason').value.trim();
  if (!reason) {
    state.status = t('editor.needReason');
    state.error = true;
    renderDraft();
    $('reason').focus();
    return;
  }
  state.busy = true;
  state.checkSeq++; // a dry run under way is answered by the publish
  renderDraft();
  try {
    const res = await api.post(`/v1/layers/${encodeURIComponent(state.layer.id)}/changesets`, { reason, operations: operations() });
    const changed = Object.keys(res.versions ?? {}).join('、');
    $('reason').value = '';
    // The grid goes on as itself, or as the first part of its split; a
    // deleted grid leaves nothing selected.
    const ops = current().ops;
    const split = ops.find((o) => o.op === 'split' && o.code === state.grid.code);
    const gone = ops.some((o) => o.op === 'delete' && o.code === state.grid.code);
    if (split) await selectGrid(split.new_codes[0]);
    else if (!gone) await selectGrid(state.grid.code);
    else clearSelection();
    state.status = t('editor.published', { grids: changed });
    state.error = false;
    gm.refresh(state.map, gm.GRIDS);
  } catch (err) {
    if (err.status === 412) {
      await showConflict();
    } else {
      state.status = err.details?.length ? `${err.message} (${err.details.length})` : t('console.error', { message: err.message });
      state.error = true;
      if (err.details) drawProblems(err.details);
    }
  }
  state.busy = false;
  renderDraft();
}

// showConflict says who changed the grid and when, and draws their
// version over the draft.
async function showConflict() {
  const code = state.grid.code;
  const base = `/v1/layers/${encodeURIComponent(state.layer.id)}/grids/${encodeURIComponent(code)}`;
  try {
    const [current, history] = await Promise.all([api.get(base), api.get(`${base}/history`)]);
    const versions = history.versions ?? history.features ?? history ?? [];
    const last = Array.isArray(versions) ? versions[versions.length - 1] : null;
    const p = last?.properties ?? last ?? {};
    state.conflict = {
      current,
      text: t('editor.conflictText', { who: p.author || t('editor.someone'), when: formatTime(p.valid_from), version: current.properties?.version }),
    };
    showTheirs(current.geometry);
  } catch (err) {
    state.conflict = { current: null, text: err.message };
  }
  state.status = t('editor.conflict');
  state.error = true;
  renderDraft();
}

// rebase redoes the draft on the version someone else published.
function rebase() {
  const current = state.conflict?.current;
  if (!current) return;
  const version = current.properties.version;
  state.grid.version = version;
  state.history[0] = { ...state.history[0], geometry: editable(current.geometry) ?? state.history[0].geometry };
  rebaseProperties(current.properties ?? {});
  state.history = state.history.map((h) => ({ ...h, ops: h.ops.map((o) => (o.if_match !== undefined && (o.code ?? o.from) === state.grid.code ? { ...o, if_match: version } : o)) }));
  state.conflict = null;
  showTheirs(null);
  check();
}

async function discardMine() {
  state.conflict = null;
  showTheirs(null);
  try {
    await selectGrid(state.grid.code);
  } catch (err) {
    // Deleted meanwhile: nothing left to edit.
    clearSelection();
    state.status = t('console.error', { message: err.message });
    state.error = true;
    renderDraft();
  }
}

// ---- the map's own layers: problems, and someone else's version ----

function addOverlays(map) {
  map.addSource(PROBLEMS, { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
  map.addLayer({ id: 'problem-fill', type: 'fill', source: PROBLEMS, paint: { 'fill-color': ['get', 'colour'], 'fill-opacity': 0.35 } });
  map.addLayer({ id: 'problem-line', type: 'line', source: PROBLEMS, paint: { 'line-color': ['get', 'colour'], 'line-width': 2.5 } });
  for (const id of [BIG, BIG_HANDLES]) map.addSource(id, { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
  map.addLayer({ id: 'big-fill', type: 'fill', source: BIG, paint: { 'fill-color': '#f97316', 'fill-opacity': 0.15 } });
  map.addLayer({ id: 'big-line', type: 'line', source: BIG, paint: { 'line-color': '#c2410c', 'line-width': 2.5 } });
  map.addLayer({ id: 'big-handles', type: 'circle', source: BIG_HANDLES, paint: { 'circle-radius': 4, 'circle-color': '#3b82f6', 'circle-stroke-color': '#ffffff', 'circle-stroke-width': 1 } });
  map.addSource(HISTORY, { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
  map.addLayer({ id: 'history-line', type: 'line', source: HISTORY, paint: { 'line-color': '#9333ea', 'line-width': 2.5, 'line-dasharray': [1, 1.5] } });
  map.addSource(DRAFT, { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
  map.addLayer({ id: 'draft-line', type: 'line', source: DRAFT, paint: { 'line-color': '#0e7490', 'line-width': 2, 'line-dasharray': [2, 2] } });
  map.addSource(SKETCHES, { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
  const sketchColour = ['match', ['get', 'kind'], 'transfer', '#0d9488', '#2563eb'];
  map.addLayer({ id: 'sketch-fill', type: 'fill', source: SKETCHES, filter: ['!=', ['get', 'kind'], 'cut'], paint: { 'fill-color': sketchColour, 'fill-opacity': 0.2 } });
  map.addLayer({ id: 'sketch-line', type: 'line', source: SKETCHES, paint: { 'line-color': sketchColour, 'line-width': 2.5, 'line-dasharray': [3, 2] } });
  map.addSource(THEIRS, { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
  map.addLayer({ id: 'theirs-line', type: 'line', source: THEIRS, paint: { 'line-color': '#0f766e', 'line-width': 3, 'line-dasharray': [2, 1.5] } });
}

function drawProblems(problems) {
  const features = problems.filter((p) => p.where?.type).map((p) => ({
    type: 'Feature',
    geometry: p.where,
    properties: { kind: p.kind, colour: problemColour[p.kind] ?? '#b42318' },
  }));
  state.map?.getSource(PROBLEMS)?.setData({ type: 'FeatureCollection', features });
}

function showTheirs(geometry) {
  state.map?.getSource(THEIRS)?.setData({ type: 'FeatureCollection', features: geometry ? [{ type: 'Feature', geometry, properties: {} }] : [] });
}

// ---- choosing a grid ----

async function selectGrid(code) {
  const layer = state.layer.id;
  const base = `/v1/layers/${encodeURIComponent(layer)}/grids`;
  const feature = await api.get(`${base}/${encodeURIComponent(code)}`);
  const p = feature.properties ?? {};
  const [w, s, e, n] = bboxOf(feature.geometry);
  const pad = Math.max(e - w, n - s) * 0.25;
  const q = new URLSearchParams({ level: p.level, bbox: [w - pad, s - pad, e + pad, n + pad].map((v) => v.toFixed(6)).join(','), limit: '500' });
  const around = await api.get(`${base}?${q}`);
  const draw = state.draw;
  draw.clear();
  if (draw.getMode() !== 'select') draw.setMode('select');
  const shape = editable(feature.geometry);
  const neighbours = (around.features ?? []).filter((f) => (f.properties?.code ?? f.id) !== code)
    .map((f) => ({ f, g: editable(f.geometry) })).filter((x) => x.g);
  draw.addFeatures(neighbours.map(({ f, g }) => ({ id: draw.getFeatureId(), type: 'Feature', geometry: g, properties: { mode: 'neighbours', code: f.properties?.code ?? f.id, version: f.properties?.version } })));
  const id = draw.getFeatureId();
  let loaded = false;
  const big = !!shape && shape.coordinates[0].length > bigGrid;
  if (big) {
    loaded = true;
  } else if (shape) {
    const [valid] = draw.addFeatures([{ id, type: 'Feature', geometry: shape, properties: { mode: 'grid', code } }]);
    loaded = !!valid?.valid;
    if (loaded) draw.selectFeature(id);
    else console.warn(`grid ${code} could not be loaded for editing: ${valid?.reason}`);
  }
  state.grid = { code, id, name: p.name, level: p.level, parent: p.parent, version: p.version, editable: loaded, big, people: p.people ?? [],
    attributes: Object.fromEntries(Object.entries(p).filter(([k]) => !gridKeys.has(k))) };
  state.gridHistory = (await api.get(`${base}/${encodeURIComponent(code)}/history`).catch(() => ({ features: [] }))).features ?? [];
  state.historyAt = state.gridHistory.length - 1;
  state.coverage = null;
  state.peopleStatus = '';
  state.map.getSource(HISTORY)?.setData({ type: 'FeatureCollection', features: [] });
  state.checkSeq++; // a check of the grid before answers to nobody
  state.neighbours = neighbours.length;
  state.history = [{ geometry: shape ?? feature.geometry, ops: [] }];
  state.at = 0;
  state.tool = 'select';
  state.check = null;
  state.conflict = null;
  state.status = loaded ? '' : t('editor.notEditable');
  state.error = !loaded;
  drawProblems([]);
  drawSketches();
  showTheirs(null);
  drawBig();
  gm.highlight(state.map, [code]);
  state.map.fitBounds([[w, s], [e, n]], { padding: 60, maxZoom: 18, duration: 0 });
  renderSelection();
  renderDraft();
}

function clearSelection() {
  state.checkSeq++;
  state.draw.clear();
  if (state.grid) state.grid.big = false;
  drawBig();
  state.grid = null;
  state.history = [];
  state.at = 0;
  state.check = null;
  drawProblems([]);
  drawSketches();
  gm.highlight(state.map, []);
  renderSelection();
  renderDraft();
}

async function selectAt(lngLat) {
  const q = new URLSearchParams({ lon: lngLat.lng.toFixed(7), lat: lngLat.lat.toFixed(7), layer: state.layer.id });
  const answer = (await api.get(`/v1/lookup?${q}`)).layers?.[state.layer.id];
  const chain = answer?.chain ?? [];
  const hit = chain.find((g) => g.level === state.level) ?? chain[chain.length - 1];
  if (!hit || hit.code === state.grid?.code) return;
  if (edited() && !confirm(t('editor.leaveDraft'))) return;
  await selectGrid(hit.code);
}

async function search(text) {
  const q = new URLSearchParams({ q: text.trim(), layer: state.layer.id });
  const hits = (await api.get(`/v1/search?${q}`)).grids ?? [];
  const hit = hits.find((g) => g.level === state.level) ?? hits[0];
  if (!hit) {
    state.status = t('console.search.none');
    state.error = true;
    renderDraft();
    return;
  }
  await selectGrid(hit.code);
}

// ---- a grid of many vertices ----

// drawBig draws the big grid's outline and the handles of its vertices in
// view (none for another grid).
function drawBig() {
  const map = state.map;
  const empty = { type: 'FeatureCollection', features: [] };
  if (!state.grid?.big) {
    for (const id of [BIG, BIG_HANDLES]) map?.getSource(id)?.setData(empty);
    return;
  }
  const geometry = current().geometry;
  map.getSource(BIG).setData({ type: 'Feature', geometry, properties: {} });
  const b = map.getBounds();
  const ring = geometry.coordinates[0];
  const inView = ring.slice(0, -1).filter(([x, y]) => b.contains([x, y]));
  // Handles only close enough in to tell them apart.
  const handles = inView.length <= 2000 ? inView : [];
  map.getSource(BIG_HANDLES).setData({ type: 'Feature', geometry: { type: 'MultiPoint', coordinates: handles }, properties: {} });
}

// nearestVertex is the index of the vertex of ring within handlePixels of
// point (screen), or -1.
function nearestVertex(ring, point) {
  let best = -1;
  let bestD = handlePixels * handlePixels;
  const b = state.map.getBounds();
  for (let i = 0; i < ring.length - 1; i++) {
    if (!b.contains(ring[i])) continue;
    const p = state.map.project(ring[i]);
    const d = (p.x - point.x) ** 2 + (p.y - point.y) ** 2;
    if (d < bestD) {
      best = i;
      bestD = d;
    }
  }
  return best;
}

// snapTargets are the screen positions of the neighbours' vertices in view,
// taken when a drag starts (the map stands still while a vertex moves).
function snapTargets() {
  const b = state.map.getBounds();
  return neighbours().flatMap((n) => n.geometry.coordinates[0]).filter((c) => b.contains(c))
    .map((c) => ({ c, p: state.map.project(c) }));
}

// snapBig is lngLat moved onto a neighbour's vertex within handlePixels.
function snapBig(targets, lngLat, point) {
  let best = null;
  let bestD = handlePixels * handlePixels;
  for (const { c, p } of targets) {
    const d = (p.x - point.x) ** 2 + (p.y - point.y) ** 2;
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return best ?? [lngLat.lng, lngLat.lat];
}

// nearestEdge is the index i of the edge from ring[i] to ring[i+1] within
// handlePixels of point (screen), or -1.
function nearestEdge(ring, point) {
  let best = -1;
  let bestD = handlePixels * handlePixels;
  const b = state.map.getBounds();
  for (let i = 0; i < ring.length - 1; i++) {
    if (!b.contains(ring[i]) && !b.contains(ring[i + 1])) continue;
    const a = state.map.project(ring[i]);
    const c = state.map.project(ring[i + 1]);
    const dx = c.x - a.x;
    const dy = c.y - a.y;
    const k = Math.max(0, Math.min(1, ((point.x - a.x) * dx + (point.y - a.y) * dy) / (dx * dx + dy * dy || 1)));
    const d = (a.x + k * dx - point.x) ** 2 + (a.y + k * dy - point.y) ** 2;
    if (d < bestD) {
      best = i;
      bestD = d;
    }
  }
  return best;
}

// startBigDrag reshapes a big grid: dragging a vertex moves it, dragging
// an edge adds a vertex there, right-clicking a vertex removes it; Escape
// ends a drag without a change. While a vertex moves, only the two edges
// meeting at it are drawn, on a layer of the page's own over the map, so
// the map does not redraw its thousands of vertices at every move; the
// outline is recorded once the vertex drops, wherever the pointer is
// released (the drag follows the window, not just the map).
function startBigDrag(map) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', 'drag-overlay');
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  svg.append(line);
  map.getCanvasContainer().append(svg);
  let drag = null; // { ring, i, targets, start, moved }
  let rightDown = null; // where a right button went down
  const round = (v) => Math.round(v * 1e9) / 1e9;
  const usable = () => state.grid?.big && state.tool === 'select' && !state.busy;
  const pointOf = (ev) => {
    const r = map.getCanvasContainer().getBoundingClientRect();
    return { x: ev.clientX - r.left, y: ev.clientY - r.top };
  };
  const onMove = (ev) => {
    const point = pointOf(ev);
    if (Math.hypot(point.x - drag.start.x, point.y - drag.start.y) > 3) drag.moved = true;
    const { ring, i } = drag;
    const n = ring.length - 1;
    const ll = map.unproject([point.x, point.y]);
    const at = snapBig(drag.targets, ll, point);
    line.setAttribute('points', [ring[(i - 1 + n) % n], at, ring[(i + 1) % n]]
      .map((c) => map.project(c)).map((p) => `${p.x},${p.y}`).join(' '));
  };
  const end = (ev) => {
    const d = drag;
    drag = null;
    removeEventListener('mousemove', onMove);
    removeEventListener('mouseup', onUp);
    removeEventListener('keydown', onKey);
    line.removeAttribute('points');
    map.dragPan.enable();
    map.scrollZoom.enable();
    if (!ev || !d.moved) return; // a click, or Escape: nothing changes
    const point = pointOf(ev);
    const [x, y] = snapBig(d.targets, map.unproject([point.x, point.y]), point);
    d.ring[d.i] = [round(x), round(y)];
    if (d.i === 0) d.ring[d.ring.length - 1] = d.ring[0];
    record({ geometry: { type: 'Polygon', coordinates: [d.ring] } });
    drawBig();
  };
  const onUp = (ev) => { if (ev.button === 0) end(ev); };
  const onKey = (ev) => { if (ev.key === 'Escape') end(null); };
  map.on('mousedown', (e) => {
    const ev = e.originalEvent;
    if (ev.button === 2) rightDown = e.point;
    if (!usable() || drag || ev.button !== 0) return;
    const ring = current().geometry.coordinates[0].map((c) => [...c]);
    let i = nearestVertex(ring, e.point);
    if (i < 0) {
      const edge = nearestEdge(ring, e.point);
      if (edge < 0) return;
      i = edge + 1;
      ring.splice(i, 0, [e.lngLat.lng, e.lngLat.lat]);
    }
    drag = { ring, i, targets: snapTargets(), start: e.point, moved: false };
    e.preventDefault();
    map.dragPan.disable();
    map.scrollZoom.disable(); // the snapping targets are where the vertices are on screen now
    addEventListener('mousemove', onMove);
    addEventListener('mouseup', onUp);
    addEventListener('keydown', onKey);
  });
  map.on('contextmenu', (e) => {
    // A right-drag rotates the map; only a right-click in place removes.
    const still = rightDown && Math.hypot(e.point.x - rightDown.x, e.point.y - rightDown.y) <= 3;
    rightDown = null;
    if (!usable() || drag || !still) return;
    const ring = current().geometry.coordinates[0].map((c) => [...c]);
    const i = nearestVertex(ring, e.point);
    if (i < 0 || ring.length <= 4) return; // a triangle keeps its corners
    e.preventDefault();
    ring.splice(i, 1);
    if (i === 0) ring[ring.length - 1] = ring[0];
    record({ geometry: { type: 'Polygon', coordinates: [ring] } });
    drawBig();
  });
  map.on('moveend', () => { if (state.grid?.big && !drag) drawBig(); });
}

// ---- a draft of the whole layer: an imported file and its problems ----

const layerPath = () => `/v1/layers/${encodeURIComponent(state.layer.id)}`;

// loadLayerDraft reads the layer's draft, if it has one, and draws it.
async function loadLayerDraft({ known = true } = {}) {
  if (!known) {
    state.layerDraft = null;
    renderLayerDraft();
    return;
  }
  try {
    state.layerDraft = await api.get(`${layerPath()}/draft`);
  } catch (err) {
    state.layerDraft = null;
    if (err.status !== 404) state.layerDraftStatus = t('console.error', { message: err.message });
  }
  let grids = { type: 'FeatureCollection', features: [] };
  if (state.layerDraft) {
    try {
      grids = await api.get(`${layerPath()}/draft/grids`);
    } catch {
      // The summary still shows.
    }
  }
  state.map?.getSource(DRAFT)?.setData(grids);
  if (state.layerDraft) drawProblems(state.layerDraft.problems ?? []);
  renderLayerDraft();
}

// importDraft loads a GeoJSON file into the layer's draft: what overlaps
// or spills is kept and listed, to be fixed before publishing.
async function importDraft(file) {
  state.layerDraftStatus = t('editor.importing', { name: file.name });
  renderLayerDraft(true);
  try {
    const res = await fetch(`${layerPath()}/import?draft=true&make_valid=true`, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/geo+json', 'X-CSRF-Token': api.csrf() },
      body: file,
    });
    const body = await res.json().catch(() => null);
    if (!res.ok) throw new Error(body?.error?.message ?? `HTTP ${res.status}`);
    state.layerDraftStatus = t('editor.imported', { n: body?.read ?? 0 });
  } catch (err) {
    state.layerDraftStatus = t('console.error', { message: err.message });
  }
  await loadLayerDraft();
  const b = state.layerDraft && bboxOfAll((await api.get(`${layerPath()}/draft/grids`)).features ?? []);
  if (b) state.map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 60, duration: 0 });
}

function bboxOfAll(features) {
  const boxes = features.filter((f) => f.geometry).map((f) => bboxOf(f.geometry));
  if (!boxes.length) return null;
  return [Math.min(...boxes.map((b) => b[0])), Math.min(...boxes.map((b) => b[1])), Math.max(...boxes.map((b) => b[2])), Math.max(...boxes.map((b) => b[3]))];
}

async function resolveOverlap(codes, giveTo) {
  try {
    await api.post(`${layerPath()}/draft/resolve`, { overlap: codes, give_to: giveTo });
    state.layerDraftStatus = t('editor.resolved', { code: giveTo });
  } catch (err) {
    state.layerDraftStatus = t('console.error', { message: err.message });
  }
  await loadLayerDraft();
}

async function publishLayerDraft() {
  const reason = $('draft-reason').value.trim();
  if (!reason) {
    state.layerDraftStatus = t('editor.needReason');
    renderLayerDraft();
    return;
  }
  let published = false;
  try {
    await api.post(`${layerPath()}/publish`, { reason });
    state.layerDraftStatus = t('editor.draftPublished');
    $('draft-reason').value = '';
    gm.refresh(state.map, gm.GRIDS);
    published = true;
  } catch (err) {
    state.layerDraftStatus = t('console.error', { message: err.message });
  }
  const status = state.layerDraftStatus;
  // A published draft is gone; one refused is still there.
  await loadLayerDraft({ known: !published });
  state.layerDraftStatus = status;
  renderLayerDraft();
}

async function discardLayerDraft() {
  try {
    await api.del(`${layerPath()}/draft`);
    state.layerDraftStatus = '';
  } catch (err) {
    state.layerDraftStatus = t('console.error', { message: err.message });
  }
  await loadLayerDraft({ known: false });
}

function renderLayerDraft(busy = false) {
  const d = state.layerDraft;
  const box = $('layer-draft');
  box.hidden = !d && !state.layerDraftStatus;
  $('layer-draft-status').textContent = state.layerDraftStatus ?? '';
  $('layer-draft-summary').textContent = d ? t('editor.draftSummary', { created: d.created, changed: d.changed, ended: d.ended }) : '';
  const problems = d?.problems ?? [];
  $('layer-draft-problems').replaceChildren(...(d && !problems.length ? [el('li', { class: 'none', textContent: t('editor.noProblems') })] : problems.map((p) => el('li', {
    class: `kind-${p.kind}`,
    tabIndex: 0,
    title: p.message,
    onclick: (e) => { if (e.target === e.currentTarget) zoomTo(p.where); },
    onkeydown: (e) => { if (e.key === 'Enter' && e.target === e.currentTarget) zoomTo(p.where); },
  },
  `${kindText(p.kind)} · ${(p.codes ?? []).join('、')}${p.area_m2 != null ? ` · ${t('editor.area', { n: Math.round(p.area_m2) })}` : ''}`,
  p.kind === 'overlaps_sibling' && p.codes?.length === 2 ? el('span', { class: 'resolve' }, p.codes.map((c) => el('button', {
    type: 'button', dataset: { giveTo: c }, disabled: busy, textContent: t('editor.giveTo', { code: c }), onclick: () => resolveOverlap(p.codes, c),
  }))) : null))));
  $('draft-publish').disabled = busy || !d || problems.length > 0;
  $('draft-discard').disabled = busy || !d;
}

// ---- views ----

function renderSelection() {
  const box = $('selection');
  const g = state.grid;
  if (!g) {
    box.replaceChildren(el('p', { id: 'hint', class: 'message', textContent: t('editor.hint') }));
    return;
  }
  fill(box,
    el('h2', { textContent: g.name || g.code }),
    el('dl', {},
      el('dt', { textContent: t('editor.code') }), el('dd', { id: 'grid-code', class: 'code', textContent: g.code }),
      el('dt', { textContent: t('editor.level') }), el('dd', { textContent: levelText(g.level) }),
      el('dt', { textContent: t('editor.version') }), el('dd', { id: 'grid-version', textContent: String(g.version ?? '') }),
      el('dt', { textContent: t('editor.neighbours') }), el('dd', { textContent: String(state.neighbours) })),
    el('div', { class: 'tools', role: 'toolbar', 'aria-label': t('editor.tools') },
      ['select', 'draw', 'cut', 'transfer', 'merge'].map((tool) => el('button', { type: 'button', dataset: { tool }, 'aria-pressed': String(state.tool === tool), textContent: t(`editor.tool.${tool}`), onclick: () => useTool(tool) })),
      el('button', { type: 'button', id: 'delete-grid', textContent: t('editor.tool.delete'), onclick: deleteGrid })),
    el('p', { class: 'message', textContent: t(`editor.help.${state.tool}`) }),
    g.editable ? null : el('p', { class: 'message error', textContent: t('editor.notEditable') }),
    renderDrafted(),
    el('details', { class: 'more', open: !!state.detailsOpen, ontoggle: (e) => { state.detailsOpen = e.target.open; } },
      el('summary', { textContent: t('editor.details') }),
      el('label', { class: 'field' }, t('editor.name'),
        el('input', { id: 'grid-name', type: 'text', value: shownProperties().name, disabled: reshaped(), onchange: (e) => setProperties({ ...shownProperties(), name: e.target.value.trim() }) })),
      renderAttributes(),
      el('label', { class: 'field' }, t('editor.people'),
        el('textarea', { id: 'grid-people', rows: 3, placeholder: t('editor.peopleHint'), value: (g.people ?? []).map((p) => [p.role, p.name, p.phone].join(', ')).join('\n') })),
      el('button', { type: 'button', id: 'save-people', textContent: t('editor.savePeople'), onclick: () => savePeople($('grid-people').value) }),
      state.peopleStatus ? el('p', { class: 'message', role: 'status', textContent: state.peopleStatus }) : null,
      el('button', { type: 'button', id: 'show-coverage', textContent: t('editor.coverage'), onclick: showCoverage }),
      state.coverage ? el('p', { id: 'coverage-result', class: 'message' + (state.coverage.length ? ' error' : ''), textContent: state.coverage.length ? t('editor.coverageProblems', { n: state.coverage.length }) : t('editor.coverageClean') }) : null,
      state.gridHistory?.length > 1 ? el('label', { class: 'field' }, t('editor.history'),
        el('input', { id: 'history-slider', type: 'range', min: 0, max: state.gridHistory.length - 1, step: 1, value: state.historyAt, oninput: (e) => showHistory(Number(e.target.value)) }),
        historyText()) : null),
  );
}

function historyText() {
  const f = state.gridHistory?.[state.historyAt];
  if (!f) return null;
  const p = f.properties ?? {};
  return el('span', { id: 'history-version', class: 'history-version' }, t('editor.versionAt', { version: p.version, when: formatTime(p.valid_from), who: p.author || '—', why: p.reason || '—' }));
}

// renderDrafted lists the operations drafted besides reshaping, with the
// codes and names they give, editable.
function renderDrafted() {
  const ops = current()?.ops ?? [];
  if (!ops.length) return null;
  return el('ol', { id: 'drafted', class: 'drafted' }, ops.map((o, i) => {
    if (o.op === 'merge') return el('li', {}, `${t('editor.op.merge')} ${o.codes.join(' + ')} → ${o.into}`);
    if (o.op === 'put' && !o.code) {
      return el('li', {}, t('editor.op.new'), ' ',
        el('input', { type: 'text', class: 'new-code', value: o.feature.properties.code, ariaLabel: t('editor.code'), onchange: (e) => rename(i, 'code', e.target.value.trim()) }),
        el('input', { type: 'text', class: 'new-name', value: o.feature.properties.name, placeholder: t('editor.name'), ariaLabel: t('editor.name'), onchange: (e) => rename(i, 'name', e.target.value.trim()) }));
    }
    if (o.op === 'split') {
      return el('li', {}, t('editor.op.split', { code: o.code }), ' ',
        o.new_codes.map((c, k) => el('input', { type: 'text', class: 'split-code', value: c, ariaLabel: t('editor.code'), onchange: (e) => rename(i, k, e.target.value.trim()) })));
    }
    if (o.op === 'transfer') {
      const value = o.from === state.grid.code ? `to:${o.to}` : `from:${o.from}`;
      return el('li', {}, t('editor.op.transfer'), ' ',
        el('select', { class: 'transfer-to', ariaLabel: `${i + 1}. ${t('editor.op.transfer')}`, onchange: (e) => retarget(i, e.target.value) },
          neighbours().flatMap((n) => [
            el('option', { value: `to:${n.code}`, selected: value === `to:${n.code}`, textContent: `${state.grid.code} → ${n.code}` }),
            el('option', { value: `from:${n.code}`, selected: value === `from:${n.code}`, textContent: `${n.code} → ${state.grid.code}` }),
          ])));
    }
    return el('li', {}, t(`editor.op.${o.op}`, { code: o.code }, `${o.op} ${o.code}`));
  }));
}

function renderDraft() {
  const changed = edited();
  $('draft-count').textContent = changed ? t('editor.edits', { n: state.at }) : '';
  $('undo').disabled = state.busy || state.at === 0;
  $('redo').disabled = state.busy || state.at >= state.history.length - 1;
  $('discard').disabled = state.busy || !changed;
  $('publish').disabled = state.busy || !changed || !!state.conflict || (state.check?.problems?.length ?? 0) > 0;
  const status = $('draft-status');
  status.textContent = state.status;
  status.className = 'message' + (state.error ? ' error' : '');
  const problems = state.check?.problems ?? [];
  $('problems').replaceChildren(...(changed && state.check && problems.length === 0
    ? [el('li', { class: 'none', textContent: t('editor.noProblems') })]
    : problems.map((p) => el('li', {
      class: `kind-${p.kind}`,
      tabIndex: 0,
      textContent: `${kindText(p.kind)}${p.codes?.length ? ` · ${p.codes.join('、')}` : ''}${p.area_m2 != null ? ` · ${t('editor.area', { n: Math.round(p.area_m2) })}` : ''}`,
      title: p.message,
      onclick: () => zoomTo(p.where),
      onkeydown: (e) => { if (e.key === 'Enter') zoomTo(p.where); },
    }))));
  const impact = state.check?.impact;
  $('impact').replaceChildren(...(impact ? [
    el('dt', { textContent: t('editor.gridsChanged') }), el('dd', { id: 'impact-grids', textContent: (impact.grids ?? []).join('、') || '—' }),
    el('dt', { textContent: t('editor.areaMoved') }), el('dd', { textContent: t('editor.area', { n: Math.round(impact.area_moved_m2 ?? 0) }) }),
    el('dt', { textContent: t('editor.reportsMoved') }), el('dd', { textContent: (impact.reroutes ?? []).map((r) => `#${r.report} ${r.from}→${r.to}`).join('、') || '—' }),
  ] : []));
  $('conflict').hidden = !state.conflict;
  $('conflict-text').textContent = state.conflict?.text ?? '';
}

function zoomTo(where) {
  if (!where?.type) return;
  const [w, s, e, n] = bboxOf(where);
  state.map.fitBounds([[w, s], [e, n]], { padding: 80, maxZoom: 19 });
}

function renderLevels() {
  const sel = $('level');
  sel.replaceChildren(...(state.layer?.levels ?? []).map((l) => el('option', { value: l, textContent: levelText(l) })));
  sel.value = state.level;
}

function renderAll() {
  for (const b of document.querySelectorAll('[data-lang]')) b.setAttribute('aria-pressed', String(b.dataset.lang === language()));
  const c = state.caller;
  if (c) $('who').textContent = `${c.display_name || c.name} (${t(`console.role.${c.role}`)}${c.scope ? ` · ${c.scope.layer} ${c.scope.code}` : ''})`;
  renderLevels();
  renderSelection();
  renderDraft();
  document.title = t('editor.pageTitle');
}

// ---- start ----

const snapping = { toCoordinate: true, toLine: true };

// selectFlags are what the select mode lets the editor do to the grid.
function selectFlags(midpoints) {
  return { grid: { feature: { draggable: false, coordinates: { draggable: true, midpoints, deletable: true, snappable: snapping } } } };
}

function startDraw(map) {
  const draw = new TerraDraw({
    adapter: new TerraDrawMapLibreGLAdapter({ map, coordinatePrecision: 9 }),
    modes: [
      new TerraDrawRenderMode({
        modeName: 'neighbours',
        styles: { polygonFillColor: '#94a3b8', polygonFillOpacity: 0.12, polygonOutlineColor: '#475569', polygonOutlineWidth: 1.5 },
      }),
      // The grid being edited: a polygon the select mode reshapes (the
      // page never draws with it).
      new TerraDrawPolygonMode({
        modeName: 'grid',
        styles: { fillColor: '#f97316', fillOpacity: 0.15, outlineColor: '#c2410c', outlineWidth: 2.5 },
      }),
      // A new grid beside the selected one, and a line to split it by.
      new TerraDrawPolygonMode({
        modeName: 'newgrid',
        snapping,
        styles: { fillColor: '#2563eb', fillOpacity: 0.2, outlineColor: '#1d4ed8', outlineWidth: 2 },
      }),
      new TerraDrawLineStringMode({ modeName: 'cut', snapping, styles: { lineStringColor: '#1d4ed8', lineStringWidth: 2.5 } }),
      // An area to give to a neighbour (or take from it).
      new TerraDrawPolygonMode({
        modeName: 'area',
        snapping,
        styles: { fillColor: '#0d9488', fillOpacity: 0.2, outlineColor: '#0f766e', outlineWidth: 2 },
      }),
      new TerraDrawSelectMode({
        flags: selectFlags(true),
        allowManualDeselection: false,
        styles: { selectedPolygonColor: '#f97316', selectedPolygonOutlineColor: '#c2410c', selectedPolygonOutlineWidth: 2.5, selectedPolygonFillOpacity: 0.15 },
      }),
    ],
  });
  draw.start();
  draw.setMode('select');
  draw.on('finish', (id, context) => {
    if (!state.grid) return;
    if (state.busy) {
      // A publish is under way: what it sends is what was drafted.
      if (id === state.grid.id) show(state.at);
      return;
    }
    if (context?.mode === 'newgrid' || context?.mode === 'cut' || context?.mode === 'area') {
      drafted(id, context.mode);
      return;
    }
    if (id !== state.grid.id) return;
    const f = draw.getSnapshotFeature(id);
    if (f) record({ geometry: f.geometry });
  });
  return draw;
}

async function main() {
  await useLanguage(chosenLanguage());
  for (const b of document.querySelectorAll('[data-lang]')) b.addEventListener('click', async () => { await useLanguage(b.dataset.lang, { save: true }); renderAll(); });
  const [caller, { layers }, config] = await Promise.all([api.session(), api.get('/v1/layers'), api.get('/v1/config').catch(() => ({}))]);
  state.caller = caller;
  state.timeZone = config.time_zone;
  state.layers = layers;
  const params = new URLSearchParams(location.search);
  state.layer = layers.find((l) => l.id === params.get('layer')) ?? layers.find((l) => l.kind === 'comprehensive') ?? layers[0];
  if (!state.layer) {
    state.status = t('console.noLayers');
    renderAll();
    return;
  }
  const levels = state.layer.levels ?? [];
  state.level = levels.includes(params.get('level')) ? params.get('level') : levels[Math.min(3, levels.length - 1)] ?? '';
  $('layer').replaceChildren(...layers.map((l) => el('option', { value: l.id, textContent: l.name || l.id })));
  $('layer').value = state.layer.id;
  $('layer').addEventListener('change', (e) => { location.search = `?layer=${encodeURIComponent(e.target.value)}`; });
  $('level').addEventListener('change', (e) => { state.level = e.target.value; });
  $('grid-search').addEventListener('keydown', (e) => { if (e.key === 'Enter' && e.target.value.trim()) search(e.target.value).catch((err) => { state.status = t('console.error', { message: err.message }); state.error = true; renderDraft(); }); });
  $('undo').addEventListener('click', () => state.at > 0 && show(state.at - 1));
  $('redo').addEventListener('click', () => state.at < state.history.length - 1 && show(state.at + 1));
  $('discard').addEventListener('click', discard);
  $('publish').addEventListener('click', publish);
  $('rebase').addEventListener('click', rebase);
  $('conflict-discard').addEventListener('click', discardMine);
  $('export').href = `/v1/layers/${encodeURIComponent(state.layer.id)}/export?format=geojson`;
  $('draft-file').addEventListener('change', (e) => { if (e.target.files[0]) importDraft(e.target.files[0]); e.target.value = ''; });
  $('draft-publish').addEventListener('click', publishLayerDraft);
  $('draft-discard').addEventListener('click', discardLayerDraft);
  // A file dropped on the map is imported as a draft too.
  $('map').addEventListener('dragover', (e) => e.preventDefault());
  $('map').addEventListener('drop', (e) => {
    e.preventDefault();
    const file = e.dataTransfer?.files?.[0];
    if (file) importDraft(file);
  });
  addEventListener('keydown', (e) => {
    if (!(e.ctrlKey || e.metaKey) || e.target instanceof HTMLInputElement) return;
    if (e.key === 'z' && !e.shiftKey && state.at > 0) { e.preventDefault(); show(state.at - 1); }
    if ((e.key === 'y' || (e.key === 'z' && e.shiftKey)) && state.at < state.history.length - 1) { e.preventDefault(); show(state.at + 1); }
  });
  addEventListener('beforeunload', (e) => { if (edited()) e.preventDefault(); });
  renderAll();

  let tilejson = null;
  try {
    tilejson = await api.get(`/tiles/${encodeURIComponent(state.layer.id)}.json`);
  } catch {
    // Without bounds the map starts at a default view.
  }
  const map = await gm.createMap($('map'), state.layer, tilejson, { reports: false, basemap: await gm.basemapStyle(config.basemap_style) });
  const report = (err) => {
    state.status = t('console.error', { message: err.message });
    state.error = true;
    renderDraft();
  };
  state.map = map;
  window.gridmap = { map, state };
  map.on('load', () => {
    addOverlays(map);
    state.draw = startDraw(map);
    startBigDrag(map);
    window.gridmap.draw = state.draw;
    window.gridmap.ready = true;
    loadLayerDraft({ known: state.layer.draft });
    if (params.get('grid')) selectGrid(params.get('grid')).catch(report);
  });
  map.on('click', (e) => {
    if (state.tool === 'merge' && !state.busy) {
      mergeAt(e.lngLat).catch(report);
      return;
    }
    if (state.busy || state.tool !== 'select') return; // drawing clicks are the tool's
    selectAt(e.lngLat).catch((err) => {
      state.status = t('console.error', { message: err.message });
      state.error = true;
      renderDraft();
    });
  });
}

main().catch((err) => {
  if (leaving() || (err instanceof api.ApiError && err.status === 401)) return;
  console.error(err);
  $('draft-status').textContent = String(err.message ?? err);
});
