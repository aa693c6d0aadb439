package lb_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"callrec"
	"callrec/internal/callrectest"
	"callrec/internal/link"
	"callrec/internal/twilio"
	"callrec/internal/ws"
	"callrec/lb"
	"callrec/mediaadapter"
)

// The fake auth token of shared/fixtures/twilio, and the URL Twilio was told.
const (
	authToken = "12345678901234567890123456789012"
	publicURL = "wss://media.example.com/media"
)

// openers records the streams a real mediaadapter opens, handing them to a
// link client that is never connected (no recorder in these tests).
type openers struct {
	*link.Client
	opened chan callrec.StreamInfo
}

func (o *openers) Open(info callrec.StreamInfo) *link.Stream {
	o.opened <- info
	return o.Client.Open(info)
}

// newAdapter serves a real mediaadapter.Server on 127.0.0.1 that checks
// signatures against publicURL.
func newAdapter(t *testing.T) (*mediaadapter.Server, *openers, *url.URL) {
	t.Helper()
	rec := &openers{
		Client: link.NewClient(link.ClientConfig{AdapterID: "lb-test",
			Dial: func(context.Context) (net.Conn, error) { return nil, errors.New("no recorder in this test") }}),
		opened: make(chan callrec.StreamInfo, 4),
	}
	media, err := mediaadapter.New(mediaadapter.Config{PublicURL: publicURL, AuthToken: authToken, NodeID: "adapter-1"}, rec, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/media", media)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := media.Shutdown(ctx); err != nil {
			t.Errorf("adapter shutdown: %v", err)
		}
		srv.Close()
	})
	u, _ := url.Parse(srv.URL)
	return media, rec, u
}

// TestSignature_VerifiedThroughLB: Twilio signs the public wss:// URL; the
// adapter behind the lb still verifies it and takes the stream, and refuses
// a tampered or missing signature.
func TestSignature_VerifiedThroughLB(t *testing.T) {
	media, rec, adapterURL := newAdapter(t)
	l := newLB(t, lb.Config{Backends: newView(lb.Backend{Name: "adapter-1", URL: adapterURL})})
	sig := twilio.Sign(authToken, publicURL, nil)

	c, err := l.dialErr("/media", http.Header{twilio.SignatureHeader: {sig}, "User-Agent": {"Twilio.TmeWs/1.0"}})
	if err != nil {
		t.Fatalf("signed upgrade through the lb: %v", err)
	}
	defer c.Close()
	// Twilio's first messages reach the adapter, which opens the recording.
	for _, name := range []string{"connected.json", "start.json"} {
		msg, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.WriteText(msg); err != nil {
			t.Fatalf("send %s: %v", name, err)
		}
	}
	select {
	case info := <-rec.opened:
		if info.CallSID != "CAc0bb2f535401483f8461ddeef83c2d68" || info.StreamSID != "MZ4ec1db7c787a4c9912e1b23305f43a5c" {
			t.Errorf("adapter opened call %s stream %s, want the fixture's", info.CallSID, info.StreamSID)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the adapter never opened the stream")
	}
	if got := media.Active(); got != 1 {
		t.Errorf("adapter Active() = %d, want 1", got)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the adapter to end the session", func() bool { return media.Active() == 0 })

	tampered := []byte(sig)
	tampered[3] ^= 1
	tests := []struct {
		name   string
		header http.Header
		reason string
	}{
		{"tampered signature", http.Header{twilio.SignatureHeader: {string(tampered)}}, "invalid X-Twilio-Signature"},
		{"signed for another URL", http.Header{twilio.SignatureHeader: {twilio.Sign(authToken, "wss://elsewhere.example.com/media", nil)}}, "invalid X-Twilio-Signature"},
		{"no signature", nil, "missing X-Twilio-Signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.dialErr("/media", tt.header)
			var he *ws.HandshakeError
			if !errors.As(err, &he) || he.Status != http.StatusForbidden {
				t.Errorf("dial = %v, want a 403 from the adapter", err)
			}
			h := wsHeaders()
			for k, v := range tt.header {
				h[k] = v
			}
			status, _, body := l.request(t, "GET", "/media", h)
			if status != http.StatusForbidden || !strings.Contains(body, tt.reason) {
				t.Errorf("answer = %d %q, want 403 %q", status, body, tt.reason)
			}
		})
	}
	if got := callrectest.Metric(t, l.reg, "callrec_lb_upgrades_total", map[string]string{"backend": "adapter-1", "outcome": "refused"}); got != 6 {
		t.Errorf("callrec_lb_upgrades_total{outcome=refused} = %v, want 6", got)
	}
}
