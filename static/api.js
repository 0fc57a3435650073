// The API client: fetch with the session cookie and the CSRF header, JSON
// errors turned into messages, the session, and the live event stream.

let csrfToken = '';

// ApiError carries the server's status, code, message and details (the
// problems of a refused changeset, say).
export class ApiError extends Error {
  constructor(status, code, message, details = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

// signIn sends a browser whose session ended to the sign-in page.
export function signIn() {
  location.assign('/login?expired=1&next=' + encodeURIComponent(location.pathname + location.search));
}

// request calls the API and returns the JSON answer; a failure throws an
// ApiError with the server's message. A 401 sends the browser to sign in.
export async function request(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrfToken;
  let res;
  try {
    res = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, 'network', err.message);
  }
  if (res.status === 401) {
    signIn();
    throw new ApiError(401, 'unauthorized', 'signed out');
  }
  const text = await res.text();
  const data = parseJSON(text);
  if (!res.ok) throw failure(res, data);
  return data;
}

function parseJSON(text) {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

// failure is the ApiError of an answer that is not ok, from its JSON body.
function failure(res, data) {
  return new ApiError(res.status, data?.error?.code ?? 'http', data?.error?.message ?? `HTTP ${res.status}`, data?.error?.details ?? null);
}

// csv asks path for its CSV form (Accept: text/csv) with the session, as
// request does, and resolves to it as a Blob; a failure throws an ApiError
// with the server's message.
export async function csv(path) {
  let res;
  try {
    res = await fetch(path, { headers: { Accept: 'text/csv' }, credentials: 'same-origin' });
  } catch (err) {
    throw new ApiError(0, 'network', err.message);
  }
  if (res.status === 401) {
    signIn();
    throw new ApiError(401, 'unauthorized', 'signed out');
  }
  if (!res.ok) throw failure(res, parseJSON(await res.text()));
  return res.blob();
}

// notOffered tells whether an error is a 404 for the route itself (a
// server without that endpoint): gridmap answers an unknown route with
// {"error": {"code": "not_found", "message": "no such endpoint: GET ..."}},
// and a bare router or a proxy in front with a body that is no gridmap
// error at all ({"message": "Not Found"}, which gets the code 'http').
// gridmap's other 404s (a grid that does not exist, or lies outside the
// caller's area) carry a message that says so.
export function notOffered(err) {
  if (err?.status !== 404) return false;
  return err.code === 'http' || /^no such endpoint\b/.test(err.message ?? '');
}

export const get = (path) => request('GET', path);
export const del = (path) => request('DELETE', path);
export const put = (path, body) => request('PUT', path, body);
// csrf is the session's CSRF token, for writes made without request().
export const csrf = () => csrfToken;
export const post = (path, body) => request('POST', path, body);

// session is the signed-in caller, and keeps the CSRF token for writes.
export async function session() {
  const s = await get('/v1/session');
  csrfToken = s.csrf_token ?? '';
  return s.caller;
}

export async function signOut() {
  try {
    await request('DELETE', '/v1/session');
  } finally {
    location.assign('/login');
  }
}

// ready tells whether /readyz answers 200.
export async function ready() {
  try {
    return (await fetch('/readyz', { credentials: 'same-origin' })).ok;
  } catch {
    return false;
  }
}

// events follows /v1/events. EventSource resumes by itself (with
// Last-Event-ID) after a dropped connection, but gives up for good on an
// answer other than 200: a 503 from an instance shutting down, a 502 from a
// proxy while instances restart. The feed is then opened again from the
// last event seen (?since=), after a wait that doubles up to 30 s, until the
// session has ended (401) or close is called. onLive, if given, hears
// whether events arrive: false from an error until the feed is open again.
export function events(handlers, onLive = () => {}) {
  let es;
  let last = '';
  let wait = 1000;
  let timer;
  let closed = false;
  const open = () => {
    es = new EventSource(last ? `/v1/events?since=${encodeURIComponent(last)}` : '/v1/events');
    es.addEventListener('open', () => {
      wait = 1000;
      onLive(true);
    });
    for (const [name, fn] of Object.entries(handlers)) {
      es.addEventListener(name, (e) => {
        if (e.lastEventId) last = e.lastEventId;
        let data;
        try {
          data = JSON.parse(e.data);
        } catch {
          return;
        }
        fn(data);
      });
    }
    es.addEventListener('error', (e) => {
      if (closed) return;
      onLive(false);
      if (e.target.readyState !== EventSource.CLOSED) return; // EventSource retries itself
      timer = setTimeout(async () => {
        try {
          if ((await fetch('/v1/session', { credentials: 'same-origin' })).status === 401) return;
        } catch {
          // The server is away: try the feed itself again.
        }
        if (!closed) open();
      }, wait);
      wait = Math.min(2 * wait, 30000);
    });
  };
  open();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      es.close();
    },
  };
}

// The roles, weakest first.
const roles = ['viewer', 'reporter', 'dispatcher', 'editor', 'admin'];

// atLeast tells whether role is role `min` or stronger.
export function atLeast(role, min) {
  return roles.indexOf(role) >= roles.indexOf(min);
}
