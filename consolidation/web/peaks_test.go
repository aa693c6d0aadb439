package web_test

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"callrec"
	"callrec/consolidation/audit"
	"callrec/consolidation/users"
	"callrec/consolidation/web"
	"callrec/recorder/wav"
)

// brutePeaks is the definition: stretch i of points covers sample frames
// [i*frames/points, (i+1)*frames/points); its min and max are over the
// decoded samples of each channel, scaled by 1/32768.
func brutePeaks(data []byte, channels, points int) [][2][]float32 {
	frames := len(data) / channels
	points = min(points, frames)
	lin := wav.MulawDecode(nil, data[:frames*channels])
	out := make([][2][]float32, channels)
	for c := range out {
		out[c] = [2][]float32{make([]float32, points), make([]float32, points)}
		for i := range points {
			lo, hi := 1<<20, -(1 << 20)
			for f := i * frames / points; f < (i+1)*frames/points; f++ {
				v := int(lin[f*channels+c])
				lo, hi = min(lo, v), max(hi, v)
			}
			out[c][0][i], out[c][1][i] = float32(lo)/32768, float32(hi)/32768
		}
	}
	return out
}

func randomAudio(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return b
}

func TestComputePeaksMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, frames := range []int{1, 7, 999, 4001} {
		data := randomAudio(r, 2*frames)
		file := append(wav.AppendHeader(nil, 2, 8000, int64(len(data))), data...)
		for _, points := range []int{1, 3, 1000, web.MaxPeakPoints} {
			p, err := web.ComputePeaks(bytes.NewReader(file), int64(len(file)), points)
			if err != nil {
				t.Fatalf("%d frames, %d points: %v", frames, points, err)
			}
			want := brutePeaks(data, 2, points)
			if p.Points != len(want[0][0]) || p.SampleRate != 8000 || p.DurationMS != int64(frames)*1000/8000 || len(p.Channels) != 2 {
				t.Fatalf("%d frames, %d points: points %d, rate %d, duration %d ms, %d channels; want %d points",
					frames, points, p.Points, p.SampleRate, p.DurationMS, len(p.Channels), len(want[0][0]))
			}
			for c, name := range []string{"customer", "agent"} {
				ch := p.Channels[c]
				if ch.Name != name {
					t.Errorf("channel %d is %q, want %q", c, ch.Name, name)
				}
				if diff := cmp.Diff(want[c][0], ch.Min); diff != "" {
					t.Errorf("%d frames, %d points, %s min (-want +got):\n%s", frames, points, name, diff)
				}
				if diff := cmp.Diff(want[c][1], ch.Max); diff != "" {
					t.Errorf("%d frames, %d points, %s max (-want +got):\n%s", frames, points, name, diff)
				}
			}
		}
	}
}

