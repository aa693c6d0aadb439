package twilio_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	"callrec/internal/callrectest"
	"callrec/internal/twilio"
)

type vector struct {
	AuthToken        string            `json:"auth_token"`
	URL              string            `json:"url"`
	RequestURL       string            `json:"request_url"`
	Params           map[string]string `json:"params"`
	RawBodyFile      string            `json:"raw_body_file"`
	BodySHA256       string            `json:"body_sha256_hex"`
	Expected         string            `json:"expected_signature"`
	WrongHTTPSVector string            `json:"signature_if_validated_against_https_url_WRONG"`
}

func load(t *testing.T, name string) vector {
	t.Helper()
	var v vector
	if err := json.Unmarshal(callrectest.Fixture(t, "signatures/"+name), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestWebSocketUpgradeVector(t *testing.T) {
	v := load(t, "websocket-upgrade.json")
	if got := twilio.Sign(v.AuthToken, v.URL, nil); got != v.Expected {
		t.Errorf("Sign(%s) = %s, want %s", v.URL, got, v.Expected)
	}
	val := twilio.NewValidator(v.AuthToken)
	if !val.ValidateUpgrade(v.URL, v.Expected) {
		t.Error("twilio-go rejects the documented upgrade signature")
	}
	for name, sig := range map[string]string{
		"missing":           "",
		"signed over https": v.WrongHTTPSVector,
		"other token":       twilio.Sign("00000000000000000000000000000000", v.URL, nil),
		"truncated":         v.Expected[:10],
	} {
		if val.ValidateUpgrade(v.URL, sig) {
			t.Errorf("%s signature accepted", name)
		}
	}
	httpsURL := "https" + v.URL[len("wss"):]
	if got := twilio.Sign(v.AuthToken, httpsURL, nil); got != v.WrongHTTPSVector {
		t.Errorf("Sign over the https URL = %s, want the vector's wrong signature %s", got, v.WrongHTTPSVector)
	}
}

func TestFormWebhookVector(t *testing.T) {
	v := load(t, "form-webhook.json")
	if got := twilio.Sign(v.AuthToken, v.URL, v.Params); got != v.Expected {
		t.Errorf("Sign = %s, want %s", got, v.Expected)
	}
	val := twilio.NewValidator(v.AuthToken)
	if !val.ValidateForm(v.URL, v.Params, v.Expected) {
		t.Error("twilio-go rejects the form vector")
	}
	tampered := map[string]string{}
	for k, val := range v.Params {
		tampered[k] = val
	}
	tampered["StreamEvent"] = "stream-stopped"
	if val.ValidateForm(v.URL, tampered, v.Expected) {
		t.Error("tampered parameters accepted")
	}
}

func TestEventStreamsBodyVector(t *testing.T) {
	v := load(t, "event-streams-webhook.json")
	body := callrectest.Fixture(t, v.RawBodyFile)
	sum := sha256.Sum256(body)
	if got := hex.EncodeToString(sum[:]); got != v.BodySHA256 {
		t.Fatalf("body sha256 = %s, want %s", got, v.BodySHA256)
	}
	if got := twilio.Sign(v.AuthToken, v.RequestURL, nil); got != v.Expected {
		t.Errorf("Sign = %s, want %s", got, v.Expected)
	}
	val := twilio.NewValidator(v.AuthToken)
	if !val.ValidateBody(v.RequestURL, body, v.Expected) {
		t.Error("twilio-go rejects the body vector")
	}
	if val.ValidateBody(v.RequestURL, append(append([]byte(nil), body...), ' '), v.Expected) {
		t.Error("altered body accepted")
	}
}
