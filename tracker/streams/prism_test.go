package streams_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"testing"

	"callrec"
	"callrec/internal/servicetest"
	"callrec/internal/twilio"
	"callrec/tracker/streams"
)

// seen is one request that reached Prism, and its answer.
type seen struct {
	method, path string
	form         url.Values
	status       int
}

// recordingProxy serves a reverse proxy to target that records every
// request's form and the status of the answer.
type recordingProxy struct {
	mu   sync.Mutex
	reqs []seen
}

func (p *recordingProxy) start(t *testing.T, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(res *http.Response) error {
		form, _ := res.Request.Context().Value(formKey{}).(url.Values)
		p.mu.Lock()
		p.reqs = append(p.reqs, seen{method: res.Request.Method, path: res.Request.URL.Path, form: form, status: res.StatusCode})
		p.mu.Unlock()
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		form, _ := url.ParseQuery(string(body))
		r.Body = io.NopCloser(bytes.NewReader(body))
		rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), formKey{}, form)))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

type formKey struct{}

func (p *recordingProxy) requests() []seen {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]seen(nil), p.reqs...)
}

// params reads a Start Stream form's ParameterN.Name/Value pairs.
func params(form url.Values) map[string]string {
	out := map[string]string{}
	for i := 1; i <= 99; i++ {
		n := form.Get(fmt.Sprintf("Parameter%d.Name", i))
		if n == "" {
			break
		}
		out[n] = form.Get(fmt.Sprintf("Parameter%d.Value", i))
	}
	return out
}

// TestDualStreamsAgainstTwilioSpec: every request of dual-stream capture —
// both copies' Start Stream, a copy's replacement, both stops — is accepted
// by Prism serving Twilio's own OpenAPI spec, with the names, URLs and
// parameters of the scheme; a request the spec forbids is refused, so the
// check is real.
func TestDualStreamsAgainstTwilioSpec(t *testing.T) {
	var proxy recordingProxy
	base := proxy.start(t, servicetest.StartPrism(t))
	rc, err := twilio.NewREST(twilio.RESTConfig{AccountSID: acct, AuthToken: token, BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: streams.NewMemoryStore()}
	e.start(t, streams.Config{DualStreams: true, StatusCallback: "https://rec.example.com/twilio/stream-status"}, rc)
	const name = "rec-WTc146b6ad38277b931d94d82f20703136"
	submit(t, e.m, startOrder(name))
	var sids [3]string
	for k := 1; k <= 2; k++ {
		in := e.waitIntent(t, streams.StartKey(streams.CopyName(name, k)))
		if in.State != streams.Done || in.Outcome != "started" {
			t.Fatalf("copy %d: %+v", k, in)
		}
		sids[k] = in.StreamSID
	}
	if ok, err := e.m.StreamFailed(context.Background(), streams.CopyName(name, 1), sids[1], "connection lost"); err != nil || !ok {
		t.Fatalf("StreamFailed = %v, %v", ok, err)
	}
	if in := e.waitIntent(t, "restart:"+streams.CopyName(name, 1)+":1"); in.Outcome != "started" {
		t.Fatalf("replacement: %+v", in)
	}
	submit(t, e.m, stopOrder(name))
	for k := 1; k <= 2; k++ {
		if in := e.waitIntent(t, streams.StopKey(streams.CopyName(name, k))); in.Outcome != "stopped" {
			t.Errorf("copy %d: stop %+v", k, in)
		}
	}

	creates := map[string]url.Values{}
	var stops []string
	for _, r := range proxy.requests() {
		if r.status != http.StatusOK {
			t.Errorf("%s %s %v: Prism answered %d", r.method, r.path, r.form, r.status)
		}
		if r.form.Get("Status") == "stopped" {
			stops = append(stops, r.path)
			continue
		}
		creates[r.form.Get("Name")] = r.form
	}
	for _, want := range []struct {
		name string
		k    int
	}{{name + "-c1", 1}, {name + "-c2", 2}, {name + "-c1-restart1", 1}} {
		f, ok := creates[want.name]
		if !ok {
			t.Errorf("no Start Stream named %s; got %v", want.name, creates)
			continue
		}
		p := params(f)
		if u := "wss://rec.example.com/media/pair/" + name + "/" + strconv.Itoa(want.k); f.Get("Url") != u {
			t.Errorf("%s: Url %q, want %q", want.name, f.Get("Url"), u)
		}
		if p[callrec.ParamPair] != name || p[callrec.ParamCopy] != strconv.Itoa(want.k) || p[callrec.ParamCopies] != "2" || p["task_sid"] != "WT1" {
			t.Errorf("%s: parameters %v", want.name, p)
		}
	}
	if len(creates) != 3 || len(stops) != 2 {
		t.Errorf("%d Start and %d Stop Stream requests, want 3 and 2", len(creates), len(stops))
	}

	// The control: a track the spec does not know is refused (422), and
	// the Manager gives that order up.
	bad := &env{store: streams.NewMemoryStore()}
	bad.start(t, streams.Config{DualStreams: true, Track: "sideways"}, rc)
	submit(t, bad.m, startOrder(name))
	if in := bad.waitIntent(t, streams.StartKey(streams.CopyName(name, 1))); in.State != streams.Abandoned || in.Outcome != "refused" {
		t.Errorf("a Start Stream the spec forbids: %+v, want refused", in)
	}
}
