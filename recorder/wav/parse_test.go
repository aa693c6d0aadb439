package wav_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"callrec/recorder/wav"
)

func TestParse(t *testing.T) {
	stereo := wav.Info{Format: wav.FormatMulaw, Channels: 2, SampleRate: 8000, BitsPerSample: 8, BlockAlign: 2, DataOffset: 58}
	withData := func(i wav.Info, n int64) wav.Info { i.DataBytes = n; return i }
	// A streaming writer's placeholder: data size 0xFFFFFFFF.
	placeholder := cat(recording(0, nil)[:wav.DataSizeOffset], le32(0xFFFFFFFF), pattern(0, 4))

	tests := []struct {
		name      string
		in        []byte
		want      wav.Info
		wantAvail int64
	}{
		{"empty recording", recording(0, nil), withData(stereo, 0), 0},
		{"one frame", recording(320, pattern(0, 320)), withData(stereo, 320), 320},
		{"header behind the data", recording(320, pattern(0, 960)), withData(stereo, 320), 320},
		{"header ahead of the data", recording(16000, pattern(0, 100)), withData(stereo, 16000), 100},
		{"torn trailing byte", recording(16000, pattern(0, 101)), withData(stereo, 16000), 100},
		{"streaming placeholder size", placeholder, withData(stereo, 0xFFFFFFFF), 4},
		{
			"pcm with LIST before data", pcmListFixture(),
			wav.Info{Format: wav.FormatPCM, Channels: 1, SampleRate: 44100, BitsPerSample: 16, BlockAlign: 2, DataOffset: 60, DataBytes: 8}, 8,
		},
		{
			"extensible reports sub-format", extensibleFixture(),
			wav.Info{Format: wav.FormatPCM, Channels: 2, SampleRate: 48000, BitsPerSample: 16, BlockAlign: 4, DataOffset: 68, DataBytes: 4}, 4,
		},
		{
			"unknown chunks and second fmt skipped",
			riffWave(
				chunk("JUNK", make([]byte, 3)),
				chunk("fmt ", cat(le16(wav.FormatALaw), le16(1), le32(8000), le32(8000), le16(1), le16(8))),
				chunk("fmt ", cat(le16(wav.FormatPCM), le16(2), le32(1), le32(4), le16(4), le16(16))),
				chunk("data", []byte{0xD5}),
			),
			wav.Info{Format: wav.FormatALaw, Channels: 1, SampleRate: 8000, BitsPerSample: 8, BlockAlign: 1, DataOffset: 12 + 12 + 24 + 24 + 8, DataBytes: 1}, 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size := int64(len(tt.in))
			got, err := wav.Parse(bytes.NewReader(tt.in), size)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Parse (-got +want):\n%s", diff)
			}
			if avail := got.AvailableDataBytes(size); avail != tt.wantAvail {
				t.Errorf("AvailableDataBytes(%d) = %d, want %d", size, avail, tt.wantAvail)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	goodFmt := cat(le16(wav.FormatMulaw), le16(2), le32(8000), le32(16000), le16(2), le16(8))
	errRead := errors.New("disk on fire")

	type testCase struct {
		name string
		r    interface {
			ReadAt([]byte, int64) (int, error)
		}
		size    int64
		wantErr error
	}
	in := func(name string, b []byte, wantErr error) testCase {
		return testCase{name, bytes.NewReader(b), int64(len(b)), wantErr}
	}
	tests := []testCase{
		in("empty", nil, wav.ErrTruncated),
		in("11 bytes", []byte("RIFF\x00\x00\x00\x00WAV"), wav.ErrTruncated),
		in("garbage", []byte("hello, this is not a wav file at all"), wav.ErrNotWAVE),
		in("riff but avi", []byte("RIFF\x10\x00\x00\x00AVI LIST\x00\x00\x00\x00"), wav.ErrNotWAVE),
		in("rf64", []byte("RF64\xff\xff\xff\xffWAVEds64"), wav.ErrNotWAVE),
		in("no chunks", riffWave(), wav.ErrTruncated),
		in("fmt too small", riffWave(chunk("fmt ", goodFmt[:12]), chunk("data", nil)), wav.ErrMalformed),
		in("zero channels", riffWave(chunk("fmt ", cat(le16(7), le16(0), goodFmt[4:])), chunk("data", nil)), wav.ErrMalformed),
		in("zero sample rate", riffWave(chunk("fmt ", cat(goodFmt[:4], le32(0), goodFmt[8:])), chunk("data", nil)), wav.ErrMalformed),
		in("huge sample rate", riffWave(chunk("fmt ", cat(goodFmt[:4], le32(0x80000000), goodFmt[8:])), chunk("data", nil)), wav.ErrMalformed),
		in("zero block align", riffWave(chunk("fmt ", cat(goodFmt[:12], le16(0), le16(8))), chunk("data", nil)), wav.ErrMalformed),
		in("data before fmt", riffWave(chunk("data", []byte{1, 2}), chunk("fmt ", goodFmt)), wav.ErrMalformed),
		in("no data chunk", riffWave(chunk("fmt ", goodFmt), chunk("LIST", []byte("INFO"))), wav.ErrTruncated),
		in("chunk size past the end", riffWave(chunk("fmt ", goodFmt), cat([]byte("JUNK"), le32(0xFFFFFFF0)), chunk("data", nil)), wav.ErrTruncated),
		{"size larger than reader", bytes.NewReader(recording(0, nil)[:30]), 100, io.ErrUnexpectedEOF},
		{"negative size", bytes.NewReader(nil), -1, nil},
		{"read error", failingReader{errRead}, 100, errRead},
	}
	// Every proper prefix of our header is truncated.
	hdr := recording(0, nil)
	for n := range wav.HeaderSize {
		tests = append(tests, in(fmt.Sprintf("header cut at %d", n), hdr[:n], wav.ErrTruncated))
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wav.Parse(tt.r, tt.size)
			if err == nil {
				t.Fatalf("Parse = %+v, want an error", got)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Parse error = %v, want one wrapping %v", err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "wav: ") {
				t.Errorf("Parse error %q lacks the \"wav: \" prefix", err)
			}
			if diff := cmp.Diff(got, wav.Info{}); diff != "" {
				t.Errorf("Parse returned a non-zero Info with its error (-got +want):\n%s", diff)
			}
		})
	}
}

type failingReader struct{ err error }

func (f failingReader) ReadAt([]byte, int64) (int, error) { return 0, f.err }
