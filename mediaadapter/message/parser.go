package message

import (
	"encoding/base64"
	"fmt"
	"math"
	"strings"

	"github.com/valyala/fastjson"

	"callrec"
)

// payloadBuf is the size of the payload buffer: the largest upper bound
// base64.StdEncoding.DecodedLen gives for a payload of MaxFramePayload bytes.
const payloadBuf = callrec.MaxFramePayload + 2

// Bounds on error messages: how much of a bad value they quote, and how
// much of fastjson's (recursively wrapped) error text they keep.
const (
	maxExcerpt  = 40
	maxJSONHead = 120
	maxJSONTail = 200
)

// Parser decodes Twilio Media Streams messages. Its zero value is ready to
// use. A Parser reuses its storage from one message to the next, so it is
// not safe for concurrent use: use one Parser per WebSocket connection.
type Parser struct {
	json fastjson.Parser
	msg  Message
	buf  []byte // decoded payload; payloadBuf bytes once used
}

// Parse decodes and validates one message. The returned Message is owned by
// p and is overwritten by the next call to Parse, as are the byte slices it
// holds (StreamSIDBytes, Media.Payload). On failure Parse returns a nil
// Message and an *Error. Parsing a media message does not allocate.
func (p *Parser) Parse(data []byte) (*Message, error) {
	m := &p.msg
	*m = Message{}
	if p.parseMediaFast(data, m) {
		return m, nil
	}
	*m = Message{}
	return p.parse(data)
}

// parse is the general path: fastjson, every event, precise errors.
func (p *Parser) parse(data []byte) (*Message, error) {
	m := &p.msg
	v, err := p.json.ParseBytes(data)
	if err != nil {
		return nil, malformed(err)
	}
	if v.Type() != fastjson.TypeObject {
		return nil, badField("message is a JSON %s, not an object", v.Type())
	}
	ev := v.Get("event")
	if ev == nil {
		return nil, badField("event: missing")
	}
	name, err := ev.StringBytes()
	if err != nil {
		return nil, badField("event: is a JSON %s, not a string", ev.Type())
	}
	// fastjson's parser accepts a few things JSON does not (control
	// characters in strings, bad escapes, "01", NaN). Every message but
	// media is validated strictly; media, 100 a second per stream, is not:
	// a full second pass costs a third of the parse, and every field a media
	// message is used for is checked on its own below (numbers, track,
	// base64), so leniency there cannot let bad audio through.
	if string(name) != nameMedia {
		if err := fastjson.ValidateBytes(data); err != nil {
			return nil, malformed(err)
		}
	}
	switch string(name) {
	case nameMedia:
		m.Event, m.Name = EventMedia, nameMedia
		err = p.parseMedia(v, m)
	case nameStart:
		m.Event, m.Name = EventStart, nameStart
		err = parseStart(v, m)
	case nameStop:
		m.Event, m.Name = EventStop, nameStop
		err = parseStop(v, m)
	case nameConnected:
		m.Event, m.Name = EventConnected, nameConnected
		err = parseConnected(v, m)
	case nameMark:
		m.Event, m.Name = EventMark, nameMark
		parseLenient(v, m)
	case nameDTMF:
		m.Event, m.Name = EventDTMF, nameDTMF
		parseLenient(v, m)
	case "":
		return nil, badField("event: empty")
	default:
		m.Event, m.Name = EventUnknown, string(name)
		parseLenient(v, m)
	}
	if err != nil {
		*m = Message{}
		return nil, err
	}
	return m, nil
}

// parseMedia decodes the hot-path media message into m without allocating.
func (p *Parser) parseMedia(v *fastjson.Value, m *Message) error {
	if err := requiredSeq(v, m); err != nil {
		return err
	}
	sid, err := optionalString(v, "streamSid")
	if err != nil {
		return err
	}
	m.StreamSIDBytes = sid

	md := v.Get("media")
	if md == nil || md.Type() != fastjson.TypeObject {
		return badField("media: missing or not an object")
	}
	tv := md.Get("track")
	if tv == nil {
		return badField("media.track: missing")
	}
	track, err := tv.StringBytes()
	if err != nil {
		return badField("media.track: is a JSON %s, not a string", tv.Type())
	}
	t, ok := callrec.ParseTrack(string(track))
	if !ok {
		return badField("media.track: unknown track %q", excerpt(track))
	}
	m.Media.Track = t

	chunk, err := uintField(md, "media.", "chunk", math.MaxUint32)
	if err != nil {
		return err
	}
	if chunk == 0 {
		return badField("media.chunk: must be at least 1")
	}
	m.Media.Chunk = uint32(chunk)
	ts, err := uintField(md, "media.", "timestamp", math.MaxUint32)
	if err != nil {
		return err
	}
	m.Media.TimestampMS = uint32(ts)

	pv := md.Get("payload")
	if pv == nil {
		return badField("media.payload: missing")
	}
	src, err := pv.StringBytes()
	if err != nil {
		return badField("media.payload: is a JSON %s, not a string", pv.Type())
	}
	payload, err := p.decodePayload(src)
	if err != nil {
		return err
	}
	m.Media.Payload = payload
	return nil
}

