// The sign-in page against a real server: the language it starts in and
// its switch, a wrong password, a real sign-in, and a cross-site form that
// must not act for the signed-in person.
//
// Environment (besides lib.mjs's GRIDMAP_URL, GRIDMAP_SHOTS, CHROMIUM):
//   GRIDMAP_USER, GRIDMAP_PASSWORD  an account that can sign in
//   GRIDMAP_DISPLAY_NAME            its display name (default: the username)
//   GRIDMAP_OTHER_ORIGIN_URL        a page of another origin (another port
//       on 127.0.0.1 is enough) that, once loaded, submits an HTML form
//       POST to GRIDMAP_URL + '/v1/reports' by itself. On 127.0.0.1 both
//       origins are the same site, so the browser still sends the Lax
//       session cookie: what refuses the write is the server's Origin check.
//
// Run alone: cd browser && GRIDMAP_URL=... GRIDMAP_USER=... node login.test.mjs
// (the Go test in server/ that starts the server sets all of this).
import { assert, browserTest, dictionary, env, eventually } from './lib.mjs';

const zh = dictionary('zh-CN');
const en = dictionary('en');

// What refusing the cross-site form looks like. Adjust here if the server's
// answer changes: the write counts as refused when the status is
// refusedStatus or the body names refusedCode, and never when it is 2xx/3xx.
const refusedStatus = 403;
const refusedCode = 'forbidden';

const user = env('GRIDMAP_USER');
// The account's display name, shown on the start page once signed in.
const displayName = env('GRIDMAP_DISPLAY_NAME', user);
const password = env('GRIDMAP_PASSWORD');
const otherOriginURL = env('GRIDMAP_OTHER_ORIGIN_URL');

