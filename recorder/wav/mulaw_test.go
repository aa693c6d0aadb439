package wav_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"callrec"
	"callrec/recorder/wav"
)

// g711Negative is the first half (codes 0x00-0x7F) of the ITU-T G.711 μ-law
// decoding table as published with the Sun/CCITT reference code; codes
// 0x80-0xFF decode to the same magnitudes, positive.
var g711Negative = [128]int16{
	-32124, -31100, -30076, -29052, -28028, -27004, -25980, -24956,
	-23932, -22908, -21884, -20860, -19836, -18812, -17788, -16764,
	-15996, -15484, -14972, -14460, -13948, -13436, -12924, -12412,
	-11900, -11388, -10876, -10364, -9852, -9340, -8828, -8316,
	-7932, -7676, -7420, -7164, -6908, -6652, -6396, -6140,
	-5884, -5628, -5372, -5116, -4860, -4604, -4348, -4092,
	-3900, -3772, -3644, -3516, -3388, -3260, -3132, -3004,
	-2876, -2748, -2620, -2492, -2364, -2236, -2108, -1980,
	-1884, -1820, -1756, -1692, -1628, -1564, -1500, -1436,
	-1372, -1308, -1244, -1180, -1116, -1052, -988, -924,
	-876, -844, -812, -780, -748, -716, -684, -652,
	-620, -588, -556, -524, -492, -460, -428, -396,
	-372, -356, -340, -324, -308, -292, -276, -260,
	-244, -228, -212, -196, -180, -164, -148, -132,
	-120, -112, -104, -96, -88, -80, -72, -64,
	-56, -48, -40, -32, -24, -16, -8, 0,
}

func TestMulawToLinear(t *testing.T) {
	for i, neg := range g711Negative {
		if got := wav.MulawToLinear[i]; got != neg {
			t.Errorf("MulawToLinear[%#02x] = %d, want %d", i, got, neg)
		}
		if got := wav.MulawToLinear[i+128]; got != -neg {
			t.Errorf("MulawToLinear[%#02x] = %d, want %d", i+128, got, -neg)
		}
	}

	spot := []struct {
		code byte
		want int16
	}{
		{0x00, -32124}, {0x0F, -16764}, {0x3F, -1980}, {0x40, -1884}, {0x70, -120}, {0x7E, -8}, {0x7F, 0},
		{0x80, 32124}, {0xC0, 1884}, {0xFE, 8}, {0xFF, 0},
		{callrec.MulawSilence, 0},
	}
	for _, tt := range spot {
		if got := wav.MulawToLinear[tt.code]; got != tt.want {
			t.Errorf("MulawToLinear[%#02x] = %d, want %d", tt.code, got, tt.want)
		}
	}
}

func TestLinearToMulawRoundTrip(t *testing.T) {
	for c := range 256 {
		code := byte(c)
		want := code
		if code == 0x7F { // negative zero encodes as positive zero
			want = 0xFF
		}
		if got := wav.LinearToMulaw(wav.MulawToLinear[code]); got != want {
			t.Errorf("LinearToMulaw(MulawToLinear[%#02x] = %d) = %#02x, want %#02x",
				code, wav.MulawToLinear[code], got, want)
		}
	}
}

func TestLinearToMulaw(t *testing.T) {
	tests := []struct {
		in   int16
		want byte
	}{
		{0, 0xFF}, {-1, 0x7F}, {1, 0xFF}, {8, 0xFE}, {-8, 0x7E},
		{32124, 0x80}, {32635, 0x80}, {32767, 0x80},
		{-32124, 0x00}, {-32635, 0x00}, {-32768, 0x00},
	}
	for _, tt := range tests {
		if got := wav.LinearToMulaw(tt.in); got != tt.want {
			t.Errorf("LinearToMulaw(%d) = %#02x, want %#02x", tt.in, got, tt.want)
		}
	}
}

