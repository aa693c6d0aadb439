// Package eventadapter is the Twilio Event Streams adapter: it reads
// CloudEvents from Amazon Kinesis or from the Event Streams webhook sink,
// decodes TaskRouter events into callrec.CTIEvent, drops duplicates by event
// id (a bounded, persisted window: Event Streams redelivers for hours), and
// hands each event to the tracker (a callrec.EventSink).
package eventadapter

import (
	"context"
	"time"
)

// Record is one raw record from a source: the UTF-8 JSON of one CloudEvent
// (a Kinesis record) or of a JSON array of CloudEvents (a webhook request).
type Record struct {
	Data    []byte
	Origin  string    // where it came from, for logs: "kinesis:<stream>/<shard>/<sequence>", "webhook"
	Arrived time.Time // when the source received it (Kinesis: approximate arrival)
}

// Handler processes records. A source calls it with the records of one
// batch in order and saves its position (checkpoint) only after it returns
// nil; an error makes the source retry the batch later (at-least-once).
type Handler func(ctx context.Context, recs []Record) error

// Source delivers records to a Handler until ctx is done.
type Source interface {
	Run(ctx context.Context, h Handler) error
}

// Deduper remembers the event ids already handled, within a bounded window.
type Deduper interface {
	// Seen reports, for each id, whether it was remembered.
	Seen(ctx context.Context, ids []string) ([]bool, error)
	// Remember records ids as handled at the given time.
	Remember(ctx context.Context, ids []string, at time.Time) error
}

// CheckpointStore keeps one Kinesis checkpoint per shard.
type CheckpointStore interface {
	// Checkpoint returns the last processed sequence number of a shard ("" if
	// none) and whether the shard was finished (read to its end after a
	// reshard closed it).
	Checkpoint(ctx context.Context, stream, shard string) (seq string, finished bool, err error)
	// SaveCheckpoint records the last processed sequence number of a shard.
	SaveCheckpoint(ctx context.Context, stream, shard, seq string) error
	// FinishShard records that a closed shard was read to its end, so its
	// children may start.
	FinishShard(ctx context.Context, stream, shard string) error
}
