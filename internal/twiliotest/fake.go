// Package twiliotest is a stateful stand-in for the parts of Twilio's REST
// API callrec uses: Start and Stop Stream, and conference participants. It
// keeps calls, conferences and streams, answers with Twilio's JSON shapes and
// error bodies, checks Basic auth, enforces the per-call fork limit (see
// MaxTracks), and
// can be told to fail the next requests of an operation (404, 429, 5xx,
// 21220), which Prism, answering fixed examples, cannot do. The simulator
// serves it as its REST side; tests use it for the Stream Manager's error
// paths.
package twiliotest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Op names an operation for failure injection.
type Op string

// Operations.
const (
	OpCreateStream Op = "create_stream"
	OpStopStream   Op = "stop_stream"
	OpParticipants Op = "participants"
)

// Participant is a conference participant.
type Participant struct {
	CallSID, Label, Status string
	Hold                   bool
}

// Stream is a stream the fake started.
type Stream struct {
	SID, CallSID, Name, URL, Track, StatusCallback string
	Params                                         map[string]string
	Status                                         string // in-progress / stopped
	Created, Stopped                               time.Time
}

// Request is one request the fake received.
type Request struct {
	Op     Op
	Method string
	Path   string
	Form   map[string]string
	Status int // what the fake answered
}

type failure struct{ status, code int }

// Fake is the stateful Twilio API. Create it with New; it is an
// http.Handler.
type Fake struct {
	account, token string

	mu       sync.Mutex
	calls    map[string]string // call SID → status
	confs    map[string][]Participant
	streams  []*Stream
	fail     map[Op][]failure
	requests []Request
	// OnStart, when set, is called (without the lock) after a stream is
	// created: the simulator opens the Media Stream there.
	OnStart func(Stream)
	// OnStop is called after a stream is stopped through the API.
	OnStop func(Stream)
}

// New returns a fake for one account and auth token.
func New(account, token string) *Fake {
	return &Fake{account: account, token: token, calls: map[string]string{}, confs: map[string][]Participant{}, fail: map[Op][]failure{}}
}

// AddCall makes a call exist, in progress.
func (f *Fake) AddCall(sid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[sid] = "in-progress"
}

// EndCall completes a call: its streams stop, and new ones are refused with 21220.
func (f *Fake) EndCall(sid string) {
	f.mu.Lock()
	f.calls[sid] = "completed"
	var stopped []Stream
	for _, s := range f.streams {
		if s.CallSID == sid && s.Status == "in-progress" {
			s.Status, s.Stopped = "stopped", time.Now()
			stopped = append(stopped, *s)
		}
	}
	onStop := f.OnStop
	f.mu.Unlock()
	if onStop != nil {
		for _, s := range stopped {
			onStop(s)
		}
	}
}

// StreamEnded marks a stream as ended on its own, as Twilio does when the
// WebSocket fails (stream-error) or closes: it no longer counts against the
// call's tracks, and stopping it answers 404. OnStop is not called (nobody
// stopped it). It reports whether the stream was in progress.
func (f *Fake) StreamEnded(sid string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.streams {
		if s.SID == sid && s.Status == "in-progress" {
			s.Status, s.Stopped = "stopped", time.Now()
			return true
		}
	}
	return false
}

// AddConference sets a conference's participants.
func (f *Fake) AddConference(sid string, ps ...Participant) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.confs[sid] = append([]Participant(nil), ps...)
}

// SetHold puts a conference participant on hold or takes it off.
func (f *Fake) SetHold(confSID, callSID string, hold bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.confs[confSID] {
		if f.confs[confSID][i].CallSID == callSID {
			f.confs[confSID][i].Hold = hold
		}
	}
}

// Fail makes the next n requests of op fail with the HTTP status and Twilio
// error code.
func (f *Fake) Fail(op Op, status, code, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.fail[op] = append(f.fail[op], failure{status, code})
	}
}

// Streams returns every stream started, in order.
func (f *Fake) Streams() []Stream {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Stream, len(f.streams))
	for i, s := range f.streams {
		out[i] = *s
	}
	return out
}

// Requests returns every request received, in order.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.requests...)
}

