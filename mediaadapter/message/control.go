package message

import (
	"math"

	"github.com/valyala/fastjson"

	"callrec"
)

// This file decodes the messages other than media: they arrive once per
// stream, so they may allocate.

// mulawEncoding is the only media format Twilio sends and we record.
const mulawEncoding = "audio/x-mulaw"

// parseStart decodes and checks a start message.
func parseStart(v *fastjson.Value, m *Message) error {
	if err := requiredSeq(v, m); err != nil {
		return err
	}
	top, err := optionalString(v, "streamSid")
	if err != nil {
		return err
	}
	sv := v.Get("start")
	if sv == nil || sv.Type() != fastjson.TypeObject {
		return badField("start: missing or not an object")
	}
	s := &Start{}
	for _, f := range []struct {
		key string
		dst *string
	}{{"streamSid", &s.StreamSID}, {"callSid", &s.CallSID}, {"accountSid", &s.AccountSID}} {
		b, err := optionalString(sv, f.key)
		if err != nil {
			return err
		}
		if len(b) == 0 {
			return badField("start.%s: missing or empty", f.key)
		}
		*f.dst = string(b)
	}
	if top != nil && string(top) != s.StreamSID {
		return badField("streamSid %q differs from start.streamSid %q", excerpt(top), s.StreamSID)
	}
	if err := parseTracks(sv, s); err != nil {
		return err
	}
	if err := parseCustomParameters(sv, s); err != nil {
		return err
	}
	if err := parseMediaFormat(sv, s); err != nil {
		return err
	}
	m.StreamSID, m.StreamSIDBytes, m.Start = s.StreamSID, top, s
	return nil
}

// parseTracks reads start.tracks: a non-empty list of distinct known tracks.
func parseTracks(sv *fastjson.Value, s *Start) error {
	tv := sv.Get("tracks")
	if tv == nil || tv.Type() != fastjson.TypeArray {
		return badField("start.tracks: missing or not an array")
	}
	items, _ := tv.Array()
	if len(items) == 0 {
		return badField("start.tracks: empty")
	}
	for i, item := range items {
		b, err := item.StringBytes()
		if err != nil {
			return badField("start.tracks[%d]: is a JSON %s, not a string", i, item.Type())
		}
		t, ok := callrec.ParseTrack(string(b))
		if !ok {
			return badField("start.tracks[%d]: unknown track %q", i, excerpt(b))
		}
		for _, prev := range s.Tracks {
			if prev == t {
				return badField("start.tracks[%d]: duplicate track %q", i, t)
			}
		}
		s.Tracks = append(s.Tracks, t)
		s.TrackNames = append(s.TrackNames, t.String())
	}
	return nil
}

// parseCustomParameters reads the optional start.customParameters object,
// whose values must be strings.
func parseCustomParameters(sv *fastjson.Value, s *Start) error {
	s.CustomParameters = map[string]string{}
	cv := sv.Get("customParameters")
	if cv == nil {
		return nil
	}
	obj, err := cv.Object()
	if err != nil {
		return badField("start.customParameters: is a JSON %s, not an object", cv.Type())
	}
	var bad error
	obj.Visit(func(key []byte, val *fastjson.Value) {
		if bad != nil {
			return
		}
		b, err := val.StringBytes()
		if err != nil {
			bad = badField("start.customParameters[%q]: is a JSON %s, not a string", excerpt(key), val.Type())
			return
		}
		s.CustomParameters[string(key)] = string(b)
	})
	return bad
}

// parseMediaFormat checks that start.mediaFormat is 8 kHz mono μ-law.
func parseMediaFormat(sv *fastjson.Value, s *Start) error {
	fv := sv.Get("mediaFormat")
	if fv == nil || fv.Type() != fastjson.TypeObject {
		return badField("start.mediaFormat: missing or not an object")
	}
	enc, err := optionalString(fv, "encoding")
	if err != nil {
		return err
	}
	if string(enc) != mulawEncoding {
		return badField("start.mediaFormat.encoding: %q, want %q", excerpt(enc), mulawEncoding)
	}
	rate, err := uintField(fv, "start.mediaFormat.", "sampleRate", math.MaxInt32)
	if err != nil {
		return err
	}
	if rate != callrec.SampleRate {
		return badField("start.mediaFormat.sampleRate: %d, want %d", rate, callrec.SampleRate)
	}
	channels, err := uintField(fv, "start.mediaFormat.", "channels", math.MaxInt32)
	if err != nil {
		return err
	}
	if channels != 1 {
		return badField("start.mediaFormat.channels: %d, want 1", channels)
	}
	s.Encoding, s.SampleRate, s.Channels = mulawEncoding, int(rate), int(channels)
	return nil
}

// parseStop decodes a stop message; its streamSid is required.
func parseStop(v *fastjson.Value, m *Message) error {
	if err := requiredSeq(v, m); err != nil {
		return err
	}
	sid, err := optionalString(v, "streamSid")
	if err != nil {
		return err
	}
	if len(sid) == 0 {
		return badField("streamSid: missing or empty")
	}
	st := &Stop{}
	if sv := v.Get("stop"); sv != nil {
		st.AccountSID = string(sv.GetStringBytes("accountSid"))
		st.CallSID = string(sv.GetStringBytes("callSid"))
	}
	m.StreamSID, m.StreamSIDBytes, m.Stop = string(sid), sid, st
	return nil
}

// parseConnected decodes the connected message, which has no sequenceNumber
// or streamSid; a sequenceNumber, if sent anyway, must be valid.
func parseConnected(v *fastjson.Value, m *Message) error {
	if v.Get("sequenceNumber") != nil {
		if err := requiredSeq(v, m); err != nil {
			return err
		}
	}
	m.Connected = &Connected{
		Protocol: string(v.GetStringBytes("protocol")),
		Version:  string(v.GetStringBytes("version")),
	}
	return nil
}

// parseLenient fills what it can of a mark, dtmf or unknown message and
// ignores anything malformed.
func parseLenient(v *fastjson.Value, m *Message) {
	if seq, err := uintField(v, "", "sequenceNumber", math.MaxUint64); err == nil {
		m.HasSeq, m.SequenceNumber = true, seq
	}
	if sid := v.GetStringBytes("streamSid"); len(sid) > 0 {
		m.StreamSID, m.StreamSIDBytes = string(sid), sid
	}
}
