// player.js: the recording player of the call page: custom controls around a
// hidden <audio> element, per-channel mute through Web Audio, and a two-lane
// waveform (customer above, agent below) with gaps, timeline markers and a
// moving playhead.
//
// Time bases:
//  - audio time: seconds from the first sample of this INUM's WAV file
//    (audio.currentTime; timeline offset_ms is in this base);
//  - stream time: ms since Twilio's stream started (frame-accounting gaps).
//    A continuation recording (previous_inum set) starts at stream time
//    audio.offset_ms, so audio ms = stream ms − audio.offset_ms.

import { api, ApiError, errorFromResponse, fmtClock, fmtMs } from './common.js';

// Channel layout of callrec's stereo WAV: left = inbound track (what the
// customer said), right = outbound track (what the agent said).
const LANES = [
  { name: 'customer', label: 'Customer', track: 'inbound', color: '#2b6cb0', fill: 'rgba(43,108,176,0.85)' },
  { name: 'agent', label: 'Agent', track: 'outbound', color: '#6b46c1', fill: 'rgba(107,70,193,0.85)' },
];
const AXIS_H = 18;       // px (CSS) of the time axis under the lanes
const GAP_FILL = 'rgba(220,38,38,0.20)';
const GAP_EDGE = '#dc2626';
const PLAYHEAD = '#111827';

const MARKER_COLORS = {
  gap: '#dc2626', interrupted: '#dc2626', failover: '#d97706', restart: '#d97706', restart_gap: '#dc2626',
  copy_joined: '#0f766e', copy_ended: '#d97706',
  recording_started: '#15803d', recording_stopped: '#15803d',
  hold: '#b45309', transfer: '#0e7490',
};
const MARKER_DEFAULT = '#64748b';

export class Player {
  constructor({ onError }) {
    this.onError = onError || (() => {});
    this.audio = document.getElementById('audio');
    this.canvas = document.getElementById('waveform');
    this.playBtn = document.getElementById('play');
    this.playLabel = this.playBtn.querySelector('.play-label');
    this.playIcon = this.playBtn.querySelector('.icon');
    this.position = document.getElementById('position');
    this.seek = document.getElementById('seek');
    this.speed = document.getElementById('speed');
    this.muteCustomer = document.getElementById('mute-customer');
    this.muteAgent = document.getElementById('mute-agent');

    this.recording = null;   // the Recording being played
    this.markers = [];       // [{ms, kind, label}] in audio time
    this.peaks = null;       // the peaks response for the current recording
    this.peaksKey = '';      // inum|points of this.peaks
    this.pendingKey = '';    // inum|points of the request in flight
    this.base = null;        // offscreen canvas holding lanes + waveform + gaps + markers
    this.pendingSeek = null; // seconds to seek to once metadata is known
    this.loadSeq = 0;        // drops stale peaks responses after a switch
    this.dragging = false;   // the user is dragging #seek
    this.hoverX = null;      // mouse position over the canvas, CSS px
    this.raf = 0;
    this.graph = null;       // {ctx, left, right} once Web Audio is set up

    this.audio.controls = false;
    this.wire();
  }

  // -------------------------------------------------------------------------
  // Loading

  // load switches the player to a recording. markers are timeline entries in
  // this recording's audio time. seekTo (seconds) and autoplay are optional.
  load(recording, markers, { seekTo = null, autoplay = false } = {}) {
    const switching = !this.recording || this.recording.inum !== recording.inum;
    this.recording = recording;
    this.markers = markers || [];
    if (switching) {
      this.audio.pause();
      this.peaks = null;
      this.peaksKey = '';
      this.pendingKey = '';
      this.base = null;
      delete this.canvas.dataset.drawn;
      this.pendingSeek = seekTo;
      this.audio.src = `/api/recordings/${encodeURIComponent(recording.inum)}/audio`;
      this.audio.defaultPlaybackRate = Number(this.speed.value) || 1;
      this.audio.playbackRate = this.audio.defaultPlaybackRate;
      this.audio.load();
      this.updateSeekRange();
      this.updatePosition();
      this.redraw();
      this.fetchPeaks();
    } else if (seekTo !== null) {
      this.seekTo(seekTo);
    }
    if (autoplay) this.play();
  }

