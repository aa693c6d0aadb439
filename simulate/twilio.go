package simulate

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"callrec/internal/twilio"
	"callrec/internal/twiliotest"
)

// Twilio is the simulator's stand-in for Twilio's REST side: a stateful
// Streams API (twiliotest.Fake, an http.Handler) whose Start Stream opens a
// real, signed Media Stream to the URL given, and whose Stop Stream (or the
// end of the call) stops it with stop, as Twilio does. Stream status
// callbacks (stream-started, stream-stopped, stream-error) are posted as
// signed forms to the StatusCallback given.
//
// A call may have several streams live at once, up to Twilio's fork limit
// (twiliotest.MaxTracks: four single-track or two both_tracks streams).
// All streams of one call carry the same call audio, on the call's
// CallClock: each result's CallFrame says where its chunk 1 is in it. A
// stream that ends by itself (cut, or Config.Duration reached) frees its
// forks at the fake, as a failed stream does at Twilio.
type Twilio struct {
	*twiliotest.Fake
	media  Config // template for every stream: tracks, impairments, KeepAudio, TLS…
	token  string
	client *http.Client

	mu      sync.Mutex
	live    map[string]context.CancelFunc // stream SID → stop
	cuts    map[string]chan struct{}      // stream SID → cut the socket
	results map[string]CallResult
	calls   map[string]*simCall // call SID → its audio, from its first stream to EndCall
	wg      sync.WaitGroup
	index   int // calls given audio so far
}

// simCall is what the streams of one call share: which audio the call
// carries (its index) and its media clock.
type simCall struct {
	index int
	clock *CallClock
}

// NewTwilio returns the REST stand-in for an account. media is the template
// of each Media Stream (its URL and Calls are ignored: the URL comes from
// the Start Stream request); media.Duration caps a stream's length.
func NewTwilio(account, token string, media Config) *Twilio {
	t := &Twilio{Fake: twiliotest.New(account, token), media: media, token: token,
		client: &http.Client{Timeout: 5 * time.Second}, live: map[string]context.CancelFunc{}, cuts: map[string]chan struct{}{}, results: map[string]CallResult{},
		calls: map[string]*simCall{}}
	if t.media.Duration == 0 {
		t.media.Duration = time.Hour
	}
	t.media.AuthToken, t.media.AccountSID = token, account
	t.OnStart = t.start
	t.OnStop = t.stop
	return t
}

// Results returns the finished streams' results by stream SID.
func (t *Twilio) Results() map[string]CallResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]CallResult, len(t.results))
	for k, v := range t.results {
		out[k] = v
	}
	return out
}

// Cut makes a running stream's socket fail (TCP cut, no stop), as a network
// failure would; the stream then ends with a stream-error callback. It
// reports whether the stream was running.
func (t *Twilio) Cut(streamSID string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	ch, ok := t.cuts[streamSID]
	if ok {
		close(ch)
		delete(t.cuts, streamSID)
	}
	return ok
}

// EndCall completes a call as twiliotest.Fake.EndCall does (its streams
// stop, new ones are refused) and forgets its audio.
func (t *Twilio) EndCall(sid string) {
	t.Fake.EndCall(sid)
	t.mu.Lock()
	delete(t.calls, sid)
	t.mu.Unlock()
}

// Close stops every stream still running and waits for them.
func (t *Twilio) Close() {
	t.mu.Lock()
	for _, stop := range t.live {
		stop()
	}
	t.mu.Unlock()
	t.wg.Wait()
}

func (t *Twilio) start(s twiliotest.Stream) {
	ctx, cancel := context.WithCancel(context.Background())
	t.mu.Lock()
	t.live[s.SID] = cancel
	cut := make(chan struct{})
	t.cuts[s.SID] = cut
	sc := t.calls[s.CallSID]
	if sc == nil {
		t.index++
		sc = &simCall{index: t.index, clock: NewCallClock()}
		t.calls[s.CallSID] = sc
	}
	t.mu.Unlock()
	cfg := t.media
	cfg.URL, cfg.SignURL = s.URL, ""
	t.wg.Go(func() {
		defer cancel()
		t.callback(s, "stream-started", "")
		res, err := Stream(ctx, cfg, StreamSpec{CallSID: s.CallSID, StreamSID: s.SID, Params: s.Params, Index: sc.index, Cut: cut, Clock: sc.clock})
		if err == nil {
			err = res.Err
		}
		if err == nil && res.Cut {
			err = errors.New("WebSocket connection lost (31903 broken pipe)")
		}
		if ctx.Err() == nil {
			t.StreamEnded(s.SID) // it ended by itself: its forks are free again
		}
		t.mu.Lock()
		t.results[s.SID] = res
		delete(t.live, s.SID)
		delete(t.cuts, s.SID)
		t.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			t.callback(s, "stream-error", err.Error())
			return
		}
		t.callback(s, "stream-stopped", "")
	})
}

func (t *Twilio) stop(s twiliotest.Stream) {
	t.mu.Lock()
	cancel := t.live[s.SID]
	t.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// callback posts a signed stream status callback, as Twilio does.
func (t *Twilio) callback(s twiliotest.Stream, event, errText string) {
	if s.StatusCallback == "" {
		return
	}
	form := map[string]string{"AccountSid": t.media.AccountSID, "CallSid": s.CallSID, "StreamSid": s.SID,
		"StreamEvent": event, "Timestamp": time.Now().UTC().Format(time.RFC3339Nano)}
	if s.Name != "" {
		form["StreamName"] = s.Name
	}
	if errText != "" {
		form["StreamError"] = errText
	}
	vals := url.Values{}
	for k, v := range form {
		vals.Set(k, v)
	}
	req, err := http.NewRequest(http.MethodPost, s.StatusCallback, strings.NewReader(vals.Encode()))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(twilio.SignatureHeader, twilio.Sign(t.token, s.StatusCallback, form))
	if resp, err := t.client.Do(req); err == nil {
		resp.Body.Close()
	}
}
