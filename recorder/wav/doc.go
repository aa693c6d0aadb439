// Package wav reads and writes the WAV container of callrec's recordings and
// repairs it after a crash.
//
// A recording is a stereo RIFF/WAVE file: left channel is the customer
// (Twilio's inbound track), right channel is the agent (outbound track),
// 8000 Hz, stored as G.711 μ-law (WAVE_FORMAT_MULAW, format tag 7), one byte
// per sample, so one sample frame is two bytes and a second is 16000 bytes.
//
// Why μ-law on disk rather than 16-bit PCM:
//
//   - It is bit-exact with what Twilio sent: Media Streams carry μ-law, and
//     a compliance recording should hold the received bytes, not a
//     transcoding of them. Comparing a channel with the frames Twilio sent
//     is a byte comparison (see Deinterleave).
//   - It is half the size of PCM16 for the same audio.
//   - It plays as is in the <audio> element of Chrome, Firefox and Safari,
//     and in every common desktop player.
//
// Non-PCM formats need a "fact" chunk, so the header this package writes is
// 58 bytes (see AppendHeader), not the 44 of a plain PCM file.
//
// The recorder writes a file with positional writes: the header first, then
// audio, and before each fsync it rewrites the header (AppendHeader at offset
// 0) with the sizes written so far. After a kill -9 the file is therefore
// playable up to the last sync; on restart Repair makes the header match the
// bytes actually on disk. Parse is a general, defensive RIFF/WAVE reader used
// by Repair and by tools.
//
// μ-law helpers (MulawToLinear, MulawDecode, LinearToMulaw) implement ITU-T
// G.711 for analysis and tests; the recorder itself never transcodes.
package wav
