// Package join consolidates the recorders' STARTED/STOPPED events and the
// tracker's contacts into one interaction per call, kept in the interaction
// store.
//
// Both inputs arrive at least once and in any order. The joiner keeps, per
// interaction ID, the latest contact and a summary of each recording (by
// INUM) in its own bbolt file, merges each update into that state with
// order-independent rules, recomputes the interaction from the whole state
// and upserts it into the store in the same call, so it is searchable as
// soon as NotifyRecording or Contact returns.
//
// Merge rules (each is a total order, so the result does not depend on the
// delivery order):
//   - contacts: higher TaskVersion, then a later status (queued < active <
//     wrapup < ended/abandoned), then the higher sum of connection versions,
//     then more connections; on a full tie the one already kept stays;
//   - recordings, per INUM: a stopped recording (state complete/interrupted
//     or a STOPPED event) beats a started one; then the later UpdatedAt; on a
//     tie the one already kept stays.
//
// A missing or late side is shown, never guessed: without a contact the
// agents come only from the recordings' explicit "agent" parameter and the
// interaction is tagged contact_missing.
//
// Recordings are judged per stream (see streams.go): the replicas of a
// dual-recorded stream are copies, so a stream is complete when one of its
// replicas is, and the call record names the replica to play; a stream
// replaced after a failure (restart_of) leaves a gap, measured from the
// end of the failed stream's audio to the start of the replacement's.
package join

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"callrec"
	"callrec/consolidation/store"
)

// Tags the joiner sets.
const (
	TagContactMissing   = "contact_missing"   // recordings exist but no contact was seen
	TagRecordingMissing = "recording_missing" // a monitored agent answered, the contact ended, no recording
	TagRecordingPending = "recording_pending" // the contact is live, no recording seen yet
	TagRestarted        = "restarted"         // a replacement stream was started after a stream failure
	TagNotRecorded      = "not_recorded"      // the contact ended without a monitored answered agent
)

// Custom parameters of a recording's stream.
const (
	ParamTaskSID        = "task_sid"
	ParamReservationSID = "reservation_sid"
	ParamWorkerSID      = "worker_sid"
	ParamAgent          = "agent"
	ParamStreamName     = "stream_name"
	ParamRestartOf      = "restart_of"
	ParamTeam           = "team"
)

var bucketState = []byte("join_state")

// RecSummary is what the join keeps of one recording.
type RecSummary struct {
	INUM           callrec.INUM           `json:"inum"`
	State          callrec.RecordingState `json:"state"`
	Stopped        bool                   `json:"stopped"` // a STOPPED event or a final state was seen
	EndReason      string                 `json:"end_reason,omitempty"`
	CallSID        string                 `json:"call_sid,omitempty"`
	StreamSID      string                 `json:"stream_sid,omitempty"`
	TaskSID        string                 `json:"task_sid,omitempty"`
	ReservationSID string                 `json:"reservation_sid,omitempty"`
	WorkerSID      string                 `json:"worker_sid,omitempty"`
	Agent          string                 `json:"agent,omitempty"`
	Team           string                 `json:"team,omitempty"`
	StreamName     string                 `json:"stream_name,omitempty"`
	RestartOf      string                 `json:"restart_of,omitempty"`
	PreviousINUM   callrec.INUM           `json:"previous_inum,omitempty"`
	StartedAt      time.Time              `json:"started_at,omitzero"`
	StoppedAt      time.Time              `json:"stopped_at,omitzero"`
	UpdatedAt      time.Time              `json:"updated_at,omitzero"`
	// Replica is the stream's replica number under dual recording (1 or
	// 2; 0 when one recorder writes the stream).
	Replica int `json:"replica,omitempty"`
	// CopySIDs are the stream SIDs of a merged (dual-stream) recording's
	// copies, in the order they joined.
	CopySIDs []string `json:"copy_sids,omitempty"`
	// StreamStartedAt, AudioOffsetMS and AudioDurationMS place the audio
	// in time: its first sample is at stream time AudioOffsetMS, its last
	// AudioDurationMS later (restart gaps are measured with them).
	StreamStartedAt time.Time `json:"stream_started_at,omitzero"`
	AudioOffsetMS   int64     `json:"audio_offset_ms,omitempty"`
	AudioDurationMS int64     `json:"audio_duration_ms,omitempty"`
}

// State is the joined state of one interaction, as persisted.
type State struct {
	ID         string                      `json:"id"`
	Contact    *callrec.Contact            `json:"contact,omitempty"`
	Recordings map[callrec.INUM]RecSummary `json:"recordings,omitempty"`
}

// Joiner joins recordings and contacts into interactions. It implements
// callrec.RecordingNotifier. It is safe for concurrent use.
type Joiner struct {
	st  *store.Store
	db  *bolt.DB
	log *slog.Logger
	mu  sync.Mutex // serialises read-merge-write of the state and the store upsert
	now func() time.Time
}

