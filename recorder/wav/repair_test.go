package wav_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"callrec/recorder/wav"
)

func TestRepair(t *testing.T) {
	audio := pattern(0x10, 961) // 480 stereo frames and one torn byte
	empty := recording(0, nil)

	tests := []struct {
		name         string
		file         []byte
		want         wav.RepairResult
		wantFile     []byte
		wantModified bool
	}{
		{
			name:         "crash after writes past the last header update",
			file:         recording(320, audio[:960]),
			want:         wav.RepairResult{ClaimedDataBytes: 320, DataBytes: 960, Rewritten: true},
			wantFile:     recording(960, audio[:960]),
			wantModified: true,
		},
		{
			name:         "torn trailing byte, header up to date",
			file:         recording(960, audio),
			want:         wav.RepairResult{ClaimedDataBytes: 960, DataBytes: 960, TruncatedBytes: 1},
			wantFile:     recording(960, audio[:960]),
			wantModified: true,
		},
		{
			name:         "torn trailing byte, header behind",
			file:         recording(320, audio),
			want:         wav.RepairResult{ClaimedDataBytes: 320, DataBytes: 960, TruncatedBytes: 1, Rewritten: true},
			wantFile:     recording(960, audio[:960]),
			wantModified: true,
		},
		{
			name:         "header ahead of the data on disk",
			file:         recording(16000, audio[:320]),
			want:         wav.RepairResult{ClaimedDataBytes: 16000, DataBytes: 320, Rewritten: true},
			wantFile:     recording(320, audio[:320]),
			wantModified: true,
		},
		{
			name:         "only a torn byte after the header",
			file:         recording(0, audio[:1]),
			want:         wav.RepairResult{TruncatedBytes: 1},
			wantFile:     empty,
			wantModified: true,
		},
		{
			name:         "empty file",
			file:         nil,
			want:         wav.RepairResult{Rewritten: true},
			wantFile:     empty,
			wantModified: true,
		},
		{
			name:         "torn header",
			file:         empty[:30],
			want:         wav.RepairResult{Rewritten: true},
			wantFile:     empty,
			wantModified: true,
		},
		{
			name:         "header one byte short, garbage",
			file:         bytes.Repeat([]byte{0xAA}, wav.HeaderSize-1),
			want:         wav.RepairResult{Rewritten: true},
			wantFile:     empty,
			wantModified: true,
		},
		{
			name:     "consistent recording",
			file:     recording(960, audio[:960]),
			want:     wav.RepairResult{ClaimedDataBytes: 960, DataBytes: 960},
			wantFile: recording(960, audio[:960]),
		},
		{
			name:     "consistent empty recording",
			file:     empty,
			want:     wav.RepairResult{},
			wantFile: empty,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tempFile(t, tt.file)
			spy := &spyFile{File: f}
			got, err := wav.Repair(spy, int64(len(tt.file)))
			if err != nil {
				t.Fatalf("Repair: %v", err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Repair (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(fileBytes(t, f), tt.wantFile); diff != "" {
				t.Errorf("file after Repair (-got +want):\n%s", diff)
			}
			if modified := spy.writes+spy.truncates > 0; modified != tt.wantModified {
				t.Errorf("Repair made %d writes and %d truncations, want modified = %v",
					spy.writes, spy.truncates, tt.wantModified)
			}

			// The repaired file parses to what Repair reported, and a second
			// Repair has nothing to do.
			size := int64(len(tt.wantFile))
			info, err := wav.Parse(f, size)
			if err != nil {
				t.Fatalf("Parse after Repair: %v", err)
			}
			if info.DataBytes != got.DataBytes || info.DataOffset+info.DataBytes != size {
				t.Errorf("after Repair: data %d bytes at %d in a %d-byte file, want %d bytes to the end",
					info.DataBytes, info.DataOffset, size, got.DataBytes)
			}
			again, err := wav.Repair(spy, size)
			if err != nil || again.Rewritten || again.TruncatedBytes != 0 {
				t.Errorf("second Repair = %+v, %v; want nothing to do", again, err)
			}
		})
	}
}

func TestRepairRefuses(t *testing.T) {
	garbage := bytes.Repeat([]byte("not a wav "), 10)
	noData := cat(recording(0, nil)[:wav.DataChunkOffset], chunk("JUNK", make([]byte, 20)))
	tests := []struct {
		name    string
		file    []byte
		size    int64
		wantErr error
	}{
		{"garbage", garbage, int64(len(garbage)), wav.ErrNotWAVE},
		{"zeroed header", make([]byte, 200), 200, wav.ErrNotWAVE},
		{"pcm with LIST", pcmListFixture(), int64(len(pcmListFixture())), wav.ErrLayout},
		{"extensible", extensibleFixture(), int64(len(extensibleFixture())), wav.ErrLayout},
		{"no data chunk", noData, int64(len(noData)), wav.ErrTruncated},
		{"negative size", []byte{}, -1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := tt.file
			if tt.size >= 0 && tt.size < wav.HeaderSize {
				t.Fatalf("bad test: a %d-byte file is a torn header, which Repair rewrites", tt.size)
			}
			f := tempFile(t, file)
			spy := &spyFile{File: f}
			got, err := wav.Repair(spy, tt.size)
			if err == nil {
				t.Fatalf("Repair = %+v, want an error", got)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Repair error = %v, want one wrapping %v", err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "wav: ") {
				t.Errorf("Repair error %q lacks the \"wav: \" prefix", err)
			}
			if spy.writes+spy.truncates > 0 {
				t.Errorf("Repair modified the file it refused (%d writes, %d truncations)", spy.writes, spy.truncates)
			}
			if diff := cmp.Diff(fileBytes(t, f), file); diff != "" {
				t.Errorf("file after refused Repair (-got +want):\n%s", diff)
			}
		})
	}
}

func TestRepairWriteErrors(t *testing.T) {
	errDisk := errors.New("disk full")
	tests := []struct {
		name string
		file []byte
	}{
		{"torn header", nil},
		{"header behind", recording(0, pattern(0, 4))},
		{"torn byte", recording(2, pattern(0, 3))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &failingWriter{memFile: memFile{b: tt.file}, err: errDisk}
			_, err := wav.Repair(f, int64(len(tt.file)))
			if !errors.Is(err, errDisk) || !strings.HasPrefix(err.Error(), "wav: repair: ") {
				t.Errorf("Repair error = %v, want \"wav: repair: ...\" wrapping %v", err, errDisk)
			}
		})
	}
}

type failingWriter struct {
	memFile
	err error
}

func (f *failingWriter) WriteAt([]byte, int64) (int, error) { return 0, f.err }
func (f *failingWriter) Truncate(int64) error               { return f.err }
