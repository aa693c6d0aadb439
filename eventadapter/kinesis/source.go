// Package kinesis is the Kinesis source of the Event Streams adapter: it
// polls every shard of a stream with GetRecords, finishes a parent shard
// before its children after a reshard, and checkpoints each shard after its
// Handler accepted a batch (at-least-once delivery, in order per shard).
package kinesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"callrec/eventadapter"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"
)

// api is the part of the Kinesis client a Source uses.
type api interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, opts ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, opts ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

// callTimeout bounds one Kinesis API call.
const callTimeout = 30 * time.Second

// Source reads a Kinesis stream; it implements eventadapter.Source.
type Source struct {
	cfg     Config
	api     api
	store   eventadapter.CheckpointStore
	log     *slog.Logger
	metrics *metrics
	running atomic.Bool
}

var _ eventadapter.Source = (*Source)(nil)

// New returns a Source of cfg.Stream that keeps its checkpoints in store.
// Its metrics are registered with reg (nil: not registered); log may be nil.
func New(ctx context.Context, cfg Config, store eventadapter.CheckpointStore, log *slog.Logger, reg prometheus.Registerer) (*Source, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if store == nil {
		return nil, errors.New("kinesis: nil CheckpointStore")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("kinesis: register metrics: %w", err)
	}
	client, err := newClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Source{
		cfg:     cfg,
		api:     client,
		store:   store,
		log:     log.With("stream", cfg.Stream),
		metrics: m,
	}, nil
}

// Run reads every shard and calls h with each non-empty batch, in order per
// shard, until ctx is done. A child shard of a reshard is read only after
// its parents were read to their end. Run returns nil once ctx is done and
// every shard reader has stopped; it returns an error if the stream does
// not exist when it starts.
func (s *Source) Run(ctx context.Context, h eventadapter.Handler) error {
	if h == nil {
		return errors.New("kinesis: nil Handler")
	}
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("kinesis: Source is already running")
	}
	defer s.running.Store(false)

	var wg sync.WaitGroup
	defer wg.Wait()
	co := &coordinator{
		src:      s,
		started:  map[string]bool{},
		finished: map[string]bool{},
		skipped:  map[string]bool{},
		done:     make(chan string),
	}
	tick := time.NewTimer(0)
	defer tick.Stop()
	listed, attempt := false, 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case id := <-co.done:
			co.finished[id] = true // look for its children at once
		case <-tick.C:
		}
		shards, err := s.listShards(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && !listed && isNotFound(err):
			return fmt.Errorf("kinesis: stream %s: %w", s.cfg.Stream, err)
		case err != nil:
			s.metrics.retries.WithLabelValues(reasonAPI).Inc()
			s.log.Warn("kinesis: list shards", "err", err, "attempt", attempt+1)
			tick.Reset(backoff(attempt))
			attempt++
			continue
		}
		listed = true
		if err := co.startReady(ctx, shards, h, &wg); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.metrics.retries.WithLabelValues(reasonCheckpoint).Inc()
			s.log.Warn("kinesis: read checkpoints", "err", err, "attempt", attempt+1)
			tick.Reset(backoff(attempt))
			attempt++
			continue
		}
		attempt = 0
		tick.Reset(s.cfg.ShardSyncInterval)
	}
}

// listShards lists every shard of the stream, open or closed.
func (s *Source) listShards(ctx context.Context) ([]shardInfo, error) {
	var shards []shardInfo
	in := &kinesis.ListShardsInput{StreamName: &s.cfg.Stream}
	for {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		out, err := s.api.ListShards(cctx, in)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("list shards: %w", err)
		}
		for _, sh := range out.Shards {
			if sh.ShardId == nil {
				continue
			}
			info := shardInfo{id: *sh.ShardId}
			if sh.ParentShardId != nil {
				info.parents = append(info.parents, *sh.ParentShardId)
			}
			if sh.AdjacentParentShardId != nil {
				info.parents = append(info.parents, *sh.AdjacentParentShardId)
			}
			if r := sh.SequenceNumberRange; r != nil && r.EndingSequenceNumber != nil {
				info.closed = true
			}
			shards = append(shards, info)
		}
		if out.NextToken == nil || *out.NextToken == "" {
			return shards, nil
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}
