package link_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"callrec"
	"callrec/internal/callrectest"
	"callrec/internal/link"
)

// gauge reads an unlabelled counter or gauge of reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	return callrectest.Metric(t, reg, name, nil)
}

// ackHistogram returns the sample count and sum of callrec_link_ack_seconds.
func ackHistogram(t *testing.T, reg *prometheus.Registry) (uint64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "callrec_link_ack_seconds" {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	t.Fatal("callrec_link_ack_seconds not registered")
	return 0, 0
}

func testFrame(chunk uint32) *callrec.Frame {
	return &callrec.Frame{Track: callrec.TrackInbound, Chunk: chunk, TimestampMS: chunk * 20, Payload: make([]byte, 160)}
}

// TestMetricsNames: the names and types the dashboard and the alerting
// rules (deploy/) query.
func TestMetricsNames(t *testing.T) {
	reg := prometheus.NewRegistry()
	link.NewMetrics(reg)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf.GetType().String()
	}
	want := map[string]string{
		"callrec_link_ack_seconds":          "HISTOGRAM",
		"callrec_link_retained_bytes":       "GAUGE",
		"callrec_link_connections":          "GAUGE",
		"callrec_link_reconnects_total":     "COUNTER",
		"callrec_link_ack_timeouts_total":   "COUNTER",
		"callrec_link_sent_bytes_total":     "COUNTER",
		"callrec_link_replayed_bytes_total": "COUNTER",
	}
	for name, typ := range want {
		if g, ok := got[name]; !ok || g != typ {
			t.Errorf("%s: registered %v (%v), want %v", name, ok, g, typ)
		}
	}
	if len(got) != len(want) {
		t.Errorf("registered %d metrics, want %d: %v", len(got), len(want), got)
	}
}

// TestMetricsAckLatency: one record per stream is timed at a time, from
// its send to the acknowledgement that covers it; records sent meanwhile
// are not timed.
func TestMetricsAckLatency(t *testing.T) {
	for _, tr := range []transport{overPipe, overTCP} {
		t.Run(tr.String(), func(t *testing.T) {
			reg := prometheus.NewRegistry()
			h := newFakeHandler(false)
			hs := newHarness(t, tr, h, link.ClientConfig{AdapterID: "m", Metrics: link.NewMetrics(reg)})
			s := hs.client.Open(streamInfo(1))
			sink := h.waitSink(t, key("m", s.ID()))
			// Two batches: seq 1 is timed, seq 2 goes while 1 is in flight.
			for seq := uint32(1); seq <= 2; seq++ {
				if !s.Frame(testFrame(seq)) {
					t.Fatal("frame refused")
				}
				sink.waitSeq(t, uint64(seq))
			}
			const hold = 50 * time.Millisecond
			time.Sleep(hold) // the recorder's flush time, as the adapter will see it
			sink.Ack(t, 1)
			eventually(t, "ack 1", func() bool { return s.Acked() == 1 })
			n, sum := ackHistogram(t, reg)
			if n != 1 || sum < hold.Seconds() || sum > waitTimeout.Seconds() {
				t.Fatalf("after the ack of the timed record: %d samples, sum %.3fs; want 1 sample of %v to %v", n, sum, hold, waitTimeout)
			}
			sink.Ack(t, 2)
			eventually(t, "ack 2", func() bool { return s.Acked() == 2 })
			if n, _ := ackHistogram(t, reg); n != 1 {
				t.Errorf("after the ack of an untimed record: %d samples, want still 1", n)
			}
			// The next batch is timed again; a cumulative ack beyond it counts.
			for seq := uint32(3); seq <= 4; seq++ {
				if !s.Frame(testFrame(seq)) {
					t.Fatal("frame refused")
				}
				sink.waitSeq(t, uint64(seq))
			}
			sink.Ack(t, 4)
			eventually(t, "ack 4", func() bool { return s.Acked() == 4 })
			if n, _ := ackHistogram(t, reg); n != 2 {
				t.Errorf("after a cumulative ack past the next timed record: %d samples, want 2", n)
			}
		})
	}
}

// TestMetricsRetainedWhileDown: with no recorder reachable the frames stay
// in retention and the gauge shows them (the clients' Stats only catch up
// when a stream is sent or acknowledged); one Metrics sums every client of
// the process; a client that stopped counts no more.
func TestMetricsRetainedWhileDown(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := link.NewMetrics(reg)
	down := func(ctx context.Context) (net.Conn, error) { return nil, errors.New("no recorder") }
	type run struct {
		c      *link.Client
		cancel context.CancelFunc
		err    <-chan error
	}
	var runs []run
	var streams []*link.Stream
	for i, frames := range []int{10, 25} {
		c, cancel, err := runClient(t, link.ClientConfig{AdapterID: "down", Dial: down, Metrics: m})
		runs = append(runs, run{c, cancel, err})
		s := c.Open(streamInfo(i))
		for j := range frames {
			if !s.Frame(testFrame(uint32(j + 1))) {
				t.Fatal("frame refused")
			}
		}
		streams = append(streams, s)
	}
	want := float64(streams[0].Retained() + streams[1].Retained())
	if want < 35*160 {
		t.Fatalf("streams retain %v bytes, want at least the 35 payloads", want)
	}
	eventually(t, "both clients running", func() bool { return gauge(t, reg, "callrec_link_retained_bytes") == want })
	eventually(t, "a reconnect counted", func() bool { return gauge(t, reg, "callrec_link_reconnects_total") >= 2 })
	if got := gauge(t, reg, "callrec_link_connections"); got != 0 {
		t.Errorf("callrec_link_connections = %v with no recorder, want 0", got)
	}
	runs[1].cancel()
	if err := recv(t, "Run", runs[1].err); err != nil {
		t.Errorf("Run: %v", err)
	}
	if got, want := gauge(t, reg, "callrec_link_retained_bytes"), float64(streams[0].Retained()); got != want {
		t.Errorf("after one client stopped: callrec_link_retained_bytes = %v, want %v (the other's)", got, want)
	}
	runs[0].cancel()
	if err := recv(t, "Run", runs[0].err); err != nil {
		t.Errorf("Run: %v", err)
	}
	if got := gauge(t, reg, "callrec_link_retained_bytes"); got != 0 {
		t.Errorf("after every client stopped: callrec_link_retained_bytes = %v, want 0", got)
	}
}

