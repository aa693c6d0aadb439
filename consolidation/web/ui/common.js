// common.js: what every callrec page shares.
//
//  - api(): fetch wrapper (same-origin cookies, CSRF header on writes, JSON
//    errors turned into ApiError, 401 sends the browser to the login page);
//  - initPage(): loads the session and fills the header bar;
//  - the error banner (#error);
//  - el(): builds DOM nodes without ever parsing HTML (no XSS by construction);
//  - formatting helpers for times, durations and statuses.

let csrfToken = '';

// ApiError carries the server's {"error":{"code","message"}} and the HTTP status.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

// loginURL is where an unauthenticated page sends the browser: /login with the
// current path (and query) as `next`, so the user comes back after signing in.
export function loginURL() {
  const next = location.pathname + location.search;
  return '/login?next=' + encodeURIComponent(next);
}

export function redirectToLogin() {
  location.replace(loginURL());
}

// errorFromResponse reads the API's JSON error body, falling back to the
// HTTP status line when the body is not the expected shape.
export async function errorFromResponse(res) {
  let code = 'internal';
  let message = '';
  try {
    const body = await res.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || '';
    }
  } catch (_) {
    // not JSON: keep the fallback below
  }
  if (!message) message = `The server answered ${res.status} ${res.statusText || ''}`.trim();
  return new ApiError(res.status, code, message);
}

// api performs one request against the callrec API.
//   path     "/api/…" (already URL-encoded)
//   method   GET by default; any other method sends the CSRF token and a JSON body
//   query    URLSearchParams appended to the path
//   body     object sent as JSON
//   raw      return the Response itself (for downloads) instead of parsed JSON
//   on401    "redirect" (default): go to the login page; "throw": let the caller handle it
export async function api(path, { method = 'GET', query, body, raw = false, on401 = 'redirect', accept = 'application/json' } = {}) {
  let url = path;
  if (query) {
    const qs = query.toString();
    if (qs) url += (url.includes('?') ? '&' : '?') + qs;
  }
  const init = { method, credentials: 'same-origin', headers: { Accept: accept } };
  if (method !== 'GET' && method !== 'HEAD') {
    init.headers['Content-Type'] = 'application/json';
    init.headers['X-CSRF-Token'] = csrfToken;
    init.body = JSON.stringify(body === undefined ? {} : body);
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (_) {
    throw new ApiError(0, 'unavailable', 'The callrec server cannot be reached. Check the connection and try again.');
  }
  if (res.status === 401 && on401 === 'redirect') {
    redirectToLogin();
    // The page is going away: never settle, so no caller paints an error
    // banner over the redirect.
    return new Promise(() => {});
  }
  if (!res.ok) throw await errorFromResponse(res);
  if (raw) return res;
  if (res.status === 204) return null;
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch (_) {
    throw new ApiError(res.status, 'internal', 'The server sent a response that is not valid JSON.');
  }
}

export function setCsrfToken(token) {
  csrfToken = token || '';
}

// ---------------------------------------------------------------------------
// Error banner

export function showError(err) {
  const box = document.getElementById('error');
  if (!box) return;
  const msg = box.querySelector('.error-message') || box;
  msg.textContent = typeof err === 'string' ? err : (err && err.message) || String(err);
  box.hidden = false;
}

export function clearError() {
  const box = document.getElementById('error');
  if (box) box.hidden = true;
}

function wireErrorBanner() {
  const box = document.getElementById('error');
  if (!box) return;
  const close = box.querySelector('.error-close');
  if (close) close.addEventListener('click', () => { box.hidden = true; });
}

// ---------------------------------------------------------------------------
// Session and header bar

export const ROLE_LABELS = {
  admin: 'Administrator',
  compliance: 'Compliance',
  supervisor: 'Supervisor',
  auditor: 'Auditor',
};

export function canSearch(role) {
  return role !== 'auditor';
}

export function canAudit(role) {
  return role === 'admin' || role === 'auditor';
}

// homeFor is the landing page of a role: auditors only see the audit trail.
export function homeFor(role) {
  return role === 'auditor' ? '/audit' : '/';
}

// initPage loads the session (redirecting to /login on 401), remembers the
// CSRF token and fills the header bar. `page` marks the current nav link.
export async function initPage(page) {
  wireErrorBanner();
  let session;
  try {
    session = await api('/api/session');
  } catch (err) {
    showError(err);
    throw err;
  }
  setCsrfToken(session.csrf_token);
  renderTopbar(session.user || {}, page);
  return session;
}

function renderTopbar(user, page) {
  const role = user.role || '';
  const navSearch = document.getElementById('nav-search');
  const navAudit = document.getElementById('nav-audit');
  if (navSearch) {
    navSearch.hidden = !canSearch(role);
    if (page === 'search') navSearch.setAttribute('aria-current', 'page');
  }
  if (navAudit) {
    navAudit.hidden = !canAudit(role);
    if (page === 'audit') navAudit.setAttribute('aria-current', 'page');
  }
  const brand = document.querySelector('.brand');
  if (brand) brand.setAttribute('href', homeFor(role));

  const name = document.getElementById('user-name');
  const roleEl = document.getElementById('user-role');
  if (name) name.textContent = user.name || '';
  if (roleEl) {
    roleEl.textContent = role;
    roleEl.dataset.role = role;
    const teams = (user.teams || []).join(', ');
    const label = ROLE_LABELS[role] || role;
    roleEl.title = teams ? `${label} · teams: ${teams}` : label;
  }
  const box = document.getElementById('userbox');
  if (box) box.hidden = false;

  const logout = document.getElementById('logout');
  if (logout) {
    logout.addEventListener('click', async () => {
      logout.disabled = true;
      try {
        await api('/api/logout', { method: 'POST', on401: 'throw' });
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 401)) {
          logout.disabled = false;
          showError(err);
          return;
        }
      }
      location.assign('/login');
    });
  }
}

