package kinesis_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"callrec/eventadapter"
	ekinesis "callrec/eventadapter/kinesis"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

func TestMultiShardExactlyOnce(t *testing.T) {
	e := newEnv(t, 4)
	want := e.put(ids("ev", 200)...)
	if len(want) != 4 {
		t.Fatalf("records went to %d shards, want 4", len(want))
	}
	store := openStore(t)
	reg := prometheus.NewRegistry()
	var c collector
	stop := e.source(ekinesis.Config{StartPosition: ekinesis.StartTrimHorizon}, store, reg, c.handle)
	waitCheckpoints(t, store, want)
	stop()
	if diff := cmp.Diff(want, c.byShard()); diff != "" {
		t.Errorf("delivered per shard (-want +got):\n%s", diff)
	}
	if got := counter(t, reg, "callrec_kinesis_records_total", "", ""); got != 200 {
		t.Errorf("callrec_kinesis_records_total = %v, want 200", got)
	}
}

func TestRestartResumesFromCheckpoints(t *testing.T) {
	e := newEnv(t, 2)
	path := t.TempDir() + "/state.db"
	store := openStoreAt(t, path)
	first := e.put(ids("before", 60)...)
	var c1 collector
	stop := e.source(ekinesis.Config{StartPosition: ekinesis.StartTrimHorizon}, store, nil, c1.handle)
	waitCheckpoints(t, store, first)
	stop()
	if diff := cmp.Diff(first, c1.byShard()); diff != "" {
		t.Fatalf("first run (-want +got):\n%s", diff)
	}

	second := e.put(ids("after", 40)...)
	var c2 collector // same store, and trim_horizon: the checkpoints must win
	stop = e.source(ekinesis.Config{StartPosition: ekinesis.StartTrimHorizon}, store, nil, c2.handle)
	waitCheckpoints(t, store, second)
	stop()
	if diff := cmp.Diff(second, c2.byShard()); diff != "" {
		t.Errorf("second run: only the new records, once (-want +got):\n%s", diff)
	}
}

// finishLog wraps a CheckpointStore and logs, with handler batches, the
// order in which shards were finished.
type finishLog struct {
	eventadapter.CheckpointStore
	mu     sync.Mutex
	events []string // "finish <shard>" or "batch <shard>"
}

func (f *finishLog) FinishShard(ctx context.Context, stream, shard string) error {
	if err := f.CheckpointStore.FinishShard(ctx, stream, shard); err != nil {
		return err
	}
	f.add("finish " + shard)
	return nil
}

func (f *finishLog) add(ev string) {
	f.mu.Lock()
	f.events = append(f.events, ev)
	f.mu.Unlock()
}

func TestReshardFinishesParentsFirst(t *testing.T) {
	e := newEnv(t, 2)
	want := e.put(ids("pre", 100)...)
	store := &finishLog{CheckpointStore: openStore(t)}
	c := collector{before: func(batch []delivery) error {
		store.add("batch " + batch[0].Shard)
		return nil
	}}
	// A small MaxRecords keeps the parents busy while the reshard happens.
	e.source(ekinesis.Config{StartPosition: ekinesis.StartTrimHorizon, MaxRecords: 10}, store, nil, c.handle)
	waitFor(t, 10*time.Second, "first records", func() bool { return c.count() > 0 })

	var (
		wg     sync.WaitGroup
		during map[string][]delivery
	)
	wg.Go(func() {
		during = map[string][]delivery{}
		for chunk := range slices.Chunk(ids("during", 100), 10) {
			during = merge(during, e.put(chunk...))
		}
	})
	_, err := e.client.UpdateShardCount(context.Background(), &kinesis.UpdateShardCountInput{
		StreamName: &e.stream, TargetShardCount: aws.Int32(4), ScalingType: types.ScalingTypeUniformScaling,
	})
	if err != nil {
		t.Fatalf("UpdateShardCount: %v", err)
	}
	e.waitActive()
	wg.Wait()
	want = merge(want, during)
	want = merge(want, e.put(ids("post", 100)...))

	parents := map[string][]string{}
	for _, sh := range e.shards() {
		for _, p := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
			if p != nil {
				parents[*sh.ShardId] = append(parents[*sh.ShardId], *p)
			}
		}
	}
	if len(parents) == 0 {
		t.Fatal("no child shards after UpdateShardCount")
	}
	waitCheckpoints(t, store, want)
	waitFor(t, 10*time.Second, "parents finished", func() bool {
		for _, ps := range parents {
			for _, p := range ps {
				if _, fin, _ := store.Checkpoint(context.Background(), streamName, p); !fin {
					return false
				}
			}
		}
		return true
	})
	if diff := cmp.Diff(want, c.byShard()); diff != "" {
		t.Errorf("delivered per shard (-want +got):\n%s", diff)
	}
	store.mu.Lock()
	events := slices.Clone(store.events)
	store.mu.Unlock()
	for child, ps := range parents {
		first := slices.Index(events, "batch "+child)
		if first < 0 {
			continue // no record went to this child
		}
		for _, p := range ps {
			if fin := slices.Index(events, "finish "+p); fin < 0 || fin > first {
				t.Errorf("child %s got records (event %d) before its parent %s was finished (event %d)", child, first, p, fin)
			}
		}
	}
	if total(want) != 300 {
		t.Errorf("put %d records, want 300", total(want))
	}
}

