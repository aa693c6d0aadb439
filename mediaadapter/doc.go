// Package mediaadapter is the Twilio Media adapter of the recorder adapter
// proxy. It accepts Twilio's Media Streams WebSocket connections (after
// checking X-Twilio-Signature on the upgrade), parses the messages, and
// forwards each stream's frames to a recorder over the link protocol.
//
// The read loop never waits for anything downstream: Twilio discards audio
// when our socket is slow (error 31930). Frames go into the link stream's
// bounded retention buffer; if that budget is ever exceeded the frames are
// dropped, counted, logged and reported to the recording as an overflow gap.
package mediaadapter