var _ callrec.RecordingNotifier = (*Joiner)(nil)

// New opens (creating if needed) the join state file at path and returns a
// joiner writing interactions into st. Close closes the state file (not st).
func New(st *store.Store, path string, log *slog.Logger) (*Joiner, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("join: open %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketState)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("join: init %s: %w", path, err)
	}
	return &Joiner{st: st, db: db, log: log, now: time.Now}, nil
}

// Close closes the join state file.
func (j *Joiner) Close() error {
	if err := j.db.Close(); err != nil {
		return fmt.Errorf("join: close: %w", err)
	}
	return nil
}

// NotifyRecording merges a recorder's STARTED or STOPPED event.
func (j *Joiner) NotifyRecording(ctx context.Context, ev callrec.RecordingEvent) error {
	r := ev.Recording
	if r.INUM == "" {
		return callrec.Errorf(callrec.EINVALID, "join: recording event without INUM")
	}
	p := r.Stream.CustomParameters
	id := p[ParamTaskSID]
	if id == "" {
		if r.Stream.CallSID == "" {
			return callrec.Errorf(callrec.EINVALID, "join: recording %s has neither task_sid nor call SID", r.INUM)
		}
		id = "call:" + r.Stream.CallSID
	}
	s := RecSummary{
		INUM: r.INUM, State: r.State, EndReason: r.EndReason,
		Stopped: ev.Type == callrec.RecordingStopped || (r.State != callrec.StateRecording && r.State != ""),
		CallSID: r.Stream.CallSID, StreamSID: r.Stream.StreamSID,
		TaskSID: p[ParamTaskSID], ReservationSID: p[ParamReservationSID], WorkerSID: p[ParamWorkerSID],
		Agent: p[ParamAgent], Team: p[ParamTeam], StreamName: p[ParamStreamName], RestartOf: p[ParamRestartOf],
		PreviousINUM: r.PreviousINUM,
		StartedAt:    r.StartedAt, StoppedAt: r.StoppedAt, UpdatedAt: r.UpdatedAt,
		Replica: r.Stream.Replica, StreamStartedAt: r.Stream.StartedAt,
		AudioOffsetMS: r.Audio.OffsetMS, AudioDurationMS: r.Audio.DurationMS,
	}
	for _, c := range r.Accounting.Copies {
		if c.StreamSID != "" && !slices.Contains(s.CopySIDs, c.StreamSID) {
			s.CopySIDs = append(s.CopySIDs, c.StreamSID)
		}
	}
	if s.Stopped && s.State == callrec.StateRecording {
		// A STOPPED event whose recording still says recording: the recorder
		// did not say how it ended, so do not claim it completed.
		s.State = callrec.StateInterrupted
	}
	return j.update(ctx, id, func(st *State) bool {
		old, ok := st.Recordings[s.INUM]
		if ok && !recBeats(s, old) {
			return false
		}
		if st.Recordings == nil {
			st.Recordings = map[callrec.INUM]RecSummary{}
		}
		st.Recordings[s.INUM] = s
		return true
	})
}

// Contact merges a tracker contact update.
func (j *Joiner) Contact(ctx context.Context, c callrec.Contact) error {
	if c.TaskSID == "" {
		return callrec.Errorf(callrec.EINVALID, "join: contact without task SID")
	}
	c.Connections = slices.Clone(c.Connections)
	return j.update(ctx, c.TaskSID, func(st *State) bool {
		if st.Contact != nil && !contactBeats(&c, st.Contact) {
			return false
		}
		st.Contact = &c
		return true
	})
}

// update loads the state of id, applies merge and, whatever merge says,
// stores the state and upserts the interaction (a redelivered event repairs
// a store write that failed after the state was saved).
func (j *Joiner) update(ctx context.Context, id string, merge func(*State) bool) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	var st State
	err := j.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketState).Get([]byte(id)); v != nil {
			if err := json.Unmarshal(v, &st); err != nil {
				return fmt.Errorf("decode state: %w", err)
			}
		}
		return nil
	})
	st.ID = id
	changed := err == nil && merge(&st)
	if changed {
		// j.mu makes the read above and this write one step.
		err = j.db.Update(func(tx *bolt.Tx) error {
			v, err := json.Marshal(&st)
			if err != nil {
				return err
			}
			return tx.Bucket(bucketState).Put([]byte(id), v)
		})
	}
	if err != nil {
		return fmt.Errorf("join: %s: %w", id, err)
	}
	in := Build(&st)
	if !changed {
		// A repeat: rewrite the interaction only if the store disagrees (a
		// store write that failed after the state was saved).
		if old, err := j.st.Get(ctx, id); err == nil {
			old.Updated = time.Time{}
			if reflect.DeepEqual(normalised(old), normalised(in)) {
				return nil
			}
		}
	}
	in.Updated = j.now().UTC()
	if err := j.st.Put(ctx, in); err != nil {
		return fmt.Errorf("join: %s: %w", id, err)
	}
	j.log.Debug("interaction joined", "id", id, "status", in.Status, "inums", len(in.INUMs))
	return nil
}

