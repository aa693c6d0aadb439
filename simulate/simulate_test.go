package simulate_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"callrec"
	"callrec/internal/callrectest"
	"callrec/internal/twilio"
	"callrec/internal/ws"
	"callrec/simulate"
)

const token = "12345678901234567890123456789012"

var sidRE = regexp.MustCompile(`^[A-Z]{2}[0-9a-f]{32}$`)

func fast() *bool { f := false; return &f }

func run(t *testing.T, ctx context.Context, cfg simulate.Config) *simulate.Summary {
	t.Helper()
	if cfg.Log == nil {
		cfg.Log = callrectest.Logger(t)
	}
	sum, err := simulate.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return sum
}

func TestMessageSequenceAndFormat(t *testing.T) {
	rec := newRecorder(t, nil)
	sum := run(t, t.Context(), simulate.Config{
		URL: rec.url, AuthToken: token, Calls: 2, Duration: 200 * time.Millisecond,
		Params:   map[string]string{"leg": "customer", "task_sid": "WTc146b6ad38277b931d94d82f20703136"},
		Realtime: fast(), KeepAudio: true,
	})
	streams := rec.wait()
	if sum.Failed != 0 || len(streams) != 2 {
		t.Fatalf("failed %d, streams %d; want 0, 2", sum.Failed, len(streams))
	}
	fixture := func(name string) []string {
		return keyPaths(t, callrectest.Fixture(t, "media-streams/"+name))
	}
	withoutParams := func(ps []string) []string {
		return slices.DeleteFunc(ps, func(p string) bool { return strings.HasPrefix(p, ".start.customParameters.") })
	}
	for _, c := range sum.Calls {
		s := streams[c.StreamSID]
		if s == nil {
			t.Fatalf("call %d: stream %s not received", c.Index, c.StreamSID)
		}
		for _, sid := range []string{c.CallSID, c.StreamSID} {
			if !sidRE.MatchString(sid) {
				t.Errorf("bad SID %q", sid)
			}
		}
		if c.Err != nil || !c.StopSent || c.Cut || c.CloseCode != ws.CloseNormal {
			t.Errorf("call %d: err %v stop %v cut %v close %d", c.Index, c.Err, c.StopSent, c.Cut, c.CloseCode)
		}
		// 10 frames per track: connected, start, 20 media, stop.
		if len(s.msgs) != 23 || c.MessagesSent != 23 || c.LastSeq != 22 {
			t.Fatalf("call %d: %d messages received, %d sent, last seq %d; want 23, 23, 22", c.Index, len(s.msgs), c.MessagesSent, c.LastSeq)
		}
		if got := string(s.msgs[0]); got != `{"event":"connected","protocol":"Call","version":"1.0.0"}` {
			t.Errorf("connected = %s", got)
		}
		if d := cmp.Diff(withoutParams(fixture("start.json")), withoutParams(keyPaths(t, s.msgs[1]))); d != "" {
			t.Errorf("start keys differ from Twilio's (-want +got):\n%s", d)
		}
		start := decode(t, s.msgs[1])
		wantStart := twStart{
			AccountSid: simulate.DefaultAccountSID, StreamSid: c.StreamSID, CallSid: c.CallSID,
			Tracks: []string{"inbound", "outbound"},
			CustomParameters: map[string]string{"leg": "customer", "task_sid": "WTc146b6ad38277b931d94d82f20703136",
				"call_index": strconv.Itoa(c.Index)},
		}
		wantStart.MediaFormat.Encoding, wantStart.MediaFormat.SampleRate, wantStart.MediaFormat.Channels = "audio/x-mulaw", 8000, 1
		if start.Event != "start" || start.SequenceNumber != "1" || start.StreamSid != c.StreamSID {
			t.Errorf("start header = %+v", start)
		}
		if d := cmp.Diff(wantStart, *start.Start); d != "" {
			t.Errorf("start (-want +got):\n%s", d)
		}
		wantMediaKeys := fixture("media-inbound.json")
		var chunk [2]uint32
		for i, b := range s.msgs[2:22] {
			if d := cmp.Diff(wantMediaKeys, keyPaths(t, b)); d != "" {
				t.Fatalf("media keys differ from Twilio's (-want +got):\n%s", d)
			}
			m := decode(t, b)
			tr := callrec.Track(i % 2) // inbound then outbound each tick
			chunk[tr]++
			want := twMedia{
				Track: tr.String(), Chunk: strconv.Itoa(int(chunk[tr])),
				Timestamp: strconv.Itoa(int(chunk[tr]-1) * 20), Payload: m.Media.Payload,
			}
			if m.SequenceNumber != strconv.Itoa(i+2) || m.StreamSid != c.StreamSID {
				t.Errorf("media %d: seq %s sid %s", i, m.SequenceNumber, m.StreamSid)
			}
			if d := cmp.Diff(want, *m.Media); d != "" {
				t.Errorf("media %d (-want +got):\n%s", i, d)
			}
		}
		if d := cmp.Diff(fixture("stop.json"), keyPaths(t, s.msgs[22])); d != "" {
			t.Errorf("stop keys differ from Twilio's (-want +got):\n%s", d)
		}
		stop := decode(t, s.msgs[22])
		if d := cmp.Diff(twMsg{Event: "stop", SequenceNumber: "22", StreamSid: c.StreamSID,
			Stop: &twStopMs{AccountSid: simulate.DefaultAccountSID, CallSid: c.CallSID}}, stop); d != "" {
			t.Errorf("stop (-want +got):\n%s", d)
		}
	}
	if sum.FramesSent != [2]int64{20, 20} {
		t.Errorf("FramesSent = %v", sum.FramesSent)
	}
}

