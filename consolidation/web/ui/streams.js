// streams.js: the parts of the call page about how a call's streams were
// recorded: the replicas of a stream written by two recorders at once
// (dual recording), the copies of a dual-stream pair merged into one
// recording, and an overview bar of the recorded audio with the audio lost
// at stream restarts shaded.

import { el, clear, statusBadge, fmtTime, fmtDateTime, fmtSecs, fmtInt } from './common.js';

// replicaOf finds the replica set and the replica holding a recording
// (null for a stream recorded once).
export function replicaOf(sets, inum) {
  for (const set of sets) {
    for (const rp of set.replicas || []) {
      if ((rp.inums || []).includes(inum)) return { set, replica: rp };
    }
  }
  return null;
}

// alternatesOf lists the recordings of every replica but the one to play.
export function alternatesOf(sets) {
  const alt = new Set();
  for (const set of sets) {
    for (const rp of set.replicas || []) {
      if (!(rp.inums || []).includes(set.preferred)) (rp.inums || []).forEach((n) => alt.add(n));
    }
  }
  return alt;
}

// renderReplicaBox says in box which replica of its stream rec is, whether
// the call plays it, and offers its twin(s): onSwitch gets the index in
// recordings of the one chosen.
export function renderReplicaBox(box, rec, sets, recordings, onSwitch) {
  clear(box);
  const r = replicaOf(sets, rec.inum);
  if (!r) {
    box.hidden = true;
    delete box.dataset.replica;
    return;
  }
  const { set, replica } = r;
  const others = (set.replicas || []).filter((x) => x !== replica);
  const plays = (replica.inums || []).includes(set.preferred);
  box.hidden = false;
  box.dataset.replica = String(replica.replica);
  box.dataset.plays = String(plays);
  const text = [`Replica ${replica.replica}${others.length ? ` of ${others.length + 1}` : ''} of stream `,
    el('span', { class: 'mono' }, set.stream_sid), ' · ', statusBadge(replica.status), ' · '];
  if (plays) {
    text.push(others.length ? 'the call plays this replica' : 'the only replica received: no twin recording arrived');
  } else {
    const best = (set.replicas || []).find((x) => (x.inums || []).includes(set.preferred));
    text.push(`the call plays replica ${best ? best.replica : '?'}; this one is its twin (the same audio)`);
  }
  box.append(el('span', { class: 'replica-text' }, ...text));
  for (const other of others) {
    const first = (other.inums || [])[0];
    const index = recordings.findIndex((x) => x.inum === first);
    const btn = el('button', {
      type: 'button', class: 'btn btn-small replica-switch', dataset: { inum: first || '', replica: String(other.replica) },
      disabled: index < 0, title: index < 0 ? `Recording ${first} is unavailable` : `Play replica ${other.replica} (INUM ${first}) from the same position`,
    }, `${(other.inums || []).includes(set.preferred) ? 'Back to' : 'Switch to'} replica ${other.replica} (${other.status})`);
    btn.addEventListener('click', () => onSwitch(index));
    box.append(btn);
  }
}

// copiesTable lists what each stream of a dual-stream pair brought to a
// merged recording (a heading, the table and a note). labels names tracks
// and end reasons for people.
export function copiesTable(rec, labels) {
  const acc = rec.accounting;
  const rows = acc.copies.map((c) => el('tr', { class: 'copy-row', dataset: { copy: String(c.copy) } },
    el('th', { scope: 'row', class: 'copy-name' },
      el('span', { class: 'nowrap' }, el('span', { class: `swatch swatch-copy-${c.copy}` }), ` Copy ${c.copy}`),
      el('span', { class: 'copy-stream mono', title: 'Stream SID' }, c.stream_sid || '—')),
    el('td', { class: 'mono small wrap-anywhere' }, c.adapter || '—'),
    el('td', null, el('span', { class: `align align-${c.alignment}`, title: ALIGNMENTS[c.alignment] || '' }, c.alignment || '—')),
    el('td', { class: 'num mono nowrap' }, fmtSignedMs(c.offset_ms)),
    count(c.received), count(c.supplied), count(c.redundant), count(c.before_start),
    el('td', { class: `nowrap copy-end${c.end_reason && c.end_reason !== 'stop' ? ' cell-bad' : ''}`,
      title: [labels.endReasons[c.end_reason], c.ended_at ? `ended ${fmtDateTime(c.ended_at)}` : 'still running'].filter(Boolean).join(', ') },
      c.end_reason || (c.ended_at ? 'ended' : '—'))));
  const runs = (acc.tracks || []).map((t) => {
    const n = (t.supply || []).length;
    const more = Number(t.supply_omitted) || 0;
    return `${labels.tracks[t.track] || t.track}: ${fmtInt(n)} run${n === 1 ? '' : 's'}${more ? ` (+${fmtInt(more)} not listed)` : ''}`;
  });
  return [
    el('h4', { class: 'acct-sub' }, 'Copies merged into this recording'),
    el('div', { class: 'table-wrap' }, el('table', { class: 'data-table compact copy-table' },
      el('thead', null, el('tr', null,
        el('th', { scope: 'col' }, 'Copy · stream'), el('th', { scope: 'col' }, 'Adapter'),
        el('th', { scope: 'col' }, 'Alignment'), el('th', { scope: 'col', class: 'num' }, 'Offset'),
        el('th', { scope: 'col', class: 'num' }, 'Received'), el('th', { scope: 'col', class: 'num' }, 'Supplied'),
        el('th', { scope: 'col', class: 'num' }, 'Redundant'), el('th', { scope: 'col', class: 'num' }, 'Before start'),
        el('th', { scope: 'col' }, 'End'))),
      el('tbody', null, rows))),
    el('p', { class: 'muted small' }, `Frames count both tracks. Supply strip under the waveform: ${runs.join('; ')}.`),
  ];
}

