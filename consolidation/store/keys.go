package store

import (
	"encoding/binary"
	"errors"
	"math"
	"time"
)

// Bucket names. Every index bucket holds keys of the form
//
//	<field> 0x00 <8-byte big-endian inverted start> <id>
//
// with a 10-byte summary value (see summary), so iterating one field's keys
// yields its interactions newest first and a start range is one key range.
// The time index uses the empty field. The number index is the exception
// described in numberKeys.
var (
	bucketItems  = []byte("items")     // id -> uvarint(len(meta)) meta JSON
	bucketTime   = []byte("ix_time")   // "" 0x00 inv id
	bucketAgent  = []byte("ix_agent")  // agent extension
	bucketQueue  = []byte("ix_queue")  // queue
	bucketDir    = []byte("ix_dir")    // direction
	bucketStatus = []byte("ix_status") // completeness status
	bucketTag    = []byte("ix_tag")    // tag
	bucketCall   = []byte("ix_call")   // call SID
	bucketTask   = []byte("ix_task")   // task SID
	bucketINUM   = []byte("ix_inum")   // INUM
	bucketNumber = []byte("ix_number") // reversed digits (see numberKeys)
	bucketTeam   = []byte("ix_team")   // team
)

var allBuckets = [][]byte{bucketItems, bucketTime, bucketAgent, bucketQueue, bucketDir,
	bucketStatus, bucketTag, bucketCall, bucketTask, bucketINUM, bucketNumber, bucketTeam}

// NumberSlack is how many trailing digits may follow a number match: a
// Query.Number q matches a number whose digits contain q ending within the
// last NumberSlack+1 digits, i.e. q occurs in the last len(q)+NumberSlack
// digits. With NumberSlack 0 this is "ends with"; with 3, a 4-digit query
// finds matches anywhere in a NANP subscriber number (last 7 digits).
const NumberSlack = 3

// invStart maps a start time to 8 bytes that sort newest first. The zero time
// sorts oldest.
func invStart(t time.Time) uint64 {
	n := int64(math.MinInt64)
	if !t.IsZero() {
		n = t.UnixNano()
	}
	return ^(uint64(n) ^ (1 << 63))
}

// indexKey builds field 0x00 inv id.
func indexKey(field string, inv uint64, id string) []byte {
	k := make([]byte, 0, len(field)+1+8+len(id))
	k = append(k, field...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint64(k, inv)
	return append(k, id...)
}

// splitKey returns the inverted start and id of an index key whose field
// part (with its 0x00) is sep bytes long.
func splitKey(k []byte, sep int) (inv uint64, id []byte, ok bool) {
	if len(k) < sep+8 {
		return 0, nil, false
	}
	return binary.BigEndian.Uint64(k[sep : sep+8]), k[sep+8:], true
}

// digits returns the decimal digits of s, dropping everything else.
func digits(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b = append(b, s[i])
		}
	}
	return string(b)
}

func reverse(s string) string {
	b := make([]byte, len(s))
	for i := 0; i < len(s); i++ {
		b[len(s)-1-i] = s[i]
	}
	return string(b)
}

