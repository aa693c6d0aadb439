package lb_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"callrec/internal/callrectest"
	"callrec/lb"
)

// shutdownStarted waits until the lb refuses new upgrades, which it does
// once Shutdown has begun.
func shutdownStarted(t *testing.T, l *testLB) {
	t.Helper()
	waitFor(t, "new upgrades to be refused", func() bool {
		status, _, body := l.request(t, "GET", "/media", wsHeaders())
		return status == http.StatusServiceUnavailable && strings.Contains(body, "shutting down")
	})
}

func TestShutdown_WaitsForConnections(t *testing.T) {
	a := newBackend(t, "a")
	l := newLB(t, lb.Config{Backends: newView(a.backend(0))})
	c, _ := l.dial(t, "/media", nil)

	done := make(chan error, 1)
	go func() { done <- l.Shutdown(context.Background()) }()
	shutdownStarted(t, l)
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a stream was open", err)
	default:
	}
	echo(t, c, false, []byte("the call goes on during shutdown"))

	if err := c.Close(); err != nil { // Twilio ends the stream
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown = %v, want nil once the stream ended", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Shutdown still waiting after the last stream ended")
	}
	if n := a.upgrades.Load(); n != 1 {
		t.Errorf("backend got %d upgrades, want 1 (none during shutdown)", n)
	}
}

func TestShutdown_CutsAfterDeadline(t *testing.T) {
	a := newBackend(t, "a")
	l := newLB(t, lb.Config{Backends: newView(a.backend(0))})
	c, _ := l.dial(t, "/media", nil)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Shutdown(ctx) }()
	shutdownStarted(t, l)
	cancel() // the deadline passes

	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Shutdown = %v, want the context's error", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Shutdown did not return after its context ended")
	}
	// Both sides of the proxied connection are closed.
	_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
	_, _, err := c.ReadMessage(nil)
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("client read after the cut = %v, want the connection closed", err)
	}
	waitFor(t, "the backend to see the cut", func() bool { return a.active.Load() == 0 })
	if got := l.Active(); got != 0 {
		t.Errorf("Active() = %d after the cut, want 0", got)
	}
}

// TestShutdown_CutsUpgradeInProgress: an upgrade still waiting for its
// adapter is ended too, and its client told why.
func TestShutdown_CutsUpgradeInProgress(t *testing.T) {
	l := newLB(t, lb.Config{Backends: newView(lb.Backend{Name: "slow", URL: silent(t)}), DialTimeout: time.Hour})

	type answer struct {
		status int
		body   string
	}
	got := make(chan answer, 1)
	go func() {
		// Not l.request: it may not call t.Fatal off the test goroutine.
		req, _ := http.NewRequest("GET", l.srv.URL+"/media", nil)
		req.Header = wsHeaders()
		res, err := l.srv.Client().Do(req)
		if err != nil {
			got <- answer{body: err.Error()}
			return
		}
		defer res.Body.Close()
		b := make([]byte, 512)
		n, _ := res.Body.Read(b)
		got <- answer{res.StatusCode, string(b[:n])}
	}()
	waitFor(t, "the upgrade to reach the backend", func() bool {
		return callrectest.Metric(t, l.reg, "callrec_lb_picks_total", map[string]string{"backend": "slow"}) == 1
	})

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown = %v, want the context's error", err)
	}
	select {
	case a := <-got:
		if a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, "shutting down") {
			t.Errorf("client got %d %q, want 503 shutting down", a.status, a.body)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the client got no answer")
	}
	if got := callrectest.Metric(t, l.reg, "callrec_lb_upgrades_total", map[string]string{"backend": "slow", "outcome": "canceled"}); got != 1 {
		t.Errorf("callrec_lb_upgrades_total{backend=slow,outcome=canceled} = %v, want 1", got)
	}
}

func TestShutdown_Idle(t *testing.T) {
	l := newLB(t, lb.Config{Backends: newView()})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := l.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown with nothing open = %v, want nil", err)
	}
	if err := l.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown = %v, want nil", err)
	}
}
