package bolt

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"strings"
	"time"

	"callrec"

	bbolt "go.etcd.io/bbolt"
)

// maxSIDLen bounds the SIDs used in index keys (Twilio's are 34 bytes).
const maxSIDLen = 256

// inumLen is the length of an INUM, the last part of every index key.
const inumLen = 16

// Time range the 8-byte big-endian UnixNano keys can represent in order.
var (
	minTime = time.Unix(0, 0)
	maxTime = time.Unix(0, math.MaxInt64)
)

// validate checks what the index relies on before a record is stored.
func validate(r *callrec.Recording) error {
	if r == nil {
		return callrec.Errorf(callrec.EINVALID, "nil recording")
	}
	if _, err := callrec.ParseINUM(string(r.INUM)); err != nil {
		return err
	}
	if r.Node != r.INUM.Node() {
		return callrec.Errorf(callrec.EINVALID, "recording %s: node %d does not match the inum", r.INUM, r.Node)
	}
	switch r.State {
	case callrec.StateRecording, callrec.StateComplete, callrec.StateInterrupted:
	default:
		return callrec.Errorf(callrec.EINVALID, "recording %s: unknown state %q", r.INUM, r.State)
	}
	if r.StartedAt.Before(minTime) || r.StartedAt.After(maxTime) {
		return callrec.Errorf(callrec.EINVALID, "recording %s: started_at %s outside 1970..2262", r.INUM, r.StartedAt)
	}
	for _, sid := range []string{r.Stream.CallSID, r.Stream.StreamSID} {
		if len(sid) > maxSIDLen || strings.IndexByte(sid, 0) >= 0 {
			return callrec.Errorf(callrec.EINVALID, "recording %s: sid %.40q is too long or holds a NUL byte", r.INUM, sid)
		}
	}
	return nil
}

// encodeRecord returns the stored JSON of r. StreamInfo.Tracks is not part
// of the JSON, so TrackNames is filled from it when only Tracks is set.
func encodeRecord(r *callrec.Recording) ([]byte, error) {
	if len(r.Stream.TrackNames) == 0 && len(r.Stream.Tracks) > 0 {
		c := *r
		c.Stream.TrackNames = make([]string, len(r.Stream.Tracks))
		for i, t := range r.Stream.Tracks {
			c.Stream.TrackNames[i] = t.String()
		}
		r = &c
	}
	return json.Marshal(r)
}

// decodeRecord parses a stored record and restores StreamInfo.Tracks from
// TrackNames.
func decodeRecord(inum []byte, v []byte) (*callrec.Recording, error) {
	var r callrec.Recording
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, callrec.Errorf(callrec.EINTERNAL, "corrupt recording %s: %v", inum, err)
	}
	for _, name := range r.Stream.TrackNames {
		if t, ok := callrec.ParseTrack(name); ok {
			r.Stream.Tracks = append(r.Stream.Tracks, t)
		}
	}
	return &r, nil
}

// loadRecord returns the record stored under inum, or nil if there is none.
func loadRecord(recs *bbolt.Bucket, inum []byte) (*callrec.Recording, error) {
	v := recs.Get(inum)
	if v == nil {
		return nil, nil
	}
	return decodeRecord(inum, v)
}

// timeBytes encodes a StartedAt (already validated to be in range).
func timeBytes(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8+inumLen), uint64(t.UnixNano()))
}

// timeKey is the by_time key of r.
func timeKey(r *callrec.Recording) []byte {
	return append(timeBytes(r.StartedAt), r.INUM...)
}

// sidPrefix is the part of a by_call or by_stream key before the time or INUM.
func sidPrefix(sid string) []byte {
	k := make([]byte, 0, len(sid)+1+8+inumLen)
	return append(append(k, sid...), 0)
}

// callKey is the by_call key of r, nil when it has no call SID.
func callKey(r *callrec.Recording) []byte {
	if r.Stream.CallSID == "" {
		return nil
	}
	k := sidPrefix(r.Stream.CallSID)
	k = binary.BigEndian.AppendUint64(k, uint64(r.StartedAt.UnixNano()))
	return append(k, r.INUM...)
}

// streamKey is the by_stream key of r, nil when it has no stream SID.
func streamKey(r *callrec.Recording) []byte {
	if r.Stream.StreamSID == "" {
		return nil
	}
	return append(sidPrefix(r.Stream.StreamSID), r.INUM...)
}

// boundNano clamps a filter bound to the range of the time keys.
func boundNano(t time.Time) uint64 {
	switch {
	case t.Before(minTime):
		return 0
	case t.After(maxTime):
		return math.MaxInt64
	}
	return uint64(t.UnixNano())
}

// empty is the value of every index entry. It is non-nil: bbolt keeps the
// value given to Put for the rest of the transaction.
var empty = []byte{}

// has reports whether key is in b (a cursor check, so an empty value counts).
func has(b *bbolt.Bucket, key []byte) bool {
	k, _ := b.Cursor().Seek(key)
	return k != nil && string(k) == string(key)
}