// decodePayload decodes base64 src into p's reusable buffer. An encoded
// payload too long to decode to at most callrec.MaxFramePayload bytes is
// rejected as oversize before it is decoded.
func (p *Parser) decodePayload(src []byte) ([]byte, error) {
	enc := base64.StdEncoding
	if len(src) == 0 {
		return nil, &Error{Kind: callrec.ErrKindBadPayload, Msg: "media.payload: empty"}
	}
	// DecodedLen counts padding as data, so a full-size payload's upper
	// bound exceeds MaxFramePayload by up to 2 bytes.
	if enc.DecodedLen(len(src)) > payloadBuf {
		return nil, oversize(len(src))
	}
	if p.buf == nil {
		p.buf = make([]byte, payloadBuf)
	}
	n, err := enc.Decode(p.buf, src)
	switch {
	case err != nil:
		return nil, &Error{Kind: callrec.ErrKindBadPayload, Msg: "media.payload: " + err.Error()}
	case n == 0:
		return nil, &Error{Kind: callrec.ErrKindBadPayload, Msg: "media.payload: decodes to no audio"}
	case n > callrec.MaxFramePayload:
		return nil, oversize(len(src))
	}
	return p.buf[:n], nil
}

// oversize returns the error for a payload of n base64 bytes that decodes
// to more than callrec.MaxFramePayload bytes.
func oversize(n int) *Error {
	return &Error{Kind: callrec.ErrKindOversize, Msg: fmt.Sprintf(
		"media.payload: %d base64 bytes decode to more than %d bytes", n, callrec.MaxFramePayload)}
}

// requiredSeq sets m's sequence number from v's required sequenceNumber.
func requiredSeq(v *fastjson.Value, m *Message) error {
	seq, err := uintField(v, "", "sequenceNumber", math.MaxUint64)
	if err != nil {
		return err
	}
	m.HasSeq, m.SequenceNumber = true, seq
	return nil
}

// optionalString returns obj[key] when it is a string, nil when it is
// absent, and a bad_field error when it is anything else.
func optionalString(obj *fastjson.Value, key string) ([]byte, error) {
	v := obj.Get(key)
	if v == nil {
		return nil, nil
	}
	b, err := v.StringBytes()
	if err != nil {
		return nil, badField("%s: is a JSON %s, not a string", key, v.Type())
	}
	return b, nil
}

// uintField reads obj[key] as an unsigned integer no greater than limit.
// Twilio sends such values as base-10 strings; a JSON integer is accepted
// too. prefix names the enclosing object in error messages.
func uintField(obj *fastjson.Value, prefix, key string, limit uint64) (uint64, error) {
	v := obj.Get(key)
	if v == nil {
		return 0, badField("%s%s: missing", prefix, key)
	}
	switch v.Type() {
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		n, ok := parseUint(b, limit)
		if !ok {
			return 0, badField("%s%s: %q is not an unsigned integer up to %d", prefix, key, excerpt(b), limit)
		}
		return n, nil
	case fastjson.TypeNumber:
		n, err := v.Uint64()
		if err != nil || n > limit {
			return 0, badField("%s%s: %s is not an unsigned integer up to %d", prefix, key, excerpt(v.MarshalTo(nil)), limit)
		}
		return n, nil
	default:
		return 0, badField("%s%s: is a JSON %s, not a string", prefix, key, v.Type())
	}
}

// parseUint parses b as base-10 digits, failing if the value exceeds limit.
func parseUint(b []byte, limit uint64) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (limit-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// malformed returns a malformed_json *Error for a fastjson error. Its text
// is clipped: fastjson wraps its error once per nesting level.
func malformed(err error) *Error {
	msg := err.Error()
	if len(msg) > maxJSONHead+maxJSONTail {
		msg = msg[:maxJSONHead] + " … " + msg[len(msg)-maxJSONTail:]
	}
	return &Error{Kind: callrec.ErrKindMalformedJSON, Msg: strings.ToValidUTF8(msg, "?")}
}

// badField returns a bad_field *Error.
func badField(format string, args ...any) *Error {
	return &Error{Kind: callrec.ErrKindBadField, Msg: fmt.Sprintf(format, args...)}
}

// excerpt returns the start of b for quoting in an error message.
func excerpt(b []byte) string {
	if len(b) > maxExcerpt {
		return string(b[:maxExcerpt]) + "…"
	}
	return string(b)
}
