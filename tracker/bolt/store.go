// Package bolt keeps the tracker's state in bbolt: the Stream Manager's
// intents (so exactly one Start/Stop per decision survives restarts), the
// contacts' snapshots (so a restarted tracker carries on) and the
// tombstones of retired contacts (so a very late event is recognized).
package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"callrec/tracker/streams"
)

var (
	bucketIntents  = []byte("intents")  // key → JSON intent
	bucketPending  = []byte("pending")  // created (8-byte ns) + key → key
	bucketContacts = []byte("contacts") // task SID → JSON snapshot
)

// Store is the tracker's bbolt store.
type Store struct {
	db *bbolt.DB
}

var _ streams.Store = (*Store)(nil)

// Open opens (creating) the store at path.
func Open(path string) (*Store, error) {
	db, err := bbolt.Open(path, 0o640, &bbolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open tracker store %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketIntents, bucketPending, bucketContacts, bucketTombstones, bucketTombTime} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init tracker store: %w", err)
	}
	return &Store{db: db}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

func pendingKey(in streams.Intent) []byte {
	k := binary.BigEndian.AppendUint64(nil, uint64(in.Created.UnixNano()))
	return append(k, in.Key...)
}

func put(tx *bbolt.Tx, in streams.Intent, old *streams.Intent) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketIntents).Put([]byte(in.Key), b); err != nil {
		return err
	}
	p := tx.Bucket(bucketPending)
	if old != nil && old.State == streams.Pending {
		if err := p.Delete(pendingKey(*old)); err != nil {
			return err
		}
	}
	if in.State == streams.Pending {
		return p.Put(pendingKey(in), []byte(in.Key))
	}
	return nil
}

func get(tx *bbolt.Tx, key string) (*streams.Intent, error) {
	v := tx.Bucket(bucketIntents).Get([]byte(key))
	if v == nil {
		return nil, nil
	}
	var in streams.Intent
	if err := json.Unmarshal(v, &in); err != nil {
		return nil, fmt.Errorf("decode intent %s: %w", key, err)
	}
	return &in, nil
}

// Add implements streams.Store.
func (s *Store) Add(ctx context.Context, in streams.Intent) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	added := false
	err := s.db.Update(func(tx *bbolt.Tx) error {
		old, err := get(tx, in.Key)
		if err != nil || old != nil {
			return err
		}
		added = true
		return put(tx, in, nil)
	})
	if err != nil {
		return false, fmt.Errorf("add intent %s: %w", in.Key, err)
	}
	return added, nil
}

// Put implements streams.Store.
func (s *Store) Put(ctx context.Context, in streams.Intent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		old, err := get(tx, in.Key)
		if err != nil {
			return err
		}
		return put(tx, in, old)
	})
	if err != nil {
		return fmt.Errorf("put intent %s: %w", in.Key, err)
	}
	return nil
}

// Get implements streams.Store.
func (s *Store) Get(ctx context.Context, key string) (streams.Intent, bool, error) {
	if err := ctx.Err(); err != nil {
		return streams.Intent{}, false, err
	}
	var in *streams.Intent
	err := s.db.View(func(tx *bbolt.Tx) (err error) {
		in, err = get(tx, key)
		return err
	})
	if err != nil || in == nil {
		return streams.Intent{}, false, err
	}
	return *in, true, nil
}

// Pending implements streams.Store: oldest first, from the pending index.
func (s *Store) Pending(ctx context.Context) ([]streams.Intent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []streams.Intent
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketPending).ForEach(func(_, key []byte) error {
			in, err := get(tx, string(key))
			if err != nil {
				return err
			}
			if in == nil {
				return errors.New("pending index names a missing intent " + string(key))
			}
			out = append(out, *in)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list pending intents: %w", err)
	}
	return out, nil
}

// PutContact saves a contact's snapshot (JSON) under its task SID.
func (s *Store) PutContact(ctx context.Context, taskSID string, snapshot []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketContacts).Put([]byte(taskSID), snapshot)
	})
}

// DeleteContact forgets a contact.
func (s *Store) DeleteContact(ctx context.Context, taskSID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketContacts).Delete([]byte(taskSID)) })
}

// Contacts returns every saved snapshot by task SID.
func (s *Store) Contacts(ctx context.Context) (map[string][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketContacts).ForEach(func(k, v []byte) error {
			out[string(k)] = append([]byte(nil), v...)
			return nil
		})
	})
	return out, err
}
