package webhook_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"callrec"
	"callrec/eventadapter"
	"callrec/eventadapter/webhook"
	"callrec/internal/callrectest"
	"callrec/internal/twilio"
)

// vector is testdata/twilio/signatures/event-streams-webhook.json.
type vector struct {
	AuthToken         string `json:"auth_token"`
	RequestURL        string `json:"request_url"`
	RawBodyFile       string `json:"raw_body_file"`
	ExpectedSignature string `json:"expected_signature"`
	body              []byte
	publicURL, query  string
}

func loadVector(t *testing.T) vector {
	t.Helper()
	var v vector
	if err := json.Unmarshal(callrectest.Fixture(t, "signatures/event-streams-webhook.json"), &v); err != nil {
		t.Fatal(err)
	}
	v.body = callrectest.Fixture(t, v.RawBodyFile)
	var ok bool
	v.publicURL, v.query, ok = strings.Cut(v.RequestURL, "?")
	if !ok {
		t.Fatalf("vector URL %q has no query", v.RequestURL)
	}
	return v
}

// recorder is an eventadapter.Handler that records what it got and
// answers with err (or waits for ctx when block is set).
type recorder struct {
	mu     sync.Mutex
	recs   []eventadapter.Record
	ctxErr error
	err    error
	block  bool
}

func (h *recorder) handle(ctx context.Context, recs []eventadapter.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, recs...)
	block, err := h.block, h.err
	h.mu.Unlock()
	if block {
		<-ctx.Done()
		h.mu.Lock()
		h.ctxErr = ctx.Err()
		h.mu.Unlock()
		return ctx.Err()
	}
	return err
}

func (h *recorder) records() []eventadapter.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]eventadapter.Record(nil), h.recs...)
}

