// The console's indicators panel against a real server holding the demo
// district and its demo reports: the dispatcher opens the panel, the table
// holds the figures GET /v1/stats gives, sorts by a column and back,
// switches group, draws a chart, downloads the CSV, draws the hotspot
// layer on the map, follows a live report, says the server's message for a
// window it refuses, asks for a custom window's first day, and speaks
// English. The flags, the workload and a grid's trend are checked too: the
// server offers them, and a 404 from any of them fails the test. Every part
// reads the one window the selector names, with explicit from and to, and
// a CSV is always of what its table shows, named with its real from and to.
//
// Environment (besides lib.mjs's GRIDMAP_URL, GRIDMAP_SHOTS, CHROMIUM):
//   GRIDMAP_USER, GRIDMAP_PASSWORD  a dispatcher account
//   GRIDMAP_REPORTER_TOKEN          a token with the reporter role (files a live report)
//   GRIDMAP_LAYER                   the comprehensive layer (default demo)
//   GRIDMAP_REPORT_AT               lon,lat inside the district (default 120.08,30.24)
//   GRIDMAP_WORKER                  a grid worker's username who filed GRIDMAP_WORKER_FILED reports
//                                   this month (the assessment; default: not checked)
//
// Run alone: cd browser && GRIDMAP_URL=... GRIDMAP_USER=... node indicators.test.mjs
// (server/browser_indicators_test.go sets all of this).
import { readFileSync } from 'node:fs';
import { assert, browserTest, dictionary, env, eventually } from './lib.mjs';

const zh = dictionary('zh-CN');
const en = dictionary('en');
const user = env('GRIDMAP_USER');
const password = env('GRIDMAP_PASSWORD');
const reporterToken = env('GRIDMAP_REPORTER_TOKEN');
const layer = env('GRIDMAP_LAYER', 'demo');
const reportAt = env('GRIDMAP_REPORT_AT', '120.08,30.24').split(',').map(Number);
const worker = env('GRIDMAP_WORKER', '');
const workerFiled = Number(env('GRIDMAP_WORKER_FILED', '0'));

// The start of a dictionary text, before its first {placeholder}.
const lead = (text) => text.split('{')[0];
const numberOf = (text) => Number(String(text).replace(/[^\d.-]/g, ''));

