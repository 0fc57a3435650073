// What every browser test shares: Debian's chromium driven by playwright-core,
// a page at the server under test, and a test that fails on anything a
// person would see go wrong: an uncaught page error, a Content-Security-Policy
// violation, a console error nobody expected, or a step that did not happen.
//
// Environment:
//   GRIDMAP_URL     the server under test, e.g. http://127.0.0.1:41234 (required)
//   GRIDMAP_SHOTS   where screenshots go (default: a new temporary directory)
//   CHROMIUM        the browser (default /usr/bin/chromium)
//   GRIDMAP_TIMEOUT_MS  how long one action or wait may take (default 15000)
//   GRIDMAP_SLOWMO_MS   pause this long before each browser action, to
//                       follow a run in its screenshots (default 0)
//
// A test script is one call:
//
//   import { browserTest } from './lib.mjs';
//   await browserTest('login', async (t) => {
//     await t.step('the page opens', async () => { await t.page.goto(t.url('/login')); });
//   });
//
// It prints one line per step, saves a screenshot after each step and on
// failure, and exits 1 when the test failed.

import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export { assert };

// The flags every run uses. Headless without a GPU, WebGL falls back to
// SwiftShader by itself (never pass --use-gl=swiftshader); the rest keep
// chromium from reaching the network on its own: no QUIC, no first-run
// pages, no background fetches, component updates or sync.
export const chromiumFlags = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const here = dirname(fileURLToPath(import.meta.url));

// env is the environment variable name, or fallback; without either the
// test cannot run and says which variable it needs.
export function env(name, fallback) {
  const v = process.env[name];
  if (v !== undefined && v !== '') return v;
  if (fallback !== undefined) return fallback;
  throw new Error(`the environment variable ${name} is not set`);
}

// dictionary is a page dictionary, static/i18n/<lang>.json, as the pages
// load it: tests look for texts by key, so rewording does not break them.
export function dictionary(lang) {
  return JSON.parse(readFileSync(join(here, '..', 'static', 'i18n', `${lang}.json`), 'utf8'));
}

// eventually retries check (which throws until it holds) until it passes
// or timeoutMs runs out, then throws its last error.
export async function eventually(check, timeoutMs = Number(env('GRIDMAP_TIMEOUT_MS', '15000'))) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > end) throw err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Console errors no test may allow: the browser's own CSP reports and ours.
const neverAllowed = [/Content Security Policy/i, /^CSP violation/];

// Reported by an init script, since a violation in an event handler or a
// style attribute does not always reach the console.
const reportViolations = () => {
  document.addEventListener('securitypolicyviolation', (e) => {
    console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline code'} in ${e.sourceFile || e.documentURI}:${e.lineNumber}`);
  });
};

function slug(s) {
  return s.toLowerCase().replace(/[^a-z0-9\u4e00-\u9fff]+/g, '-').replace(/^-|-$/g, '').slice(0, 60) || 'shot';
}

// browserTest runs body against a fresh browser and reports how it went.
// body gets t with:
//   t.page, t.context, t.browser  the page (locale zh-CN, Asia/Shanghai) and its owners
//   t.url(path)                   GRIDMAP_URL + path
//   t.step(name, fn)              runs one named step, then checks for errors and saves a screenshot
//   t.shot(name)                  saves a screenshot now
//   t.allowConsoleError(re)       an expected console error (a 401 the test provoked, say)
//   t.newPage(contextOptions)     another page in a context of its own, watched the same way
export async function browserTest(name, body, { contextOptions = {} } = {}) {
  const baseURL = env('GRIDMAP_URL').replace(/\/+$/, '');
  const shots = process.env.GRIDMAP_SHOTS || mkdtempSync(join(tmpdir(), `gridmap-shots-${slug(name)}-`));
  mkdirSync(shots, { recursive: true });
  const timeout = Number(env('GRIDMAP_TIMEOUT_MS', '15000'));
  const problems = [];
  const allowed = [];
  let shotCount = 0;
  let current = null; // the step running now
  let lastPage = null; // the page opened last: a failure screenshot shows it

  console.log(`${name}: ${baseURL}, screenshots in ${shots}`);
  const browser = await chromium.launch({
    executablePath: env('CHROMIUM', '/usr/bin/chromium'),
    headless: true,
    args: chromiumFlags,
    slowMo: Number(env('GRIDMAP_SLOWMO_MS', '0')),
    timeout: 60_000,
  });

  function watch(page) {
    lastPage = page;
    page.setDefaultTimeout(timeout);
    page.on('pageerror', (err) => problems.push(`uncaught page error on ${page.url()}: ${err.stack || err}`));
    page.on('console', (msg) => {
      const loc = msg.location();
      const text = msg.text();
      console.log(`  console.${msg.type()}: ${text}${loc.url ? ` (${loc.url}:${loc.lineNumber})` : ''}`);
      if (msg.type() !== 'error') return;
      // The browser asks every page's site for an icon; a person sees no error when there is none.
      if (loc.url && new URL(loc.url).pathname === '/favicon.ico') return;
      const never = neverAllowed.some((re) => re.test(text));
      if (never || !allowed.some((re) => re.test(text))) problems.push(`console error on ${page.url()}: ${text}`);
    });
    page.on('crash', () => problems.push(`the page crashed: ${page.url()}`));
  }

  async function newContext(options) {
    const context = await browser.newContext({ locale: 'zh-CN', timezoneId: 'Asia/Shanghai', viewport: { width: 1100, height: 760 }, ...options });
    await context.addInitScript(reportViolations);
    context.on('page', watch);
    return context;
  }

  function checkProblems() {
    if (problems.length === 0) return;
    const list = problems.splice(0);
    throw new Error(`the page reported ${list.length} problem(s):\n  ${list.join('\n  ')}`);
  }

  async function shot(label, page = t.page) {
    if (!page || page.isClosed()) return null;
    shotCount++;
    const file = join(shots, `${slug(name)}-${String(shotCount).padStart(2, '0')}-${slug(label)}.png`);
    try {
      await page.screenshot({ path: file, fullPage: true, timeout: 10_000 });
      console.log(`  screenshot ${file}`);
      return file;
    } catch (err) {
      console.log(`  screenshot ${label} failed: ${err.message}`);
      return null;
    }
  }

  const context = await newContext(contextOptions);
  const page = await context.newPage();
  const t = {
    browser,
    context,
    page,
    baseURL,
    url: (path = '/') => baseURL + path,
    shot,
    allowConsoleError: (re) => allowed.push(re),
    async newPage(options = {}) {
      const ctx = await newContext(options);
      return ctx.newPage();
    },
    async step(label, fn) {
      current = label;
      const start = Date.now();
      console.log(`- ${label}`);
      await fn();
      checkProblems();
      await shot(label);
      console.log(`  ok (${Date.now() - start} ms)`);
      current = null;
    },
  };

  let failed = false;
  try {
    await body(t);
    checkProblems();
  } catch (err) {
    failed = true;
    console.log(`FAIL ${name}${current ? `, step "${current}"` : ''}: ${err.stack || err}`);
    if (problems.length > 0) console.log(`also reported by the page:\n  ${problems.join('\n  ')}`);
    if (lastPage && !lastPage.isClosed()) console.log(`the page was at ${lastPage.url()}`);
    await shot('failed', lastPage && !lastPage.isClosed() ? lastPage : t.page);
  } finally {
    await browser.close().catch(() => {});
  }
  if (failed) {
    process.exitCode = 1;
  } else {
    console.log(`PASS ${name}`);
  }
}
