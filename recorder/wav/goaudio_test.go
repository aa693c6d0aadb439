package wav_test

import (
	"testing"

	goaudiowav "github.com/go-audio/wav"
	"github.com/google/go-cmp/cmp"

	"callrec/recorder/wav"
)

// TestGoAudioReadsOurFiles cross-checks our header with an independent
// decoder: github.com/go-audio/wav must see stereo 8 kHz 8-bit μ-law and
// return the sample bytes we wrote (it returns 8-bit samples as their raw
// byte values).
func TestGoAudioReadsOurFiles(t *testing.T) {
	customer := pattern(0x00, 160) // one 20 ms frame per track
	agent := pattern(0x80, 160)
	frames := interleave(customer, agent)

	tests := []struct {
		name   string
		file   []byte
		repair bool
	}{
		{"written with final sizes", recording(int64(len(frames)), frames), false},
		{"repaired after a crash", recording(0, append(frames, 0x42)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tempFile(t, tt.file)
			if tt.repair {
				if _, err := wav.Repair(f, int64(len(tt.file))); err != nil {
					t.Fatalf("Repair: %v", err)
				}
			}

			d := goaudiowav.NewDecoder(f)
			d.ReadInfo()
			if err := d.Err(); err != nil {
				t.Fatalf("go-audio ReadInfo: %v", err)
			}
			gotFmt := []int{int(d.WavAudioFormat), int(d.NumChans), int(d.SampleRate), int(d.BitDepth)}
			wantFmt := []int{7, 2, 8000, 8}
			if diff := cmp.Diff(gotFmt, wantFmt); diff != "" {
				t.Errorf("go-audio format, channels, rate, bits (-got +want):\n%s", diff)
			}

			buf, err := d.FullPCMBuffer()
			if err != nil {
				t.Fatalf("go-audio FullPCMBuffer: %v", err)
			}
			want := make([]int, len(frames))
			for i, b := range frames {
				want[i] = int(b)
			}
			if diff := cmp.Diff(buf.Data, want); diff != "" {
				t.Errorf("go-audio samples (-got +want):\n%s", diff)
			}

			// Our own view of the same file: each channel is what was sent.
			info, err := wav.Parse(f, int64(len(tt.file)))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			data := fileBytes(t, f)[info.DataOffset:]
			got := wav.Deinterleave(data, info.Channels)
			if diff := cmp.Diff(got, [][]byte{customer, agent}); diff != "" {
				t.Errorf("channels (-got +want):\n%s", diff)
			}
		})
	}
}
