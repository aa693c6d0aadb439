package message

import (
	"bytes"
	"math"

	"callrec"
)

// parseMediaFast decodes a media message of the plain shape Twilio sends:
// one flat object of string values plus the "media" object of strings, no
// escapes, no duplicate keys, every field valid. It reports false for
// anything else, and Parse falls back to the general path, which gives the
// precise error or handles the unusual shape; so the fast path never decides
// an error and never accepts what the general path would not (FuzzFastPath
// checks that both agree on every input it accepts). It exists because
// media is 100 messages a second per stream and the general parse builds a
// whole value tree to read seven strings.
func (p *Parser) parseMediaFast(b []byte, m *Message) bool {
	var ev, seq, sid, track, chunk, ts, payload []byte
	var seen uint8
	set := func(dst *[]byte, bit uint8, v []byte) bool {
		if seen&bit != 0 {
			return false // duplicate key: leave first-or-last semantics to the general path
		}
		seen |= bit
		*dst = v
		return true
	}
	i, ok := openObject(b, 0)
	if !ok {
		return false
	}
	for {
		var key, val []byte
		if key, i, ok = keyColon(b, i); !ok {
			return false
		}
		if string(key) == "media" {
			if seen&(1<<3) != 0 {
				return false
			}
			seen |= 1 << 3
			if i, ok = scanMedia(b, i, &track, &chunk, &ts, &payload); !ok {
				return false
			}
		} else {
			if val, i, ok = scanString(b, i); !ok {
				return false
			}
			switch string(key) {
			case "event":
				ok = set(&ev, 1<<0, val)
			case "sequenceNumber":
				ok = set(&seq, 1<<1, val)
			case "streamSid":
				ok = set(&sid, 1<<2, val)
			}
			if !ok {
				return false
			}
		}
		var done bool
		if i, done, ok = nextMember(b, i); !ok {
			return false
		}
		if done {
			break
		}
	}
	if skipWS(b, i) != len(b) || string(ev) != nameMedia || seq == nil || track == nil || chunk == nil || ts == nil || payload == nil {
		return false
	}
	sn, ok1 := parseUint(seq, math.MaxUint64)
	c, ok2 := parseUint(chunk, math.MaxUint32)
	t, ok3 := parseUint(ts, math.MaxUint32)
	tr, ok4 := callrec.ParseTrack(string(track))
	if !ok1 || !ok2 || !ok3 || !ok4 || c == 0 {
		return false
	}
	audio, err := p.decodePayload(payload)
	if err != nil {
		return false
	}
	m.Event, m.Name = EventMedia, nameMedia
	m.HasSeq, m.SequenceNumber = true, sn
	m.StreamSIDBytes = sid
	m.Media = Media{Track: tr, Chunk: uint32(c), TimestampMS: uint32(t), Payload: audio}
	return true
}

// scanMedia reads the "media" object's string members.
func scanMedia(b []byte, i int, track, chunk, ts, payload *[]byte) (int, bool) {
	var seen uint8
	i, ok := openObject(b, i)
	if !ok {
		return 0, false
	}
	for {
		var key, val []byte
		if key, i, ok = keyColon(b, i); !ok {
			return 0, false
		}
		if val, i, ok = scanString(b, i); !ok {
			return 0, false
		}
		var dst *[]byte
		var bit uint8
		switch string(key) {
		case "track":
			dst, bit = track, 1
		case "chunk":
			dst, bit = chunk, 2
		case "timestamp":
			dst, bit = ts, 4
		case "payload":
			dst, bit = payload, 8
		}
		if dst != nil {
			if seen&bit != 0 {
				return 0, false
			}
			seen |= bit
			*dst = val
		}
		var done bool
		if i, done, ok = nextMember(b, i); !ok {
			return 0, false
		}
		if done {
			return i, true
		}
	}
}

// openObject expects '{' (after white space) followed by at least one member.
func openObject(b []byte, i int) (int, bool) {
	i = skipWS(b, i)
	if i >= len(b) || b[i] != '{' {
		return 0, false
	}
	return i + 1, true
}

// keyColon reads a member's key and the colon after it.
func keyColon(b []byte, i int) ([]byte, int, bool) {
	key, i, ok := scanString(b, skipWS(b, i))
	if !ok {
		return nil, 0, false
	}
	i = skipWS(b, i)
	if i >= len(b) || b[i] != ':' {
		return nil, 0, false
	}
	return key, skipWS(b, i+1), true
}

// nextMember reads the ',' or '}' after a member.
func nextMember(b []byte, i int) (int, bool, bool) {
	i = skipWS(b, i)
	if i >= len(b) {
		return 0, false, false
	}
	switch b[i] {
	case ',':
		return i + 1, false, true
	case '}':
		return i + 1, true, true
	}
	return 0, false, false
}

// scanString reads a JSON string without escapes;
// anything else is left to the general path.
func scanString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	k := bytes.IndexByte(b[i+1:], '"')
	if k < 0 {
		return nil, 0, false
	}
	s := b[i+1 : i+1+k]
	if bytes.IndexByte(s, '\\') >= 0 {
		return nil, 0, false
	}
	// Control characters are let through, as the general path lets them
	// through for media: the fields they could hide in are all checked
	// (digits, track names, base64).
	return s, i + k + 2, true
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
