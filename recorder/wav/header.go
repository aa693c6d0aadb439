package wav

import (
	"encoding/binary"
	"math"
)

// Format tags of the WAVE fmt chunk that callers are likely to meet.
const (
	// FormatPCM is WAVE_FORMAT_PCM: linear PCM.
	FormatPCM = 1
	// FormatALaw is WAVE_FORMAT_ALAW: G.711 A-law.
	FormatALaw = 6
	// FormatMulaw is WAVE_FORMAT_MULAW: G.711 μ-law, the format of every
	// recording.
	FormatMulaw = 7
	// FormatExtensible is WAVE_FORMAT_EXTENSIBLE; Parse reports the
	// sub-format code instead of this tag.
	FormatExtensible = 0xFFFE
)

// Layout of the header AppendHeader writes. All fields are little-endian.
//
//	offset  size  field
//	     0     4  "RIFF"
//	     4     4  RIFF size: HeaderSize - 8 + data bytes (+1 pad if odd)
//	     8     4  "WAVE"
//	    12     4  "fmt "
//	    16     4  18
//	    20     2  format tag (7, μ-law)
//	    22     2  channels
//	    24     4  sample rate
//	    28     4  byte rate (sample rate × block align)
//	    32     2  block align (channels, one byte per sample)
//	    34     2  bits per sample (8)
//	    36     2  cbSize (0)
//	    38     4  "fact"
//	    42     4  4
//	    46     4  dwSampleLength: sample frames (data bytes / block align)
//	    50     4  "data"
//	    54     4  data bytes
//	    58        audio, interleaved sample frames
const (
	// HeaderSize is the size of the header AppendHeader writes; audio data
	// starts at this offset.
	HeaderSize = 58
	// RIFFSizeOffset is the offset of the RIFF chunk size field.
	RIFFSizeOffset = 4
	// FmtOffset is the offset of the "fmt " chunk.
	FmtOffset = 12
	// FactOffset is the offset of the "fact" chunk.
	FactOffset = 38
	// FactSamplesOffset is the offset of the fact chunk's dwSampleLength
	// field (the number of sample frames).
	FactSamplesOffset = 46
	// DataChunkOffset is the offset of the "data" chunk.
	DataChunkOffset = 50
	// DataSizeOffset is the offset of the data chunk size field.
	DataSizeOffset = 54
)

const (
	fmtChunkSize  = 18 // fmt chunk with cbSize = 0
	factChunkSize = 4
)

// MaxDataBytes is the largest data size AppendHeader and Repair put in a
// header (before rounding down to whole sample frames): the RIFF size field,
// HeaderSize-8 plus the data plus a possible pad byte, must fit in 32 bits.
// For stereo 8 kHz μ-law (16000 bytes per second) that is about 74.5 hours
// of audio; longer recordings must be split into several files.
const MaxDataBytes = math.MaxUint32 - (HeaderSize - 8) - 1

// AppendHeader appends the 58-byte header of a μ-law WAV file with the given
// channel count, sample rate and data size to dst and returns the extended
// slice.
//
// dataBytes is clamped to [0, MaxDataBytes] and rounded down to whole sample
// frames (multiples of channels bytes). Channels is clamped to [1, 65535] and
// sampleRate to [1, the largest rate whose byte rate fits 32 bits], so the
// header is always well formed; callers pass 2 and 8000.
//
// The RIFF size counts the pad byte RIFF requires after odd-sized data, which
// can only happen with one channel; the writer of such a file appends a zero
// byte after the data.
//
// To update the sizes of a file being written, write a fresh header at
// offset 0: every byte except the size fields is the same.
func AppendHeader(dst []byte, channels int, sampleRate int, dataBytes int64) []byte {
	channels = int(clamp(int64(channels), 1, math.MaxUint16))
	blockAlign := int64(channels)
	rate := clamp(int64(sampleRate), 1, math.MaxUint32/blockAlign)
	data := clampData(dataBytes, blockAlign)

	le := binary.LittleEndian
	dst = append(dst, "RIFF"...)
	dst = le.AppendUint32(dst, riffSize(data))
	dst = append(dst, "WAVE"...)

	dst = append(dst, "fmt "...)
	dst = le.AppendUint32(dst, fmtChunkSize)
	dst = le.AppendUint16(dst, FormatMulaw)
	dst = le.AppendUint16(dst, uint16(channels))
	dst = le.AppendUint32(dst, uint32(rate))
	dst = le.AppendUint32(dst, uint32(rate*blockAlign))
	dst = le.AppendUint16(dst, uint16(blockAlign))
	dst = le.AppendUint16(dst, 8)
	dst = le.AppendUint16(dst, 0) // cbSize

	dst = append(dst, "fact"...)
	dst = le.AppendUint32(dst, factChunkSize)
	dst = le.AppendUint32(dst, uint32(data/blockAlign))

	dst = append(dst, "data"...)
	dst = le.AppendUint32(dst, uint32(data))
	return dst
}

// riffSize returns the RIFF chunk size of a file in our layout holding data
// bytes of audio (already clamped), including the pad byte of odd data.
func riffSize(data int64) uint32 {
	return uint32(HeaderSize - 8 + data + data&1)
}

// clampData clamps n to [0, MaxDataBytes] and rounds it down to a multiple of
// blockAlign (which must be positive).
func clampData(n, blockAlign int64) int64 {
	n = clamp(n, 0, MaxDataBytes)
	return n - n%blockAlign
}

func clamp(v, lo, hi int64) int64 {
	return max(lo, min(v, hi))
}
