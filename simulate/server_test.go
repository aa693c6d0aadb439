package simulate_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"callrec"
	"callrec/internal/ws"
)

// stream is what the test server received on one connection.
type stream struct {
	header  http.Header
	msgs    [][]byte
	arrived []time.Time
	readErr error
}

// recorder is a minimal Media Streams endpoint that records every message.
type recorder struct {
	t   *testing.T
	srv *httptest.Server
	url string // ws:// URL of the endpoint

	// tls serves HTTPS (the URL is then wss://).
	tls bool
	// refuse, when non-zero, answers upgrades with this HTTP status.
	refuse int
	// keepOpenAfterStop makes the server wait for the client's close instead
	// of closing with 1000 after stop.
	keepOpenAfterStop bool
	// onMessage, if set, is called for each message with its index; it may
	// close the connection (and return true to stop reading).
	onMessage func(c *ws.Conn, i int, msg []byte) bool

	mu      sync.Mutex
	streams []*stream
	wg      sync.WaitGroup
}

func newRecorder(t *testing.T, setup func(*recorder)) *recorder {
	t.Helper()
	r := &recorder{t: t}
	if setup != nil {
		setup(r)
	}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.handle))
	if r.tls {
		r.srv.StartTLS()
	} else {
		r.srv.Start()
	}
	t.Cleanup(r.srv.Close)
	r.url = "ws" + strings.TrimPrefix(r.srv.URL, "http") + "/twilio/media"
	return r
}

func (r *recorder) handle(w http.ResponseWriter, req *http.Request) {
	r.wg.Add(1)
	defer r.wg.Done()
	if r.refuse != 0 {
		http.Error(w, "refused", r.refuse)
		return
	}
	c, err := ws.Upgrade(w, req, ws.UpgradeOptions{ReadLimit: 1 << 20})
	if err != nil {
		r.t.Errorf("upgrade: %v", err)
		return
	}
	defer c.Close()
	s := &stream{header: req.Header.Clone()}
	r.mu.Lock()
	r.streams = append(r.streams, s)
	r.mu.Unlock()
	var buf []byte
	for i := 0; ; i++ {
		_, b, err := c.ReadMessage(buf)
		if err != nil {
			r.mu.Lock()
			s.readErr = err
			r.mu.Unlock()
			return
		}
		buf = b
		r.mu.Lock()
		s.msgs = append(s.msgs, bytes.Clone(b))
		s.arrived = append(s.arrived, time.Now())
		r.mu.Unlock()
		if r.onMessage != nil && r.onMessage(c, i, b) {
			return
		}
		if !r.keepOpenAfterStop && bytes.Contains(b, []byte(`"event":"stop"`)) {
			_ = c.CloseWith(ws.CloseNormal, "", 0)
			return
		}
	}
}

// wait waits until every connection's handler returned and gives the
// streams keyed by streamSid (or by arrival order when start is missing).
func (r *recorder) wait() map[string]*stream {
	r.t.Helper()
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]*stream{}
	for i, s := range r.streams {
		key := strconv.Itoa(i)
		if len(s.msgs) > 1 {
			var m twMsg
			if err := json.Unmarshal(s.msgs[1], &m); err == nil && m.Start != nil {
				key = m.Start.StreamSid
			}
		}
		out[key] = s
	}
	return out
}

// twMsg is a Twilio Media Streams message; every number Twilio sends as a
// string is a string here, so decoding fails if it is not.
type twMsg struct {
	Event          string    `json:"event"`
	SequenceNumber string    `json:"sequenceNumber"`
	StreamSid      string    `json:"streamSid"`
	Protocol       string    `json:"protocol"`
	Version        string    `json:"version"`
	Start          *twStart  `json:"start"`
	Media          *twMedia  `json:"media"`
	Stop           *twStopMs `json:"stop"`
}

type twStart struct {
	AccountSid       string            `json:"accountSid"`
	StreamSid        string            `json:"streamSid"`
	CallSid          string            `json:"callSid"`
	Tracks           []string          `json:"tracks"`
	CustomParameters map[string]string `json:"customParameters"`
	MediaFormat      struct {
		Encoding   string `json:"encoding"`
		SampleRate int    `json:"sampleRate"`
		Channels   int    `json:"channels"`
	} `json:"mediaFormat"`
}