  // durationSec prefers the browser's own duration of the file; before the
  // metadata has loaded (or for a file still being written, whose header may
  // not say) it falls back to the recording's metadata.
  durationSec() {
    const d = this.audio.duration;
    if (Number.isFinite(d) && d > 0) return d;
    if (this.recording && this.recording.audio && this.recording.audio.duration_ms) return this.recording.audio.duration_ms / 1000;
    if (this.peaks && this.peaks.duration_ms) return this.peaks.duration_ms / 1000;
    return 0;
  }

  // spanMs is the time the waveform's width stands for.
  spanMs() {
    if (this.peaks && this.peaks.duration_ms) return this.peaks.duration_ms;
    return this.durationSec() * 1000;
  }

  seekTo(seconds) {
    const s = Math.max(0, seconds);
    if (this.audio.readyState >= 1) {
      const d = this.durationSec();
      this.audio.currentTime = d ? Math.min(s, d) : s;
    } else {
      this.pendingSeek = s;
    }
    this.updatePosition(s);
    this.render();
  }

  // -------------------------------------------------------------------------
  // Playback and Web Audio

  // ensureGraph builds, on the first play, the per-channel mute graph:
  //
  //   <audio> → MediaElementSource → ChannelSplitter(2) ─ out 0 (left, customer) → Gain → Merger in 0 ─┐
  //                                                     └ out 1 (right, agent)   → Gain → Merger in 1 ─┴→ destination
  //
  // The output stays stereo; muting a side sets its gain to 0. Once an
  // element feeds a MediaElementSource its sound only reaches the speakers
  // through the graph, so the context must be running (resumed on play).
  ensureGraph() {
    if (this.graph) return this.graph;
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return null;
    try {
      const ctx = new Ctx();
      const source = ctx.createMediaElementSource(this.audio);
      const splitter = ctx.createChannelSplitter(2);
      const merger = ctx.createChannelMerger(2);
      const left = ctx.createGain();
      const right = ctx.createGain();
      source.connect(splitter);
      splitter.connect(left, 0);
      splitter.connect(right, 1);
      left.connect(merger, 0, 0);
      right.connect(merger, 0, 1);
      merger.connect(ctx.destination);
      this.graph = { ctx, left, right };
      this.applyMutes();
    } catch (err) {
      this.graph = null;
      this.muteCustomer.disabled = true;
      this.muteAgent.disabled = true;
      this.onError(`Per-channel mute is unavailable in this browser (${err.message}).`);
    }
    return this.graph;
  }

  applyMutes() {
    if (!this.graph) return;
    const t = this.graph.ctx.currentTime;
    this.graph.left.gain.setValueAtTime(this.muteCustomer.checked ? 0 : 1, t);
    this.graph.right.gain.setValueAtTime(this.muteAgent.checked ? 0 : 1, t);
  }

  play() {
    if (!this.recording) return;
    const graph = this.ensureGraph();
    const started = this.audio.play();
    if (graph && graph.ctx.state === 'suspended') graph.ctx.resume().catch(() => {});
    if (started && started.catch) {
      started.catch((err) => {
        if (err && err.name === 'AbortError') return; // superseded by pause or a new src
        this.onError(`Playback failed: ${err.message || err}`);
      });
    }
  }

  toggle() {
    if (this.audio.paused || this.audio.ended) this.play();
    else this.audio.pause();
  }