func TestTLSThroughNetDial(t *testing.T) {
	rec := newRecorder(t, func(r *recorder) { r.tls = true })
	pool := x509.NewCertPool()
	pool.AddCert(rec.srv.Certificate())
	addr := rec.srv.Listener.Addr().String()
	var dialed atomic.Int32
	const public = "wss://recorder.example.com/twilio/media"
	sum := run(t, t.Context(), simulate.Config{
		URL: public, AuthToken: token, Duration: 100 * time.Millisecond, Realtime: fast(),
		TLSConfig: &tls.Config{RootCAs: pool},
		NetDial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			dialed.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	})
	rec.wait()
	if c := sum.Calls[0]; c.Err != nil || !c.StopSent || dialed.Load() != 1 {
		t.Fatalf("err %v stop %v dials %d", c.Err, c.StopSent, dialed.Load())
	}
	if sig := rec.streams[0].header.Get(twilio.SignatureHeader); !twilio.NewValidator(token).ValidateUpgrade(public, sig) {
		t.Errorf("signature %q does not validate over %s", sig, public)
	}
}

func TestSignature(t *testing.T) {
	rec := newRecorder(t, nil)
	signURL := "wss://recorder.example.com/twilio/media"
	run(t, t.Context(), simulate.Config{URL: rec.url, SignURL: signURL, AuthToken: token, Duration: 40 * time.Millisecond, Realtime: fast()})
	run(t, t.Context(), simulate.Config{URL: rec.url, AuthToken: token, Duration: 40 * time.Millisecond, Realtime: fast()})
	run(t, t.Context(), simulate.Config{URL: rec.url, Duration: 40 * time.Millisecond, Realtime: fast()})
	rec.wait()
	v := twilio.NewValidator(token)
	got := func(i int) string { return rec.streams[i].header.Get(twilio.SignatureHeader) }
	if sig := got(0); sig != twilio.Sign(token, signURL, nil) || !v.ValidateUpgrade(signURL, sig) || v.ValidateUpgrade(rec.url, sig) {
		t.Errorf("signature over SignURL: %q", sig)
	}
	if sig := got(1); sig != twilio.Sign(token, rec.url, nil) || !v.ValidateUpgrade(rec.url, sig) {
		t.Errorf("signature over URL: %q", sig)
	}
	if _, ok := rec.streams[2].header[twilio.SignatureHeader]; ok {
		t.Errorf("signature header sent without an auth token")
	}
}

