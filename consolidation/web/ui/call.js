// call.js: one call (/calls/{id}): summary, player (with a stream's
// replicas and a merged recording's supply strip), timeline (with an
// overview bar shading the audio lost at stream restarts), frame accounting
// (with a merged recording's copies), Twilio identifiers and export.

import {
  api, ApiError, initPage, showError, clearError, el, clear, canSearch,
  fmtDateTime, fmtTime, fmtDuration, fmtClock, fmtMs, fmtInt,
  statusBadge, directionLabel, customerNumber, copyButton, fmtSecs,
} from './common.js';
import { Player } from './player.js';
import { SupplyStrip, isMerged } from './supply.js';
import { replicaOf, alternatesOf, renderReplicaBox, copiesTable, renderOverview } from './streams.js';

// The interaction id is everything after /calls/, URL-decoded. Ids may
// contain ":" ("call:CA…" for calls without a task).
function interactionId() {
  const raw = location.pathname.replace(/^\/calls\//, '').replace(/\/+$/, '');
  try {
    return decodeURIComponent(raw);
  } catch (_) {
    return raw;
  }
}

const id = interactionId();
const state = {
  interaction: null,
  recordings: [],
  timeline: [],
  current: 0, // index of the recording in the player
  replicas: [], // interaction.replicas: streams recorded twice
  alternates: new Set(), // INUMs of replicas other than the one to play
};
let player = null;
let supply = null; // the supply strip of a merged recording

const TRACK_LABELS = { inbound: 'Customer (inbound)', outbound: 'Agent (outbound)' };
const KIND_LABELS = {
  offered: 'Offered', answered: 'Answered', hold: 'Hold', wrapup: 'Wrap-up', ended: 'Ended',
  transfer: 'Transfer', recording_started: 'Rec. started', recording_stopped: 'Rec. stopped',
  gap: 'Gap', failover: 'Failover', restart: 'Restart', interrupted: 'Interrupted',
  restart_gap: 'Audio lost', copy_joined: 'Copy joined', copy_ended: 'Copy ended',
};
const KIND_CLASS = {
  offered: 'flow', answered: 'flow', hold: 'hold', wrapup: 'flow', ended: 'flow', transfer: 'transfer',
  recording_started: 'rec', recording_stopped: 'rec',
  gap: 'problem', interrupted: 'problem', failover: 'warn', restart: 'warn',
  restart_gap: 'problem', copy_joined: 'rec', copy_ended: 'warn',
};
const END_REASONS = {
  stop: 'Twilio stop message', socket_closed: 'socket closed without stop', protocol_error: 'protocol error',
  timeout: 'idle timeout', shutdown: 'recorder shut down', crash: 'recorder crashed (repaired on restart)',
  write_error: 'write error', link_lost: 'adapter link lost', pair_ended: 'still streaming when the other copy stopped',
};

// ---------------------------------------------------------------------------
// Summary

// metaItem: one label-over-value cell of the summary (a <div> grouping a
// dt/dd pair is valid inside <dl>).
function metaItem(label, ...value) {
  return el('div', { class: 'meta-item' }, el('dt', { text: label }), el('dd', null, ...value));
}

function renderHeader(it) {
  const customer = customerNumber(it);
  document.title = `Call ${customer || it.id} — callrec`;
  document.getElementById('call-customer').textContent = customer || 'Unknown number';
  clear(document.getElementById('call-status')).append(statusBadge(it.status));

  const meta = clear(document.getElementById('call-meta'));
  const agents = it.agents || [];
  const tags = it.tags || [];
  meta.append(
    metaItem('Direction', el('span', { class: `dir dir-${it.direction || 'unknown'}` }, directionLabel(it.direction))),
    metaItem('Start', el('span', { class: 'nowrap', title: it.start }, fmtDateTime(it.start))),
    metaItem('Duration', el('span', { class: 'mono' }, fmtDuration(it.duration_ms))),
    metaItem('Queue', it.queue || '—'),
    metaItem(agents.length > 1 ? 'Agents' : 'Agent',
      agents.length ? agents.map((a) => el('span', { class: 'agent-chip' }, a)) : '—'),
    metaItem('Tags', tags.length ? tags.map((t) => el('span', { class: 'tag' }, t)) : el('span', { class: 'muted' }, 'none')),
    metaItem('Other party', el('span', { class: 'mono' }, (it.direction === 'outbound' ? it.from : it.to) || '—')),
    metaItem('Teams', (it.teams || []).join(', ') || '—'),
  );
}

// ---------------------------------------------------------------------------
// Recordings and player

function recordingLabel(rec, i, n) {
  const parts = [`Recording ${i + 1}${n > 1 ? ` of ${n}` : ''}`, `INUM ${rec.inum}`, rec.state || ''];
  const dur = rec.audio && rec.audio.duration_ms;
  if (dur !== undefined) parts.push(fmtDuration(dur));
  const r = replicaOf(state.replicas, rec.inum);
  if (r) parts.push(`replica ${r.replica.replica}${state.alternates.has(rec.inum) ? ' (twin)' : ' (plays)'}`);
  if (isMerged(rec)) parts.push(`${rec.accounting.copies.length} streams merged`);
  if (rec.previous_inum) parts.push(`continues ${rec.previous_inum}`);
  return parts.filter(Boolean).join(' · ');
}

// markersFor: the timeline entries that can be placed on a recording's
// waveform, in its audio time.
function markersFor(rec) {
  const single = state.recordings.length === 1;
  return state.timeline
    .filter((e) => Number.isFinite(Number(e.offset_ms)) && e.offset_ms !== null && (e.inum === rec.inum || (!e.inum && single)))
    .map((e) => ({ ms: Number(e.offset_ms), kind: e.kind, label: [KIND_LABELS[e.kind] || e.kind, e.label, e.agent].filter(Boolean).join(' — ') }));
}

function renderRecordingInfo(rec) {
  const info = clear(document.getElementById('recording-info'));
  info.append(statusBadge(rec.state));
  const bits = [];
  if (rec.end_reason) bits.push(`ended: ${END_REASONS[rec.end_reason] || rec.end_reason}`);
  if (rec.started_at) bits.push(`started ${fmtTime(rec.started_at)}`);
  if (rec.node !== undefined) bits.push(`node ${rec.node}`);
  if (rec.previous_inum) bits.push(`failover continuation of INUM ${rec.previous_inum}`);
  if (rec.audio && rec.audio.offset_ms) bits.push(`starts ${fmtMs(rec.audio.offset_ms)} into the stream`);
  if (isMerged(rec)) bits.push(`merged from ${rec.accounting.copies.length} streams of a dual-stream pair`);
  info.append(el('span', { class: 'muted' }, bits.join(' · ')));
}

function selectRecording(index, opts = {}) {
  const rec = state.recordings[index];
  if (!rec) return;
  state.current = index;
  const select = document.getElementById('recording-select');
  select.value = rec.inum;
  renderRecordingInfo(rec);
  renderReplicaBox(document.getElementById('replica-box'), rec, state.replicas, state.recordings,
    (i) => selectRecording(i, { seekTo: player.audio.currentTime }));
  player.load(rec, markersFor(rec), opts);
  supply.show(rec);
  for (const sec of document.querySelectorAll('#accounting .acct')) {
    sec.classList.toggle('current', sec.dataset.inum === rec.inum);
  }
  for (const b of document.querySelectorAll('#call-overview .ov-rec')) {
    b.classList.toggle('current', b.dataset.inum === rec.inum);
  }
}

// seekInRecording plays from `ms` of audio time in the recording `inum`,
// switching the player to it first when needed.
function seekInRecording(inum, ms) {
  const index = inum ? state.recordings.findIndex((r) => r.inum === inum) : state.current;
  if (index < 0) {
    showError(`Recording ${inum} is not available for this call.`);
    return;
  }
  const seconds = Math.max(0, ms / 1000);
  if (index !== state.current) selectRecording(index, { seekTo: seconds });
  else player.seekTo(seconds);
  const box = document.getElementById('player');
  const rect = box.getBoundingClientRect();
  if (rect.top < 0 || rect.bottom > window.innerHeight) box.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
}

function renderPlayer() {
  const recs = state.recordings;
  const select = clear(document.getElementById('recording-select'));
  const body = document.getElementById('player-body');
  const none = document.getElementById('no-recording');
  if (!recs.length) {
    body.hidden = true;
    none.hidden = false;
    select.hidden = true;
    return;
  }
  recs.forEach((rec, i) => select.append(el('option', { value: rec.inum }, recordingLabel(rec, i, recs.length))));
  select.hidden = recs.length < 2;
  select.addEventListener('change', () => {
    const index = recs.findIndex((r) => r.inum === select.value);
    if (index >= 0) selectRecording(index);
  });
  player = new Player({ onError: showError });
  supply = new SupplyStrip({
    canvas: document.getElementById('supply'), legend: document.getElementById('supply-legend'),
    spanOf: (rec) => player.spanMs() || (rec.audio && rec.audio.duration_ms) || 0,
    seek: (seconds) => player.seekTo(seconds),
  });
  document.getElementById('audio').addEventListener('durationchange', () => supply.redraw());
  // The recording to play first: not a replica's twin.
  selectRecording(Math.max(0, recs.findIndex((r) => !state.alternates.has(r.inum))));
}

// ---------------------------------------------------------------------------
// Timeline

function renderTimeline() {
  const list = clear(document.getElementById('timeline'));
  const entries = state.timeline;
  if (!entries.length) {
    list.append(el('li', { class: 'timeline-empty muted' }, 'No events recorded for this call.'));
    return;
  }
  const multi = state.recordings.length > 1;
  for (const e of entries) {
    const recIndex = e.inum ? state.recordings.findIndex((r) => r.inum === e.inum) : (state.recordings.length === 1 ? 0 : -1);
    const seekable = recIndex >= 0 && Number.isFinite(Number(e.offset_ms)) && e.offset_ms !== null;
    const kind = e.kind || 'event';
    const content = [
      el('span', { class: 'tl-time mono', title: fmtDateTime(e.at) }, fmtTime(e.at)),
      el('span', { class: `kind kind-${KIND_CLASS[kind] || 'other'}`, dataset: { kind } }, KIND_LABELS[kind] || kind),
      el('span', { class: 'tl-text' },
        el('span', { class: 'tl-label' }, e.label || ''),
        e.agent && !(e.label || '').includes(e.agent) ? el('span', { class: 'tl-agent' }, e.agent) : null),
      seekable
        ? el('span', { class: 'tl-pos mono', title: `Play from here (recording ${recIndex + 1}, INUM ${e.inum || state.recordings[recIndex].inum})` },
          `▸ ${fmtClock(Number(e.offset_ms) / 1000)}${multi ? ` · rec ${recIndex + 1}` : ''}`)
        : null,
    ];
    if (kind === 'restart_gap') {
      content.push(el('span', { class: 'tl-lost mono' }, `${fmtSecs(Number(e.duration_ms) || 0)} of audio lost, until ${fmtTime(e.end)}`));
    }
    const attrs = { class: `timeline-entry${seekable ? ' seekable' : ''}${kind === 'restart_gap' ? ' timeline-gap' : ''}`, dataset: { kind } };
    if (e.inum) attrs.dataset.inum = e.inum;
    if (seekable) attrs.dataset.offsetMs = String(e.offset_ms);
    const li = el('li', attrs);
    if (seekable) {
      const btn = el('button', { type: 'button', class: 'tl-row' }, ...content);
      btn.addEventListener('click', () => {
        for (const other of list.querySelectorAll('.timeline-entry.active')) other.classList.remove('active');
        li.classList.add('active');
        seekInRecording(state.recordings[recIndex].inum, Number(e.offset_ms));
      });
      li.append(btn);
    } else {
      li.append(el('div', { class: 'tl-row' }, ...content));
    }
    list.append(li);
  }
}

// ---------------------------------------------------------------------------
// Agent segments

function renderSegments() {
  const box = clear(document.getElementById('segments'));
  const segs = (state.interaction && state.interaction.segments) || [];
  if (!segs.length) {
    box.append(el('p', { class: 'muted small' }, 'No agent segments.'));
    return;
  }
  const tbody = el('tbody');
  for (const s of segs) {
    const recIndex = s.inum ? state.recordings.findIndex((r) => r.inum === s.inum) : -1;
    let rec;
    if (!s.recorded) {
      rec = el('span', { class: 'badge status-missing_audio', title: 'No recording covers this segment' }, 'Not recorded');
    } else if (recIndex >= 0) {
      rec = el('button', { type: 'button', class: 'link-button mono', title: `Play from the segment start in INUM ${s.inum}` },
        `▸ ${fmtClock((s.offset_ms || 0) / 1000)}${state.recordings.length > 1 ? ` · rec ${recIndex + 1}` : ''}`);
      rec.addEventListener('click', () => seekInRecording(s.inum, s.offset_ms || 0));
    } else {
      rec = el('span', { class: 'mono small' }, s.inum || 'recorded');
    }
    tbody.append(el('tr', { class: s.recorded ? '' : 'row-missing' },
      el('td', { class: 'seg-agent' },
        el('div', { class: 'agent', title: s.agent || '' }, s.agent || '—'),
        el('div', { class: 'muted small' },
          el('span', { class: 'mono' }, `${fmtTime(s.start)}–${s.end ? fmtTime(s.end) : '…'}`),
          s.team ? ` · team ${s.team}` : '')),
      el('td', { class: 'nowrap seg-audio' }, rec),
    ));
  }
  box.append(el('table', { class: 'data-table compact seg-table' },
    el('thead', null, el('tr', null, el('th', null, 'Agent · connected'), el('th', null, 'Audio'))),
    tbody));
}

// ---------------------------------------------------------------------------
// Frame accounting

function countCell(value, { bad = false } = {}) {
  const v = Number(value) || 0;
  return el('td', { class: `num mono${bad && v > 0 ? ' cell-bad' : ''}${v === 0 ? ' zero' : ''}` }, fmtInt(v));
}

function recordingComplete(acc) {
  const tracks = acc.tracks || [];
  const missing = tracks.reduce((n, t) => n + (Number(t.missing) || 0), 0);
  const overflow = tracks.reduce((n, t) => n + (Number(t.overflow_drop) || 0), 0);
  const tail = Number(acc.messages && acc.messages.tail_missing) || 0;
  return { missing, overflow, tail, ok: tracks.length > 0 && missing === 0 && overflow === 0 && tail === 0 };
}

function renderAccountingFor(rec, i) {
  const acc = rec.accounting || {};
  const tracks = acc.tracks || [];
  const offset = (rec.audio && rec.audio.offset_ms) || 0;
  const sec = el('section', { class: 'acct', dataset: { inum: rec.inum } });
  sec.append(el('h3', { class: 'acct-title' },
    `Recording ${i + 1} `, el('span', { class: 'mono muted' }, `INUM ${rec.inum}`), ' ', statusBadge(rec.state)));

  const sum = recordingComplete(acc);
  if (!tracks.length) {
    sec.append(el('p', { class: 'acct-summary warn' }, 'No frame accounting is available for this recording.'));
  } else if (sum.ok) {
    sec.append(el('p', { class: 'acct-summary ok' }, 'Every expected frame was recorded'));
  } else {
    const parts = [];
    if (sum.missing) parts.push(`${fmtInt(sum.missing)} frame${sum.missing === 1 ? '' : 's'} missing`);
    if (sum.overflow) parts.push(`${fmtInt(sum.overflow)} frame${sum.overflow === 1 ? '' : 's'} dropped on overflow`);
    if (sum.tail) parts.push(`${fmtInt(sum.tail)} frame${sum.tail === 1 ? '' : 's'} lost after the last received chunk`);
    sec.append(el('p', { class: 'acct-summary bad' }, `Audio is missing: ${parts.join(', ')}. Gaps are shaded red on the waveform.`));
  }

  if (tracks.length) {
    const body = el('tbody');
    for (const t of tracks) {
      const gaps = (t.gaps || []).length + (Number(t.gaps_omitted) || 0);
      body.append(el('tr', { class: Number(t.missing) > 0 ? 'row-missing' : '' },
        el('th', { scope: 'row' }, TRACK_LABELS[t.track] || t.track),
        countCell(t.expected), countCell(t.received), countCell(t.missing, { bad: true }),
        countCell(t.duplicates), countCell(t.out_of_order), countCell(t.overflow_drop, { bad: true }),
        countCell(gaps, { bad: true })));
    }
    sec.append(el('div', { class: 'table-wrap' }, el('table', { class: 'data-table acct-table' },
      el('thead', null, el('tr', null,
        el('th', { scope: 'col' }, 'Track'), el('th', { scope: 'col', class: 'num' }, 'Expected'),
        el('th', { scope: 'col', class: 'num' }, 'Received'), el('th', { scope: 'col', class: 'num' }, 'Missing'),
        el('th', { scope: 'col', class: 'num' }, 'Duplicates'), el('th', { scope: 'col', class: 'num' }, 'Out of order'),
        el('th', { scope: 'col', class: 'num' }, 'Overflow drops'), el('th', { scope: 'col', class: 'num' }, 'Gaps'))),
      body)));
  }

  if (isMerged(rec)) sec.append(...copiesTable(rec, { tracks: TRACK_LABELS, endReasons: END_REASONS }));

  // Stream-level facts.
  const msgs = acc.messages || {};
  const facts = el('dl', { class: 'facts' });
  const fact = (label, value, bad) => facts.append(el('div', { class: `fact${bad ? ' fact-bad' : ''}` }, el('dt', null, label), el('dd', { class: 'mono' }, value)));
  fact('Media messages received', fmtInt(msgs.media_seen));
  if (msgs.media_sent) fact('Media messages Twilio sent', fmtInt(msgs.media_sent), msgs.media_sent > msgs.media_seen);
  fact('Tail missing (frames)', fmtInt(msgs.tail_missing), Number(msgs.tail_missing) > 0);
  fact('Late frames patched in place', fmtInt(acc.patched));
  if (rec.end_reason) fact('End', END_REASONS[rec.end_reason] ? `${rec.end_reason} (${END_REASONS[rec.end_reason]})` : rec.end_reason, rec.end_reason !== 'stop');
  if (rec.end_detail) fact('End detail', rec.end_detail);
  if (offset) fact('Audio starts at stream time', fmtMs(offset));
  if (rec.interruption) {
    const r = rec.interruption;
    fact('Repaired after crash', `${fmtDateTime(r.repaired_at)}: ${fmtInt(r.recovered_data_bytes)} bytes recovered, ${fmtInt(r.truncated_bytes)} truncated`, true);
  }
  sec.append(facts);

  // Gap list.
  const gapRows = [];
  for (const t of tracks) {
    for (const g of t.gaps || []) {
      const audioStart = (g.start_ms || 0) - offset;
      const seekBtn = el('button', { type: 'button', class: 'link-button mono', title: 'Play from just before this gap' }, `▸ ${fmtMs(audioStart)}`);
      seekBtn.addEventListener('click', () => seekInRecording(rec.inum, Math.max(0, audioStart - 2000)));
      gapRows.push(el('tr', { class: 'gap-row' },
        el('td', null, TRACK_LABELS[t.track] || t.track),
        el('td', null, el('span', { class: `cause cause-${g.cause}` }, g.cause || '—')),
        el('td', { class: 'mono nowrap' }, g.from_chunk ? `${g.from_chunk}–${g.to_chunk}` : '—'),
        el('td', { class: 'num mono' }, fmtInt(g.frames)),
        el('td', { class: 'mono nowrap' }, `${fmtInt(g.start_ms)}–${fmtInt(g.end_ms)} ms`),
        el('td', { class: 'num mono' }, fmtInt((g.end_ms || 0) - (g.start_ms || 0))),
        el('td', { class: 'nowrap' }, seekBtn)));
    }
  }
  const omitted = tracks.reduce((n, t) => n + (Number(t.gaps_omitted) || 0), 0);
  if (gapRows.length || omitted) {
    sec.append(el('h4', { class: 'acct-sub' }, 'Gaps'));
    if (gapRows.length) {
      sec.append(el('div', { class: 'table-wrap' }, el('table', { class: 'data-table compact gap-table' },
        el('thead', null, el('tr', null, el('th', null, 'Track'), el('th', null, 'Cause'), el('th', null, 'Chunks'),
          el('th', { class: 'num' }, 'Frames'), el('th', null, 'Stream time'), el('th', { class: 'num' }, 'Length (ms)'), el('th', null, 'Audio position'))),
        el('tbody', null, gapRows))));
    }
    if (omitted) sec.append(el('p', { class: 'muted small' }, `${fmtInt(omitted)} further gap${omitted === 1 ? '' : 's'} not listed.`));
  }

  // Stream errors.
  const errors = acc.errors || [];
  const counts = acc.error_counts || {};
  if (errors.length || Object.keys(counts).length) {
    sec.append(el('h4', { class: 'acct-sub' }, 'Stream errors'));
    if (Object.keys(counts).length) {
      sec.append(el('p', { class: 'small' }, Object.keys(counts).sort().map((k) => el('span', { class: 'tag tag-bad' }, `${k} × ${counts[k]}`))));
    }
    if (errors.length) {
      sec.append(el('div', { class: 'table-wrap' }, el('table', { class: 'data-table compact' },
        el('thead', null, el('tr', null, el('th', null, 'Time'), el('th', null, 'Kind'), el('th', null, 'Detail'))),
        el('tbody', null, errors.map((e) => el('tr', null,
          el('td', { class: 'mono nowrap' }, fmtTime(e.at)), el('td', { class: 'mono' }, e.kind || ''), el('td', { class: 'wrap-anywhere' }, e.detail || '')))))));
    }
  }
  return sec;
}

function renderAccounting() {
  const box = clear(document.getElementById('accounting'));
  if (!state.recordings.length) {
    box.append(el('p', { class: 'acct-summary bad' }, 'No recording exists for this call: no audio was captured.'));
    return;
  }
  state.recordings.forEach((rec, i) => box.append(renderAccountingFor(rec, i)));
}

// ---------------------------------------------------------------------------
// Identifiers

function renderIds() {
  const dl = clear(document.getElementById('ids'));
  const it = state.interaction;
  const seen = new Set();
  const row = (label, value, cls) => {
    if (!value) return;
    dl.append(el('div', { class: `id-row${cls ? ` ${cls}` : ''}` },
      el('dt', null, label),
      el('dd', null, el('span', { class: 'id-value mono' }, value), copyButton(value, label))));
  };
  if (it.id && it.id !== it.task_sid) row('Interaction ID', it.id);
  row('Task SID', it.task_sid);
  row('Call SID', it.call_sid);
  row('Conference SID', it.conference_sid);
  const accounts = [...new Set(state.recordings.map((r) => r.stream && r.stream.account_sid).filter(Boolean))];
  accounts.forEach((a) => row('Account SID', a));
  seen.add(it.call_sid);
  state.recordings.forEach((rec, i) => {
    const n = state.recordings.length > 1 ? ` (rec ${i + 1})` : '';
    const r = replicaOf(state.replicas, rec.inum);
    dl.append(el('div', { class: 'id-group' }, `Recording ${i + 1}${r ? ` · replica ${r.replica.replica}` : ''}`));
    row(`INUM${n}`, rec.inum);
    if (rec.stream) {
      row(`Stream SID${n}`, rec.stream.stream_sid);
      if (rec.stream.call_sid && !seen.has(rec.stream.call_sid)) row(`Stream call SID${n}`, rec.stream.call_sid);
    }
    if (rec.audio && rec.audio.sha256) row(`Audio SHA-256${n}`, rec.audio.sha256, 'id-hash');
  });
  // INUMs of the interaction without a recording record (should not happen, but never hide one).
  for (const inum of it.inums || []) {
    if (!state.recordings.some((r) => r.inum === inum)) row('INUM (no recording metadata)', inum);
  }
}

// ---------------------------------------------------------------------------
// Export

// filenameFrom reads the download name from Content-Disposition
// (filename*=UTF-8''… or filename="…"), keeping only safe characters.
function filenameFrom(header) {
  let name = '';
  if (header) {
    const star = /filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)/.exec(header);
    const plain = /filename\s*=\s*"([^"]*)"|filename\s*=\s*([^;\s]+)/.exec(header);
    try {
      if (star) name = decodeURIComponent(star[1]);
    } catch (_) { /* fall back to the plain form */ }
    if (!name && plain) name = plain[1] || plain[2] || '';
  }
  name = name.replace(/[/\\]/g, '_').replace(/[^\w.\-:+@ ]/g, '_').trim();
  return name || `callrec-${id.replace(/[^\w.-]/g, '_')}.zip`;
}