  // audioError explains a failed <audio> load: the element only reports a
  // media error code, so ask the server (one byte) for its JSON error message.
  async audioError() {
    if (!this.recording) return;
    const inum = this.recording.inum;
    const code = this.audio.error ? this.audio.error.code : 0;
    let message = `The audio of recording ${inum} cannot be played (media error ${code}).`;
    try {
      const res = await fetch(this.audio.currentSrc || this.audio.src, { credentials: 'same-origin', headers: { Range: 'bytes=0-0' } });
      if (res.status === 401) { location.replace('/login?next=' + encodeURIComponent(location.pathname)); return; }
      if (!res.ok) {
        const err = await errorFromResponse(res);
        message = `The audio of recording ${inum} cannot be played: ${err.message}`;
      }
    } catch (_) { /* keep the generic message */ }
    if (this.recording && this.recording.inum === inum) this.onError(message);
  }

  // -------------------------------------------------------------------------
  // Controls

  wire() {
    const a = this.audio;
    this.playBtn.addEventListener('click', () => this.toggle());
    a.addEventListener('play', () => { this.updatePlayButton(); this.startLoop(); });
    a.addEventListener('pause', () => { this.updatePlayButton(); this.stopLoop(); this.render(); });
    a.addEventListener('ended', () => { this.updatePlayButton(); this.stopLoop(); this.render(); });
    a.addEventListener('loadedmetadata', () => {
      if (this.pendingSeek !== null) {
        const s = this.pendingSeek;
        this.pendingSeek = null;
        this.audio.currentTime = Math.min(s, this.durationSec() || s);
      }
      this.updateSeekRange();
      this.updatePosition();
      this.render();
    });
    a.addEventListener('durationchange', () => { this.updateSeekRange(); this.updatePosition(); });
    a.addEventListener('timeupdate', () => { this.updatePosition(); if (a.paused) this.render(); });
    a.addEventListener('seeked', () => { this.updatePosition(); this.render(); });
    a.addEventListener('error', () => { if (this.audio.getAttribute('src')) this.audioError(); });

    this.seek.addEventListener('pointerdown', () => { this.dragging = true; });
    this.seek.addEventListener('pointerup', () => { this.dragging = false; });
    this.seek.addEventListener('input', () => {
      const s = Number(this.seek.value);
      this.seekTo(s);
    });
    this.seek.addEventListener('change', () => { this.dragging = false; });

    this.speed.addEventListener('change', () => {
      const rate = Number(this.speed.value) || 1;
      a.defaultPlaybackRate = rate;
      a.playbackRate = rate;
    });
    this.muteCustomer.addEventListener('change', () => { this.applyMutes(); this.redraw(); });
    this.muteAgent.addEventListener('change', () => { this.applyMutes(); this.redraw(); });

    // Clicking the waveform seeks to that point.
    this.canvas.addEventListener('click', (ev) => {
      const rect = this.canvas.getBoundingClientRect();
      const span = this.spanMs();
      if (!rect.width || !span) return;
      const frac = Math.min(1, Math.max(0, (ev.clientX - rect.left) / rect.width));
      this.seekTo((frac * span) / 1000);
    });
    this.canvas.addEventListener('mousemove', (ev) => {
      const rect = this.canvas.getBoundingClientRect();
      this.hoverX = ev.clientX - rect.left;
      this.canvas.title = this.hoverTitle(this.hoverX, rect.width);
      if (this.audio.paused) this.render();
    });
    this.canvas.addEventListener('mouseleave', () => {
      this.hoverX = null;
      if (this.audio.paused) this.render();
    });

    // Keyboard: space toggles, ←/→ skip 5 s, when focus is not in a field.
    document.addEventListener('keydown', (ev) => {
      if (!this.recording || ev.ctrlKey || ev.metaKey || ev.altKey) return;
      const t = ev.target;
      if (t && (t.closest('input, select, textarea, button, a, [contenteditable]'))) return;
      if (ev.key === ' ') { ev.preventDefault(); this.toggle(); }
      else if (ev.key === 'ArrowLeft') { ev.preventDefault(); this.seekTo(this.audio.currentTime - 5); }
      else if (ev.key === 'ArrowRight') { ev.preventDefault(); this.seekTo(this.audio.currentTime + 5); }
    });

    // Redraw (and refetch peaks at the new width) when the canvas resizes.
    let resizeTimer = 0;
    const ro = new ResizeObserver(() => {
      this.redraw();
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => this.fetchPeaks(), 250);
    });
    ro.observe(this.canvas);
  }

  updatePlayButton() {
    const playing = !this.audio.paused && !this.audio.ended;
    this.playLabel.textContent = playing ? 'Pause' : 'Play';
    this.playBtn.setAttribute('aria-label', playing ? 'Pause' : 'Play');
    this.playIcon.className = `icon ${playing ? 'icon-pause' : 'icon-play'}`;
    this.playBtn.classList.toggle('playing', playing);
  }

  updateSeekRange() {
    const d = this.durationSec();
    this.seek.max = String(d || 0);
    this.seek.disabled = !d;
  }

  updatePosition(at) {
    const cur = at !== undefined ? at : this.audio.currentTime;
    const d = this.durationSec();
    this.position.textContent = `${fmtClock(cur)} / ${fmtClock(d)}`;
    if (!this.dragging) this.seek.value = String(Math.min(cur, d || cur));
  }

  hoverTitle(x, width) {
    const span = this.spanMs();
    if (!span || !width) return '';
    const ms = (x / width) * span;
    let text = `${fmtClock(ms / 1000)} — click to play from here`;
    const tolerance = (4 / width) * span; // within 4 px of a marker
    const near = this.markers.filter((m) => Math.abs(m.ms - ms) <= tolerance);
    if (near.length) text = `${near.map((m) => `${fmtClock(m.ms / 1000)} ${m.label}`).join('\n')}\n${text}`;
    const gaps = this.gapsFor(null).filter((g) => ms >= g.start && ms <= g.end);
    if (gaps.length) {
      text = `${gaps.map((g) => `Missing ${g.laneLabel} audio ${fmtMs(g.start)}–${fmtMs(g.end)} (${g.cause})`).join('\n')}\n${text}`;
    }
    return text;
  }

  // -------------------------------------------------------------------------
  // Waveform

  // fetchPeaks asks for one min/max pair per device pixel of the canvas.
  async fetchPeaks() {
    const rec = this.recording;
    if (!rec) return;
    const width = this.canvas.clientWidth;
    if (!width) return;
    const points = Math.max(1, Math.round(width * (window.devicePixelRatio || 1)));
    const key = `${rec.inum}|${points}`;
    if (key === this.peaksKey || key === this.pendingKey) return;
    this.pendingKey = key;
    const seq = ++this.loadSeq;
    try {
      const peaks = await api(`/api/recordings/${encodeURIComponent(rec.inum)}/peaks`, { query: new URLSearchParams({ points: String(points) }) });
      if (seq !== this.loadSeq || !this.recording || this.recording.inum !== rec.inum) return;
      this.pendingKey = '';
      this.peaks = peaks;
      this.peaksKey = key;
      this.updateSeekRange();
      this.updatePosition();
      this.redraw();
      this.canvas.dataset.drawn = 'true';
    } catch (err) {
      if (seq !== this.loadSeq) return;
      this.pendingKey = '';
      this.peaksKey = '';
      this.peaks = null;
      this.redraw(err instanceof ApiError ? err.message : String(err));
      this.canvas.dataset.drawn = 'error';
      this.onError(`The waveform of recording ${rec.inum} is unavailable: ${err.message || err}`);
    }
  }

  // gapsFor lists the recording's gaps in audio ms for one lane (or all
  // lanes when lane is null). A track other than inbound/outbound (e.g.
  // "both") shades both lanes.
  gapsFor(lane) {
    const rec = this.recording;
    if (!rec || !rec.accounting || !Array.isArray(rec.accounting.tracks)) return [];
    const offset = (rec.audio && rec.audio.offset_ms) || 0;
    const out = [];
    for (const tr of rec.accounting.tracks) {
      const lanes = LANES.filter((l) => (lane === null || l === lane) && (tr.track === l.track || !LANES.some((x) => x.track === tr.track)));
      for (const l of lanes) {
        for (const g of tr.gaps || []) {
          out.push({ start: g.start_ms - offset, end: g.end_ms - offset, cause: g.cause, laneLabel: l.label.toLowerCase() });
        }
      }
    }
    return out;
  }

  // redraw paints the static layers (lanes, waveform, gaps, markers, axis)
  // into an offscreen canvas at device resolution; render() then copies it
  // and adds the playhead, so animation never re-walks the peaks.
  redraw(errorText) {
    const canvas = this.canvas;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    if (!w || !h) return;
    const dpr = window.devicePixelRatio || 1;
    const base = document.createElement('canvas');
    base.width = Math.round(w * dpr);
    base.height = Math.round(h * dpr);
    const g = base.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);

    const laneH = (h - AXIS_H) / 2;
    const span = this.spanMs();
    const xOf = (ms) => (span ? (ms / span) * w : 0);

    // Lane backgrounds.
    g.fillStyle = '#ffffff';
    g.fillRect(0, 0, w, h);
    g.fillStyle = '#f7f8fa';
    g.fillRect(0, laneH, w, laneH);

    // Amplitude scale: normalised to the loudest point of both channels so
    // quiet calls stay readable (display only; the audio is untouched).
    let peakAbs = 0;
    const chans = this.peaks && Array.isArray(this.peaks.channels) ? this.peaks.channels : [];
    for (const c of chans) {
      for (const v of c.max || []) if (v > peakAbs) peakAbs = v;
      for (const v of c.min || []) if (-v > peakAbs) peakAbs = -v;
    }
    const scale = 1 / Math.max(peakAbs, 0.05);

    LANES.forEach((lane, i) => {
      const top = i * laneH;
      const mid = top + laneH / 2;
      const amp = laneH / 2 - 6;
      const muted = i === 0 ? this.muteCustomer.checked : this.muteAgent.checked;

      // Gaps first, so the waveform's silence line shows through them.
      for (const gap of this.gapsFor(lane)) {
        const x0 = xOf(gap.start);
        const x1 = Math.max(x0 + 2, xOf(gap.end));
        g.fillStyle = GAP_FILL;
        g.fillRect(x0, top, x1 - x0, laneH);
        g.fillStyle = GAP_EDGE;
        g.fillRect(x0, top + laneH - 3, x1 - x0, 3);
      }

      // Centre line.
      g.fillStyle = '#cbd5e1';
      g.fillRect(0, Math.round(mid), w, 1);

      // The peaks: one filled polygon, top edge along max, back along min.
      const ch = chans.find((c) => c.name === lane.name) || chans[i];
      if (ch && Array.isArray(ch.max) && ch.max.length) {
        const n = ch.max.length;
        const step = w / n;
        g.beginPath();
        for (let k = 0; k < n; k++) {
          const y = mid - Math.max(0, ch.max[k] * scale) * amp;
          g.lineTo((k + 0.5) * step, Math.min(y, mid - 0.5));
        }
        for (let k = n - 1; k >= 0; k--) {
          const y = mid - Math.min(0, (ch.min ? ch.min[k] : -ch.max[k]) * scale) * amp;
          g.lineTo((k + 0.5) * step, Math.max(y, mid + 0.5));
        }
        g.closePath();
        g.fillStyle = muted ? 'rgba(148,163,184,0.6)' : lane.fill;
        g.fill();
      }

      // Lane label.
      const label = muted ? `${lane.label} (muted)` : lane.label;
      g.font = '600 11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
      const tw = g.measureText(label).width;
      g.fillStyle = 'rgba(255,255,255,0.85)';
      g.fillRect(4, top + 4, tw + 10, 16);
      g.fillStyle = lane.color;
      g.fillText(label, 9, top + 16);
    });

    // Lane separator and axis line.
    g.fillStyle = '#d9dde3';
    g.fillRect(0, Math.round(laneH), w, 1);
    g.fillRect(0, Math.round(2 * laneH), w, 1);

    // Timeline markers: thin vertical lines across both lanes, with a small
    // tab at the top.
    for (const m of this.markers) {
      const x = Math.round(xOf(m.ms)) + 0.5;
      if (!span || x < 0 || x > w) continue;
      const color = MARKER_COLORS[m.kind] || MARKER_DEFAULT;
      g.strokeStyle = color;
      g.globalAlpha = 0.75;
      g.lineWidth = 1;
      g.setLineDash([3, 2]);
      g.beginPath();
      g.moveTo(x, 0);
      g.lineTo(x, 2 * laneH);
      g.stroke();
      g.setLineDash([]);
      g.globalAlpha = 1;
      g.fillStyle = color;
      g.beginPath();
      g.moveTo(x - 4, 0);
      g.lineTo(x + 4, 0);
      g.lineTo(x, 5);
      g.closePath();
      g.fill();
    }

    // Time axis with "nice" tick spacing (≥ ~70 px apart).
    this.drawAxis(g, w, 2 * laneH, span);

    if (!this.peaks) {
      const text = errorText ? 'Waveform unavailable' : (this.recording ? 'Loading waveform…' : '');
      if (text) {
        g.font = '12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
        g.fillStyle = errorText ? '#b42318' : '#64748b';
        const tw = g.measureText(text).width;
        g.fillText(text, (w - tw) / 2, laneH + 4);
      }
    }

    this.base = base;
    this.render();
  }

  drawAxis(g, w, y, span) {
    g.fillStyle = '#64748b';
    g.font = '10px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
    if (!span) return;
    const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
    const secs = span / 1000;
    const step = steps.find((s) => (s / secs) * w >= 70) || 3600;
    for (let t = 0; t <= secs; t += step) {
      const x = Math.round((t / secs) * w) + 0.5;
      g.fillRect(x - 0.5, y, 1, 4);
      const label = fmtClock(t);
      const tw = g.measureText(label).width;
      const lx = Math.min(Math.max(x - tw / 2, 2), w - tw - 2);
      g.fillText(label, lx, y + 14);
    }
  }

  // render copies the static layers and draws the played part, the hover
  // line and the playhead at the audio's current position.
  render() {
    const canvas = this.canvas;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    if (!w || !h) return;
    const dpr = window.devicePixelRatio || 1;
    const W = Math.round(w * dpr);
    const H = Math.round(h * dpr);
    if (canvas.width !== W || canvas.height !== H) {
      canvas.width = W;
      canvas.height = H;
    }
    const g = canvas.getContext('2d');
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.clearRect(0, 0, W, H);
    if (this.base) g.drawImage(this.base, 0, 0, W, H);
    g.setTransform(dpr, 0, 0, dpr, 0, 0);

    const span = this.spanMs();
    if (!span || !this.recording) return;
    const lanesH = h - AXIS_H;
    const x = Math.min(w, (this.audio.currentTime * 1000 / span) * w);

    // Played region: a light veil so the position reads at a glance.
    g.fillStyle = 'rgba(15,23,42,0.06)';
    g.fillRect(0, 0, x, lanesH);

    if (this.hoverX !== null) {
      g.fillStyle = 'rgba(15,23,42,0.25)';
      g.fillRect(Math.round(this.hoverX), 0, 1, lanesH);
    }

    g.fillStyle = PLAYHEAD;
    g.fillRect(Math.round(x) - 1, 0, 2, lanesH);
  }

  // The playhead follows currentTime every frame while playing.
  startLoop() {
    if (this.raf) return;
    const tick = () => {
      this.render();
      this.updatePosition();
      this.raf = requestAnimationFrame(tick);
    };
    this.raf = requestAnimationFrame(tick);
  }

  stopLoop() {
    if (this.raf) cancelAnimationFrame(this.raf);
    this.raf = 0;
  }
}
