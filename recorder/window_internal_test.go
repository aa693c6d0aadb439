package recorder

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"

	"callrec"
)

const (
	tIn  = callrec.TrackInbound
	tOut = callrec.TrackOutbound
	sil  = callrec.MulawSilence
)

// stereo interleaves two channels the way a recording stores them.
func stereo(left, right []byte) []byte {
	if len(left) != len(right) {
		panic("stereo: channels of different lengths")
	}
	b := make([]byte, 0, 2*len(left))
	for i := range left {
		b = append(b, left[i], right[i])
	}
	return b
}

func TestWindowTakeInterleaves(t *testing.T) {
	var w window
	w.put(tIn, 0, []byte{1, 2, 3})
	w.put(tOut, 1, []byte{9})
	if w.hi[tIn] != 3 || w.hi[tOut] != 2 || w.end() != 3 {
		t.Fatalf("hi = %v, end = %d; want [3 2], 3", w.hi, w.end())
	}
	got := w.take(4, nil)
	want := stereo([]byte{1, 2, 3, sil}, []byte{sil, 9, sil, sil})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("take(4) (-want +got):\n%s", diff)
	}
	if w.base != 4 || len(w.ch[tIn]) != 0 || len(w.ch[tOut]) != 0 {
		t.Errorf("after take: base %d, channels %d/%d bytes; want 4, 0/0", w.base, len(w.ch[tIn]), len(w.ch[tOut]))
	}
	if w.end() != 4 {
		t.Errorf("end() = %d after taking everything, want base 4", w.end())
	}
}

func TestWindowTakePrefixShiftsTheRest(t *testing.T) {
	var w window
	w.put(tIn, 0, []byte{1, 2, 3, 4, 5, 6})
	w.put(tOut, 0, []byte{11, 12})
	w.put(tOut, 4, []byte{15, 16, 17})

	prefix := []byte("hdr")
	got := w.take(2, prefix)
	if diff := cmp.Diff(append([]byte("hdr"), stereo([]byte{1, 2}, []byte{11, 12})...), got); diff != "" {
		t.Errorf("take(2) (-want +got):\n%s", diff)
	}
	if w.base != 2 {
		t.Fatalf("base = %d, want 2", w.base)
	}
	if diff := cmp.Diff([]byte{3, 4, 5, 6}, w.ch[tIn]); diff != "" {
		t.Errorf("inbound after take (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]byte{sil, sil, 15, 16, 17}, w.ch[tOut]); diff != "" {
		t.Errorf("outbound after take (-want +got):\n%s", diff)
	}

	// Positions stay absolute: overwrite inbound at 4 and extend it.
	w.put(tIn, 4, []byte{25})
	w.put(tIn, 8, []byte{29})
	if w.hi[tIn] != 9 || w.hi[tOut] != 7 || w.end() != 9 {
		t.Errorf("hi = %v, end = %d; want [9 7], 9", w.hi, w.end())
	}
	got = w.take(9, nil)
	want := stereo([]byte{3, 4, 25, 6, sil, sil, 29}, []byte{sil, sil, 15, 16, 17, sil, sil})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("take(9) (-want +got):\n%s", diff)
	}
}

func TestWindowTakeNothing(t *testing.T) {
	var w window
	w.put(tIn, 0, []byte{1, 2})
	w.take(1, nil)
	for _, f := range []int64{1, 0} {
		got := w.take(f, []byte{7})
		if !bytes.Equal(got, []byte{7}) || w.base != 1 {
			t.Errorf("take(%d) at base 1 = %v, base %d; want [7], base 1", f, got, w.base)
		}
	}
}

func TestWindowTakeBeyondData(t *testing.T) {
	var w window
	w.put(tOut, 0, []byte{1})
	got := w.take(3, nil)
	if diff := cmp.Diff(stereo([]byte{sil, sil, sil}, []byte{1, sil, sil}), got); diff != "" {
		t.Errorf("take(3) (-want +got):\n%s", diff)
	}
	// A track whose hi is behind base: the next put lands at its absolute place.
	w.put(tIn, 5, []byte{2})
	got = w.take(6, nil)
	if diff := cmp.Diff(stereo([]byte{sil, sil, 2}, []byte{sil, sil, sil}), got); diff != "" {
		t.Errorf("take(6) (-want +got):\n%s", diff)
	}
}

