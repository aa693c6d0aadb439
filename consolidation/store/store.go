// Package store keeps consolidated interactions (one per call: the tracker's
// contact joined with the recorders' recordings) in bbolt, with secondary
// indexes for search.
//
// Layout: bucket "items" maps an interaction ID to a compact binary record
// of the searchable fields followed by the interaction as JSON. Each index
// bucket (time, agent, team, queue, direction, status, tag, call SID, task
// SID, INUM, customer number) holds keys "<field>\x00<8-byte inverted start><id>"
// whose value is a 10-byte summary (duration, direction and status codes),
// so one field's entries iterate newest first, a start range is a key range,
// and most residual filters are checked without reading the record. See
// numberFields for the customer-number index and Search for the planner.
package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"callrec"
)

// Completeness statuses of an interaction.
const (
	StatusComplete     = "complete"      // every expected recording is complete
	StatusPartial      = "partial"       // some audio is missing
	StatusInterrupted  = "interrupted"   // a recording ended without Twilio's stop
	StatusRecording    = "recording"     // a recording is still being written
	StatusMissingAudio = "missing_audio" // the call has no recording at all
)

// Interaction is one consolidated call.
type Interaction struct {
	// ID is the task SID, or "call:"+CallSID when the call had no task.
	ID            string `json:"id"`
	TaskSID       string `json:"task_sid,omitempty"`
	CallSID       string `json:"call_sid,omitempty"`
	ConferenceSID string `json:"conference_sid,omitempty"`
	Direction     string `json:"direction,omitempty"` // inbound / outbound
	From          string `json:"from,omitempty"`
	To            string `json:"to,omitempty"`
	Queue         string `json:"queue,omitempty"`
	// Agents are the agent extensions that took part, in order.
	Agents []string `json:"agents,omitempty"`
	// Teams are the teams of those agents. Put drops empty names and
	// duplicates, keeping the first occurrence's order.
	Teams      []string       `json:"teams,omitempty"`
	Start      time.Time      `json:"start"`
	End        time.Time      `json:"end,omitzero"`
	DurationMS int64          `json:"duration_ms"`
	INUMs      []callrec.INUM `json:"inums,omitempty"`
	// Status is one of the Status constants.
	Status  string    `json:"status"`
	Tags    []string  `json:"tags,omitempty"`
	Updated time.Time `json:"updated"`
	// Segments are the agents' parts of the call, each matched to the
	// recording that covers it (not indexed).
	Segments []Segment `json:"segments,omitempty"`
	// Replicas groups the recordings that are copies of one stream, written
	// by two recorders at once (dual recording), and names the one to play
	// (not indexed). Their INUMs are in INUMs as well.
	Replicas []ReplicaSet `json:"replicas,omitempty"`
	// Gaps are the stretches of the call no recording holds because a
	// failed stream was replaced by a new one (not indexed).
	Gaps []RestartGap `json:"gaps,omitempty"`
	// GapMS is the total length of Gaps: audio known to be lost.
	GapMS int64 `json:"gap_ms,omitempty"`
}

// ReplicaSet is one stream recorded by two recorders at once: its replicas
// are full recordings of the same audio, not consecutive parts.
type ReplicaSet struct {
	StreamSID string    `json:"stream_sid"`
	Replicas  []Replica `json:"replicas"` // by replica number
	// Preferred is the recording to play: the first of the best replica
	// (complete, then partial, then still recording, then interrupted; on
	// a tie the lower replica number).
	Preferred callrec.INUM `json:"preferred"`
}

// Replica is one recorder's copy of a stream: its recording, followed by
// the recordings continuing it after a recorder failover.
type Replica struct {
	Replica int            `json:"replica"`
	INUMs   []callrec.INUM `json:"inums"`
	// Status is the replica's completeness, one of the Status constants
	// but missing_audio.
	Status string `json:"status"`
}

// GapStreamRestart is the cause of a RestartGap: the stream failed and the
// tracker started a replacement stream.
const GapStreamRestart = "stream_restart"

// RestartGap is audio lost between the end of a failed stream's recording
// and the start of its replacement's, measured on the recordings' audio:
// from the failed recording's last sample (its stream start + audio offset
// + audio duration) to the replacement's first sample. Never negative.
type RestartGap struct {
	FromINUM      callrec.INUM `json:"from_inum"`
	ToINUM        callrec.INUM `json:"to_inum"`
	FromStreamSID string       `json:"from_stream_sid,omitempty"`
	ToStreamSID   string       `json:"to_stream_sid,omitempty"`
	Start         time.Time    `json:"start"`
	End           time.Time    `json:"end"`
	DurationMS    int64        `json:"duration_ms"`
	Cause         string       `json:"cause"` // GapStreamRestart
}

// Segment is one agent session of a call: an agent's connection from answer
// to wrap-up (or end), matched by agent extension and time to the recording
// that covers it. A segment no recording covers has Recorded false and no
// INUM: shown as missing, never guessed.
type Segment struct {
	Agent          string       `json:"agent"` // agent extension (Flex login)
	Team           string       `json:"team,omitempty"`
	ReservationSID string       `json:"reservation_sid,omitempty"`
	WorkerSID      string       `json:"worker_sid,omitempty"`
	Start          time.Time    `json:"start"`
	End            time.Time    `json:"end,omitzero"`
	Recorded       bool         `json:"recorded"`
	INUM           callrec.INUM `json:"inum,omitempty"` // the recording covering Start
	OffsetMS       int64        `json:"offset_ms"`      // Start's position in that recording's audio
}

