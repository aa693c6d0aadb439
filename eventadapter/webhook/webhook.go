// Package webhook receives Twilio Event Streams through the webhook sink:
// an HTTP endpoint Twilio POSTs JSON arrays of CloudEvents to, signed with
// X-Twilio-Signature. It checks the request and hands the body, as one
// eventadapter.Record, to an eventadapter.Handler (the Adapter).
package webhook

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"callrec"
	"callrec/eventadapter"
	"callrec/internal/httpio"
	"callrec/internal/twilio"
)

// Defaults of Config.
const (
	DefaultMaxBody = 1 << 20         // 1 MiB
	DefaultTimeout = 4 * time.Second // Twilio wants a 2xx within 5 s
)

// Origin is the Record.Origin of webhook requests.
const Origin = "webhook"

// Config configures a Handler.
type Config struct {
	// PublicURL is the exact URL configured as the sink destination,
	// without query (and without user:pass@): Twilio signs it with
	// ?bodySHA256=… appended. It is never rebuilt from request headers.
	PublicURL string
	// AuthToken is the account's auth token, the signature key. Required
	// unless SkipSignature.
	AuthToken string
	// SkipSignature turns signature checks off (local demos only).
	SkipSignature bool
	// User and Password, when either is set, require HTTP Basic auth (put
	// user:pass@ in the sink destination and Twilio sends it).
	User, Password string
	// MaxBody bounds a request body; 0 means DefaultMaxBody.
	MaxBody int64
	// Timeout bounds the Handler call; 0 means DefaultTimeout.
	Timeout time.Duration
}

// Handler is the http.Handler of the webhook sink.
type Handler struct {
	cfg       Config
	h         eventadapter.Handler
	validator *twilio.Validator
	log       *slog.Logger
	now       func() time.Time
}

var _ http.Handler = (*Handler)(nil)