// APIError is Twilio's error body.
type APIError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// ServeHTTP routes Twilio API paths.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || user != f.account || pass != f.token {
		writeErr(w, r, 401, 20003, "Authenticate")
		return
	}
	// /2010-04-01/Accounts/{AC}/Calls/{CA}/Streams.json
	// /2010-04-01/Accounts/{AC}/Calls/{CA}/Streams/{SidOrName}.json
	// /2010-04-01/Accounts/{AC}/Conferences/{CF}/Participants.json
	parts := strings.Split(strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/2010-04-01/Accounts/"), ".json"), "/")
	if len(parts) < 4 || parts[0] != f.account {
		writeErr(w, r, 404, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	_ = r.ParseForm()
	form := map[string]string{}
	for k, v := range r.PostForm {
		form[k] = v[0]
	}
	switch {
	case r.Method == http.MethodPost && parts[1] == "Calls" && len(parts) == 4 && parts[3] == "Streams":
		f.serve(w, r, OpCreateStream, form, func() (int, any) { return f.create(parts[2], form) })
	case r.Method == http.MethodPost && parts[1] == "Calls" && len(parts) == 5 && parts[3] == "Streams":
		f.serve(w, r, OpStopStream, form, func() (int, any) { return f.stop(parts[2], parts[4], form) })
	case r.Method == http.MethodGet && parts[1] == "Conferences" && len(parts) == 4 && parts[3] == "Participants":
		f.serve(w, r, OpParticipants, form, func() (int, any) { return f.participants(parts[2], r) })
	default:
		writeErr(w, r, 404, 20404, "The requested resource "+r.URL.Path+" was not found")
	}
}

// serve records the request, applies an injected failure or runs op.
func (f *Fake) serve(w http.ResponseWriter, r *http.Request, op Op, form map[string]string, do func() (int, any)) {
	f.mu.Lock()
	var status int
	var body any
	if q := f.fail[op]; len(q) > 0 {
		f.fail[op] = q[1:]
		status, body = q[0].status, apiErr(r, q[0].status, q[0].code, "injected failure")
		f.mu.Unlock()
	} else {
		f.mu.Unlock()
		status, body = do()
	}
	f.mu.Lock()
	f.requests = append(f.requests, Request{Op: op, Method: r.Method, Path: r.URL.Path, Form: form, Status: status})
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (f *Fake) create(callSID string, form map[string]string) (int, any) {
	f.mu.Lock()
	status, known := f.calls[callSID]
	switch {
	case !known:
		f.mu.Unlock()
		return 404, notFound(callSID)
	case status != "in-progress":
		f.mu.Unlock()
		return 400, APIError{Code: 21220, Message: "Call is not in-progress. Cannot create stream.", MoreInfo: "https://www.twilio.com/docs/errors/21220", Status: 400}
	case form["Url"] == "":
		f.mu.Unlock()
		return 400, APIError{Code: 21201, Message: "Missing required parameter Url", Status: 400}
	}
	tracks := 0
	for _, s := range f.streams {
		if s.CallSID == callSID && s.Status == "in-progress" {
			if form["Name"] != "" && s.Name == form["Name"] {
				f.mu.Unlock()
				return 400, APIError{Code: 21219, Message: "Stream with this name already exists", Status: 400}
			}
			tracks += trackCost(s.Track)
		}
	}
	if tracks+trackCost(form["Track"]) > MaxTracks {
		f.mu.Unlock()
		return 400, APIError{Code: 21218, Message: "Maximum number of tracks reached for this call", Status: 400}
	}
	s := &Stream{SID: "MZ" + randHex(), CallSID: callSID, Name: form["Name"], URL: form["Url"], Track: form["Track"],
		StatusCallback: form["StatusCallback"], Params: map[string]string{}, Status: "in-progress", Created: time.Now()}
	for i := 1; i <= 99; i++ {
		if n, ok := form[fmt.Sprintf("Parameter%d.Name", i)]; ok {
			s.Params[n] = form[fmt.Sprintf("Parameter%d.Value", i)]
		}
	}
	f.streams = append(f.streams, s)
	cp, onStart := *s, f.OnStart
	f.mu.Unlock()
	if onStart != nil {
		onStart(cp)
	}
	return 200, f.body(&cp)
}

func (f *Fake) stop(callSID, sidOrName string, form map[string]string) (int, any) {
	if form["Status"] != "stopped" {
		return 400, APIError{Code: 20001, Message: "Status must be stopped", Status: 400}
	}
	f.mu.Lock()
	var found *Stream
	for _, s := range f.streams {
		if s.CallSID == callSID && (s.SID == sidOrName || s.Name == sidOrName) && s.Status == "in-progress" {
			found = s
		}
	}
	if found == nil {
		f.mu.Unlock()
		return 404, notFound(sidOrName)
	}
	found.Status, found.Stopped = "stopped", time.Now()
	cp, onStop := *found, f.OnStop
	f.mu.Unlock()
	if onStop != nil {
		onStop(cp)
	}
	return 200, f.body(&cp)
}

func (f *Fake) participants(confSID string, r *http.Request) (int, any) {
	f.mu.Lock()
	ps, ok := f.confs[confSID]
	f.mu.Unlock()
	if !ok {
		return 404, notFound(confSID)
	}
	list := make([]map[string]any, 0, len(ps))
	for _, p := range ps {
		list = append(list, map[string]any{"account_sid": f.account, "call_sid": p.CallSID, "conference_sid": confSID,
			"label": p.Label, "status": p.Status, "hold": p.Hold, "muted": false, "coaching": false})
	}
	uri := r.URL.Path
	return 200, map[string]any{"participants": list, "first_page_uri": uri, "next_page_uri": nil, "previous_page_uri": nil,
		"uri": uri, "page": 0, "page_size": 100, "start": 0, "end": len(list)}
}

func (f *Fake) body(s *Stream) map[string]any {
	var name any
	if s.Name != "" {
		name = s.Name
	}
	return map[string]any{"sid": s.SID, "account_sid": f.account, "call_sid": s.CallSID, "name": name, "status": s.Status,
		"date_updated": time.Now().UTC().Format(time.RFC1123Z),
		"uri":          "/2010-04-01/Accounts/" + f.account + "/Calls/" + s.CallSID + "/Streams/" + s.SID + ".json"}
}

// MaxTracks is Twilio's limit of forked tracks per call: "a maximum of four
// forked streams allowed per call", where a both_tracks stream forks two
// (Twilio's <Siprec> documentation; the budget is shared with other forks).
// So a call holds four live inbound_track or outbound_track streams, or two
// both_tracks streams (dual-stream capture), and the next Start Stream is
// refused with 400, code 21218, until one ends.
const MaxTracks = 4

// trackCost is how many of a call's MaxTracks forks a stream uses.
func trackCost(track string) int {
	if track == "both_tracks" {
		return 2
	}
	return 1
}

func notFound(what string) APIError {
	return APIError{Code: 20404, Message: "The requested resource " + what + " was not found", MoreInfo: "https://www.twilio.com/docs/errors/20404", Status: 404}
}

func apiErr(r *http.Request, status, code int, msg string) APIError {
	return APIError{Code: code, Message: msg + " for " + r.URL.Path, MoreInfo: fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code), Status: status}
}

func writeErr(w http.ResponseWriter, r *http.Request, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(apiErr(r, status, code, msg))
}

func randHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
