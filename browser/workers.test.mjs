// The console's grid-worker views against a real server holding the demo
// district: a grid worker's phone posts its track, the worker's marker
// appears on the dispatcher's map and moves on the live `worker` event
// without /v1/workers being read again; a position the live stream brings
// before /v1/workers has answered is shown, and the older list does not
// overwrite it; clicking it opens the playback, whose slider and play
// button move the marker along the day's track (drawn in stretches, the
// gap apart); a day of 50,000 points plays back, and a stretch of one
// point is drawn as a dot; the patrol coverage toggle colours the grids of
// the level the server answers with (the layer's finest grid-tier level,
// not named 'grid' in the demo) by the day's coverage (feature state, by
// code), outlines the idle ones and the ones without a Party
// organisation, and its table downloads as CSV; a report's detail lists
// the worker nearby, who is chosen and dispatched to; the page speaks
// English.
//
// Every request goes to the real server: the worker's phone posts its
// track to POST /v1/tracks signed in as the worker's account (linked to a
// grid worker of the grid at GRIDMAP_REPORT_AT), and the `worker` events
// come from the real event stream.
//
// Environment (besides lib.mjs's GRIDMAP_URL, GRIDMAP_SHOTS, CHROMIUM):
//   GRIDMAP_USER, GRIDMAP_PASSWORD                a dispatcher account
//   GRIDMAP_WORKER_USER, GRIDMAP_WORKER_PASSWORD  a grid worker's account (role reporter): posts its track
//   GRIDMAP_WORKER_NAME                           its display name (default: the username)
//   GRIDMAP_WORKER_GRID                           the code of the grid its person is in
//   GRIDMAP_REPORTER_TOKEN                        a reporter token (files the report)
//   GRIDMAP_LAYER                                 the comprehensive layer (default demo)
//   GRIDMAP_REPORT_AT                             lon,lat inside the district (default 120.08,30.24)
//   GRIDMAP_COVERAGE_LEVEL                        the level coverage is of when none is asked for (the
//                                                 layer's finest grid-tier level; default: not checked)
//
// Run alone: cd browser && GRIDMAP_URL=... GRIDMAP_USER=... node workers.test.mjs
// (server/browser_workers_test.go sets all of this).
import { readFileSync } from 'node:fs';
import { assert, browserTest, dictionary, env, eventually } from './lib.mjs';

const zh = dictionary('zh-CN');
const en = dictionary('en');
const base = env('GRIDMAP_URL').replace(/\/+$/, '');
const user = env('GRIDMAP_USER');
const password = env('GRIDMAP_PASSWORD');
const workerUser = env('GRIDMAP_WORKER_USER');
const workerPassword = env('GRIDMAP_WORKER_PASSWORD');
const workerName = env('GRIDMAP_WORKER_NAME', workerUser);
const workerGrid = env('GRIDMAP_WORKER_GRID', '');
const reporterToken = env('GRIDMAP_REPORTER_TOKEN');
const layer = env('GRIDMAP_LAYER', 'demo');
const [lon0, lat0] = env('GRIDMAP_REPORT_AT', '120.08,30.24').split(',').map(Number);
const coverageLevel = env('GRIDMAP_COVERAGE_LEVEL', '');

async function call(method, path, { token = reporterToken, cookie, csrf, body } = {}) {
  const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
  if (token && !cookie) headers.Authorization = `Bearer ${token}`;
  if (cookie) headers.Cookie = cookie;
  if (csrf) headers['X-CSRF-Token'] = csrf;
  const res = await fetch(base + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: res.status, text, json, headers: res.headers };
}

// The day in Asia/Shanghai (the demo deployment's zone) as yyyy-mm-dd.
const dayOf = (ms) => new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(ms));

