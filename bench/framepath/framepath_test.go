// Package framepath benchmarks the whole frame path of `callrec run` without
// the network: Twilio media JSON → parse + base64 decode → link encode →
// in-process pipe → link decode → placement → WAV write + fdatasync →
// acknowledgement, on a real recorder node with a bbolt index.
package framepath_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"callrec"
	"callrec/internal/link"
	"callrec/mediaadapter/message"
	"callrec/recorder"
	"callrec/recorder/bolt"
)

// cpuTime is the process's user+system CPU time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFramePath feeds media messages for `streams` concurrent streams
// through the real pipeline and reports, besides ns/op (wall time per
// frame), cpu-ns/frame: CPU of every goroutine involved (parser, link,
// recorder, flusher) per frame, which is what capacity depends on.
func BenchmarkFramePath(b *testing.B) {
	for _, streams := range []int{1, 200} {
		b.Run(fmt.Sprintf("streams=%d", streams), func(b *testing.B) { benchFramePath(b, streams) })
	}
}

func benchFramePath(b *testing.B, streams int) {
	dir := b.TempDir()
	idx, err := bolt.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer idx.Close()
	cfg := recorder.DefaultConfig()
	cfg.FlushInterval = 50 * time.Millisecond // the feed is faster than real time
	node, err := recorder.Open(context.Background(), cfg, idx, recorder.FileStore{Root: dir}, nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	nodeDone := make(chan struct{})
	go func() { _ = node.Run(ctx); close(nodeDone) }()
	srv := link.NewServer(node, cfg.NodeID, nil)
	client := link.NewClient(link.ClientConfig{AdapterID: "bench", RetainBytes: 2 << 20, Dial: func(context.Context) (net.Conn, error) {
		a, c := net.Pipe()
		go func() { _ = srv.ServeConn(ctx, c) }()
		return a, nil
	}})
	clientDone := make(chan struct{})
	go func() { _ = client.Run(ctx); close(clientDone) }()

	payload := base64.StdEncoding.EncodeToString(make([]byte, 160))
	ss := make([]*link.Stream, streams)
	msgs := make([][]byte, streams)
	for i := range ss {
		sid := fmt.Sprintf("MZ%032x", i)
		ss[i] = client.Open(callrec.StreamInfo{StreamSID: sid, CallSID: fmt.Sprintf("CA%032x", i), TrackNames: []string{"inbound", "outbound"}})
		msgs[i] = []byte(`{"event":"media","sequenceNumber":"2","media":{"track":"inbound","chunk":"1","timestamp":"0","payload":"` + payload + `"},"streamSid":"` + sid + `"}`)
	}
	var p message.Parser
	var f callrec.Frame
	chunk := make([]uint32, streams)
	b.ReportAllocs()
	b.SetBytes(160)
	cpu0 := cpuTime(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := i % streams
		m, err := p.Parse(msgs[s])
		if err != nil {
			b.Fatal(err)
		}
		chunk[s]++
		f = callrec.Frame{Track: callrec.TrackInbound, Chunk: chunk[s], TimestampMS: (chunk[s] - 1) * 20, TwilioSeq: m.SequenceNumber, Payload: m.Media.Payload}
		for !ss[s].Frame(&f) {
			// Faster than real time the feed can outrun the recorder's
			// flushes: wait for acknowledgements (production never waits:
			// it is paced by Twilio at 50 frames a second per track).
			for ss[s].Retained() > 1<<20 {
				time.Sleep(50 * time.Microsecond)
			}
		}
	}
	// Done when every frame is written, synced and acknowledged.
	for _, s := range ss {
		s.Close(link.Close{Reason: callrec.EndStop})
	}
	for _, s := range ss {
		<-s.Done()
		if _, err := s.Result(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/frame")
	cancel()
	<-clientDone
	<-nodeDone
}