// TestLinearToMulawMonotonic checks over every 16-bit value that encoding
// then decoding preserves order and sign and is off by at most half the
// quantization step of the segment (4 << segment), except for magnitudes
// above the clip level 32635, which decode to ±32124.
func TestLinearToMulawMonotonic(t *testing.T) {
	prev := int16(-32768)
	for s := -32768; s <= 32767; s++ {
		got := wav.MulawToLinear[wav.LinearToMulaw(int16(s))]
		if got < prev {
			t.Fatalf("decode(encode(%d)) = %d < decode(encode(%d)) = %d", s, got, s-1, prev)
		}
		prev = got
		if (s > 0 && got < 0) || (s < 0 && got > 0) {
			t.Fatalf("decode(encode(%d)) = %d changes sign", s, got)
		}
		code := wav.LinearToMulaw(int16(s))
		halfStep := 4 << ((^code >> 4) & 7)
		if abs(s) > 32635 {
			halfStep = 32768 - 32124
		}
		if d := abs(int(got) - s); d > halfStep {
			t.Fatalf("decode(encode(%d)) = %d, off by %d, more than %d", s, got, d, halfStep)
		}
	}

	// Larger magnitudes never get smaller linear values, for a few pairs.
	pairs := [][2]int16{{0, 100}, {100, 1000}, {1000, 10000}, {10000, 32767}, {-100, 0}, {-32768, -1000}}
	for _, p := range pairs {
		lo, hi := wav.MulawToLinear[wav.LinearToMulaw(p[0])], wav.MulawToLinear[wav.LinearToMulaw(p[1])]
		if lo >= hi {
			t.Errorf("decode(encode(%d)) = %d, not below decode(encode(%d)) = %d", p[0], lo, p[1], hi)
		}
	}
}

func abs(x int) int { return max(x, -x) }

func TestMulawDecode(t *testing.T) {
	tests := []struct {
		name string
		dst  []int16
		src  []byte
		want []int16
	}{
		{"nil dst", nil, []byte{0xFF, 0x00, 0x80}, []int16{0, -32124, 32124}},
		{"appends", []int16{7}, []byte{0xFE}, []int16{7, 8}},
		{"empty src", []int16{1, 2}, nil, []int16{1, 2}},
		{"spare capacity", make([]int16, 1, 10), []byte{0x7E}, []int16{0, -8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := wav.MulawDecode(tt.dst, tt.src)
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("MulawDecode (-got +want):\n%s", diff)
			}
		})
	}

	buf := make([]int16, 0, 160)
	if got := wav.MulawDecode(buf, pattern(0, 160)); &got[0] != &buf[:1][0] {
		t.Errorf("MulawDecode reallocated a buffer with enough capacity")
	}
}

func TestDeinterleave(t *testing.T) {
	tests := []struct {
		name     string
		data     []byte
		channels int
		want     [][]byte
	}{
		{"stereo", []byte{1, 2, 3, 4, 5, 6}, 2, [][]byte{{1, 3, 5}, {2, 4, 6}}},
		{"mono", []byte{1, 2, 3}, 1, [][]byte{{1, 2, 3}}},
		{"three channels", []byte{1, 2, 3, 4, 5, 6}, 3, [][]byte{{1, 4}, {2, 5}, {3, 6}}},
		{"torn frame ignored", []byte{1, 2, 3}, 2, [][]byte{{1}, {2}}},
		{"empty", nil, 2, [][]byte{{}, {}}},
		{"zero channels", []byte{1, 2}, 0, nil},
		{"negative channels", []byte{1, 2}, -1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := wav.Deinterleave(tt.data, tt.channels)
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Deinterleave (-got +want):\n%s", diff)
			}
		})
	}

	// The channels do not alias the input or each other.
	data := []byte{1, 2, 3, 4}
	got := wav.Deinterleave(data, 2)
	got[0] = append(got[0], 9)
	data[0] = 42
	if diff := cmp.Diff(got, [][]byte{{1, 3, 9}, {2, 4}}); diff != "" {
		t.Errorf("Deinterleave aliasing (-got +want):\n%s", diff)
	}
}

func BenchmarkMulawDecode(b *testing.B) {
	src := pattern(0, 160) // one 20 ms Twilio frame
	dst := make([]int16, 0, len(src))
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		dst = wav.MulawDecode(dst[:0], src)
	}
}