// normalised makes an interaction comparable after a JSON round trip
// (times lose their monotonic clock and location; nil and empty slices).
func normalised(in store.Interaction) store.Interaction {
	b, _ := json.Marshal(in)
	var out store.Interaction
	_ = json.Unmarshal(b, &out)
	return out
}

// Get returns the joined state of id (ok false if nothing was seen for it).
func (j *Joiner) Get(id string) (State, bool, error) {
	var st State
	var ok bool
	err := j.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketState).Get([]byte(id))
		if v == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &st)
	})
	if err != nil {
		return st, false, fmt.Errorf("join: get %s: %w", id, err)
	}
	return st, ok, nil
}

// recBeats reports whether a should replace b (same INUM).
func recBeats(a, b RecSummary) bool {
	if a.Stopped != b.Stopped {
		return a.Stopped
	}
	return a.UpdatedAt.After(b.UpdatedAt)
}

func statusRank(s callrec.ContactStatus) int {
	switch s {
	case callrec.ContactQueued:
		return 1
	case callrec.ContactActive:
		return 2
	case callrec.ContactWrapUp:
		return 3
	case callrec.ContactEnded, callrec.ContactAbandoned:
		return 4
	}
	return 0
}

func connVersions(c *callrec.Contact) int64 {
	var n int64
	for _, x := range c.Connections {
		n += x.Version
	}
	return n
}

// contactBeats reports whether a should replace b (same task).
func contactBeats(a, b *callrec.Contact) bool {
	if c := cmp.Compare(a.TaskVersion, b.TaskVersion); c != 0 {
		return c > 0
	}
	if c := cmp.Compare(statusRank(a.Status), statusRank(b.Status)); c != 0 {
		return c > 0
	}
	if c := cmp.Compare(connVersions(a), connVersions(b)); c != 0 {
		return c > 0
	}
	return len(a.Connections) > len(b.Connections)
}

func contactEnded(c *callrec.Contact) bool {
	return c.Status == callrec.ContactEnded || c.Status == callrec.ContactAbandoned
}

