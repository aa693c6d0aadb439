package wav

// MulawToLinear maps each G.711 μ-law code to its 16-bit linear value, as
// decoded by ITU-T G.711: 0xFF and 0x7F are 0, 0x80 is 32124 and 0x00 is
// -32124. It must not be modified.
var MulawToLinear = mulawTable()

func mulawTable() [256]int16 {
	var t [256]int16
	for i := range t {
		t[i] = mulawDecode(byte(i))
	}
	return t
}

// mulawDecode is the G.711 μ-law expansion: the code is stored inverted;
// after inversion bit 7 is the sign, bits 6-4 the segment (exponent) and
// bits 3-0 the mantissa, with a bias of 0x84.
func mulawDecode(u byte) int16 {
	u = ^u
	exp := (u >> 4) & 0x07
	t := (int32(u&0x0F)<<3 + mulawBias) << exp
	if u&0x80 != 0 {
		return int16(mulawBias - t)
	}
	return int16(t - mulawBias)
}

const (
	mulawBias = 0x84
	mulawClip = 32635
)

// MulawDecode appends the linear values of the μ-law samples in src to dst
// and returns the extended slice, like append; pass dst[:0] to reuse a
// buffer.
func MulawDecode(dst []int16, src []byte) []int16 {
	n := len(dst)
	if cap(dst)-n < len(src) {
		grown := make([]int16, n, n+len(src))
		copy(grown, dst)
		dst = grown
	}
	dst = dst[:n+len(src)]
	out := dst[n:]
	out = out[:len(src)] // lets the compiler drop the bounds check below
	for i, b := range src {
		out[i] = MulawToLinear[b]
	}
	return dst
}

// LinearToMulaw encodes a 16-bit linear sample as G.711 μ-law (bias 0x84,
// magnitude clipped at 32635). LinearToMulaw(MulawToLinear[b]) == b for
// every code except 0x7F, the negative zero, which encodes as 0xFF.
func LinearToMulaw(s int16) byte {
	x := int32(s)
	var sign byte
	if x < 0 {
		x = -x
		sign = 0x80
	}
	x = min(x, mulawClip) + mulawBias
	// The segment is the position of the highest set bit above bit 7.
	var exp byte = 7
	for mask := int32(0x4000); x&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := byte(x>>(exp+3)) & 0x0F
	return ^(sign | exp<<4 | mant)
}

// Deinterleave splits interleaved sample bytes (one byte per sample, as in
// an 8-bit μ-law file) into one slice per channel: for a recording, [0] is
// the customer (inbound) and [1] the agent (outbound). A trailing partial
// sample frame is ignored. It returns nil if channels is not positive. The
// slices share one new backing array and do not alias data.
func Deinterleave(data []byte, channels int) [][]byte {
	if channels <= 0 {
		return nil
	}
	frames := len(data) / channels
	buf := make([]byte, frames*channels)
	out := make([][]byte, channels)
	for c := range out {
		ch := buf[c*frames : (c+1)*frames : (c+1)*frames]
		for i := range ch {
			ch[i] = data[i*channels+c]
		}
		out[c] = ch
	}
	return out
}
