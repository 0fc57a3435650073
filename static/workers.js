// The console's grid workers: the on-duty workers on the map (GET
// /v1/workers when the console opens, then moved by the live `worker`
// events, never reloaded), fading as they fall silent and gone after 15
// minutes; a list of them in the patrol tab; and the playback of one
// worker's track for a day (GET /v1/workers/{username}/track): the track
// drawn with its gaps apart, a slider and play/pause moving a marker along
// it by time. Viewers (403) see none of it. State lives in `wk`; the views
// render from it.
import * as api from '/api.js';
import { language, t } from '/i18n.js';
import { el, fill } from '/dom.js';
import * as gm from '/map.js';
import { Latest } from '/latest.js';

const $ = (id) => document.getElementById(id);

// A worker silent this long is off duty and leaves the map; fading starts
// at fadeFrom.
export const silentAfter = 15 * 60_000;
const fadeFrom = 10 * 60_000;
// Points further apart in time than this start a new stretch of track.
export const gapAfter = 5 * 60_000;
// How many seconds of track one second of playback covers.
const speeds = [60, 300, 900];
const frameMs = 100;

// today is the day it is now in timeZone, as yyyy-mm-dd.
export function today(timeZone) {
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date());
}

// fadeOf is how visible a worker last heard from at t is (1 fresh, down
// to 0.2 at silentAfter), or 0 when gone.
export function fadeOf(t, now = Date.now()) {
  const age = now - Date.parse(t);
  if (!(age < silentAfter)) return 0;
  if (age <= fadeFrom) return 1;
  return 1 - (0.8 * (age - fadeFrom)) / (silentAfter - fadeFrom);
}

// stretches splits a day's points (sorted by t) where the worker was not
// heard from for gapAfter: the stretches, and the gaps between them as
// [from, to] coordinate pairs.
export function stretches(points) {
  const out = [];
  const gaps = [];
  let cur = [];
  for (let i = 0; i < points.length; i++) {
    const p = points[i];
    if (i > 0 && p.ms - points[i - 1].ms > gapAfter) {
      out.push(cur);
      gaps.push([[points[i - 1].lon, points[i - 1].lat], [p.lon, p.lat]]);
      cur = [];
    }
    cur.push([p.lon, p.lat]);
  }
  if (cur.length) out.push(cur);
  return { stretches: out, gaps };
}

// boundsOf is the [[west, south], [east, north]] of points ({lon, lat}),
// null for none. A loop: a day's track may hold tens of thousands of
// points, too many to spread into Math.min's arguments.
export function boundsOf(points) {
  if (!points.length) return null;
  let w = Infinity;
  let s = Infinity;
  let e = -Infinity;
  let n = -Infinity;
  for (const p of points) {
    if (p.lon < w) w = p.lon;
    if (p.lon > e) e = p.lon;
    if (p.lat < s) s = p.lat;
    if (p.lat > n) n = p.lat;
  }
  return [[w, s], [e, n]];
}

// merge puts the position w into workers (username -> position): the
// newer of w and the one held, by t, gives the position, whichever came
// first; the older only fills in what the newer lacks. True when w was
// the newer.
export function merge(workers, w) {
  const held = workers[w.worker];
  if (!held) {
    workers[w.worker] = w;
    return true;
  }
  const newer = !(Date.parse(held.t) > Date.parse(w.t));
  workers[w.worker] = newer ? { ...held, ...w } : { ...w, ...held };
  return newer;
}

// positionAt is where the track has the worker at ms: between two points
// of a stretch along the line, in a gap at the last point heard (gap
// true).
export function positionAt(points, ms) {
  if (!points.length) return null;
  if (ms <= points[0].ms) return { lon: points[0].lon, lat: points[0].lat, gap: false, index: 0 };
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1];
    const b = points[i];
    if (ms > b.ms) continue;
    // On a point itself, even the first after a gap, the worker is there.
    if (ms === b.ms) return { lon: b.lon, lat: b.lat, gap: false, index: i };
    if (b.ms - a.ms > gapAfter) return { lon: a.lon, lat: a.lat, gap: true, index: i - 1 };
    const f = b.ms === a.ms ? 1 : (ms - a.ms) / (b.ms - a.ms);
    return { lon: a.lon + (b.lon - a.lon) * f, lat: a.lat + (b.lat - a.lat) * f, gap: false, index: i - 1 };
  }
  const z = points[points.length - 1];
  return { lon: z.lon, lat: z.lat, gap: false, index: points.length - 1 };
}

