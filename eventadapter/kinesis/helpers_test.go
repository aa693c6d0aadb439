package kinesis_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"callrec/eventadapter"
	"callrec/eventadapter/bolt"
	ekinesis "callrec/eventadapter/kinesis"
	"callrec/internal/callrectest"
	"callrec/internal/servicetest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/prometheus/client_golang/prometheus"
)

const streamName = "callrec-events"

// env is one test's kinesis-local with a fresh stream.
type env struct {
	t        *testing.T
	endpoint string
	client   *kinesis.Client
	stream   string
}

func newEnv(t *testing.T, shards int32) *env {
	t.Helper()
	endpoint := servicetest.StartKinesis(t)
	e := &env{t: t, endpoint: endpoint, client: servicetest.NewKinesisClient(t, endpoint), stream: streamName}
	ctx := context.Background()
	if _, err := e.client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: &e.stream, ShardCount: &shards}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	e.waitActive()
	return e
}

// waitActive polls until the stream is ACTIVE.
func (e *env) waitActive() {
	e.t.Helper()
	waitFor(e.t, 10*time.Second, "stream ACTIVE", func() bool {
		out, err := e.client.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: &e.stream})
		if err != nil {
			e.t.Fatalf("DescribeStreamSummary: %v", err)
		}
		return out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive
	})
}

// shards lists the stream's shards.
func (e *env) shards() []types.Shard {
	e.t.Helper()
	out, err := e.client.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: &e.stream})
	if err != nil {
		e.t.Fatalf("ListShards: %v", err)
	}
	return out.Shards
}

// delivery is one record as a Handler saw it, or as PutRecords placed it.
type delivery struct {
	Shard, Seq, Data string
}

// put puts records with the given data and random partition keys; it
// returns where they went, per shard in put order.
func (e *env) put(data ...string) map[string][]delivery {
	e.t.Helper()
	placed := map[string][]delivery{}
	for batch := range slices.Chunk(data, 500) {
		entries := make([]types.PutRecordsRequestEntry, len(batch))
		for i, d := range batch {
			entries[i] = types.PutRecordsRequestEntry{Data: []byte(d), PartitionKey: aws.String(fmt.Sprint(rand.Uint64()))}
		}
		out, err := e.client.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: &e.stream, Records: entries})
		if err != nil {
			e.t.Fatalf("PutRecords: %v", err)
		}
		if n := aws.ToInt32(out.FailedRecordCount); n > 0 {
			e.t.Fatalf("PutRecords: %d records failed", n)
		}
		for i, r := range out.Records {
			sh := aws.ToString(r.ShardId)
			placed[sh] = append(placed[sh], delivery{Shard: sh, Seq: aws.ToString(r.SequenceNumber), Data: batch[i]})
		}
	}
	return placed
}

// source starts a Source on the stream; the returned stop cancels it and
// checks that Run returned nil. stop also runs at cleanup.
func (e *env) source(cfg ekinesis.Config, store eventadapter.CheckpointStore, reg prometheus.Registerer, h eventadapter.Handler) (stop func()) {
	e.t.Helper()
	cfg.Stream, cfg.Endpoint = e.stream, e.endpoint
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 100 * time.Millisecond
	}
	if cfg.ShardSyncInterval == 0 {
		cfg.ShardSyncInterval = 300 * time.Millisecond
	}
	log := callrectest.Logger(e.t)
	src, err := ekinesis.New(context.Background(), cfg, store, log, reg)
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- src.Run(ctx, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					e.t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				e.t.Errorf("Run did not return within 10 s of cancel")
			}
		})
	}
	e.t.Cleanup(stop)
	return stop
}

// openStore opens a bolt store in the test's temp dir.
func openStore(t *testing.T) *bolt.Store {
	t.Helper()
	return openStoreAt(t, filepath.Join(t.TempDir(), "state.db"))
}

func openStoreAt(t *testing.T, path string) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// collector is a Handler that keeps what it accepted. before, if set, is
// called first with each batch; its error fails the call.
type collector struct {
	mu     sync.Mutex
	got    []delivery
	before func(batch []delivery) error
}

func (c *collector) handle(_ context.Context, recs []eventadapter.Record) error {
	batch := make([]delivery, len(recs))
	for i, r := range recs {
		batch[i] = parseOrigin(r)
		if r.Arrived.IsZero() {
			return fmt.Errorf("record %s without arrival time", r.Origin)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.before != nil {
		if err := c.before(batch); err != nil {
			return err
		}
	}
	c.got = append(c.got, batch...)
	return nil
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

// byShard returns the accepted records per shard, in delivery order.
func (c *collector) byShard() map[string][]delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return groupByShard(c.got)
}

func groupByShard(ds []delivery) map[string][]delivery {
	m := map[string][]delivery{}
	for _, d := range ds {
		m[d.Shard] = append(m[d.Shard], d)
	}
	return m
}

// merge merges per-shard lists, b after a.
func merge(a, b map[string][]delivery) map[string][]delivery {
	m := map[string][]delivery{}
	for _, src := range []map[string][]delivery{a, b} {
		for sh, ds := range src {
			m[sh] = append(m[sh], ds...)
		}
	}
	return m
}

func total(m map[string][]delivery) int {
	n := 0
	for _, ds := range m {
		n += len(ds)
	}
	return n
}

// parseOrigin splits "kinesis:<stream>/<shard>/<sequence>".
func parseOrigin(r eventadapter.Record) delivery {
	parts := strings.Split(strings.TrimPrefix(r.Origin, "kinesis:"+streamName+"/"), "/")
	d := delivery{Data: string(r.Data)}
	if len(parts) == 2 {
		d.Shard, d.Seq = parts[0], parts[1]
	} else {
		d.Shard = "bad origin " + r.Origin
	}
	return d
}

// waitCheckpoints waits until each shard's checkpoint is the sequence of
// its last expected record.
func waitCheckpoints(t *testing.T, store eventadapter.CheckpointStore, want map[string][]delivery) {
	t.Helper()
	waitFor(t, 20*time.Second, "checkpoints at the last records", func() bool {
		for sh, ds := range want {
			seq, _, err := store.Checkpoint(context.Background(), streamName, sh)
			if err != nil {
				t.Fatal(err)
			}
			if seq != ds[len(ds)-1].Seq {
				return false
			}
		}
		return true
	})
}

// waitFor polls cond until it is true, failing the test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%04d", prefix, i)
	}
	return out
}

// gauged reports the shards that have a millis-behind gauge in reg, i.e.
// whose reader has completed a GetRecords call.
func gauged(t *testing.T, reg *prometheus.Registry) map[string]bool {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() != "callrec_kinesis_millis_behind_latest" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "shard" {
					out[l.GetValue()] = true
				}
			}
		}
	}
	return out
}

// counter returns the value of a counter in reg with the given label.
func counter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" {
				return m.GetCounter().GetValue()
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