// Build computes the interaction of a joined state (Updated left zero).
func Build(st *State) store.Interaction {
	in := store.Interaction{ID: st.ID}
	c := st.Contact
	recs := make([]RecSummary, 0, len(st.Recordings))
	for _, r := range st.Recordings {
		recs = append(recs, r)
	}
	slices.SortFunc(recs, func(a, b RecSummary) int {
		if x := a.StartedAt.Compare(b.StartedAt); x != 0 {
			return x
		}
		return cmp.Compare(a.INUM, b.INUM)
	})

	var tags []string
	addTime := func(t *time.Time, v time.Time, later bool) {
		if v.IsZero() {
			return
		}
		if t.IsZero() || (later && v.After(*t)) || (!later && v.Before(*t)) {
			*t = v
		}
	}

	if c != nil {
		in.TaskSID = c.TaskSID
		in.CallSID = c.CustomerCall
		if in.CallSID == "" {
			in.CallSID = c.Participants["customer"]
		}
		in.ConferenceSID = c.ConferenceSID
		in.Direction, in.From, in.To = c.Direction, c.From, c.To
		in.Queue = c.QueueName
		if in.Queue == "" {
			in.Queue = c.QueueSID
		}
		answered := make([]callrec.Connection, 0, len(c.Connections))
		for _, x := range c.Connections {
			if !x.AnsweredAt.IsZero() && x.AgentExtension != "" {
				answered = append(answered, x)
			}
			addTime(&in.Start, x.AnsweredAt, false)
		}
		slices.SortFunc(answered, func(a, b callrec.Connection) int {
			if x := a.AnsweredAt.Compare(b.AnsweredAt); x != 0 {
				return x
			}
			if x := cmp.Compare(a.AgentExtension, b.AgentExtension); x != 0 {
				return x
			}
			return cmp.Compare(a.ReservationSID, b.ReservationSID)
		})
		for _, x := range answered {
			if !slices.Contains(in.Agents, x.AgentExtension) {
				in.Agents = append(in.Agents, x.AgentExtension)
			}
			if x.Team != "" && !slices.Contains(in.Teams, x.Team) {
				in.Teams = append(in.Teams, x.Team)
			}
			in.Segments = append(in.Segments, segmentOf(x, c))
		}
		addTime(&in.Start, c.CreatedAt, false)
		addTime(&in.End, c.EndedAt, true)
	} else if len(recs) > 0 {
		tags = append(tags, TagContactMissing)
		for _, r := range recs {
			if r.Agent != "" && !slices.Contains(in.Agents, r.Agent) {
				in.Agents = append(in.Agents, r.Agent)
			}
			if r.Team != "" && !slices.Contains(in.Teams, r.Team) {
				in.Teams = append(in.Teams, r.Team)
			}
		}
	}

	restarted := false
	for _, r := range recs {
		if in.TaskSID == "" {
			in.TaskSID = r.TaskSID
		}
		if in.CallSID == "" && r.RestartOf == "" {
			in.CallSID = r.CallSID
		}
		in.INUMs = append(in.INUMs, r.INUM)
		addTime(&in.Start, r.StartedAt, false)
		addTime(&in.End, r.StoppedAt, true)
		if r.RestartOf != "" {
			restarted = true
		}
	}
	if in.CallSID == "" && len(recs) > 0 {
		in.CallSID = recs[0].CallSID
	}
	if restarted {
		tags = append(tags, TagRestarted)
	}

	gs := groupStreams(recs)
	in.Status = recordingStatus(gs)
	in.Replicas = replicaSets(gs)
	in.Gaps = restartGaps(gs)
	for _, g := range in.Gaps {
		in.GapMS += g.DurationMS
	}
	if len(recs) == 0 {
		switch {
		case c == nil:
			// Unreachable: a state exists only after an update.
		case !contactEnded(c):
			in.Status = store.StatusRecording
			tags = append(tags, TagRecordingPending)
		case monitoredAnswered(c) && c.NotRecorded == "":
			in.Status = store.StatusMissingAudio
			tags = append(tags, TagRecordingMissing)
		default:
			in.Status = store.StatusComplete
			tags = append(tags, TagNotRecorded)
		}
	}
	// Segments go on the recordings to play: not on a replica's twin.
	alt := alternates(gs)
	playable := slices.DeleteFunc(slices.Clone(recs), func(r RecSummary) bool { return alt[r.INUM] })
	for i := range in.Segments {
		matchRecording(&in.Segments[i], playable)
	}
	if in.Status == store.StatusRecording && len(recs) > 0 {
		in.End = time.Time{}
	}
	if !in.End.IsZero() && in.End.After(in.Start) {
		in.DurationMS = in.End.Sub(in.Start).Milliseconds()
	}
	slices.Sort(tags)
	in.Tags = tags
	return in
}

// segmentOf is an answered connection's agent session: from the answer to
// the wrap-up, else the end of the connection, else the end of the contact
// (zero while it lasts).
func segmentOf(x callrec.Connection, c *callrec.Contact) store.Segment {
	sg := store.Segment{Agent: x.AgentExtension, Team: x.Team, ReservationSID: x.ReservationSID,
		WorkerSID: x.WorkerSID, Start: x.AnsweredAt}
	for _, t := range []time.Time{x.WrapUpAt, x.EndedAt, c.EndedAt} {
		if !t.IsZero() && !t.Before(x.AnsweredAt) {
			sg.End = t
			break
		}
	}
	return sg
}

// matchRecording finds the first recording (in start order) that overlaps
// a segment in time (among recordings starting together, the one whose
// stream names the segment's reservation or agent), and the segment's offset
// in its audio. No overlap: not recorded. A recording still being written is
// open-ended, and so is a segment still open.
func matchRecording(sg *store.Segment, recs []RecSummary) {
	best, bestMine := -1, false
	for i, r := range recs {
		if best >= 0 && r.StartedAt.After(recs[best].StartedAt) {
			break
		}
		rEnd := r.StoppedAt
		if rEnd.IsZero() {
			rEnd = time.Unix(1<<40, 0) // not now: Build must not depend on when it runs
		}
		sEnd := sg.End
		if sEnd.IsZero() || sEnd.After(rEnd) {
			sEnd = rEnd
		}
		from := sg.Start
		if r.StartedAt.After(from) {
			from = r.StartedAt
		}
		if sEnd.Sub(from) <= 0 {
			continue
		}
		mine := r.ReservationSID == sg.ReservationSID || r.Agent == sg.Agent
		if best < 0 || (mine && !bestMine) {
			best, bestMine = i, mine
		}
	}
	if best < 0 {
		return
	}
	r := recs[best]
	sg.Recorded, sg.INUM = true, r.INUM
	if d := sg.Start.Sub(r.StartedAt); d > 0 {
		sg.OffsetMS = d.Milliseconds()
	}
}

func monitoredAnswered(c *callrec.Contact) bool {
	for _, x := range c.Connections {
		if x.Monitored && !x.AnsweredAt.IsZero() {
			return true
		}
	}
	return false
}