func TestComputePeaksKnownValues(t *testing.T) {
	// μ-law 0xFF and 0x7F are 0, 0x80 is +32124, 0x00 is -32124.
	const hi, lo = float32(32124) / 32768, float32(-32124) / 32768
	data := []byte{
		0xFF, 0x80, // frame 0: customer, agent
		0x00, 0x80,
		0x80, 0x00,
		0x7F, 0x00,
	}
	file := append(wav.AppendHeader(nil, 2, 8000, int64(len(data))), data...)
	p, err := web.ComputePeaks(bytes.NewReader(file), int64(len(file)), 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []web.PeakChannel{
		{Name: "customer", Min: []float32{lo, 0}, Max: []float32{0, hi}},
		{Name: "agent", Min: []float32{hi, lo}, Max: []float32{hi, lo}},
	}
	if diff := cmp.Diff(want, p.Channels); diff != "" {
		t.Errorf("peaks (-want +got):\n%s", diff)
	}

	// More points than frames: one point per frame, min = max = the sample.
	p, err = web.ComputePeaks(bytes.NewReader(file), int64(len(file)), 100)
	if err != nil {
		t.Fatal(err)
	}
	want = []web.PeakChannel{
		{Name: "customer", Min: []float32{0, lo, hi, 0}, Max: []float32{0, lo, hi, 0}},
		{Name: "agent", Min: []float32{hi, hi, lo, lo}, Max: []float32{hi, hi, lo, lo}},
	}
	if diff := cmp.Diff(want, p.Channels); diff != "" || p.Points != 4 {
		t.Errorf("%d points (-want +got):\n%s", p.Points, diff)
	}
}

func TestComputePeaksPartialFiles(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	data := randomAudio(r, 1001) // 500 frames and half of one
	tests := []struct {
		name   string
		header []byte
		frames int
	}{
		// A file still being written: the header claims more than is synced.
		{"header ahead of the data", wav.AppendHeader(nil, 2, 8000, 100000), 500},
		// A header not yet updated (a crash): zero data claimed.
		{"data ahead of the header", wav.AppendHeader(nil, 2, 8000, 600), 300},
	}
	for _, tt := range tests {
		file := append(bytes.Clone(tt.header), data...)
		p, err := web.ComputePeaks(bytes.NewReader(file), int64(len(file)), 50)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		want := brutePeaks(data[:2*tt.frames], 2, 50)
		if p.DurationMS != int64(tt.frames)*1000/8000 {
			t.Errorf("%s: duration %d ms, want %d", tt.name, p.DurationMS, tt.frames*1000/8000)
		}
		if diff := cmp.Diff(want[0][1], p.Channels[0].Max); diff != "" {
			t.Errorf("%s: customer max (-want +got):\n%s", tt.name, diff)
		}
		if diff := cmp.Diff(want[1][0], p.Channels[1].Min); diff != "" {
			t.Errorf("%s: agent min (-want +got):\n%s", tt.name, diff)
		}
	}

	// No audio yet: no points, but the channels are there.
	hdr := wav.AppendHeader(nil, 2, 8000, 0)
	p, err := web.ComputePeaks(bytes.NewReader(hdr), int64(len(hdr)), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if p.Points != 0 || len(p.Channels) != 2 || len(p.Channels[0].Min) != 0 || p.DurationMS != 0 {
		t.Errorf("empty recording peaks = %+v", p)
	}
}

func TestComputePeaksMono(t *testing.T) {
	data := []byte{0x00, 0x80, 0xFF, 0x7F}
	file := append(wav.AppendHeader(nil, 1, 8000, int64(len(data))), data...)
	p, err := web.ComputePeaks(bytes.NewReader(file), int64(len(file)), 2)
	if err != nil {
		t.Fatal(err)
	}
	want := brutePeaks(data, 1, 2)
	if len(p.Channels) != 1 || p.Channels[0].Name != "channel 1" || !cmp.Equal(p.Channels[0].Min, want[0][0]) || !cmp.Equal(p.Channels[0].Max, want[0][1]) {
		t.Errorf("mono peaks = %+v, want one channel %v", p.Channels, want)
	}
}

// pcmWAV is a 16-bit stereo PCM WAV: not what a recorder writes.
func pcmWAV(frames int) []byte {
	le := binary.LittleEndian
	data := frames * 4
	b := []byte("RIFF")
	b = le.AppendUint32(b, uint32(36+data))
	b = append(b, "WAVEfmt "...)
	b = le.AppendUint32(b, 16)
	b = le.AppendUint16(b, wav.FormatPCM)
	b = le.AppendUint16(b, 2)
	b = le.AppendUint32(b, 8000)
	b = le.AppendUint32(b, 32000)
	b = le.AppendUint16(b, 4)
	b = le.AppendUint16(b, 16)
	b = append(b, "data"...)
	b = le.AppendUint32(b, uint32(data))
	return append(b, make([]byte, data)...)
}

func TestComputePeaksRejects(t *testing.T) {
	for name, file := range map[string][]byte{
		"PCM":         pcmWAV(100),
		"not a WAV":   []byte("ID3\x04 this is an mp3, honest" + string(make([]byte, 100))),
		"cut header":  wav.AppendHeader(nil, 2, 8000, 100)[:30],
		"empty input": nil,
	} {
		p, err := web.ComputePeaks(bytes.NewReader(file), int64(len(file)), 10)
		if err == nil {
			t.Errorf("%s: peaks %+v, want an error", name, p)
		}
	}
	_, err := web.ComputePeaks(bytes.NewReader(pcmWAV(10)), int64(len(pcmWAV(10))), 10)
	if callrec.ErrorCode(err) != callrec.EINVALID {
		t.Errorf("PCM: error %v, want code %s", err, callrec.EINVALID)
	}
}

func TestPeaksAPI(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seed(t)
	east := e.tokenClient(t, "east-bot", users.Supervisor, "east")
	n := e.inumOf(t, "east1") // 4000 frames
	file := e.files[n]
	path := "/api/recordings/" + string(n) + "/peaks"

	mark := e.auditMark(t)
	for _, tt := range []struct {
		query  string
		points int
	}{{"", 1000}, {"?points=37", 37}, {"?points=20000", 4000}} {
		var got web.Peaks
		east.get(t, path+tt.query).want(t, http.StatusOK).decode(t, &got)
		want, err := web.ComputePeaks(bytes.NewReader(file), int64(len(file)), tt.points)
		if err != nil {
			t.Fatal(err)
		}
		want.INUM = n
		if diff := cmp.Diff(*want, got); diff != "" || got.Points != tt.points {
			t.Errorf("peaks%s: %d points (-want +got):\n%s", tt.query, got.Points, diff)
		}
	}
	view := auditLine{Type: audit.View, Actor: "east-bot", Role: "supervisor", Target: string(n),
		Details: map[string]string{"interaction": "WTeast1", "what": "waveform"}}
	if diff := cmp.Diff([]auditLine{view, view, view}, lines(e.auditSince(t, mark))); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}

	for _, q := range []string{"?points=0", "?points=-3", "?points=abc", "?points=20001", "?points=1.5"} {
		r := east.get(t, path+q)
		if r.Status != http.StatusBadRequest || r.errorCode() != callrec.EINVALID {
			t.Errorf("peaks%s = %s, want 400 invalid", q, r)
		}
	}

	// A recording that is not μ-law is refused with an error, not garbage.
	pcm := mustINUM(t, 77)
	e.recs.put(finishedRecording(pcm, t0, pcmWAV(1000)), pcmWAV(1000))
	comp := e.tokenClient(t, "comp-bot", users.Compliance)
	if r := comp.get(t, "/api/recordings/"+string(pcm)+"/peaks"); r.Status < 400 || r.errorCode() == "" {
		t.Errorf("peaks of a PCM file = %s, want an error", r)
	}
}
