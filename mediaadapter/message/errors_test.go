package message_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"callrec"
	"callrec/mediaadapter/message"
)

// mutate returns fixture file re-encoded after edit has changed it.
func mutate(tb testing.TB, file string, edit func(m map[string]any)) []byte {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(readFixture(tb, file), &m); err != nil {
		tb.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// obj returns m[key] as an object, for editing nested fields.
func obj(m map[string]any, key string) map[string]any { return m[key].(map[string]any) }

// setMedia returns media-inbound.json with media[key] = val.
func setMedia(tb testing.TB, key string, val any) []byte {
	return mutate(tb, "media-inbound.json", func(m map[string]any) { obj(m, "media")[key] = val })
}

// setStart returns start.json with start[key] = val, or without start[key]
// when val is nil.
func setStart(tb testing.TB, key string, val any) []byte {
	return mutate(tb, "start.json", func(m map[string]any) {
		if val == nil {
			delete(obj(m, "start"), key)
		} else {
			obj(m, "start")[key] = val
		}
	})
}

func TestParseErrors(t *testing.T) {
	media := string(readFixture(t, "media-inbound.json"))
	payload := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	mib := strings.Repeat("A", 1<<20)
	format := func(key string, val any) []byte {
		return mutate(t, "start.json", func(m map[string]any) { obj(obj(m, "start"), "mediaFormat")[key] = val })
	}
	tests := []struct {
		name  string
		input []byte
		kind  string
	}{
		{"malformed JSON", []byte(`{"event":"media",}`), callrec.ErrKindMalformedJSON},
		{"truncated", []byte(media[:len(media)/2]), callrec.ErrKindMalformedJSON},
		{"trailing data", []byte(`{"event":"mark"} {}`), callrec.ErrKindMalformedJSON},
		{"control char in string", []byte("{\"event\":\"mark\",\"x\":\"a\x01b\"}"), callrec.ErrKindMalformedJSON},
		{"bad escape", []byte(`{"event":"mark","x":"\q"}`), callrec.ErrKindMalformedJSON},
		{"number with leading zero", []byte(`{"event":"mark","x":01}`), callrec.ErrKindMalformedJSON},
		{"NaN", []byte(`{"event":"mark","x":NaN}`), callrec.ErrKindMalformedJSON},
		{"binary garbage", []byte{0x00, 0xff, 0xfe, 0x7b, 0x13, 0x80, 0x22}, callrec.ErrKindMalformedJSON},
		{"empty input", nil, callrec.ErrKindMalformedJSON},
		{"only whitespace", []byte(" \n\t"), callrec.ErrKindMalformedJSON},
		{"deep nesting", []byte(strings.Repeat("[", 100000)), callrec.ErrKindMalformedJSON},
		{"1 MiB JSON string", []byte(`"` + mib + `"`), callrec.ErrKindBadField},
		{"array", []byte(`[{"event":"media"}]`), callrec.ErrKindBadField},
		{"missing event", []byte(`{"sequenceNumber":"1"}`), callrec.ErrKindBadField},
		{"event 42", []byte(`{"event":42}`), callrec.ErrKindBadField},
		{"event null", []byte(`{"event":null}`), callrec.ErrKindBadField},
		{"event empty", []byte(`{"event":""}`), callrec.ErrKindBadField},

		{"bad base64", setMedia(t, "payload", "!!!!"), callrec.ErrKindBadPayload},
		{"unpadded base64", setMedia(t, "payload", "/w"), callrec.ErrKindBadPayload},
		{"empty payload", setMedia(t, "payload", ""), callrec.ErrKindBadPayload},
		{"payload of 9000 bytes", setMedia(t, "payload", payload(9000)), callrec.ErrKindOversize},
		{"payload of 8001 bytes", setMedia(t, "payload", payload(8001)), callrec.ErrKindOversize},
		{"1 MiB payload", setMedia(t, "payload", mib), callrec.ErrKindOversize},
		{"payload number", setMedia(t, "payload", 12), callrec.ErrKindBadField},
		{"chunk abc", setMedia(t, "chunk", "abc"), callrec.ErrKindBadField},
		{"chunk -1", setMedia(t, "chunk", "-1"), callrec.ErrKindBadField},
		{"chunk 0", setMedia(t, "chunk", "0"), callrec.ErrKindBadField},
		{"chunk number 0", setMedia(t, "chunk", json.Number("0")), callrec.ErrKindBadField},
		{"chunk number 1.5", setMedia(t, "chunk", json.Number("1.5")), callrec.ErrKindBadField},
		{"chunk empty", setMedia(t, "chunk", ""), callrec.ErrKindBadField},
		{"chunk +1", setMedia(t, "chunk", "+1"), callrec.ErrKindBadField},
		{"chunk 2^32", setMedia(t, "chunk", "4294967296"), callrec.ErrKindBadField},
		{"chunk bool", setMedia(t, "chunk", true), callrec.ErrKindBadField},
		{"timestamp overflow", setMedia(t, "timestamp", "99999999999"), callrec.ErrKindBadField},
		{"timestamp missing", mutate(t, "media-inbound.json", func(m map[string]any) {
			delete(obj(m, "media"), "timestamp")
		}), callrec.ErrKindBadField},
		{"unknown track both", setMedia(t, "track", "both"), callrec.ErrKindBadField},
		{"track number", setMedia(t, "track", 0), callrec.ErrKindBadField},
		{"media not an object", mutate(t, "media-inbound.json", func(m map[string]any) { m["media"] = "x" }),
			callrec.ErrKindBadField},
		{"media without sequenceNumber", mutate(t, "media-inbound.json", func(m map[string]any) {
			delete(m, "sequenceNumber")
		}), callrec.ErrKindBadField},
		{"sequenceNumber 2^64", mutate(t, "media-inbound.json", func(m map[string]any) {
			m["sequenceNumber"] = "18446744073709551616"
		}), callrec.ErrKindBadField},
		{"streamSid number", mutate(t, "media-inbound.json", func(m map[string]any) { m["streamSid"] = 1 }),
			callrec.ErrKindBadField},

		{"start without callSid", setStart(t, "callSid", nil), callrec.ErrKindBadField},
		{"start without streamSid", setStart(t, "streamSid", nil), callrec.ErrKindBadField},
		{"start with empty accountSid", setStart(t, "accountSid", ""), callrec.ErrKindBadField},
		{"start with tracks sideways", setStart(t, "tracks", []string{"sideways"}), callrec.ErrKindBadField},
		{"start with no tracks", setStart(t, "tracks", []string{}), callrec.ErrKindBadField},
		{"start with duplicate tracks", setStart(t, "tracks", []string{"inbound", "inbound"}), callrec.ErrKindBadField},
		{"start with numeric custom parameter", setStart(t, "customParameters", map[string]any{"leg": 1}),
			callrec.ErrKindBadField},
		{"start with encoding audio/l16", format("encoding", "audio/l16"), callrec.ErrKindBadField},
		{"start with sampleRate 16000", format("sampleRate", 16000), callrec.ErrKindBadField},
		{"start with 2 channels", format("channels", 2), callrec.ErrKindBadField},
		{"start without mediaFormat", setStart(t, "mediaFormat", nil), callrec.ErrKindBadField},
		{"start without start", mutate(t, "start.json", func(m map[string]any) { delete(m, "start") }),
			callrec.ErrKindBadField},
		{"start with another top-level streamSid", mutate(t, "start.json", func(m map[string]any) {
			m["streamSid"] = "MZother"
		}), callrec.ErrKindBadField},
		{"stop without streamSid", mutate(t, "stop.json", func(m map[string]any) { delete(m, "streamSid") }),
			callrec.ErrKindBadField},
		{"stop without sequenceNumber", mutate(t, "stop.json", func(m map[string]any) {
			delete(m, "sequenceNumber")
		}), callrec.ErrKindBadField},
		{"connected with bad sequenceNumber", []byte(`{"event":"connected","sequenceNumber":"x"}`),
			callrec.ErrKindBadField},
	}
	var p message.Parser
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := p.Parse(tt.input)
			if err == nil {
				t.Fatalf("Parse accepted the input: %+v", m)
			}
			if m != nil {
				t.Errorf("Parse returned a message with the error %v", err)
			}
			var e *message.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is not a *message.Error", err, err)
			}
			if e.Kind != tt.kind {
				t.Errorf("Kind = %q, want %q (%v)", e.Kind, tt.kind, err)
			}
			if want := "twilio message: " + tt.kind + ": "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Error() = %q, want prefix %q", err.Error(), want)
			}
			if len(err.Error()) > 500 {
				t.Errorf("error message is %d bytes long", len(err.Error()))
			}
			// The parser stays usable after an error.
			if _, err := p.Parse(readFixture(t, "media-outbound.json")); err != nil {
				t.Errorf("Parse after the error: %v", err)
			}
		})
	}
}

