package wav_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"

	"callrec/recorder/wav"
)

func TestAppendHeaderGolden(t *testing.T) {
	// One second of stereo 8 kHz μ-law: 16000 bytes, 8000 sample frames.
	got := wav.AppendHeader(nil, 2, 8000, 16000)

	fields := []struct {
		name   string
		offset int
		want   []byte
	}{
		{"riff id", 0, []byte("RIFF")},
		{"riff size 50+16000=16050=0x3EB2", 4, []byte{0xB2, 0x3E, 0x00, 0x00}},
		{"wave id", 8, []byte("WAVE")},
		{"fmt id", 12, []byte("fmt ")},
		{"fmt size 18", 16, []byte{0x12, 0x00, 0x00, 0x00}},
		{"format tag 7", 20, []byte{0x07, 0x00}},
		{"channels 2", 22, []byte{0x02, 0x00}},
		{"sample rate 8000=0x1F40", 24, []byte{0x40, 0x1F, 0x00, 0x00}},
		{"byte rate 16000=0x3E80", 28, []byte{0x80, 0x3E, 0x00, 0x00}},
		{"block align 2", 32, []byte{0x02, 0x00}},
		{"bits per sample 8", 34, []byte{0x08, 0x00}},
		{"cbSize 0", 36, []byte{0x00, 0x00}},
		{"fact id", 38, []byte("fact")},
		{"fact size 4", 42, []byte{0x04, 0x00, 0x00, 0x00}},
		{"sample frames 8000", 46, []byte{0x40, 0x1F, 0x00, 0x00}},
		{"data id", 50, []byte("data")},
		{"data size 16000", 54, []byte{0x80, 0x3E, 0x00, 0x00}},
	}
	if len(got) != wav.HeaderSize || wav.HeaderSize != 58 {
		t.Fatalf("len(header) = %d, HeaderSize = %d, want 58", len(got), wav.HeaderSize)
	}
	next := 0
	for _, f := range fields {
		if f.offset != next {
			t.Fatalf("field table has a hole before %q at %d", f.name, f.offset)
		}
		next += len(f.want)
		if diff := cmp.Diff(got[f.offset:next], f.want); diff != "" {
			t.Errorf("%s at offset %d (-got +want):\n%s", f.name, f.offset, diff)
		}
	}
	if next != wav.HeaderSize {
		t.Errorf("field table covers %d bytes, want %d", next, wav.HeaderSize)
	}

	offsets := []struct {
		name      string
		got, want int
	}{
		{"RIFFSizeOffset", wav.RIFFSizeOffset, 4},
		{"FmtOffset", wav.FmtOffset, 12},
		{"FactOffset", wav.FactOffset, 38},
		{"FactSamplesOffset", wav.FactSamplesOffset, 46},
		{"DataChunkOffset", wav.DataChunkOffset, 50},
		{"DataSizeOffset", wav.DataSizeOffset, 54},
	}
	for _, o := range offsets {
		if o.got != o.want {
			t.Errorf("%s = %d, want %d", o.name, o.got, o.want)
		}
	}
}

func TestAppendHeaderSizes(t *testing.T) {
	const maxStereo = wav.MaxDataBytes - wav.MaxDataBytes%2
	tests := []struct {
		name       string
		channels   int
		rate       int
		dataBytes  int64
		wantRIFF   uint32
		wantFrames uint32
		wantData   uint32
		wantChans  uint16
		wantRate   uint32
	}{
		{"empty", 2, 8000, 0, 50, 0, 0, 2, 8000},
		{"20ms", 2, 8000, 320, 370, 160, 320, 2, 8000},
		{"torn frame rounded down", 2, 8000, 321, 370, 160, 320, 2, 8000},
		{"negative clamped to 0", 2, 8000, -5, 50, 0, 0, 2, 8000},
		{"mono odd counts pad byte", 1, 8000, 3, 54, 3, 3, 1, 8000},
		{"32-bit limit", 2, 8000, 1 << 40, 50 + maxStereo, maxStereo / 2, maxStereo, 2, 8000},
		{"just under the limit", 2, 8000, maxStereo - 2, 50 + maxStereo - 2, maxStereo/2 - 1, maxStereo - 2, 2, 8000},
		{"zero channels clamped to 1", 0, 8000, 10, 60, 10, 10, 1, 8000},
		{"zero rate clamped to 1", 2, 0, 0, 50, 0, 0, 2, 1},
	}
	le := binary.LittleEndian
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := wav.AppendHeader(nil, tt.channels, tt.rate, tt.dataBytes)
			got := []uint32{
				le.Uint32(h[wav.RIFFSizeOffset:]), le.Uint32(h[wav.FactSamplesOffset:]),
				le.Uint32(h[wav.DataSizeOffset:]), uint32(le.Uint16(h[22:])), le.Uint32(h[24:]),
			}
			want := []uint32{tt.wantRIFF, tt.wantFrames, tt.wantData, uint32(tt.wantChans), tt.wantRate}
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("riff, frames, data, channels, rate (-got +want):\n%s", diff)
			}
		})
	}
}

func TestAppendHeaderAppends(t *testing.T) {
	prefix := []byte("xyz")
	got := wav.AppendHeader(prefix, 2, 8000, 0)
	if !bytes.HasPrefix(got, []byte("xyzRIFF")) || len(got) != 3+wav.HeaderSize {
		t.Errorf("AppendHeader(%q) = %q, want the prefix then a %d-byte header", prefix, got, wav.HeaderSize)
	}
}

func TestMaxDataBytesDuration(t *testing.T) {
	// Stereo 8 kHz μ-law is 16000 bytes per second: about 74.5 hours.
	hours := float64(wav.MaxDataBytes) / 16000 / 3600
	if hours < 74 || hours > 75 {
		t.Errorf("MaxDataBytes holds %.2f h of stereo μ-law, want about 74.5", hours)
	}
}