// createWorkers makes the workers' part of the console: con is the
// console's state (layer, map, mapLoaded, timeZone), read when needed.
export function createWorkers(con) {
  const wk = {
    allowed: null, // null until /v1/workers answers; false for viewers (403) or a server without it
    on: true, // the header toggle
    workers: {}, // username -> { worker, name, t, lon, lat, accuracy_m, grid, layer }
    loading: false,
    error: null, // { text, unavailable }
    playback: null, // { worker, name, day, loading, error, points, shape, at, playing, speed }
  };
  let timer = null;
  let player = null;
  // Only the latest read of the list, and of a track, shows.
  const listReads = new Latest();
  const trackReads = new Latest();

  const problem = (err) => (api.notOffered(err)
    ? { text: t('workers.unavailable'), unavailable: true }
    : { text: t('console.error', { message: err?.message ?? String(err) }), unavailable: false });

  function formatTime(iso, withDate = false) {
    const d = typeof iso === 'number' ? new Date(iso) : new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    return new Intl.DateTimeFormat(language(), withDate
      ? { timeZone: con.timeZone, dateStyle: 'short', timeStyle: 'short' }
      : { timeZone: con.timeZone, hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }).format(d);
  }

  // ---- live positions ----

  // load reads the on-duty workers. The live stream runs meanwhile: a
  // position it brings while the list is read is kept (see moved), and the
  // list's answer, which may be older, does not overwrite it.
  async function load() {
    if (!con.layer) return;
    const current = listReads.start();
    // Only dispatchers and above may see where people are: others are not
    // asked (they would be refused).
    if (!api.atLeast(con.caller?.role, 'dispatcher')) {
      wk.allowed = false;
      wk.workers = {};
      render();
      return;
    }
    wk.loading = true;
    renderList();
    try {
      const body = await api.get(`/v1/workers?${new URLSearchParams({ layer: con.layer.id })}`);
      if (!current()) return;
      wk.allowed = true;
      wk.error = null;
      const listed = {};
      for (const w of body.workers ?? []) merge(listed, w);
      for (const w of Object.values(wk.workers)) {
        if (!w.layer || w.layer === con.layer.id) merge(listed, w);
      }
      wk.workers = listed;
    } catch (err) {
      if (!current()) return;
      // Viewers may not see where people are: no toggle, no list.
      wk.allowed = err.status === 403 ? false : !api.notOffered(err);
      wk.error = err.status === 403 ? null : problem(err);
    }
    wk.loading = false;
    render();
    draw();
  }

  // moved follows a live `worker` event: the worker moves (or appears)
  // where the event says, nothing is read again. An older position than
  // the one held, come late, changes nothing; one that comes before the
  // list has been read is held for load to merge.
  function moved(d) {
    if (wk.allowed === false || !d?.worker) return;
    if (d.layer && con.layer && d.layer !== con.layer.id) return;
    if (!merge(wk.workers, d) || !wk.allowed) return;
    draw();
    renderList();
  }

  // live are the workers heard from within silentAfter, by name, with
  // their fade; the silent ones are forgotten.
  function live(now = Date.now()) {
    const out = [];
    for (const [k, w] of Object.entries(wk.workers)) {
      const fade = fadeOf(w.t, now);
      if (fade <= 0) {
        delete wk.workers[k];
        continue;
      }
      out.push({ ...w, fade });
    }
    return out.sort((a, b) => (a.name || a.worker).localeCompare(b.name || b.worker, language()));
  }

  function draw() {
    if (!con.map || !con.mapLoaded || !wk.allowed) return;
    gm.setWorkers(con.map, live(), wk.on);
  }

  function renderToggle() {
    $('workers-toggle').hidden = !wk.allowed;
    $('workers').checked = wk.on;
  }

  function renderList() {
    const box = $('worker-section');
    if (!box) return;
    box.hidden = wk.allowed === false && !wk.error;
    const list = wk.allowed ? live() : [];
    const msg = $('worker-message');
    msg.textContent = wk.error?.text || (wk.loading ? t('console.loading') : wk.allowed && !list.length ? t('workers.none') : '');
    msg.classList.toggle('error', !!wk.error && !wk.error.unavailable);
    msg.classList.toggle('unavailable', !!wk.error?.unavailable);
    $('worker-count').textContent = wk.allowed ? t('console.count', { n: list.length }) : '';
    fill($('worker-list'), list.map((w) => el('li', {
      class: 'worker' + (wk.playback?.worker === w.worker ? ' selected' : '') + (w.fade < 1 ? ' fading' : ''),
      dataset: { worker: w.worker },
      tabIndex: 0,
      onclick: () => openPlayback(w),
      onkeydown: (e) => { if (e.key === 'Enter') openPlayback(w); },
    },
    el('span', { class: 'worker-name', textContent: w.name || w.worker }),
    el('span', { class: 'code', textContent: w.grid ?? '' }),
    el('time', { class: 'worker-seen', dateTime: w.t, textContent: formatTime(w.t) }))));
  }

  // ---- playback ----

  // openPlayback shows a worker's track for a day (default today).
  function openPlayback(w, day) {
    stop();
    wk.playback = { worker: w.worker, name: w.name || w.worker, day: day || wk.playback?.day || today(con.timeZone), loading: true, error: null, points: [], shape: null, at: 0, playing: false, speed: speeds[0] };
    renderPlayback();
    renderList();
    loadTrack();
  }

  async function loadTrack() {
    const p = wk.playback;
    if (!p) return;
    const current = trackReads.start();
    stop();
    p.loading = true;
    p.error = null;
    renderPlayback();
    try {
      const body = await api.get(`/v1/workers/${encodeURIComponent(p.worker)}/track?${new URLSearchParams({ day: p.day })}`);
      if (!current() || wk.playback !== p) return;
      p.points = (body.points ?? []).map((x) => ({ ...x, ms: Date.parse(x.t) })).filter((x) => !Number.isNaN(x.ms)).sort((a, b) => a.ms - b.ms);
      // Split once: playback moves only the marker.
      p.shape = stretches(p.points);
      if (body.name) p.name = body.name;
      p.at = p.points[0]?.ms ?? 0;
    } catch (err) {
      if (!current() || wk.playback !== p) return;
      p.points = [];
      p.shape = null;
      p.error = problem(err);
    }
    p.loading = false;
    renderPlayback();
    drawTrack(true);
  }

  // drawTrack draws the track and the marker where playback is; fit
  // brings the whole track into view.
  function drawTrack(fit = false) {
    if (!con.map || !con.mapLoaded) return;
    const p = wk.playback;
    if (!p || !p.points.length) {
      gm.setTrack(con.map, {});
      gm.setTrackMarker(con.map, null);
      return;
    }
    gm.setTrack(con.map, p.shape ?? stretches(p.points));
    drawMarker();
    if (fit) {
      // Clear of the playback panel over the map's foot.
      const under = $('playback').offsetHeight || 0;
      con.map.fitBounds(boundsOf(p.points), { padding: { top: 60, left: 60, right: 60, bottom: 60 + under }, maxZoom: 17, duration: 0 });
    }
  }

  // drawMarker moves the playback marker to where playback is.
  function drawMarker() {
    if (!con.map || !con.mapLoaded) return;
    const p = wk.playback;
    const pos = p && positionAt(p.points, p.at);
    gm.setTrackMarker(con.map, pos ? [pos.lon, pos.lat] : null);
  }

  function stop() {
    clearInterval(player);
    player = null;
    if (wk.playback) wk.playback.playing = false;
  }

  function play() {
    const p = wk.playback;
    if (!p || p.points.length < 2) return;
    const last = p.points[p.points.length - 1].ms;
    if (p.at >= last) p.at = p.points[0].ms;
    p.playing = true;
    player = setInterval(() => {
      p.at = Math.min(last, p.at + p.speed * frameMs);
      if (p.at >= last) stop();
      drawMarker();
      renderPosition();
    }, frameMs);
    renderPlayback();
  }

  function closePlayback() {
    stop();
    wk.playback = null;
    if (con.map && con.mapLoaded) {
      gm.setTrack(con.map, {});
      gm.setTrackMarker(con.map, null);
    }
    renderPlayback();
    renderList();
  }

  // renderPosition moves the slider and says the time, without drawing
  // the panel again (the slider keeps the pointer while dragged).
  function renderPosition() {
    const p = wk.playback;
    const slider = $('playback-slider');
    if (!p || !slider) return;
    slider.value = String(p.at);
    const pos = positionAt(p.points, p.at);
    $('playback-time').textContent = p.points.length ? formatTime(p.at) + (pos?.gap ? ` · ${t('workers.gap')}` : '') : '';
    const play = $('playback-play');
    if (play) {
      play.textContent = t(p.playing ? 'workers.pause' : 'workers.play');
      play.setAttribute('aria-pressed', String(p.playing));
    }
  }

  function renderPlayback() {
    const box = $('playback');
    const p = wk.playback;
    if (!p) {
      box.hidden = true;
      box.replaceChildren();
      return;
    }
    const n = p.points.length;
    const first = p.points[0]?.ms ?? 0;
    const last = p.points[n - 1]?.ms ?? 0;
    // The slider moves by whole seconds; its ends reach past the first and
    // last points so that Home and End land on them.
    const lo = Math.floor(first / 1000) * 1000;
    const hi = Math.ceil(last / 1000) * 1000;
    const gaps = p.shape?.gaps.length ?? 0;
    const message = p.error?.text || (p.loading ? t('console.loading') : n === 0 ? t('workers.noTrack') : t('workers.trackSummary', { n, from: formatTime(first), to: formatTime(last), gaps }));
    fill(box,
      el('div', { class: 'detail-head' },
        el('h2', { textContent: t('workers.playback', { name: p.name }) }),
        el('button', { type: 'button', class: 'close', id: 'playback-close', textContent: '×', ariaLabel: t('console.close'), onclick: closePlayback })),
      el('div', { class: 'playback-row' },
        el('label', {}, t('workers.day'), ' ', el('input', {
          id: 'playback-day', type: 'date', value: p.day, max: today(con.timeZone),
          onchange: (e) => { if (e.target.value) { p.day = e.target.value; loadTrack(); } },
        })),
        el('label', {}, t('workers.speed'), ' ', el('select', {
          id: 'playback-speed',
          onchange: (e) => { p.speed = Number(e.target.value); },
        }, speeds.map((s) => el('option', { value: String(s), selected: s === p.speed, textContent: t('workers.speedX', { n: s }) }))))),
      el('p', { id: 'playback-message', class: 'message' + (p.error && !p.error.unavailable ? ' error' : '') + (p.error?.unavailable ? ' unavailable' : ''), role: 'status', textContent: message }),
      el('div', { class: 'playback-row' },
        el('button', { type: 'button', id: 'playback-play', class: 'play', disabled: n < 2, 'aria-pressed': String(p.playing), textContent: t(p.playing ? 'workers.pause' : 'workers.play'), onclick: () => (p.playing ? (stop(), renderPosition()) : play()) }),
        el('input', {
          id: 'playback-slider', type: 'range', min: String(lo), max: String(hi), step: '1000', value: String(p.at), disabled: n < 2,
          ariaLabel: t('workers.slider'),
          oninput: (e) => { p.at = Number(e.target.value); drawMarker(); renderPosition(); },
        }),
        el('time', { id: 'playback-time', class: 'playback-time' })));
    box.hidden = false;
    renderPosition();
  }

  // ---- the map ----

  // clicked opens the playback of the worker at a map click's hits; false
  // when there is none.
  function clicked(hits) {
    const f = hits.find((h) => h.layer.id === 'worker-icons');
    if (!f) return false;
    const w = wk.workers[f.properties.worker] ?? { worker: f.properties.worker, name: f.properties.name };
    openPlayback(w);
    return true;
  }

  function mapReady() {
    draw();
    drawTrack();
  }

  function render() {
    renderToggle();
    renderList();
    renderPlayback();
  }

  function start() {
    $('workers').addEventListener('change', (e) => {
      wk.on = e.target.checked;
      draw();
    });
    // Silent workers fade and leave without any event.
    clearInterval(timer);
    timer = setInterval(() => {
      draw();
      renderList();
    }, 15_000);
    render();
  }

  return { state: wk, start, load, moved, render, mapReady, clicked, openPlayback };
}
