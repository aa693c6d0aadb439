package wav_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"callrec/recorder/wav"
)

// fuzzSeeds are the headers and fixtures the fuzz targets start from.
func fuzzSeeds() [][]byte {
	frames := interleave(pattern(0, 160), pattern(0x80, 160))
	return [][]byte{
		recording(0, nil),
		recording(int64(len(frames)), frames),
		recording(0, append(frames, 0x42)),
		recording(16000, frames[:100]),
		recording(0, nil)[:30],
		pcmListFixture(),
		extensibleFixture(),
		riffWave(chunk("data", []byte{1, 2})),
		[]byte("RIFF\xff\xff\xff\xffWAVEfmt \xff\xff\xff\xff"),
		[]byte("not a wav file"),
		nil,
	}
}

// FuzzParse checks that Parse never panics and that what it returns on
// success is usable: the data starts inside the file and the format fields
// are positive.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		size := int64(len(in))
		info, err := wav.Parse(bytes.NewReader(in), size)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "wav: ") {
				t.Errorf("Parse error %q lacks the \"wav: \" prefix", err)
			}
			return
		}
		if info.DataOffset < 12 || info.DataOffset > size {
			t.Errorf("DataOffset = %d, want within [12, %d]", info.DataOffset, size)
		}
		if info.BlockAlign <= 0 || info.Channels <= 0 || info.SampleRate <= 0 || info.DataBytes < 0 {
			t.Errorf("Parse = %+v, want positive BlockAlign, Channels, SampleRate and DataBytes >= 0", info)
		}
		if n := info.AvailableDataBytes(size); n < 0 || n > size-info.DataOffset || n%int64(info.BlockAlign) != 0 {
			t.Errorf("AvailableDataBytes(%d) = %d for %+v", size, n, info)
		}
	})
}

// FuzzRepair checks that Repair never panics, leaves a file it refuses
// untouched, and otherwise leaves a file that parses with the reported size
// and needs no further repair.
func FuzzRepair(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		file := &memFile{b: bytes.Clone(in)}
		res, err := wav.Repair(file, int64(len(in)))
		if err != nil {
			if diff := cmp.Diff(file.b, in); diff != "" {
				t.Errorf("Repair failed with %v and changed the file (-got +want):\n%s", err, diff)
			}
			return
		}
		size := int64(len(file.b))
		info, err := wav.Parse(file, size)
		if err != nil {
			t.Fatalf("Parse after Repair = %+v: %v", res, err)
		}
		if info.DataOffset != wav.HeaderSize || info.DataBytes != res.DataBytes || size != wav.HeaderSize+res.DataBytes {
			t.Errorf("after Repair = %+v: %+v in a %d-byte file", res, info, size)
		}
		if got := int64(len(in)) - size; len(in) >= wav.HeaderSize && got != res.TruncatedBytes {
			t.Errorf("file shrank by %d bytes, Repair reported %d", got, res.TruncatedBytes)
		}
		again, err := wav.Repair(file, size)
		if err != nil || again.Rewritten || again.TruncatedBytes != 0 {
			t.Errorf("second Repair = %+v, %v; want nothing to do", again, err)
		}
	})
}
