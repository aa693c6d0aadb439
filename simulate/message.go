package simulate

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Messages are built by hand, field for field in the order Twilio sends them
// (see testdata/twilio/media-streams), with every number but those of
// mediaFormat as a JSON string.

// connectedMsg is the first message of every stream.
var connectedMsg = []byte(`{"event":"connected","protocol":"Call","version":"1.0.0"}`)

// stream holds the identity of one Media Stream and builds its messages.
type stream struct {
	accountSID, callSID, streamSID string
	mediaSuffix                    []byte // `"},"streamSid":"MZ…"}`
}

func newStream(accountSID, callSID, streamSID string) *stream {
	return &stream{
		accountSID:  accountSID,
		callSID:     callSID,
		streamSID:   streamSID,
		mediaSuffix: []byte(`"},"streamSid":"` + streamSID + `"}`),
	}
}

// startMsg builds the start message (sequenceNumber "1").
func (s *stream) startMsg(both bool, params map[string]string) ([]byte, error) {
	cp, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("encode customParameters: %w", err)
	}
	tracks := `["inbound"]`
	if both {
		tracks = `["inbound","outbound"]`
	}
	b := make([]byte, 0, 512+len(cp))
	b = append(b, `{"event":"start","sequenceNumber":"1","start":{"accountSid":"`...)
	b = append(b, s.accountSID...)
	b = append(b, `","streamSid":"`...)
	b = append(b, s.streamSID...)
	b = append(b, `","callSid":"`...)
	b = append(b, s.callSID...)
	b = append(b, `","tracks":`...)
	b = append(b, tracks...)
	b = append(b, `,"customParameters":`...)
	b = append(b, cp...)
	b = append(b, `,"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"`...)
	b = append(b, s.streamSID...)
	b = append(b, `"}`...)
	return b, nil
}

// appendMedia appends one media message to dst. track is "inbound" or
// "outbound"; payload is the frame's base64.
func (s *stream) appendMedia(dst []byte, seq uint64, track string, chunk uint32, timestampMS uint64, payload []byte) []byte {
	dst = append(dst, `{"event":"media","sequenceNumber":"`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `","media":{"track":"`...)
	dst = append(dst, track...)
	dst = append(dst, `","chunk":"`...)
	dst = strconv.AppendUint(dst, uint64(chunk), 10)
	dst = append(dst, `","timestamp":"`...)
	dst = strconv.AppendUint(dst, timestampMS, 10)
	dst = append(dst, `","payload":"`...)
	dst = append(dst, payload...)
	dst = append(dst, s.mediaSuffix...)
	return dst
}

// appendStop appends the stop message to dst.
func (s *stream) appendStop(dst []byte, seq uint64) []byte {
	dst = append(dst, `{"event":"stop","sequenceNumber":"`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `","stop":{"accountSid":"`...)
	dst = append(dst, s.accountSID...)
	dst = append(dst, `","callSid":"`...)
	dst = append(dst, s.callSID...)
	dst = append(dst, `"},"streamSid":"`...)
	dst = append(dst, s.streamSID...)
	dst = append(dst, `"}`...)
	return dst
}
