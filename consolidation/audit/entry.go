package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// EventType is the kind of an audit entry.
type EventType string

// The event types recorded in the audit trail.
const (
	LoginOK      EventType = "login_ok"      // a user or token authenticated
	LoginFailed  EventType = "login_failed"  // a failed login (Actor is the name tried)
	Logout       EventType = "logout"        // a session ended
	Search       EventType = "search"        // a recording search; Details holds the filters
	View         EventType = "view"          // a recording's metadata was shown
	Playback     EventType = "playback"      // a recording's audio was played
	Export       EventType = "export"        // a recording was exported; Reason is the stated reason
	AccessDenied EventType = "access_denied" // a request was refused; Reason says why
	UserAdded    EventType = "user_added"    // a user or API token was created
	UserChanged  EventType = "user_changed"  // a user's password, role or state changed
)

// EventTypes lists every known event type, in a stable order.
var EventTypes = []EventType{LoginOK, LoginFailed, Logout, Search, View, Playback, Export, AccessDenied, UserAdded, UserChanged}

// Valid reports whether t is one of the known event types.
func (t EventType) Valid() bool {
	for _, k := range EventTypes {
		if t == k {
			return true
		}
	}
	return false
}

// Genesis is the Prev of the first entry: 64 zeros.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// Entry is one record of the audit trail.
type Entry struct {
	Seq     uint64            `json:"seq"`               // 1, 2, 3… without gaps
	Time    time.Time         `json:"time"`              // when it happened, UTC
	Type    EventType         `json:"type"`              // what happened
	Actor   string            `json:"actor"`             // username or token name
	Role    string            `json:"role"`              // the actor's role at the time
	Remote  string            `json:"remote"`            // the client's address
	Target  string            `json:"target"`            // INUM, interaction id, username…
	Reason  string            `json:"reason"`            // export reason, denial reason
	Details map[string]string `json:"details,omitempty"` // e.g. search filters
	Prev    string            `json:"prev"`              // hex SHA-256 of the previous entry
	Hash    string            `json:"hash"`              // hex SHA-256 of Canonical(e)
}

// canonical is the fixed shape hashed for an entry. encoding/json writes
// struct fields in declaration order and map keys sorted, so the bytes are
// deterministic.
type canonical struct {
	V       int               `json:"v"`
	Seq     uint64            `json:"seq"`
	Time    string            `json:"time"`
	Type    EventType         `json:"type"`
	Actor   string            `json:"actor"`
	Role    string            `json:"role"`
	Remote  string            `json:"remote"`
	Target  string            `json:"target"`
	Reason  string            `json:"reason"`
	Details map[string]string `json:"details"`
	Prev    string            `json:"prev"`
}

// Canonical returns the bytes an entry's Hash is computed over: a compact
// JSON object with exactly these keys in this order,
//
//	{"v":1,"seq":N,"time":"RFC3339Nano in UTC","type":"…","actor":"…",
//	 "role":"…","remote":"…","target":"…","reason":"…","details":{…}|null,"prev":"…"}
//
// as written by Go's encoding/json (details keys sorted, an empty or nil map
// written as null, strings escaped as encoding/json does, including its HTML
// escaping of <, > and &). Every field except Hash is covered.
func Canonical(e Entry) ([]byte, error) {
	d := e.Details
	if len(d) == 0 {
		d = nil
	}
	b, err := json.Marshal(canonical{
		V: 1, Seq: e.Seq, Time: e.Time.UTC().Format(time.RFC3339Nano), Type: e.Type,
		Actor: e.Actor, Role: e.Role, Remote: e.Remote, Target: e.Target, Reason: e.Reason,
		Details: d, Prev: e.Prev,
	})
	if err != nil {
		return nil, fmt.Errorf("audit: canonical encoding of seq %d: %w", e.Seq, err)
	}
	return b, nil
}

// ComputeHash returns the hex SHA-256 of Canonical(e).
func ComputeHash(e Entry) (string, error) {
	b, err := Canonical(e)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
