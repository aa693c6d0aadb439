// Package mediaadapter is the Twilio Media adapter of the recorder adapter
// proxy. It accepts Twilio's Media Streams WebSocket connections (after
// checking X-Twilio-Signature on the upgrade), parses the messages, and
// forwards each stream's frames to a recorder over the link protocol.
//
// The read loop never waits for anything downstream: Twilio discards audio
// when our socket is slow (error 31930). Frames go into the link stream's
// bounded retention buffer; if that budget is ever exceeded the frames are
// dropped, counted, logged and reported to the recording as an overflow gap.
//
// Dual-stream capture: the copies of a pair connect on <public
// path>/pair/<group>/<copy> (signed over the public URL with that suffix)
// and carry the pair in their custom parameters, which go to the recorder
// on StreamInfo.Pair. Dual recording (Config.DualRecording): every stream
// is opened twice, on two recorders (StreamInfo.Replica 1 and 2), each
// replica with its own budget and acknowledgements, so that one replica's
// trouble never reaches the other nor Twilio's socket.
package mediaadapter
