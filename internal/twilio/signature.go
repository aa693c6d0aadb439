// Package twilio holds callrec's use of twilio-go; it is the only package
// that imports it. Today: request signature validation (Media Streams
// upgrades, webhooks) and, for the simulator, signing as Twilio does.
package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"sort"

	"github.com/twilio/twilio-go/client"
)

// SignatureHeader is the header Twilio signs requests with.
const SignatureHeader = "X-Twilio-Signature"

// Validator checks X-Twilio-Signature with twilio-go's RequestValidator.
type Validator struct {
	rv client.RequestValidator
}

// NewValidator returns a Validator for the account's auth token.
func NewValidator(authToken string) *Validator {
	return &Validator{rv: client.NewRequestValidator(authToken)}
}

// ValidateUpgrade checks the signature of a Media Streams WebSocket upgrade:
// a GET with no parameters signed over the exact wss:// URL Twilio was
// given. publicURL must be that URL, built from configuration, never from
// request headers (we may sit behind a proxy).
func (v *Validator) ValidateUpgrade(publicURL, signature string) bool {
	if signature == "" {
		return false
	}
	return v.rv.Validate(publicURL, map[string]string{}, signature)
}

// ValidateForm checks a signed form POST (status callbacks).
func (v *Validator) ValidateForm(fullURL string, params map[string]string, signature string) bool {
	if signature == "" {
		return false
	}
	return v.rv.Validate(fullURL, params, signature)
}

// ValidateBody checks a signed JSON body (Event Streams webhook sink):
// fullURL carries the bodySHA256 query parameter.
func (v *Validator) ValidateBody(fullURL string, body []byte, signature string) bool {
	if signature == "" {
		return false
	}
	return v.rv.ValidateBody(fullURL, body, signature)
}

// Sign computes the signature Twilio would send for url and params, as the
// simulator needs. It is written from the documented algorithm, not with
// twilio-go, so the tests cross-check two implementations.
func Sign(authToken, url string, params map[string]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(url))
	for _, k := range keys {
		mac.Write([]byte(k))
		mac.Write([]byte(params[k]))
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
