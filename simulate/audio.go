package simulate

import (
	"embed"
	"encoding/base64"
	"fmt"
	"sync"

	"callrec"
)

// The clips are raw 8 kHz mono μ-law, each a whole number of 160-byte
// frames; audio/README.md says how they were made.
//
//go:embed audio/*.ulaw
var clipFS embed.FS

// conversation is the order in which the parties speak: the agent greets,
// the customer answers, and so on. While one party speaks the other track
// carries faint line noise.
var conversation = []struct {
	track callrec.Track
	clip  string
}{
	{callrec.TrackOutbound, "agent-1"},
	{callrec.TrackInbound, "customer-1"},
	{callrec.TrackOutbound, "agent-2"},
	{callrec.TrackInbound, "customer-2"},
	{callrec.TrackOutbound, "agent-3"},
	{callrec.TrackInbound, "customer-3"},
}

// b64FrameLen is the length of one frame's base64 payload.
var b64FrameLen = base64.StdEncoding.EncodedLen(FrameBytes)

// loop is one track's audio, played in a loop: frame j is
// raw[j*160:(j+1)*160] and its payload is b64[j*b64FrameLen:(j+1)*b64FrameLen].
type loop struct {
	raw []byte
	b64 []byte
	n   int // frames
}

func (l *loop) frame(j int) []byte { return l.raw[j*FrameBytes : (j+1)*FrameBytes] }

func (l *loop) payload(j int) []byte { return l.b64[j*b64FrameLen : (j+1)*b64FrameLen] }

// loops returns the two tracks' audio loops (both the same length, so the
// tracks stay in turn when they start at the same offset).
var loops = sync.OnceValue(func() [callrec.NumTracks]*loop {
	var raw [callrec.NumTracks][]byte
	noise := noiseGen(0x2545F491)
	for _, seg := range conversation {
		clip, err := clipFS.ReadFile("audio/" + seg.clip + ".ulaw")
		if err != nil || len(clip) == 0 || len(clip)%FrameBytes != 0 {
			panic(fmt.Sprintf("simulate: embedded clip %s: %d bytes, %v", seg.clip, len(clip), err))
		}
		for t := range raw {
			if callrec.Track(t) == seg.track {
				raw[t] = append(raw[t], clip...)
				continue
			}
			for range clip {
				raw[t] = append(raw[t], noise())
			}
		}
	}
	var out [callrec.NumTracks]*loop
	for t := range raw {
		l := &loop{raw: raw[t], n: len(raw[t]) / FrameBytes}
		l.b64 = make([]byte, l.n*b64FrameLen)
		for j := 0; j < l.n; j++ {
			base64.StdEncoding.Encode(l.b64[j*b64FrameLen:], l.frame(j))
		}
		out[t] = l
	}
	return out
})

// noiseGen returns a deterministic generator of faint line noise: μ-law
// codes within two quantization steps of zero, either sign.
func noiseGen(state uint32) func() byte {
	codes := [...]byte{0xFF, 0xFE, 0xFD, 0x7F, 0x7E, 0x7D, 0xFF, 0x7F}
	return func() byte {
		state ^= state << 13
		state ^= state >> 17
		state ^= state << 5
		return codes[state>>29]
	}
}

// startFrame is the loop frame call index starts at: calls differ, and the
// step (a prime) makes consecutive calls start far apart.
func startFrame(index, n int) int {
	return int(uint64(index) * 211 % uint64(n))
}

// CallAudio returns n frames of one track of the call with the given index,
// from call frame from on: what chunks 1…n of a stream of that call with
// CallFrame from carry when no frame is lost. The streams of one call carry
// this same audio, so a recording merged from several of them can be
// checked against it byte for byte.
func CallAudio(track callrec.Track, index, from, n int) []byte {
	return LoopAudio(track, startFrame(index, loops()[track].n)+from, n)
}

// LoopAudio returns n frames of one track's audio loop from loop frame
// from on (taken modulo the loop's length, so it may be negative or past
// the end): chunks 1…n of a stream whose LoopFrame is from carry these.
// A call's frame f is loop frame LoopFrame − CallFrame + f of any of its
// streams.
func LoopAudio(track callrec.Track, from, n int) []byte {
	l := loops()[track]
	out := make([]byte, 0, max(n, 0)*FrameBytes)
	j := (from%l.n + l.n) % l.n
	for range n {
		out = append(out, l.frame(j)...)
		j = (j + 1) % l.n
	}
	return out
}