// ---------------------------------------------------------------------------
// DOM building

// el creates an element. attrs: {class, text, dataset:{}, title, href, …};
// children: nodes or strings (strings become text nodes, never HTML).
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = value;
      else if (key === 'dataset') Object.assign(node.dataset, value);
      else if (key === 'hidden') node.hidden = Boolean(value);
      else if (key === 'disabled') node.disabled = Boolean(value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

// ---------------------------------------------------------------------------
// Formatting

const pad = (n, w = 2) => String(n).padStart(w, '0');

function parseTime(value) {
  if (!value) return null;
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime()) || d.getUTCFullYear() <= 1) return null; // Go's zero time
  return d;
}

// fmtDateTime: "2026-11-22 11:00:05" in the browser's local time zone.
// ISO-like order is unambiguous for readers in any country.
export function fmtDateTime(value) {
  const d = parseTime(value);
  if (!d) return '—';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// fmtTime: "11:00:05" local.
export function fmtTime(value) {
  const d = parseTime(value);
  if (!d) return '—';
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// fmtDuration: milliseconds → "m:ss", or "h:mm:ss" from one hour.
export function fmtDuration(ms) {
  if (ms === undefined || ms === null || !Number.isFinite(Number(ms))) return '—';
  return fmtClock(Number(ms) / 1000);
}

// fmtClock: seconds → "m:ss" / "h:mm:ss" (truncated to the second).
export function fmtClock(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) seconds = 0;
  const total = Math.floor(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return h > 0 ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}

// fmtMs: a stream position in ms → "m:ss.mmm" (precise, for gaps).
export function fmtMs(ms) {
  const v = Math.max(0, Math.round(Number(ms) || 0));
  return `${fmtClock(v / 1000)}.${pad(v % 1000, 3)}`;
}

// fmtSecs: a length in ms → "1.325 s" (precise, for lost audio); from a
// minute on, "m:ss.mmm".
export function fmtSecs(ms) {
  const v = Math.max(0, Math.round(Number(ms) || 0));
  if (v >= 60000) return fmtMs(v);
  return `${Math.floor(v / 1000)}.${pad(v % 1000, 3)} s`;
}

export function fmtInt(n) {
  const v = Number(n) || 0;
  return v.toLocaleString('en-US');
}

// localInputToRFC3339: a datetime-local value ("2026-11-22T10:00", the
// browser's local time) → RFC 3339 in UTC ("2026-11-22T09:00:00Z").
// Returns "" for an empty value and null for an unparseable one.
export function localInputToRFC3339(value) {
  if (!value) return '';
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(value);
  if (!m) return null;
  // new Date(y, m, d, …) interprets the fields in local time, DST included.
  const d = new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
  if (Number.isNaN(d.getTime())) return null;
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// rfc3339ToLocalInput: the reverse, to put a URL's filter back in the form.
export function rfc3339ToLocalInput(value) {
  const d = parseTime(value);
  if (!d) return '';
  const base = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return d.getSeconds() ? `${base}:${pad(d.getSeconds())}` : base;
}

export function timeZoneName() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
  } catch (_) {
    return 'local time';
  }
}

export const STATUS_LABELS = {
  complete: 'Complete',
  partial: 'Partial',
  interrupted: 'Interrupted',
  recording: 'Recording',
  missing_audio: 'Missing audio',
};

export const STATUS_HINTS = {
  complete: 'Every expected recording is complete',
  partial: 'Some audio is missing',
  interrupted: 'A recording ended without Twilio\u2019s stop message',
  recording: 'A recording is still being written',
  missing_audio: 'The call has no recording at all',
};

// statusBadge: the coloured badge of an interaction or recording status.
export function statusBadge(status) {
  const s = status || 'unknown';
  return el('span', {
    class: `badge status status-${s.replace(/[^a-z_]/g, '')}`,
    text: STATUS_LABELS[s] || s,
    title: STATUS_HINTS[s] || '',
    dataset: { status: s },
  });
}

export function directionLabel(direction) {
  if (direction === 'inbound') return 'Inbound';
  if (direction === 'outbound') return 'Outbound';
  return direction || '—';
}

// customerNumber: the far end of the call (the caller for inbound calls,
// the called party for outbound ones).
export function customerNumber(interaction) {
  return (interaction.direction === 'outbound' ? interaction.to : interaction.from) || '';
}

export function callHref(id) {
  return '/calls/' + encodeURIComponent(id);
}

// copyText copies to the clipboard when the browser allows it; otherwise it
// falls back to a hidden textarea, and failing that does nothing.
export async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch (_) {
    // fall through to the legacy path
  }
  try {
    const ta = el('textarea', { class: 'offscreen', readonly: true, 'aria-hidden': 'true' });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    const ok = document.execCommand('copy');
    ta.remove();
    return ok;
  } catch (_) {
    return false;
  }
}

// copyButton: a small "Copy" button that copies `value`.
export function copyButton(value, label) {
  const btn = el('button', { type: 'button', class: 'btn btn-copy copy', title: `Copy ${label || value}`, 'aria-label': `Copy ${label || value}`, dataset: { copy: value } }, 'Copy');
  btn.addEventListener('click', async (ev) => {
    ev.stopPropagation();
    const ok = await copyText(value);
    btn.textContent = ok ? 'Copied' : 'Copy';
    btn.classList.toggle('copied', ok);
    if (ok) setTimeout(() => { btn.textContent = 'Copy'; btn.classList.remove('copied'); }, 1500);
  });
  return btn;
}
