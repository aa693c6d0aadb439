package wav_test

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"callrec/recorder/wav"
)

// *os.File is the File the recorder passes to Repair.
var _ wav.File = (*os.File)(nil)

// chunk returns a RIFF chunk: id, little-endian size, body and, for an odd
// size, the pad byte.
func chunk(id string, body []byte) []byte {
	b := append([]byte(id), le32(uint32(len(body)))...)
	b = append(b, body...)
	if len(body)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

// riffWave wraps chunks in a RIFF/WAVE header with a correct RIFF size.
func riffWave(chunks ...[]byte) []byte {
	var body []byte
	for _, c := range chunks {
		body = append(body, c...)
	}
	b := append([]byte("RIFF"), le32(uint32(4+len(body)))...)
	b = append(b, "WAVE"...)
	return append(b, body...)
}

func le16(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// pcmListFixture is a 16-bit mono 44.1 kHz PCM file with a 16-byte fmt chunk
// and an odd-sized LIST chunk (so a pad byte) before 8 bytes of data, which
// start at offset 12 + 24 + 16 + 8 = 60.
func pcmListFixture() []byte {
	fmtBody := cat(le16(wav.FormatPCM), le16(1), le32(44100), le32(88200), le16(2), le16(16))
	return riffWave(
		chunk("fmt ", fmtBody),
		chunk("LIST", []byte("INFOabc")),
		chunk("data", []byte{1, 0, 2, 0, 3, 0, 4, 0}),
	)
}

// extensibleFixture is a WAVE_FORMAT_EXTENSIBLE 16-bit stereo 48 kHz PCM
// file with a 40-byte fmt chunk; its data starts at 12 + 48 + 8 = 68.
func extensibleFixture() []byte {
	fmtBody := cat(le16(wav.FormatExtensible), le16(2), le32(48000), le32(192000), le16(4), le16(16),
		le16(22), le16(16), le32(3),
		[]byte{0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71})
	return riffWave(chunk("fmt ", fmtBody), chunk("data", []byte{1, 2, 3, 4}))
}

// recording returns a file in the recorder's layout whose header claims
// claimed bytes of data and which holds data.
func recording(claimed int64, data []byte) []byte {
	return append(wav.AppendHeader(nil, 2, 8000, claimed), data...)
}

// interleave builds stereo sample frames from the two tracks.
func interleave(left, right []byte) []byte {
	out := make([]byte, 0, 2*len(left))
	for i := range left {
		out = append(out, left[i], right[i])
	}
	return out
}

// pattern returns n bytes counting from start.
func pattern(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

// tempFile writes content to a new temporary file and returns it open for
// reading and writing.
func tempFile(t *testing.T, content []byte) *os.File {
	t.Helper()
	name := filepath.Join(t.TempDir(), "rec.wav")
	if err := os.WriteFile(name, content, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// fileBytes returns the whole content of f.
func fileBytes(t *testing.T, f *os.File) []byte {
	t.Helper()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// memFile is an in-memory wav.File.
type memFile struct{ b []byte }

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

func (m *memFile) Truncate(size int64) error {
	if size < 0 || size > int64(len(m.b)) {
		return errors.New("bad truncate size")
	}
	m.b = m.b[:size]
	return nil
}

// spyFile counts the writes and truncations made through it.
type spyFile struct {
	wav.File
	writes, truncates int
}

func (s *spyFile) WriteAt(p []byte, off int64) (int, error) {
	s.writes++
	return s.File.WriteAt(p, off)
}

func (s *spyFile) Truncate(size int64) error {
	s.truncates++
	return s.File.Truncate(size)
}
