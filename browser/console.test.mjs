// The dispatcher console against a real server holding the demo district:
// sign in, the map shows the grids, a report posted through the API shows
// up in the list without a reload, the dispatcher opens and registers it, a
// click on the map says who owns the place, the page switches to English,
// a street searched by name is flown to and outlined, and the live feed
// comes back after the server refuses it.
//
// Environment (besides lib.mjs's GRIDMAP_URL, GRIDMAP_SHOTS, CHROMIUM):
//   GRIDMAP_USER, GRIDMAP_PASSWORD  a dispatcher account
//   GRIDMAP_DISPLAY_NAME            its display name (default: the username)
//   GRIDMAP_REPORTER_TOKEN          a token with the reporter role (files the report)
//   GRIDMAP_VIEWER_TOKEN            a token with the viewer role (a wall display)
//   GRIDMAP_CUT_URL                 a URL that, POSTed to, closes every connection to the
//       server (httptest's CloseClientConnections), as a proxy's restart would
//   GRIDMAP_LAYER                   the comprehensive layer to show (default demo)
//   GRIDMAP_REPORT_AT               lon,lat inside the district (default 120.08,30.24)
//
// Run alone: cd browser && GRIDMAP_URL=... GRIDMAP_USER=... node console.test.mjs
// (server/browser_console_test.go sets all of this).
import { assert, browserTest, dictionary, env, eventually } from './lib.mjs';

const zh = dictionary('zh-CN');
const en = dictionary('en');
const user = env('GRIDMAP_USER');
const displayName = env('GRIDMAP_DISPLAY_NAME', user);
const password = env('GRIDMAP_PASSWORD');
const reporterToken = env('GRIDMAP_REPORTER_TOKEN');
const layer = env('GRIDMAP_LAYER', 'demo');
const reportAt = env('GRIDMAP_REPORT_AT', '120.08,30.24').split(',').map(Number);