await browserTest('workers', async (t) => {
  const { page } = t;
  const now = Date.now();
  const today = dayOf(now);
  // The worker's morning: ten points walking east a minute apart, a gap of
  // 13 minutes (no signal), five walking north, the last 20 s ago; then a
  // live position. Playback shows one day, so the morning lies within
  // today: in the day's first half hour its points come closer together,
  // with a gap just over the console's five minutes (gapAfter in
  // static/workers.js), at least 5 s apart (the slider moves by whole
  // seconds, the marker checks within a tenth of a step). TestWorkers
  // starts this script once that fits, and not near midnight.
  const dayStart = Date.parse(`${today}T00:00:00+08:00`);
  const room = now - dayStart - 5_000;
  const lead = 20_000;
  let [step, gap] = [60_000, 13 * 60_000];
  if (13 * step + gap + lead > room) {
    gap = 5.5 * 60_000;
    step = Math.min(60_000, Math.floor((room - gap - lead) / 13));
    assert.ok(step >= 5_000, `the day began ${room} ms ago: too little for the morning track`);
  }
  const track = [];
  const east = now - lead - 13 * step - gap;
  const north = now - lead - 4 * step;
  for (let i = 0; i < 10; i++) track.push({ t: new Date(east + i * step).toISOString(), lon: lon0 - 0.004 + i * 0.0004, lat: lat0 - 0.002 });
  for (let i = 0; i < 5; i++) track.push({ t: new Date(north + i * step).toISOString(), lon: lon0, lat: lat0 - 0.002 + i * 0.0004 });
  const todays = track.slice();
  assert.equal(todays.filter((p) => dayOf(Date.parse(p.t)) === today).length, todays.length, 'the morning lies within today');

  // The worker's phone: signs in, and posts its positions in batches.
  let phone = null;
  async function postTrack(points) {
    if (!phone) {
      const r = await call('POST', '/v1/session', { token: '', body: { username: workerUser, password: workerPassword } });
      assert.equal(r.status, 200, `the worker signs in: ${r.status} ${r.text}`);
      phone = { cookie: (r.headers.get('set-cookie') ?? '').split(';')[0], csrf: r.json.csrf_token };
    }
    const r = await call('POST', '/v1/tracks', { ...phone, body: { device: 'test-phone', crs: 'wgs84', points: points.map(({ t: time, lon, lat }) => ({ t: time, lon, lat, accuracy_m: 12 })) } });
    assert.equal(r.status, 200, `POST /v1/tracks: ${r.status} ${r.text}`);
    assert.equal(r.json.stored, points.length, `the points stored: ${r.text}`);
  }

  const gm = (fn, arg) => page.evaluate(fn, arg);
  const workersRead = [];
  const coverageRead = [];
  page.on('request', (req) => {
    const { pathname } = new URL(req.url());
    if (pathname === '/v1/workers') workersRead.push(req.url());
    if (pathname === '/v1/patrol/coverage' || pathname === '/v1/patrol/idle') coverageRead.push(req.url());
  });
  // held is where the worker is as the page holds it.
  const held = () => gm((u) => window.gridmap.workers.workers[u] ?? null, workerUser);
  const at = (w, p) => !!w && Math.abs(w.lon - p.lon) < 1e-6 && Math.abs(w.lat - p.lat) < 1e-6;
  // iconAt tells whether the worker's marker is drawn at lon, lat.
  const iconAt = (lon, lat) => gm(([lo, la, u]) => {
    const { map } = window.gridmap;
    const p = map.project([lo, la]);
    return map.queryRenderedFeatures([[p.x - 6, p.y - 6], [p.x + 6, p.y + 6]], { layers: ['worker-icons'] }).some((f) => f.properties.worker === u);
  }, [lon, lat, workerUser]);
  const idle = () => gm(() => new Promise((r) => { const { map } = window.gridmap; if (map.loaded() && !map.isMoving()) r(); else map.once('idle', r); }));

  await t.step('before the console opens, the worker\'s phone posts the morning track', async () => {
    await postTrack(track.slice(0, 10));
    await postTrack(track.slice(10));
  });

  await t.step('a dispatcher signs in: the worker is on the map with a name', async () => {
    await page.goto(t.url(`/login?next=${encodeURIComponent(`/?layer=${layer}`)}`));
    await page.getByLabel(zh['login.username']).fill(user);
    await page.getByLabel(zh['login.password']).fill(password);
    await page.locator('#login-submit').click();
    await page.waitForURL((u) => u.pathname === '/');
    await eventually(async () => assert.ok(await gm(() => window.gridmap?.firstIdleMs !== undefined), 'the map is drawn'));
    await page.locator('#workers-toggle').waitFor();
    assert.equal(await page.locator('#workers-toggle').textContent().then((s) => s.trim()), zh['workers.toggle']);
    assert.equal(await page.locator('#workers').isChecked(), true, 'on by default');
    const last = track[track.length - 1];
    await gm(([lo, la]) => window.gridmap.map.jumpTo({ center: [lo, la], zoom: 15.5 }), [last.lon, last.lat]);
    await idle();
    await eventually(async () => assert.ok(await iconAt(last.lon, last.lat), 'the worker\'s marker where the phone was last'));
    const names = await gm(() => window.gridmap.map.queryRenderedFeatures({ layers: ['worker-icons'] }).map((f) => f.properties.name));
    assert.ok(names.includes(workerName), `the marker carries the name: ${names}`);
  });

  await t.step('a new position moves the marker live, without reading /v1/workers again', async () => {
    const readBefore = workersRead.length;
    assert.ok(readBefore >= 1, 'the workers were read once when the console opened');
    await page.waitForTimeout(400); // the stream is open
    const here = { t: new Date().toISOString(), lon: lon0 + 0.0008, lat: lat0 + 0.0004 };
    await postTrack([here]);
    track.push(here);
    todays.push(here);
    await eventually(async () => {
      const w = await gm((u) => window.gridmap.workers.workers[u], workerUser);
      assert.ok(w && Math.abs(w.lon - here.lon) < 1e-6 && Math.abs(w.lat - here.lat) < 1e-6, `moved to the new position: ${JSON.stringify(w)}`);
    });
    await idle();
    await eventually(async () => assert.ok(await iconAt(here.lon, here.lat), 'the marker is drawn at the new position'));
    assert.equal(workersRead.length, readBefore, `/v1/workers not read again: ${workersRead.join(' ')}`);
    // The accuracy circle shows close up.
    const circles = await gm(() => window.gridmap.map.queryRenderedFeatures({ layers: ['worker-accuracy'] }).length);
    assert.ok(circles >= 1, 'the accuracy circle is drawn at zoom 15.5');
  });

  await t.step('a position the stream brings before the list has answered is shown, and the older list does not overwrite it', async () => {
    // The console opens again with /v1/workers held back: the server's
    // answer (the worker where it was) waits until a newer position has
    // come over the live stream.
    let release;
    let answered;
    const listed = new Promise((resolve) => { answered = resolve; });
    const onlyList = (u) => u.pathname === '/v1/workers';
    await page.route(onlyList, async (route) => {
      const res = await route.fetch();
      const wait = new Promise((r) => { release = r; });
      answered({ body: await res.json() });
      await wait;
      await route.fulfill({ response: res });
    });
    const stream = page.waitForRequest((req) => new URL(req.url()).pathname === '/v1/events');
    await page.reload();
    const { body } = await listed;
    await stream;
    const old = (body.workers ?? []).find((w) => w.worker === workerUser);
    assert.ok(old, `the list has the worker: ${JSON.stringify(body)}`);
    // The stream may not be following yet when the first position is
    // posted: post a newer one until one arrives.
    let newest = null;
    for (let i = 0; i < 5 && !newest; i++) {
      await page.waitForTimeout(400);
      const p = { t: new Date().toISOString(), lon: lon0 + 0.0025 + i * 0.0001, lat: lat0 + 0.0012 };
      await postTrack([p]);
      track.push(p);
      todays.push(p);
      try {
        await eventually(async () => assert.ok(at(await held(), p)), 3000);
        newest = p;
      } catch { /* not followed yet */ }
    }
    assert.ok(newest, `the stream's position is held before the list answers: ${JSON.stringify(await held())}`);
    assert.equal(await gm(() => window.gridmap.workers.allowed), null, 'the list has not answered yet');
    assert.ok(Date.parse(old.t) < Date.parse(newest.t), `the list is older: ${old.t} < ${newest.t}`);
    release();
    await eventually(async () => assert.equal(await gm(() => window.gridmap.workers.allowed), true, 'the list answered'));
    assert.ok(at(await held(), newest), `the newer position kept over the list's: ${JSON.stringify(await held())}`);
    assert.equal((await held()).name, workerName, 'the name the list brought');
    await page.unroute(onlyList);
    await eventually(async () => assert.ok(await gm(() => window.gridmap?.firstIdleMs !== undefined), 'the map is drawn'));
    await gm(([lo, la]) => window.gridmap.map.jumpTo({ center: [lo, la], zoom: 15.5 }), [newest.lon, newest.lat]);
    await idle();
    await eventually(async () => assert.ok(await iconAt(newest.lon, newest.lat), 'the marker is drawn at the stream\'s position'));
    assert.equal(await iconAt(old.lon, old.lat), false, 'and not where the list had it');
  });

  await t.step('clicking the worker opens the playback of today\'s track, gaps apart', async () => {
    const where = track[track.length - 1];
    const p = await gm(([lo, la]) => window.gridmap.map.project([lo, la]), [where.lon, where.lat]);
    const box = await page.locator('#map canvas').boundingBox();
    await page.mouse.click(box.x + p.x, box.y + p.y);
    await page.locator('#playback').waitFor();
    assert.match(await page.locator('#playback h2').textContent(), new RegExp(workerName));
    assert.equal(await page.locator('#playback-day').inputValue(), today);
    await eventually(async () => assert.equal(await gm(() => window.gridmap.workers.playback?.points.length), todays.length, 'the day\'s points'));
    await idle();
    // Two stretches with the gap between them, as the track source holds them.
    await eventually(async () => {
      const kinds = await gm(async () => (await window.gridmap.map.getSource('track').getData()).features.map((f) => f.properties.kind));
      assert.equal(kinds.filter((k) => k === 'stretch').length, 2, `stretches drawn apart: ${kinds}`);
      assert.equal(kinds.filter((k) => k === 'gap').length, 1, `the gap drawn: ${kinds}`);
    });
    // And drawn on the map.
    await eventually(async () => assert.ok(await gm(() => window.gridmap.map.queryRenderedFeatures({ layers: ['track-lines', 'track-gaps'] }).length) > 0, 'the track is drawn'));
    assert.match(await page.locator('#playback-message').textContent(), /\d/);
    await t.shot('playback opened');
  });

  await t.step('the slider and play move the marker along the track by time', async () => {
    // Within 5e-5 degrees (some 5 m): the source gives its features back
    // quantised to its tiles; the points lie 4e-4 apart.
    const near = (m, p) => Math.abs(m[0] - p.lon) < 5e-5 && Math.abs(m[1] - p.lat) < 5e-5;
    const marker = () => gm(() => window.gridmap.map.querySourceFeatures('track-marker')[0]?.geometry.coordinates);
    const first = todays[0];
    await eventually(async () => {
      const m = await marker();
      assert.ok(m && near(m, first), `the marker starts at the first point: ${m}`);
    });
    const time0 = await page.locator('#playback-time').textContent();
    // To the fifth point's time, as a drag of the slider leaves it.
    await page.locator('#playback-slider').evaluate((s, at) => { s.value = String(at); s.dispatchEvent(new Event('input', { bubbles: true })); }, Date.parse(todays[4].t));
    await eventually(async () => {
      const m = await marker();
      assert.ok(m && near(m, todays[4]), `the marker at the fifth point: ${m} (${todays[4].lon})`);
    });
    assert.notEqual(await page.locator('#playback-time').textContent(), time0, 'the time shown moves with the slider');
    await page.locator('#playback-slider').press('End');
    const last = todays[todays.length - 1];
    await eventually(async () => {
      const m = await marker();
      assert.ok(m && near(m, last), `the marker at the last point: ${m}`);
    });
    // Play from the start (it starts over at the end) moves the marker on.
    await page.locator('#playback-slider').press('Home');
    const before = await gm(() => window.gridmap.workers.playback.at);
    await page.locator('#playback-play').click();
    assert.equal(await page.locator('#playback-play').textContent(), zh['workers.pause']);
    await eventually(async () => assert.ok(await gm(() => window.gridmap.workers.playback.at) > before + 60_000, 'playing moves on'));
    await page.locator('#playback-play').click();
    assert.equal(await page.locator('#playback-play').textContent(), zh['workers.play']);
    await t.shot('playback moved');
  });

  // marker is where the playback marker is, as the map holds it.
  const marker = () => gm(() => window.gridmap.map.querySourceFeatures('track-marker')[0]?.geometry.coordinates);
  const kinds = () => gm(async () => (await window.gridmap.map.getSource('track').getData()).features.map((f) => f.properties.kind));
  // dotAt tells whether a one-point stretch is drawn at lon, lat.
  const dotAt = (lon, lat) => gm(([lo, la]) => {
    const { map } = window.gridmap;
    const p = map.project([lo, la]);
    return map.queryRenderedFeatures([[p.x - 4, p.y - 4], [p.x + 4, p.y + 4]], { layers: ['track-points'] }).length > 0;
  }, [lon, lat]);

  await t.step('a day of 50,000 points plays back, and the lone point after its last gap is drawn as a dot', async () => {
    // Yesterday from 01:00, a point a second, walking in loops; then one
    // point alone, ten minutes after the last.
    const yesterday = dayOf(now - 864e5);
    const from = Date.parse(`${yesterday}T01:00:00+08:00`);
    const n = 50_000;
    const long = [];
    for (let i = 0; i < n; i++) long.push({ t: new Date(from + i * 1000).toISOString(), lon: lon0 + 0.003 * Math.cos(i / 500), lat: lat0 + 0.002 * Math.sin(i / 700) });
    const lone = { t: new Date(from + (n - 1) * 1000 + 10 * 60_000).toISOString(), lon: lon0 - 0.006, lat: lat0 + 0.004 };
    for (let i = 0; i < n; i += 10_000) await postTrack(long.slice(i, i + 10_000));
    await postTrack([lone]);
    await page.locator('#playback-day').fill(yesterday);
    await eventually(async () => assert.equal(await gm(() => window.gridmap.workers.playback?.points.length), n + 1, 'the day\'s points'), 60_000);
    await eventually(async () => assert.equal(await gm(() => window.gridmap.workers.playback?.loading), false));
    await eventually(async () => {
      const k = await kinds();
      assert.deepEqual([k.filter((x) => x === 'stretch').length, k.filter((x) => x === 'point').length, k.filter((x) => x === 'gap').length], [1, 1, 1], `a stretch, the lone point and the gap: ${k}`);
    });
    await idle();
    await eventually(async () => assert.ok(await dotAt(lone.lon, lone.lat), 'the lone point is drawn'));
    assert.equal(await page.locator('#playback-play').isEnabled(), true);
    const before = await gm(() => window.gridmap.workers.playback.at);
    await page.locator('#playback-play').click();
    await eventually(async () => assert.ok(await gm(() => window.gridmap.workers.playback.at) > before + 60_000, 'playing moves on'));
    await page.locator('#playback-play').click();
    await page.locator('#playback-slider').press('End');
    await eventually(async () => {
      const m = await marker();
      assert.ok(m && Math.abs(m[0] - lone.lon) < 5e-5 && Math.abs(m[1] - lone.lat) < 5e-5, `the marker at the lone point: ${m}`);
    });
    await t.shot('long day played back');
  });

  await t.step('a day of one point draws it as a dot, with the marker on it', async () => {
    const day = dayOf(now - 2 * 864e5);
    const one = { t: new Date(Date.parse(`${day}T09:30:00+08:00`)).toISOString(), lon: lon0 + 0.002, lat: lat0 - 0.001 };
    await postTrack([one]);
    await page.locator('#playback-day').fill(day);
    await eventually(async () => assert.equal(await gm(() => window.gridmap.workers.playback?.points.length), 1, 'the day\'s one point'));
    await eventually(async () => assert.deepEqual(await kinds(), ['point'], 'one point, no line'));
    await idle();
    await eventually(async () => assert.ok(await dotAt(one.lon, one.lat), 'the point is drawn'));
    await eventually(async () => {
      const m = await marker();
      assert.ok(m && Math.abs(m[0] - one.lon) < 5e-5 && Math.abs(m[1] - one.lat) < 5e-5, `the marker on it: ${m}`);
    });
    assert.equal(await page.locator('#playback-play').isDisabled(), true, 'nothing to play');
    assert.match(await page.locator('#playback-message').textContent(), /1/);
    await t.shot('one-point day');
    await page.locator('#playback-close').click();
    assert.equal(await page.locator('#playback').isHidden(), true);
    await eventually(async () => assert.equal(await marker(), undefined, 'the marker goes with the playback'));
  });

  await t.step('the coverage toggle colours the grids by the day\'s coverage and outlines idle ones', async () => {
    await gm(([lo, la]) => window.gridmap.map.jumpTo({ center: [lo, la], zoom: 14 }), [lon0, lat0]);
    await page.locator('#coverage').check();
    await page.locator('#patrol-legend').waitFor();
    await eventually(async () => assert.ok(await gm(() => window.gridmap.patrol.coverage?.rows?.length > 0), 'coverage read'));
    const cov = await gm(() => window.gridmap.patrol.coverage);
    // The level is the server's choice, and the page colours that level.
    for (const u of coverageRead) assert.equal(new URL(u).searchParams.has('level'), false, `no level asked for: ${u}`);
    if (coverageLevel) assert.equal(cov.level, coverageLevel, 'the layer\'s finest grid-tier level');
    assert.ok(cov.rows.length > 0 && cov.level, `coverage of a level: ${cov.level}`);
    assert.ok(JSON.stringify(await gm(() => window.gridmap.map.getFilter('grid-coverage'))).includes(`"${cov.level}"`), 'the answer\'s level is coloured');
    if (workerGrid) {
      // Its grid, or the grids below it, counted.
      const mine = cov.rows.filter((r) => r.code === workerGrid || r.code.startsWith(workerGrid));
      assert.ok(mine.length > 0, `the rows of the worker's grid ${workerGrid}: ${JSON.stringify(cov.rows.slice(0, 3))}`);
      if (cov.level === 'grid') assert.ok(mine[0].workers >= 1, `the worker's grid ${workerGrid} counts the worker: ${JSON.stringify(mine)}`);
    }
    // Close enough for the level's grids to be drawn.
    const zoom = await gm((lv) => (window.gridmap.state.layer?.zooms?.[lv]?.[0] ?? 14) + 0.5, cov.level);
    await gm(([lo, la, z]) => window.gridmap.map.jumpTo({ center: [lo, la], zoom: Math.max(14, z) }), [lon0, lat0, zoom]);
    await idle();
    const byCode = Object.fromEntries(cov.rows.map((r) => [r.code, r.coverage]));
    let drawn = [];
    await eventually(async () => {
      drawn = await gm(() => window.gridmap.map.queryRenderedFeatures({ layers: ['grid-coverage'] }).map((f) => [f.properties.code, f.properties.level, f.state?.coverage]));
      assert.ok(drawn.length > 0, `grids of ${cov.level} coloured at zoom ${zoom}`);
      for (const [code, level, c] of drawn) {
        assert.equal(level, cov.level, `only grids of ${cov.level} coloured: ${code}`);
        assert.equal(c, byCode[code], `the grid ${code} coloured by its coverage`);
      }
    });
    const [code] = drawn[0];
    const state = await gm((c) => window.gridmap.map.getFeatureState({ source: 'grids', sourceLayer: 'grids', id: c }), code);
    assert.equal(state.coverage, byCode[code], `feature state of ${code}`);
    const idleRows = await gm(() => window.gridmap.patrol.idle?.rows ?? []);
    const idleFilter = JSON.stringify(await gm(() => window.gridmap.map.getFilter('grid-idle')));
    for (const r of idleRows) assert.ok(idleFilter.includes(r.code), `idle ${r.code} outlined`);
    assert.ok((await page.locator('#patrol-legend').textContent()).includes(zh['patrol.idleLegend'].replace('{n}', '3')), 'the legend names the idle outline');
  });

  await t.step('the party toggle outlines the grids without a Party organisation', async () => {
    await page.locator('#party').check();
    await eventually(async () => assert.ok(await gm(() => !!window.gridmap.patrol.party), 'party read'));
    const missing = await gm(() => window.gridmap.patrol.party.rows.filter((r) => !r.party).map((r) => r.code));
    const filter = JSON.stringify(await gm(() => window.gridmap.map.getFilter('grid-party')));
    for (const code of missing) assert.ok(filter.includes(code), `${code} outlined`);
    await idle();
  });

  await t.step('the patrol tab lists the worker and the coverage table, which downloads as CSV', async () => {
    await page.locator('#tab-patrol').click();
    assert.equal(await page.locator('#tab-patrol').getAttribute('aria-selected'), 'true');
    await page.locator(`#worker-list li[data-worker="${workerUser}"]`).waitFor();
    await eventually(async () => assert.ok(await page.locator('#patrol-table tbody tr').count() > 0, 'coverage rows'));
    assert.equal(await page.locator('#patrol-csv').isEnabled(), true);
    const [file] = await Promise.all([page.waitForEvent('download'), page.locator('#patrol-csv').click()]);
    const level = await gm(() => window.gridmap.patrol.coverage.level);
    assert.equal(file.suggestedFilename(), `coverage-${layer}-${level}-${today}.csv`);
    const lines = readFileSync(await file.path(), 'utf8').trim().split(/\r?\n/);
    assert.ok(lines.length >= 2 && /code/.test(lines[0]), `a CSV with a header: ${lines[0]}`);
    await t.shot('patrol tab');
    await page.locator('#coverage').uncheck();
    await page.locator('#party').uncheck();
    assert.equal(await page.locator('#patrol-legend').isHidden(), true);
    await page.locator('#tab-reports').click();
  });

  await t.step('a report\'s detail lists the nearby worker, who is chosen and dispatched to', async () => {
    const at = [lon0 + 0.0006, lat0 + 0.0003];
    const r = await call('POST', '/v1/reports', { body: { external_id: `workers-${Date.now()}`, category: '0101', description: 'workers browser test', location: { type: 'Point', coordinates: at } } });
    assert.ok(r.status >= 200 && r.status < 300, `filing: ${r.status} ${r.text}`);
    const id = r.json.id;
    await page.locator(`li[data-report-id="${id}"]`).waitFor();
    await page.locator(`li[data-report-id="${id}"]`).click();
    await eventually(async () => assert.equal(await page.locator('#detail h2').textContent().then((s) => s.startsWith(`#${id}`)), true));
    // Registered first, then it can be dispatched.
    await page.locator('#detail button[data-action="register"]').click();
    await page.locator('#detail button[data-action="dispatch"]').waitFor();
    const item = page.locator(`#detail-nearby li[data-worker="${workerUser}"]`);
    await item.waitFor();
    assert.match(await item.textContent(), new RegExp(workerName));
    if (workerGrid) assert.match(await item.textContent(), new RegExp(workerGrid), 'the worker\'s grid');
    assert.match(await item.textContent(), new RegExp(zh['console.metres'].replace('{n}', '\\d+')));
    // The detail is drawn again on the choice: look the radio up afresh.
    await page.locator(`#detail-nearby input[value="${workerUser}"]`).click();
    await eventually(async () => assert.equal(await page.locator(`#detail-nearby input[value="${workerUser}"]`).isChecked(), true));
    assert.match(await page.locator('#detail-pick').textContent(), new RegExp(workerName));
    await t.shot('nearby worker chosen');
    await page.locator('#detail button[data-action="dispatch"]').click();
    await eventually(async () => assert.match(await page.locator('#detail').textContent(), new RegExp(zh['console.status.dispatched'])));
    await eventually(async () => assert.equal(await page.locator('#detail-assignee').textContent(), workerName));
  });

  await t.step('the views speak English', async () => {
    await page.locator('[data-lang="en"]').click();
    await eventually(async () => assert.equal((await page.locator('#workers-toggle').textContent()).trim(), en['workers.toggle']));
    assert.equal(await page.locator('#tab-patrol').textContent(), en['patrol.tab']);
    assert.match(await page.locator('#detail').textContent(), new RegExp(en['workers.nearby']));
    await t.shot('english');
    await page.locator('[data-lang="zh-CN"]').click();
    await eventually(async () => assert.equal(await page.locator('#tab-patrol').textContent(), zh['patrol.tab']));
  });
});
