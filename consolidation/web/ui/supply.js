// supply.js: the supply strip of a merged (dual-stream) recording: a thin
// band under the waveform, one row per track (customer above, agent
// below), coloured by the copy of the pair that supplied each run of
// chunks. It spans the same audio time as the waveform, so a colour
// change sits under the moment the recorder switched copies.
//
// Supply runs are in chunks on the recording's timeline (stream time of
// its first copy). A chunk lasts samples/received/8 ms of its track (20 ms
// for Twilio's 160-sample frames); audio ms = stream ms − audio.offset_ms.

import { el, clear, fmtClock, fmtInt } from './common.js';

const TRACKS = [
  { track: 'inbound', label: 'customer' },
  { track: 'outbound', label: 'agent' },
];
const ROW_H = 5; // CSS px per track row
const GAP_H = 1;

// copyColor reads a copy's colour from the stylesheet (--copy-1 … --copy-4),
// so the strip and its legend always agree.
export function copyColor(copy) {
  const css = getComputedStyle(document.documentElement).getPropertyValue(`--copy-${copy}`).trim();
  return css || '#64748b';
}

// chunkMs is how long one chunk of a track lasts, in ms.
function chunkMs(tr) {
  const samples = Number(tr.samples) || 0;
  const received = Number(tr.received) || 0;
  if (samples > 0 && received > 0) return samples / received / 8;
  return 20;
}

// supplyRuns lists a recording's runs in audio ms, per track row.
export function supplyRuns(rec) {
  const acc = rec.accounting || {};
  const offset = (rec.audio && rec.audio.offset_ms) || 0;
  const out = [];
  TRACKS.forEach((row, i) => {
    const tr = (acc.tracks || []).find((t) => t.track === row.track);
    if (!tr) return;
    const ms = chunkMs(tr);
    for (const run of tr.supply || []) {
      out.push({
        row: i, label: row.label, copy: Number(run.copy), from: Number(run.from_chunk), to: Number(run.to_chunk),
        start: (Number(run.from_chunk) - 1) * ms - offset, end: Number(run.to_chunk) * ms - offset,
      });
    }
  });
  return out;
}

// isMerged reports whether a recording merged several streams.
export function isMerged(rec) {
  const acc = rec && rec.accounting;
  return Boolean(acc && Array.isArray(acc.copies) && acc.copies.length > 0);
}

// drawSupply paints the strip of rec over spanMs of audio time into canvas
// and returns the runs drawn (for the hover text).
export function drawSupply(canvas, rec, spanMs) {
  const w = canvas.clientWidth;
  const h = 2 * ROW_H + GAP_H;
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.max(1, Math.round(w * dpr));
  canvas.height = Math.round(h * dpr);
  const g = canvas.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  g.fillStyle = '#eef1f5'; // no run: nothing supplied (missing audio)
  g.fillRect(0, 0, w, ROW_H);
  g.fillRect(0, ROW_H + GAP_H, w, ROW_H);
  const runs = supplyRuns(rec);
  if (!w || !spanMs) return runs;
  for (const r of runs) {
    const x0 = Math.max(0, (r.start / spanMs) * w);
    const x1 = Math.min(w, (r.end / spanMs) * w);
    if (x1 <= 0 || x0 >= w) continue;
    g.fillStyle = copyColor(r.copy);
    g.fillRect(x0, r.row * (ROW_H + GAP_H), Math.max(1, x1 - x0), ROW_H);
  }
  canvas.dataset.drawn = 'true';
  canvas.dataset.runs = String(runs.length);
  return runs;
}

// runsAt lists the runs under audio time ms.
export function runsAt(runs, ms) {
  return runs.filter((r) => ms >= r.start && ms < r.end);
}

// SupplyStrip is the strip and its legend on the call page: show draws a
// merged recording's (and hides both for any other recording); a click
// seeks, hovering names the copy.
export class SupplyStrip {
  // canvas and legend are the elements; spanOf(rec) is the audio ms the
  // waveform spans; seek(seconds) moves the player.
  constructor({ canvas, legend, spanOf, seek }) {
    Object.assign(this, { canvas, legend, spanOf, seek });
    this.rec = null;
    this.runs = [];
    const msAt = (ev) => {
      const rect = canvas.getBoundingClientRect();
      const span = this.rec ? spanOf(this.rec) : 0;
      if (!rect.width || !span) return null;
      return Math.min(1, Math.max(0, (ev.clientX - rect.left) / rect.width)) * span;
    };
    canvas.addEventListener('click', (ev) => {
      const ms = msAt(ev);
      if (ms !== null) seek(ms / 1000);
    });
    canvas.addEventListener('mousemove', (ev) => {
      const ms = msAt(ev);
      if (ms === null) return;
      const here = runsAt(this.runs, ms).map((r) => `${r.label}: copy ${r.copy} supplied chunks ${r.from}–${r.to}`);
      canvas.title = `${fmtClock(ms / 1000)}\n${here.length ? here.join('\n') : 'no copy supplied this audio'}`;
    });
    new ResizeObserver(() => this.redraw()).observe(canvas);
  }

  show(rec) {
    const { canvas, legend } = this;
    this.rec = isMerged(rec) ? rec : null;
    clear(legend);
    canvas.hidden = legend.hidden = !this.rec;
    if (!this.rec) {
      this.runs = [];
      delete canvas.dataset.drawn;
      return;
    }
    this.redraw();
    legend.append(el('span', { class: 'legend-item legend-title' }, 'Audio supplied by:'));
    for (const c of rec.accounting.copies) {
      legend.append(el('span', { class: 'legend-item', dataset: { copy: String(c.copy) } },
        el('span', { class: `swatch swatch-copy-${c.copy}` }), `Copy ${c.copy} (${c.adapter || 'adapter unknown'})`));
    }
    legend.append(el('span', { class: 'legend-item' }, el('span', { class: 'swatch swatch-nocopy' }), 'No copy'));
    const omitted = (rec.accounting.tracks || []).reduce((n, t) => n + (Number(t.supply_omitted) || 0), 0);
    if (omitted) legend.append(el('span', { class: 'legend-item muted' }, `${fmtInt(omitted)} further run${omitted === 1 ? '' : 's'} not drawn`));
  }

  // redraw paints the strip again (the canvas was resized, or the
  // waveform's span is now known exactly).
  redraw() {
    if (this.rec) this.runs = drawSupply(this.canvas, this.rec, this.spanOf(this.rec));
  }
}
