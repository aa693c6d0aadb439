// Package cti benchmarks the CTI path of `callrec run` in process: Event
// Streams CloudEvents (JSON, in Kinesis-sized batches) → eventadapter
// (decode, dedupe) → tracker service (state machine, contact snapshots) →
// Stream Manager (persisted intents, executed by its Run loop) → Twilio
// REST client → a stateful Twilio fake served on 127.0.0.1.
//
//	go test -run='^$' -bench=. ./bench/cti/
//	go test -run='^$' -bench=Throughput -benchtime=1x ./bench/cti/ -cti.calls=5000
package cti_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"callrec"
	"callrec/eventadapter"
	"callrec/tracker/streams"
)

var (
	flagCalls       = flag.Int("cti.calls", 1000, "calls per iteration of BenchmarkEventsThroughput")
	flagConcurrency = flag.Int("cti.concurrency", 500, "calls in progress at once in the generated traffic")
)

// batchSize is the number of records per Handle call (a GetRecords answer).
const batchSize = 25

// drainTimeout bounds the wait for the Stream Manager to execute every order.
const drainTimeout = 5 * time.Minute

// feed hands each shard's batches to the adapter in order, the shards
// concurrently (the Kinesis source reads every shard in its own goroutine).
func feed(ctx context.Context, a *eventadapter.Adapter, shards [][]batch) error {
	if len(shards) == 1 {
		for _, b := range shards[0] {
			if err := a.Handle(ctx, b.Recs); err != nil {
				return err
			}
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, len(shards))
	for i, bs := range shards {
		wg.Go(func() {
			for _, b := range bs {
				if err := a.Handle(ctx, b.Recs); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// BenchmarkEventsThroughput measures events/s through Adapter.Handle and
// Service.HandleEvent for -cti.calls calls of 8 events, about
// -cti.concurrency of them in progress at once (their events interleaved),
// fed in batches of 25 records, from 1 or 4 shards. events/s counts the
// time until the last Handle returned; e2e-events/s the time until the
// Stream Manager had also sent every Start and Stop Stream request.
// store=bbolt is production (bbolt dedupe window, contacts and intents in
// files); store=memory shows what bbolt costs.
func BenchmarkEventsThroughput(b *testing.B) {
	for _, persistent := range []bool{true, false} {
		for _, shards := range []int{1, 4} {
			store := "memory"
			if persistent {
				store = "bbolt"
			}
			b.Run(fmt.Sprintf("store=%s/shards=%d", store, shards), func(b *testing.B) {
				benchThroughput(b, persistent, shards, *flagCalls, *flagConcurrency)
			})
		}
	}
}

func benchThroughput(b *testing.B, persistent bool, shards, calls, concurrency int) {
	e := newEnv(b, persistent)
	ctx := context.Background()
	var events, starts, stops int
	var ingest, e2e time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		w := generate(calls, concurrency, uint64(i))
		e.addCalls(w)
		bs := w.batches(shards, batchSize)
		s0, p0 := e.api.counts()
		b.StartTimer()

		t0 := time.Now()
		if err := feed(ctx, e.adapter, bs); err != nil {
			b.Fatal(err)
		}
		ingest += time.Since(t0)
		e.waitDrained(b, drainTimeout)
		e2e += time.Since(t0)

		events += len(w.Events)
		s1, p1 := e.api.counts()
		starts, stops = starts+s1-s0, stops+p1-p0
	}
	n := float64(calls * b.N)
	b.ReportMetric(float64(events)/ingest.Seconds(), "events/s")
	b.ReportMetric(float64(ingest.Nanoseconds())/float64(events), "ns/event")
	b.ReportMetric(float64(events)/e2e.Seconds(), "e2e-events/s")
	b.ReportMetric(float64(starts)/n, "starts/call")
	b.ReportMetric(float64(stops)/n, "stops/call")
}

// BenchmarkEventToStartLatency measures, per call, the time from handing
// the batch holding its reservation.accepted to the adapter until its Start
// Stream request reaches the Twilio fake, with production stores (bbolt)
// and Stream Manager defaults, under a steady offered load: batches of 25
// records handed at a fixed rate of events/s, from calls of which about
// `concurrent` are in progress at once. It reports the p50, p99 and max over
// all calls of all iterations; p50/p99-tracker-ms count from the moment
// the event itself reached the tracker service (after the adapter decoded
// the batch and the events before it in the batch were handled); behind-ms
// is how far the feed fell behind its schedule (the load was more than the
// path takes).
func BenchmarkEventToStartLatency(b *testing.B) {
	for _, tc := range []struct{ rate, concurrent, calls int }{
		{rate: 100, concurrent: 100, calls: 40},   // a large contact center: ~2,000 agents, 5-minute calls
		{rate: 500, concurrent: 300, calls: 150},  // 5× that
		{rate: 1500, concurrent: 500, calls: 400}, // half what one instance takes (see BenchmarkEventsThroughput)
		{rate: 2500, concurrent: 500, calls: 600}, // close to it
	} {
		b.Run(fmt.Sprintf("rate=%d/concurrent=%d", tc.rate, tc.concurrent), func(b *testing.B) {
			benchLatency(b, tc.rate, tc.concurrent, tc.calls)
		})
	}
}

func benchLatency(b *testing.B, rate, concurrent, calls int) {
	e := newEnv(b, true)
	ctx := context.Background()
	var lat, fromSink []time.Duration
	var behind time.Duration
	missing, events := 0, 0
	var elapsed time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		w := generate(calls, concurrent, uint64(i))
		e.addCalls(w)
		bs := w.batches(1, batchSize)[0]
		handed := make(map[int]time.Time, calls)
		b.StartTimer()

		t0 := time.Now()
		sent := 0
		for _, bt := range bs {
			due := t0.Add(time.Duration(float64(sent) / float64(rate) * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
			now := time.Now()
			behind = max(behind, now.Sub(due))
			for _, c := range bt.Accepted {
				handed[c] = now
			}
			if err := e.adapter.Handle(ctx, bt.Recs); err != nil {
				b.Fatal(err)
			}
			sent += len(bt.Recs)
		}
		elapsed += time.Since(t0)
		e.waitDrained(b, drainTimeout)
		events += sent

		for c, at := range handed {
			started, ok := e.api.startedAt(w.Calls[c].StreamName())
			if !ok {
				missing++
				continue
			}
			lat = append(lat, started.Sub(at))
			if sunk, ok := e.sink.acceptedAt(w.Calls[c].TaskSID); ok {
				fromSink = append(fromSink, started.Sub(sunk))
			}
		}
	}
	b.StopTimer()
	if len(lat) == 0 {
		b.Fatal("no Start Stream request arrived")
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(percentile(lat, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(lat, 0.99)), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	if len(fromSink) > 0 {
		slices.Sort(fromSink)
		b.ReportMetric(ms(percentile(fromSink, 0.50)), "p50-tracker-ms")
		b.ReportMetric(ms(percentile(fromSink, 0.99)), "p99-tracker-ms")
	}
	b.ReportMetric(ms(behind), "behind-ms")
	b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(missing), "missing-starts")
}

// percentile returns the q-quantile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// TestGeneratorDecodes checks the harness: every generated CloudEvent
// decodes to the event meant, and a handful of calls through the whole
// path (bbolt and memory stores, 2 shards) give exactly one Start and one
// Stop Stream request each, none more when the batches are redelivered.
func TestGeneratorDecodes(t *testing.T) {
	const calls = 6
	w := generate(calls, 3, 1)
	if len(w.Events) != calls*perCall {
		t.Fatalf("%d events, want %d", len(w.Events), calls*perCall)
	}
	ids := map[string]bool{}
	perType := map[callrec.CTIEventType]int{}
	for i, g := range w.Events {
		if i > 0 && g.At < w.Events[i-1].At {
			t.Errorf("event %d at %v before event %d at %v", i, g.At, i-1, w.Events[i-1].At)
		}
		ev, err := eventadapter.Decode(g.Data)
		if err != nil {
			t.Fatalf("event %d (%s): %v", i, g.Type, err)
		}
		c := w.Calls[g.Call]
		if ev.Type != g.Type || ev.TaskSID != c.TaskSID || ev.AccountSID != accountSID || ev.TaskChannel != "voice" {
			t.Errorf("event %d: type %s task %s account %s channel %s, want %s %s", i, ev.Type, ev.TaskSID, ev.AccountSID, ev.TaskChannel, g.Type, c.TaskSID)
		}
		if ids[ev.ID] {
			t.Errorf("event %d: id %s repeated", i, ev.ID)
		}
		ids[ev.ID] = true
		perType[ev.Type]++
		if ev.Task.CallSID != c.CustomerLeg || ev.Task.From != c.From || ev.Task.Direction != "inbound" {
			t.Errorf("event %d: task attributes %+v", i, ev.Task)
		}
		if want := g.Type != callrec.EventTaskCreated && g.Type != callrec.EventReservationCreated &&
			g.Type != callrec.EventReservationAccepted; want != (ev.Task.Conference != nil) {
			t.Errorf("event %d (%s): conference %+v", i, g.Type, ev.Task.Conference)
		} else if want && (ev.Task.Conference.SID != c.ConferenceSID || ev.Task.Conference.Participants["worker"] != c.AgentLeg) {
			t.Errorf("event %d: conference %+v", i, ev.Task.Conference)
		}
		if isRes := ev.ReservationSID != ""; isRes {
			if ev.ReservationSID != c.ReservationSID || ev.WorkerSID != c.WorkerSID || ev.AgentExtension() != c.WorkerName ||
				ev.Worker.Email != c.WorkerName || ev.ReservationVersion < 0 {
				t.Errorf("event %d: reservation %s v%d worker %s %s %+v", i, ev.ReservationSID, ev.ReservationVersion, ev.WorkerSID, ev.WorkerName, ev.Worker)
			}
		} else if g.Type[:4] != "task" {
			t.Errorf("event %d (%s): no reservation", i, g.Type)
		}
		if ev.Time.IsZero() || ev.TaskVersion < 1 {
			t.Errorf("event %d: time %v task version %d", i, ev.Time, ev.TaskVersion)
		}
	}
	for _, typ := range []callrec.CTIEventType{callrec.EventTaskCreated, callrec.EventReservationCreated,
		callrec.EventReservationAccepted, callrec.EventTaskUpdated, callrec.EventReservationWrapup,
		callrec.EventReservationCompleted, callrec.EventTaskWrapup, callrec.EventTaskCompleted} {
		if perType[typ] != calls {
			t.Errorf("%d %s events, want %d", perType[typ], typ, calls)
		}
	}

	for _, persistent := range []bool{true, false} {
		t.Run(fmt.Sprintf("persistent=%v", persistent), func(t *testing.T) {
			e := newEnv(t, persistent)
			e.addCalls(w)
			bs := w.batches(2, 5)
			ctx := context.Background()
			if err := feed(ctx, e.adapter, bs); err != nil {
				t.Fatal(err)
			}
			e.waitDrained(t, 30*time.Second)
			if starts, stops := e.api.counts(); starts != calls || stops != calls {
				t.Errorf("%d Start and %d Stop Stream requests, want %d each", starts, stops, calls)
			}
			for _, c := range w.Calls {
				if _, ok := e.api.startedAt(c.StreamName()); !ok {
					t.Errorf("no Start Stream request for %s", c.StreamName())
				}
				for key, outcome := range map[string]string{streams.StartKey(c.StreamName()): "started", streams.StopKey(c.StreamName()): "stopped"} {
					in, ok, err := e.intents.Get(ctx, key)
					if err != nil || !ok || in.State != streams.Done || in.Outcome != outcome {
						t.Errorf("intent %s: %v %v state %s outcome %s (%s), want done %s", key, err, ok, in.State, in.Outcome, in.LastError, outcome)
					}
				}
				if ct, ok := e.svc.Contact(c.TaskSID); !ok || ct.Status != callrec.ContactEnded {
					t.Errorf("contact %s: %v status %s", c.TaskSID, ok, ct.Status)
				}
			}
			byName := map[string]bool{}
			for _, s := range e.fake.Streams() {
				byName[s.Name] = true
				if s.Status != "stopped" || s.Params["task_sid"] == "" || s.Track != "both_tracks" {
					t.Errorf("stream %s: status %s params %v track %s", s.Name, s.Status, s.Params, s.Track)
				}
			}
			if len(byName) != calls {
				t.Errorf("%d streams at the fake, want %d", len(byName), calls)
			}

			// Event Streams redelivers: nothing more may happen.
			if err := feed(ctx, e.adapter, bs); err != nil {
				t.Fatal(err)
			}
			e.waitDrained(t, 30*time.Second)
			if starts, stops := e.api.counts(); starts != calls || stops != calls {
				t.Errorf("after redelivery: %d Start and %d Stop Stream requests, want %d each", starts, stops, calls)
			}
		})
	}
}

// BenchmarkDecode is eventadapter.Decode alone on the generated events,
// for comparison with the whole path's ns/event.
func BenchmarkDecode(b *testing.B) {
	w := generate(100, 50, 1)
	size := 0
	for _, ev := range w.Events {
		size += len(ev.Data)
	}
	b.SetBytes(int64(size / len(w.Events)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := eventadapter.Decode(w.Events[i%len(w.Events)].Data); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(size/len(w.Events)), "bytes/event")
}
