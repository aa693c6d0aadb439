package lb_test

import (
	"bytes"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"callrec/internal/callrectest"
	"callrec/lb"
)

func TestProxy_EchoBothWays(t *testing.T) {
	a := newBackend(t, "a")
	l := newLB(t, lb.Config{Backends: newView(a.backend(0)), Path: "/media"})

	c, h := l.dial(t, "/media", nil) // the hello went backend → client unprompted
	if h.Backend != "a" {
		t.Fatalf("hello from %q, want a", h.Backend)
	}
	echo(t, c, false, []byte(`{"event":"connected","protocol":"Call","version":"1.0.0"}`))
	big := make([]byte, 256<<10)
	_, _ = rand.Read(big)
	echo(t, c, true, big)

	// Many messages in flight at once, as Twilio sends 50 a second per track.
	const n = 200
	for i := range n {
		if err := c.WriteText(bytes.Repeat([]byte{byte('a' + i%26)}, 160)); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
	for i := range n {
		_, p, err := c.ReadMessage(nil)
		if err != nil {
			t.Fatalf("read echo %d: %v", i, err)
		}
		if want := bytes.Repeat([]byte{byte('a' + i%26)}, 160); !bytes.Equal(p, want) {
			t.Fatalf("echo %d = %.20q…, want %.20q…", i, p, want)
		}
	}
	if got := l.Active(); got != 1 {
		t.Errorf("Active() = %d, want 1", got)
	}
	if got := callrectest.Metric(t, l.reg, "callrec_lb_connections_active", map[string]string{"backend": "a"}); got != 1 {
		t.Errorf("callrec_lb_connections_active{backend=a} = %v, want 1", got)
	}

	// The client ends the stream: the backend sees it, the lb forgets it.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "backend socket to close", func() bool { return a.active.Load() == 0 })
	waitFor(t, "lb to count the connection gone", func() bool { return l.Active() == 0 })
	if got := callrectest.Metric(t, l.reg, "callrec_lb_connections_active", map[string]string{"backend": "a"}); got != 0 {
		t.Errorf("callrec_lb_connections_active{backend=a} = %v after close, want 0", got)
	}
}

// TestProxy_TwilioUpgradeIntact checks that what the adapter needs to verify
// the signature and complete the handshake arrives as Twilio sent it.
func TestProxy_TwilioUpgradeIntact(t *testing.T) {
	a := newBackend(t, "a")
	l := newLB(t, lb.Config{Backends: newView(a.backend(0)), Path: "/media"})

	// A semicolon and escapes: ReverseProxy alone would drop "c=d".
	const pathQuery = "/media?callSid=CA0123&token=a%2Fb;c=d&empty=&check=%E2%9C%93"
	sent := map[string][]string{
		"x-twilio-signature":     {"pe9rTYt9KBc/8Ha+BeUAIb4Wpvs="}, // lower case, as Twilio sends it on WebSocket upgrades
		"User-Agent":             {"Twilio.TmeWs/1.0"},
		"Sec-WebSocket-Protocol": {"audio.twilio.com"},
		"X-Home-Region":          {"us1"},
	}
	_, h := l.dial(t, pathQuery, sent) // the handshake checks Sec-WebSocket-Accept, so the key arrived intact
	if h.Method != http.MethodGet || h.RequestURI != pathQuery {
		t.Errorf("backend got %s %s, want GET %s", h.Method, h.RequestURI, pathQuery)
	}
	if want := l.srv.Listener.Addr().String(); h.Host != want {
		t.Errorf("backend got Host %q, want the client's %q", h.Host, want)
	}
	want := http.Header{
		"Connection":             {"Upgrade"},
		"Upgrade":                {"websocket"},
		"Sec-Websocket-Version":  {"13"},
		"Sec-Websocket-Key":      h.Header["Sec-Websocket-Key"], // random, checked by the handshake
		"Sec-Websocket-Protocol": {"audio.twilio.com"},
		"X-Twilio-Signature":     {"pe9rTYt9KBc/8Ha+BeUAIb4Wpvs="},
		"User-Agent":             {"Twilio.TmeWs/1.0"},
		"X-Home-Region":          {"us1"},
		"X-Forwarded-For":        {"127.0.0.1"},
		"X-Forwarded-Proto":      {"http"},
		"X-Forwarded-Host":       {l.srv.Listener.Addr().String()},
	}
	if len(h.Header["Sec-Websocket-Key"]) != 1 {
		t.Errorf("backend got Sec-WebSocket-Key %q, want one", h.Header["Sec-Websocket-Key"])
	}
	if diff := cmp.Diff(want, h.Header); diff != "" {
		t.Errorf("headers at the backend (-want +got):\n%s", diff)
	}
}

func TestProxy_ForwardedHeaders(t *testing.T) {
	spoofed := http.Header{
		"X-Forwarded-For":   {"203.0.113.9"},
		"X-Forwarded-Proto": {"https"},
		"X-Forwarded-Host":  {"media.example.com"},
		"X-Forwarded-Port":  {"443"},
		"Forwarded":         {"for=203.0.113.9;proto=https"},
		"X-Real-Ip":         {"203.0.113.9"},
	}
	tests := []struct {
		name  string
		trust bool
		tls   bool
		sent  http.Header
		want  http.Header // forwarding headers at the backend; "HOST" is the lb's address
	}{
		{"plain", false, false, nil,
			http.Header{"X-Forwarded-For": {"127.0.0.1"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"HOST"}}},
		{"client headers replaced", false, false, spoofed,
			http.Header{"X-Forwarded-For": {"127.0.0.1"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"HOST"}}},
		{"TLS listener", false, true, spoofed,
			http.Header{"X-Forwarded-For": {"127.0.0.1"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"HOST"}}},
		{"trusted upstream", true, false, spoofed,
			http.Header{"X-Forwarded-For": {"203.0.113.9, 127.0.0.1"}, "X-Forwarded-Proto": {"https"},
				"X-Forwarded-Host": {"media.example.com"}, "X-Forwarded-Port": {"443"},
				"Forwarded": {"for=203.0.113.9;proto=https"}, "X-Real-Ip": {"203.0.113.9"}}},
		{"trusted, nothing upstream", true, false, nil,
			http.Header{"X-Forwarded-For": {"127.0.0.1"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"HOST"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newBackend(t, "a")
			start := (*httptest.Server).Start
			if tt.tls {
				start = (*httptest.Server).StartTLS
			}
			l := startLB(t, lb.Config{Backends: newView(a.backend(0)), TrustForwarded: tt.trust}, start)
			_, h := l.dial(t, "/media", tt.sent)
			got := http.Header{}
			for k, v := range h.Header {
				if k == "Forwarded" || k == "X-Real-Ip" || strings.HasPrefix(k, "X-Forwarded-") {
					got[k] = v
				}
			}
			if got["X-Forwarded-Host"] != nil && got["X-Forwarded-Host"][0] == l.srv.Listener.Addr().String() {
				got["X-Forwarded-Host"] = []string{"HOST"}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("forwarding headers at the backend (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProxy_RefusesOtherRequests(t *testing.T) {
	a := newBackend(t, "a")
	l := newLB(t, lb.Config{Backends: newView(a.backend(0)), Path: "/media"})
	with := func(k, v string) http.Header {
		h := wsHeaders()
		if v == "" {
			h.Del(k)
		} else {
			h.Set(k, v)
		}
		return h
	}
	tests := []struct {
		name, method, path string
		header             http.Header
		status             int
		body               string // part of the answer
		respHeader         [2]string
	}{
		{"other path", "GET", "/healthz", wsHeaders(), http.StatusNotFound, "upgrades go to /media", [2]string{}},
		{"plain GET", "GET", "/media", nil, http.StatusUpgradeRequired, "WebSocket upgrades only", [2]string{"Upgrade", "websocket"}},
		{"POST", "POST", "/media", wsHeaders(), http.StatusMethodNotAllowed, "is a GET", [2]string{"Allow", "GET"}},
		{"other protocol", "GET", "/media", with("Upgrade", "h2c"), http.StatusUpgradeRequired, "WebSocket upgrades only", [2]string{}},
		{"old WebSocket version", "GET", "/media", with("Sec-WebSocket-Version", "8"), http.StatusBadRequest, "Sec-WebSocket-Version must be 13", [2]string{}},
		{"no key", "GET", "/media", with("Sec-WebSocket-Key", ""), http.StatusBadRequest, "no Sec-WebSocket-Key", [2]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, body := l.request(t, tt.method, tt.path, tt.header)
			if status != tt.status || !strings.Contains(body, tt.body) {
				t.Errorf("answer = %d %q, want %d containing %q", status, body, tt.status, tt.body)
			}
			if k := tt.respHeader[0]; k != "" && hdr.Get(k) != tt.respHeader[1] {
				t.Errorf("%s: %q, want %q", k, hdr.Get(k), tt.respHeader[1])
			}
		})
	}
	if n := a.upgrades.Load(); n != 0 {
		t.Errorf("backend accepted %d upgrades, want 0", n)
	}
	if got := callrectest.Metric(t, l.reg, "callrec_lb_requests_rejected_total", map[string]string{"reason": "bad_handshake"}); got != 2 {
		t.Errorf("callrec_lb_requests_rejected_total{reason=bad_handshake} = %v, want 2", got)
	}
}

// TestProxy_ServerTimeoutsDoNotCutStreams serves the lb with short read and
// write timeouts, which net/http leaves on a hijacked connection: a stream
// outliving them must keep flowing.
func TestProxy_ServerTimeoutsDoNotCutStreams(t *testing.T) {
	a := newBackend(t, "a")
	const timeout = 100 * time.Millisecond
	l := startLB(t, lb.Config{Backends: newView(a.backend(0))}, func(s *httptest.Server) {
		s.Config.ReadTimeout, s.Config.WriteTimeout = timeout, timeout
		s.Start()
	})
	c, _ := l.dial(t, "/media", nil)
	for end := time.Now().Add(4 * timeout); time.Now().Before(end); {
		echo(t, c, false, []byte("media frame"))
	}
}
