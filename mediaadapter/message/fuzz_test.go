package message_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"callrec"
	"callrec/mediaadapter/message"
)

// refMedia is the reference decoding of a media message with encoding/json.
// Numeric fields are kept raw because Parse accepts them as strings (what
// Twilio sends) or as JSON numbers.
type refMedia struct {
	Event          string          `json:"event"`
	SequenceNumber json.RawMessage `json:"sequenceNumber"`
	Media          struct {
		Track     string          `json:"track"`
		Chunk     json.RawMessage `json:"chunk"`
		Timestamp json.RawMessage `json:"timestamp"`
		Payload   string          `json:"payload"`
	} `json:"media"`
}

// refUint decodes a raw JSON string or number holding an unsigned integer.
func refUint(raw json.RawMessage) (uint64, error) {
	s := string(raw)
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
	}
	return strconv.ParseUint(s, 10, 64)
}

// jsonShape walks data with encoding/json's tokenizer. It reports whether an
// object anywhere has two keys that encoding/json would match to the same
// struct field (equal under case folding), and the maximum nesting depth.
// fastjson takes the first of duplicate keys and matches case-sensitively,
// while encoding/json takes the last and folds case, so the decoders may
// disagree on such inputs without either being wrong.
func jsonShape(data []byte) (dupKeys bool, depth int) {
	type frame struct {
		object, wantKey bool
		keys            []string
	}
	var stack []*frame
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err != nil {
			return dupKeys, depth
		}
		if len(stack) > 0 {
			top := stack[len(stack)-1]
			if top.object && top.wantKey {
				if key, ok := tok.(string); ok {
					for _, k := range top.keys {
						if strings.EqualFold(k, key) {
							dupKeys = true
						}
					}
					top.keys = append(top.keys, key)
					top.wantKey = false
					continue
				}
			} else if top.object && tok != json.Delim('}') {
				top.wantKey = true // this token starts the value
			}
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			stack = append(stack, &frame{object: tok == json.Delim('{'), wantKey: true})
			depth = max(depth, len(stack))
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}

// fuzzSeeds returns every fixture message plus edge cases.
func fuzzSeeds(tb testing.TB) [][]byte {
	var seeds [][]byte
	files, err := filepath.Glob(filepath.Join(fixtureDir, "*.json*"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			tb.Fatal(err)
		}
		if strings.HasSuffix(file, ".jsonl") {
			seeds = append(seeds, fixtureLines(tb, filepath.Base(file))...)
		} else {
			seeds = append(seeds, data)
		}
	}
	const m = `{"event":"media","sequenceNumber":"2","streamSid":"MZ1","media":{"track":"inbound","chunk":%s,"timestamp":"40","payload":%s}}`
	media := func(chunk, payload string) []byte {
		return []byte(strings.Replace(strings.Replace(m, "%s", chunk, 1), "%s", payload, 1))
	}
	seeds = append(seeds,
		media(`"1"`, `"/w=="`),
		media(`7`, `"\/w=="`),
		media(`"4294967295"`, `"\u002fw=="`),
		media(`"0"`, `"/w=="`),
		media(`"1"`, `"/w"`),
		media(`"1"`, `""`),
		media(`"1"`, `"AAAA\nAAAA"`),
		[]byte(`{"event":"media","event":"stop","Event":"x","sequenceNumber":"1","media":{"track":"outbound","TRACK":"inbound","chunk":"1","timestamp":"0","payload":"AA=="}}`),
		[]byte(`{"\u0065vent":"media","sequenceNumber":"1","media":{"track":"\u0069nbound","chunk":"01","timestamp":"0","payload":"AA=="}}`),
		[]byte(`{"event":"transcription"}`),
		[]byte(`{"event":"connected","sequenceNumber":"0"}`),
		[]byte(`[[[[[[[[[[[[]]]]]]]]]]]]`),
		[]byte("{\"event\":\"media\xff\"}"),
		[]byte(`"media"`),
		[]byte{},
	)
	return seeds
}

func FuzzParse(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	other := readFixture(f, "media-outbound.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		input := bytes.Clone(data) // Parse must not modify its input
		var p message.Parser
		m, err := p.Parse(data)
		if !bytes.Equal(input, data) {
			t.Fatal("Parse modified its input")
		}
		dupKeys, depth := jsonShape(data)
		if err != nil {
			var e *message.Error
			if !errors.As(err, &e) || m != nil {
				t.Fatalf("Parse returned %v, %T %v", m, err, err)
			}
			switch e.Kind {
			case callrec.ErrKindMalformedJSON:
				// fastjson limits nesting to 300 levels, encoding/json to 10000.
				if json.Valid(data) && depth < 300 {
					t.Fatalf("valid JSON reported as malformed: %v", err)
				}
			case callrec.ErrKindBadField, callrec.ErrKindBadPayload, callrec.ErrKindOversize:
			default:
				t.Fatalf("unexpected error kind %q", e.Kind)
			}
			return
		}
		// Media is parsed without a strict validation pass (see Parse);
		// everything else must be valid JSON.
		if m.Event != message.EventMedia && !json.Valid(data) {
			t.Fatalf("Parse accepted invalid JSON as %v", m.Event)
		}
		if m.Name == "" {
			t.Fatal("accepted message has no Name")
		}
		if m.Event == message.EventMedia {
			checkMedia(t, data, m, dupKeys)
		}

		// Reusing the parser gives the same answer.
		before := *m
		before.Media.Payload = bytes.Clone(m.Media.Payload)
		before.StreamSIDBytes = bytes.Clone(m.StreamSIDBytes)
		if _, err := p.Parse(other); err != nil {
			t.Fatal(err)
		}
		again, err := p.Parse(data)
		if err != nil || again.Event != before.Event || again.SequenceNumber != before.SequenceNumber ||
			again.Media.Chunk != before.Media.Chunk || !bytes.Equal(again.Media.Payload, before.Media.Payload) ||
			!bytes.Equal(again.StreamSIDBytes, before.StreamSIDBytes) {
			t.Fatalf("second Parse differs: %+v, %v; first %+v", again, err, before)
		}
	})
}

