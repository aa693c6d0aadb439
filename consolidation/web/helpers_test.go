package web_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"callrec"
	"callrec/consolidation/audit"
	"callrec/consolidation/join"
	"callrec/consolidation/store"
	"callrec/consolidation/users"
	"callrec/consolidation/web"
	"callrec/internal/callrectest"
	"callrec/recorder/wav"
)

// testPassword is every fixture user's password.
const testPassword = "correct horse battery staple"

// The fixture users, created once (argon2id with the default parameters
// costs ~150 ms per hash under -race) and copied into each test's store.
var fixtureUsers = []users.User{
	{Name: "admin", Role: users.Admin},
	{Name: "comp", Role: users.Compliance},
	{Name: "east", Role: users.Supervisor, Teams: []string{"east"}},
	{Name: "west", Role: users.Supervisor, Teams: []string{"west"}},
	{Name: "aud", Role: users.Auditor},
	{Name: "noteam", Role: users.Supervisor},
}

// usersTemplate is the path of a closed users.db holding fixtureUsers.
var usersTemplate string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "callrec-web-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		usersTemplate = filepath.Join(dir, "users.db")
		if err := makeUsersTemplate(usersTemplate); err != nil {
			fmt.Fprintln(os.Stderr, "users template:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

func makeUsersTemplate(path string) error {
	us, err := users.Open(path)
	if err != nil {
		return err
	}
	for _, u := range fixtureUsers {
		if err := us.Add(context.Background(), u, testPassword); err != nil {
			us.Close()
			return fmt.Errorf("add %s: %w", u.Name, err)
		}
	}
	return us.Close()
}

// t0 is when the fixture calls start.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// clock is a settable clock for sessions and audit times.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// memRecordings is an in-memory web.Recordings serving real WAV bytes. It
// counts open audio handles so tests can check every one is closed.
type memRecordings struct {
	mu    sync.Mutex
	recs  map[callrec.INUM]memRec
	open  atomic.Int64
	opens atomic.Int64
}

type memRec struct {
	rec  callrec.Recording
	file []byte
	err  error // returned by Recording and OpenAudio when set
}

var _ web.Recordings = (*memRecordings)(nil)

func newMemRecordings() *memRecordings {
	return &memRecordings{recs: map[callrec.INUM]memRec{}}
}

func (m *memRecordings) put(rec callrec.Recording, file []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs[rec.INUM] = memRec{rec: rec, file: file}
}

// fail makes n unavailable with err.
func (m *memRecordings) fail(n callrec.INUM, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.recs[n]
	r.err = err
	m.recs[n] = r
}

func (m *memRecordings) get(n callrec.INUM) (memRec, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[n]
	switch {
	case !ok:
		return r, callrec.Errorf(callrec.ENOTFOUND, "no recording %s", n)
	case r.err != nil:
		return r, r.err
	}
	return r, nil
}

func (m *memRecordings) Recording(_ context.Context, n callrec.INUM) (*callrec.Recording, error) {
	r, err := m.get(n)
	if err != nil {
		return nil, err
	}
	rec := r.rec
	return &rec, nil
}

func (m *memRecordings) OpenAudio(_ context.Context, n callrec.INUM) (*web.Audio, error) {
	r, err := m.get(n)
	if err != nil {
		return nil, err
	}
	m.open.Add(1)
	m.opens.Add(1)
	rec := r.rec
	return &web.Audio{ReadSeekCloser: &memAudio{Reader: bytes.NewReader(r.file), m: m}, Size: int64(len(r.file)), Recording: &rec}, nil
}

type memAudio struct {
	*bytes.Reader
	m      *memRecordings
	closed atomic.Bool
}

func (a *memAudio) Close() error {
	if a.closed.Swap(true) {
		return fmt.Errorf("audio closed twice")
	}
	a.m.open.Add(-1)
	return nil
}

// makeWAV returns a stereo μ-law WAV of frames sample frames whose samples
// vary with seed, never all the same.
func makeWAV(frames int, seed byte) []byte {
	b := wav.AppendHeader(nil, 2, 8000, int64(2*frames))
	for i := range 2 * frames {
		b = append(b, byte(i*31+i/7)+seed*17)
	}
	return b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func mustINUM(t testing.TB, counter uint64) callrec.INUM {
	t.Helper()
	n, err := callrec.NewINUM(7, counter)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// finishedRecording is the index entry of a complete recording of file.
func finishedRecording(n callrec.INUM, start time.Time, file []byte) callrec.Recording {
	data := int64(len(file) - wav.HeaderSize)
	dur := time.Duration(data/2) * time.Second / 8000
	return callrec.Recording{
		INUM: n, Node: n.Node(), State: callrec.StateComplete, EndReason: callrec.EndStop,
		Stream:    callrec.StreamInfo{StreamSID: "MZ" + string(n), CallSID: "CA" + string(n), CustomParameters: map[string]string{"agent": "alice"}},
		StartedAt: start, StoppedAt: start.Add(dur), UpdatedAt: start.Add(dur),
		Audio: callrec.AudioInfo{Ref: string(n) + ".wav", Format: "wav/mulaw-stereo", SampleRate: 8000, Channels: 2,
			DataBytes: data, DurationMS: dur.Milliseconds(), SHA256: sha256Hex(file)},
	}
}

// testEnv is a web server over real stores in a temp dir, with in-memory
// recordings and a settable clock.
type testEnv struct {
	srv    *httptest.Server
	store  *store.Store
	users  *users.Store
	audit  *audit.Log
	joiner *join.Joiner
	recs   *memRecordings
	clock  *clock
	// calls are the seeded interactions by name (see seed).
	calls map[string]store.Interaction
	files map[callrec.INUM][]byte
}

type envOption func(*web.Config)

func newTestEnv(t *testing.T, opts ...envOption) *testEnv { return newEnv(t, false, opts...) }

func newEnv(t *testing.T, tls bool, opts ...envOption) *testEnv {
	t.Helper()
	dir := t.TempDir()
	e := &testEnv{recs: newMemRecordings(), clock: &clock{t: time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)},
		calls: map[string]store.Interaction{}, files: map[callrec.INUM][]byte{}}
	var err error
	if e.store, err = store.Open(filepath.Join(dir, "store.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.store.Close() })
	if e.joiner, err = join.New(e.store, filepath.Join(dir, "join.db"), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.joiner.Close() })
	tmpl, err := os.ReadFile(usersTemplate)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.db"), tmpl, 0o600); err != nil {
		t.Fatal(err)
	}
	if e.users, err = users.Open(filepath.Join(dir, "users.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.users.Close() })
	if e.audit, err = audit.Open(filepath.Join(dir, "audit.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.audit.Close() })

	cfg := web.Config{Store: e.store, Joined: e.joiner, Users: e.users, Audit: e.audit, Recordings: e.recs,
		Log: callrectest.Logger(t), Now: e.clock.Now}
	for _, o := range opts {
		o(&cfg)
	}
	h := web.New(cfg).Handler()
	if tls {
		e.srv = httptest.NewTLSServer(h)
	} else {
		e.srv = httptest.NewServer(h)
	}
	t.Cleanup(e.srv.Close)
	t.Cleanup(func() {
		// Runs before the server closes: every audio handle opened must
		// have been closed by its handler.
		callrectest.Eventually(t, 5*time.Second, "every opened audio is closed", func() bool { return e.recs.open.Load() == 0 })
	})
	return e
}

// call describes a seeded interaction.
type call struct {
	name      string
	teams     []string
	agents    []string
	start     time.Duration // after t0
	dur       time.Duration
	direction string
	queue     string
	from      string
	tags      []string
	frames    int // audio sample frames; 0: no recording
}

// seedCalls are the standard fixture calls: supervisor east sees east1,
// east2 and mixed; west sees west1 and mixed.
var seedCalls = []call{
	{name: "east1", teams: []string{"east"}, agents: []string{"alice"}, start: 0, dur: 120 * time.Second,
		direction: "inbound", queue: "sales", from: "+15550001111", tags: []string{"vip"}, frames: 4000},
	{name: "east2", teams: []string{"east"}, agents: []string{"carol"}, start: time.Hour, dur: 30 * time.Second,
		direction: "outbound", queue: "support", from: "+15550002222", frames: 3000},
	{name: "west1", teams: []string{"west"}, agents: []string{"bob"}, start: 2 * time.Hour, dur: 600 * time.Second,
		direction: "inbound", queue: "sales", from: "+15550003333", frames: 5000},
	{name: "mixed", teams: []string{"west", "east"}, agents: []string{"bob", "alice"}, start: 3 * time.Hour, dur: 45 * time.Second,
		direction: "inbound", queue: "support", from: "+15550004444", tags: []string{"vip", "escalated"}, frames: 2000},
}

// seed stores the seed calls with their recordings.
func (e *testEnv) seed(t *testing.T) {
	t.Helper()
	for i, c := range seedCalls {
		e.addCall(t, uint64(i+1), c)
	}
}

// addCall stores c as interaction "WT"+name with recording INUM counter n.
func (e *testEnv) addCall(t *testing.T, n uint64, c call) store.Interaction {
	t.Helper()
	start := t0.Add(c.start)
	in := store.Interaction{ID: "WT" + c.name, TaskSID: "WT" + c.name, CallSID: "CA" + c.name, Direction: c.direction,
		From: c.from, To: "+15551230000", Queue: c.queue, Agents: c.agents, Teams: c.teams, Start: start,
		End: start.Add(c.dur), Status: store.StatusComplete, Tags: c.tags, Updated: start.Add(c.dur)}
	if c.frames > 0 {
		inum := mustINUM(t, n)
		file := makeWAV(c.frames, byte(n))
		e.recs.put(finishedRecording(inum, start, file), file)
		e.files[inum] = file
		in.INUMs = []callrec.INUM{inum}
	}
	if err := e.store.Put(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	got, err := e.store.Get(context.Background(), in.ID)
	if err != nil {
		t.Fatal(err)
	}
	e.calls[c.name] = got
	return got
}

// inumOf returns the recording of seeded call name.
func (e *testEnv) inumOf(t *testing.T, name string) callrec.INUM {
	t.Helper()
	c, ok := e.calls[name]
	if !ok || len(c.INUMs) == 0 {
		t.Fatalf("no seeded call %q with a recording", name)
	}
	return c.INUMs[0]
}

// client is one API user: a browser session (cookie + CSRF token) or an
// API token.
type client struct {
	e      *testEnv
	name   string
	cookie *http.Cookie
	csrf   string
	token  string
}

// result is an API answer, body read.
type result struct {
	Status int
	Header http.Header
	Body   []byte
	resp   *http.Response
}

func (r *result) String() string {
	b := r.Body
	if len(b) > 300 {
		b = b[:300]
	}
	return fmt.Sprintf("%d %s", r.Status, b)
}

// decode unmarshals the body into v.
func (r *result) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %q: %v", r.Body, err)
	}
}

// errorCode is the JSON error code of the body ("" if none).
func (r *result) errorCode() string {
	var b struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &b)
	return b.Error.Code
}

// want fails the test unless the status is status.
func (r *result) want(t testing.TB, status int) *result {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s %s: got %s, want status %d", r.resp.Request.Method, r.resp.Request.URL.Path, r, status)
	}
	return r
}

// send sends req to the test server.
func (e *testEnv) send(t testing.TB, req *http.Request) *result {
	t.Helper()
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return &result{Status: resp.StatusCode, Header: resp.Header, Body: b, resp: resp}
}

// newRequest builds a request to path; body is nil, []byte, string or a
// value sent as JSON.
func (e *testEnv) newRequest(t testing.TB, method, path string, body any) *http.Request {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// anon is a client without credentials.
func (e *testEnv) anon() *client { return &client{e: e} }

// loginResult posts a login.
func (e *testEnv) loginResult(t testing.TB, name, password string) *result {
	t.Helper()
	return e.send(t, e.newRequest(t, http.MethodPost, "/api/login", map[string]string{"username": name, "password": password}))
}

// login signs name in and returns its session client.
func (e *testEnv) login(t testing.TB, name string) *client {
	t.Helper()
	r := e.loginResult(t, name, testPassword).want(t, http.StatusOK)
	var body struct {
		CSRFToken string `json:"csrf_token"`
	}
	r.decode(t, &body)
	c := &client{e: e, name: name, csrf: body.CSRFToken}
	for _, ck := range r.resp.Cookies() {
		if ck.Name == web.CookieName {
			c.cookie = ck
		}
	}
	if c.cookie == nil || c.csrf == "" {
		t.Fatalf("login %s: cookie %v, csrf %q", name, c.cookie, c.csrf)
	}
	return c
}

// tokenClient creates an API token (cheap: no password hashing).
func (e *testEnv) tokenClient(t testing.TB, name string, role users.Role, teams ...string) *client {
	t.Helper()
	tok, err := e.users.CreateToken(context.Background(), name, role, teams)
	if err != nil {
		t.Fatal(err)
	}
	return &client{e: e, name: name, token: tok}
}

// request builds an authenticated request (CSRF header added on unsafe
// methods of a session).
func (c *client) request(t testing.TB, method, path string, body any) *http.Request {
	t.Helper()
	req := c.e.newRequest(t, method, path, body)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.cookie != nil {
		req.AddCookie(&http.Cookie{Name: c.cookie.Name, Value: c.cookie.Value})
		if method != http.MethodGet && method != http.MethodHead {
			req.Header.Set(web.CSRFHeader, c.csrf)
		}
	}
	return req
}

func (c *client) do(t testing.TB, method, path string, body any, hdr ...string) *result {
	t.Helper()
	req := c.request(t, method, path, body)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return c.e.send(t, req)
}

func (c *client) get(t testing.TB, path string, hdr ...string) *result {
	t.Helper()
	return c.do(t, http.MethodGet, path, nil, hdr...)
}

// auditMark returns the sequence number of the last audit entry.
func (e *testEnv) auditMark(t testing.TB) uint64 {
	t.Helper()
	res, err := e.audit.Verify(context.Background())
	if err != nil {
		t.Fatalf("audit verify: %v", err)
	}
	return res.Entries
}

// auditSince returns the entries after mark, oldest first.
func (e *testEnv) auditSince(t testing.TB, mark uint64) []audit.Entry {
	t.Helper()
	items, _, err := e.audit.Find(context.Background(), audit.Filter{Limit: audit.MaxLimit})
	if err != nil {
		t.Fatalf("audit find: %v", err)
	}
	var out []audit.Entry
	for _, it := range items {
		if it.Seq > mark {
			out = append(out, it)
		}
	}
	slices.Reverse(out)
	return out
}

// auditLine is the part of an entry the tests compare.
type auditLine struct {
	Type    audit.EventType
	Actor   string
	Role    string
	Target  string
	Reason  string
	Details map[string]string
}

func lines(es []audit.Entry) []auditLine {
	var out []auditLine // nil when es is empty
	for _, e := range es {
		out = append(out, auditLine{Type: e.Type, Actor: e.Actor, Role: e.Role, Target: e.Target, Reason: e.Reason, Details: e.Details})
	}
	return out
}

// ofType keeps the entries of type typ.
func ofType(es []audit.Entry, typ audit.EventType) []audit.Entry {
	var out []audit.Entry
	for _, e := range es {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// searchIDs searches as c and returns the ids in order and the total.
func searchIDs(t *testing.T, c *client, query string) ([]string, int) {
	t.Helper()
	var body struct {
		Items []store.Interaction `json:"items"`
		Total int                 `json:"total"`
	}
	c.get(t, "/api/interactions"+query).want(t, http.StatusOK).decode(t, &body)
	ids := []string{}
	for _, it := range body.Items {
		ids = append(ids, it.ID)
	}
	return ids, body.Total
}
