package kinesis

import (
	"context"
	"fmt"
	"sync"

	"callrec/eventadapter"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// shardInfo is one listed shard.
type shardInfo struct {
	id      string
	parents []string // ParentShardId, AdjacentParentShardId
	closed  bool     // has an ending sequence number (a reshard closed it)
}

// coordinator decides which shards may be read; it is used by Run's
// goroutine only.
type coordinator struct {
	src      *Source
	started  map[string]bool // a reader was started
	finished map[string]bool // read to its end (by a reader or an earlier run)
	skipped  map[string]bool // closed before a "latest" start: never read
	done     chan string     // readers send the shard they finished
}

// startReady starts a reader for every shard that is not started, not
// finished, and whose listed parents are finished (or skipped).
func (co *coordinator) startReady(ctx context.Context, shards []shardInfo, h eventadapter.Handler, wg *sync.WaitGroup) error {
	s := co.src
	listed := make(map[string]bool, len(shards))
	for _, sh := range shards {
		listed[sh.id] = true
	}
	checkpoints := map[string]string{}
	for _, sh := range shards {
		if co.started[sh.id] || co.finished[sh.id] || co.skipped[sh.id] {
			continue
		}
		seq, fin, err := s.store.Checkpoint(ctx, s.cfg.Stream, sh.id)
		if err != nil {
			return fmt.Errorf("checkpoint of %s: %w", sh.id, err)
		}
		if fin {
			co.finished[sh.id] = true
			continue
		}
		checkpoints[sh.id] = seq
	}
	// Parents usually come first, but loop until nothing changes so any
	// listing order works.
	for changed := true; changed; {
		changed = false
		for _, sh := range shards {
			seq, pending := checkpoints[sh.id]
			if !pending {
				continue
			}
			ready, parentRead := true, false
			for _, p := range sh.parents {
				switch {
				case co.finished[p]:
					parentRead = true
				case co.skipped[p] || !listed[p]: // not listed: past retention
				default:
					ready = false
				}
			}
			if !ready {
				continue
			}
			delete(checkpoints, sh.id)
			changed = true
			if seq == "" && sh.closed && !parentRead && s.cfg.StartPosition == StartLatest {
				// Nothing of it is new: its children start at latest too.
				co.skipped[sh.id] = true
				s.log.Info("kinesis: skip closed shard before latest start", "shard", sh.id)
				continue
			}
			pos := co.position(seq, parentRead)
			co.started[sh.id] = true
			r := &reader{src: s, shard: sh.id, start: pos, done: co.done}
			wg.Go(func() { r.run(ctx, h) })
		}
	}
	return nil
}

// position is where a shard without a finished mark starts: after its
// checkpoint, at the start of a child whose parent was read (so nothing
// between the parent's end and the child's start is lost), else at the
// configured start position.
func (co *coordinator) position(seq string, parentRead bool) startPos {
	cfg := co.src.cfg
	switch {
	case seq != "":
		return startPos{typ: types.ShardIteratorTypeAfterSequenceNumber, seq: seq}
	case parentRead && cfg.StartPosition == StartAtTimestamp:
		// Equivalent to TRIM_HORIZON for every record at or after the
		// start time, without replaying a long-lived child's older history.
		return startPos{typ: types.ShardIteratorTypeAtTimestamp, ts: cfg.StartTimestamp}
	case parentRead:
		return startPos{typ: types.ShardIteratorTypeTrimHorizon}
	case cfg.StartPosition == StartTrimHorizon:
		return startPos{typ: types.ShardIteratorTypeTrimHorizon}
	case cfg.StartPosition == StartAtTimestamp:
		return startPos{typ: types.ShardIteratorTypeAtTimestamp, ts: cfg.StartTimestamp}
	default:
		return startPos{typ: types.ShardIteratorTypeLatest}
	}
}