type twMedia struct {
	Track     string `json:"track"`
	Chunk     string `json:"chunk"`
	Timestamp string `json:"timestamp"`
	Payload   string `json:"payload"`
}

type twStopMs struct {
	AccountSid string `json:"accountSid"`
	CallSid    string `json:"callSid"`
}

func decode(t *testing.T, b []byte) twMsg {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m twMsg
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return m
}

// media is one received media message, decoded.
type media struct {
	seq   uint64
	track callrec.Track
	chunk uint32
	ts    uint64
	audio []byte
}

// medias decodes the media messages of a stream, in arrival order.
func medias(t *testing.T, s *stream) []media {
	t.Helper()
	var out []media
	for _, b := range s.msgs {
		m := decode(t, b)
		if m.Event != "media" {
			continue
		}
		tr, ok := callrec.ParseTrack(m.Media.Track)
		if !ok {
			t.Fatalf("bad track in %s", b)
		}
		seq, err1 := strconv.ParseUint(m.SequenceNumber, 10, 64)
		chunk, err2 := strconv.ParseUint(m.Media.Chunk, 10, 32)
		ts, err3 := strconv.ParseUint(m.Media.Timestamp, 10, 64)
		audio, err4 := base64.StdEncoding.DecodeString(m.Media.Payload)
		for _, err := range []error{err1, err2, err3, err4} {
			if err != nil {
				t.Fatalf("bad media message %s: %v", b, err)
			}
		}
		if len(audio) != 160 {
			t.Fatalf("payload of %d bytes, want 160", len(audio))
		}
		out = append(out, media{seq: seq, track: tr, chunk: uint32(chunk), ts: ts, audio: audio})
	}
	return out
}

// observed is what a recorder sees of one track.
type observed struct {
	timeline                       []byte
	dropped, duplicated, reordered []uint32
}

// observe reconstructs a track from the received media, as a recorder does,
// over frames chunks, and lists the impairments visible at the server.
func observe(t *testing.T, ms []media, tr callrec.Track, frames int64) observed {
	t.Helper()
	o := observed{timeline: bytes.Repeat([]byte{0xFF}, int(frames)*160)}
	seen := map[uint32]int{}
	late := map[uint32]bool{}
	var highest uint32
	for _, m := range ms {
		if m.track != tr {
			continue
		}
		if m.chunk < 1 || int64(m.chunk) > frames {
			t.Fatalf("%v chunk %d out of range 1..%d", tr, m.chunk, frames)
		}
		off := int(m.chunk-1) * 160
		if seen[m.chunk] > 0 && !bytes.Equal(o.timeline[off:off+160], m.audio) {
			t.Errorf("%v chunk %d: duplicate with different audio", tr, m.chunk)
		}
		copy(o.timeline[off:], m.audio)
		seen[m.chunk]++
		if m.chunk < highest {
			late[m.chunk] = true
		}
		highest = max(highest, m.chunk)
	}
	for k := uint32(1); int64(k) <= frames; k++ {
		switch {
		case seen[k] == 0:
			o.dropped = append(o.dropped, k)
		case seen[k] > 1:
			o.duplicated = append(o.duplicated, k)
		}
		if late[k] {
			o.reordered = append(o.reordered, k)
		}
	}
	return o
}

// keyPaths lists the object keys of a JSON document in order, as paths.
func keyPaths(t *testing.T, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	var out []string
	var walk func(prefix string)
	walk = func(prefix string) {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("tokens of %s: %v", b, err)
		}
		switch tok {
		case json.Delim('{'):
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					t.Fatalf("tokens of %s: %v", b, err)
				}
				p := prefix + "." + k.(string)
				out = append(out, p)
				walk(p)
			}
			_, _ = dec.Token()
		case json.Delim('['):
			for dec.More() {
				walk(prefix + "[]")
			}
			_, _ = dec.Token()
		}
	}
	walk("")
	return out
}
