package lb_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"callrec/internal/callrectest"
	"callrec/lb"
)

// pairPath is the path of copy k of a dual-stream pair.
func pairPath(group string, k int) string { return fmt.Sprintf("/media/pair/%s/%d", group, k) }

// TestPair_TwoLBsAgree: two lb instances on the same pool send each copy of
// a pair to the same adapter, the two copies to different adapters, and the
// path to the adapter unchanged.
func TestPair_TwoLBsAgree(t *testing.T) {
	bs := []*testBackend{newBackend(t, "adapter-1"), newBackend(t, "adapter-2"), newBackend(t, "adapter-3")}
	one := newLB(t, lb.Config{Backends: newView(bs[0].backend(0), bs[1].backend(0), bs[2].backend(0)), Path: "/media"})
	// The other lb's view lists the adapters in another order, with other loads.
	two := newLB(t, lb.Config{Backends: newView(bs[2].backend(9), bs[0].backend(3), bs[1].backend(0)), Path: "/media"})
	used := map[string]bool{}
	for i := range 10 {
		group := fmt.Sprintf("rec-WT%032x", i+1)
		var onOne [3]string
		for k := 1; k <= 2; k++ {
			c, h := one.dial(t, pairPath(group, k), nil)
			if h.RequestURI != pairPath(group, k) {
				t.Errorf("the adapter got %q, want %q", h.RequestURI, pairPath(group, k))
			}
			_ = c.Close()
			onOne[k] = h.Backend
			used[h.Backend] = true
			c, h = two.dial(t, pairPath(group, k), nil)
			_ = c.Close()
			if h.Backend != onOne[k] {
				t.Errorf("copy %d of %s: %s through one lb, %s through the other", k, group, onOne[k], h.Backend)
			}
		}
		if onOne[1] == onOne[2] {
			t.Errorf("both copies of %s on %s", group, onOne[1])
		}
	}
	if len(used) != 3 {
		t.Errorf("10 pairs used only %v", used)
	}
	// A plain upgrade still goes to the least loaded adapter: adapter-2 for
	// two, once the pairs' connections are gone.
	waitFor(t, "the pairs' connections to end", func() bool { return two.Active() == 0 })
	c, h := two.dial(t, "/media", nil)
	_ = c.Close()
	if h.Backend != "adapter-2" {
		t.Errorf("plain upgrade on %s, want the least loaded adapter-2", h.Backend)
	}
}

// TestPair_Failover: when a copy's adapter refuses connections, the copy
// goes to the next adapter of its pair's ranking (the one copy 2 uses),
// and the client never sees the failure.
func TestPair_Failover(t *testing.T) {
	bs := map[string]*testBackend{}
	var view []lb.Backend
	for _, n := range []string{"a", "b", "c"} {
		bs[n] = newBackend(t, n)
		view = append(view, bs[n].backend(0))
	}
	v := newView(view...)
	l := newLB(t, lb.Config{Backends: v, Path: "/media"})
	const group = "rec-WTc146b6ad38277b931d94d82f20703136"
	var placed [3]string
	for k := 1; k <= 2; k++ {
		c, h := l.dial(t, pairPath(group, k), nil)
		_ = c.Close()
		placed[k] = h.Backend
	}
	// Copy 1's adapter is still in the view but refuses connections.
	for i := range view {
		if view[i].Name == placed[1] {
			view[i].URL = refusingURL(t)
		}
	}
	v.set(view...)
	c, h := l.dial(t, pairPath(group, 1), nil)
	_ = c.Close()
	if h.Backend != placed[2] {
		t.Errorf("copy 1 with %s down went to %s, want the next in its ranking, %s", placed[1], h.Backend, placed[2])
	}
	if got := callrectest.Metric(t, l.reg, "callrec_lb_upgrades_total", map[string]string{"backend": placed[1], "outcome": "failed"}); got != 1 {
		t.Errorf("failed upgrades to %s = %v, want 1", placed[1], got)
	}
	if got := callrectest.Metric(t, l.reg, "callrec_lb_retries_total", nil); got != 1 {
		t.Errorf("retries = %v, want 1", got)
	}
}

// syncBuffer is a bytes.Buffer for a logger and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPair_MalformedPath: a malformed pair path is a 404 saying why, with
// a log line, and reaches no adapter.
func TestPair_MalformedPath(t *testing.T) {
	a := newBackend(t, "a")
	var logs syncBuffer
	l := newLB(t, lb.Config{Backends: newView(a.backend(0)), Path: "/media", Log: slog.New(slog.NewTextHandler(&logs, nil))})
	bad := []string{
		"/media/pair/rec-WT1",
		"/media/pair/rec-WT1/",
		"/media/pair/rec-WT1/0",
		"/media/pair/rec-WT1/5",
		"/media/pair/rec-WT1/two",
		"/media/pair/rec-WT1/1/extra",
		"/media/pair//1",
		"/media/pair/" + strings.Repeat("x", 300) + "/1",
	}
	for _, p := range bad {
		status, _, body := l.request(t, http.MethodGet, p, wsHeaders())
		if status != http.StatusNotFound || !strings.Contains(body, "malformed dual-stream path") {
			t.Errorf("GET %.60s: %d %q, want 404 saying the pair path is malformed", p, status, body)
		}
	}
	for _, p := range []string{"/media/pairs/rec-WT1/1", "/mediapair/rec-WT1/1", "/other/pair/rec-WT1/1"} {
		if status, _, _ := l.request(t, http.MethodGet, p, wsHeaders()); status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, status)
		}
	}
	if n := a.upgrades.Load(); n != 0 {
		t.Errorf("the adapter got %d upgrades", n)
	}
	if got := callrectest.Metric(t, l.reg, "callrec_lb_requests_rejected_total", map[string]string{"reason": "bad_pair_path"}); got != float64(len(bad)) {
		t.Errorf("rejected{reason=bad_pair_path} = %v, want %d", got, len(bad))
	}
	if n := strings.Count(logs.String(), "malformed dual-stream pair path"); n != len(bad) {
		t.Errorf("%d log lines about malformed pair paths, want %d:\n%s", n, len(bad), logs.String())
	}
	// A good pair path on the same lb still works, and a POST to it is
	// refused as on the plain path.
	if status, _, _ := l.request(t, http.MethodPost, pairPath("rec-WT1", 1), wsHeaders()); status != http.StatusMethodNotAllowed {
		t.Errorf("POST to a pair path: %d, want 405", status)
	}
	c, h := l.dial(t, pairPath("rec-WT1", 2), nil)
	_ = c.Close()
	if h.Backend != "a" {
		t.Errorf("copy 2 with one adapter on %q, want a (wrapped around)", h.Backend)
	}
}
