package lb_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"callrec/internal/ws"
	"callrec/lb"
)

// waitTimeout bounds every wait in these tests.
const waitTimeout = 10 * time.Second

// hello is the first message a test backend sends: what it received.
type hello struct {
	Backend    string      `json:"backend"`
	Method     string      `json:"method"`
	RequestURI string      `json:"request_uri"`
	Host       string      `json:"host"`
	Header     http.Header `json:"header"`
}

// testBackend is a stand-in mediaadapter: a real WebSocket server on
// 127.0.0.1 that sends a hello, then echoes every message.
type testBackend struct {
	name     string
	srv      *httptest.Server
	url      *url.URL
	active   atomic.Int64 // open sockets
	upgrades atomic.Int64 // sockets accepted, ever

	mu     sync.Mutex
	conns  map[*ws.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func newBackend(tb testing.TB, name string) *testBackend {
	tb.Helper()
	b := &testBackend{name: name, conns: map[*ws.Conn]struct{}{}}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	u, err := url.Parse(b.srv.URL)
	if err != nil {
		tb.Fatal(err)
	}
	b.url = u
	tb.Cleanup(b.close)
	return b
}

func (b *testBackend) serve(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		http.Error(w, "closed", http.StatusServiceUnavailable)
		return
	}
	b.wg.Add(1)
	b.mu.Unlock()
	defer b.wg.Done()
	c, err := ws.Upgrade(w, r, ws.UpgradeOptions{})
	if err != nil {
		return
	}
	b.mu.Lock()
	b.conns[c] = struct{}{}
	b.mu.Unlock()
	b.active.Add(1)
	b.upgrades.Add(1)
	defer func() {
		b.active.Add(-1)
		b.mu.Lock()
		delete(b.conns, c)
		b.mu.Unlock()
		_ = c.Close()
	}()
	h, _ := json.Marshal(hello{Backend: b.name, Method: r.Method, RequestURI: r.RequestURI, Host: r.Host, Header: r.Header})
	if err := c.WriteText(h); err != nil {
		return
	}
	var buf []byte
	for {
		mt, p, err := c.ReadMessage(buf)
		if err != nil {
			return
		}
		buf = p
		if mt == ws.BinaryMessage {
			err = c.WriteBinary(p)
		} else {
			err = c.WriteText(p)
		}
		if err != nil {
			return
		}
	}
}

// close ends every socket and the server.
func (b *testBackend) close() {
	b.mu.Lock()
	b.closed = true
	for c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
	b.srv.Close()
}

// backend is b as the view reports it.
func (b *testBackend) backend(active int) lb.Backend {
	return lb.Backend{Name: b.name, URL: b.url, Active: active}
}

// view is a Backends whose content the test sets. With live set, Active
// comes from the test backends' real counts, refreshed every every-th call
// (a gossip delay counted in picks).
type view struct {
	mu    sync.Mutex
	bs    []lb.Backend
	live  map[string]*testBackend
	every int
	calls int
}

func newView(bs ...lb.Backend) *view { return &view{bs: bs} }

func (v *view) Backends() []lb.Backend {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.live != nil {
		if v.calls%v.every == 0 {
			for i := range v.bs {
				if b := v.live[v.bs[i].Name]; b != nil {
					v.bs[i].Active = int(b.active.Load())
				}
			}
			if debugView {
				fmt.Println("refresh", v.calls, v.bs[0].Active, v.bs[1].Active, v.bs[2].Active)
			}
		}
		v.calls++
	}
	return slices.Clone(v.bs)
}

func (v *view) set(bs ...lb.Backend) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.bs = bs
}

// reportLive makes the view report the backends' real counts, refreshed
// every every-th call.
func (v *view) reportLive(every int, bs ...*testBackend) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.live = map[string]*testBackend{}
	for _, b := range bs {
		v.live[b.name] = b
	}
	v.every = every
}

// testLB is an LB served on 127.0.0.1.
type testLB struct {
	*lb.LB
	srv *httptest.Server
	reg *prometheus.Registry
}

// newLB serves an LB for cfg; cfg.Backends must be set. It is shut down,
// expecting no connection left, when the test ends.
func newLB(tb testing.TB, cfg lb.Config) *testLB {
	tb.Helper()
	return startLB(tb, cfg, func(s *httptest.Server) { s.Start() })
}