// checkTracks verifies every track of every call against what the server
// received: the timeline, its hash, the impairments and the sequence numbers.
func checkTracks(t *testing.T, sum *simulate.Summary, streams map[string]*stream, tracks int) {
	t.Helper()
	for _, c := range sum.Calls {
		s := streams[c.StreamSID]
		if s == nil {
			t.Fatalf("call %d: not received", c.Index)
		}
		ms := medias(t, s)
		for _, m := range ms {
			wantSeq := uint64(m.chunk) + 1
			if tracks == 2 {
				wantSeq = 2*uint64(m.chunk) + uint64(m.track)
			}
			if m.seq != wantSeq || m.ts != uint64(m.chunk-1)*20 {
				t.Errorf("call %d %v chunk %d: seq %d ts %d, want %d %d", c.Index, m.track, m.chunk, m.seq, m.ts, wantSeq, (m.chunk-1)*20)
			}
		}
		for tr := range tracks {
			r := c.Tracks[tr]
			o := observe(t, ms, callrec.Track(tr), r.Frames)
			if !bytes.Equal(o.timeline, r.Timeline) {
				t.Errorf("call %d %v: reconstructed timeline differs from Timeline", c.Index, callrec.Track(tr))
			}
			if h := sha256.Sum256(o.timeline); hex.EncodeToString(h[:]) != r.SHA256 {
				t.Errorf("call %d %v: SHA256 mismatch", c.Index, callrec.Track(tr))
			}
			sorted := func(s []uint32) []uint32 { return slices.Sorted(slices.Values(s)) }
			want := [][]uint32{sorted(r.DroppedChunks), sorted(r.DuplicatedChunks), sorted(r.ReorderedChunks)}
			if d := cmp.Diff(want, [][]uint32{o.dropped, o.duplicated, o.reordered}); d != "" {
				t.Errorf("call %d %v: impairments (-result +observed):\n%s", c.Index, callrec.Track(tr), d)
			}
			if r.Dropped != int64(len(r.DroppedChunks)) || r.Duplicated != int64(len(r.DuplicatedChunks)) || r.Reordered != int64(len(r.ReorderedChunks)) {
				t.Errorf("call %d %v: counts disagree with lists: %+v", c.Index, callrec.Track(tr), r)
			}
		}
	}
}

func TestTimelineReconstruction(t *testing.T) {
	rec := newRecorder(t, nil)
	sum := run(t, t.Context(), simulate.Config{URL: rec.url, Calls: 3, Duration: 2 * time.Second, Realtime: fast(), KeepAudio: true})
	checkTracks(t, sum, rec.wait(), 2)
	c0, c1 := sum.Calls[0].Tracks, sum.Calls[1].Tracks
	if c0[0].Frames != 100 || len(c0[0].Timeline) != 100*160 {
		t.Fatalf("frames %d timeline %d; want 100, 16000", c0[0].Frames, len(c0[0].Timeline))
	}
	if c0[0].SHA256 == c1[0].SHA256 || c0[0].SHA256 == c0[1].SHA256 {
		t.Errorf("calls or tracks carry the same audio")
	}
	if bytes.Count(c0[0].Timeline, []byte{0xFF}) == len(c0[0].Timeline) {
		t.Errorf("timeline is silence")
	}
}

func TestImpairmentsReproducible(t *testing.T) {
	rec := newRecorder(t, nil)
	cfg := simulate.Config{URL: rec.url, Calls: 2, Duration: 10 * time.Second, Realtime: fast(), KeepAudio: true,
		Drop: 0.05, Duplicate: 0.05, Reorder: 0.05, Seed: 42}
	a := run(t, t.Context(), cfg)
	b := run(t, t.Context(), cfg)
	checkTracks(t, a, rec.wait(), 2)
	for i := range a.Calls {
		for tr := range 2 {
			x, y := a.Calls[i].Tracks[tr], b.Calls[i].Tracks[tr]
			if x.Dropped == 0 || x.Duplicated == 0 || x.Reordered == 0 {
				t.Errorf("call %d %v: no impairment of some kind: %d %d %d", i, callrec.Track(tr), x.Dropped, x.Duplicated, x.Reordered)
			}
			if !bytes.Equal(x.Timeline, y.Timeline) {
				t.Errorf("call %d %v: same seed, different timeline", i, callrec.Track(tr))
			}
			x.Timeline, y.Timeline = nil, nil // cmp is slow on large slices
			if d := cmp.Diff(x, y); d != "" {
				t.Errorf("same seed, different result (-a +b):\n%s", d)
			}
		}
	}
	if cmp.Equal(a.Calls[0].Tracks[0].DroppedChunks, a.Calls[1].Tracks[0].DroppedChunks) {
		t.Errorf("calls share their impairments")
	}
	cfg.Seed = 43
	c := run(t, t.Context(), cfg)
	if cmp.Equal(a.Calls[0].Tracks[0].DroppedChunks, c.Calls[0].Tracks[0].DroppedChunks) {
		t.Errorf("another seed gives the same drops")
	}
}