// New returns a Handler that hands verified request bodies to h. It
// refuses a configuration without AuthToken (unless SkipSignature) or
// with a PublicURL that is not an absolute http(s) URL without query.
func New(cfg Config, h eventadapter.Handler, log *slog.Logger) (*Handler, error) {
	if h == nil {
		return nil, errors.New("webhook: no handler")
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	wh := &Handler{cfg: cfg, h: h, log: log.With(callrec.LogKeyComponent, "webhook"), now: time.Now}
	if cfg.SkipSignature {
		return wh, nil
	}
	if cfg.AuthToken == "" {
		return nil, errors.New("webhook: no auth token (set SkipSignature to accept unsigned requests)")
	}
	u, err := url.Parse(cfg.PublicURL)
	switch {
	case err != nil:
		return nil, fmt.Errorf("webhook: public URL: %w", err)
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		return nil, fmt.Errorf("webhook: public URL %q: want an absolute https URL", cfg.PublicURL)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("webhook: public URL %q: want no query or fragment", cfg.PublicURL)
	case u.User != nil:
		return nil, fmt.Errorf("webhook: public URL: want no user:pass@ (use User and Password)")
	}
	wh.validator = twilio.NewValidator(cfg.AuthToken)
	return wh, nil
}

// ServeHTTP checks a sink request and hands its body to the Handler:
// 200 {"accepted":n} once handled; 405 for methods other than POST and
// GET; 401 on failed Basic auth; 403 on a missing or wrong signature;
// 413 for a body over MaxBody; 400 for a body that is not a JSON array or
// object; 503 when the Handler fails or times out (Twilio retries).
func (wh *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, POST")
		wh.refuse(w, r, http.StatusMethodNotAllowed, callrec.EINVALID, "method not allowed")
		return
	}
	if !wh.basicAuthOK(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="callrec"`)
		wh.refuse(w, r, http.StatusUnauthorized, callrec.EFORBIDDEN, "bad or missing basic auth")
		return
	}
	body, err := wh.readBody(w, r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			wh.refuse(w, r, http.StatusRequestEntityTooLarge, callrec.EINVALID,
				fmt.Sprintf("body over %d bytes", wh.cfg.MaxBody))
			return
		}
		wh.refuse(w, r, http.StatusBadRequest, callrec.EINVALID, "cannot read body")
		return
	}
	if msg := wh.checkSignature(r, body); msg != "" {
		wh.refuse(w, r, http.StatusForbidden, callrec.EFORBIDDEN, msg)
		return
	}
	if r.Method == http.MethodGet && len(strings.TrimSpace(string(body))) == 0 {
		httpio.JSON(w, http.StatusOK, accepted{0}) // nothing to deliver
		return
	}
	batch, err := eventadapter.DecodeBatch(body)
	if err != nil {
		wh.refuse(w, r, http.StatusBadRequest, callrec.EINVALID, "body is not a JSON array or object")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), wh.cfg.Timeout)
	defer cancel()
	rec := eventadapter.Record{Data: body, Origin: Origin, Arrived: wh.now().UTC()}
	if err := wh.h(ctx, []eventadapter.Record{rec}); err != nil {
		wh.log.Error("handle webhook events", callrec.LogKeyRemote, r.RemoteAddr, "events", len(batch), callrec.LogKeyErr, err)
		writeError(w, http.StatusServiceUnavailable, callrec.EUNAVAILABLE, "events not handled; retry later")
		return
	}
	httpio.JSON(w, http.StatusOK, accepted{len(batch)})
}

// accepted is the body of a 200 response.
type accepted struct {
	Accepted int `json:"accepted"`
}

// readBody reads at most MaxBody bytes; a longer body is a
// *http.MaxBytesError.
func (wh *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > wh.cfg.MaxBody {
		return nil, &http.MaxBytesError{Limit: wh.cfg.MaxBody}
	}
	return io.ReadAll(http.MaxBytesReader(w, r.Body, wh.cfg.MaxBody))
}

// checkSignature returns why the request's signature is refused, or "".
// Twilio signs PublicURL plus the query it appended (bodySHA256=<hex of
// the body's SHA-256>); ValidateBody checks the URL's HMAC and the hash.
func (wh *Handler) checkSignature(r *http.Request, body []byte) string {
	if wh.cfg.SkipSignature {
		return ""
	}
	sig := r.Header.Get(twilio.SignatureHeader)
	if sig == "" {
		return "missing " + twilio.SignatureHeader + " header"
	}
	// Without bodySHA256, ValidateBody would read a JSON body as a form
	// and sign nothing of it. A GET has no body and may go without.
	hasHash := r.URL.Query().Get("bodySHA256") != ""
	if !hasHash && (r.Method == http.MethodPost || len(body) > 0) {
		return "missing bodySHA256 query parameter"
	}
	fullURL := wh.cfg.PublicURL
	if r.URL.RawQuery != "" {
		fullURL += "?" + r.URL.RawQuery
	}
	if !wh.validator.ValidateBody(fullURL, body, sig) {
		return "invalid " + twilio.SignatureHeader + " (wrong auth token or public URL, or the body was altered)"
	}
	return ""
}

// basicAuthOK checks Basic auth when User or Password is configured.
func (wh *Handler) basicAuthOK(r *http.Request) bool {
	if wh.cfg.User == "" && wh.cfg.Password == "" {
		return true
	}
	user, pass, ok := r.BasicAuth()
	userOK := subtle.ConstantTimeCompare([]byte(user), []byte(wh.cfg.User)) == 1
	passOK := subtle.ConstantTimeCompare([]byte(pass), []byte(wh.cfg.Password)) == 1
	return ok && userOK && passOK
}

// refuse logs a refused request at Warn and answers it.
func (wh *Handler) refuse(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	wh.log.Warn("refuse webhook request", callrec.LogKeyRemote, r.RemoteAddr, "method", r.Method,
		"status", status, callrec.LogKeyReason, msg)
	writeError(w, status, code, msg)
}

// writeError writes the API's JSON error body with an explicit status.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	var body httpio.ErrorBody
	body.Error.Code, body.Error.Message = code, msg
	httpio.JSON(w, status, body)
}