func TestLenientInputs(t *testing.T) {
	inbound := readFixture(t, "session-inbound.ulaw")[:160]
	escaped := bytes.ReplaceAll(readFixture(t, "media-inbound.json"), []byte("/"), []byte(`\/`))
	tests := []struct {
		name  string
		input []byte
		check func(t *testing.T, m *message.Message)
	}{
		{"escaped payload", escaped, func(t *testing.T, m *message.Message) {
			if !bytes.Equal(m.Media.Payload, inbound) {
				t.Error("payload with \\/ escapes decoded wrongly")
			}
		}},
		{"numeric chunk and timestamp", mutate(t, "media-inbound.json", func(m map[string]any) {
			obj(m, "media")["chunk"] = json.Number("7")
			obj(m, "media")["timestamp"] = json.Number("4294967295")
			m["sequenceNumber"] = json.Number("9")
		}), func(t *testing.T, m *message.Message) {
			if m.Media.Chunk != 7 || m.Media.TimestampMS != 4294967295 || m.SequenceNumber != 9 {
				t.Errorf("got chunk %d timestamp %d seq %d", m.Media.Chunk, m.Media.TimestampMS, m.SequenceNumber)
			}
		}},
		{"largest payload", setMedia(t, "payload", base64.StdEncoding.EncodeToString(make([]byte, callrec.MaxFramePayload))),
			func(t *testing.T, m *message.Message) {
				if len(m.Media.Payload) != callrec.MaxFramePayload {
					t.Errorf("payload %d bytes", len(m.Media.Payload))
				}
			}},
		{"stop without stop object", []byte(`{"event":"stop","sequenceNumber":"3","streamSid":"MZ1"}`),
			func(t *testing.T, m *message.Message) {
				if m.Event != message.EventStop || m.Stop == nil || m.StreamSID != "MZ1" {
					t.Errorf("got %+v", m)
				}
			}},
		{"mark with bad sequenceNumber", []byte(`{"event":"mark","sequenceNumber":"x","mark":7}`),
			func(t *testing.T, m *message.Message) {
				if m.Event != message.EventMark || m.HasSeq {
					t.Errorf("got %+v", m)
				}
			}},
		{"bare dtmf", []byte(`{"event":"dtmf"}`), func(t *testing.T, m *message.Message) {
			if m.Event != message.EventDTMF || m.Name != "dtmf" {
				t.Errorf("got %+v", m)
			}
		}},
	}
	var p message.Parser
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := p.Parse(tt.input)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.check(t, m)
		})
	}
}

func TestUnknownEvent(t *testing.T) {
	var p message.Parser
	m, err := p.Parse([]byte(`{"event":"transcription","sequenceNumber":"6","streamSid":"` + streamSID +
		`","transcription":{"text":"hello","final":true}}`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := message.Message{
		Event: message.EventUnknown, Name: "transcription", HasSeq: true, SequenceNumber: 6,
		StreamSID: streamSID, StreamSIDBytes: []byte(streamSID),
	}
	if diff := cmp.Diff(want, *m); diff != "" {
		t.Errorf("Parse mismatch (-want +got):\n%s", diff)
	}
}
