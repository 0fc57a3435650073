// The sign-in page: POST /v1/session with the name and password, then on
// to the page that sent the person here (?next=), or to the start page.
import { leaving } from '/dom.js';
import { chosenLanguage, language, t, useLanguage } from '/i18n.js';

const form = document.getElementById('login-form');
const username = document.getElementById('login-username');
const password = document.getElementById('login-password');
const submit = document.getElementById('login-submit');
const errorEl = document.getElementById('login-error');
const noticeEl = document.getElementById('login-notice');
const languageButtons = document.querySelectorAll('[data-language]');

const query = new URLSearchParams(location.search);

// Everything the page shows is drawn from this state by render().
const state = {
  // Why the person is here: a dictionary key, or null.
  notice: query.get('expired') === '1' ? 'login.expired' : query.get('link') === 'used' ? 'login.linkUsed' : null,
  // The last attempt's problem: {key, params} from the dictionary, or
  // {text} as the server said it; null for none.
  problem: null,
  busy: false,
  // Sign-in is refused until this time (ms), after a 429.
  retryAt: 0,
};

// safeNext is where to go after signing in: next when it is a path on this
// site (one leading slash: not //host, not /\host, not a scheme), else /.
export function safeNext(next) {
  if (typeof next !== 'string' || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '/';
  let url;
  try {
    url = new URL(next, location.origin);
  } catch {
    return '/';
  }
  // The parser drops tabs and newlines, so "/\t/host" resolves elsewhere:
  // judge the resolved URL, not the text.
  if (url.origin !== location.origin || url.pathname === '/login') return '/';
  return url.pathname + url.search + url.hash;
}

// retryAfterSeconds reads a Retry-After header: seconds or an HTTP date.
function retryAfterSeconds(header) {
  const fallback = 30;
  if (!header) return fallback;
  if (/^\d+$/.test(header.trim())) return Math.max(1, Number(header.trim()));
  const at = Date.parse(header);
  return Number.isNaN(at) ? fallback : Math.max(1, Math.ceil((at - Date.now()) / 1000));
}

function secondsToWait() {
  return Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000));
}

function render() {
  noticeEl.hidden = state.notice === null;
  noticeEl.textContent = state.notice === null ? '' : t(state.notice);
  const p = state.problem;
  errorEl.textContent = p === null ? '' : p.text ?? t(p.key, p.params);
  const wait = secondsToWait();
  submit.disabled = state.busy || wait > 0;
  submit.setAttribute('aria-busy', String(state.busy));
  submit.textContent = state.busy ? t('login.busy') : wait > 0 ? t('login.wait', { seconds: wait }) : t('login.submit');
  for (const b of languageButtons) b.setAttribute('aria-pressed', String(b.dataset.language === language()));
}

// countDown redraws the button each second until sign-in is allowed again.
function countDown() {
  const timer = setInterval(() => {
    if (secondsToWait() === 0) {
      clearInterval(timer);
      if (state.problem?.key === 'login.tooMany') state.problem = null;
    }
    render();
  }, 1000);
}

async function signIn(event) {
  event.preventDefault();
  if (state.busy || secondsToWait() > 0) return;
  const name = username.value.trim();
  if (name === '' || password.value === '') {
    state.problem = { key: 'login.missing' };
    render();
    (name === '' ? username : password).focus();
    return;
  }
  state.busy = true;
  state.problem = null;
  render();
  let res;
  let body = null;
  try {
    res = await fetch('/v1/session', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ username: name, password: password.value }),
    });
    body = await res.json().catch(() => null);
  } catch {
    state.busy = false;
    state.problem = { key: 'login.network' };
    render();
    return;
  }
  if (res.ok) {
    // Stay busy while the next page loads.
    location.assign(safeNext(query.get('next')));
    return;
  }
  state.busy = false;
  if (res.status === 429) {
    const seconds = retryAfterSeconds(res.headers.get('Retry-After'));
    state.retryAt = Date.now() + seconds * 1000;
    state.problem = { key: 'login.tooMany', params: { seconds } };
    countDown();
  } else if (res.status === 401) {
    // The server's words are English; the page says it in its language.
    state.problem = { key: 'login.wrong' };
  } else if (typeof body?.error?.message === 'string' && body.error.message !== '') {
    state.problem = { text: body.error.message };
  } else {
    state.problem = { key: 'login.failed', params: { status: res.status } };
  }
  render();
  password.focus();
  password.select();
}

async function switchLanguage(event) {
  const lang = event.currentTarget.dataset.language;
  try {
    await useLanguage(lang, { save: true });
  } catch (err) {
    console.error('language switch:', err);
  }
  render();
}

form.addEventListener('submit', signIn);
for (const b of languageButtons) b.addEventListener('click', switchLanguage);

try {
  await useLanguage(chosenLanguage());
} catch (err) {
  // Without its dictionary the page shows keys: say why where tests and
  // developers look.
  if (!leaving()) console.error('dictionary:', err);
}
render();
if (document.activeElement === document.body || document.activeElement === null) username.focus();
