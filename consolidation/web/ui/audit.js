// audit.js: the audit trail (/audit), for administrators and auditors.
//
// Like the search page, the filters live in the page URL (times as RFC 3339
// UTC). "Verify chain" asks the server to re-hash the whole trail.

import {
  api, ApiError, initPage, showError, clearError, el, clear, canAudit, callHref,
  fmtDateTime, fmtInt, localInputToRFC3339, rfc3339ToLocalInput, timeZoneName,
} from './common.js';

const PAGE_SIZE = 100;
const FIELDS = ['type', 'actor', 'target', 'from', 'to'];
const COLUMNS = 8;
const TYPE_LABELS = {
  login_ok: 'Sign-in', login_failed: 'Failed sign-in', logout: 'Sign-out', search: 'Search', view: 'View',
  playback: 'Playback', export: 'Export', access_denied: 'Access denied', user_added: 'User added', user_changed: 'User changed',
};
// Event types whose target is a call (interaction id or INUM).
const CALL_TYPES = new Set(['view', 'playback', 'export', 'access_denied']);

const form = document.getElementById('audit-form');
const table = document.getElementById('audit-results');
const tbody = table.tBodies[0];
const countEl = document.getElementById('audit-count');
const pageInfo = document.getElementById('audit-page-info');
const prevBtn = document.getElementById('audit-prev');
const nextBtn = document.getElementById('audit-next');
const verifyBtn = document.getElementById('verify');
const verifyStatus = document.getElementById('verify-status');

let lastPage = null;
let requestSeq = 0;

for (const tz of document.querySelectorAll('.tz-name')) tz.textContent = timeZoneName();

function paramsFromForm() {
  const p = new URLSearchParams();
  for (const name of FIELDS) {
    const value = (form.elements[name].value || '').trim();
    if (!value) continue;
    if (name === 'from' || name === 'to') {
      const rfc = localInputToRFC3339(value);
      if (rfc === null) throw new Error(`“${name === 'from' ? 'From' : 'To'}” is not a valid date and time.`);
      p.set(name, rfc);
    } else {
      p.set(name, value);
    }
  }
  if (p.has('from') && p.has('to') && p.get('from') > p.get('to')) throw new Error('“From” must be before “To”.');
  return p;
}

function fillForm(params) {
  for (const name of FIELDS) {
    const input = form.elements[name];
    const v = params.get(name) || '';
    if (name === 'from' || name === 'to') input.value = rfc3339ToLocalInput(v);
    else if (input.tagName === 'SELECT') input.value = [...input.options].some((o) => o.value === v) ? v : '';
    else input.value = v;
  }
}

function navigate(params) {
  const qs = params.toString();
  history.pushState(null, '', qs ? `/audit?${qs}` : '/audit');
  run();
}

// looksLikeCall: an interaction id (task SID "WT…" or "call:CA…"), which
// the call page can open. INUM targets (digits) are left as text.
function looksLikeCall(target) {
  return /^(WT[0-9a-fA-F]{32}|WT\w+|call:CA\w+)$/.test(target || '');
}

function renderTarget(entry) {
  const t = entry.target || '';
  if (!t) return el('span', { class: 'muted' }, '—');
  if (CALL_TYPES.has(entry.type) && looksLikeCall(t)) {
    return el('a', { href: callHref(t), class: 'mono target-link', title: `Open call ${t}` }, t);
  }
  return el('span', { class: 'mono' }, t);
}

function renderDetails(details) {
  const keys = details ? Object.keys(details).sort() : [];
  if (!keys.length) return el('span', { class: 'muted' }, '—');
  return el('ul', { class: 'kv' }, keys.map((k) => el('li', null,
    el('span', { class: 'k' }, k), '=', el('span', { class: 'v' }, String(details[k])))));
}

function renderRow(e) {
  const hash = e.hash || '';
  return el('tr', { class: 'audit-row', dataset: { type: e.type || '', seq: String(e.seq) } },
    el('td', { class: 'num mono' }, String(e.seq)),
    el('td', { class: 'nowrap mono', title: e.time }, fmtDateTime(e.time)),
    el('td', null, el('span', { class: `badge ev ev-${(e.type || '').replace(/[^a-z_]/g, '')}` }, TYPE_LABELS[e.type] || e.type)),
    el('td', { class: 'col-actor' },
      el('div', { class: 'actor' }, e.actor || '—', e.role ? el('span', { class: 'muted' }, ` (${e.role})`) : null),
      e.remote ? el('div', { class: 'muted small mono' }, e.remote) : null),
    el('td', { class: 'col-target' }, renderTarget(e)),
    el('td', { class: 'col-reason' }, e.reason || ''),
    el('td', { class: 'col-details' }, renderDetails(e.details)),
    el('td', { class: 'mono hash', title: hash ? `hash ${hash}\nprev ${e.prev || ''}` : '' }, hash.slice(0, 12)),
  );
}

