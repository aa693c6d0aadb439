package pool

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"
)

// Role is what a member does in callrec; Pick chooses among members of one
// role.
type Role string

// The roles of pool members.
const (
	RoleMediaAdapter  Role = "mediaadapter"  // speaks Twilio Media Streams; the lb picks one
	RoleRecorder      Role = "recorder"      // writes recordings; adapters pick one
	RoleLB            Role = "lb"            // WebSocket front door
	RoleConsolidation Role = "consolidation" // search, playback, UI
	RoleCLI           Role = "cli"           // an operator tool that joins briefly; never picked
)

// Valid reports whether r is one of the roles above.
func (r Role) Valid() bool {
	switch r {
	case RoleMediaAdapter, RoleRecorder, RoleLB, RoleConsolidation, RoleCLI:
		return true
	}
	return false
}

// MetaMaxSize is the largest encoded Meta memberlist accepts (it panics
// beyond it; this package refuses with ErrInvalidMeta first).
const MetaMaxSize = memberlist.MetaMaxSize

// ErrInvalidMeta is returned (wrapped) by Join and Update when the local
// metadata cannot be announced: an unknown role, a negative count, invalid
// UTF-8, or strings too long to fit MetaMaxSize.
var ErrInvalidMeta = errors.New("invalid pool metadata")

// Meta is what a member tells the pool about itself. It travels JSON-encoded
// in memberlist's node metadata, so its encoding must stay within
// MetaMaxSize bytes. Validate checks that it would, even with every number at
// its maximum: the strings are fixed when a node starts and the counters
// grow, and a node that started must never fail later because Active gained
// a digit. Version, Addr and HTTPAddr share MetaStringBudget bytes.
type Meta struct {
	Role    Role   `json:"role"`
	Version string `json:"ver,omitempty"` // build version (Join fills in callrec.Version when empty)
	// Addr is the service address others connect to: the recorder link
	// address host:port; the adapter's media URL (ws:// or wss://) or
	// host:port.
	Addr string `json:"addr,omitempty"`
	// HTTPAddr is the ops/API address (host:port or URL).
	HTTPAddr string `json:"http,omitempty"`
	// RecorderNode is a recorder's node id (the INUM prefix), 0 for others.
	RecorderNode uint16 `json:"node,omitempty"`
	// Capacity is the most concurrent streams the member accepts; 0 means
	// unknown or unlimited.
	Capacity int `json:"cap,omitempty"`
	// Active is the number of streams it handles now.
	Active int `json:"act,omitempty"`
	// FreeDiskBytes is the space left for recordings. Round it (to MiB or
	// GiB): every change of the metadata is gossiped to the whole pool.
	FreeDiskBytes uint64 `json:"disk,omitempty"`
	// Draining members finish what they have and take nothing new; Pick
	// never returns them. The pool sets it too once Drain reached the
	// member, and when it leaves.
	Draining bool `json:"drain,omitempty"`
	// Started is when the member's process started (Join fills it in when
	// zero).
	Started time.Time `json:"start"`
}

// equal reports whether m and o say the same.
func (m Meta) equal(o Meta) bool {
	t1, t2 := m.Started, o.Started
	m.Started, o.Started = time.Time{}, time.Time{}
	return m == o && t1.Equal(t2)
}

// wireMeta is what travels in memberlist's node metadata: the member's Meta
// and the pool's own flags.
type wireMeta struct {
	Meta
	// Leaving is announced by Leave just before memberlist's leave message.
	// memberlist's event delegate cannot tell a leave from a death (the
	// Node it passes always says alive), so this flag tells the others.
	Leaving bool `json:"leaving,omitempty"`
	// At is when this announcement was made (Unix nanoseconds, the
	// announcer's clock). Pickers forget their own picks of the member made
	// before it: Active includes them by then.
	At int64 `json:"at,omitempty"`
}

// worstCase returns m with every number at its widest encoding.
func (m Meta) worstCase() Meta {
	m.RecorderNode = math.MaxUint16
	m.Capacity = math.MaxInt
	m.Active = math.MaxInt
	m.FreeDiskBytes = math.MaxUint64
	m.Draining = true
	m.Started = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	return m
}

// MetaStringBudget is how many bytes Version, Addr and HTTPAddr may take
// together (plain ASCII without quotes or backslashes, which JSON escapes)
// for the longest role. A test checks it against the encoding.
const MetaStringBudget = 271

// stringBudget computes MetaStringBudget from the encoding.
func stringBudget() int {
	w := wireMeta{Meta: Meta{Role: RoleConsolidation, Version: "v", Addr: "a", HTTPAddr: "h"}.worstCase(), Leaving: true, At: math.MinInt64}
	b, err := marshalMeta(w)
	if err != nil {
		panic(err)
	}
	return MetaMaxSize - len(b) + 3
}

// Validate reports whether m can be announced, now and whatever its counters
// grow to. Errors wrap ErrInvalidMeta and say what to shorten.
func (m Meta) Validate() error {
	if !m.Role.Valid() {
		return fmt.Errorf("%w: unknown role %q", ErrInvalidMeta, m.Role)
	}
	if m.Capacity < 0 || m.Active < 0 {
		return fmt.Errorf("%w: negative capacity %d or active %d", ErrInvalidMeta, m.Capacity, m.Active)
	}
	for _, f := range []struct{ name, s string }{{"version", m.Version}, {"addr", m.Addr}, {"http addr", m.HTTPAddr}} {
		if !utf8.ValidString(f.s) {
			return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidMeta, f.name)
		}
	}
	if y := m.Started.Year(); y < 0 || y > 9999 {
		return fmt.Errorf("%w: start time %v out of range", ErrInvalidMeta, m.Started)
	}
	b, err := marshalMeta(wireMeta{Meta: m.worstCase(), Leaving: true, At: math.MinInt64})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidMeta, err)
	}
	if len(b) > MetaMaxSize {
		return fmt.Errorf("%w: encodes to %d bytes at the widest counters, over memberlist's %d-byte node metadata limit: shorten addr (%d bytes), http addr (%d) or version (%d)",
			ErrInvalidMeta, len(b), MetaMaxSize, len(m.Addr), len(m.HTTPAddr), len(m.Version))
	}
	return nil
}

// encodeMeta validates w.Meta and returns w's wire form.
func encodeMeta(w wireMeta) ([]byte, error) {
	if err := w.Meta.Validate(); err != nil {
		return nil, err
	}
	b, err := marshalMeta(w)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidMeta, err)
	}
	if len(b) > MetaMaxSize { // cannot happen after Validate; memberlist would panic
		return nil, fmt.Errorf("%w: encodes to %d bytes, over %d", ErrInvalidMeta, len(b), MetaMaxSize)
	}
	return b, nil
}

// marshalMeta encodes w as compact JSON without HTML escaping (a URL's '&'
// stays one byte), with the start time in UTC.
func marshalMeta(w wireMeta) ([]byte, error) {
	w.Started = w.Started.UTC()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// decodeMeta parses a member's metadata. Unknown fields are ignored so newer
// members can add some.
func decodeMeta(b []byte) (wireMeta, error) {
	if len(b) == 0 {
		return wireMeta{}, errors.New("no metadata")
	}
	var w wireMeta
	if err := json.Unmarshal(b, &w); err != nil {
		return wireMeta{}, err
	}
	return w, nil
}