func TestInboundOnly(t *testing.T) {
	rec := newRecorder(t, nil)
	sum := run(t, t.Context(), simulate.Config{URL: rec.url, Tracks: "inbound", Duration: time.Second,
		Realtime: fast(), KeepAudio: true, Reorder: 0.1, Seed: 1})
	streams := rec.wait()
	checkTracks(t, sum, streams, 1)
	c := sum.Calls[0]
	start := decode(t, streams[c.StreamSID].msgs[1])
	if !cmp.Equal(start.Start.Tracks, []string{"inbound"}) || c.Tracks[1].Frames != 0 || c.Tracks[1].SHA256 != "" || c.LastSeq != 52 {
		t.Errorf("tracks %v, outbound %+v, last seq %d", start.Start.Tracks, c.Tracks[1], c.LastSeq)
	}
}

func TestCutAfter(t *testing.T) {
	rec := newRecorder(t, nil)
	sum := run(t, t.Context(), simulate.Config{URL: rec.url, Duration: time.Second, CutAfter: 100 * time.Millisecond, Realtime: fast(), KeepAudio: true})
	streams := rec.wait()
	c := sum.Calls[0]
	if c.Err != nil || !c.Cut || c.StopSent || c.Tracks[0].Frames != 5 || c.MessagesSent != 12 {
		t.Fatalf("result %+v", c)
	}
	s := streams[c.StreamSID]
	if last := decode(t, s.msgs[len(s.msgs)-1]); last.Event != "media" || len(s.msgs) != 12 {
		t.Errorf("%d messages, last %s", len(s.msgs), last.Event)
	}
	var ce *ws.CloseError
	if errors.As(s.readErr, &ce) && ce.Code != ws.CloseAbnormal {
		t.Errorf("server saw a clean close %v, want an abnormal end", ce)
	}
	if s.readErr == nil {
		t.Errorf("server saw no error")
	}
	checkTracks(t, sum, streams, 2)
}

func TestNoStop(t *testing.T) {
	rec := newRecorder(t, func(r *recorder) { r.keepOpenAfterStop = true })
	sum := run(t, t.Context(), simulate.Config{URL: rec.url, Duration: 100 * time.Millisecond, NoStop: true, Realtime: fast()})
	s := rec.wait()[sum.Calls[0].StreamSID]
	if c := sum.Calls[0]; c.Err != nil || c.StopSent || c.Cut || c.MessagesSent != 12 {
		t.Errorf("result %+v", c)
	}
	var ce *ws.CloseError
	if !errors.As(s.readErr, &ce) || ce.Code != ws.CloseNormal {
		t.Errorf("server read error %v, want close 1000", s.readErr)
	}
	if last := decode(t, s.msgs[len(s.msgs)-1]); last.Event != "media" {
		t.Errorf("last message %s", last.Event)
	}
}

