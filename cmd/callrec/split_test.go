package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"callrec"
	"callrec/consolidation/join"
	"callrec/consolidation/store"
	"callrec/internal/callrectest"
	"callrec/recorder"
	"callrec/simulate"
)

// TestSplitRecorderCrash runs the adapter and the recorder as separate
// processes linked over TCP, kills the recorder with SIGKILL mid-call and
// restarts it on the same address. The adapter reconnects and replays what
// was not acknowledged into a new segment linked to the first: together
// the two segments hold every chunk of the call, none lost.
func TestSplitRecorderCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dataDir := t.TempDir()
	rec := startChild(t, "recorder running", "recorder", "--data-dir", dataDir, "--node-id", "3",
		"--link-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--flush-interval", "100ms")
	linkAddr, httpAddr := rec.fields["link_addr"].(string), rec.fields["http_addr"].(string)
	ad := startChild(t, "media adapter running", "mediaadapter", "--recorder", linkAddr,
		"--media-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--twilio-auth-token", testToken)
	mediaURL := "ws://" + ad.fields["media_addr"].(string) + "/media"

	simDone := make(chan *simulate.Summary, 1)
	go func() {
		sum, _ := simulate.Run(context.Background(), simulate.Config{URL: mediaURL, AuthToken: testToken, Calls: 2, Duration: 8 * time.Second, KeepAudio: true})
		simDone <- sum
	}()
	s := &system{HTTPURL: "http://" + httpAddr}
	callrectest.Eventually(t, 20*time.Second, "1 s of both calls synced", func() bool {
		var list recorder.ListResponse
		getJSON(t, s.HTTPURL+"/api/recordings", &list)
		return len(list.Recordings) == 2 && list.Recordings[0].Audio.DataBytes >= 16000 && list.Recordings[1].Audio.DataBytes >= 16000
	})
	if err := rec.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-rec.done
	// The port is free again; the adapter keeps retrying it.
	rec2 := startChild(t, "recorder running", "recorder", "--data-dir", dataDir, "--node-id", "3",
		"--link-addr", linkAddr, "--http-addr", "127.0.0.1:0", "--flush-interval", "100ms")
	s.HTTPURL = "http://" + rec2.fields["http_addr"].(string)
	var sum *simulate.Summary
	select {
	case sum = <-simDone:
	case <-time.After(30 * time.Second):
		t.Fatal("calls did not finish")
	}
	for _, c := range sum.Calls {
		if c.Err != nil || !c.StopSent {
			t.Fatalf("call %d: %v (stop sent %v): the recorder crash must not reach Twilio's socket", c.Index, c.Err, c.StopSent)
		}
		var segs []*callrec.Recording
		callrectest.Eventually(t, 20*time.Second, "both segments of "+c.StreamSID+" finished", func() bool {
			var list recorder.ListResponse
			getJSON(t, s.HTTPURL+"/api/recordings?stream_sid="+c.StreamSID, &list)
			segs = list.Recordings
			return len(segs) == 2 && segs[0].State != callrec.StateRecording && segs[1].State != callrec.StateRecording
		})
		slices.SortFunc(segs, func(a, b *callrec.Recording) int { return a.StartedAt.Compare(b.StartedAt) })
		first, second := segs[0], segs[1]
		if first.State != callrec.StateInterrupted || first.EndReason != callrec.EndCrash {
			t.Errorf("call %d first segment %s/%s, want interrupted/crash", c.Index, first.State, first.EndReason)
		}
		if second.State != callrec.StateComplete || second.PreviousINUM != first.INUM {
			t.Errorf("call %d second segment %s, previous %q; want complete, continuing %s", c.Index, second.State, second.PreviousINUM, first.INUM)
		}
		// The first segment's file holds chunks 1..n of both tracks (the
		// tracks advance together); the second must start no later than n+1
		// and have no gap: then no chunk is lost.
		n := uint32(first.Audio.DataBytes / 2 / 160)
		left, right := audio(t, s, first)
		for i, ch := range [][]byte{left, right} {
			if err := sameAudio(ch, c.Tracks[i].Timeline[:len(ch)]); err != nil {
				t.Errorf("call %d first segment track %d: %v", c.Index, i, err)
			}
		}
		for i, ta := range second.Accounting.Tracks {
			if ta.FirstChunk > n+1 || ta.Missing != 0 || ta.LastChunk != uint32(c.Tracks[i].Frames) {
				t.Errorf("call %d %s: first segment ends at chunk %d, second holds %d..%d with %d missing: chunks lost",
					c.Index, ta.Track, n, ta.FirstChunk, ta.LastChunk, ta.Missing)
			}
		}
		left2, right2 := audio(t, s, second)
		off := int(second.Audio.OffsetMS) * callrec.SamplesPerMS
		for i, ch := range [][]byte{left2, right2} {
			want := c.Tracks[i].Timeline[off:]
			from := (int(second.Accounting.Tracks[i].FirstChunk)-1)*160 - off
			if err := sameAudio(ch[from:], want[from:]); err != nil {
				t.Errorf("call %d second segment track %d: %v", c.Index, i, err)
			}
		}
		t.Logf("call %d: segment %s has chunks 1..%d, segment %s from %d (offset %d ms)", c.Index, first.INUM, n,
			second.INUM, second.Accounting.Tracks[0].FirstChunk, second.Audio.OffsetMS)
	}
}

