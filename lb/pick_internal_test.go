package lb

import (
	"net/url"
	"slices"
	"sync"
	"testing"
)

// staticView is a Backends the test sets.
type staticView struct {
	mu sync.Mutex
	bs []Backend
}

func (v *staticView) Backends() []Backend {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]Backend(nil), v.bs...)
}

func (v *staticView) set(bs ...Backend) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.bs = bs
}

func TestPeerFactor(t *testing.T) {
	tests := []struct {
		pool, own int
		want      float64
	}{
		{0, 0, 1},
		{500, minShareSample - 1, 1}, // too few own connections to judge a share
		{90, 30, 3},
		{60, 40, 1.5},
		{10, 30, 1},                // reports behind this lb's own count: never below 1
		{10000, 20, maxPeerFactor}, // a restarted lb holding few streams
	}
	for _, tt := range tests {
		if got := peerFactor(tt.pool, tt.own); got != tt.want {
			t.Errorf("peerFactor(%d, %d) = %v, want %v", tt.pool, tt.own, got, tt.want)
		}
	}
}

// TestPick_PeerFactorWeighsOwnConnections: an lb holding a third of the
// pool's streams counts each of its new connections three times, so it fills
// only its share of a gap the others see too.
func TestPick_PeerFactorWeighsOwnConnections(t *testing.T) {
	u := func(port string) *url.URL { return &url.URL{Scheme: "http", Host: "127.0.0.1:" + port} }
	v := &staticView{}
	v.set(Backend{Name: "a", URL: u("1")}, Backend{Name: "b", URL: u("2")}, Backend{Name: "c", URL: u("3")})
	l, err := New(Config{Backends: v})
	if err != nil {
		t.Fatal(err)
	}
	// This lb holds 30 streams, 10 per adapter.
	for range 30 {
		ch, ok := l.pick(nil, nil)
		if !ok {
			t.Fatal("no pick")
		}
		l.established(&ch)
	}
	// The next report shows 90 streams in the pool (two other lbs carry the
	// rest) and a gap of 4 to 5 at c.
	v.set(Backend{Name: "a", URL: u("1"), Active: 32}, Backend{Name: "b", URL: u("2"), Active: 31}, Backend{Name: "c", URL: u("3"), Active: 27})
	// Loads 32, 31, 27 + 3 per pick: c, c, then b, then a. Plain
	// least-connections would send c all of its gap: c, c, c, c.
	var got []string
	for range 4 {
		ch, ok := l.pick(nil, nil)
		if !ok {
			t.Fatal("no pick")
		}
		got = append(got, ch.name)
	}
	if want := []string{"c", "c", "b", "a"}; !slices.Equal(got, want) {
		t.Errorf("picks = %v, want %v (peer factor %v)", got, want, l.peerEstimate())
	}
	if f := l.peerEstimate(); f != 3 {
		t.Errorf("peer factor = %v, want 3", f)
	}
}