func TestCancelSendsStop(t *testing.T) {
	rec := newRecorder(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(300*time.Millisecond, cancel)
	sum := run(t, ctx, simulate.Config{URL: rec.url, Calls: 2, Duration: 10 * time.Second, KeepAudio: true, Reorder: 0.3, Seed: 3})
	streams := rec.wait()
	for _, c := range sum.Calls {
		if c.Err != nil || !c.StopSent || c.Tracks[0].Frames >= 500 || c.Ended.Sub(c.Started) > 3*time.Second {
			t.Errorf("call %d: err %v stop %v frames %d took %v", c.Index, c.Err, c.StopSent, c.Tracks[0].Frames, c.Ended.Sub(c.Started))
		}
		s := streams[c.StreamSID]
		if stop := decode(t, s.msgs[len(s.msgs)-1]); stop.Event != "stop" || stop.SequenceNumber != strconv.FormatUint(c.LastSeq, 10) {
			t.Errorf("call %d: last message %+v, want stop with seq %d", c.Index, stop, c.LastSeq)
		}
	}
	checkTracks(t, sum, streams, 2)
}

func TestRealtimePacing(t *testing.T) {
	rec := newRecorder(t, nil)
	const audio = 600 * time.Millisecond
	sum := run(t, t.Context(), simulate.Config{URL: rec.url, Calls: 2, Duration: audio})
	streams := rec.wait()
	if sum.Elapsed < audio*9/10 {
		t.Errorf("run took %v for %v of audio", sum.Elapsed, audio)
	}
	for _, c := range sum.Calls {
		s := streams[c.StreamSID]
		// Media spans 29 frame intervals from the first frame to the last.
		if span := s.arrived[len(s.arrived)-2].Sub(s.arrived[2]); span < 29*20*time.Millisecond*9/10 {
			t.Errorf("call %d: media spread over %v only", c.Index, span)
		}
		if c.Tracks[0].Frames != 30 || c.Err != nil || !c.StopSent {
			t.Errorf("call %d: %+v", c.Index, c)
		}
	}
}

func TestServerRefuses(t *testing.T) {
	rec := newRecorder(t, func(r *recorder) { r.refuse = http.StatusForbidden })
	sum := run(t, t.Context(), simulate.Config{URL: rec.url, AuthToken: token, Calls: 2, Duration: time.Second, Realtime: fast()})
	if sum.Failed != 2 {
		t.Errorf("Failed = %d, want 2", sum.Failed)
	}
	var he *ws.HandshakeError
	if err := sum.Calls[1].Err; !errors.As(err, &he) || he.Status != http.StatusForbidden {
		t.Errorf("Err = %v, want a *ws.HandshakeError with status 403", err)
	}
}

func TestServerClosesMidStream(t *testing.T) {
	rec := newRecorder(t, func(r *recorder) {
		r.onMessage = func(c *ws.Conn, i int, _ []byte) bool {
			if i == 1 { // after start
				_ = c.CloseWith(ws.ClosePolicyViolation, "stream not allowed", 0)
				return true
			}
			return false
		}
	})
	sum := run(t, t.Context(), simulate.Config{URL: rec.url, Duration: time.Second})
	c := sum.Calls[0]
	var ce *ws.CloseError
	if c.CloseCode != ws.ClosePolicyViolation || c.CloseText != "stream not allowed" || !errors.As(c.Err, &ce) || c.StopSent {
		t.Errorf("close %d %q err %v stop %v", c.CloseCode, c.CloseText, c.Err, c.StopSent)
	}
	if sum.Failed != 1 {
		t.Errorf("Failed = %d", sum.Failed)
	}
}

func TestRampUp(t *testing.T) {
	rec := newRecorder(t, nil)
	sum := run(t, t.Context(), simulate.Config{URL: rec.url, Calls: 3, RampUp: 300 * time.Millisecond, Duration: 20 * time.Millisecond, Realtime: fast()})
	rec.wait()
	for i := 1; i < 3; i++ {
		if gap := sum.Calls[i].Started.Sub(sum.Calls[i-1].Started); gap < 80*time.Millisecond {
			t.Errorf("call %d started %v after call %d", i, gap, i-1)
		}
	}
}

func TestNoGoroutineLeft(t *testing.T) {
	rec := newRecorder(t, nil)
	before := runtime.NumGoroutine()
	run(t, t.Context(), simulate.Config{URL: rec.url, Calls: 20, Duration: 200 * time.Millisecond, Realtime: fast()})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	run(t, ctx, simulate.Config{URL: rec.url, Calls: 5, Duration: time.Second})
	rec.wait()
	rec.srv.Close()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestBadConfig(t *testing.T) {
	for _, cfg := range []simulate.Config{
		{},
		{URL: "http://127.0.0.1/"},
		{URL: "ws://127.0.0.1/", Tracks: "outbound"},
		{URL: "ws://127.0.0.1/", Drop: 1.5},
		{URL: "ws://127.0.0.1/", Reorder: -0.1},
		{URL: "ws://127.0.0.1/", Calls: -1},
		{URL: "ws://127.0.0.1/", Duration: -time.Second},
	} {
		if _, err := simulate.Run(t.Context(), cfg); err == nil {
			t.Errorf("Run(%+v) accepted a bad config", cfg)
		}
	}
}

func TestNewSID(t *testing.T) {
	a := simulate.NewSID("CA", rand.New(rand.NewPCG(1, 2)))
	b := simulate.NewSID("CA", rand.New(rand.NewPCG(1, 2)))
	c := simulate.NewSID("MZ", nil)
	if a != b || !sidRE.MatchString(a) || !sidRE.MatchString(c) || !strings.HasPrefix(c, "MZ") {
		t.Errorf("SIDs %q %q %q", a, b, c)
	}
}

func TestWriteText(t *testing.T) {
	rec := newRecorder(t, nil)
	sum := run(t, t.Context(), simulate.Config{URL: rec.url, Calls: 2, Duration: 100 * time.Millisecond, Realtime: fast(), Drop: 0.2, Seed: 5})
	var buf bytes.Buffer
	if err := sum.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"calls: 2 ok, 0 failed", "inbound", "outbound", sum.Calls[1].StreamSID, sum.Calls[1].Tracks[1].SHA256} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

// BenchmarkRun measures the simulator's cost per media message, as fast as
// a server that discards everything lets it go.
func BenchmarkRun(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ws.Upgrade(w, r, ws.UpgradeOptions{})
		if err != nil {
			return
		}
		defer c.Close()
		var buf []byte
		for {
			_, msg, err := c.ReadMessage(buf)
			if err != nil {
				return
			}
			if bytes.Contains(msg, []byte(`"event":"stop"`)) {
				_ = c.CloseWith(ws.CloseNormal, "", 0)
				return
			}
			buf = msg
		}
	}))
	b.Cleanup(srv.Close)
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	b.ReportAllocs()
	var msgs int64
	for b.Loop() {
		sum, err := simulate.Run(b.Context(), simulate.Config{URL: url, Calls: 4, Duration: 20 * time.Second, Realtime: fast()})
		if err != nil || sum.Failed != 0 {
			b.Fatalf("Run: %v, %d failed", err, sum.Failed)
		}
		msgs += sum.FramesSent[0] + sum.FramesSent[1]
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(msgs), "ns/msg")
}