// stampOf is an RFC 3339 instant as the CSV file names carry it: its day
// in timeZone, with the hour and minute (2026-03-07T0815) unless midnight.
function stampOf(isoTime, timeZone) {
  const p = Object.fromEntries(new Intl.DateTimeFormat('en-US', {
    timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
  }).formatToParts(new Date(isoTime)).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day}${p.hour === '00' && p.minute === '00' ? '' : `T${p.hour}${p.minute}`}`;
}

// csvFields splits one CSV line into its fields (quoted ones unquoted).
function csvFields(line) {
  const out = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') field += line[++i];
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      out.push(field);
      field = '';
    } else field += c;
  }
  out.push(field);
  return out;
}

await browserTest('indicators', async (t) => {
  const { page } = t;
  let timeZone = '';

  // get reads the API from the page, with its session.
  const get = (path, accept = 'application/json') => page.evaluate(async ([p, a]) => {
    const res = await fetch(p, { headers: { Accept: a } });
    return { status: res.status, text: await res.text() };
  }, [path, accept]);
  const getJSON = async (path) => {
    const res = await get(path);
    assert.equal(res.status, 200, `${path}: ${res.status} ${res.text}`);
    return JSON.parse(res.text);
  };
  const ind = () => page.evaluate(() => JSON.parse(JSON.stringify(window.gridmap.indicators)));
  // loaded waits until the panel has read everything (figures, flags and
  // workload) for the group and window asked.
  const loaded = (group, window = '30d') => eventually(async () => {
    const s = await ind();
    const q = s.queries;
    assert.ok(!s.loading && q.stats && q.flags && q.workload && [q.stats, q.flags, q.workload].every((x) => x.group === group && x.window === window),
      `the panel has read group ${group} over ${window}: ${JSON.stringify(s.queries)}`);
    return s;
  });
  // windowOf is a query's from and to, both required.
  const windowOf = (query) => {
    const q = new URLSearchParams(query);
    assert.ok(q.get('from') && q.get('to'), `explicit from and to in ${query}`);
    return { from: q.get('from'), to: q.get('to') };
  };
  // fileName is the CSV name of a table's query: layer, group, window and its real from and to.
  const fileName = (table, q) => {
    const w = windowOf(q.query);
    return `${table}-${layer}-${q.group}-${q.window}-${stampOf(w.from, timeZone)}_${stampOf(w.to, timeZone)}.csv`;
  };
  const column = (table, col) => page.locator(`#${table} tbody td[data-col="${col}"]`).allTextContents();
  async function download(button) {
    const [file] = await Promise.all([page.waitForEvent('download'), page.locator(button).click()]);
    return { name: file.suggestedFilename(), lines: readFileSync(await file.path(), 'utf8').trim().split(/\r?\n/) };
  }

  await t.step('a dispatcher signs in and opens the indicators beside the list', async () => {
    await page.goto(t.url(`/login?next=${encodeURIComponent(`/?layer=${layer}`)}`));
    await page.getByLabel(zh['login.username']).fill(user);
    await page.getByLabel(zh['login.password']).fill(password);
    await page.locator('#login-submit').click();
    await page.waitForURL((u) => u.pathname === '/');
    await eventually(async () => assert.ok(await page.evaluate(() => window.gridmap?.firstIdleMs !== undefined), 'the map is drawn'));
    assert.equal(await page.locator('#tab-indicators').textContent(), zh['indicators.tab']);
    timeZone = await page.evaluate(() => window.gridmap.state.timeZone);
    // The endpoints beside /v1/stats are offered: a 404 from any fails.
    const probe = (path) => fetch(t.url(path), { headers: { Authorization: `Bearer ${reporterToken}` } });
    const stats = await (await probe(`/v1/stats?layer=${layer}`)).json();
    const code = stats.rows?.[0]?.key;
    assert.ok(code, 'a grid to draw the trend of');
    for (const path of [`/v1/stats/flags?layer=${layer}`, `/v1/stats/workload?layer=${layer}`, `/v1/stats/trend?layer=${layer}&code=${encodeURIComponent(code)}`]) {
      const res = await probe(path);
      assert.equal(res.status, 200, `GET ${path}: ${res.status} ${await res.text()}`);
    }
    await page.locator('#tab-indicators').click();
    assert.equal(await page.locator('#tab-indicators').getAttribute('aria-selected'), 'true');
    assert.equal(await page.locator('#indicators').isVisible(), true);
    assert.equal(await page.locator('#report-list').isVisible(), false, 'the list gives way to the indicators');
    await loaded('grid', 'month');
    await page.locator('#ind-window').selectOption('30d');
    const s = await loaded('grid');
    // One window for every part: the figures, the flags and the workload.
    const w = windowOf(s.queries.stats.query);
    assert.deepEqual(windowOf(s.queries.flags.query), w, 'the flags read the window of the figures');
    assert.deepEqual(windowOf(s.queries.workload.query), w, 'the workload reads the window of the figures');
    assert.equal(Date.parse(w.to) - Date.parse(w.from), 30 * 864e5, `30 days: ${w.from} to ${w.to}`);
    assert.ok(Date.parse(w.to) > Date.now() - 60_000 && Date.parse(w.to) <= Date.now() + 60_000, `30 days to now: ${w.to}`);
  });

  let stats;
  await t.step('the table shows the figures the API gives, ranked, with the total', async () => {
    const s = await loaded('grid');
    stats = await getJSON(`/v1/stats?${s.queries.stats.query}`);
    assert.ok(stats.rows.length > 0 && stats.total.received > 0, `figures to show: ${stats.rows.length} rows, ${stats.total.received} received`);
    await eventually(async () => assert.equal(await page.locator('#ind-stats tbody tr').count(), stats.rows.length));
    const busiest = [...stats.rows].sort((a, b) => b.received - a.received)[0];
    const row = page.locator(`#ind-stats tbody tr[data-key="${busiest.key}"]`);
    assert.equal(numberOf(await row.locator('td[data-col="received"]').textContent()), busiest.received);
    assert.equal(numberOf(await row.locator('td[data-col="closed"]').textContent()), busiest.closed);
    const rate = await row.locator('td[data-col="on_time_rate"]').textContent();
    if (busiest.on_time_rate == null) assert.equal(rate, '—');
    else assert.equal(numberOf(rate), Number((busiest.on_time_rate * 100).toFixed(1)), `on-time rate ${rate}`);
    assert.equal(numberOf(await page.locator('#ind-stats tfoot td[data-col="received"]').textContent()), stats.total.received);
    assert.equal(await page.locator('#ind-stats tfoot td[data-col="name"]').textContent(), zh['indicators.total']);
    const ranks = (await column('ind-stats', 'rank')).map(Number);
    assert.deepEqual(ranks, [...ranks].sort((a, b) => a - b), 'ranked by default');
    assert.equal(ranks[0], 1);
    assert.doesNotMatch(await page.locator('#indicators').textContent(), /null|undefined|NaN|\[object/);
  });

  await t.step('a column header sorts the rows, a second click reverses them', async () => {
    const header = page.locator('#ind-stats th button[data-sort="received"]');
    await header.click();
    let values = (await column('ind-stats', 'received')).map(numberOf);
    assert.deepEqual(values, [...values].sort((a, b) => b - a), `most received first: ${values}`);
    assert.equal(await page.locator('#ind-stats th[aria-sort="descending"] button').getAttribute('data-sort'), 'received');
    await page.locator('#ind-stats th button[data-sort="received"]').click();
    values = (await column('ind-stats', 'received')).map(numberOf);
    assert.deepEqual(values, [...values].sort((a, b) => a - b), `fewest received first: ${values}`);
    // Rates sort with the missing ones (—) last.
    await page.locator('#ind-stats th button[data-sort="on_time_rate"]').click();
    const rates = await column('ind-stats', 'on_time_rate');
    const firstNone = rates.indexOf('—');
    if (firstNone >= 0) assert.ok(rates.slice(firstNone).every((r) => r === '—'), `no rate after a missing one: ${rates}`);
    const known = rates.filter((r) => r !== '—').map(numberOf);
    assert.deepEqual(known, [...known].sort((a, b) => b - a), `highest on-time rate first: ${known}`);
  });

  await t.step('a chart of the busiest groups is drawn with uPlot', async () => {
    await eventually(async () => {
      const drawn = await page.evaluate(() => {
        const canvas = document.querySelector('#ind-chart .uplot canvas');
        if (!canvas || canvas.width === 0) return 0;
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let n = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
        return n;
      });
      assert.ok(drawn > 100, `the chart's canvas has ${drawn} painted pixels`);
    });
    assert.match(await page.locator('#ind-chart .u-title').textContent(), new RegExp(lead(zh['indicators.chart.groups'])));
  });

  let streets;
  await t.step('grouping by street shows the streets', async () => {
    await page.locator('#ind-group').selectOption('street');
    const s = await loaded('street');
    streets = await getJSON(`/v1/stats?${s.queries.stats.query}`);
    assert.equal(streets.group, 'street');
    assert.ok(streets.rows.length > 0 && streets.rows.length < stats.rows.length, `${streets.rows.length} streets, ${stats.rows.length} grids`);
    await eventually(async () => assert.equal(await page.locator('#ind-stats tbody tr').count(), streets.rows.length));
    assert.deepEqual((await column('ind-stats', 'name')).sort(), streets.rows.map((r) => r.name || r.key).sort());
    assert.equal(numberOf(await page.locator('#ind-stats tfoot td[data-col="received"]').textContent()), streets.total.received);
  });

  await t.step('the table downloads as CSV with the layer, group and window in its name', async () => {
    const { name, lines } = await download('#ind-stats-csv');
    console.log(`  downloaded ${name}: ${lines.length} lines`);
    assert.match(name, new RegExp(`^stats-${layer}-street-30d-\\d{4}-\\d{2}-\\d{2}T\\d{4}_\\d{4}-\\d{2}-\\d{2}T\\d{4}\\.csv$`));
    assert.equal(name, fileName('stats', (await ind()).queries.stats), 'the name carries the real from and to');
    assert.match(lines[0], /^rank,key,name,received,registered,closed,/);
    assert.equal(lines.length - 1, streets.rows.length, 'a row per street');
  });

  await t.step('the CSV clicked right after the window changes is of the new window', async () => {
    await page.locator('#ind-window').selectOption('month');
    // At once: the button waits for the new figures rather than giving the last window's.
    const { name, lines } = await download('#ind-stats-csv');
    console.log(`  downloaded ${name}: ${lines.length} lines`);
    const s = await loaded('street', 'month');
    const q = s.queries.stats;
    const w = windowOf(q.query);
    assert.equal(stampOf(w.from, timeZone), `${stampOf(new Date().toISOString(), timeZone).slice(0, 8)}01`, `this month from its first day: ${w.from}`);
    assert.deepEqual(windowOf(s.queries.flags.query), w, 'the flags read the month too');
    assert.deepEqual(windowOf(s.queries.workload.query), w, 'the workload reads the month too');
    assert.match(name, new RegExp(`^stats-${layer}-street-month-\\d{4}-\\d{2}-01_`));
    assert.equal(name, fileName('stats', q), 'the name carries the month\'s from and to');
    const month = await getJSON(`/v1/stats?${q.query}`);
    assert.equal(lines.length - 1, month.rows.length, 'a row per street of the month');
    await eventually(async () => assert.equal(await page.locator('#ind-stats tbody tr').count(), lines.length - 1, 'the file holds the rows the table shows'));
    const head = csvFields(lines[0]);
    const received = head.indexOf('received');
    const sum = lines.slice(1).reduce((n, l) => n + Number(csvFields(l)[received]), 0);
    assert.equal(sum, month.total.received, 'the file counts the month\'s reports');
    assert.equal(numberOf(await page.locator('#ind-stats tfoot td[data-col="received"]').textContent()), sum, 'as the table does');
    await page.locator('#ind-window').selectOption('30d');
    await loaded('street');
  });

  await t.step('the hotspot layer draws report density for the window', async () => {
    await page.locator('#hotspots').check();
    await eventually(async () => {
      const n = await page.evaluate(() => {
        const m = window.gridmap.map;
        return m.getLayer('hotspot-fill') ? m.queryRenderedFeatures({ layers: ['hotspot-fill'] }).length : -1;
      });
      assert.ok(n > 0, `hotspot bins drawn: ${n}`);
    });
    const tiles = await page.evaluate(() => window.gridmap.map.getSource('hotspots').tiles[0]);
    const tileQuery = new URL(tiles.replace(/\{[xyz]\}/g, '0')).searchParams;
    const w = windowOf((await ind()).queries.stats.query);
    assert.equal(tileQuery.get('since'), w.from, `the tiles follow the window: ${tiles}`);
    assert.equal(tileQuery.get('until'), w.to, `the tiles follow the window: ${tiles}`);
    await t.shot('hotspots');
  });

  await t.step("a grid's trend, week by week", async () => {
    await page.locator('#ind-group').selectOption('grid');
    await loaded('grid');
    const first = page.locator('#ind-stats tbody tr').first();
    const code = await first.getAttribute('data-key');
    await first.click();
    assert.match(await page.evaluate(() => JSON.stringify(window.gridmap.map.getFilter('grid-highlight'))), new RegExp(code), 'the grid is outlined');
    // The map flies to it: it is drawn outlined.
    await eventually(async () => {
      const shown = await page.evaluate(() => window.gridmap.map.queryRenderedFeatures({ layers: ['grid-highlight'] }).map((f) => f.properties.code));
      assert.ok(shown.includes(code), `${code} is drawn outlined: ${shown}`);
    });
    await eventually(async () => assert.match(await page.locator('#ind-trend h3').textContent(), new RegExp(lead(zh['indicators.trend']) || '.')));
    const s = await ind();
    const q = new URLSearchParams(s.queries.stats.query);
    q.delete('group');
    q.set('code', code);
    q.set('bucket', 'week');
    const trend = await getJSON(`/v1/stats/trend?${q}`);
    assert.ok(trend.points.length > 0, 'weeks to draw');
    assert.equal(Date.parse(trend.from), Date.parse(q.get('from')), 'the trend reads the window of the figures');
    assert.equal(Date.parse(trend.to), Date.parse(q.get('to')), 'the trend reads the window of the figures');
    await eventually(async () => assert.ok(await page.locator('#ind-trend .uplot canvas').count() > 0, 'the trend is drawn'));
    assert.equal(await page.locator('#ind-trend-message').textContent(), '');
    await page.locator('#ind-trend').scrollIntoViewIfNeeded();
  });

  await t.step('the flagged grids are listed with their reasons and filled on the map', async () => {
    const s = await loaded('grid');
    const flags = await getJSON(`/v1/stats/flags?${s.queries.flags.query}`);
    await eventually(async () => assert.equal(await page.locator('#ind-flags li').count(), flags.flags.length));
    const codes = [...new Set(flags.flags.map((f) => f.key))];
    const filter = await page.evaluate(() => JSON.stringify(window.gridmap.map.getFilter('grid-flagged')));
    for (const c of codes) assert.match(filter, new RegExp(c), `${c} is filled on the map`);
    for (const f of flags.flags.filter((x) => x.reason).slice(0, 3)) {
      assert.match(await page.locator(`#ind-flags li[data-key="${f.key}"]`).first().textContent(), new RegExp(f.reason.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    }
    // A flag clicked flies the map to its grid, drawn filled.
    if (codes.length) {
      await page.locator(`#ind-flags li[data-key="${codes[0]}"]`).first().click();
      await eventually(async () => {
        const shown = await page.evaluate(() => window.gridmap.map.queryRenderedFeatures({ layers: ['grid-flagged'] }).map((f) => f.properties.code));
        assert.ok(shown.includes(codes[0]), `${codes[0]} is drawn flagged: ${shown}`);
      });
    }
    await page.locator('#ind-flags').scrollIntoViewIfNeeded();
    const { name, lines } = await download('#ind-flags-csv');
    assert.equal(name, fileName('flags', s.queries.flags));
    assert.equal(lines.length - 1, flags.flags.length, 'a CSV row per flag');
  });

  await t.step('the workload per resident sorts and downloads', async () => {
    const s = await loaded('grid');
    const workload = await getJSON(`/v1/stats/workload?${s.queries.workload.query}`);
    await eventually(async () => assert.equal(await page.locator('#ind-workload tbody tr').count(), workload.rows.length));
    await page.locator('#ind-workload th button[data-sort="per_1000_residents"]').click();
    const values = (await column('ind-workload', 'per_1000_residents')).filter((v) => v !== '—').map(numberOf);
    assert.deepEqual(values, [...values].sort((a, b) => b - a), `busiest per 1,000 residents first: ${values}`);
    await page.locator('#ind-workload').scrollIntoViewIfNeeded();
    const { name, lines } = await download('#ind-workload-csv');
    assert.equal(name, fileName('workload', s.queries.workload));
    assert.equal(lines.length - 1, workload.rows.length, 'a CSV row per grid');
  });

  await t.step('the grid workers\' assessment tables each worker and downloads', async () => {
    const s = await loaded('grid');
    await eventually(async () => assert.ok((await ind()).queries.assessment, 'the assessment is read with the window'));
    const q = (await ind()).queries.assessment;
    assert.deepEqual(windowOf(q.query), windowOf(s.queries.stats.query), 'the assessment reads the window of the figures');
    const a = await getJSON(`/v1/assessment?${q.query}`);
    await eventually(async () => assert.equal(await page.locator('#ind-assessment tbody tr').count(), a.workers.length));
    if (worker) {
      const mine = a.workers.find((w) => w.worker === worker);
      assert.ok(mine && mine.filed === workerFiled, `the worker ${worker} filed ${workerFiled}: ${JSON.stringify(mine)}`);
      const row = page.locator(`#ind-assessment tbody tr[data-key="${worker}"]`);
      assert.equal(numberOf(await row.locator('td[data-col="filed"]').textContent()), mine.filed);
      assert.equal(await row.locator('td[data-col="grid_name"]').textContent(), mine.grid_name);
    }
    // Most filed first; a click on the column turns it round.
    const filedColumn = async () => (await column('ind-assessment', 'filed')).map(numberOf);
    const desc = await filedColumn();
    assert.deepEqual(desc, [...desc].sort((x, y) => y - x), `most filed first: ${desc}`);
    await page.locator('#ind-assessment th button[data-sort="filed"]').click();
    const asc = await filedColumn();
    assert.deepEqual(asc, [...desc].sort((x, y) => x - y), `fewest filed first after a click: ${asc}`);
    await page.locator('#ind-assessment').scrollIntoViewIfNeeded();
    const { name, lines } = await download('#ind-assessment-csv');
    assert.equal(name, fileName('assessment', q));
    assert.equal(lines.length - 1, a.workers.length, 'a CSV row per worker');
    assert.match(lines[0], /^worker,name,grid,grid_name,filed/);
  });

  await t.step('a report filed meanwhile is counted without a reload', async () => {
    const before = numberOf(await page.locator('#ind-stats tfoot td[data-col="received"]').textContent());
    const res = await fetch(t.url('/v1/reports'), {
      method: 'POST',
      headers: { Authorization: `Bearer ${reporterToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ external_id: `indicators-${Date.now()}`, category: '0101', location: { type: 'Point', coordinates: reportAt } }),
    });
    assert.ok(res.ok, `filing a report: ${res.status} ${await res.text()}`);
    const started = Date.now();
    await eventually(async () => assert.equal(numberOf(await page.locator('#ind-stats tfoot td[data-col="received"]').textContent()), before + 1));
    console.log(`  counted ${Date.now() - started} ms after it was filed`);
  });

  await t.step('a window the server refuses shows its message', async () => {
    t.allowConsoleError(/status of 400/);
    await page.locator('#ind-window').selectOption('custom');
    await page.locator('#ind-from').fill('2026-03-10');
    await page.locator('#ind-to').fill('2026-03-01');
    await eventually(async () => {
      const msg = page.locator('#ind-stats-message');
      assert.match(await msg.textContent(), /from .* is after to/);
      assert.match(await msg.getAttribute('class'), /error/);
    });
    await page.locator('#ind-window').selectOption('30d');
    await loaded('grid');
    await eventually(async () => assert.equal(await page.locator('#ind-stats-message').textContent(), ''));
  });

  await t.step('a custom window with only its last day asks for its first', async () => {
    const asked = [];
    const onRequest = (req) => {
      if (/^\/v1\/(stats|assessment)/.test(new URL(req.url()).pathname)) asked.push(req.url());
    };
    await page.locator('#ind-window').selectOption('custom');
    await page.locator('#ind-from').fill('');
    await page.locator('#ind-to').fill('2026-03-01');
    page.on('request', onRequest);
    try {
      await page.locator('#ind-to').fill('2026-03-02');
      await eventually(async () => {
        const msg = page.locator('#ind-stats-message');
        assert.equal(await msg.textContent(), zh['indicators.pickFrom']);
        assert.doesNotMatch(await msg.getAttribute('class'), /error/);
      });
      const s = await ind();
      assert.equal(s.needFrom, true);
      assert.deepEqual(s.queries, { stats: null, flags: null, workload: null, assessment: null });
      assert.equal(await page.locator('#ind-stats tbody tr').count(), 0, 'no figures of another window');
      for (const table of ['stats', 'flags', 'workload', 'assessment']) assert.equal(await page.locator(`#ind-${table}-csv`).isDisabled(), true, `no ${table} CSV`);
      await page.waitForTimeout(500);
      assert.deepEqual(asked, [], 'nothing is read without the first day');
    } finally {
      page.off('request', onRequest);
    }
    await page.locator('#ind-from').fill('2026-02-01');
    const s = await loaded('grid', 'custom');
    const w = windowOf(s.queries.stats.query);
    assert.equal(stampOf(w.from, timeZone), '2026-02-01');
    assert.equal(stampOf(w.to, timeZone), '2026-03-03', 'to the end of the last day');
    assert.equal(await page.locator('#ind-stats-message').textContent() === zh['indicators.pickFrom'], false);
    await page.locator('#ind-window').selectOption('30d');
    await loaded('grid');
  });

  await t.step("a grid the server does not find shows its message; a route it lacks is unavailable", async () => {
    t.allowConsoleError(/status of 404/);
    const first = page.locator('#ind-stats tbody tr').first();
    // The server's own 404: the trend of a grid that does not exist.
    const isTrend = (u) => u.pathname === '/v1/stats/trend';
    await page.route(isTrend, (route) => {
      const u = new URL(route.request().url());
      u.searchParams.set('code', 'no-such-grid');
      route.continue({ url: u.toString() });
    });
    try {
      await first.click();
      await eventually(async () => {
        const msg = page.locator('#ind-trend-message');
        assert.match(await msg.textContent(), /no-such-grid/);
        assert.doesNotMatch(await msg.textContent(), new RegExp(lead(zh['indicators.unavailable'])));
        assert.match(await msg.getAttribute('class'), /error/);
      });
    } finally {
      await page.unroute(isTrend);
    }
    // A router's 404 for a route it does not have: unavailable.
    await page.route(isTrend, (route) => route.fulfill({ status: 404, contentType: 'application/json', body: '{"message":"Not Found"}' }));
    try {
      await page.locator('#ind-trend button.close').click();
      await first.click();
      await eventually(async () => {
        const msg = page.locator('#ind-trend-message');
        assert.match(await msg.textContent(), new RegExp(lead(zh['indicators.unavailable'])));
        assert.match(await msg.getAttribute('class'), /unavailable/);
      });
    } finally {
      await page.unroute(isTrend);
    }
    await page.locator('#ind-trend button.close').click();
  });

  await t.step('the panel speaks English', async () => {
    await page.getByRole('button', { name: 'English' }).click();
    await eventually(async () => assert.equal(await page.locator('#tab-indicators').textContent(), en['indicators.tab']));
    assert.match(await page.locator('#ind-stats th button[data-sort="received"]').textContent(), new RegExp(`^${en['indicators.col.received']}`));
    assert.equal(await page.locator('#ind-stats tfoot td[data-col="name"]').textContent(), en['indicators.total']);
    assert.equal(await page.locator('#ind-window option:checked').textContent(), en['indicators.window.30d']);
    await t.shot('indicators in English');
    await page.getByRole('button', { name: '中文' }).click();
    await eventually(async () => assert.equal(await page.locator('#tab-indicators').textContent(), zh['indicators.tab']));
  });
});