const ALIGNMENTS = {
  origin: 'The first copy: its stream time is the recording\u2019s',
  content: 'Placed where its audio matched the audio already recorded',
  clock: 'Placed by the adapters\u2019 clocks (no unique audio match)',
};

function fmtSignedMs(v) {
  const n = Number(v) || 0;
  return `${n < 0 ? '−' : n > 0 ? '+' : ''}${fmtInt(Math.abs(n))} ms`;
}

function count(value) {
  const v = Number(value) || 0;
  return el('td', { class: `num mono${v === 0 ? ' zero' : ''}` }, fmtInt(v));
}

// renderOverview draws, above the timeline, the call's recorded audio on
// one bar in wall-clock time: each recording that plays (a replica's twin
// is left out: it holds the same audio) and, shaded, the audio lost between
// a failed stream and its replacement. Shown when the call has more than
// one recording to play (twins aside) or a restart gap.
//
// box is the overview's element; onSelect gets the index in recordings of a
// recording clicked.
export function renderOverview(box, it, recordings, alternates, onSelect) {
  clear(box);
  const gaps = Array.isArray(it.gaps) ? it.gaps : [];
  const recs = recordings.filter((r) => !alternates.has(r.inum));
  if (!gaps.length && recs.length < 2) {
    box.hidden = true;
    return;
  }
  const ms = (v) => { const t = Date.parse(v); return Number.isFinite(t) && t > 0 ? t : null; };
  const spans = recs.map((r) => {
    const base = ms(r.stream && r.stream.started_at) || ms(r.started_at);
    const start = base === null ? null : base + (Number(r.audio && r.audio.offset_ms) || 0);
    return { rec: r, start, end: start === null ? null : start + (Number(r.audio && r.audio.duration_ms) || 0) };
  }).filter((x) => x.start !== null);
  const times = [ms(it.start), ms(it.end), ...spans.flatMap((x) => [x.start, x.end]),
    ...gaps.flatMap((g) => [ms(g.start), ms(g.end)])].filter((t) => t !== null);
  if (!times.length) {
    box.hidden = true;
    return;
  }
  const t0 = Math.min(...times);
  const t1 = Math.max(...times);
  const span = Math.max(1, t1 - t0);
  const place = (node, from, to) => {
    // CSSOM, not a style attribute: the CSP allows no inline styles.
    node.style.left = `${((from - t0) / span) * 100}%`;
    node.style.width = `${(Math.max(0, to - from) / span) * 100}%`;
    return node;
  };
  const bar = el('div', { class: 'ov-bar', role: 'img', 'aria-label': 'Recorded audio over the call, with the audio lost at stream restarts shaded' });
  for (const x of spans) {
    const index = recordings.indexOf(x.rec);
    const b = el('button', { type: 'button', class: 'ov-rec', dataset: { inum: x.rec.inum },
      title: `Recording ${index + 1} (INUM ${x.rec.inum}): ${fmtTime(new Date(x.start))}–${fmtTime(new Date(x.end))} · click to play it` });
    b.addEventListener('click', () => onSelect(index));
    bar.append(place(b, x.start, x.end));
  }
  let lost = 0;
  for (const g of gaps) {
    const from = ms(g.start);
    const to = ms(g.end);
    if (from === null || to === null) continue;
    lost += Number(g.duration_ms) || 0;
    bar.append(place(el('div', { class: 'ov-gap', dataset: { durationMs: String(g.duration_ms || 0), from: g.from_inum, to: g.to_inum },
      title: `No audio for ${fmtSecs(Number(g.duration_ms) || 0)}: stream ${g.from_stream_sid || '?'} failed, replacement ${g.to_stream_sid || '?'} (${fmtTime(g.start)}–${fmtTime(g.end)})` }), from, to));
  }
  box.hidden = false;
  box.append(bar, el('div', { class: 'ov-axis mono' },
    el('span', null, fmtTime(new Date(t0))),
    el('span', { class: lost || gaps.length ? 'ov-lost' : 'muted' },
      gaps.length ? `${fmtSecs(lost)} lost at ${gaps.length} stream restart${gaps.length === 1 ? '' : 's'}` : `${spans.length} recording${spans.length === 1 ? '' : 's'}`),
    el('span', null, fmtTime(new Date(t1)))));
}
