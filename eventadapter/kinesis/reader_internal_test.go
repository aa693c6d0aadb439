package kinesis

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"callrec/eventadapter"
	"callrec/internal/callrectest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

// step is one scripted GetRecords answer of a shard.
type step struct {
	seqs []string // records, by sequence number (the data is the same)
	err  error
	end  bool // no next iterator: the shard is closed and read
}

// fakeAPI serves scripted shards; an exhausted script answers "no records".
type fakeAPI struct {
	mu     sync.Mutex
	shards []types.Shard
	script map[string][]step
	log    []string // "iterator <shard> <type> <seq>"
}

func (f *fakeAPI) ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &kinesis.ListShardsOutput{Shards: f.shards}, nil
}

func (f *fakeAPI) GetShardIterator(_ context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, fmt.Sprintf("iterator %s %s %s", *in.ShardId, in.ShardIteratorType, aws.ToString(in.StartingSequenceNumber)))
	return &kinesis.GetShardIteratorOutput{ShardIterator: in.ShardId}, nil
}

func (f *fakeAPI) GetRecords(_ context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	shard := *in.ShardIterator
	out := &kinesis.GetRecordsOutput{NextShardIterator: &shard, MillisBehindLatest: aws.Int64(0)}
	steps := f.script[shard]
	if len(steps) == 0 {
		return out, nil
	}
	st := steps[0]
	f.script[shard] = steps[1:]
	if st.err != nil {
		return nil, st.err
	}
	now := time.Now()
	for _, seq := range st.seqs {
		out.Records = append(out.Records, types.Record{Data: []byte(seq), SequenceNumber: aws.String(seq), ApproximateArrivalTimestamp: &now})
	}
	if st.end {
		out.NextShardIterator = nil
	}
	return out, nil
}

func (f *fakeAPI) iterators() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

// memStore is an in-memory CheckpointStore.
type memStore struct {
	mu       sync.Mutex
	seq      map[string]string
	finished map[string]bool
}

func newMemStore() *memStore {
	return &memStore{seq: map[string]string{}, finished: map[string]bool{}}
}

func (m *memStore) Checkpoint(_ context.Context, _, shard string) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seq[shard], m.finished[shard], nil
}

func (m *memStore) SaveCheckpoint(_ context.Context, _, shard, seq string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq[shard] = seq
	return nil
}

func (m *memStore) FinishShard(_ context.Context, _, shard string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.finished[shard] = true
	return nil
}

func shard(id, parent string, closed bool) types.Shard {
	sh := types.Shard{ShardId: aws.String(id), SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("0")}}
	if parent != "" {
		sh.ParentShardId = aws.String(parent)
	}
	if closed {
		sh.SequenceNumberRange.EndingSequenceNumber = aws.String("9")
	}
	return sh
}

// runFake runs a Source on api until cond holds; it returns the batches
// the handler got, as "shard:seq,seq".
func runFake(t *testing.T, cfg Config, api *fakeAPI, store eventadapter.CheckpointStore, reg *prometheus.Registry, cond func([]string) bool) []string {
	t.Helper()
	cfg.Stream, cfg.PollInterval, cfg.ShardSyncInterval = "s", 5*time.Millisecond, 20*time.Millisecond
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	var r prometheus.Registerer // a nil *Registry must stay a nil interface
	if reg != nil {
		r = reg
	}
	m, err := newMetrics(r)
	if err != nil {
		t.Fatal(err)
	}
	src := &Source{cfg: cfg, api: api, store: store, log: callrectest.Logger(t), metrics: m}
	var (
		mu      sync.Mutex
		batches []string
	)
	h := func(_ context.Context, recs []eventadapter.Record) error {
		var seqs []string
		for _, r := range recs {
			parts := strings.Split(r.Origin, "/")
			seqs = append(seqs, parts[len(parts)-1])
		}
		sh := strings.Split(recs[0].Origin, "/")[1]
		mu.Lock()
		batches = append(batches, sh+":"+strings.Join(seqs, ","))
		mu.Unlock()
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- src.Run(ctx, h) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		done := cond(batches)
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("timed out; batches %v, iterators %v", batches, api.iterators())
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("Run: %v", err)
	}
	return batches
}

