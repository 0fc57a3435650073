// The console's grid-worker views against a real server holding the demo
// district: a grid worker's phone posts its track, the worker's marker
// appears on the dispatcher's map and moves on the live `worker` event
// without /v1/workers being read again; clicking it opens the playback,
// whose slider and play button move the marker along the day's track
// (drawn in stretches, the gap apart); the patrol coverage toggle colours
// the grids by the day's coverage (feature state, by code), outlines the
// idle ones and the ones without a Party organisation, and its table
// downloads as CSV; a report's detail lists the worker nearby, who is
// chosen and dispatched to; the page speaks English.
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
  // The worker's morning: ten minutes walking east, a gap of 13 minutes
  // (no signal), five minutes walking north; then a live position.
  const track = [];
  for (let i = 0; i < 10; i++) track.push({ t: new Date(now - (30 - i) * 60_000).toISOString(), lon: lon0 - 0.004 + i * 0.0004, lat: lat0 - 0.002 });
  for (let i = 0; i < 5; i++) track.push({ t: new Date(now - (8 - i) * 60_000).toISOString(), lon: lon0, lat: lat0 - 0.002 + i * 0.0004 });
  // Playback needs the day's points to fall on today.
  const todays = track.filter((p) => dayOf(Date.parse(p.t)) === today);

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
  page.on('request', (req) => { if (new URL(req.url()).pathname === '/v1/workers') workersRead.push(req.url()); });
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

  await t.step('clicking the worker opens the playback of today\'s track, gaps apart', async () => {
    const p = await gm(([lo, la]) => window.gridmap.map.project([lo, la]), [lon0 + 0.0008, lat0 + 0.0004]);
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
    const marker = () => gm(() => {
      const f = window.gridmap.map.querySourceFeatures('track').find((x) => x.properties.kind === 'marker');
      return f?.geometry.coordinates;
    });
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
    await page.locator('#playback-close').click();
    assert.equal(await page.locator('#playback').isHidden(), true);
  });

  await t.step('the coverage toggle colours the grids by the day\'s coverage and outlines idle ones', async () => {
    await gm(([lo, la]) => window.gridmap.map.jumpTo({ center: [lo, la], zoom: 14 }), [lon0, lat0]);
    await page.locator('#coverage').check();
    await page.locator('#patrol-legend').waitFor();
    await eventually(async () => assert.ok(await gm(() => window.gridmap.patrol.coverage?.rows?.length > 0), 'coverage read'));
    const cov = await gm(() => window.gridmap.patrol.coverage);
    const row = cov.rows.find((r) => r.coverage > 0) ?? cov.rows[0];
    if (workerGrid) {
      const mine = cov.rows.find((r) => r.code === workerGrid);
      assert.ok(mine && mine.workers >= 1, `the worker's grid ${workerGrid} counts the worker: ${JSON.stringify(mine)}`);
    }
    const state = await gm((code) => window.gridmap.map.getFeatureState({ source: 'grids', sourceLayer: 'grids', id: code }), row.code);
    assert.equal(state.coverage, row.coverage, `feature state of ${row.code}`);
    await idle();
    await eventually(async () => {
      const drawn = await gm(() => window.gridmap.map.queryRenderedFeatures({ layers: ['grid-coverage'] }).map((f) => [f.properties.code, f.state?.coverage]));
      assert.ok(drawn.some(([code, c]) => code === row.code && c === row.coverage), `the grid ${row.code} coloured: ${JSON.stringify(drawn.slice(0, 6))}`);
    });
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
    assert.equal(file.suggestedFilename(), `coverage-${layer}-grid-${today}.csv`);
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