// Regrowing a channel inside its old capacity must write silence, not the
// bytes left there before the shift.
func TestWindowRegrowIsSilence(t *testing.T) {
	var w window
	w.put(tIn, 0, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	w.take(8, nil) // inbound keeps [9 10] at the front of its buffer
	w.put(tIn, 13, []byte{14})
	got := w.take(14, nil)
	want := stereo([]byte{9, 10, sil, sil, sil, 14}, []byte{sil, sil, sil, sil, sil, sil})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("take(14) (-want +got):\n%s", diff)
	}
}

// TestWindowMatchesModel writes random frames and takes random prefixes and
// compares the output with a plain timeline of the whole stream.
func TestWindowMatchesModel(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for it := range 300 {
		var w window
		const length = 5000
		var model [2][length]byte
		for c := range model {
			for i := range model[c] {
				model[c][i] = sil
			}
		}
		var file []byte
		for range 200 {
			tr := callrec.Track(rng.IntN(2))
			pos := w.base + int64(rng.IntN(400))
			n := 1 + rng.IntN(300)
			if pos+int64(n) > length {
				continue
			}
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(rng.IntN(255))
			}
			w.put(tr, pos, data)
			copy(model[tr][pos:], data)
			if rng.IntN(3) == 0 {
				f := min(w.base+int64(rng.IntN(500)), length)
				file = w.take(f, file)
			}
		}
		file = w.take(length, file)
		if want := stereo(model[tIn][:], model[tOut][:]); !bytes.Equal(file, want) {
			t.Fatalf("iteration %d (seed %d): window output differs from the model", it, seed)
		}
	}
}

func TestAckQueuePop(t *testing.T) {
	var a ackQueue
	if got := a.pop(1 << 40); got != 0 || a.len() != 0 {
		t.Fatalf("pop of an empty queue = %d (len %d), want 0", got, a.len())
	}
	a.push(1, 160)
	a.push(2, 0) // a duplicate: durable once everything before it is
	a.push(3, 320)
	a.push(4, 0)
	a.push(5, 200) // a late frame: needs less than the one before it
	a.push(6, 480)
	for _, c := range []struct {
		upTo int64
		seq  uint64
		left int
	}{
		{0, 0, 6},
		{159, 0, 6},
		{160, 2, 4},   // 1 and the duplicate behind it
		{319, 0, 4},   // 3 blocks 4 and 5
		{320, 5, 1},   // 3, 4 and 5
		{10000, 6, 0}, // the rest
		{10000, 0, 0}, // nothing left
	} {
		if got := a.pop(c.upTo); got != c.seq || a.len() != c.left {
			t.Errorf("pop(%d) = %d, %d left; want %d, %d left", c.upTo, got, a.len(), c.seq, c.left)
		}
	}
	// The queue is reusable after draining.
	a.push(7, 10)
	if got := a.pop(10); got != 7 || a.len() != 0 {
		t.Errorf("pop after reuse = %d (len %d), want 7 (0)", got, a.len())
	}
}

// Popping in small steps through a long queue compacts it without losing or
// reordering entries.
func TestAckQueueCompacts(t *testing.T) {
	var a ackQueue
	const n = 5000
	var next uint64 = 1 // next seq to push
	var acked uint64
	for upTo := int64(0); acked < n; upTo += 7 {
		for next <= n && int64(next) <= upTo+100 {
			a.push(next, int64(next))
			next++
		}
		seq := a.pop(upTo)
		want := min(uint64(upTo), next-1)
		if want <= acked {
			want = 0
		}
		if seq != want {
			t.Fatalf("pop(%d) = %d, want %d", upTo, seq, want)
		}
		if seq != 0 {
			acked = seq
		}
		if got, want := a.len(), int(next-1-acked); got != want {
			t.Fatalf("after pop(%d): len %d, want %d", upTo, got, want)
		}
		if a.head > 1024 && a.head > len(a.q)/2 {
			t.Fatalf("after pop(%d): head %d of %d not compacted", upTo, a.head, len(a.q))
		}
	}
}
