package message_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"callrec"
	"callrec/mediaadapter/message"
)

const fixtureDir = "../../testdata/twilio/media-streams"

// Identifiers shared by every fixture.
const (
	streamSID  = "MZ4ec1db7c787a4c9912e1b23305f43a5c"
	callSID    = "CAc0bb2f535401483f8461ddeef83c2d68"
	accountSID = "ACe268443e43d93dab7ebef303bbe9642f"
)

func readFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// fixtureLines returns the non-empty lines of a .jsonl fixture.
func fixtureLines(tb testing.TB, name string) [][]byte {
	tb.Helper()
	var out [][]byte
	for line := range bytes.Lines(readFixture(tb, name)) {
		if line = bytes.TrimSpace(line); len(line) > 0 {
			out = append(out, line)
		}
	}
	return out
}

func TestFixtures(t *testing.T) {
	inbound := readFixture(t, "session-inbound.ulaw")
	outbound := readFixture(t, "session-outbound.ulaw")
	sid := []byte(streamSID)
	tests := []struct {
		file string
		want message.Message
	}{
		{"connected.json", message.Message{
			Event: message.EventConnected, Name: "connected",
			Connected: &message.Connected{Protocol: "Call", Version: "1.0.0"},
		}},
		{"start.json", message.Message{
			Event: message.EventStart, Name: "start", HasSeq: true, SequenceNumber: 1,
			StreamSID: streamSID, StreamSIDBytes: sid,
			Start: &message.Start{
				StreamSID: streamSID, CallSID: callSID, AccountSID: accountSID,
				Tracks:     []callrec.Track{callrec.TrackInbound, callrec.TrackOutbound},
				TrackNames: []string{"inbound", "outbound"},
				CustomParameters: map[string]string{
					"task_sid":        "WTc146b6ad38277b931d94d82f20703136",
					"reservation_sid": "WR16792ea346317c17b1487d339b1a86ed",
					"worker_sid":      "WK6384e2b2184bcbf58eccf10ca7a6563c",
					"leg":             "customer",
				},
				Encoding: "audio/x-mulaw", SampleRate: 8000, Channels: 1,
			},
		}},
		{"start-inbound-only.json", message.Message{
			Event: message.EventStart, Name: "start", HasSeq: true, SequenceNumber: 1,
			StreamSID: streamSID, StreamSIDBytes: sid,
			Start: &message.Start{
				StreamSID: streamSID, CallSID: callSID, AccountSID: accountSID,
				Tracks:           []callrec.Track{callrec.TrackInbound},
				TrackNames:       []string{"inbound"},
				CustomParameters: map[string]string{},
				Encoding:         "audio/x-mulaw", SampleRate: 8000, Channels: 1,
			},
		}},
		{"media-inbound.json", message.Message{
			Event: message.EventMedia, Name: "media", HasSeq: true, SequenceNumber: 2,
			StreamSIDBytes: sid,
			Media: message.Media{
				Track: callrec.TrackInbound, Chunk: 1, TimestampMS: 40,
				Payload: inbound[:160],
			},
		}},
		{"media-outbound.json", message.Message{
			Event: message.EventMedia, Name: "media", HasSeq: true, SequenceNumber: 3,
			StreamSIDBytes: sid,
			Media: message.Media{
				Track: callrec.TrackOutbound, Chunk: 1, TimestampMS: 42,
				Payload: outbound[:160],
			},
		}},
		{"stop.json", message.Message{
			Event: message.EventStop, Name: "stop", HasSeq: true, SequenceNumber: 22,
			StreamSID: streamSID, StreamSIDBytes: sid,
			Stop: &message.Stop{AccountSID: accountSID, CallSID: callSID},
		}},
		{"mark.json", message.Message{
			Event: message.EventMark, Name: "mark", HasSeq: true, SequenceNumber: 4,
			StreamSID: streamSID, StreamSIDBytes: sid,
		}},
		{"dtmf.json", message.Message{
			Event: message.EventDTMF, Name: "dtmf", HasSeq: true, SequenceNumber: 5,
			StreamSID: streamSID, StreamSIDBytes: sid,
		}},
	}
	var p message.Parser
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := p.Parse(readFixture(t, tt.file))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, *got); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStartInfo(t *testing.T) {
	var p message.Parser
	m, err := p.Parse(readFixture(t, "start.json"))
	if err != nil {
		t.Fatal(err)
	}
	got := m.Start.Info()
	want := callrec.StreamInfo{
		StreamSID: streamSID, CallSID: callSID, AccountSID: accountSID,
		Tracks:     []callrec.Track{callrec.TrackInbound, callrec.TrackOutbound},
		TrackNames: []string{"inbound", "outbound"},
		CustomParameters: map[string]string{
			"task_sid":        "WTc146b6ad38277b931d94d82f20703136",
			"reservation_sid": "WR16792ea346317c17b1487d339b1a86ed",
			"worker_sid":      "WK6384e2b2184bcbf58eccf10ca7a6563c",
			"leg":             "customer",
		},
		Encoding: "audio/x-mulaw", SampleRate: 8000, Channels: 1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Info mismatch (-want +got):\n%s", diff)
	}
	// The StreamInfo is a copy: changing it leaves the Start alone.
	got.CustomParameters["leg"] = "agent"
	got.Tracks[0] = callrec.TrackOutbound
	if m.Start.CustomParameters["leg"] != "customer" || m.Start.Tracks[0] != callrec.TrackInbound {
		t.Error("Info shares storage with Start")
	}

	if info := (&message.Start{}).Info(); info.CustomParameters == nil {
		t.Error("Info of a Start without parameters has a nil CustomParameters map")
	}
	m, err = p.Parse([]byte(`{"event":"start","sequenceNumber":"1","start":{"streamSid":"MZ1","callSid":"CA1",` +
		`"accountSid":"AC1","tracks":["outbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if info := m.Start.Info(); info.CustomParameters == nil || len(info.CustomParameters) != 0 {
		t.Errorf("customParameters absent: got %#v, want an empty map", info.CustomParameters)
	}
}

func TestSessionBothTracks(t *testing.T) {
	var p message.Parser
	var payload [callrec.NumTracks][]byte
	var lastChunk [callrec.NumTracks]uint32
	var seqs []uint64
	var events []message.Event
	for i, line := range fixtureLines(t, "session-unidirectional-both-tracks.jsonl") {
		m, err := p.Parse(line)
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		events = append(events, m.Event)
		if m.HasSeq {
			seqs = append(seqs, m.SequenceNumber)
		}
		if m.Event != message.EventMedia {
			continue
		}
		md := m.Media
		if md.Chunk != lastChunk[md.Track]+1 {
			t.Errorf("line %d: %s chunk %d after %d", i+1, md.Track, md.Chunk, lastChunk[md.Track])
		}
		lastChunk[md.Track] = md.Chunk
		if !bytes.Equal(m.StreamSIDBytes, []byte(streamSID)) {
			t.Errorf("line %d: streamSid %q", i+1, m.StreamSIDBytes)
		}
		payload[md.Track] = append(payload[md.Track], md.Payload...)
	}

	if !bytes.Equal(payload[callrec.TrackInbound], readFixture(t, "session-inbound.ulaw")) {
		t.Error("inbound payloads differ from session-inbound.ulaw")
	}
	if !bytes.Equal(payload[callrec.TrackOutbound], readFixture(t, "session-outbound.ulaw")) {
		t.Error("outbound payloads differ from session-outbound.ulaw")
	}
	var wantSeqs []uint64
	for n := uint64(1); n <= 22; n++ {
		wantSeqs = append(wantSeqs, n)
	}
	if diff := cmp.Diff(wantSeqs, seqs); diff != "" {
		t.Errorf("sequence numbers (-want +got):\n%s", diff)
	}
	wantEvents := []message.Event{message.EventConnected, message.EventStart}
	for range 20 {
		wantEvents = append(wantEvents, message.EventMedia)
	}
	wantEvents = append(wantEvents, message.EventStop)
	if diff := cmp.Diff(wantEvents, events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestSessionWithMarkAndDTMF(t *testing.T) {
	var p message.Parser
	var got []string
	var seqs []uint64
	for i, line := range fixtureLines(t, "session-synthetic-with-mark-dtmf.jsonl") {
		m, err := p.Parse(line)
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if m.Event != message.EventMedia {
			got = append(got, m.Event.String()+"/"+m.Name)
		}
		if m.HasSeq {
			seqs = append(seqs, m.SequenceNumber)
		}
	}
	want := []string{"connected/connected", "start/start", "mark/mark", "dtmf/dtmf", "stop/stop"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("non-media events (-want +got):\n%s", diff)
	}
	if len(seqs) != 24 || seqs[0] != 1 || seqs[23] != 24 {
		t.Errorf("sequence numbers %v, want 1..24", seqs)
	}
}

func TestEventString(t *testing.T) {
	want := map[message.Event]string{
		message.EventUnknown: "unknown", message.EventConnected: "connected",
		message.EventStart: "start", message.EventMedia: "media", message.EventStop: "stop",
		message.EventMark: "mark", message.EventDTMF: "dtmf", message.Event(200): "unknown",
	}
	for e, s := range want {
		if e.String() != s {
			t.Errorf("Event(%d).String() = %q, want %q", e, e.String(), s)
		}
	}
}