// apiCall calls the API as another system would. A request sent on a kept
// connection the server has just closed (the last step cuts them all) fails
// before it arrives; it is sent again, as any client would: every call here
// is a read or a report filed with an external_id, which a retry with the
// same content answers with the same report.
async function apiCall(method, path, body) {
  let res;
  for (let attempt = 1; ; attempt++) {
    try {
      res = await fetch(env('GRIDMAP_URL').replace(/\/+$/, '') + path, {
        method,
        headers: { Authorization: `Bearer ${reporterToken}`, 'Content-Type': 'application/json' },
        body: body ? JSON.stringify(body) : undefined,
      });
      break;
    } catch (err) {
      if (!(err instanceof TypeError) || attempt === 3) throw err; // fetch's network errors are TypeErrors
    }
  }
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

await browserTest('console', async (t) => {
  const { page } = t;
  let report;

  await t.step('a dispatcher signs in and lands on the console', async () => {
    await page.goto(t.url(`/login?next=${encodeURIComponent(`/?layer=${layer}`)}`));
    await page.getByLabel(zh['login.username']).fill(user);
    await page.getByLabel(zh['login.password']).fill(password);
    await page.locator('#login-submit').click();
    await page.waitForURL((u) => u.pathname === '/');
    await eventually(async () => assert.match((await page.locator('#who').textContent()) ?? '', new RegExp(displayName)));
    assert.equal(await page.locator('header h1 span').textContent(), zh['console.title']);
    assert.equal(await page.locator('#signout').isVisible(), true);
  });

  await t.step('the map shows the grids of the layer', async () => {
    await eventually(async () => {
      const n = await page.evaluate(() => {
        const map = window.gridmap?.map;
        if (!map || window.gridmap.firstIdleMs === undefined) return -1;
        return map.querySourceFeatures('grids', { sourceLayer: 'grids' }).length;
      });
      assert.ok(n > 0, `grids features in the source: ${n}`);
    });
    const ms = await page.evaluate(() => window.gridmap.firstIdleMs);
    console.log('first paint ms', ms);
    // The deployment's basemap is drawn under the grids.
    const layerIds = await page.evaluate(() => window.gridmap.map.getStyle().layers.map((l) => l.id));
    assert.equal(layerIds[0], 'base:land', `the basemap's layers come first: ${layerIds.slice(0, 3)}`);
    assert.ok(!layerIds.includes('background'), 'our own background gives way to the basemap');
    // The grids' names are drawn (by the browser's own fonts: no glyph server).
    await eventually(async () => {
      const names = await page.evaluate(() => window.gridmap.map.queryRenderedFeatures({ layers: ['grid-labels'] }).map((f) => f.properties.name));
      assert.ok(names.length > 0 && names.every((n) => n), `grid names drawn: ${names.slice(0, 5).join(', ')}`);
    });
    await eventually(async () => assert.match((await page.locator('#status').textContent()) ?? '', new RegExp(zh['console.ready'])));
  });

await t.step('a report filed through the API appears in the list within 2 s', async () => {
    await page.evaluate(() => new Promise((r) => (window.gridmap.map.loaded() ? r() : window.gridmap.map.once('idle', r))));
    // The event stream is open before the report is filed.
    await page.waitForTimeout(500);
    report = await apiCall('POST', '/v1/reports', {
      external_id: `console-${Date.now()}`,
      category: '0101',
      description: 'browser test',
      location: { type: 'Point', coordinates: reportAt },
    });
    assert.ok(report.id, 'the report has an id');
    const started = Date.now();
    await page.locator(`li[data-report-id="${report.id}"]`).waitFor({ timeout: 2000 });
    console.log(`  report ${report.id} listed ${Date.now() - started} ms after it was filed`);
    assert.match(await page.locator(`li[data-report-id="${report.id}"]`).textContent(), new RegExp(zh['console.status.reported']));
    // The counts at the top include it, and select their reports.
    await eventually(async () => assert.ok(Number(await page.locator('#status-counts [data-filter="reported"] .chip-n').textContent()) >= 1, 'a reported count'));
    await page.locator('#status-counts [data-filter="reported"]').click();
    await eventually(async () => {
      const shown = await page.locator('#report-list li').evaluateAll((lis) => lis.map((li) => li.dataset.status));
      assert.ok(shown.length > 0 && shown.every((s) => s === 'reported'), `only reported reports listed: ${shown}`);
    });
    assert.equal(await page.locator('#status-filter').inputValue(), 'reported');
    await page.locator('#status-filter').selectOption('open');
    await page.locator(`li[data-report-id="${report.id}"]`).waitFor();
  });

  await t.step('selecting it shows its assignment, and register moves it on', async () => {
    await page.locator(`li[data-report-id="${report.id}"]`).click();
    const code = report.assignment?.primary?.code;
    assert.ok(code, 'the report has a primary grid');
    await eventually(async () => assert.equal(await page.locator('#detail-primary').textContent(), code));
    const filter = await page.evaluate(() => JSON.stringify(window.gridmap.map.getFilter('grid-highlight')));
    assert.match(filter, new RegExp(code));
    assert.doesNotMatch(await page.locator('#detail').textContent(), /null|undefined|\[object/);
    // The deadline, and the working time left to it.
    assert.match(await page.locator('#detail-left').textContent(), new RegExp(zh['console.leftWorking'].replace('{time}', '.+').replace(/[()（）]/g, '.')));
    // The moves the server offers a dispatcher for a reported report, and no others.
    const offered = await page.locator('#detail .action-buttons button').evaluateAll((bs) => bs.map((b) => b.dataset.action));
    assert.deepEqual(offered, ['register', 'reject']);
    await t.shot('report selected');
    await page.locator('button[data-action="register"]').click();
    await eventually(async () => assert.equal((await apiCall('GET', `/v1/reports/${report.id}`)).status, 'registered'));
    await eventually(async () => assert.match((await page.locator('#detail').textContent()) ?? '', new RegExp(zh['console.status.registered'])));
    await eventually(async () => assert.match((await page.locator(`li[data-report-id="${report.id}"]`).textContent()) ?? '', new RegExp(zh['console.status.registered'])));
  });

  await t.step('an escalation calls departments in, each reports in from the detail', async () => {
    await eventually(async () => assert.equal(await page.locator('button[data-action="escalate"]').isVisible(), true, 'escalate is offered once registered'));
    await page.locator('button[data-action="escalate"]').click();
    await eventually(async () => assert.ok((await page.locator('#detail-tasks li').count()) > 0, 'the departments called in are listed'));
    const task = page.locator('#detail-tasks li').first();
    assert.match(await task.textContent(), new RegExp(zh['console.task.due'].replace('{time}', '.+')));
    await task.locator('button[data-action="report_in"]').click();
    await eventually(async () => assert.match(await page.locator('#detail-tasks li').first().textContent(), new RegExp(zh['console.task.reportedIn'].replace('{time}', '.+'))));
    const events = (await apiCall('GET', `/v1/reports/${report.id}/events`)).events.map((e) => e.action);
    assert.deepEqual(events.slice(-3), ['register', 'escalate', 'report_in']);
    await t.shot('escalated');
    // Close up, the report stands alone with its tier (street, once escalated) over it.
    const view = await page.evaluate(() => ({ center: window.gridmap.map.getCenter().toArray(), zoom: window.gridmap.map.getZoom() }));
    await page.evaluate((at) => window.gridmap.map.jumpTo({ center: at, zoom: 16 }), reportAt);
    await eventually(async () => {
      const labels = await page.evaluate((id) => window.gridmap.map.queryRenderedFeatures({ layers: ['report-tiers'] })
        .filter((f) => f.properties.id === id).map((f) => f.properties.tier), report.id);
      assert.deepEqual(labels, ['street'], 'the escalated report is labelled with its tier');
    });
    await t.shot('the report close up');
    await page.evaluate((v) => window.gridmap.map.jumpTo(v), view);
  });

  await t.step('the list pages on demand, and live reports keep the pages loaded', async () => {
    const batch = [];
    for (let i = 0; i < 110; i++) {
      batch.push(apiCall('POST', '/v1/reports', {
        external_id: `console-page-${Date.now()}-${i}`,
        category: '0102',
        location: { type: 'Point', coordinates: [reportAt[0] + ((i % 11) - 5) * 0.0004, reportAt[1] + (Math.floor(i / 11) - 5) * 0.0004] },
      }));
      if (batch.length === 10) await Promise.all(batch.splice(0));
    }
    await page.locator('#sort').selectOption('arrival');
    // The list is read again in arrival order: a page of 100, with more to come.
    await eventually(async () => assert.equal(await page.evaluate(() => window.gridmap.state.filters.sort === 'arrival' && !!window.gridmap.state.next), true));
    await eventually(async () => assert.equal(await page.locator('#report-list li').count(), 100, 'a page of 100'));
    assert.match(await page.locator('#report-count').textContent(), /100\+/);
    await page.locator('#more').click();
    await eventually(async () => assert.ok((await page.locator('#report-list li').count()) > 100, 'the next page is appended'));
    const loaded = await page.locator('#report-list li').count();
    const late = await apiCall('POST', '/v1/reports', { external_id: `console-late-${Date.now()}`, category: '0102', location: { type: 'Point', coordinates: reportAt } });
    await page.locator(`li[data-report-id="${late.id}"]`).waitFor();
    assert.ok((await page.locator('#report-list li').count()) >= loaded, 'the pages loaded are kept');
    // The tier filter: the escalated report is at the street tier, with
    // any other whose owners span streets, and none below it.
    await page.locator('#filter-tier').selectOption('street');
    await eventually(async () => {
      const rows = await page.locator('#report-list li').evaluateAll((lis) => lis.map((li) => [li.dataset.reportId, li.querySelector('.report-tier').textContent]));
      assert.ok(rows.some(([id]) => id === String(report.id)), `the escalated report is listed: ${rows}`);
      assert.ok(rows.length < 20 && rows.every(([, tier]) => tier === zh['console.tier.street']), `only street-tier reports: ${rows}`);
    });
    await page.locator('#filter-tier').selectOption('');
    await page.locator('#sort').selectOption('deadline');
  });

  await t.step('a viewer on a wall display (a token, no sign-in) sees the report and no moves', async () => {
    const p = await t.newPage({ viewport: { width: 1920, height: 1080 } });
    // The kiosk adds the token to every request to gridmap, and only to gridmap.
    await p.context().route((u) => u.origin === new URL(t.url()).origin, (route) =>
      route.continue({ headers: { ...route.request().headers(), authorization: `Bearer ${env('GRIDMAP_VIEWER_TOKEN')}` } }));
    try {
      await p.goto(t.url(`/?layer=${layer}`));
      await p.locator(`li[data-report-id="${report.id}"]`).click();
      await eventually(async () => assert.equal(await p.locator('#detail-primary').textContent(), report.assignment.primary.code));
      assert.equal(await p.locator('#detail .action-buttons button').count(), 0, 'no moves for a viewer');
      assert.equal(await p.locator('#detail-tasks button').count(), 0, 'no report-in for a viewer');
      assert.ok((await p.locator('#detail-tasks li').count()) > 0, 'the viewer sees the tasks');
      await t.shot('wall display, a viewer', p);
    } finally {
      await p.context().close();
    }
  });

  await t.step('a click on the map inside the district shows who owns the place', async () => {
    const box = await page.locator('#map').boundingBox();
    // A place away from the report: a fifth of the way in from the map's top-left.
    const at = { x: Math.round(box.width * 0.3), y: Math.round(box.height * 0.35) };
    const lngLat = await page.evaluate(({ x, y }) => window.gridmap.map.unproject([x, y]).toArray(), at);
    console.log(`  clicking at ${lngLat.map((n) => n.toFixed(5)).join(',')}`);
    await page.mouse.click(box.x + at.x, box.y + at.y);
    await eventually(async () => assert.ok((await page.locator('#lookup-chain li').count()) >= 2, 'the chain has levels'));
    const shown = await page.locator('#lookup').textContent();
    assert.match(shown, new RegExp(zh['console.here']));
    assert.match(shown, new RegExp(zh['console.level.district']));
    assert.doesNotMatch(shown, /null|undefined|\[object/);
    assert.doesNotMatch(await page.locator('#detail').textContent(), /null|undefined|\[object/);
  });

  await t.step('the police beats can be drawn over the grids', async () => {
    const toggle = page.locator('#overlay');
    await eventually(async () => assert.equal(await page.locator('#overlay-toggle').isVisible(), true, 'the departmental layer toggle shows'));
    await toggle.check();
    await eventually(async () => {
      const n = await page.evaluate(() => {
        const m = window.gridmap.map;
        return m.getLayoutProperty('overlay-lines', 'visibility') === 'visible' ? m.querySourceFeatures('overlay', { sourceLayer: 'grids' }).length : 0;
      });
      assert.ok(n > 0, 'beats are drawn');
    });
    await t.shot('police-beats');
    await toggle.uncheck();
    assert.equal(await page.evaluate(() => window.gridmap.map.getLayoutProperty('overlay-lines', 'visibility')), 'none');
  });

  await t.step('switches to English', async () => {
    await page.getByRole('button', { name: 'English' }).click();
    await eventually(async () => assert.equal(await page.locator('header h1 span').textContent(), en['console.title']));
    assert.equal(await page.locator('#signout').textContent(), en['console.signout']);
    assert.equal(await page.locator('.reports-head h2').textContent(), en['console.reports']);
    assert.equal(await page.locator('#sort option[value="deadline"]').textContent(), en['console.sort.deadline']);
    assert.equal(await page.locator('#filter-tier option[value="street"]').textContent(), en['console.tier.street']);
    assert.match(await page.locator('#status-counts [data-filter="open"]').textContent(), new RegExp(en['console.filter.open']));
    assert.match(await page.locator('#lookup').textContent(), new RegExp(en['console.here']));
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
    assert.equal(await page.title(), en['console.pageTitle']);
  });

  await t.step('searching a street by name and pressing Enter flies the map to it and outlines it', async () => {
    const street = await page.evaluate(async (layer) => {
      const res = await fetch(`/v1/layers/${encodeURIComponent(layer)}/grids?level=street&limit=1`, { credentials: 'same-origin' });
      if (!res.ok) throw new Error(`grids: HTTP ${res.status}`);
      const f = (await res.json()).features?.[0];
      return f && { code: f.properties?.code ?? f.id, name: f.properties?.name };
    }, layer);
    assert.ok(street?.code && street?.name, `a demo street: ${JSON.stringify(street)}`);
    const box = page.locator('#search');
    assert.equal(await box.getAttribute('placeholder'), en['console.search.placeholder']);
    assert.equal(await box.getAttribute('aria-label'), en['console.search.label']);
    // Reached by the keyboard, with a focus ring.
    await page.locator('[data-lang="zh-CN"]').focus();
    await page.keyboard.press('Shift+Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'search', 'Shift+Tab from the language buttons reaches the search box');
    const ring = await box.evaluate((e) => getComputedStyle(e).outlineStyle);
    assert.notEqual(ring, 'none', 'the focused search box shows a focus ring');
    // Esc clears.
    await box.fill('no such grid');
    await page.keyboard.press('Escape');
    assert.equal(await box.inputValue(), '');
    assert.equal(await page.locator('#search-results').isHidden(), true);
    // Typing lists the hits under the box; the arrow keys move through them.
    await box.fill(street.code);
    await eventually(async () => assert.ok((await page.locator('#search-results [role="option"]').count()) > 1, 'the street and the grids under it are listed'));
    assert.equal(await page.locator('#search-results [role="option"]').first().getAttribute('data-code'), street.code, 'the exact code comes first');
    assert.match(await page.locator('#search-results').textContent(), new RegExp(en['console.level.street']));
    await page.keyboard.press('ArrowDown');
    assert.equal(await box.getAttribute('aria-activedescendant'), 'search-hit-0');
    await t.shot('search hits');
    await page.keyboard.press('Escape');
    assert.equal(await box.inputValue(), '');
    await box.fill(street.name);
    await page.keyboard.press('Enter');
    await eventually(async () => {
      const at = await page.evaluate(() => window.gridmap.map.getCenter().toArray());
      const b = (await page.evaluate(async (q) => (await (await fetch(`/v1/search?q=${encodeURIComponent(q)}`)).json()).grids, street.name)).find((g) => g.code === street.code).bbox;
      assert.ok(at[0] >= b[0] && at[0] <= b[2] && at[1] >= b[1] && at[1] <= b[3], `the centre ${at} is in the street's bbox ${b}`);
    });
    assert.match(await page.evaluate(() => JSON.stringify(window.gridmap.map.getFilter('grid-highlight'))), new RegExp(street.code));
    await page.evaluate(() => new Promise((r) => (window.gridmap.map.loaded() ? r() : window.gridmap.map.once('idle', r))));
    await eventually(async () => {
      const shown = await page.evaluate(() => window.gridmap.map.queryRenderedFeatures({ layers: ['grid-highlight'] }).map((f) => f.properties.code));
      assert.ok(shown.includes(street.code), `the highlight draws ${street.code}: ${shown.join(',')}`);
    });
    assert.equal(await page.locator('#search-results').isHidden(), true, 'the hit list closes once chosen');
    await t.shot('street found');
  });

  await t.step('fits a 1366x768 and a 1920x1080 screen', async () => {
    for (const size of [{ width: 1366, height: 768 }, { width: 1920, height: 1080 }]) {
      await page.setViewportSize(size);
      await page.evaluate(() => new Promise((r) => { window.gridmap.map.resize(); window.gridmap.map.once('idle', r); window.gridmap.map.triggerRepaint(); }));
      const map = await page.locator('#map').boundingBox();
      const panel = await page.locator('aside.panel').boundingBox();
      assert.ok(map.width > size.width * 0.55, `the map is ${map.width} px wide at ${size.width}`);
      assert.ok(panel.x + panel.width <= size.width + 1, 'the panel fits');
      assert.ok(map.y + map.height <= size.height + 1, 'the map fills the height without scrolling');
      await t.shot(`${size.width}x${size.height}`);
    }
  });

  await t.step('the live feed is opened again after the server refuses it', async () => {
    // An instance shutting down answers 503, a proxy between restarts 502:
    // EventSource gives up on either for good.
    // The browser logs the refusals being tested (allowed from here on: the
    // last step).
    t.allowConsoleError(/status of 50[23]/);
    let refused = 0;
    let opened = 0;
    let refuse = 2; // how many of the next requests for the feed to refuse
    const reopened = []; // the feed's URLs let through
    // The ids of the events the page received, as the browser saw them.
    const seen = [];
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    cdp.on('Network.eventSourceMessageReceived', (m) => seen.push(m.eventId));
    await page.route('**/v1/events*', (route) => {
      if (refuse > 0) {
        refuse--;
        refused++;
        return route.fulfill({ status: refused % 2 === 1 ? 503 : 502, headers: { 'Retry-After': '5', 'Content-Type': 'application/json' },
          body: '{"error":{"code":"unavailable","message":"this server is shutting down; connect again"}}' });
      }
      opened++;
      reopened.push(new URL(route.request().url()));
      return route.continue();
    });
    try {
      await page.reload();
      // The header says live updates are paused while the feed is refused,
      // and ready once it is open again.
      await eventually(async () => assert.equal(await page.locator('#status').textContent(), en['console.liveLost']));
      await t.shot('live updates paused');
      await eventually(async () => assert.equal(opened, 1, `the feed opened again after ${refused} refusals`));
      await eventually(async () => assert.equal(await page.locator('#status').textContent(), en['console.ready']));
      await page.locator('#sort').selectOption('arrival'); // the newest first
      await eventually(async () => assert.equal(await page.evaluate(() => window.gridmap.state.filters.sort), 'arrival'));
      await page.waitForTimeout(500); // the stream's first read
      const live = await apiCall('POST', '/v1/reports', { external_id: `console-back-${Date.now()}`, category: '0102', location: { type: 'Point', coordinates: reportAt } });
      await eventually(async () => assert.equal(await page.locator(`li[data-report-id="${live.id}"]`).count(), 1, 'the report filed after the feed came back is listed'));
      assert.equal(refused, 2);

      // Once events have arrived, a feed that drops and is then refused is
      // opened again from the last event seen (?since=), and what happened
      // while it was away arrives: the server's connections are cut,
      // EventSource's own reconnection is refused, and a report is filed
      // meanwhile, which only the resumed feed can bring.
      refuse = 1;
      // The stream cut, and any request of the page still open then.
      t.allowConsoleError(/ERR_INCOMPLETE_CHUNKED_ENCODING|ERR_EMPTY_RESPONSE|ERR_CONNECTION_(CLOSED|RESET)/);
      const lastBeforeCut = seen.at(-1);
      const cut = await fetch(env('GRIDMAP_CUT_URL'), { method: 'POST' });
      assert.equal(cut.status, 204, 'the connections were cut');
      const missed = await apiCall('POST', '/v1/reports', { external_id: `console-missed-${Date.now()}`, category: '0102', location: { type: 'Point', coordinates: reportAt } });
      await eventually(async () => assert.equal(refused, 3, 'the reconnection was refused'), 20000);
      await eventually(async () => assert.equal(opened, 2, 'the feed opened again after the refusal'), 20000);
      assert.ok(lastBeforeCut, 'the page received events before the cut');
      assert.equal(reopened[1].searchParams.get('since'), lastBeforeCut, `the feed was opened again from the last event seen: ${reopened[1]}`);
      await eventually(async () => assert.equal(await page.locator('#status').textContent(), en['console.ready']));
      await eventually(async () => assert.equal(await page.locator(`li[data-report-id="${missed.id}"]`).count(), 1, 'the report filed while the feed was away is listed'));
    } finally {
      await page.unroute('**/v1/events*');
    }
  });
});