function wireExport() {
  const button = document.getElementById('export');
  const form = document.getElementById('export-form');
  const reason = form.elements.reason;
  const confirm = document.getElementById('export-confirm');
  const status = document.getElementById('export-status');

  const openForm = (open) => {
    form.hidden = !open;
    button.setAttribute('aria-expanded', String(open));
    if (open) reason.focus();
  };
  button.addEventListener('click', () => openForm(form.hidden));
  document.getElementById('export-cancel').addEventListener('click', () => openForm(false));
  form.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') { openForm(false); button.focus(); } });

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearError();
    confirm.disabled = true;
    confirm.textContent = 'Preparing…';
    status.hidden = false;
    status.className = 'export-status';
    status.textContent = 'Preparing the export bundle…';
    document.getElementById('export-file').hidden = true;
    try {
      const res = await api(`/api/interactions/${encodeURIComponent(id)}/export`, {
        method: 'POST', body: { reason: reason.value.trim() }, raw: true, accept: 'application/zip, application/json',
      });
      const blob = await res.blob();
      const filename = filenameFrom(res.headers.get('Content-Disposition'));
      const url = URL.createObjectURL(blob);
      const a = el('a', { href: url, download: filename, class: 'offscreen' });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);

      clear(status);
      status.className = 'export-status ok';
      status.append(
        'Exported: the bundle contains SHA256SUMS and manifest.json; verify with ',
        el('code', null, 'sha256sum -c SHA256SUMS'),
      );
      status.title = `Saved as ${filename}`;
      const file = document.getElementById('export-file');
      file.textContent = `Saved as ${filename}`;
      file.hidden = false;
      openForm(false);
      reason.value = '';
    } catch (err) {
      status.hidden = true;
      showError(err instanceof ApiError ? `Export failed: ${err.message}` : err);
    } finally {
      confirm.disabled = false;
      confirm.textContent = 'Download bundle';
    }
  });
}