func TestReaderRetriesAndExpiredIterator(t *testing.T) {
	api := &fakeAPI{
		shards: []types.Shard{shard("s0", "", false)},
		script: map[string][]step{"s0": {
			{err: &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}},
			{err: &types.LimitExceededException{Message: aws.String("limit")}},
			{seqs: []string{"1", "2"}},
			{err: &types.ExpiredIteratorException{Message: aws.String("expired")}},
			{seqs: []string{"3"}, end: true},
		}},
	}
	store := newMemStore()
	reg := prometheus.NewRegistry()
	got := runFake(t, Config{StartPosition: StartTrimHorizon}, api, store, reg, func([]string) bool {
		_, fin, _ := store.Checkpoint(context.Background(), "s", "s0")
		return fin
	})
	if diff := cmp.Diff([]string{"s0:1,2", "s0:3"}, got); diff != "" {
		t.Errorf("batches (-want +got):\n%s", diff)
	}
	want := []string{"iterator s0 TRIM_HORIZON ", "iterator s0 AFTER_SEQUENCE_NUMBER 2"}
	if diff := cmp.Diff(want, api.iterators()); diff != "" {
		t.Errorf("iterators (-want +got):\n%s", diff)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	retries := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "callrec_kinesis_retries_total" {
			for _, m := range mf.GetMetric() {
				retries[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if diff := cmp.Diff(map[string]float64{reasonThroughput: 1, reasonLimit: 1, reasonExpired: 1}, retries); diff != "" {
		t.Errorf("retries (-want +got):\n%s", diff)
	}
}

func TestLatestSkipsClosedShardsWithoutCheckpoint(t *testing.T) {
	api := &fakeAPI{
		shards: []types.Shard{shard("p", "", true), shard("c1", "p", false), shard("c2", "p", false)},
		script: map[string][]step{"p": {{seqs: []string{"old"}, end: true}}, "c1": {{seqs: []string{"new"}}}},
	}
	got := runFake(t, Config{}, api, newMemStore(), nil, func(b []string) bool { return len(b) > 0 })
	if diff := cmp.Diff([]string{"c1:new"}, got); diff != "" {
		t.Errorf("batches (-want +got):\n%s", diff)
	}
	for _, it := range api.iterators() {
		if !strings.HasSuffix(it, " LATEST ") || strings.HasPrefix(it, "iterator p ") {
			t.Errorf("iterator %q: want only the children, at LATEST", it)
		}
	}
}

func TestChildAfterCheckpointedParent(t *testing.T) {
	api := &fakeAPI{
		shards: []types.Shard{shard("p", "", true), shard("c1", "p", false), shard("c2", "p", false)},
		script: map[string][]step{
			"p":  {{seqs: []string{"p6"}, end: true}},
			"c1": {{seqs: []string{"c1a"}}},
			"c2": {{seqs: []string{"c2a"}}},
		},
	}
	store := newMemStore()
	if err := store.SaveCheckpoint(context.Background(), "s", "p", "p5"); err != nil {
		t.Fatal(err)
	}
	got := runFake(t, Config{}, api, store, nil, func(b []string) bool { return len(b) == 3 })
	if len(got) != 3 || got[0] != "p:p6" {
		t.Errorf("batches %v: want p:p6 first, then both children", got)
	}
	its := api.iterators()
	if len(its) != 3 || its[0] != "iterator p AFTER_SEQUENCE_NUMBER p5" {
		t.Fatalf("iterators %v: want the parent after its checkpoint first", its)
	}
	for _, it := range its[1:] {
		if !strings.HasSuffix(it, " TRIM_HORIZON ") {
			t.Errorf("iterator %q: a child of a read parent starts at TRIM_HORIZON", it)
		}
	}
}
