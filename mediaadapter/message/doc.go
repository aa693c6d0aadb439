// Package message decodes the JSON text messages Twilio sends on a Media
// Streams WebSocket: connected, start, media, stop, and the mark and dtmf
// messages of bidirectional streams. Unknown event types are reported as
// EventUnknown rather than rejected, so that a new Twilio event never tears
// down a recording.
//
// This package is the hot path of the media adapter: every call sends 50
// media messages per second per track, each carrying 20 ms of μ-law audio in
// base64. Parsing a media message therefore does no heap allocation: a
// Parser keeps a reusable fastjson.Parser, decodes the payload into its own
// reusable buffer, and hands back a Message it owns, whose byte slices alias
// that storage until the next call to Parse.
//
// The JSON is read with github.com/valyala/fastjson rather than
// encoding/json or a hand-written scanner. encoding/json allocates for every
// message; fastjson's Parser is reusable and allocation-free once warm, it
// unescapes strings (so an escaped payload such as "\/" decodes correctly),
// and it is a small, well-kept, widely used library, which is safer than a
// bespoke scanner in code that must never misread a recording. Because
// fastjson's parser is lenient, every message is also checked with
// fastjson.Validate, so only strict RFC 8259 JSON is accepted.
//
// Every problem is reported as an *Error whose Kind is one of the callrec
// error kinds (malformed_json, bad_field, bad_payload, oversize); Parse never
// panics on any input.
package message