// ---------------------------------------------------------------------------
// Start

function wireBackLink(role) {
  const back = document.getElementById('back');
  if (!canSearch(role)) {
    back.href = '/audit';
    back.textContent = '‹ Back to the audit trail';
  }
  try {
    const ref = document.referrer ? new URL(document.referrer) : null;
    if (ref && ref.origin === location.origin && (ref.pathname === '/' || ref.pathname === '/audit')) {
      back.href = ref.pathname + ref.search; // keep the search filters
      back.textContent = ref.pathname === '/audit' ? '‹ Back to the audit trail' : '‹ Back to search';
    }
  } catch (_) { /* ignore a bad referrer */ }
}

async function start() {
  let session;
  try {
    session = await initPage('call');
  } catch (_) {
    return;
  }
  wireBackLink(session.user && session.user.role);
  const loading = document.getElementById('call-loading');
  let data;
  try {
    data = await api(`/api/interactions/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) {
      showError('You are not allowed to see this call');
      loading.textContent = 'You are not allowed to see this call. The refusal has been recorded in the audit trail.';
    } else if (err instanceof ApiError && err.status === 404) {
      showError(err.message);
      loading.textContent = `No call with id ${id} was found.`;
    } else {
      showError(err);
      loading.textContent = 'The call could not be loaded.';
    }
    loading.classList.add('placeholder-error');
    return;
  }
  state.interaction = data.interaction || {};
  state.recordings = Array.isArray(data.recordings) ? data.recordings : [];
  state.timeline = Array.isArray(data.timeline) ? data.timeline : [];
  state.replicas = Array.isArray(state.interaction.replicas) ? state.interaction.replicas : [];
  state.alternates = alternatesOf(state.replicas);

  loading.hidden = true;
  document.getElementById('call-view').hidden = false;
  renderHeader(state.interaction);
  renderAccounting();
  renderTimeline();
  renderOverview(document.getElementById('call-overview'), state.interaction, state.recordings, state.alternates, (i) => selectRecording(i));
  renderSegments();
  renderIds();
  wireExport();
  renderPlayer(); // last: the canvas has its size once the view is visible
}

start();