// serve starts the webhook on 127.0.0.1 and returns its base URL.
func serve(t *testing.T, cfg webhook.Config, h eventadapter.Handler) string {
	t.Helper()
	wh, err := webhook.New(cfg, h, callrectest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(wh)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// send makes a request and returns the status and the body.
func send(t *testing.T, method, url string, body io.Reader, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(callrectest.Context(t), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func sigHeader(sig string) http.Header {
	h := http.Header{}
	if sig != "" {
		h.Set(twilio.SignatureHeader, sig)
	}
	return h
}

// signed returns the query and signature Twilio would send for body.
func signed(v vector, body []byte) (query, sig string) {
	sum := sha256.Sum256(body)
	query = "bodySHA256=" + hex.EncodeToString(sum[:])
	return query, twilio.Sign(v.AuthToken, v.publicURL+"?"+query, nil)
}

func TestSignedHelperMatchesVector(t *testing.T) {
	v := loadVector(t)
	query, sig := signed(v, v.body)
	if v.publicURL+"?"+query != v.RequestURL || sig != v.ExpectedSignature {
		t.Fatalf("signed = %q, %q; want the vector's %q, %q", query, sig, v.RequestURL, v.ExpectedSignature)
	}
}

func TestHandler_Requests(t *testing.T) {
	v := loadVector(t)
	path := strings.TrimPrefix(v.publicURL, "https://recorder.example.com")
	notJSONQuery, notJSONSig := signed(v, []byte("hello"))
	emptyQuery, emptySig := signed(v, nil)
	tampered := bytes.Replace(v.body, []byte("alice"), []byte("mallory"), 1)
	tests := []struct {
		name       string
		method     string
		query      string
		body       []byte
		sig        string
		wantStatus int
		wantBody   string // a substring
		wantCalls  int
	}{
		{"valid", "POST", v.query, v.body, v.ExpectedSignature, 200, `"accepted": 2`, 1},
		{"wrong signature", "POST", v.query, v.body, "Xx9f3ROqOEEgDbkyK5lSNY49ZUB=", 403, "invalid X-Twilio-Signature", 0},
		{"missing signature", "POST", v.query, v.body, "", 403, "missing X-Twilio-Signature", 0},
		{"tampered body", "POST", v.query, tampered, v.ExpectedSignature, 403, "invalid X-Twilio-Signature", 0},
		{"missing bodySHA256", "POST", "", v.body, twilio.Sign(v.AuthToken, v.publicURL, nil), 403, "missing bodySHA256", 0},
		{"other query", "POST", "x=1", v.body, twilio.Sign(v.AuthToken, v.publicURL+"?x=1", nil), 403, "missing bodySHA256", 0},
		{"signed for another body", "POST", notJSONQuery, v.body, notJSONSig, 403, "invalid", 0},
		{"not JSON", "POST", notJSONQuery, []byte("hello"), notJSONSig, 400, "not a JSON array or object", 0},
		{"empty POST", "POST", emptyQuery, nil, emptySig, 400, "not a JSON array or object", 0},
		{"GET without body", "GET", "", nil, twilio.Sign(v.AuthToken, v.publicURL, nil), 200, `"accepted": 0`, 0},
		{"GET unsigned", "GET", "", nil, "", 403, "missing X-Twilio-Signature", 0},
		{"PUT", "PUT", v.query, v.body, v.ExpectedSignature, 405, "method not allowed", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &recorder{}
			base := serve(t, webhook.Config{PublicURL: v.publicURL, AuthToken: v.AuthToken}, h.handle)
			url := base + path
			if tt.query != "" {
				url += "?" + tt.query
			}
			status, body := send(t, tt.method, url, bytes.NewReader(tt.body), sigHeader(tt.sig))
			if status != tt.wantStatus || !strings.Contains(body, tt.wantBody) {
				t.Errorf("got %d %s, want %d with %q", status, body, tt.wantStatus, tt.wantBody)
			}
			recs := h.records()
			if len(recs) != tt.wantCalls {
				t.Fatalf("handler got %d records, want %d", len(recs), tt.wantCalls)
			}
			if tt.wantCalls > 0 {
				if !bytes.Equal(recs[0].Data, v.body) || recs[0].Origin != "webhook" || recs[0].Arrived.IsZero() {
					t.Errorf("record = %q from %q at %v; want the request body from webhook", recs[0].Data, recs[0].Origin, recs[0].Arrived)
				}
			}
		})
	}
}

func TestHandler_Oversize(t *testing.T) {
	v := loadVector(t)
	for _, tt := range []struct {
		name string
		body io.Reader
	}{
		{"content length", bytes.NewReader(v.body)},
		{"chunked", io.MultiReader(bytes.NewReader(v.body))}, // no length known
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := &recorder{}
			base := serve(t, webhook.Config{PublicURL: v.publicURL, AuthToken: v.AuthToken, MaxBody: 1000}, h.handle)
			status, body := send(t, "POST", base+"/twilio/events?"+v.query, tt.body, sigHeader(v.ExpectedSignature))
			if status != http.StatusRequestEntityTooLarge {
				t.Errorf("got %d %s, want 413", status, body)
			}
			if n := len(h.records()); n != 0 {
				t.Errorf("handler got %d records", n)
			}
		})
	}
}

func TestHandler_HandlerError(t *testing.T) {
	v := loadVector(t)
	h := &recorder{err: errors.New("tracker down")}
	base := serve(t, webhook.Config{PublicURL: v.publicURL, AuthToken: v.AuthToken}, h.handle)
	status, body := send(t, "POST", base+"/twilio/events?"+v.query, bytes.NewReader(v.body), sigHeader(v.ExpectedSignature))
	if status != http.StatusServiceUnavailable || strings.Contains(body, "tracker down") {
		t.Errorf("got %d %s, want 503 without internal details", status, body)
	}
}

func TestHandler_Timeout(t *testing.T) {
	v := loadVector(t)
	h := &recorder{block: true}
	const timeout = 50 * time.Millisecond
	base := serve(t, webhook.Config{PublicURL: v.publicURL, AuthToken: v.AuthToken, Timeout: timeout}, h.handle)
	start := time.Now()
	status, body := send(t, "POST", base+"/twilio/events?"+v.query, bytes.NewReader(v.body), sigHeader(v.ExpectedSignature))
	if status != http.StatusServiceUnavailable {
		t.Errorf("got %d %s, want 503", status, body)
	}
	h.mu.Lock()
	ctxErr := h.ctxErr
	h.mu.Unlock()
	if !errors.Is(ctxErr, context.DeadlineExceeded) {
		t.Errorf("handler ctx error = %v, want %v", ctxErr, context.DeadlineExceeded)
	}
	if d := time.Since(start); d > timeout+3*time.Second {
		t.Errorf("answered after %v with a %v timeout", d, timeout)
	}
}

func TestHandler_BasicAuth(t *testing.T) {
	v := loadVector(t)
	h := &recorder{}
	base := serve(t, webhook.Config{PublicURL: v.publicURL, AuthToken: v.AuthToken, User: "twilio", Password: "s3cret"}, h.handle)
	url := base + "/twilio/events?" + v.query
	for _, tt := range []struct {
		name, user, pass string
		want             int
	}{
		{"none", "", "", 401},
		{"wrong password", "twilio", "guess", 401},
		{"wrong user", "admin", "s3cret", 401},
		{"right", "twilio", "s3cret", 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hdr := sigHeader(v.ExpectedSignature)
			if tt.user != "" {
				req, _ := http.NewRequest("POST", url, nil)
				req.SetBasicAuth(tt.user, tt.pass)
				hdr.Set("Authorization", req.Header.Get("Authorization"))
			}
			if status, body := send(t, "POST", url, bytes.NewReader(v.body), hdr); status != tt.want {
				t.Errorf("got %d %s, want %d", status, body, tt.want)
			}
		})
	}
}

