package recorder

import (
	"slices"

	"callrec"
)

// window holds the stereo audio not yet written to the file: samples from
// base on, one slice per channel. Frames are copied in where they belong;
// flushes interleave a prefix into the file and drop it.
type window struct {
	base int64                     // samples before are in the file
	ch   [callrec.NumTracks][]byte // samples from base on
	hi   [callrec.NumTracks]int64  // end of placed audio per track (absolute)
}

// put copies data for track t at absolute position pos (pos >= base).
func (w *window) put(t callrec.Track, pos int64, data []byte) {
	off := int(pos - w.base)
	end := off + len(data)
	c := w.ch[t]
	switch {
	case off == len(c): // the common case: right after what the track has
		c = append(c, data...)
	case end > len(c):
		c = extendSilence(c, end)
		copy(c[off:end], data)
	default:
		copy(c[off:end], data)
	}
	w.ch[t] = c
	if e := pos + int64(len(data)); e > w.hi[t] {
		w.hi[t] = e
	}
}

// extend grows the window to cover up to absolute position end.
func extendSilence(c []byte, n int) []byte {
	if n <= cap(c) {
		old := len(c)
		c = c[:n]
		for i := old; i < n; i++ {
			c[i] = callrec.MulawSilence
		}
		return c
	}
	nc := make([]byte, n, max(n+n/2, 4096))
	copy(nc, c)
	for i := len(c); i < n; i++ {
		nc[i] = callrec.MulawSilence
	}
	return nc
}

// skipTo drops the window's start up to absolute position pos (nothing
// there is written): the file begins at pos.
func (w *window) skipTo(pos int64) {
	n := pos - w.base
	if n <= 0 {
		return
	}
	for t := range w.ch {
		c := w.ch[t]
		if n >= int64(len(c)) {
			w.ch[t] = c[:0]
		} else {
			w.ch[t] = c[:copy(c, c[n:])]
		}
	}
	w.base = pos
}

// end returns the furthest absolute position any channel reaches.
func (w *window) end() int64 {
	e := w.base
	for t := range w.ch {
		e = max(e, w.base+int64(len(w.ch[t])))
	}
	return e
}

// take interleaves [base, f) into out (left = inbound, right = outbound,
// silence where a channel has nothing) and advances base to f.
func (w *window) take(f int64, out []byte) []byte {
	n := int(f - w.base)
	if n <= 0 {
		return out
	}
	start := len(out)
	out = slices.Grow(out, 2*n)[:start+2*n]
	o := out[start:]
	l, r := w.ch[callrec.TrackInbound], w.ch[callrec.TrackOutbound]
	both := min(n, len(l), len(r))
	ll, rr, oo := l[:both], r[:both], o[:2*both]
	for i := range ll { // the common case: both channels have audio
		oo[2*i], oo[2*i+1] = ll[i], rr[i]
	}
	for i := both; i < n; i++ { // one channel (or neither) runs on
		lv, rv := byte(callrec.MulawSilence), byte(callrec.MulawSilence)
		if i < len(l) {
			lv = l[i]
		}
		if i < len(r) {
			rv = r[i]
		}
		o[2*i], o[2*i+1] = lv, rv
	}
	for t := range w.ch {
		c := w.ch[t]
		if n >= len(c) {
			w.ch[t] = c[:0]
		} else {
			w.ch[t] = c[:copy(c, c[n:])]
		}
	}
	w.base = f
	return out
}

// ackQueue holds, in sequence order, the records not yet acknowledged and
// the sample position each needs on disk before it is durable (0: nothing).
type ackQueue struct {
	q    []ackEntry
	head int
}

type ackEntry struct {
	seq uint64
	end int64
}

func (a *ackQueue) push(seq uint64, end int64) { a.q = append(a.q, ackEntry{seq, end}) }

// pop removes the leading entries durable once [0, upTo) is on disk and
// returns the last one's seq (0 if none).
func (a *ackQueue) pop(upTo int64) uint64 {
	var seq uint64
	for a.head < len(a.q) && a.q[a.head].end <= upTo {
		seq = a.q[a.head].seq
		a.head++
	}
	if a.head == len(a.q) {
		a.q, a.head = a.q[:0], 0
	} else if a.head > 1024 && a.head > len(a.q)/2 {
		a.q = a.q[:copy(a.q, a.q[a.head:])]
		a.head = 0
	}
	return seq
}

func (a *ackQueue) len() int { return len(a.q) - a.head }
