package link

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"

	"callrec"
)

func FuzzDecodeRecord(f *testing.F) {
	payload := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + 1)
		}
		return b
	}
	frames := []callrec.Frame{
		{Seq: 1, Track: callrec.TrackInbound, Chunk: 1, TimestampMS: 0, TwilioSeq: 2, Payload: payload(160)},
		{Seq: 2, Track: callrec.TrackOutbound, Chunk: 1, TimestampMS: 20, TwilioSeq: 3, Payload: payload(1)},
		{Seq: 3, Track: callrec.TrackOutbound, Chunk: 2, TimestampMS: 40, TwilioSeq: 4},
		{Seq: math.MaxUint64, Track: callrec.TrackOutbound, Chunk: math.MaxUint32, TimestampMS: math.MaxUint32, TwilioSeq: math.MaxUint64, Payload: payload(callrec.MaxFramePayload)},
	}
	var all []byte
	for i := range frames {
		b := appendFrame(nil, &frames[i])
		f.Add(b)
		f.Add(b[:len(b)-1]) // truncated
		all = append(all, b...)
	}
	blobs := [][]byte{
		appendBlob(nil, recNote, 5, []byte(`{"at":"2025-01-02T03:04:05Z","kind":"overflow","detail":"x","track":"inbound","from_chunk":1,"to_chunk":3,"frames":3}`)),
		appendBlob(nil, recClose, 1<<40, []byte(`{"reason":"stop","stop_seq":99}`)),
		appendBlob(nil, recNote, 1, nil),
	}
	for _, b := range blobs {
		f.Add(b)
		all = append(all, b...)
	}
	f.Add(all)
	f.Add([]byte{})
	f.Add([]byte{recFrame, 1, 7, 1, 20, 1, 0})                        // track 7
	f.Add([]byte{recFrame, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80}) // unterminated varint
	f.Add([]byte{'X', 1})
	f.Add([]byte{recFrame, 0x81, 0x00, 1, 0x81, 0x80, 0x00, 20, 2, 1, 0xaa}) // non-minimal varints

	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		var r record
		rest, err := decodeRecord(b, &r)
		if !bytes.Equal(b, in) {
			t.Fatal("decodeRecord modified its input")
		}
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			if _, _, _, _, herr := recordHeader(b); herr == nil {
				t.Fatal("recordHeader accepts what decodeRecord refuses")
			}
			return
		}
		consumed := len(b) - len(rest)
		if consumed < 2 || consumed > len(b) || !bytes.Equal(rest, b[consumed:]) {
			t.Fatalf("consumed %d of %d bytes, rest not a suffix", consumed, len(b))
		}
		enc := b[:consumed]
		kind, seq, _, size, herr := recordHeader(b)
		if herr != nil || kind != r.Kind || seq != r.Frame.Seq || size != consumed {
			t.Fatalf("recordHeader = %c %d size %d err %v; decodeRecord gave %c %d size %d", kind, seq, size, herr, r.Kind, r.Frame.Seq, consumed)
		}
		var re []byte
		switch r.Kind {
		case recFrame:
			if r.Frame.Track >= callrec.NumTracks || len(r.Frame.Payload) > callrec.MaxFramePayload {
				t.Fatalf("accepted out-of-range frame %+v", r.Frame)
			}
			re = appendFrame(nil, &r.Frame)
		case recNote, recClose:
			re = appendBlob(nil, r.Kind, r.Frame.Seq, r.Body)
		default:
			t.Fatalf("accepted record kind %d", r.Kind)
		}
		if bytes.Equal(re, enc) {
			return
		}
		// The decoder accepts non-minimal varints (binary.Uvarint does);
		// the encoder writes minimal ones, so the only difference allowed
		// is a shorter encoding of the very same record.
		if len(re) >= len(enc) || !hasLongVarint(enc) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", enc, re)
		}
		var r2 record
		rest2, err := decodeRecord(re, &r2)
		if err != nil || len(rest2) != 0 {
			t.Fatalf("re-encoded record does not decode: %v, %d bytes left", err, len(rest2))
		}
		if diff := cmp.Diff(r, r2); diff != "" {
			t.Fatalf("re-encoded record decodes differently (-first +second):\n%s", diff)
		}
	})
}

// hasLongVarint reports whether some varint of the record at the start of b
// has a redundant trailing zero group (the only way to encode a value longer
// than needed).
func hasLongVarint(b []byte) bool {
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		long := n > 1 && b[n-1] == 0
		b = b[n:]
		return v, long
	}
	kind := b[0]
	b = b[1:]
	_, long := next()
	fields := 1 // note/close: length
	if kind == recFrame {
		b = b[1:] // track
		fields = 4
	}
	for range fields {
		_, l := next()
		long = long || l
	}
	return long
}

// TestFrameAfterFinish: a stream finished by the recorder (or the client's
// shutdown) while its reader is queueing frames must not keep anything: a
// Frame racing with finish used to append to the released buffer, leaking
// Retained() and Stats.RetainedBytes.
func TestFrameAfterFinish(t *testing.T) {
	for i := range 2000 {
		c := NewClient(ClientConfig{})
		s := c.Open(callrec.StreamInfo{})
		started, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			f := callrec.Frame{Payload: []byte{1}}
			close(started)
			for {
				select {
				case <-s.Done():
					return
				default:
				}
				f.Chunk++
				s.Frame(&f)
				s.Note(Note{Track: "inbound"})
			}
		}()
		<-started
		s.finish(nil, ErrClientClosed)
		<-done
		if n := s.Retained(); n != 0 {
			t.Fatalf("iteration %d: Retained() = %d after finish", i, n)
		}
		if n := c.Stats.RetainedBytes.Load(); n != 0 {
			t.Fatalf("iteration %d: Stats.RetainedBytes = %d after finish", i, n)
		}
		if n := c.Stats.StreamsActive.Load(); n != 0 {
			t.Fatalf("iteration %d: Stats.StreamsActive = %d after finish", i, n)
		}
	}
}
