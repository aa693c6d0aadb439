package web

import (
	"bufio"
	"fmt"
	"io"

	"callrec"
	"callrec/recorder/wav"
)

// MaxPeakPoints bounds the waveform resolution a client may ask for.
const MaxPeakPoints = 20000

// Peaks is a waveform summary of a stereo recording: per channel, the
// minimum and maximum sample (−1..1) of each of Points equal stretches.
type Peaks struct {
	INUM       callrec.INUM  `json:"inum"`
	DurationMS int64         `json:"duration_ms"`
	SampleRate int           `json:"sample_rate"`
	Points     int           `json:"points"`
	Channels   []PeakChannel `json:"channels"`
}

// PeakChannel is one channel's peaks.
type PeakChannel struct {
	Name string    `json:"name"` // customer (left, inbound) or agent (right, outbound)
	Min  []float32 `json:"min"`
	Max  []float32 `json:"max"`
}

// ComputePeaks reads a μ-law WAV of size bytes (as far as it is written) and
// returns its peaks in points stretches (fewer when the file has fewer
// sample frames).
func ComputePeaks(r io.ReadSeeker, size int64, points int) (*Peaks, error) {
	ra, ok := r.(io.ReaderAt)
	if !ok {
		ra = &seekReaderAt{r}
	}
	info, err := wav.Parse(ra, size)
	if err != nil {
		return nil, fmt.Errorf("peaks: %w", err)
	}
	if info.Format != wav.FormatMulaw || info.BlockAlign != info.Channels {
		return nil, callrec.Errorf(callrec.EINVALID, "peaks: not a μ-law WAV (format %d)", info.Format)
	}
	data := min(info.DataBytes, size-info.DataOffset)
	ch := info.Channels
	frames := data / int64(ch)
	names := []string{"customer", "agent"}
	p := &Peaks{SampleRate: info.SampleRate, DurationMS: frames * 1000 / int64(info.SampleRate)}
	if frames < int64(points) {
		points = int(frames)
	}
	p.Points = points
	for c := 0; c < ch; c++ {
		name := fmt.Sprintf("channel %d", c+1)
		if c < len(names) && ch == 2 {
			name = names[c]
		}
		p.Channels = append(p.Channels, PeakChannel{Name: name, Min: make([]float32, points), Max: make([]float32, points)})
	}
	if points == 0 {
		return p, nil
	}
	if _, err := r.Seek(info.DataOffset, io.SeekStart); err != nil {
		return nil, fmt.Errorf("peaks: %w", err)
	}
	br := bufio.NewReaderSize(io.LimitReader(r, frames*int64(ch)), 64<<10)
	lo := make([]int16, ch)
	hi := make([]int16, ch)
	frame := make([]byte, ch)
	var f int64
	for i := 0; i < points; i++ {
		end := (int64(i) + 1) * frames / int64(points) // stretch i is frames [f, end)
		for c := range ch {
			lo[c], hi[c] = 32767, -32768
		}
		for ; f < end; f++ {
			if _, err := io.ReadFull(br, frame); err != nil {
				return nil, fmt.Errorf("peaks: read audio: %w", err)
			}
			for c, b := range frame {
				v := wav.MulawToLinear[b]
				lo[c], hi[c] = min(lo[c], v), max(hi[c], v)
			}
		}
		for c := range ch {
			p.Channels[c].Min[i] = float32(lo[c]) / 32768
			p.Channels[c].Max[i] = float32(hi[c]) / 32768
		}
	}
	return p, nil
}

// seekReaderAt adapts a ReadSeeker for the header parser (reads only).
type seekReaderAt struct{ r io.ReadSeeker }

func (s *seekReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if _, err := s.r.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	n, err := io.ReadFull(s.r, p)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, err
}
