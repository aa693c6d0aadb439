package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"callrec"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Bucket names and meta keys.
var (
	bucketMeta       = []byte("meta")
	bucketRecordings = []byte("recordings")
	bucketByTime     = []byte("by_time")
	bucketByCall     = []byte("by_call")
	bucketByStream   = []byte("by_stream")
	bucketOpen       = []byte("open")

	allBuckets = [][]byte{bucketMeta, bucketRecordings, bucketByTime, bucketByCall, bucketByStream, bucketOpen}

	keyNode    = []byte("node")
	keyCounter = []byte("counter")
)

// lockTimeout bounds how long Open waits for the file lock held by another
// process before giving up with an error.
const lockTimeout = 2 * time.Second

// Index is a recorder node's bbolt index of its recordings. It is safe for
// concurrent use; bbolt serializes the writers and lets readers run in
// parallel.
type Index struct {
	db   *bbolt.DB
	path string

	mu     sync.Mutex // guards closed
	closed bool
}

// Open opens (creating if needed) the index file at path and makes sure every
// bucket exists. If another process holds the file, Open fails after two
// seconds instead of hanging.
func Open(path string) (*Index, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:        lockTimeout,
		FreelistType:   bbolt.FreelistMapType,
		NoFreelistSync: false,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("bolt: open %s: still locked after %s, is another recorder using this data dir? %w", path, lockTimeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	return &Index{db: db, path: path}, nil
}

// Close releases the file and its lock. Calling it again does nothing and
// returns nil. Any call on a closed Index fails.
func (x *Index) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return nil
	}
	x.closed = true
	if err := x.db.Close(); err != nil {
		return fmt.Errorf("bolt: close %s: %w", x.path, err)
	}
	return nil
}

// Path returns the index file's path.
func (x *Index) Path() string { return x.path }

// ClaimNode records node as the owner of this index the first time, and
// refuses any other node id afterwards with an ECONFLICT error naming both:
// two nodes must never share a data dir, or an INUM could be issued twice.
// Claiming the same id again is a no-op.
func (x *Index) ClaimNode(node uint16) error {
	if node == 0 || node > callrec.MaxNodeID {
		return fmt.Errorf("bolt: claim node %d: %w", node,
			callrec.Errorf(callrec.EINVALID, "node id %d out of range 1..%d", node, callrec.MaxNodeID))
	}
	err := x.db.Update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		owner, ok, err := metaNode(meta)
		switch {
		case err != nil:
			return err
		case !ok:
			return meta.Put(keyNode, binary.BigEndian.AppendUint16(nil, node))
		case owner != node:
			return callrec.Errorf(callrec.ECONFLICT,
				"index %s belongs to node %04d, refusing node %04d", x.path, owner, node)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: claim node %04d: %w", node, err)
	}
	return nil
}

// Counter returns the last INUM counter allocated (0 before the first
// recording), for tests and metrics.
func (x *Index) Counter() (uint64, error) {
	var n uint64
	err := x.db.View(func(tx *bbolt.Tx) error {
		var err error
		n, err = metaCounter(tx.Bucket(bucketMeta))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: counter: %w", err)
	}
	return n, nil
}

// metaNode returns the claimed node id, if any.
func metaNode(meta *bbolt.Bucket) (uint16, bool, error) {
	v := meta.Get(keyNode)
	if v == nil {
		return 0, false, nil
	}
	if len(v) != 2 {
		return 0, false, callrec.Errorf(callrec.EINTERNAL, "corrupt node id: %d bytes", len(v))
	}
	return binary.BigEndian.Uint16(v), true, nil
}

// metaCounter returns the last allocated INUM counter (0 if none).
func metaCounter(meta *bbolt.Bucket) (uint64, error) {
	v := meta.Get(keyCounter)
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, callrec.Errorf(callrec.EINTERNAL, "corrupt inum counter: %d bytes", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}