func TestHandlerErrorRetriesSameRecords(t *testing.T) {
	e := newEnv(t, 2)
	want := e.put(ids("ev", 50)...)
	store := openStore(t)
	reg := prometheus.NewRegistry()
	var (
		failed   = map[string][]delivery{} // shard → batch that failed, waiting for its retry
		accepted = map[string]string{}     // shard → last accepted sequence number
		calls    int
	)
	c := collector{before: func(batch []delivery) error {
		calls++
		sh := batch[0].Shard
		cp, _, err := store.Checkpoint(context.Background(), streamName, sh)
		if err != nil {
			return err
		}
		if cp != accepted[sh] {
			t.Errorf("shard %s: checkpoint %q at a handler call, want the last accepted %q", sh, cp, accepted[sh])
		}
		if prev, ok := failed[sh]; ok {
			if diff := cmp.Diff(prev, batch); diff != "" {
				t.Errorf("shard %s: retry after an error got other records (-failed +retried):\n%s", sh, diff)
			}
			delete(failed, sh)
			accepted[sh] = batch[len(batch)-1].Seq
			return nil
		}
		failed[sh] = batch
		return errors.New("handler: first try fails")
	}}
	stop := e.source(ekinesis.Config{StartPosition: ekinesis.StartTrimHorizon, MaxRecords: 7}, store, reg, c.handle)
	waitCheckpoints(t, store, want)
	stop()
	if diff := cmp.Diff(want, c.byShard()); diff != "" {
		t.Errorf("accepted per shard (-want +got):\n%s", diff)
	}
	retries := counter(t, reg, "callrec_kinesis_retries_total", "reason", "handler")
	c.mu.Lock()
	defer c.mu.Unlock()
	if retries == 0 || float64(calls) != 2*retries {
		t.Errorf("%d handler calls and %v handler retries; want every batch failed once", calls, retries)
	}
}

func TestStartLatest(t *testing.T) {
	e := newEnv(t, 2)
	e.put(ids("old", 20)...)
	reg := prometheus.NewRegistry()
	store := openStore(t)
	var c collector
	stop := e.source(ekinesis.Config{}, store, reg, c.handle) // latest is the default
	waitFor(t, 10*time.Second, "both shard readers polling", func() bool { return len(gauged(t, reg)) == 2 })
	want := e.put(ids("new", 20)...)
	waitCheckpoints(t, store, want)
	stop()
	if diff := cmp.Diff(want, c.byShard()); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
}

func TestStartAtTimestamp(t *testing.T) {
	e := newEnv(t, 2)
	e.put(ids("old", 20)...)
	// Arrival times have millisecond precision: start on the next
	// millisecond and put the next records after it.
	at := time.Now().Truncate(time.Millisecond).Add(time.Millisecond)
	waitFor(t, time.Second, "the start time", func() bool { return time.Now().After(at) })
	want := e.put(ids("mid", 20)...)
	store := openStore(t)
	var c collector
	e.source(ekinesis.Config{StartPosition: ekinesis.StartAtTimestamp, StartTimestamp: at}, store, nil, c.handle)
	waitCheckpoints(t, store, want)
	more := e.put(ids("new", 20)...)
	waitCheckpoints(t, store, more)
	want = merge(want, more)
	if diff := cmp.Diff(want, c.byShard()); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
}

func TestConfigErrors(t *testing.T) {
	store := openStore(t)
	for _, cfg := range []ekinesis.Config{
		{},
		{Stream: "s", StartPosition: "earliest"},
		{Stream: "s", StartPosition: "at_timestamp"},
		{Stream: "s", MaxRecords: 20000},
	} {
		if _, err := ekinesis.New(context.Background(), cfg, store, nil, nil); err == nil {
			t.Errorf("New(%+v): want an error", cfg)
		}
	}
	if _, err := ekinesis.New(context.Background(), ekinesis.Config{Stream: "s", Endpoint: "http://127.0.0.1:1"}, nil, nil, nil); err == nil {
		t.Error("New without a store: want an error")
	}
}

func TestMissingStream(t *testing.T) {
	e := newEnv(t, 1)
	src, err := ekinesis.New(context.Background(), ekinesis.Config{Stream: "no-such-stream", Endpoint: e.endpoint}, openStore(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = src.Run(ctx, func(context.Context, []eventadapter.Record) error { return nil })
	if err == nil {
		t.Fatal("Run on a missing stream: want an error")
	}
	t.Log(fmt.Sprint(err))
}