// TestMetricsReconnect: the connection gauge, the reconnect counter, the
// bytes sent and replayed, and the retention released by acks.
func TestMetricsReconnect(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newFakeHandler(false)
	hs := newHarness(t, overTCP, h, link.ClientConfig{AdapterID: "rc", Metrics: link.NewMetrics(reg)})
	eventually(t, "connected", func() bool { return gauge(t, reg, "callrec_link_connections") == 1 })
	s := hs.client.Open(streamInfo(1))
	sink := h.waitSink(t, key("rc", s.ID()))
	for j := range 20 {
		if !s.Frame(testFrame(uint32(j + 1))) {
			t.Fatal("frame refused")
		}
	}
	sink.waitSeq(t, 20)
	sink.Ack(t, 10)
	eventually(t, "ack 10", func() bool { return s.Acked() == 10 })
	unacked := s.Retained()
	if got := gauge(t, reg, "callrec_link_retained_bytes"); got != float64(unacked) || unacked < 10*160 {
		t.Errorf("callrec_link_retained_bytes = %v, want %d, the 10 unacknowledged records", got, unacked)
	}
	eventually(t, "bytes sent counted", func() bool {
		return gauge(t, reg, "callrec_link_sent_bytes_total") == float64(hs.client.Stats.BytesSent.Load())
	})
	if gauge(t, reg, "callrec_link_replayed_bytes_total") != 0 || gauge(t, reg, "callrec_link_reconnects_total") != 0 {
		t.Error("replay or reconnect counted before any connection was lost")
	}

	if err := hs.serverConn(t, 0).Close(); err != nil {
		t.Fatal(err)
	}
	h.waitOpens(t, 2)
	eventually(t, "reconnected", func() bool {
		return gauge(t, reg, "callrec_link_reconnects_total") == 1 && gauge(t, reg, "callrec_link_connections") == 1
	})
	if got := gauge(t, reg, "callrec_link_replayed_bytes_total"); got != float64(unacked) {
		t.Errorf("callrec_link_replayed_bytes_total = %v, want %d: what was sent and not acknowledged", got, unacked)
	}
	sink.Ack(t, 20)
	eventually(t, "retention released", func() bool { return gauge(t, reg, "callrec_link_retained_bytes") == 0 })
}

// TestMetricsAckTimeout counts the connections dropped because the
// recorder stopped acknowledging.
func TestMetricsAckTimeout(t *testing.T) {
	reply := cat(msg(tWelcome, []byte{link.Version, 0, 1}), msg(tOpened, u32(1), []byte(`{"inum":"0001000000000018"}`)))
	var peers sync.WaitGroup
	defer peers.Wait()
	dials := make(chan struct{}, 1)
	reg := prometheus.NewRegistry()
	c, cancel, runErr := runClient(t, link.ClientConfig{AdapterID: "x", AckTimeout: 200 * time.Millisecond,
		Dial: fakeRecorderDial(&peers, dials, reply), Metrics: link.NewMetrics(reg)})
	defer func() {
		cancel()
		if err := recv(t, "Run", runErr); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	s := c.Open(streamInfo(1))
	recv(t, "dial", dials)
	if !s.Frame(testFrame(1)) {
		t.Fatal("frame refused")
	}
	recv(t, "redial after the acknowledgements stopped", dials)
	eventually(t, "ack timeout counted", func() bool { return gauge(t, reg, "callrec_link_ack_timeouts_total") >= 1 })
}

// TestMetricsNilRegisterer: metrics not registered anywhere still work.
func TestMetricsNilRegisterer(t *testing.T) {
	h := newFakeHandler(true)
	hs := newHarness(t, overPipe, h, link.ClientConfig{AdapterID: "n", Metrics: link.NewMetrics(nil)})
	s := hs.client.Open(streamInfo(1))
	for j := range 5 {
		s.Frame(testFrame(uint32(j + 1)))
	}
	eventually(t, "acks", func() bool { return s.Acked() == 5 })
}

// TestMetricsScrapeWhileStreaming gathers the metrics while streams send
// and are acknowledged (for the race detector), and checks that every
// stream's latency was sampled.
func TestMetricsScrapeWhileStreaming(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newFakeHandler(true)
	hs := newHarness(t, overTCP, h, link.ClientConfig{AdapterID: "s", Metrics: link.NewMetrics(reg)})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			s := hs.client.Open(streamInfo(i))
			for j := range 200 {
				s.Frame(testFrame(uint32(j + 1)))
				if j%20 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
			s.Close(link.Close{Reason: callrec.EndStop})
			for deadline := time.Now().Add(waitTimeout); s.Acked() < 201; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Errorf("stream %d: acked %d of 201 records", s.ID(), s.Acked())
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for scrapes := 0; ; scrapes++ {
		if _, err := reg.Gather(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
			if n, _ := ackHistogram(t, reg); n < 4 {
				t.Errorf("%d latency samples from 4 streams, want at least one each", n)
			}
			if got := gauge(t, reg, "callrec_link_retained_bytes"); got != 0 {
				t.Errorf("callrec_link_retained_bytes = %v after everything was acknowledged, want 0", got)
			}
			return
		default:
		}
	}
}