// TestStreamSpec: a REST-started stream carries exactly the SIDs and
// parameters it was given and ends with stop when its context ends.
func TestStreamSpec(t *testing.T) {
	var media atomic.Int64
	r := newRecorder(t, func(r *recorder) {
		r.onMessage = func(_ *ws.Conn, _ int, msg []byte) bool {
			if bytes.Contains(msg, []byte(`"event":"media"`)) {
				media.Add(1)
			}
			return false
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan simulate.CallResult, 1)
	go func() {
		res, err := simulate.Stream(ctx, simulate.Config{URL: r.url, Duration: time.Minute},
			simulate.StreamSpec{CallSID: "CA11111111111111111111111111111111", StreamSID: "MZ22222222222222222222222222222222",
				Params: map[string]string{"task_sid": "WT1"}, Index: 3})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	callrectest.Eventually(t, 5*time.Second, "media flowing", func() bool { return media.Load() > 20 })
	cancel()
	res := <-done
	if res.Err != nil || !res.StopSent || res.CallSID != "CA11111111111111111111111111111111" {
		t.Fatalf("result %+v", res)
	}
	st := r.wait()["MZ22222222222222222222222222222222"]
	if st == nil {
		t.Fatal("no stream with the given SID reached the server")
	}
	start := decode(t, st.msgs[1])
	if start.Start.CallSid != "CA11111111111111111111111111111111" || !cmp.Equal(start.Start.CustomParameters, map[string]string{"task_sid": "WT1"}) {
		t.Errorf("start message %+v", start.Start)
	}
	if last := decode(t, st.msgs[len(st.msgs)-1]); last.Event != "stop" {
		t.Errorf("last message %q, want stop", last.Event)
	}
}