await browserTest('login', async (t) => {
  const { page } = t;
  const heading = page.locator('h1');
  const alert = page.getByRole('alert');
  const button = page.locator('#login-submit');
  const isSignIn = (r) => new URL(r.url()).pathname === '/v1/session' && r.request().method() === 'POST';

  await t.step('opens in Chinese for a zh-CN browser, with the username focused', async () => {
    const res = await page.goto(t.url('/login'));
    assert.equal(res.status(), 200);
    assert.equal(res.headers()['cache-control'], 'no-store');
    await eventually(async () => assert.equal(await heading.textContent(), zh['login.heading']));
    assert.equal(await page.title(), zh['login.title']);
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'zh-CN');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'login-username');
    // Labels are tied to their inputs: a person (or a screen reader) finds them by name.
    await page.getByLabel(zh['login.username']).waitFor();
    await page.getByLabel(zh['login.password']).waitFor();
  });

  await t.step('switches to English and back', async () => {
    await page.getByRole('button', { name: 'English' }).click();
    await eventually(async () => assert.equal(await heading.textContent(), en['login.heading']));
    assert.equal(await button.textContent(), en['login.submit']);
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
    await t.shot('english');
    await page.getByRole('button', { name: '中文' }).click();
    await eventually(async () => assert.equal(await heading.textContent(), zh['login.heading']));
    assert.equal(await button.textContent(), zh['login.submit']);
  });

  await t.step('the browser language picks the page language; others get Chinese', async () => {
    for (const [locale, want] of [['en-US', en], ['fr-FR', zh]]) {
      const other = await t.newPage({ locale });
      await other.goto(t.url('/login'));
      await eventually(async () => assert.equal(await other.locator('h1').textContent(), want['login.heading'], locale));
      await other.context().close();
    }
  });

  await t.step('tells why after ?expired=1, and refuses ?next= to another site', async () => {
    await page.goto(t.url('/login?expired=1'));
    await eventually(async () => assert.equal(await page.locator('#login-notice').textContent(), zh['login.expired']));
    const origin = new URL(t.baseURL).origin;
    const cases = [
      [null, '/'],
      ['', '/'],
      ['/', '/'],
      ['/console?grid=1#map', '/console?grid=1#map'],
      ['//evil.example/x', '/'],
      ['/\\evil.example/x', '/'],
      ['/\t/evil.example/x', '/'],
      ['https://evil.example/x', '/'],
      [`${origin}/console`, '/'],
      ['javascript:alert(1)', '/'],
      ['/login', '/'],
    ];
    for (const [next, want] of cases) {
      const got = await page.evaluate(async (n) => (await import('/login.js')).safeNext(n), next);
      assert.equal(got, want, `safeNext(${JSON.stringify(next)})`);
    }
  });

  await t.step('a wrong password says so in the page\'s language, busy while it waits', async () => {
    await page.goto(t.url('/login'));
    // Chromium logs every 4xx answer as a console error; this one is provoked.
    t.allowConsoleError(/status of 401/);
    // Hold the answer back a little so the busy state can be seen.
    await page.route('**/v1/session', async (route) => {
      await new Promise((r) => setTimeout(r, 400));
      await route.continue();
    });
    await page.getByLabel(zh['login.username']).fill(user);
    await page.getByLabel(zh['login.password']).fill(`${password}-wrong`);
    const answer = page.waitForResponse(isSignIn);
    await page.getByLabel(zh['login.password']).press('Enter');
    await eventually(async () => assert.equal(await button.getAttribute('aria-busy'), 'true'), 2000);
    assert.equal(await button.isDisabled(), true, 'the button is disabled while busy');
    const res = await answer;
    assert.equal(res.status(), 401);
    const body = await res.json();
    assert.equal(body.error?.code, 'unauthorized');
    await eventually(async () => assert.equal(await alert.textContent(), zh['login.wrong']));
    assert.equal(await button.getAttribute('aria-busy'), 'false');
    assert.equal(new URL(page.url()).pathname, '/login');
    await page.unroute('**/v1/session');
  });

  await t.step('signs in and lands on / (not on the other site ?next= names)', async () => {
    await page.goto(t.url('/login?next=%2F%2Fevil.example%2Fphish'));
    await page.getByLabel(zh['login.username']).fill(user);
    await page.getByLabel(zh['login.password']).fill(password);
    // The wrong password above may have slowed sign-ins down (429): then
    // wait as the page says, and try once more.
    t.allowConsoleError(/status of 429/);
    let res = await Promise.all([page.waitForResponse(isSignIn), button.click()]).then(([r]) => r);
    if (res.status() === 429) {
      const wait = Number(res.headers()['retry-after'] || '1');
      console.log(`  429: trying again after ${wait} s`);
      await t.shot('rate-limited');
      await eventually(async () => assert.equal(await button.isEnabled(), true), (wait + 5) * 1000);
      res = await Promise.all([page.waitForResponse(isSignIn), button.click()]).then(([r]) => r);
    }
    // On 200 the page moves on at once, and the answer's body goes with
    // it: read it only to say what went wrong.
    if (res.status() !== 200) assert.fail(`sign-in answered ${res.status()}: ${await res.text().catch((e) => e.message)}`);
    await page.waitForURL((u) => u.pathname === '/');
    assert.equal(new URL(page.url()).origin, new URL(t.baseURL).origin);
    const cookie = (await t.context.cookies(t.baseURL)).find((c) => c.name === 'gridmap_session');
    assert.ok(cookie, 'the gridmap_session cookie is set');
    assert.equal(cookie.httpOnly, true, 'the session cookie is HttpOnly');
    assert.equal(cookie.sameSite, 'Lax', 'the session cookie is SameSite=Lax');
    // The start page says who is signed in.
    await eventually(async () => assert.match((await page.locator('#who').textContent()) ?? '', new RegExp(displayName)));
    await t.shot('signed-in');
  });

  await t.step('a form on another origin cannot write as the signed-in person', async () => {
    await page.goto(t.url('/'));
    const target = t.url('/v1/reports');
    t.allowConsoleError(new RegExp(`status of ${refusedStatus}`));
    const answer = page.waitForResponse((r) => r.url() === target && r.request().method() === 'POST');
    await page.goto(otherOriginURL);
    const res = await answer;
    const status = res.status();
    const text = await res.text();
    console.log(`  cross-site POST ${target}: ${status} ${text.slice(0, 300).trim()}`);
    assert.ok(status >= 400, `the cross-site write was accepted: ${status}`);
    assert.ok(status === refusedStatus || text.includes(refusedCode), `want ${refusedStatus} or a body naming "${refusedCode}", got ${status}: ${text}`);
    await page.waitForLoadState();
    const shown = (await page.locator('body').textContent()) ?? '';
    assert.ok(status === refusedStatus || shown.includes(refusedCode), `the page shows: ${shown.slice(0, 200)}`);
  });

  await t.step('signing out ends the session and the start page sends the browser to sign in', async () => {
    await page.goto(t.url('/'));
    await page.locator('#signout').click();
    await page.waitForURL((u) => u.pathname === '/login');
    const who = await page.evaluate(async () => (await fetch('/v1/session')).status);
    assert.equal(who, 401, 'after signing out, GET /v1/session answers 401');
    t.allowConsoleError(/status of 401/);
    await page.goto(t.url('/'));
    await page.waitForURL((u) => u.pathname === '/login');
  });
});
