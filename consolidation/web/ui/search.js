// search.js: the call search page (/).
//
// The filters live in the page URL with the API's own parameter names (times
// as RFC 3339 UTC), so a search can be bookmarked, shared, reloaded and walked
// with back/forward. Submitting the form pushes a new history entry; the page
// always renders what the URL says.

import {
  api, initPage, showError, clearError, el, clear, canSearch, homeFor,
  fmtDateTime, fmtDuration, fmtSecs, statusBadge, directionLabel, customerNumber, callHref,
  localInputToRFC3339, rfc3339ToLocalInput, timeZoneName,
} from './common.js';

const PAGE_SIZE = 50;
const FIELDS = ['from', 'to', 'agent', 'number', 'direction', 'queue', 'status',
  'call_sid', 'task_sid', 'inum', 'min_duration', 'max_duration', 'tag', 'sort'];
const COLUMNS = 8;

const form = document.getElementById('search-form');
const table = document.getElementById('results');
const tbody = table.tBodies[0];
const countEl = document.getElementById('result-count');
const pageInfo = document.getElementById('page-info');
const prevBtn = document.getElementById('prev');
const nextBtn = document.getElementById('next');
const searchBtn = document.getElementById('search-button');

let lastPage = null; // {offset, count, total, capped} of the rendered page
let requestSeq = 0;  // drops responses of superseded searches

for (const tz of document.querySelectorAll('.tz-name')) tz.textContent = timeZoneName();

// ---------------------------------------------------------------------------
// Form ⇄ URL

// paramsFromForm reads the form into API parameters, validating as it goes.
// Throws an Error with a user-facing message on bad input.
function paramsFromForm() {
  const p = new URLSearchParams();
  for (const name of FIELDS) {
    const input = form.elements[name];
    let value = (input.value || '').trim();
    if (!value) {
      if ((name === 'min_duration' || name === 'max_duration') && input.validity && input.validity.badInput) {
        throw new Error('Durations are whole numbers of seconds.');
      }
      continue;
    }
    switch (name) {
      case 'from':
      case 'to': {
        const rfc = localInputToRFC3339(value);
        if (rfc === null) throw new Error(`“${name === 'from' ? 'From' : 'To'}” is not a valid date and time.`);
        p.set(name, rfc);
        break;
      }
      case 'number': {
        const digits = value.replace(/\D/g, '');
        if (digits.length < 3) throw new Error('Customer number: enter at least 3 digits.');
        p.set(name, value);
        break;
      }
      case 'min_duration':
      case 'max_duration':
        if (!/^\d+$/.test(value)) throw new Error('Durations are whole numbers of seconds.');
        p.set(name, value);
        break;
      case 'tag':
        // Several tags may be given, separated by commas or spaces; the API
        // takes one `tag` parameter per tag.
        for (const tag of value.split(/[\s,]+/).filter(Boolean)) p.append('tag', tag);
        break;
      default:
        p.set(name, value);
    }
  }
  if (p.has('from') && p.has('to') && p.get('from') > p.get('to')) {
    throw new Error('“From” must be before “To”.');
  }
  const min = p.get('min_duration');
  const max = p.get('max_duration');
  if (min && max && Number(min) > Number(max)) throw new Error('The minimum duration is above the maximum.');
  return p;
}

// fillForm puts the URL's filters back into the form.
function fillForm(params) {
  for (const name of FIELDS) {
    const input = form.elements[name];
    if (name === 'tag') {
      input.value = params.getAll('tag').join(', ');
    } else if (name === 'from' || name === 'to') {
      input.value = rfc3339ToLocalInput(params.get(name) || '');
    } else if (input.tagName === 'SELECT') {
      const v = params.get(name) || '';
      input.value = [...input.options].some((o) => o.value === v) ? v : input.options[0].value;
    } else {
      input.value = params.get(name) || '';
    }
  }
}

function currentParams() {
  return new URLSearchParams(location.search);
}

function navigate(params) {
  const qs = params.toString();
  history.pushState(null, '', qs ? `/?${qs}` : '/');
  run();
}

// ---------------------------------------------------------------------------
// Rendering

function messageRow(text, cls) {
  return el('tr', { class: cls }, el('td', { colspan: COLUMNS, text }));
}

