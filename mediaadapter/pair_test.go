package mediaadapter_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"callrec"
	"callrec/internal/callrectest"
	"callrec/internal/link"
	"callrec/mediaadapter"
)

// spyOpener records what the adapter asks to open and opens it on a real
// link client.
type spyOpener struct {
	next  mediaadapter.Opener
	mu    sync.Mutex
	infos []callrec.StreamInfo
}

func (o *spyOpener) Open(info callrec.StreamInfo) *link.Stream {
	o.mu.Lock()
	o.infos = append(o.infos, info)
	o.mu.Unlock()
	return o.next.Open(info)
}

func (o *spyOpener) opened(sid string) (callrec.StreamInfo, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, in := range o.infos {
		if in.StreamSID == sid {
			return in, true
		}
	}
	return callrec.StreamInfo{}, false
}

// linkClient returns a link client to r, running until the test ends.
func linkClient(t *testing.T, r *recNode) *link.Client {
	t.Helper()
	var d net.Dialer
	c := link.NewClient(link.ClientConfig{AdapterID: "adapter-1", Log: callrectest.Logger(t),
		Dial: func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", r.addr) }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

// TestStartReadsPair: the pair in a stream's custom parameters reaches the
// recorder on StreamInfo.Pair; malformed pair parameters, or a pair URL the
// parameters contradict, are noted on the recording (bad_field) and logged,
// and the stream is recorded all the same, unpaired when the parameters
// are malformed. (Recordings of pairs are looked at only through what the
// adapter opened: the recorder merges copies its own way.)
func TestStartReadsPair(t *testing.T) {
	rec := startRecorder(t, "rec-a", 1, nil)
	spy := &spyOpener{next: linkClient(t, rec)}
	a := startAdapter(t, mediaadapter.Config{}, spy, nil)
	pairURL := func(g, c string) (string, string) {
		return "/media/pair/" + g + "/" + c, a.public + "/pair/" + g + "/" + c
	}
	for i, c := range []struct {
		name     string
		url      [2]string // request path, signed URL; zero: the public path
		params   map[string]string
		want     *callrec.StreamPair
		noteWant string // a bad_field note whose detail holds this; "": no note
	}{
		{name: "no pair", params: map[string]string{"agent": "WK1"}},
		{name: "pair copy 2", url: pair2(pairURL("grp-1", "2")), params: map[string]string{"pair": "grp-1", "copy": "2", "copies": "2"},
			want: &callrec.StreamPair{Group: "grp-1", Copy: 2, Copies: 2}},
		{name: "pair on the public path", params: map[string]string{"pair": "grp-2", "copy": "1", "copies": "2"},
			want: &callrec.StreamPair{Group: "grp-2", Copy: 1, Copies: 2}},
		{name: "copy out of range", url: pair2(pairURL("grp-3", "1")), params: map[string]string{"pair": "grp-3", "copy": "7", "copies": "2"},
			noteWant: "malformed dual-stream pair parameters"},
		{name: "copies missing", params: map[string]string{"pair": "grp-4", "copy": "1"}, noteWant: "malformed dual-stream pair parameters"},
		{name: "empty group", params: map[string]string{"pair": "", "copy": "1", "copies": "2"}, noteWant: "malformed dual-stream pair parameters"},
		{name: "pair URL, no pair parameters", url: pair2(pairURL("grp-5", "1")), params: map[string]string{"agent": "WK1"},
			noteWant: `URL of pair "grp-5" copy 1, but its custom parameters say no pair`},
	} {
		path, signed := "/media", a.public
		if c.url[0] != "" {
			path, signed = c.url[0], c.url[1]
		}
		f := a.twilioOn(t, i+1, path, signed, c.params)
		f.media(5)
		f.stop()
		info, ok := spy.opened(f.streamSID)
		if !ok {
			t.Fatalf("%s: the adapter opened no stream for %s", c.name, f.streamSID)
		}
		if !samePair(info.Pair, c.want) {
			t.Errorf("%s: opened with Pair %+v, want %+v", c.name, info.Pair, c.want)
		}
		if info.Replica != 0 {
			t.Errorf("%s: opened with Replica %d without dual recording, want 0", c.name, info.Replica)
		}
		if c.want != nil {
			continue // how a recorder records pairs is the recorder's business (it merges copies)
		}
		var segs []*callrec.Recording
		callrectest.Eventually(t, waitTimeout, c.name+": the recording finished", func() bool {
			segs = rec.segments(t, f.streamSID)
			return len(segs) == 1 && segs[0].State == callrec.StateComplete
		})
		if c.want == nil && segs[0].Stream.Pair != nil {
			t.Errorf("%s: recording's Stream.Pair %+v, want none", c.name, segs[0].Stream.Pair)
		}
		checkWhole(t, rec, segs[0], f)
		var notes []string
		for _, e := range segs[0].Accounting.Errors {
			if e.Kind == callrec.ErrKindBadField {
				notes = append(notes, e.Detail)
			}
		}
		switch {
		case c.noteWant == "" && len(notes) > 0:
			t.Errorf("%s: bad_field notes %q, want none", c.name, notes)
		case c.noteWant != "" && (len(notes) != 1 || !strings.Contains(notes[0], c.noteWant)):
			t.Errorf("%s: bad_field notes %q, want one about %q", c.name, notes, c.noteWant)
		}
	}
}

func pair2(a, b string) [2]string { return [2]string{a, b} }

func samePair(a, b *callrec.StreamPair) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
