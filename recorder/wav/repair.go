package wav

import (
	"encoding/binary"
	"fmt"
	"io"
)

// File is what Repair needs of a recording file; *os.File satisfies it.
type File interface {
	io.ReaderAt
	io.WriterAt
	Truncate(size int64) error
}

// RepairResult says what Repair found and did.
type RepairResult struct {
	// ClaimedDataBytes is the data size the header claimed before repair
	// (0 when the header itself was torn).
	ClaimedDataBytes int64
	// DataBytes is the data size the header claims after repair: the whole
	// sample frames on disk.
	DataBytes int64
	// TruncatedBytes is the size of the torn trailing partial sample frame
	// cut from the end of the file (0 or 1 for stereo 8-bit audio).
	TruncatedBytes int64
	// Rewritten reports whether the header was written.
	Rewritten bool
}

// Repair makes the header of a recording that was being written when the
// recorder died match the audio on disk. size is the file's current length.
//
// The file must have the layout AppendHeader writes, with the data chunk
// running to the end of the file; other valid WAV files are left alone with
// an error wrapping ErrLayout. Repair takes the data size from the file size
// (size - HeaderSize), truncates a torn trailing partial sample frame (such
// as one byte of a two-byte stereo frame), and rewrites the RIFF, fact and
// data sizes if any differs from that. A file already consistent is not
// written to (Rewritten is false).
//
// A file shorter than HeaderSize is a crash during the very first write: the
// recorder writes the header before any audio, so nothing else is in it.
// Repair writes a full header for 2-channel 8000 Hz μ-law with no data.
//
// A file of HeaderSize bytes or more whose header does not parse is returned
// as an error (wrapping ErrNotWAVE, ErrTruncated or ErrMalformed) and not
// modified: its audio may still be recoverable by hand.
//
// Data beyond MaxDataBytes is left in the file but not covered by the
// header. Repair does not sync; the caller syncs the file afterwards. Running
// Repair again after it fails or is interrupted is safe.
func Repair(f File, size int64) (RepairResult, error) {
	var res RepairResult
	if size < 0 {
		return res, fmt.Errorf("wav: repair: invalid file size %d", size)
	}
	if size < HeaderSize {
		hdr := AppendHeader(make([]byte, 0, HeaderSize), 2, 8000, 0)
		if _, err := f.WriteAt(hdr, 0); err != nil {
			return res, fmt.Errorf("wav: repair: write header over %d-byte file: %w", size, err)
		}
		res.Rewritten = true
		return res, nil
	}

	l, err := parse(f, size)
	if err != nil {
		return res, err
	}
	if l.fmtOffset != FmtOffset || l.fmtSize != fmtChunkSize ||
		l.factOffset != FactOffset || l.factSize != factChunkSize ||
		l.info.DataOffset != HeaderSize {
		return res, fmt.Errorf("%w: data at offset %d, fmt chunk at %d (%d bytes), fact chunk at %d",
			ErrLayout, l.info.DataOffset, l.fmtOffset, l.fmtSize, l.factOffset)
	}

	blockAlign := int64(l.info.BlockAlign)
	onDisk := size - HeaderSize
	torn := onDisk % blockAlign
	data := clampData(onDisk-torn, blockAlign)
	res.ClaimedDataBytes = l.info.DataBytes
	res.DataBytes = data
	res.TruncatedBytes = torn

	if torn > 0 {
		if err := f.Truncate(size - torn); err != nil {
			return res, fmt.Errorf("wav: repair: truncate %d-byte torn sample frame: %w", torn, err)
		}
	}

	wantRIFF, wantFact, wantData := riffSize(data), uint32(data/blockAlign), uint32(data)
	if l.riffSize == wantRIFF && l.factSamples == wantFact && uint32(l.info.DataBytes) == wantData {
		return res, nil
	}
	// Patch the sizes in a copy of the header and write it back in one
	// piece, keeping the format fields as they are.
	hdr := make([]byte, HeaderSize)
	if err := readAt(f, hdr, 0); err != nil {
		return res, fmt.Errorf("wav: repair: %w", err)
	}
	le := binary.LittleEndian
	le.PutUint32(hdr[RIFFSizeOffset:], wantRIFF)
	le.PutUint32(hdr[FactSamplesOffset:], wantFact)
	le.PutUint32(hdr[DataSizeOffset:], wantData)
	if _, err := f.WriteAt(hdr, 0); err != nil {
		return res, fmt.Errorf("wav: repair: write header: %w", err)
	}
	res.Rewritten = true
	return res, nil
}