// checkMedia compares an accepted media message with encoding/json's
// reading of the same bytes.
func checkMedia(t *testing.T, data []byte, m *message.Message, dupKeys bool) {
	t.Helper()
	if n := len(m.Media.Payload); n == 0 || n > callrec.MaxFramePayload {
		t.Fatalf("payload of %d bytes accepted", n)
	}
	if m.Name != "media" || m.Media.Chunk == 0 {
		t.Fatalf("media message with Name %q, chunk %d", m.Name, m.Media.Chunk)
	}
	var ref refMedia
	if err := json.Unmarshal(data, &ref); err != nil {
		if !json.Valid(data) {
			return // leniently parsed media (see Parse): nothing to compare with
		}
		t.Fatalf("Parse accepted a media message encoding/json rejects: %v", err)
	}
	if dupKeys {
		return // the decoders may legitimately pick different values
	}
	if ref.Event != "media" || ref.Media.Track != m.Media.Track.String() {
		t.Fatalf("encoding/json reads event %q track %q; Parse reads media %v", ref.Event, ref.Media.Track, m.Media.Track)
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		got  uint64
	}{
		{"sequenceNumber", ref.SequenceNumber, m.SequenceNumber},
		{"chunk", ref.Media.Chunk, uint64(m.Media.Chunk)},
		{"timestamp", ref.Media.Timestamp, uint64(m.Media.TimestampMS)},
	} {
		want, err := refUint(f.raw)
		if err != nil || want != f.got {
			t.Fatalf("%s: encoding/json reads %s (%d, %v), Parse %d", f.name, f.raw, want, err, f.got)
		}
	}
	want, err := base64.StdEncoding.DecodeString(ref.Media.Payload)
	if err != nil || !bytes.Equal(want, m.Media.Payload) {
		t.Fatalf("payload: encoding/json+base64 reads %x (%v), Parse %x", want, err, m.Media.Payload)
	}
}
