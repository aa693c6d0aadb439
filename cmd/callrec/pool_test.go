package main

import (
	"bytes"
	"context"
	"io"
	"slices"
	"syscall"
	"testing"
	"time"

	"callrec"
	"callrec/internal/callrectest"
	"callrec/recorder"
	"callrec/simulate"
)

// poolMetric reads one sample of a node's /metrics (-1 while the node does
// not answer).
func poolMetric(t *testing.T, httpAddr, sample string) float64 {
	t.Helper()
	v, err := readMetric("http://"+httpAddr, sample)
	if err != nil {
		return -1
	}
	return v
}

func recordingsOf(t *testing.T, httpAddr string) []*callrec.Recording {
	t.Helper()
	var list recorder.ListResponse
	getJSON(t, "http://"+httpAddr+"/api/recordings?limit=1000", &list)
	return list.Recordings
}

// TestPoolPlacementFailoverAndDrain runs two recorders and a media adapter
// as processes joined in a pool (memberlist on loopback). The adapter
// spreads the calls over both recorders; one recorder is killed with
// SIGKILL mid-call, and its calls carry on on the other as continuation
// segments holding every chunk; `callrec pool drain` then drains the other
// recorder, which leaves the pool and exits cleanly.
func TestPoolPlacementFailoverAndDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	recArgs := func(dir, node, name string, seeds ...string) []string {
		a := []string{"recorder", "--data-dir", dir, "--node-id", node, "--link-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
			"--flush-interval", "100ms", "--capacity", "100", "--pool-bind", "127.0.0.1:0", "--pool-fast", "--pool-name", name}
		if len(seeds) > 0 {
			a = append(a, "--pool-seeds", seeds[0])
		}
		return a
	}
	dir1, dir2 := t.TempDir(), t.TempDir()
	rec1 := startChild(t, "recorder running", recArgs(dir1, "1", "rec1")...)
	seed := rec1.fields["pool_addr"].(string)
	rec2 := startChild(t, "recorder running", recArgs(dir2, "2", "rec2", seed)...)
	ad := startChild(t, "media adapter running", "mediaadapter", "--media-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--twilio-auth-token", testToken, "--pool-seeds", seed, "--pool-bind", "127.0.0.1:0", "--pool-fast", "--pool-name", "adapter1")
	adHTTP := ad.fields["http_addr"].(string)
	callrectest.Eventually(t, 20*time.Second, "the adapter sees both recorders", func() bool {
		return poolMetric(t, adHTTP, `callrec_pool_members{role="recorder",state="alive"}`) == 2
	})

	const calls = 10
	simDone := make(chan *simulate.Summary, 1)
	go func() {
		sum, _ := simulate.Run(context.Background(), simulate.Config{URL: "ws://" + ad.fields["media_addr"].(string) + "/media",
			AuthToken: testToken, Calls: calls, Duration: 8 * time.Second, KeepAudio: true})
		simDone <- sum
	}()
	http1, http2 := rec1.fields["http_addr"].(string), rec2.fields["http_addr"].(string)
	var on1 []*callrec.Recording
	callrectest.Eventually(t, 20*time.Second, "every call placed and 1 s of each synced", func() bool {
		on1 = recordingsOf(t, http1)
		on2 := recordingsOf(t, http2)
		if len(on1)+len(on2) != calls {
			return false
		}
		for _, r := range append(slices.Clone(on1), on2...) {
			if r.Audio.DataBytes < 16000 {
				return false
			}
		}
		return true
	})
	n1 := len(on1)
	if n1 < calls/2-1 || n1 > calls/2+1 {
		t.Errorf("placement: %d of %d calls on recorder 1, want %d±1", n1, calls, calls/2)
	}
	if err := rec1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-rec1.done
	var sum *simulate.Summary
	select {
	case sum = <-simDone:
	case <-time.After(40 * time.Second):
		t.Fatal("calls did not finish")
	}
	// Restart recorder 1 on its data (outside the pool) to read what it
	// holds: its open recordings are repaired as interrupted.
	rec1b := startChild(t, "recorder running", "recorder", "--data-dir", dir1, "--node-id", "1", "--link-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
	http1 = rec1b.fields["http_addr"].(string)
	first := map[string]*callrec.Recording{}
	for _, r := range recordingsOf(t, http1) {
		first[r.Stream.StreamSID] = r
	}
	for _, c := range sum.Calls {
		if c.Err != nil || !c.StopSent {
			t.Errorf("call %d: %v (stop sent %v): a recorder failure must not reach Twilio's socket", c.Index, c.Err, c.StopSent)
			continue
		}
		var segs []*callrec.Recording
		callrectest.Eventually(t, 20*time.Second, "the recording of "+c.StreamSID+" finished on recorder 2", func() bool {
			var list recorder.ListResponse
			getJSON(t, "http://"+http2+"/api/recordings?stream_sid="+c.StreamSID, &list)
			segs = list.Recordings
			return len(segs) == 1 && segs[0].State != callrec.StateRecording
		})
		second := segs[0]
		a := first[c.StreamSID]
		if a == nil {
			// Placed on recorder 2 from the start: one whole recording.
			if second.State != callrec.StateComplete || second.PreviousINUM != "" || second.Accounting.Tracks[0].Missing != 0 {
				t.Errorf("call %d on recorder 2: %s, previous %q", c.Index, second.State, second.PreviousINUM)
			}
			continue
		}
		if second.State != callrec.StateComplete || second.PreviousINUM != a.INUM {
			t.Errorf("call %d: continuation %s (previous %q), want complete, continuing %s", c.Index, second.State, second.PreviousINUM, a.INUM)
		}
		n := uint32(a.Audio.DataBytes / 2 / 160)
		for i, ta := range second.Accounting.Tracks {
			if ta.FirstChunk > n+1 || ta.Missing != 0 || ta.LastChunk != uint32(c.Tracks[i].Frames) {
				t.Errorf("call %d %s: recorder 1 holds chunks 1..%d, recorder 2 %d..%d with %d missing: chunks lost",
					c.Index, ta.Track, n, ta.FirstChunk, ta.LastChunk, ta.Missing)
			}
		}
	}
	if got := poolMetric(t, adHTTP, "callrec_failovers_total"); got < 1 {
		t.Errorf("callrec_failovers_total = %v, want ≥ 1", got)
	}

	// Drain recorder 2: it has no stream left, so it leaves and exits 0.
	var out bytes.Buffer
	if err := runPoolCommand(t.Context(), []string{"drain", "rec2", "--pool-seeds", rec2.fields["pool_addr"].(string), "--pool-fast", "--wait", "20s"}, &out, io.Discard); err != nil {
		t.Fatalf("pool drain: %v: %s", err, out.String())
	}
	select {
	case <-rec2.done:
		if rec2.err != nil {
			t.Errorf("drained recorder exited with %v", rec2.err)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("drained recorder still running; drain said: %s", out.String())
	}
}

// TestPoolThroughLB sends signed calls through `callrec lb` to two media
// adapters found in the pool: the signature (for the lb's public URL) holds
// through the proxy, the calls spread over the adapters, and every call is
// recorded completely.
func TestPoolThroughLB(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	rec := startChild(t, "recorder running", "recorder", "--data-dir", t.TempDir(), "--node-id", "4", "--link-addr", "127.0.0.1:0",
		"--http-addr", "127.0.0.1:0", "--flush-interval", "100ms", "--pool-bind", "127.0.0.1:0", "--pool-fast", "--pool-name", "rec4")
	seed := rec.fields["pool_addr"].(string)
	bal := startChild(t, "lb running", "lb", "--listen-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--pool-seeds", seed, "--pool-bind", "127.0.0.1:0", "--pool-fast", "--pool-name", "lb1")
	public := "ws://" + bal.fields["listen_addr"].(string) + "/media"
	var adapters []*proc
	for _, name := range []string{"ad1", "ad2"} {
		adapters = append(adapters, startChild(t, "media adapter running", "mediaadapter", "--media-addr", "127.0.0.1:0",
			"--http-addr", "127.0.0.1:0", "--twilio-auth-token", testToken, "--public-url", public,
			"--pool-seeds", seed, "--pool-bind", "127.0.0.1:0", "--pool-fast", "--pool-name", name))
	}
	lbHTTP := bal.fields["http_addr"].(string)
	callrectest.Eventually(t, 20*time.Second, "the lb sees both adapters", func() bool {
		return poolMetric(t, lbHTTP, `callrec_pool_members{role="mediaadapter",state="alive"}`) == 2
	})
	for _, a := range adapters {
		callrectest.Eventually(t, 20*time.Second, "the adapters see the recorder", func() bool {
			return poolMetric(t, a.fields["http_addr"].(string), `callrec_pool_members{role="recorder",state="alive"}`) == 1
		})
	}
	const calls = 10
	sum, err := simulate.Run(t.Context(), simulate.Config{URL: public, AuthToken: testToken, Calls: calls, Duration: 3 * time.Second, KeepAudio: true})
	if err != nil || sum.Failed != 0 {
		t.Fatalf("simulate through the lb: %v, %d failed", err, sum.Failed)
	}
	for i, a := range adapters {
		n := poolMetric(t, a.fields["http_addr"].(string), "callrec_media_connections_accepted_total")
		if n < calls/2-1 || n > calls/2+1 {
			t.Errorf("adapter %d accepted %v of %d calls, want %d±1", i+1, n, calls, calls/2)
		}
	}
	recHTTP := rec.fields["http_addr"].(string)
	for _, c := range sum.Calls {
		var segs []*callrec.Recording
		callrectest.Eventually(t, 10*time.Second, "the recording of "+c.StreamSID+" finished", func() bool {
			var list recorder.ListResponse
			getJSON(t, "http://"+recHTTP+"/api/recordings?stream_sid="+c.StreamSID, &list)
			segs = list.Recordings
			return len(segs) == 1 && segs[0].State != callrec.StateRecording
		})
		r := segs[0]
		if r.State != callrec.StateComplete || r.Accounting.Tracks[0].Missing != 0 || r.Accounting.Tracks[1].Missing != 0 {
			t.Errorf("call %d: %s with %d+%d missing", c.Index, r.State, r.Accounting.Tracks[0].Missing, r.Accounting.Tracks[1].Missing)
		}
	}
}
