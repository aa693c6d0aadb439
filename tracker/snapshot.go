package tracker

import (
	"encoding/json"
	"fmt"
)

// SnapshotVersion is the format version of Snapshot.
const SnapshotVersion = 1

// Snapshot is the tracker's state in a JSON-serializable form, for a
// persistence layer: one opaque JSON document per task (e.g. one bbolt key
// per task), holding the task's facts and what its decisions have done.
// The recording rules are not part of it.
type Snapshot struct {
	Version  int                        `json:"version"`
	Contacts map[string]json.RawMessage `json:"contacts"` // task SID → contact state
}

// Snapshot returns the state of the given tasks, or of all tasks when none
// is given (unknown tasks are left out). It fails only on times that JSON
// cannot hold (years outside 0–9999).
func (s *State) Snapshot(taskSIDs ...string) (Snapshot, error) {
	snap := Snapshot{Version: SnapshotVersion, Contacts: make(map[string]json.RawMessage)}
	if len(taskSIDs) == 0 {
		taskSIDs = sortedKeys(s.contacts)
	}
	for _, sid := range taskSIDs {
		r := s.contacts[sid]
		if r == nil {
			continue
		}
		b, err := json.Marshal(r)
		if err != nil {
			return Snapshot{}, fmt.Errorf("tracker: snapshot of task %s: %w", sid, err)
		}
		snap.Contacts[sid] = b
	}
	return snap, nil
}

// Restore adds the contacts of snap to the state, replacing those of the
// same tasks. On error the state is unchanged.
func (s *State) Restore(snap Snapshot) error {
	if snap.Version != SnapshotVersion {
		return fmt.Errorf("tracker: snapshot version %d, want %d", snap.Version, SnapshotVersion)
	}
	restored := make(map[string]*record, len(snap.Contacts))
	for sid, raw := range snap.Contacts {
		r := newRecord(sid)
		if err := json.Unmarshal(raw, r); err != nil {
			return fmt.Errorf("tracker: restore task %s: %w", sid, err)
		}
		if r.TaskSID != sid {
			return fmt.Errorf("tracker: restore task %s: snapshot holds task %q", sid, r.TaskSID)
		}
		for res, c := range r.Conns {
			if c == nil {
				return fmt.Errorf("tracker: restore task %s: empty reservation %s", sid, res)
			}
		}
		for x, t := range r.Transfers {
			if t == nil {
				return fmt.Errorf("tracker: restore task %s: empty transfer %s", sid, x)
			}
		}
		if e := r.Emit; e.Gen < 0 || e.Covered < 0 || e.Running < 0 || e.Running > e.Gen {
			return fmt.Errorf("tracker: restore task %s: bad stream state %+v", sid, r.Emit)
		}
		restored[sid] = r
	}
	for sid, r := range restored {
		s.contacts[sid] = r
	}
	return nil
}