// TestSplitConsolidation runs consolidation, a recorder and a media adapter
// as separate processes: the recorder sends STARTED/STOPPED to
// consolidation's ingest API, and consolidation serves the call record and
// proxies the audio (whole and by range) from the recorder, which refuses
// requests without its API token.
func TestSplitConsolidation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	consDir, recDir := t.TempDir(), t.TempDir()
	const ingestToken, recToken = "ingest-0123456789abcdef", "recorder-0123456789abcdef"
	var out bytes.Buffer
	if err := runTokenCommand(t.Context(), []string{"create", "--data-dir", consDir, "--name", "test-client", "--role", "compliance"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	// The recorder's HTTP port must be known before it starts: consolidation
	// is told where node 3 is.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	recHTTP := ln.Addr().String()
	ln.Close()
	cons := startChild(t, "consolidation running", "consolidation", "--data-dir", consDir, "--http-addr", "127.0.0.1:0",
		"--ingest-token", ingestToken, "--recorder-node", "3=http://"+recHTTP, "--recorder-token", recToken)
	consURL := cons.fields["http_url"].(string)
	setAPIToken(consURL, strings.TrimSpace(out.String()))
	rec := startChild(t, "recorder running", "recorder", "--data-dir", recDir, "--node-id", "3", "--link-addr", "127.0.0.1:0",
		"--http-addr", recHTTP, "--flush-interval", "100ms", "--api-token", recToken, "--consolidation-url", consURL, "--ingest-token", ingestToken)
	ad := startChild(t, "media adapter running", "mediaadapter", "--recorder", rec.fields["link_addr"].(string),
		"--media-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--twilio-auth-token", testToken)
	sum, err := simulate.Run(t.Context(), simulate.Config{URL: "ws://" + ad.fields["media_addr"].(string) + "/media", AuthToken: testToken,
		Calls: 1, Duration: 3 * time.Second, KeepAudio: true})
	if err != nil || sum.Failed != 0 {
		t.Fatalf("simulate: %v, %d failed", err, sum.Failed)
	}
	c := sum.Calls[0]

	var res struct {
		Items []store.Interaction
		Total int
	}
	callrectest.Eventually(t, 10*time.Second, "the call searchable in consolidation", func() bool {
		getJSON(t, consURL+"/api/interactions?call_sid="+c.CallSID, &res)
		return res.Total == 1 && res.Items[0].Status == store.StatusComplete
	})
	in := res.Items[0]
	if len(in.INUMs) != 1 || in.INUMs[0].Node() != 3 || !slices.Contains(in.Tags, join.TagContactMissing) {
		t.Fatalf("call record %+v: want one INUM of node 3, tagged %s (no tracker here)", in, join.TagContactMissing)
	}
	var r callrec.Recording
	if code := getJSON(t, consURL+"/api/recordings/"+string(in.INUMs[0]), &r); code != http.StatusOK || r.Stream.StreamSID != c.StreamSID {
		t.Fatalf("recording through consolidation: %d %+v", code, r)
	}
	left, right := audio(t, &system{HTTPURL: consURL}, &r)
	for i, ch := range [][]byte{left, right} {
		if err := sameAudio(ch, c.Tracks[i].Timeline); err != nil {
			t.Errorf("track %d through consolidation: %v", i, err)
		}
	}
	// A range through the proxy is the same bytes as from the recorder.
	get := func(u, auth, rng string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	tok, _ := apiTokens.Load(strings.TrimPrefix(consURL, "http://"))
	path := "/api/recordings/" + string(r.INUM) + "/audio"
	code, viaCons := get(consURL+path, tok.(string), "bytes=1000-5999")
	code2, direct := get("http://"+recHTTP+path, recToken, "bytes=1000-5999")
	if code != http.StatusPartialContent || code2 != http.StatusPartialContent || len(viaCons) != 5000 || !bytes.Equal(viaCons, direct) {
		t.Errorf("range: consolidation %d (%d bytes), recorder %d (%d bytes), equal %v", code, len(viaCons), code2, len(direct), bytes.Equal(viaCons, direct))
	}
	if code, _ := get("http://"+recHTTP+path, "", ""); code != http.StatusUnauthorized {
		t.Errorf("recorder API without its token: %d, want 401", code)
	}
	if code, _ := get(consURL+path, "", ""); code != http.StatusUnauthorized {
		t.Errorf("consolidation API without a token: %d, want 401", code)
	}
}
