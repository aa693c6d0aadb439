package users

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// cheapParams keep the tests fast; TestDefaultParams covers the real ones.
var cheapParams = Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

// openStore opens a fresh store with cheap hashing in a temporary directory,
// closed at cleanup, and returns it with its file's path.
func openStore(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	s.params = cheapParams
	s.now = func() time.Time { return time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC) }
	t.Cleanup(func() { _ = s.Close() })
	return s, path
}

// fakeClock is a settable clock for the limiter.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// putHash overwrites the stored PHC hash of user name, as an older version
// of callrec with other parameters would have written it.
func putHash(t *testing.T, s *Store, name, phc string) {
	t.Helper()
	err := s.db.Update(func(tx *bbolt.Tx) error {
		r, err := getRecord(tx, name)
		if err != nil {
			return err
		}
		r.Hash = phc
		v, err := json.Marshal(r)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketUsers).Put([]byte(name), v)
	})
	if err != nil {
		t.Fatalf("putHash: %v", err)
	}
}

// addUsers adds users with goodPassword.
func addUsers(t *testing.T, s *Store, us ...User) {
	t.Helper()
	for _, u := range us {
		if err := s.Add(context.Background(), u, goodPassword); err != nil {
			t.Fatalf("Add %s: %v", u.Name, err)
		}
	}
}

// mustGet returns user name.
func mustGet(t *testing.T, s *Store, name string) User {
	t.Helper()
	u, err := s.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("Get %s: %v", name, err)
	}
	return u
}
