package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"callrec"
	"callrec/consolidation/users"
	"callrec/internal/callrectest"
	"callrec/mediaadapter"
	"callrec/recorder"
	"callrec/recorder/wav"
	"callrec/simulate"
)

const testToken = "12345678901234567890123456789012"

// testConfig is `callrec run` with everything on loopback :0 in a temp dir.
func testConfig(t *testing.T) allConfig {
	t.Helper()
	rc := recorder.DefaultConfig()
	rc.FlushInterval = 50 * time.Millisecond
	return allConfig{
		DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", MediaAddr: "127.0.0.1:0", MediaPath: "/media",
		AuthToken: testToken, Recorder: rc, ShutdownTimeout: 20 * time.Second,
		Media: mediaadapter.Config{StartTimeout: 2 * time.Second, IdleTimeout: 2 * time.Second},
	}
}

// startRun runs the whole system in-process until the test ends; the test
// fails if it does not shut down cleanly.
func startRun(t *testing.T, cfg allConfig) *system {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *system, 1)
	done := make(chan error, 1)
	go func() { done <- runAll(ctx, cfg, callrectest.Logger(t), func(s *system) { ready <- s }) }()
	var s *system
	select {
	case s = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("run failed to start: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("run did not start within 20s")
	}
	tok, err := s.cons.users.CreateToken(ctx, "test-client", users.Admin, nil)
	if err != nil {
		cancel()
		t.Fatalf("API token: %v", err)
	}
	setAPIToken(s.HTTPURL, tok)
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run returned %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("run did not shut down within 30s")
		}
	})
	return s
}

func simConfig(s *system, calls int, d time.Duration) simulate.Config {
	return simulate.Config{URL: s.MediaURL, AuthToken: testToken, Calls: calls, Duration: d, KeepAudio: true, Seed: 7}
}

// apiTokens holds an admin API token per system under test, by host:port.
var apiTokens sync.Map

func setAPIToken(baseURL, tok string) {
	u, err := url.Parse(baseURL)
	if err != nil {
		panic(err)
	}
	apiTokens.Store(u.Host, tok)
}

// apiGet is http.Get with the system's admin API token.
func apiGet(u string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if tok, ok := apiTokens.Load(req.URL.Host); ok {
		req.Header.Set("Authorization", "Bearer "+tok.(string))
	}
	return http.DefaultClient.Do(req)
}

func getJSON(t *testing.T, u string, v any) int {
	t.Helper()
	resp, err := apiGet(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: decode: %v: %s", u, err, b)
		}
	}
	return resp.StatusCode
}

// finished waits until the recording of streamSID is finished and returns it.
func finished(t *testing.T, s *system, streamSID string) *callrec.Recording {
	t.Helper()
	var rec *callrec.Recording
	callrectest.Eventually(t, 10*time.Second, "recording of "+streamSID+" finished", func() bool {
		var list recorder.ListResponse
		getJSON(t, s.HTTPURL+"/api/recordings?stream_sid="+url.QueryEscape(streamSID), &list)
		if len(list.Recordings) == 1 && list.Recordings[0].State != callrec.StateRecording {
			rec = list.Recordings[0]
			return true
		}
		return false
	})
	return rec
}

// audio downloads a recording, checks its digest and header, and returns the
// two channels.
func audio(t *testing.T, s *system, rec *callrec.Recording) (left, right []byte) {
	t.Helper()
	resp, err := apiGet(s.HTTPURL + "/api/recordings/" + string(rec.INUM) + "/audio")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("audio: %v %d", err, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "audio/wav" {
		t.Errorf("content type %q", ct)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); rec.Audio.SHA256 != "" && got != rec.Audio.SHA256 {
		t.Errorf("audio digest %s, index says %s", got, rec.Audio.SHA256)
	}
	info, err := wav.Parse(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("parse wav: %v", err)
	}
	if info.Format != wav.FormatMulaw || info.Channels != 2 || info.SampleRate != 8000 || info.DataOffset+info.DataBytes != int64(len(b)) {
		t.Fatalf("wav header %+v for a %d-byte file", info, len(b))
	}
	ch := wav.Deinterleave(b[info.DataOffset:], 2)
	return ch[0], ch[1]
}

// sameAudio reports whether a recorded channel equals the timeline sent:
// sample for sample, with silence after the timeline's end allowed (the
// other track may be longer), and a shorter recording allowed only if the
// rest of the timeline is silence (dropped at the tail: nothing to place).
func sameAudio(got, want []byte) error {
	n := min(len(got), len(want))
	for i := 0; i < n; i++ {
		if got[i] != want[i] {
			return fmt.Errorf("sample %d (%.3f s): got %#x, want %#x", i, float64(i)/8000, got[i], want[i])
		}
	}
	for i := n; i < len(got); i++ {
		if got[i] != callrec.MulawSilence {
			return fmt.Errorf("sample %d past the sent audio is %#x, want silence", i, got[i])
		}
	}
	for i := n; i < len(want); i++ {
		if want[i] != callrec.MulawSilence {
			return fmt.Errorf("recording ends at sample %d, but sample %d was sent as %#x", n, i, want[i])
		}
	}
	return nil
}
