package kinesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"callrec/eventadapter"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// startPos is a shard iterator position.
type startPos struct {
	typ types.ShardIteratorType
	seq string    // AFTER_SEQUENCE_NUMBER
	ts  time.Time // AT_TIMESTAMP
}

// busyPoll is the wait between GetRecords calls while a shard is behind:
// Kinesis allows 5 calls per second per shard.
const busyPoll = 200 * time.Millisecond

// reader reads one shard until its end or until ctx is done.
type reader struct {
	src     *Source
	shard   string
	start   startPos
	lastSeq string      // last checkpointed sequence number of this run
	done    chan string // gets shard once it is finished
}

func (r *reader) run(ctx context.Context, h eventadapter.Handler) {
	s := r.src
	log := s.log.With("shard", r.shard)
	log.Info("kinesis: reading shard", "from", r.start.typ, "after", r.start.seq)
	iter, ok := r.iterator(ctx)
	attempt := 0
	for ok {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		out, err := s.api.GetRecords(cctx, &kinesis.GetRecordsInput{ShardIterator: &iter, Limit: &s.cfg.MaxRecords})
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			reason := retryReason(err)
			s.metrics.retries.WithLabelValues(reason).Inc()
			if reason == reasonExpired {
				log.Info("kinesis: shard iterator expired; resuming from the checkpoint", "after", r.lastSeq)
				if attempt == 0 || sleep(ctx, backoff(attempt)) {
					iter, ok = r.iterator(ctx)
				} else {
					ok = false
				}
				attempt++
				continue
			}
			log.Warn("kinesis: get records", "err", err, "reason", reason, "attempt", attempt+1)
			ok = sleep(ctx, backoff(attempt))
			attempt++
			continue
		}
		attempt = 0
		if out.MillisBehindLatest != nil {
			s.metrics.behind.WithLabelValues(r.shard).Set(float64(*out.MillisBehindLatest))
		}
		if len(out.Records) > 0 {
			if !r.deliver(ctx, h, out.Records, log) {
				return
			}
		}
		if out.NextShardIterator == nil {
			r.finish(ctx, log)
			return
		}
		iter = *out.NextShardIterator
		wait := s.cfg.PollInterval
		behind := out.MillisBehindLatest != nil && *out.MillisBehindLatest > 0
		if behind || len(out.Records) >= int(s.cfg.MaxRecords) { // catching up, maybe across a gap
			wait = min(wait, busyPoll)
		}
		ok = sleep(ctx, wait)
	}
}

// iterator gets a shard iterator at the last checkpoint of this run, or at
// the start position; it retries until it succeeds or ctx is done.
func (r *reader) iterator(ctx context.Context) (string, bool) {
	s := r.src
	in := &kinesis.GetShardIteratorInput{StreamName: &s.cfg.Stream, ShardId: &r.shard, ShardIteratorType: r.start.typ}
	switch {
	case r.lastSeq != "":
		in.ShardIteratorType, in.StartingSequenceNumber = types.ShardIteratorTypeAfterSequenceNumber, &r.lastSeq
	case r.start.typ == types.ShardIteratorTypeAfterSequenceNumber:
		in.StartingSequenceNumber = &r.start.seq
	case r.start.typ == types.ShardIteratorTypeAtTimestamp:
		in.Timestamp = &r.start.ts
	}
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		out, err := s.api.GetShardIterator(cctx, in)
		cancel()
		if err == nil && out.ShardIterator != nil {
			return *out.ShardIterator, true
		}
		if ctx.Err() != nil {
			return "", false
		}
		if err == nil {
			err = errors.New("no shard iterator in the response")
		}
		s.metrics.retries.WithLabelValues(retryReason(err)).Inc()
		s.log.Warn("kinesis: get shard iterator", "shard", r.shard, "err", err, "attempt", attempt+1)
		if !sleep(ctx, backoff(attempt)) {
			return "", false
		}
	}
}

// deliver hands the records to h until it accepts them, then saves the
// checkpoint. It reports false if ctx ended first.
func (r *reader) deliver(ctx context.Context, h eventadapter.Handler, in []types.Record, log *slog.Logger) bool {
	s := r.src
	recs := make([]eventadapter.Record, len(in))
	for i, rec := range in {
		recs[i] = eventadapter.Record{
			Data:   rec.Data,
			Origin: fmt.Sprintf("kinesis:%s/%s/%s", s.cfg.Stream, r.shard, deref(rec.SequenceNumber)),
		}
		if rec.ApproximateArrivalTimestamp != nil {
			recs[i].Arrived = *rec.ApproximateArrivalTimestamp
		}
	}
	for attempt := 0; ; attempt++ {
		err := h(ctx, recs)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return false
		}
		s.metrics.retries.WithLabelValues(reasonHandler).Inc()
		log.Warn("kinesis: handler failed; retrying the batch", "err", err, "records", len(recs), "attempt", attempt+1)
		if !sleep(ctx, backoff(attempt)) {
			return false
		}
	}
	last := deref(in[len(in)-1].SequenceNumber)
	if !r.retry(ctx, "save checkpoint", func() error {
		return s.store.SaveCheckpoint(ctx, s.cfg.Stream, r.shard, last)
	}) {
		return false
	}
	r.lastSeq = last
	s.metrics.records.Add(float64(len(recs)))
	return true
}

// finish marks the shard finished and tells the coordinator.
func (r *reader) finish(ctx context.Context, log *slog.Logger) {
	s := r.src
	if !r.retry(ctx, "finish shard", func() error {
		return s.store.FinishShard(ctx, s.cfg.Stream, r.shard)
	}) {
		return
	}
	s.metrics.behind.DeleteLabelValues(r.shard)
	log.Info("kinesis: shard finished")
	select {
	case r.done <- r.shard:
	case <-ctx.Done():
	}
}

// retry calls f until it succeeds or ctx is done.
func (r *reader) retry(ctx context.Context, what string, f func() error) bool {
	for attempt := 0; ; attempt++ {
		err := f()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		r.src.metrics.retries.WithLabelValues(reasonCheckpoint).Inc()
		r.src.log.Warn("kinesis: "+what, "shard", r.shard, "err", err, "attempt", attempt+1)
		if !sleep(ctx, backoff(attempt)) {
			return false
		}
	}
}

// retryReason classifies a Kinesis error for the retries metric.
func retryReason(err error) string {
	var (
		throughput *types.ProvisionedThroughputExceededException
		limit      *types.LimitExceededException
		expired    *types.ExpiredIteratorException
	)
	switch {
	case errors.As(err, &throughput):
		return reasonThroughput
	case errors.As(err, &limit):
		return reasonLimit
	case errors.As(err, &expired):
		return reasonExpired
	default:
		return reasonAPI
	}
}

func isNotFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
