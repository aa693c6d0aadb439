package lb_test

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"callrec/internal/callrectest"
	"callrec/internal/ws"
	"callrec/lb"
)

// answering is a backend that answers every upgrade with status and body,
// as a draining or broken adapter does.
func answering(tb testing.TB, status int, body string) *url.URL {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, body, status)
	}))
	tb.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return u
}

// silent is a backend that accepts TCP connections and never answers.
func silent(tb testing.TB) *url.URL {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	var held []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range held {
					_ = c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	tb.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return &url.URL{Scheme: "http", Host: ln.Addr().String()}
}

// TestFailover: the preferred backends fail before any byte went to the
// client; the client lands on a working one and never sees an error.
func TestFailover(t *testing.T) {
	tests := []struct {
		name    string
		bad     func(testing.TB) []*url.URL
		retries float64
	}{
		{"connection refused", func(tb testing.TB) []*url.URL { return []*url.URL{refusingURL(tb)} }, 1},
		{"503 on upgrade", func(tb testing.TB) []*url.URL {
			return []*url.URL{answering(tb, http.StatusServiceUnavailable, "media adapter is shutting down")}
		}, 1},
		{"no answer within the dial timeout", func(tb testing.TB) []*url.URL { return []*url.URL{silent(tb)} }, 1},
		{"two down", func(tb testing.TB) []*url.URL {
			return []*url.URL{refusingURL(tb), answering(tb, http.StatusBadGateway, "broken")}
		}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good := newBackend(t, "good")
			var bs []lb.Backend
			for i, u := range tt.bad(t) {
				bs = append(bs, lb.Backend{Name: "bad" + string(rune('0'+i)), URL: u, Active: i}) // preferred: fewer streams
			}
			bs = append(bs, good.backend(50))
			l := newLB(t, lb.Config{Backends: newView(bs...), DialTimeout: 300 * time.Millisecond, MaxAttempts: 3})

			c, h := l.dial(t, "/media", nil)
			if h.Backend != "good" {
				t.Fatalf("landed on %q, want good", h.Backend)
			}
			echo(t, c, false, []byte("after failover"))
			if got := callrectest.Metric(t, l.reg, "callrec_lb_retries_total", nil); got != tt.retries {
				t.Errorf("callrec_lb_retries_total = %v, want %v", got, tt.retries)
			}
			for _, b := range bs[:len(bs)-1] {
				if got := callrectest.Metric(t, l.reg, "callrec_lb_upgrades_total", map[string]string{"backend": b.Name, "outcome": "failed"}); got != 1 {
					t.Errorf("callrec_lb_upgrades_total{backend=%s,outcome=failed} = %v, want 1", b.Name, got)
				}
			}
			if got := callrectest.Metric(t, l.reg, "callrec_lb_upgrades_total", map[string]string{"backend": "good", "outcome": "switched"}); got != 1 {
				t.Errorf("callrec_lb_upgrades_total{backend=good,outcome=switched} = %v, want 1", got)
			}
		})
	}
}

func TestFailover_Unavailable(t *testing.T) {
	tests := []struct {
		name     string
		backends func(testing.TB) []lb.Backend
		attempts int
		failed   float64 // attempts that failed
	}{
		{"all refuse", func(tb testing.TB) []lb.Backend {
			return []lb.Backend{{Name: "x", URL: refusingURL(tb)}, {Name: "y", URL: refusingURL(tb)}}
		}, 3, 2}, // each backend is tried once
		{"attempts used up", func(tb testing.TB) []lb.Backend {
			return []lb.Backend{{Name: "x", URL: refusingURL(tb)}, newBackend(tb, "good").backend(9)}
		}, 1, 1},
		{"empty view", func(testing.TB) []lb.Backend { return nil }, 3, 0},
		{"all draining", func(tb testing.TB) []lb.Backend {
			b := newBackend(tb, "d").backend(0)
			b.Draining = true
			return []lb.Backend{b}
		}, 3, 0},
		{"unusable URL", func(testing.TB) []lb.Backend {
			return []lb.Backend{{Name: "nil"}, {Name: "ftp", URL: &url.URL{Scheme: "ftp", Host: "127.0.0.1:21"}}}
		}, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bs := tt.backends(t)
			l := newLB(t, lb.Config{Backends: newView(bs...), MaxAttempts: tt.attempts})
			status, hdr, body := l.request(t, "GET", "/media", wsHeaders())
			if status != http.StatusServiceUnavailable || !strings.Contains(body, "no media adapter available") {
				t.Errorf("answer = %d %q, want 503 no media adapter available", status, body)
			}
			if hdr.Get("Retry-After") == "" {
				t.Error("no Retry-After on the 503")
			}
			// A WebSocket client sees the refused handshake.
			c, err := l.dialErr("/media", nil)
			if err == nil {
				_ = c.Close()
			}
			var he *ws.HandshakeError
			if !errors.As(err, &he) || he.Status != http.StatusServiceUnavailable {
				t.Errorf("dial error = %v, want a 503 handshake error", err)
			}
			if got := callrectest.Metric(t, l.reg, "callrec_lb_unavailable_total", nil); got != 2 {
				t.Errorf("callrec_lb_unavailable_total = %v, want 2", got)
			}
			var failed float64
			for _, b := range bs {
				failed += callrectest.Metric(t, l.reg, "callrec_lb_upgrades_total", map[string]string{"backend": b.Name, "outcome": "failed"})
			}
			if failed != 2*tt.failed {
				t.Errorf("failed attempts = %v, want %v", failed, 2*tt.failed)
			}
		})
	}
}

// TestFailover_RefusalPassesThrough: an adapter's own refusal (a bad
// signature is 403) is its verdict: the client gets it, nobody else is tried.
func TestFailover_RefusalPassesThrough(t *testing.T) {
	good := newBackend(t, "good")
	v := newView(lb.Backend{Name: "strict", URL: answering(t, http.StatusForbidden, "invalid X-Twilio-Signature")}, good.backend(5))
	l := newLB(t, lb.Config{Backends: v})
	status, _, body := l.request(t, "GET", "/media", wsHeaders())
	if status != http.StatusForbidden || !strings.Contains(body, "invalid X-Twilio-Signature") {
		t.Errorf("answer = %d %q, want the adapter's 403", status, body)
	}
	if n := good.upgrades.Load(); n != 0 {
		t.Errorf("another backend got %d upgrades after a refusal", n)
	}
	if got := callrectest.Metric(t, l.reg, "callrec_lb_retries_total", nil); got != 0 {
		t.Errorf("callrec_lb_retries_total = %v, want 0", got)
	}
	if got := callrectest.Metric(t, l.reg, "callrec_lb_upgrades_total", map[string]string{"backend": "strict", "outcome": "refused"}); got != 1 {
		t.Errorf("callrec_lb_upgrades_total{backend=strict,outcome=refused} = %v, want 1", got)
	}
}
