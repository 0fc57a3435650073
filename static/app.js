// The start page: service status and the layers it serves.
const statusEl = document.getElementById('status');
const tbody = document.querySelector('#layers tbody');

async function showStatus() {
  try {
    const res = await fetch('/readyz');
    statusEl.textContent = res.ok ? '运行正常 ready' : '未就绪 not ready';
    statusEl.className = 'status ' + (res.ok ? 'ok' : 'bad');
  } catch {
    statusEl.textContent = '无法连接 unreachable';
    statusEl.className = 'status bad';
  }
}

function cell(text) {
  const td = document.createElement('td');
  td.textContent = text;
  return td;
}

// signIn sends a browser whose session ended back to the sign-in page,
// which brings it here again.
function signIn() {
  location.assign('/login?expired=1&next=' + encodeURIComponent(location.pathname));
}

let csrfToken = '';

async function showCaller() {
  const res = await fetch('/v1/session');
  if (res.status === 401) return signIn();
  if (!res.ok) return;
  const { caller, csrf_token: csrf } = await res.json();
  csrfToken = csrf ?? '';
  const scope = caller.scope ? ` · ${caller.scope.layer} ${caller.scope.code}` : '';
  document.getElementById('who').textContent = `${caller.display_name || caller.name} (${caller.role}${scope})`;
  document.getElementById('signout').hidden = caller.kind !== 'account';
}

document.getElementById('signout').addEventListener('click', async () => {
  await fetch('/v1/session', { method: 'DELETE', headers: { 'X-CSRF-Token': csrfToken } });
  location.assign('/login');
});

async function showLayers() {
  const res = await fetch('/v1/layers');
  if (res.status === 401) return signIn();
  const body = await res.json();
  tbody.replaceChildren();
  if (!res.ok) {
    tbody.append(Object.assign(document.createElement('tr'), {}));
    tbody.lastChild.append(cell(body.error?.message ?? res.statusText));
    return;
  }
  if (body.layers.length === 0) {
    const tr = document.createElement('tr');
    tr.append(cell('还没有图层。No layers yet: import one with gridmap import, or run gridmap demo.'));
    tr.firstChild.colSpan = 5;
    tbody.append(tr);
  }
  for (const l of body.layers) {
    const tr = document.createElement('tr');
    const levels = document.createElement('td');
    for (const lv of l.levels) {
      const span = document.createElement('span');
      span.className = 'level';
      span.textContent = `${lv}: ${l.counts[lv] ?? 0}`;
      levels.append(span);
    }
    tr.append(cell(l.id), cell(l.name), cell(l.kind), levels, cell(String(l.data_version)));
    tbody.append(tr);
  }
}

showStatus();
showCaller();
showLayers();