// numberFields returns the number-index fields of an interaction: for each
// distinct digit string d of From and To, reverse(d) with 0..NumberSlack
// leading characters dropped. A query q is then found by a prefix scan on
// reverse(q): reverse(d)[k:] starts with reverse(q) exactly when q occurs in
// d followed by k more digits. This costs NumberSlack+1 keys per number
// instead of one per digit for a full substring index, and serves the two
// searches agents use: the last N digits, and a few digits of the local
// number.
func numberFields(from, to string) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range []string{from, to} {
		r := reverse(digits(n))
		for k := 0; k <= NumberSlack && k < len(r); k++ {
			if f := r[k:]; !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	return out
}

// numberMatches reports whether number n matches query digits q (see
// NumberSlack).
func numberMatches(n, q string) bool {
	d := digits(n)
	if w := len(q) + NumberSlack; len(d) > w {
		d = d[len(d)-w:]
	}
	return q != "" && contains(d, q)
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// Codes of known directions and statuses kept in index summaries; 0 means
// "some other value: read the record".
var (
	directionCodes = map[string]byte{"inbound": 1, "outbound": 2, "internal": 3}
	statusCodes    = map[string]byte{StatusComplete: 1, StatusPartial: 2, StatusInterrupted: 3,
		StatusRecording: 4, StatusMissingAudio: 5}
)

// summary is the value of every index key: what most residual filters and
// the duration sort need, without reading the record.
func summary(m *meta) []byte {
	v := make([]byte, 10)
	binary.BigEndian.PutUint64(v, uint64(m.DurationMS))
	v[8] = directionCodes[m.Direction]
	v[9] = statusCodes[m.Status]
	return v
}

// meta is the compact, index-relevant part of an interaction, stored before
// the JSON so filters and upserts need not decode JSON.
type meta struct {
	Start                   time.Time
	DurationMS              int64
	Direction, From, To     string
	Queue, CallSID, TaskSID string
	Status                  string
	Agents, INUMs, Tags     []string
	Teams                   []string // absent in records written before teams were indexed
}

func metaOf(in *Interaction) *meta {
	m := &meta{Start: in.Start, DurationMS: in.DurationMS, Direction: in.Direction, From: in.From,
		To: in.To, Queue: in.Queue, CallSID: in.CallSID, TaskSID: in.TaskSID, Status: in.Status,
		Agents: in.Agents, Tags: in.Tags, Teams: in.Teams}
	for _, n := range in.INUMs {
		m.INUMs = append(m.INUMs, string(n))
	}
	return m
}

// indexEntry is one key of one index bucket.
type indexEntry struct {
	bucket []byte
	key    []byte
}

// entries lists every index key of the interaction with the given id.
func (m *meta) entries(id string, inv uint64) []indexEntry {
	var out []indexEntry
	add := func(b []byte, field string) {
		out = append(out, indexEntry{b, indexKey(field, inv, id)})
	}
	add(bucketTime, "")
	seen := map[string]bool{}
	for _, a := range m.Agents {
		if a != "" && !seen[a] {
			seen[a] = true
			add(bucketAgent, a)
		}
	}
	for _, f := range []struct {
		b []byte
		v string
	}{{bucketQueue, m.Queue}, {bucketDir, m.Direction}, {bucketStatus, m.Status},
		{bucketCall, m.CallSID}, {bucketTask, m.TaskSID}} {
		if f.v != "" {
			add(f.b, f.v)
		}
	}
	clear(seen)
	for _, t := range m.Tags {
		if t != "" && !seen[t] {
			seen[t] = true
			add(bucketTag, t)
		}
	}
	clear(seen)
	for _, t := range m.Teams {
		if t != "" && !seen[t] {
			seen[t] = true
			add(bucketTeam, t)
		}
	}
	clear(seen)
	for _, n := range m.INUMs {
		if n != "" && !seen[n] {
			seen[n] = true
			add(bucketINUM, n)
		}
	}
	for _, f := range numberFields(m.From, m.To) {
		add(bucketNumber, f)
	}
	return out
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

// encode writes the fields in a fixed order. Fields added later go at the
// end and are decoded only when bytes remain, so records written before
// them still decode (as empty): the first such field is Teams.
func (m *meta) encode() []byte {
	b := make([]byte, 0, 160)
	b = binary.AppendVarint(b, int64(invStart(m.Start)))
	b = binary.AppendVarint(b, m.DurationMS)
	for _, s := range []string{m.Direction, m.From, m.To, m.Queue, m.CallSID, m.TaskSID, m.Status} {
		b = appendString(b, s)
	}
	b = appendStrings(b, m.Agents)
	b = appendStrings(b, m.INUMs)
	b = appendStrings(b, m.Tags)
	return appendStrings(b, m.Teams)
}

var errCorrupt = errors.New("corrupt record")

type reader struct {
	b   []byte
	err error
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) str() string {
	l, n := binary.Uvarint(r.b)
	if n <= 0 || uint64(len(r.b)-n) < l {
		r.err = errCorrupt
		r.b = nil
		return ""
	}
	s := string(r.b[n : n+int(l)])
	r.b = r.b[n+int(l):]
	return s
}

func (r *reader) strs() []string {
	l, n := binary.Uvarint(r.b)
	if n <= 0 || l > uint64(len(r.b)) {
		r.err = errCorrupt
		return nil
	}
	r.b = r.b[n:]
	out := make([]string, 0, l)
	for i := uint64(0); i < l && r.err == nil; i++ {
		out = append(out, r.str())
	}
	return out
}

// decodeMeta decodes a meta record; the start is kept only as its inverted
// key form in inv, which is all filters and index maintenance need.
func decodeMeta(b []byte) (m *meta, inv uint64, err error) {
	r := &reader{b: b}
	m = &meta{}
	inv = uint64(r.varint())
	m.DurationMS = r.varint()
	for _, p := range []*string{&m.Direction, &m.From, &m.To, &m.Queue, &m.CallSID, &m.TaskSID, &m.Status} {
		*p = r.str()
	}
	m.Agents = r.strs()
	m.INUMs = r.strs()
	m.Tags = r.strs()
	if r.err == nil && len(r.b) > 0 {
		m.Teams = r.strs()
	}
	return m, inv, r.err
}

// splitValue splits an items value into its meta and JSON parts.
func splitValue(v []byte) (metaPart, jsonPart []byte, err error) {
	l, n := binary.Uvarint(v)
	if n <= 0 || uint64(len(v)-n) < l {
		return nil, nil, errCorrupt
	}
	return v[n : n+int(l)], v[n+int(l):], nil
}