// startLB is newLB with the server started by start (Start, StartTLS…).
func startLB(tb testing.TB, cfg lb.Config, start func(*httptest.Server)) *testLB {
	tb.Helper()
	t := &testLB{reg: prometheus.NewRegistry()}
	cfg.Registerer = t.reg
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	l, err := lb.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	t.LB = l
	t.srv = httptest.NewUnstartedServer(l)
	start(t.srv)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := l.Shutdown(ctx); err != nil {
			tb.Errorf("lb shutdown at test end: %v", err)
		}
		t.srv.CloseClientConnections()
		t.srv.Close()
	})
	return t
}

// dialErr opens a WebSocket through the lb at path (with any query).
func (t *testLB) dialErr(path string, h http.Header) (*ws.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	opt := ws.DialOptions{Header: h}
	u := "ws://" + t.srv.Listener.Addr().String() + path
	if t.srv.TLS != nil {
		u = "wss://" + t.srv.Listener.Addr().String() + path
		opt.TLSConfig = t.srv.Client().Transport.(*http.Transport).TLSClientConfig
	}
	return ws.Dial(ctx, u, opt)
}

// dial opens a WebSocket through the lb and reads the backend's hello. The
// socket is closed when the test ends.
func (t *testLB) dial(tb testing.TB, path string, h http.Header) (*ws.Conn, hello) {
	tb.Helper()
	c, err := t.dialErr(path, h)
	if err != nil {
		tb.Fatalf("dial %s through the lb: %v", path, err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c, readHello(tb, c)
}

func readHello(tb testing.TB, c *ws.Conn) hello {
	tb.Helper()
	h, err := readHelloErr(c)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

func readHelloErr(c *ws.Conn) (hello, error) {
	_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
	_, p, err := c.ReadMessage(nil)
	if err != nil {
		return hello{}, fmt.Errorf("read hello: %w", err)
	}
	var h hello
	if err := json.Unmarshal(p, &h); err != nil {
		return hello{}, fmt.Errorf("decode hello %q: %w", p, err)
	}
	return h, nil
}

// echo sends msg and expects it back, as text or binary.
func echo(tb testing.TB, c *ws.Conn, binary bool, msg []byte) {
	tb.Helper()
	var err error
	if binary {
		err = c.WriteBinary(msg)
	} else {
		err = c.WriteText(msg)
	}
	if err != nil {
		tb.Fatalf("write: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
	mt, got, err := c.ReadMessage(nil)
	if err != nil {
		tb.Fatalf("read echo: %v", err)
	}
	want := ws.TextMessage
	if binary {
		want = ws.BinaryMessage
	}
	if mt != want || !bytes.Equal(got, msg) {
		tb.Fatalf("echo = type %d, %d bytes %.40q; want type %d, %d bytes %.40q", mt, len(got), got, want, len(msg), msg)
	}
}

// request sends a request to the lb with plain HTTP (for answers that are
// not 101) and returns the status, headers and body.
func (t *testLB) request(tb testing.TB, method, path string, h http.Header) (int, http.Header, string) {
	tb.Helper()
	req, err := http.NewRequest(method, t.srv.URL+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	client := *t.srv.Client() // a copy: the timeout is ours
	client.Timeout = waitTimeout
	res, err := client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusSwitchingProtocols {
		return res.StatusCode, res.Header, "" // a WebSocket: nothing to read to the end
	}
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(body)
}

// wsHeaders are the headers of a WebSocket upgrade.
func wsHeaders() http.Header {
	return http.Header{
		"Connection":            {"Upgrade"},
		"Upgrade":               {"websocket"},
		"Sec-Websocket-Version": {"13"},
		"Sec-Websocket-Key":     {"dGhlIHNhbXBsZSBub25jZQ=="},
	}
}

// waitFor polls cond until it holds or the wait times out.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// refusingURL is the URL of a listener that was closed: connecting to it is
// refused.
func refusingURL(tb testing.TB) *url.URL {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		tb.Fatal(err)
	}
	return &url.URL{Scheme: "http", Host: addr}
}

var debugView = os.Getenv("DEBUGVIEW") != ""
