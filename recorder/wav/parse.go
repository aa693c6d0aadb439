package wav

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Errors returned by Parse and Repair, wrapped with details; test for them
// with errors.Is.
var (
	// ErrNotWAVE means the input does not start with a RIFF/WAVE header.
	ErrNotWAVE = errors.New("wav: not a RIFF/WAVE file")
	// ErrTruncated means the input ends before the header does: before the
	// fmt chunk or the start of the data chunk.
	ErrTruncated = errors.New("wav: truncated header")
	// ErrMalformed means the header is complete but invalid, such as a fmt
	// chunk with zero channels or a data chunk before the fmt chunk.
	ErrMalformed = errors.New("wav: malformed header")
	// ErrLayout means Repair met a valid WAV file whose header is not the
	// layout AppendHeader writes; Repair changes only files it wrote.
	ErrLayout = errors.New("wav: not a recorder header layout")
)

// Info describes a WAV file as its header declares it.
type Info struct {
	// Format is the fmt chunk's format tag (FormatMulaw, FormatPCM…). For
	// WAVE_FORMAT_EXTENSIBLE it is the sub-format code from the GUID.
	Format uint16
	// Channels, SampleRate, BitsPerSample and BlockAlign are the fmt
	// chunk's fields; Channels, SampleRate and BlockAlign are positive.
	Channels, SampleRate, BitsPerSample, BlockAlign int
	// DataOffset is the file offset of the first audio byte, just after
	// the data chunk header. It is within [12, size].
	DataOffset int64
	// DataBytes is the data size the header claims. It may exceed what the
	// file holds (a crash before the header was updated, or a streaming
	// writer's placeholder); see AvailableDataBytes.
	DataBytes int64
}

// AvailableDataBytes returns how many bytes of whole sample frames a file of
// the given size really holds: the claimed DataBytes, capped at the bytes
// after DataOffset, rounded down to a multiple of BlockAlign.
func (i Info) AvailableDataBytes(size int64) int64 {
	n := min(i.DataBytes, size-i.DataOffset)
	if n <= 0 || i.BlockAlign <= 0 {
		return 0
	}
	return n - n%int64(i.BlockAlign)
}

// layout is what parse learns about a file: its Info plus where the chunks
// and size fields Repair rewrites are.
type layout struct {
	info        Info
	riffSize    uint32
	fmtOffset   int64 // offset of the fmt chunk header
	fmtSize     int64
	factOffset  int64 // offset of the fact chunk header, -1 without one
	factSize    int64
	factSamples uint32
}

// maxFmtRead is how much of a fmt chunk parse reads: the 40 bytes of
// WAVE_FORMAT_EXTENSIBLE.
const maxFmtRead = 40

// Parse reads the header of the RIFF/WAVE file r of the given size and
// returns its format and where its audio data is.
//
// Parse walks the chunks from offset 12, skipping unknown ones (a chunk of
// odd size is followed by a pad byte), until it reaches the data chunk; it
// does not read past the data chunk header. The fmt chunk may be 16 (PCM),
// 18 (with cbSize) or 40 (extensible) bytes, or longer, and must come before
// the data chunk. The RIFF size field is ignored and a data size larger than
// the file is returned as claimed, so a file whose header was not updated
// before a crash still parses.
//
// Errors wrap ErrNotWAVE, ErrTruncated or ErrMalformed, or the reader's
// error. Parse never panics, whatever the input.
func Parse(r io.ReaderAt, size int64) (Info, error) {
	l, err := parse(r, size)
	if err != nil {
		return Info{}, err
	}
	return l.info, nil
}

func parse(r io.ReaderAt, size int64) (layout, error) {
	l := layout{fmtOffset: -1, factOffset: -1}
	if size < 0 {
		return l, fmt.Errorf("wav: invalid file size %d", size)
	}
	if size < 12 {
		return l, fmt.Errorf("%w: file is %d bytes, the RIFF header needs 12", ErrTruncated, size)
	}
	var hdr [12]byte
	if err := readAt(r, hdr[:], 0); err != nil {
		return l, err
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return l, fmt.Errorf("%w: starts with %q", ErrNotWAVE, hdr[:])
	}
	l.riffSize = binary.LittleEndian.Uint32(hdr[4:8])

	for off := int64(12); ; {
		if off > size-8 {
			missing := "data"
			if l.fmtOffset < 0 {
				missing = "fmt"
			}
			return l, fmt.Errorf("%w: no %s chunk in %d bytes", ErrTruncated, missing, size)
		}
		var ch [8]byte
		if err := readAt(r, ch[:], off); err != nil {
			return l, err
		}
		id := string(ch[:4])
		n := int64(binary.LittleEndian.Uint32(ch[4:]))
		body := off + 8
		switch {
		case id == "fmt " && l.fmtOffset < 0:
			info, err := parseFmt(r, body, n, size)
			if err != nil {
				return l, err
			}
			l.info = info
			l.fmtOffset, l.fmtSize = off, n
		case id == "fact" && l.factOffset < 0 && n >= 4 && body+4 <= size:
			var b [4]byte
			if err := readAt(r, b[:], body); err != nil {
				return l, err
			}
			l.factOffset, l.factSize = off, n
			l.factSamples = binary.LittleEndian.Uint32(b[:])
		case id == "data":
			if l.fmtOffset < 0 {
				return l, fmt.Errorf("%w: data chunk at offset %d before any fmt chunk", ErrMalformed, off)
			}
			l.info.DataOffset = body
			l.info.DataBytes = n
			return l, nil
		}
		off = body + n + n&1
	}
}

// parseFmt decodes the fmt chunk whose body of n bytes starts at off.
func parseFmt(r io.ReaderAt, off, n, size int64) (Info, error) {
	if n < 16 {
		return Info{}, fmt.Errorf("%w: fmt chunk of %d bytes, need at least 16", ErrMalformed, n)
	}
	if off+16 > size {
		return Info{}, fmt.Errorf("%w: fmt chunk at offset %d ends past the end of the %d-byte file", ErrTruncated, off-8, size)
	}
	var b [maxFmtRead]byte
	m := min(n, maxFmtRead, size-off)
	if err := readAt(r, b[:m], off); err != nil {
		return Info{}, err
	}
	le := binary.LittleEndian
	info := Info{
		Format:        le.Uint16(b[0:]),
		Channels:      int(le.Uint16(b[2:])),
		BlockAlign:    int(le.Uint16(b[12:])),
		BitsPerSample: int(le.Uint16(b[14:])),
	}
	rate := le.Uint32(b[4:])
	if rate == 0 || rate > math.MaxInt32 {
		return Info{}, fmt.Errorf("%w: fmt chunk with sample rate %d", ErrMalformed, rate)
	}
	info.SampleRate = int(rate)
	if info.Format == FormatExtensible && m >= 26 {
		// cbSize(2) validBits(2) channelMask(4), then the sub-format GUID
		// whose first two bytes are the format code.
		info.Format = le.Uint16(b[24:])
	}
	switch {
	case info.Channels == 0:
		return Info{}, fmt.Errorf("%w: fmt chunk with 0 channels", ErrMalformed)
	case info.BlockAlign == 0:
		return Info{}, fmt.Errorf("%w: fmt chunk with block align 0", ErrMalformed)
	}
	return info, nil
}

// readAt reads exactly len(p) bytes at off.
func readAt(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("wav: read %d bytes at offset %d: %w", len(p), off, err)
}