function renderRow(it) {
  const href = callHref(it.id);
  const agents = it.agents || [];
  const tags = it.tags || [];
  const customer = customerNumber(it);
  return el('tr', { class: 'result-row', dataset: { id: it.id } },
    el('td', { class: 'col-start nowrap' },
      el('a', { class: 'open-call', href, title: `Open call ${it.id}` }, fmtDateTime(it.start))),
    el('td', { class: 'col-duration num mono' }, fmtDuration(it.duration_ms)),
    el('td', { class: 'col-direction' },
      el('span', { class: `dir dir-${it.direction || 'unknown'}` }, directionLabel(it.direction))),
    el('td', { class: 'col-customer mono nowrap' }, customer || '—'),
    el('td', { class: 'col-agents' },
      agents.length ? agents.map((a) => el('div', { class: 'agent', title: a }, a)) : el('span', { class: 'muted' }, '—')),
    el('td', { class: 'col-queue' }, it.queue || '—'),
    el('td', { class: 'col-status' }, statusBadge(it.status),
      it.gap_ms > 0 ? el('span', { class: 'gap-flag mono', dataset: { gapMs: String(it.gap_ms) },
        title: 'Audio lost between a failed stream and its replacement' }, `${fmtSecs(it.gap_ms)} lost`) : null),
    el('td', { class: 'col-tags' }, tags.map((t) => el('span', { class: 'tag' }, t))),
  );
}

function render(data, offset) {
  const items = Array.isArray(data.items) ? data.items : [];
  const total = Number(data.total) || 0;
  const capped = Boolean(data.total_capped);
  clear(tbody);
  if (!items.length) {
    tbody.append(messageRow(offset > 0
      ? 'No more calls match these filters.'
      : 'No calls match these filters. Widen the time range or clear some filters.', 'empty-row'));
  } else {
    for (const it of items) tbody.append(renderRow(it));
  }
  const shown = total + (capped ? '+' : '');
  countEl.textContent = `${shown} ${total === 1 && !capped ? 'call' : 'calls'}`;
  pageInfo.textContent = items.length ? `${offset + 1}–${offset + items.length} of ${shown}` : '';
  lastPage = { offset, count: items.length, total, capped };
  prevBtn.disabled = offset <= 0;
  nextBtn.disabled = capped ? items.length < PAGE_SIZE : offset + items.length >= total;
  table.dataset.state = 'done';
}

// run searches with the filters in the page URL.
async function run() {
  const params = currentParams();
  fillForm(params);
  const offset = Math.max(0, parseInt(params.get('offset') || '0', 10) || 0);
  const query = new URLSearchParams();
  for (const [k, v] of params) if (k !== 'offset' && k !== 'limit' && v !== '') query.append(k, v);
  if (!query.has('sort')) query.set('sort', form.elements.sort.value || 'start');
  query.set('limit', String(PAGE_SIZE));
  query.set('offset', String(offset));

  const seq = ++requestSeq;
  clearError();
  table.dataset.state = 'loading';
  table.setAttribute('aria-busy', 'true');
  searchBtn.disabled = true;
  countEl.textContent = 'Searching…';
  if (!tbody.querySelector('.result-row')) {
    clear(tbody);
    tbody.append(messageRow('Searching…', 'loading-row'));
  }
  try {
    const data = await api('/api/interactions', { query });
    if (seq !== requestSeq) return;
    render(data || {}, offset);
  } catch (err) {
    if (seq !== requestSeq) return;
    showError(err);
    clear(tbody);
    tbody.append(messageRow('The search failed. See the message above.', 'empty-row error-row'));
    countEl.textContent = 'Search failed';
    pageInfo.textContent = '';
    prevBtn.disabled = true;
    nextBtn.disabled = true;
    table.dataset.state = 'error';
  } finally {
    if (seq === requestSeq) {
      table.removeAttribute('aria-busy');
      searchBtn.disabled = false;
    }
  }
}

// ---------------------------------------------------------------------------
// Events

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  let params;
  try {
    params = paramsFromForm();
  } catch (err) {
    showError(err);
    return;
  }
  navigate(params);
});

document.getElementById('reset').addEventListener('click', () => {
  form.reset();
  navigate(new URLSearchParams());
});

function goToOffset(offset) {
  const params = currentParams();
  if (offset > 0) params.set('offset', String(offset));
  else params.delete('offset');
  navigate(params);
  table.scrollIntoView({ block: 'nearest' });
}

prevBtn.addEventListener('click', () => {
  if (lastPage) goToOffset(Math.max(0, lastPage.offset - PAGE_SIZE));
});
nextBtn.addEventListener('click', () => {
  if (lastPage) goToOffset(lastPage.offset + PAGE_SIZE);
});

// A click anywhere on a row opens the call, unless the user was selecting
// text or clicked the link itself (which navigates on its own).
tbody.addEventListener('click', (ev) => {
  if (ev.target.closest('a')) return;
  const row = ev.target.closest('tr.result-row');
  if (!row) return;
  const sel = window.getSelection();
  if (sel && sel.toString()) return;
  const link = row.querySelector('a.open-call');
  if (!link) return;
  if (ev.ctrlKey || ev.metaKey || ev.shiftKey) window.open(link.href, '_blank', 'noopener');
  else location.assign(link.href);
});

window.addEventListener('popstate', run);

// ---------------------------------------------------------------------------
// Start

initPage('search').then((session) => {
  const role = session.user && session.user.role;
  if (!canSearch(role)) {
    location.replace(homeFor(role));
    return;
  }
  run();
}).catch(() => { /* initPage already showed the error */ });