// Store is an interaction store backed by one bbolt file. It is safe for
// concurrent use.
type Store struct {
	db *bolt.DB
}

// Open opens (creating if needed) the store at path.
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: init %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the database file.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Put inserts or replaces an interaction, moving its index entries.
func (s *Store) Put(ctx context.Context, in Interaction) error {
	return s.PutMany(ctx, []Interaction{in})
}

// PutMany upserts interactions in one transaction. When an ID occurs more
// than once the last occurrence wins.
func (s *Store) PutMany(ctx context.Context, ins []Interaction) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: put: %w", err)
	}
	last := make(map[string]int, len(ins))
	recs := make([]*Interaction, len(ins))
	for i := range ins {
		in := ins[i]
		if err := normalise(&in); err != nil {
			return err
		}
		recs[i] = &in
		last[in.ID] = i
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		items := tx.Bucket(bucketItems)
		var dels, puts []indexEntry
		var sums [][]byte
		for i, in := range recs {
			if last[in.ID] != i {
				continue
			}
			if old := items.Get([]byte(in.ID)); old != nil {
				mp, _, err := splitValue(old)
				if err != nil {
					return fmt.Errorf("%s: %w", in.ID, err)
				}
				om, oinv, err := decodeMeta(mp)
				if err != nil {
					return fmt.Errorf("%s: %w", in.ID, err)
				}
				dels = append(dels, om.entries(in.ID, oinv)...)
			}
			m := metaOf(in)
			sum := summary(m)
			for _, e := range m.entries(in.ID, invStart(in.Start)) {
				puts = append(puts, e)
				sums = append(sums, sum)
			}
			js, err := json.Marshal(in)
			if err != nil {
				return fmt.Errorf("%s: %w", in.ID, err)
			}
			mb := m.encode()
			v := binary.AppendUvarint(make([]byte, 0, 4+len(mb)+len(js)), uint64(len(mb)))
			v = append(append(v, mb...), js...)
			if err := items.Put([]byte(in.ID), v); err != nil {
				return fmt.Errorf("%s: %w", in.ID, err)
			}
		}
		for _, e := range dels {
			if err := tx.Bucket(e.bucket).Delete(e.key); err != nil {
				return err
			}
		}
		// Insert in key order per bucket: bbolt is much faster that way.
		order := make([]int, len(puts))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int {
			if c := strings.Compare(string(puts[a].bucket), string(puts[b].bucket)); c != 0 {
				return c
			}
			return strings.Compare(string(puts[a].key), string(puts[b].key))
		})
		var b *bolt.Bucket
		var bname []byte
		for _, i := range order {
			e := puts[i]
			if b == nil || string(bname) != string(e.bucket) {
				b, bname = tx.Bucket(e.bucket), e.bucket
			}
			if err := b.Put(e.key, sums[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: put: %w", err)
	}
	return nil
}

// normalise fills the ID and duration when derivable and rejects what the
// key layout cannot hold.
func normalise(in *Interaction) error {
	if in.ID == "" {
		switch {
		case in.TaskSID != "":
			in.ID = in.TaskSID
		case in.CallSID != "":
			in.ID = "call:" + in.CallSID
		default:
			return callrec.Errorf(callrec.EINVALID, "interaction has no id, task SID or call SID")
		}
	}
	if in.DurationMS == 0 && in.End.After(in.Start) {
		in.DurationMS = in.End.Sub(in.Start).Milliseconds()
	}
	fields := []string{in.ID, in.Direction, in.Queue, in.Status, in.CallSID, in.TaskSID}
	fields = append(append(append(fields, in.Agents...), in.Tags...), in.Teams...)
	for _, f := range fields {
		if strings.IndexByte(f, 0) >= 0 {
			return callrec.Errorf(callrec.EINVALID, "interaction %q: NUL byte in an indexed field", in.ID)
		}
	}
	in.Teams = uniqueNonEmpty(in.Teams)
	return nil
}

// uniqueNonEmpty returns ss without empty strings and repeats, in first
// occurrence order. It returns ss itself when there is nothing to drop and
// never modifies it: the caller's slice is shared.
func uniqueNonEmpty(ss []string) []string {
	for i, s := range ss {
		if s == "" || slices.Contains(ss[:i], s) {
			out := slices.Clone(ss[:i])
			for _, s := range ss[i+1:] {
				if s != "" && !slices.Contains(out, s) {
					out = append(out, s)
				}
			}
			if len(out) == 0 {
				return nil
			}
			return out
		}
	}
	return ss
}

// Get returns the interaction with the given ID (ENOTFOUND if none).
func (s *Store) Get(ctx context.Context, id string) (Interaction, error) {
	var in Interaction
	if err := ctx.Err(); err != nil {
		return in, fmt.Errorf("store: get: %w", err)
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		return getTx(tx, id, &in)
	})
	return in, err
}

func getTx(tx *bolt.Tx, id string, in *Interaction) error {
	v := tx.Bucket(bucketItems).Get([]byte(id))
	if v == nil {
		return callrec.Errorf(callrec.ENOTFOUND, "no interaction %q", id)
	}
	_, js, err := splitValue(v)
	if err == nil {
		err = json.Unmarshal(js, in)
	}
	if err != nil {
		return fmt.Errorf("store: get %s: %w", id, errors.Join(errCorrupt, err))
	}
	return nil
}