func TestHandler_SkipSignature(t *testing.T) {
	v := loadVector(t)
	h := &recorder{}
	base := serve(t, webhook.Config{SkipSignature: true}, h.handle)
	status, body := send(t, "POST", base+"/anything", bytes.NewReader(v.body), nil)
	if status != http.StatusOK || len(h.records()) != 1 {
		t.Errorf("got %d %s and %d records, want 200 and 1", status, body, len(h.records()))
	}
}

func TestNew_Config(t *testing.T) {
	h := (&recorder{}).handle
	tests := []struct {
		name    string
		cfg     webhook.Config
		wantErr bool
	}{
		{"ok", webhook.Config{PublicURL: "https://r.example.com/events", AuthToken: "t"}, false},
		{"no auth token", webhook.Config{PublicURL: "https://r.example.com/events"}, true},
		{"no auth token, skip signature", webhook.Config{SkipSignature: true}, false},
		{"no public URL", webhook.Config{AuthToken: "t"}, true},
		{"relative public URL", webhook.Config{PublicURL: "/events", AuthToken: "t"}, true},
		{"public URL with query", webhook.Config{PublicURL: "https://r.example.com/events?bodySHA256=x", AuthToken: "t"}, true},
		{"public URL with user", webhook.Config{PublicURL: "https://u:p@r.example.com/events", AuthToken: "t"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := webhook.New(tt.cfg, h, nil)
			if (err != nil) != tt.wantErr {
				t.Errorf("New error = %v, want error %v", err, tt.wantErr)
			}
		})
	}
	if _, err := webhook.New(webhook.Config{SkipSignature: true}, nil, nil); err == nil {
		t.Error("New accepted a nil handler")
	}
}

// sink records the events the Adapter hands it.
type sink struct {
	mu  sync.Mutex
	ids []string
}

func (s *sink) HandleEvent(_ context.Context, ev callrec.CTIEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids = append(s.ids, ev.ID)
	return nil
}

// TestHandler_Adapter runs the signed vector through the real Adapter, twice
// (Twilio retries): the events reach the sink once.
func TestHandler_Adapter(t *testing.T) {
	v := loadVector(t)
	s := &sink{}
	a := eventadapter.New(s, eventadapter.NewMemoryDeduper(10), callrectest.Logger(t), nil)
	base := serve(t, webhook.Config{PublicURL: v.publicURL, AuthToken: v.AuthToken}, a.Handle)
	for range 2 {
		if status, body := send(t, "POST", base+"/twilio/events?"+v.query, bytes.NewReader(v.body), sigHeader(v.ExpectedSignature)); status != 200 {
			t.Fatalf("got %d %s, want 200", status, body)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	want := []string{"EZb231169d792bdd9a88d6d84323a1eb05", "EZ5707822729a621a69762ce428e6707c6"}
	if diff := cmp.Diff(s.ids, want); diff != "" {
		t.Errorf("sink got (-got +want):\n%s", diff)
	}
}
