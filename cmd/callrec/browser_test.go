package main

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"callrec"
	"callrec/internal/callrectest"
	"callrec/recorder/wav"
	"callrec/simulate"
)

// TestBrowserPlaysRecording proves the on-disk format plays in a stock
// browser: headless Chromium (Debian's, driven by playwright-core) plays a
// recording in an <audio> element, and its own WAV decoder, at 8 kHz,
// yields the μ-law samples the simulator sent, left = inbound, right =
// outbound.
func TestBrowserPlaysRecording(t *testing.T) {
	script := filepath.Join(callrectest.Root(), "test", "browser", "play.mjs")
	_, errNode := exec.LookPath("node")
	_, errChromium := os.Stat("/usr/bin/chromium")
	_, errPW := os.Stat(filepath.Join(callrectest.Root(), "test", "browser", "node_modules", "playwright-core"))
	if errNode != nil || errChromium != nil || errPW != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("browser test needs node, /usr/bin/chromium and playwright-core (make test-deps installs them): %v %v %v", errNode, errChromium, errPW)
		}
		t.Skipf("SKIPPED: node, /usr/bin/chromium or playwright-core missing; run make test-deps (%v %v %v)", errNode, errChromium, errPW)
	}
	s := startRun(t, testConfig(t))
	sum, err := simulate.Run(t.Context(), simConfig(s, 1, 3*time.Second))
	if err != nil || sum.Failed != 0 {
		t.Fatalf("simulate: %v, %d failed", err, sum.Failed)
	}
	rec := finished(t, s, sum.Calls[0].StreamSID)

	cmd := exec.CommandContext(t.Context(), "node", script, s.HTTPURL+"/", "/api/recordings/"+string(rec.INUM)+"/audio")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("play.mjs: %v", err)
	}
	var got struct {
		Advanced              bool
		CurrentTime, Duration float64
		MediaError            int
		PlayError             string
		Channels, SampleRate  int
		Length                int
		Left, Right           []float64
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("play.mjs output: %v: %s", err, out)
	}
	if !got.Advanced || got.MediaError != 0 || got.PlayError != "" {
		t.Errorf("<audio> did not play: advanced %v at %.2f s, media error %d, play error %q", got.Advanced, got.CurrentTime, got.MediaError, got.PlayError)
	}
	if math.Abs(got.Duration-3) > 0.05 {
		t.Errorf("<audio> duration %.3f s, want 3 s", got.Duration)
	}
	if got.Channels != 2 || got.SampleRate != 8000 || len(got.Left) != 4000 {
		t.Fatalf("decoded %d channels at %d Hz, %d samples", got.Channels, got.SampleRate, len(got.Left))
	}
	for i, ch := range [][]float64{got.Left, got.Right} {
		sent := sum.Calls[0].Tracks[i].Timeline
		for j, v := range ch {
			want := float64(wav.MulawToLinear[sent[j]]) / 32768
			if math.Abs(v-want) > 1e-4 {
				t.Fatalf("track %s sample %d: Chromium decodes %.5f, the μ-law sent is %.5f", callrec.Track(i), j, v, want)
			}
		}
	}
}
