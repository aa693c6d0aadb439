package message

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func fixtureLines(tb testing.TB) [][]byte {
	tb.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "twilio", "media-streams")
	var out [][]byte
	for _, name := range []string{"session-unidirectional-both-tracks.jsonl", "session-synthetic-with-mark-dtmf.jsonl"} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			tb.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			out = append(out, bytes.Clone(sc.Bytes()))
		}
		f.Close()
	}
	return out
}

// TestFastPathTakesTwilioMedia: every real media message goes the fast way.
func TestFastPathTakesTwilioMedia(t *testing.T) {
	var p Parser
	n := 0
	for _, line := range fixtureLines(t) {
		var m Message
		if !p.parseMediaFast(line, &m) {
			if bytes.Contains(line, []byte(`"event":"media"`)) {
				t.Errorf("fast path declined a Twilio media message: %s", line)
			}
			continue
		}
		n++
	}
	if n != 40 {
		t.Errorf("fast path took %d media messages, want 40", n)
	}
}

// FuzzFastPath: whenever the fast path accepts an input, the general path
// accepts it too and decodes the same message.
func FuzzFastPath(f *testing.F) {
	for _, line := range fixtureLines(f) {
		f.Add(line)
	}
	f.Add([]byte(` {"event" : "media", "x":"y", "media":{"chunk":"7","track":"outbound","timestamp":"0","payload":"/w==","z":""},"sequenceNumber":"3"} `))
	f.Add([]byte(`{"event":"media","sequenceNumber":"1","sequenceNumber":"2","media":{"track":"inbound","chunk":"1","timestamp":"0","payload":"/w=="}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast, slow Parser
		var fm Message
		if !fast.parseMediaFast(data, &fm) {
			return
		}
		sm, err := slow.parse(data)
		if err != nil {
			t.Fatalf("fast path accepted what the general path rejects (%v): %q", err, data)
		}
		if diff := cmp.Diff(*sm, fm); diff != "" {
			t.Fatalf("fast and general paths differ (-general +fast):\n%s\ninput %q", diff, data)
		}
	})
}

// BenchmarkParseMediaGeneral is the general path alone, for comparison with
// BenchmarkParseMedia (which takes the fast path).
func BenchmarkParseMediaGeneral(b *testing.B) {
	line := fixtureLines(b)[2]
	var p Parser
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		p.msg = Message{}
		if _, err := p.parse(line); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodePayload is the base64 decode alone.
func BenchmarkDecodePayload(b *testing.B) {
	var p Parser
	src := []byte("/7+xq6ioqq+960AyKygoKi88YMOzrKioqq672kY0LCgoKS45VMm1rKmoqa24z0w3LSkoKS03TM+4ramoqay1yVQ5LikoKCw0Rtq7rqqoqKyzw2A8LyooKCsyQOu9r6qoqKuxv/8/MSsoKCovPWvAsquoqKqvvOBDMywoKCouO1rGtKyoqKmuudRJNSwpKCktOE/Mt62pqKmtt8xPOC0pKA==")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.decodePayload(src); err != nil {
			b.Fatal(err)
		}
	}
}
