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
import { assert, browserTest, dictionary, env, eventually } from './lib.mjs';

const zh = dictionary('zh-CN');
const layer = env('GRIDMAP_LAYER');
const grid = env('GRIDMAP_GRID');
const from = env('GRIDMAP_VERTEX').split(',').map(Number);
const to = env('GRIDMAP_VERTEX_TO').split(',').map(Number);

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
});
