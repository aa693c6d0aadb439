package link_test

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"callrec"
	"callrec/internal/link"
)

// benchHandler's sinks count records and acknowledge every ackEvery-th, the
// way a recorder acks after each write; they allocate nothing.
type benchHandler struct {
	ackEvery uint64
	mu       sync.Mutex
	sinks    []*benchSink
}

type benchSink struct {
	r     *link.Replier
	every uint64
	last  atomic.Uint64
}

func (h *benchHandler) OpenStream(_ context.Context, _ link.StreamKey, _ link.OpenRequest, r *link.Replier) (link.StreamSink, link.OpenReply, error) {
	s := &benchSink{r: r, every: h.ackEvery}
	h.mu.Lock()
	h.sinks = append(h.sinks, s)
	h.mu.Unlock()
	return s, link.OpenReply{INUM: "0007000000000001"}, nil
}

func (s *benchSink) record(seq uint64) {
	s.last.Store(seq)
	if seq%s.every == 0 {
		s.r.Ack(seq)
	}
}

func (s *benchSink) Frame(f *callrec.Frame)       { s.record(f.Seq) }
func (s *benchSink) Note(seq uint64, _ link.Note) { s.record(seq) }
func (s *benchSink) Close(seq uint64, _ link.Close) {
	s.record(seq)
	s.r.Ack(seq)
}
func (s *benchSink) Detach(*link.Replier) {}

// BenchmarkStreamFrame measures Stream.Frame of a 160-byte frame (20 ms of
// Twilio audio) end to end: queueing, batching, the wire, the recorder's
// decoding and the acks that release the retention buffer. Allocations are
// those of the whole process per frame.
func BenchmarkStreamFrame(b *testing.B) {
	for _, tr := range []transport{overPipe, overTCP} {
		b.Run(tr.String(), func(b *testing.B) { benchStreamFrame(b, tr, nil) })
	}
}

// BenchmarkStreamFrameMetrics is BenchmarkStreamFrame with the client's
// metrics on (ClientConfig.Metrics), as the adapters run: the difference
// is what the metrics cost.
func BenchmarkStreamFrameMetrics(b *testing.B) {
	for _, tr := range []transport{overPipe, overTCP} {
		b.Run(tr.String(), func(b *testing.B) { benchStreamFrame(b, tr, link.NewMetrics(prometheus.NewRegistry())) })
	}
}

func benchStreamFrame(b *testing.B, tr transport, m *link.Metrics) {
	h := &benchHandler{ackEvery: 32}
	hs := newHarness(b, tr, h, link.ClientConfig{AdapterID: "bench", Metrics: m})
	s := hs.client.Open(streamInfo(1))
	f := callrec.Frame{Payload: make([]byte, 160)}
	for i := range f.Payload {
		f.Payload[i] = byte(i)
	}
	// Keep the producer within the retention budget (as 20 ms pacing does in
	// production) so that no frame is dropped.
	const limit = link.DefaultRetainBytes - 4096
	var n uint64
	b.ReportAllocs()
	for b.Loop() {
		for s.Retained() > limit {
			runtime.Gosched()
		}
		n++
		f.Track = callrec.Track(n & 1)
		f.Chunk = uint32(n/2 + 1)
		f.TimestampMS = f.Chunk * 20
		f.TwilioSeq = n + 1
		if !s.Frame(&f) {
			b.Fatalf("frame %d dropped", n)
		}
	}
	b.StopTimer()
	eventually(b, "recorder to get every frame", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.sinks) == 1 && h.sinks[0].last.Load() == n
	})
	b.ReportMetric(float64(hs.client.Stats.BytesSent.Load())/float64(n), "wire-B/frame")
}
