package web_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"callrec"
	"callrec/consolidation/audit"
	"callrec/consolidation/users"
	"callrec/consolidation/web"
)

// TestAuditVerifyDetectsTampering edits an entry in the audit file behind
// the log's back; GET /api/audit/verify answers 409 naming the entry.
func TestAuditVerifyDetectsTampering(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, actor := range []string{"comp", "east", "west"} {
		if _, err := l.Append(context.Background(), audit.Entry{Type: audit.Playback, Actor: actor, Target: "WTeast1"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Someone hides east's playback of entry 2.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("entries"))
		key := binary.BigEndian.AppendUint64(nil, 2)
		var e map[string]any
		if err := json.Unmarshal(b.Get(key), &e); err != nil {
			return err
		}
		e["actor"] = "nobody"
		v, err := json.Marshal(e)
		if err != nil {
			return err
		}
		return b.Put(key, v)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	tampered, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tampered.Close() })

	e := newTestEnv(t, func(c *web.Config) { c.Audit = tampered })
	r := e.tokenClient(t, "aud-bot", users.Auditor).get(t, "/api/audit/verify")
	var body struct {
		Entries uint64 `json:"entries"`
		Error   struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	r.decode(t, &body)
	if r.Status != http.StatusConflict || body.Error.Code != callrec.ECONFLICT || body.Entries != 1 {
		t.Errorf("verify of a tampered trail = %s, want 409 conflict after 1 good entry", r)
	}
}