function render(data, offset) {
  const items = Array.isArray(data.items) ? data.items : [];
  const total = Number(data.total) || 0;
  clear(tbody);
  if (!items.length) {
    tbody.append(el('tr', { class: 'empty-row' }, el('td', { colspan: COLUMNS }, 'No audit entries match these filters.')));
  } else {
    for (const e of items) tbody.append(renderRow(e));
  }
  countEl.textContent = `${fmtInt(total)} ${total === 1 ? 'entry' : 'entries'}`;
  pageInfo.textContent = items.length ? `${offset + 1}–${offset + items.length} of ${fmtInt(total)}` : '';
  lastPage = { offset, count: items.length, total };
  prevBtn.disabled = offset <= 0;
  nextBtn.disabled = offset + items.length >= total;
  table.dataset.state = 'done';
}

async function run() {
  const params = new URLSearchParams(location.search);
  fillForm(params);
  const offset = Math.max(0, parseInt(params.get('offset') || '0', 10) || 0);
  const query = new URLSearchParams();
  for (const name of FIELDS) if (params.get(name)) query.set(name, params.get(name));
  query.set('limit', String(PAGE_SIZE));
  query.set('offset', String(offset));

  const seq = ++requestSeq;
  clearError();
  table.dataset.state = 'loading';
  table.setAttribute('aria-busy', 'true');
  countEl.textContent = 'Loading…';
  try {
    const data = await api('/api/audit', { query });
    if (seq !== requestSeq) return;
    render(data || {}, offset);
  } catch (err) {
    if (seq !== requestSeq) return;
    showError(err);
    clear(tbody);
    tbody.append(el('tr', { class: 'empty-row error-row' }, el('td', { colspan: COLUMNS }, 'The audit trail could not be loaded. See the message above.')));
    countEl.textContent = 'Failed to load';
    pageInfo.textContent = '';
    prevBtn.disabled = true;
    nextBtn.disabled = true;
    table.dataset.state = 'error';
  } finally {
    if (seq === requestSeq) table.removeAttribute('aria-busy');
  }
}

async function verify() {
  verifyBtn.disabled = true;
  verifyStatus.hidden = false;
  verifyStatus.className = 'verify-status';
  verifyStatus.textContent = 'Verifying the hash chain…';
  try {
    const res = await api('/api/audit/verify');
    clear(verifyStatus);
    verifyStatus.className = 'verify-status ok';
    const last = (res && res.last_hash) || '';
    verifyStatus.append(
      el('strong', null, 'Chain intact'),
      `: ${fmtInt(res && res.entries)} entries verified. Last hash `,
      el('code', { class: 'hash-full', title: last }, last),
    );
  } catch (err) {
    verifyStatus.className = 'verify-status bad';
    clear(verifyStatus);
    if (err instanceof ApiError && err.status === 409) {
      verifyStatus.append(el('strong', null, 'Chain broken'), `: ${err.message}`);
    } else {
      verifyStatus.append(el('strong', null, 'Verification failed'), `: ${err.message}`);
      showError(err);
    }
  } finally {
    verifyBtn.disabled = false;
  }
}

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  try {
    navigate(paramsFromForm());
  } catch (err) {
    showError(err);
  }
});
document.getElementById('audit-reset').addEventListener('click', () => {
  form.reset();
  navigate(new URLSearchParams());
});

function goToOffset(offset) {
  const params = new URLSearchParams(location.search);
  if (offset > 0) params.set('offset', String(offset));
  else params.delete('offset');
  navigate(params);
}
prevBtn.addEventListener('click', () => { if (lastPage) goToOffset(Math.max(0, lastPage.offset - PAGE_SIZE)); });
nextBtn.addEventListener('click', () => { if (lastPage) goToOffset(lastPage.offset + PAGE_SIZE); });
verifyBtn.addEventListener('click', verify);
window.addEventListener('popstate', run);

initPage('audit').then((session) => {
  const role = session.user && session.user.role;
  if (!canAudit(role)) {
    showError('The audit trail is available to administrators and auditors only.');
    verifyBtn.disabled = true;
    clear(tbody);
    tbody.append(el('tr', { class: 'empty-row' }, el('td', { colspan: COLUMNS }, 'You are not allowed to see the audit trail.')));
    countEl.textContent = '';
    table.dataset.state = 'error';
    return;
  }
  run();
}).catch(() => { /* initPage already showed the error */ });
