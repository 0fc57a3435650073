// The boundary editor against a real server: an editor signs in, opens a
// street, drags the vertex at the top of the edge it shares with the next
// street into that street, sees the dry run's impact (both streets change,
// no problem), and publishes with a reason. The Go side
// (server/browser_editor_test.go) then checks versions, coverage and the
// lookup.
//
// Environment (besides lib.mjs's GRIDMAP_URL, GRIDMAP_SHOTS, CHROMIUM):
//   GRIDMAP_USER, GRIDMAP_PASSWORD  an editor account
//   GRIDMAP_LAYER, GRIDMAP_GRID     the layer and the street to edit
//   GRIDMAP_VERTEX                  lon,lat of the shared vertex to drag
//   GRIDMAP_VERTEX_TO               lon,lat to drag it to
//   GRIDMAP_DISTRICT                minLon,minLat,maxLon,maxLat of the streets' district
//   GRIDMAP_NEIGHBOUR               the street next to GRIDMAP_GRID (it is split)
//   GRIDMAP_DRAFT_LAYER             a layer holding only a district, for the draft import
//   GRIDMAP_DRAFT_FILE              a GeoJSON file of two overlapping streets under it
//   GRIDMAP_TRANSFER_LAYER          a layer of a district split into streets XS1 (west) and XS2
//                                   (east) at the lon GRIDMAP_TRANSFER_EDGE, its district XD
//                                   spanning GRIDMAP_DISTRICT shifted by 0.3 degrees east
//   GRIDMAP_BIG_LAYER, GRIDMAP_BIG_GRID, GRIDMAP_BIG_VERTEX
//                                   a street of 5,000 vertices and one of its vertices
import { assert, browserTest, dictionary, env, eventually } from './lib.mjs';

const zh = dictionary('zh-CN');
const layer = env('GRIDMAP_LAYER');
const grid = env('GRIDMAP_GRID');
const from = env('GRIDMAP_VERTEX').split(',').map(Number);
const to = env('GRIDMAP_VERTEX_TO').split(',').map(Number);
const district = env('GRIDMAP_DISTRICT').split(',').map(Number);
const neighbour = env('GRIDMAP_NEIGHBOUR');

// at is the page position of a place on the map.
async function at(page, lonLat) {
  const box = await page.locator('#map').boundingBox();
  const p = await page.evaluate((ll) => window.gridmap.map.project(ll), lonLat);
  return { x: box.x + p.x, y: box.y + p.y };
}

async function showDistrict(page) {
  await page.evaluate((b) => window.gridmap.map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 40, duration: 0 }), district);
}

async function drag(page, a, b, steps = 15) {
  const p = await at(page, a);
  const q = await at(page, b);
  await page.mouse.move(p.x, p.y);
  await page.mouse.down();
  for (let i = 1; i <= steps; i++) await page.mouse.move(p.x + ((q.x - p.x) * i) / steps, p.y + ((q.y - p.y) * i) / steps);
  await page.mouse.up();
}

async function signIn(page, next) {
  await page.goto(t0url(`/login?next=${encodeURIComponent(next)}`));
  await page.getByLabel(zh['login.username']).fill(env('GRIDMAP_USER'));
  await page.getByLabel(zh['login.password']).fill(env('GRIDMAP_PASSWORD'));
  await page.locator('#login-submit').click();
  await page.waitForURL((u) => u.pathname === '/editor');
}
const t0url = (path) => env('GRIDMAP_URL').replace(/\/+$/, '') + path;

