package twilio

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"time"

	twilio "github.com/twilio/twilio-go"
	"github.com/twilio/twilio-go/client"
	api "github.com/twilio/twilio-go/rest/api/v2010"
)

// RESTConfig configures the Twilio REST client.
type RESTConfig struct {
	AccountSID string
	AuthToken  string
	// BaseURL points the client at another server (Prism, the simulator, a
	// test fake). twilio-go has no base-URL option, so every request's
	// scheme and host are rewritten by the transport; path, query, body and
	// credentials are kept.
	BaseURL string
	Timeout time.Duration // per request; default 10 s
}

// REST starts and stops Media Streams and looks up conference participants
// through twilio-go.
type REST struct {
	c       *twilio.RestClient
	account string
}

// NewREST returns a REST client for the account.
func NewREST(cfg RESTConfig) (*REST, error) {
	if cfg.AccountSID == "" || cfg.AuthToken == "" {
		return nil, errors.New("twilio: account SID and auth token are required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	var base http.RoundTripper = http.DefaultTransport
	if cfg.BaseURL != "" {
		u, err := url.Parse(cfg.BaseURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("twilio: base URL %q: want scheme://host[:port]", cfg.BaseURL)
		}
		base = rewrite{target: u, base: base}
	}
	cl := &client.Client{Credentials: client.NewCredentials(cfg.AccountSID, cfg.AuthToken),
		HTTPClient: &http.Client{Transport: base, Timeout: cfg.Timeout}}
	cl.SetAccountSid(cfg.AccountSID) // with a custom Client it is not derived from the username
	return &REST{c: twilio.NewRestClientWithParams(twilio.ClientParams{Client: cl}), account: cfg.AccountSID}, nil
}

type rewrite struct {
	target *url.URL
	base   http.RoundTripper
}

func (t rewrite) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host, r.Host = t.target.Scheme, t.target.Host, t.target.Host
	return t.base.RoundTrip(r)
}

// Param is one custom parameter of a stream (start.customParameters).
type Param struct{ Name, Value string }

// StartStream describes a Media Stream to start on a call.
type StartStream struct {
	CallSID        string
	URL            string // the media tier's wss:// URL, without a query string
	Name           string // unique per call; stops the stream by name
	Track          string // inbound_track, outbound_track or both_tracks
	StatusCallback string
	Params         []Param // at most 99
}

// Stream is Twilio's answer about a stream.
type Stream struct {
	SID, CallSID, Name, Status string
}

// APIError is an error answer from Twilio (or a server speaking its API).
type APIError struct {
	Status  int // HTTP status
	Code    int // Twilio error code (20404, 20429, 21220…), 0 if none
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("twilio: HTTP %d code %d: %s", e.Status, e.Code, e.Message)
}

// Temporary reports whether retrying may help (throttling, server errors).
func (e *APIError) Temporary() bool { return e.Status == 429 || e.Status >= 500 }

// NotFound reports a call or stream that does not exist (any more).
func (e *APIError) NotFound() bool { return e.Status == 404 || e.Code == 20404 }

// CallEnded reports a call no longer in a state to stream (code 21220).
func (e *APIError) CallEnded() bool { return e.Code == 21220 }

func mapErr(op string, err error) error {
	var te *client.TwilioRestError
	if errors.As(err, &te) {
		return fmt.Errorf("%s: %w", op, &APIError{Status: te.Status, Code: te.Code, Message: te.Message})
	}
	return fmt.Errorf("%s: %w", op, err)
}

// CreateStream starts a unidirectional Media Stream (Start Stream API).
// twilio-go takes no context: the client's timeout bounds the request, and
// ctx is only checked before it is sent.
func (r *REST) CreateStream(ctx context.Context, s StartStream) (*Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := &api.CreateStreamParams{}
	p.SetUrl(s.URL)
	if s.Name != "" {
		p.SetName(s.Name)
	}
	if s.Track != "" {
		p.SetTrack(s.Track)
	}
	if s.StatusCallback != "" {
		p.SetStatusCallback(s.StatusCallback)
		p.SetStatusCallbackMethod("POST")
	}
	if err := setParams(p, s.Params); err != nil {
		return nil, err
	}
	out, err := r.c.Api.CreateStream(s.CallSID, p)
	if err != nil {
		return nil, mapErr("create stream on "+s.CallSID, err)
	}
	return stream(out), nil
}

// setParams calls SetParameter<N>Name/Value for each parameter: twilio-go
// has 99 numbered setters and no list form.
func setParams(p *api.CreateStreamParams, params []Param) error {
	if len(params) > 99 {
		return fmt.Errorf("twilio: %d stream parameters, at most 99", len(params))
	}
	v := reflect.ValueOf(p)
	for i, prm := range params {
		for _, set := range []struct{ method, val string }{{"Name", prm.Name}, {"Value", prm.Value}} {
			m := v.MethodByName(fmt.Sprintf("SetParameter%d%s", i+1, set.method))
			if !m.IsValid() {
				return fmt.Errorf("twilio-go lacks SetParameter%d%s", i+1, set.method)
			}
			m.Call([]reflect.Value{reflect.ValueOf(set.val)})
		}
	}
	return nil
}

// StopStream stops a stream by SID or name (Update Stream, Status=stopped).
// A stream or call that is gone is reported as an *APIError with NotFound.
func (r *REST) StopStream(ctx context.Context, callSID, sidOrName string) (*Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out, err := r.c.Api.UpdateStream(callSID, sidOrName, (&api.UpdateStreamParams{}).SetStatus("stopped"))
	if err != nil {
		return nil, mapErr("stop stream "+sidOrName+" on "+callSID, err)
	}
	return stream(out), nil
}

// Participant is one call leg in a conference.
type Participant struct {
	CallSID, Label, Status string
	Hold, Muted            bool
}

// Participants lists a conference's participants (all pages).
func (r *REST) Participants(ctx context.Context, conferenceSID string) ([]Participant, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ps, err := r.c.Api.ListParticipant(conferenceSID, (&api.ListParticipantParams{}).SetPageSize(100))
	if err != nil {
		return nil, mapErr("list participants of "+conferenceSID, err)
	}
	out := make([]Participant, 0, len(ps))
	for _, p := range ps {
		out = append(out, Participant{CallSID: deref(p.CallSid), Label: deref(p.Label), Status: deref(p.Status),
			Hold: p.Hold != nil && *p.Hold, Muted: p.Muted != nil && *p.Muted})
	}
	return out, nil
}

// CustomerLeg finds the customer's call leg in a Flex conference: the
// participant labelled "customer", else the one connected participant that
// is not an agent leg (TWILIO.md 6.1).
func CustomerLeg(ps []Participant, agentLegs ...string) (string, bool) {
	for _, p := range ps {
		if p.Label == "customer" {
			return p.CallSID, true
		}
	}
	var found string
	for _, p := range ps {
		if p.Status != "connected" || contains(agentLegs, p.CallSID) || p.Label == "worker" {
			continue
		}
		if found != "" {
			return "", false // ambiguous: more than one candidate
		}
		found = p.CallSID
	}
	return found, found != ""
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func stream(s *api.ApiV2010Stream) *Stream {
	if s == nil {
		return &Stream{}
	}
	return &Stream{SID: deref(s.Sid), CallSID: deref(s.CallSid), Name: deref(s.Name), Status: deref(s.Status)}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
