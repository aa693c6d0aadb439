package message_test

import (
	"bytes"
	"testing"

	"callrec/mediaadapter/message"
)

// mediaLine returns a compact 160-byte media message, as Twilio sends it.
func mediaLine(tb testing.TB) []byte {
	tb.Helper()
	for _, line := range fixtureLines(tb, "session-unidirectional-both-tracks.jsonl") {
		if bytes.Contains(line, []byte(`"event":"media"`)) {
			return line
		}
	}
	tb.Fatal("no media message in the session fixture")
	return nil
}

func TestParseMediaDoesNotAllocate(t *testing.T) {
	inputs := map[string][]byte{
		"compact":  mediaLine(t),
		"indented": readFixture(t, "media-outbound.json"),
		"escaped":  bytes.ReplaceAll(readFixture(t, "media-inbound.json"), []byte("/"), []byte(`\/`)),
	}
	for name, input := range inputs {
		t.Run(name, func(t *testing.T) {
			var p message.Parser
			allocs := testing.AllocsPerRun(1000, func() {
				m, err := p.Parse(input)
				if err != nil || len(m.Media.Payload) != 160 {
					t.Fatalf("Parse: %v", err)
				}
			})
			if allocs != 0 {
				t.Errorf("Parse of a media message: %v allocations, want 0", allocs)
			}
		})
	}
}

func BenchmarkParseMedia(b *testing.B) {
	line := mediaLine(b)
	var p message.Parser
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := p.Parse(line)
		if err != nil || len(m.Media.Payload) != 160 {
			b.Fatalf("Parse: %v", err)
		}
	}
}