await browserTest('editor', async (t) => {
  const { page } = t;

  await t.step('an editor signs in and opens a street with its neighbours', async () => {
    await page.goto(t.url(`/login?next=${encodeURIComponent(`/editor?layer=${layer}&level=street&grid=${grid}`)}`));
    await page.getByLabel(zh['login.username']).fill(env('GRIDMAP_USER'));
    await page.getByLabel(zh['login.password']).fill(env('GRIDMAP_PASSWORD'));
    await page.locator('#login-submit').click();
    await page.waitForURL((u) => u.pathname === '/editor');
    await eventually(async () => assert.equal(await page.locator('#grid-code').textContent(), grid));
    const modes = await page.evaluate(() => window.gridmap.draw.getSnapshot().map((f) => f.properties.mode).filter((m) => m !== 'select').sort());
    assert.deepEqual(modes, ['grid', 'neighbours'], 'the street and its neighbour are loaded');
    assert.equal(await page.locator('#publish').isDisabled(), true, 'nothing to publish yet');
    await page.evaluate(() => new Promise((r) => (window.gridmap.map.loaded() ? r() : window.gridmap.map.once('idle', r))));
    await t.shot('a grid selected');
  });

  await t.step('dragging the shared vertex makes a draft both streets share, checked as it changes', async () => {
    const box = await page.locator('#map').boundingBox();
    const [a, b] = await page.evaluate(([p, q]) => [window.gridmap.map.project(p), window.gridmap.map.project(q)].map(({ x, y }) => ({ x, y })), [from, to]);
    // Frames are timed while the vertex moves.
    await page.evaluate(() => {
      window.frames_ = [];
      const tick = (ts) => { window.frames_.push(ts); if (window.frames_.length < 600) requestAnimationFrame(tick); };
      requestAnimationFrame(tick);
    });
    await page.mouse.move(box.x + a.x, box.y + a.y);
    await page.mouse.down();
    const steps = 15;
    for (let i = 1; i <= steps; i++) await page.mouse.move(box.x + a.x + ((b.x - a.x) * i) / steps, box.y + a.y + ((b.y - a.y) * i) / steps);
    await page.mouse.up();
    const fps = await page.evaluate(() => {
      const f = window.frames_;
      return f.length > 1 ? Math.round(((f.length - 1) * 1000) / (f[f.length - 1] - f[0])) : 0;
    });
    console.log(`frames per second while dragging: ${fps}`);
    await eventually(async () => assert.match(await page.locator('#impact-grids').textContent(), /ES1.*ES2|ES2.*ES1/));
    assert.equal(await page.locator('#problems li.none').count(), 1, 'no problems');
    assert.equal(await page.locator('#draft-count').textContent(), zh['editor.edits'].replace('{n}', '1'));
    const moved = await page.evaluate((id) => window.gridmap.draw.getSnapshotFeature(id).geometry.coordinates[0], await page.evaluate(() => window.gridmap.state.grid.id));
    assert.ok(moved.some(([x, y]) => Math.abs(x - to[0]) < 2e-4 && Math.abs(y - to[1]) < 2e-4), `the vertex is near ${to}: ${JSON.stringify(moved)}`);
    await t.shot('the draft checked');
  });

  await t.step('undo and redo walk the draft', async () => {
    await page.locator('#undo').click();
    await eventually(async () => assert.equal(await page.locator('#publish').isDisabled(), true));
    await page.locator('#redo').click();
    await eventually(async () => assert.match(await page.locator('#impact-grids').textContent(), /ES2/));
  });

  await t.step('publishing needs a reason, then sends one changeset', async () => {
    await page.locator('#publish').click();
    assert.equal(await page.locator('#draft-status').textContent(), zh['editor.needReason']);
    await page.locator('#reason').fill('道路改线，调整街道界线');
    await page.locator('#publish').click();
    await eventually(async () => assert.equal(await page.locator('#grid-version').textContent(), '2'));
    assert.match(await page.locator('#draft-status').textContent(), /ES1/);
    await t.shot('published');
  });

  await t.step('a new grid drawn over a neighbour shows the overlap, and cannot be published', async () => {
    await showDistrict(page);
    await page.locator('button[data-tool="draw"]').click();
    const w = district[0] + (district[2] - district[0]) * 0.65;
    const e = district[0] + (district[2] - district[0]) * 0.8;
    const s = district[1] + (district[3] - district[1]) * 0.2;
    const n = district[1] + (district[3] - district[1]) * 0.4;
    for (const p of [[w, s], [e, s], [e, n], [w, n]]) {
      const q = await at(page, p);
      await page.mouse.click(q.x, q.y);
    }
    await page.keyboard.press('Enter');
    await eventually(async () => assert.ok((await page.locator('#problems li.kind-overlaps_sibling').count()) > 0, 'the overlap is listed'));
    await eventually(async () => {
      const drawn = await page.evaluate(() => window.gridmap.map.queryRenderedFeatures({ layers: ['problem-fill'] }).length);
      const where = await page.evaluate(() => (window.gridmap.state.check?.problems ?? []).map((p) => p.where?.type ?? 'none').join(','));
      assert.ok(drawn > 0, `the overlap is drawn on the map (problem geometries: ${where})`);
    });
    assert.equal(await page.locator('#publish').isDisabled(), true, 'publishing is not offered');
    // Nor does the server take it (the browser logs the refusal).
    t.allowConsoleError(/status of 422/);
    const refused = await page.evaluate(async (layer) => {
      const ops = window.gridmap.state.history[window.gridmap.state.at].ops;
      const token = (await (await fetch('/v1/session')).json()).csrf_token;
      const res = await fetch(`/v1/layers/${layer}/changesets`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': token }, body: JSON.stringify({ reason: 'overlap', operations: ops }) });
      return res.status;
    }, layer);
    assert.equal(refused, 422);
    await t.shot('a validation problem shown');
    await page.locator('#discard').click();
    await eventually(async () => assert.equal(await page.locator('#problems li').count(), 0));
  });

  await t.step('a street split by a line becomes two', async () => {
    await showDistrict(page);
    const inside = await at(page, [district[0] + (district[2] - district[0]) * 0.8, district[1] + (district[3] - district[1]) * 0.2]);
    await page.mouse.click(inside.x, inside.y);
    await eventually(async () => assert.equal(await page.locator('#grid-code').textContent(), neighbour));
    await showDistrict(page);
    await page.locator('button[data-tool="cut"]').click();
    const y = (district[1] + district[3]) / 2;
    for (const x of [district[0] + (district[2] - district[0]) * 0.45, district[2] + (district[2] - district[0]) * 0.05]) {
      const q = await at(page, [x, y]);
      await page.mouse.click(q.x, q.y);
    }
    await page.keyboard.press('Enter');
    await eventually(async () => assert.equal(await page.locator('#drafted input.split-code').count(), 2));
    await eventually(async () => assert.equal(await page.locator('#problems li.none').count(), 1, 'no problems'));
    await page.locator('#reason').fill('拆分街道');
    await page.locator('#publish').click();
    await eventually(async () => assert.match(await page.locator('#draft-status').textContent(), new RegExp(`${neighbour}-1`)));
  });

  await t.step('two editors change the same street: the second to publish is told and shown the first one\'s version', async () => {
    const other = await t.newPage({ viewport: { width: 1100, height: 760 } });
    try {
      await signIn(other, `/editor?layer=${layer}&level=street&grid=${grid}`);
      await eventually(async () => assert.equal(await other.locator('#grid-code').textContent(), grid));
      await page.goto(t.url(`/editor?layer=${layer}&level=street&grid=${grid}`));
      await eventually(async () => assert.equal(await page.locator('#grid-code').textContent(), grid));
      // Both move the vertex at the top of the street's east edge, one further than the other.
      for (const [p, dx] of [[page, 0.001], [other, -0.001]]) {
        await eventually(async () => assert.equal(await p.evaluate(() => window.gridmap.ready === true), true));
        await p.evaluate(() => new Promise((r) => (window.gridmap.map.loaded() ? r() : window.gridmap.map.once('idle', r))));
        await drag(p, to, [to[0] + dx, to[1]]);
        await eventually(async () => assert.equal(await p.locator('#problems li.none').count(), 1, 'a clean draft'));
        await p.locator('#reason').fill('界线微调');
      }
      await page.locator('#publish').click();
      await eventually(async () => assert.equal(await page.locator('#grid-version').textContent(), '3'));
      t.allowConsoleError(/status of 412/); // the browser logs the refusal being tested
      await other.locator('#publish').click();
      await eventually(async () => assert.equal(await other.locator('#conflict').isVisible(), true, 'the conflict dialog shows'));
      assert.match(await other.locator('#conflict-text').textContent(), /3/);
      await eventually(async () => {
        const theirs = await other.evaluate(() => window.gridmap.map.querySourceFeatures('theirs').length);
        assert.ok(theirs > 0, 'their version is drawn');
      });
      await t.shot('the conflict', other);
      await other.locator('#conflict-discard').click();
      await eventually(async () => assert.equal(await other.locator('#grid-version').textContent(), '3'));
    } finally {
      await other.context().close();
    }
  });

  await t.step('the people of a street, its versions on a slider, and the coverage of its district', async () => {
    await eventually(async () => assert.equal(await page.locator('#grid-code').textContent(), grid));
    await page.locator('details.more summary').click();
    await page.locator('#grid-people').fill('grid_leader, 张三, 13900000001');
    await page.locator('#save-people').click();
    await eventually(async () => assert.match(await page.locator('details.more').textContent(), new RegExp(zh['editor.peopleSaved'].replace('{n}', '1'))));
    // Version 1, as first imported, drawn over today's outline.
    await page.locator('#history-slider').fill('0');
    await eventually(async () => assert.match(await page.locator('#history-version').textContent(), /1/));
    await eventually(async () => assert.ok((await page.evaluate(() => window.gridmap.map.queryRenderedFeatures({ layers: ['history-line'] }).length)) > 0, 'version 1 is drawn'));
    await t.shot('a version on the slider');
    // The district: its streets tile it exactly.
    await page.locator('#grid-search').fill('ED');
    await page.locator('#grid-search').press('Enter');
    await eventually(async () => assert.equal(await page.locator('#grid-code').textContent(), 'ED'));
    assert.equal(await page.locator('details.more').getAttribute('open'), '', 'the details stay open');
    await page.locator('#show-coverage').click();
    await eventually(async () => assert.equal(await page.locator('#coverage-result').textContent(), zh['editor.coverageClean']));
  });

  await t.step('two streets merged into one (多格合一)', async () => {
    await page.locator('#grid-search').fill(`${neighbour}-1`);
    await page.locator('#grid-search').press('Enter');
    await eventually(async () => assert.equal(await page.locator('#grid-code').textContent(), `${neighbour}-1`));
    await showDistrict(page);
    await page.locator('button[data-tool="merge"]').click();
    // Into the other part: across the split line from the first.
    const parts = await page.evaluate(async (layer) => (await (await fetch(`/v1/layers/${layer}/grids?level=street`)).json()).features
      .map((f) => ({ code: f.properties.code, geometry: f.geometry })), layer);
    const other = parts.find((f) => f.code === `${neighbour}-2`);
    const ring = other.geometry.type === 'Polygon' ? other.geometry.coordinates[0] : other.geometry.coordinates[0][0];
    const c = ring.slice(0, -1).reduce((a, [x, y]) => [a[0] + x / (ring.length - 1), a[1] + y / (ring.length - 1)], [0, 0]);
    const q = await at(page, c);
    await page.mouse.click(q.x, q.y);
    await eventually(async () => assert.match(await page.locator('#drafted').textContent(), new RegExp(`${neighbour}-2`)));
    await eventually(async () => assert.equal(await page.locator('#problems li.none').count(), 1, 'no problems'));
    await page.locator('#reason').fill('多格合一');
    const before = Number(await page.locator('#grid-version').textContent());
    await page.locator('#publish').click();
    await eventually(async () => assert.equal(Number(await page.locator('#grid-version').textContent()), before + 1));
    assert.match(await page.locator('#draft-status').textContent(), new RegExp(zh['editor.published'].replace('{grids}', '')));
  });

  await t.step('an area of a street handed to its neighbour, and the street\'s attributes edited, in one changeset', async () => {
    const tl = env('GRIDMAP_TRANSFER_LAYER');
    const edge = Number(env('GRIDMAP_TRANSFER_EDGE'));
    await page.goto(t.url(`/editor?layer=${tl}&level=street&grid=XS1`));
    await eventually(async () => assert.equal(await page.locator('#grid-code').textContent(), 'XS1'));
    await page.evaluate(() => new Promise((r) => (window.gridmap.map.loaded() ? r() : window.gridmap.map.once('idle', r))));
    await page.locator('button[data-tool="transfer"]').click();
    // A square astride the shared edge, reaching into XS2.
    for (const p of [[edge - 0.004, 32.002], [edge + 0.002, 32.002], [edge + 0.002, 32.004], [edge - 0.004, 32.004]]) {
      const q = await at(page, p);
      await page.mouse.click(q.x, q.y);
    }
    await page.keyboard.press('Enter');
    await eventually(async () => assert.equal(await page.locator('#drafted select.transfer-to').inputValue(), 'to:XS2'));
    await eventually(async () => assert.match(await page.locator('#impact-grids').textContent(), /XS1.*XS2|XS2.*XS1/));
    assert.equal(await page.locator('#problems li.none').count(), 1, 'no problems');
    await t.shot('an area transferred');
    // Turned round and back: the draft follows the choice.
    await page.locator('#drafted select.transfer-to').selectOption('from:XS2');
    await eventually(async () => assert.equal(await page.evaluate(() => window.gridmap.state.history.at(-1).ops[0].from), 'XS2'));
    await page.locator('#drafted select.transfer-to').selectOption('to:XS2');
    await eventually(async () => assert.equal(await page.evaluate(() => window.gridmap.state.history.at(-1).ops[0].to), 'XS2'));
    // Attributes: one added, the existing one changed.
    await page.locator('details.more summary').click();
    await page.locator('#attr-new-key').fill('households');
    await page.locator('#attr-new-value').fill('120');
    await page.locator('#attr-add').click();
    await eventually(async () => assert.equal(await page.locator('#grid-attributes tr[data-attr="households"] input').inputValue(), '120'));
    await page.locator('#grid-attributes tr[data-attr="office"] input').fill('东门社区工作站');
    await page.locator('#grid-attributes tr[data-attr="office"] input').press('Tab');
    await eventually(async () => assert.equal(await page.locator('#draft-count').textContent(), zh['editor.edits'].replace('{n}', '5')));
    await eventually(async () => assert.equal(await page.locator('#problems li.none').count(), 1, 'no problems'));
    await page.locator('#reason').fill('道路改线，地块划入东侧街道');
    await page.locator('#publish').click();
    await eventually(async () => assert.equal(await page.locator('#grid-version').textContent(), '2'));
    assert.equal(await page.locator('#grid-attributes tr[data-attr="households"] input').inputValue(), '120', 'the published attributes show');
  });

  await t.step('a vertex of a 5,000-vertex street drags smoothly', async () => {
    await page.goto(t.url(`/editor?layer=${env('GRIDMAP_BIG_LAYER')}&level=street&grid=${env('GRIDMAP_BIG_GRID')}`));
    await eventually(async () => assert.equal(await page.locator('#grid-code').textContent(), env('GRIDMAP_BIG_GRID')));
    const n = await page.evaluate(() => { const s = window.gridmap.state; return s.history[s.at].geometry.coordinates[0].length; });
    assert.ok(n > 5000, `the street has ${n} vertices`);
    await page.evaluate(() => new Promise((r) => (window.gridmap.map.loaded() ? r() : window.gridmap.map.once('idle', r))));
    const v = env('GRIDMAP_BIG_VERTEX').split(',').map(Number);
    await page.evaluate(() => {
      window.frames_ = [];
      const tick = (ts) => { window.frames_.push(ts); if (window.frames_.length < 2000) requestAnimationFrame(tick); };
      requestAnimationFrame(tick);
    });
    const started = await page.evaluate(() => performance.now());
    const p = await at(page, v);
    const q = await at(page, [v[0] + 0.0005, v[1] + 0.0003]);
    await page.mouse.move(p.x, p.y);
    await page.mouse.down();
    for (let i = 1; i <= 30; i++) {
      await page.mouse.move(p.x + ((q.x - p.x) * i) / 30, p.y + ((q.y - p.y) * i) / 30);
      if (i === 15) {
        // The moving edges are drawn over the map, and the map's own outline waits for the drop.
        assert.match(await page.locator('.drag-overlay polyline').getAttribute('points'), /^[\d.-]+,[\d.-]+ [\d.-]+,[\d.-]+ [\d.-]+,[\d.-]+$/);
        assert.equal(await page.locator('#draft-count').textContent(), '', 'nothing recorded before the drop');
      }
    }
    await page.mouse.up();
    const fps = await page.evaluate((t0) => {
      const f = window.frames_.filter((x) => x >= t0);
      return f.length > 1 ? Math.round(((f.length - 1) * 1000) / (f[f.length - 1] - f[0])) : 0;
    }, started);
    console.log(`frames per second while dragging a vertex of a ${n - 1}-vertex street: ${fps}`);
    await eventually(async () => assert.equal(await page.locator('#draft-count').textContent(), zh['editor.edits'].replace('{n}', '1')));
    await page.locator('#discard').click();
  });

  await t.step('a vertex of the big street removed by a right-click, one added by dragging an edge', async () => {
    const ring = () => page.evaluate(() => { const s = window.gridmap.state; return s.history[s.at].geometry.coordinates[0]; });
    const n = (await ring()).length;
    const v = env('GRIDMAP_BIG_VERTEX').split(',').map(Number);
    // Close enough in that the vertices, a metre apart, are tens of pixels apart.
    await page.evaluate((c) => window.gridmap.map.jumpTo({ center: c, zoom: 22 }), v);
    await page.evaluate(() => new Promise((r) => (window.gridmap.map.loaded() ? r() : window.gridmap.map.once('idle', r))));
    const p = await at(page, v);
    await page.mouse.click(p.x, p.y, { button: 'right' });
    await eventually(async () => assert.equal((await ring()).length, n - 1));
    assert.ok(!(await ring()).some(([x, y]) => x === v[0] && y === v[1]), 'the vertex is gone');
    const [a, b] = (await ring()).slice(0, 2);
    const mid = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
    const dropped = [mid[0] + 0.000005, mid[1]];
    await drag(page, mid, dropped, 5);
    await eventually(async () => assert.equal((await ring()).length, n));
    const added = (await ring())[1];
    assert.ok(Math.abs(added[0] - dropped[0]) < 1e-6 && Math.abs(added[1] - dropped[1]) < 1e-6, `the new vertex ${added} is where it was dropped, ${dropped}`);
    await eventually(async () => assert.equal(await page.locator('#draft-count').textContent(), zh['editor.edits'].replace('{n}', '2')));
    await page.locator('#discard').click();
  });

  await t.step('a file of overlapping streets imports as a draft; the overlap given to one, the draft publishes', async () => {
    await page.goto(t.url(`/editor?layer=${env('GRIDMAP_DRAFT_LAYER')}&level=street`));
    await eventually(async () => assert.equal(await page.evaluate(() => window.gridmap?.ready === true), true));
    assert.match(await page.locator('#export').getAttribute('href'), /\/export\?format=geojson/);
    await page.locator('#draft-file').setInputFiles(env('GRIDMAP_DRAFT_FILE'));
    await eventually(async () => assert.equal(await page.locator('#layer-draft-problems li.kind-overlaps_sibling').count(), 1, 'the overlap is listed once'));
    await eventually(async () => {
      const drawn = await page.evaluate(() => window.gridmap.map.queryRenderedFeatures({ layers: ['problem-fill'] }).length);
      assert.ok(drawn > 0, 'the overlap is drawn');
    });
    assert.equal(await page.locator('#draft-publish').isDisabled(), true, 'no publishing while it overlaps');
    await t.shot('a draft with an overlap');
    const first = await page.locator('#layer-draft-problems button[data-give-to]').first().getAttribute('data-give-to');
    await page.locator(`#layer-draft-problems button[data-give-to="${first}"]`).click();
    await eventually(async () => assert.equal(await page.locator('#layer-draft-problems li.none').count(), 1, 'the draft is clean'));
    await page.locator('#draft-reason').fill('导入新划分的街道');
    await page.locator('#draft-publish').click();
    await eventually(async () => assert.equal(await page.locator('#layer-draft-status').textContent(), zh['editor.draftPublished']));
    console.log(`the overlap went to ${first}`);
  });
});
