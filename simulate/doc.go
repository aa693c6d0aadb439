// Package simulate is callrec's stand-in for Twilio Media Streams: it dials a
// media adapter's WebSocket endpoint the way Twilio does for a unidirectional
// <Start><Stream> and sends exactly what Twilio sends on the wire.
//
// Per call it opens one WebSocket (with X-Twilio-Signature when an auth token
// is configured) and sends, as JSON text messages:
//
//	connected → start (sequenceNumber "1") → media … → stop → close
//
// Media messages carry 20 ms of 8 kHz μ-law speech (160 bytes, base64) per
// track, one per track per 20 ms tick of wall time (or as fast as possible
// when Config.Realtime is false). sequenceNumber counts every message after
// connected across both tracks; media.chunk counts per track from 1; and
// media.timestamp of chunk k is (k-1)*20 ms. Numbers are JSON strings, as
// Twilio sends them.
//
// The simulator can impair a stream as a bad network path would: drop frames
// (their chunk, sequence number and timestamp are consumed, as if lost in
// transit), duplicate them, or swap a frame with the next one of its track;
// cut the TCP connection without a close frame; or end without stop. Every
// impairment is recorded in the CallResult, together with the timeline a
// correct recorder reconstructs from what it received (and its SHA-256), so
// end-to-end tests can compare recordings byte for byte.
//
// The audio is real synthetic speech (espeak-ng, see audio/README.md): the
// inbound track carries a customer's phrases, the outbound track an agent's,
// taking turns like a conversation; each call starts at a different point.
// Streams that fork the same call (NewTwilio: the copies of a dual-stream
// pair, a replacement after a stream-error) carry the same call audio on
// the call's media clock (CallClock); CallResult.CallFrame says which frame
// of it chunk 1 carries and CallAudio returns it, so a recording merged
// from several streams can be checked byte for byte.
//
// Run is used by the end-to-end tests, the load benchmark (1000+ concurrent
// calls) and the demo, so the media loop builds its messages by hand into
// reused buffers with precomputed base64 payloads.
package simulate
