package users

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"callrec"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Bucket names.
var (
	bucketUsers      = []byte("users")
	bucketTokens     = []byte("tokens")
	bucketTokenNames = []byte("token_names")
)

// Password length limits (MinPassword in characters, MaxPassword in bytes).
const (
	MinPassword = 12
	MaxPassword = 1024
)

// lockTimeout bounds how long Open waits for a file lock held by another
// process.
const lockTimeout = 2 * time.Second

// errBadLogin is the one answer to an unknown user and a wrong password alike.
var errBadLogin = callrec.Errorf(callrec.EFORBIDDEN, "invalid username or password")

// Store keeps users and API tokens in one bbolt file. It is safe for
// concurrent use.
type Store struct {
	db     *bbolt.DB
	params Params // for new hashes
	now    func() time.Time

	dummyOnce sync.Once
	dummy     string // hash verified for unknown users, so they cost the same time
}

// record is a user as stored.
type record struct {
	User
	Hash string `json:"hash"` // PHC argon2id string
}

// Open opens (creating if needed) the user store at path.
func Open(path string) (*Store, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: lockTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("users: open %s: still locked after %s: %w", path, lockTimeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("users: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketUsers, bucketTokens, bucketTokenNames} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("users: open %s: %w", path, err)
	}
	return &Store{db: db, params: DefaultParams, now: time.Now}, nil
}

// Close releases the file and its lock.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("users: close: %w", err)
	}
	return nil
}

// validName checks a user or token name: 1 to 64 of A-Z a-z 0-9 . _ - @.
func validName(name string) error {
	if name == "" || len(name) > 64 {
		return callrec.Errorf(callrec.EINVALID, "name must have 1 to 64 characters")
	}
	for _, c := range name {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-' || c == '@') {
			return callrec.Errorf(callrec.EINVALID, "name %q: only letters, digits and . _ - @ are allowed", name)
		}
	}
	return nil
}

// validPassword checks a new password's length.
func validPassword(password string) error {
	if utf8.RuneCountInString(password) < MinPassword {
		return callrec.Errorf(callrec.EINVALID, "password must have at least %d characters", MinPassword)
	}
	if len(password) > MaxPassword {
		return callrec.Errorf(callrec.EINVALID, "password must have at most %d bytes", MaxPassword)
	}
	return nil
}

// validAccess checks a role and its teams.
func validAccess(role Role, teams []string) error {
	if !role.Valid() {
		return callrec.Errorf(callrec.EINVALID, "unknown role %q", role)
	}
	if slices.Contains(teams, "") {
		return callrec.Errorf(callrec.EINVALID, "empty team name")
	}
	return nil
}

// Add creates user u with password. It fails with EINVALID for a bad name,
// an unknown role or a password shorter than MinPassword, and with ECONFLICT
// if a user or API token of that name exists. Created is set if zero.
func (s *Store) Add(ctx context.Context, u User, password string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("users: add: %w", err)
	}
	if err := validName(u.Name); err != nil {
		return err
	}
	if err := validAccess(u.Role, u.Teams); err != nil {
		return err
	}
	if err := validPassword(password); err != nil {
		return err
	}
	if u.Created.IsZero() {
		u.Created = s.now()
	}
	u.Created = u.Created.Round(0).UTC()
	u.Teams = slices.Clone(u.Teams)
	hash, err := HashPassword(password, s.params)
	if err != nil {
		return err
	}
	v, err := json.Marshal(record{User: u, Hash: hash})
	if err != nil {
		return fmt.Errorf("users: add %s: %w", u.Name, err)
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		if nameTaken(tx, u.Name) {
			return callrec.Errorf(callrec.ECONFLICT, "user or token %q exists", u.Name)
		}
		if err := tx.Bucket(bucketUsers).Put([]byte(u.Name), v); err != nil {
			return fmt.Errorf("users: add %s: %w", u.Name, err)
		}
		return nil
	})
}

// nameTaken reports whether a user or token is called name.
func nameTaken(tx *bbolt.Tx, name string) bool {
	return tx.Bucket(bucketUsers).Get([]byte(name)) != nil || tx.Bucket(bucketTokenNames).Get([]byte(name)) != nil
}

// SetPassword replaces the password of user name (ENOTFOUND if there is no
// such user, EINVALID for a too short password).
func (s *Store) SetPassword(ctx context.Context, name, password string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("users: set password: %w", err)
	}
	if err := validPassword(password); err != nil {
		return err
	}
	hash, err := HashPassword(password, s.params)
	if err != nil {
		return err
	}
	return s.update(name, "set password", func(_ *bbolt.Tx, r *record) error {
		r.Hash = hash
		return nil
	})
}

// SetRole replaces the role and teams of user name. It fails with EINVALID
// for an unknown role or an empty team name, with ENOTFOUND if there is no
// such user (API tokens keep the access they were created with: revoke and
// create another), and with ErrLastAdmin (ECONFLICT) if name is the last
// enabled admin and role is not Admin.
func (s *Store) SetRole(ctx context.Context, name string, role Role, teams []string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("users: set role: %w", err)
	}
	if err := validAccess(role, teams); err != nil {
		return err
	}
	return s.update(name, "set role", func(tx *bbolt.Tx, r *record) error {
		if role != Admin {
			if err := checkNotLastAdmin(tx, r.User); err != nil {
				return fmt.Errorf("users: set role %s: %w", name, err)
			}
		}
		r.Role, r.Teams = role, slices.Clone(teams)
		return nil
	})
}

// SetDisabled disables or re-enables user name. A disabled user keeps their
// record (the audit trail refers to it) but can neither authenticate nor see
// anything; there is no way to delete a user. It fails with ENOTFOUND if
// there is no such user (API tokens are revoked with RevokeToken), and with
// ErrLastAdmin (ECONFLICT) when disabling the last enabled admin. Setting
// the state a user already has is not an error.
func (s *Store) SetDisabled(ctx context.Context, name string, disabled bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("users: set disabled: %w", err)
	}
	return s.update(name, "set disabled", func(tx *bbolt.Tx, r *record) error {
		if disabled {
			if err := checkNotLastAdmin(tx, r.User); err != nil {
				return fmt.Errorf("users: disable %s: %w", name, err)
			}
		}
		r.Disabled = disabled
		return nil
	})
}

// ErrLastAdmin refuses to disable or demote the last enabled admin, so that
// an installation cannot lock itself out of user management. Its code is
// ECONFLICT. API tokens with the admin role do not count as admins here.
var ErrLastAdmin = callrec.Errorf(callrec.ECONFLICT, "the last enabled admin cannot be disabled or demoted; enable or add another admin first")

// checkNotLastAdmin returns ErrLastAdmin if u is an enabled admin and no
// other user is.
func checkNotLastAdmin(tx *bbolt.Tx, u User) error {
	if u.Role != Admin || u.Disabled {
		return nil
	}
	c := tx.Bucket(bucketUsers).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if string(k) == u.Name {
			continue
		}
		var r record
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("users: decode %s: %w", k, err)
		}
		if r.Role == Admin && !r.Disabled {
			return nil
		}
	}
	return ErrLastAdmin
}

// update applies fn to user name's record and stores the result, in one
// write transaction. op names the operation in errors.
func (s *Store) update(name, op string, fn func(tx *bbolt.Tx, r *record) error) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		r, err := getRecord(tx, name)
		if callrec.ErrorCode(err) == callrec.ENOTFOUND && tx.Bucket(bucketTokenNames).Get([]byte(name)) != nil {
			return callrec.Errorf(callrec.ENOTFOUND, "no user %q: it is an API token", name)
		}
		if err != nil {
			return err
		}
		if err := fn(tx, &r); err != nil {
			return err
		}
		v, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("users: %s %s: %w", op, name, err)
		}
		if err := tx.Bucket(bucketUsers).Put([]byte(name), v); err != nil {
			return fmt.Errorf("users: %s %s: %w", op, name, err)
		}
		return nil
	})
}

// getRecord reads user name's record (ENOTFOUND if absent).
func getRecord(tx *bbolt.Tx, name string) (record, error) {
	v := tx.Bucket(bucketUsers).Get([]byte(name))
	if v == nil {
		return record{}, callrec.Errorf(callrec.ENOTFOUND, "no user %q", name)
	}
	var r record
	if err := json.Unmarshal(v, &r); err != nil {
		return record{}, fmt.Errorf("users: decode %s: %w", name, err)
	}
	return r, nil
}

// Get returns user name (ENOTFOUND if there is none).
func (s *Store) Get(ctx context.Context, name string) (User, error) {
	if err := ctx.Err(); err != nil {
		return User{}, fmt.Errorf("users: get: %w", err)
	}
	var r record
	err := s.db.View(func(tx *bbolt.Tx) (err error) {
		r, err = getRecord(tx, name)
		return err
	})
	return r.User, err
}

// List returns every user (not API tokens), sorted by name.
func (s *Store) List(ctx context.Context) ([]User, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("users: list: %w", err)
	}
	var out []User
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("users: decode %s: %w", k, err)
			}
			out = append(out, r.User)
			return nil
		})
	})
	return out, err
}

// Authenticate checks name's password and returns the user. An unknown user,
// a wrong password and a disabled user (even with the right password) all
// fail with the same EFORBIDDEN error after the same amount of work: an
// unknown user is checked against a dummy hash, and a disabled user's
// password is verified before the disabled flag is looked at, so neither
// the answer nor its timing tells whether an account exists or is disabled.
func (s *Store) Authenticate(ctx context.Context, name, password string) (User, error) {
	if err := ctx.Err(); err != nil {
		return User{}, fmt.Errorf("users: authenticate: %w", err)
	}
	var r record
	err := s.db.View(func(tx *bbolt.Tx) (err error) {
		r, err = getRecord(tx, name)
		return err
	})
	known := err == nil
	if err != nil && callrec.ErrorCode(err) != callrec.ENOTFOUND {
		return User{}, err
	}
	hash := r.Hash
	if !known {
		hash = s.dummyHash()
	}
	ok, err := VerifyPassword(hash, password)
	if err != nil {
		return User{}, fmt.Errorf("users: authenticate %s: %w", name, err)
	}
	if !known || !ok || r.Disabled {
		return User{}, errBadLogin
	}
	return r.User, nil
}

// dummyHash returns a hash with the store's parameters that no password is
// expected to match, computed once.
func (s *Store) dummyHash() string {
	s.dummyOnce.Do(func() {
		h, err := HashPassword("callrec dummy password for unknown users", s.params)
		if err != nil {
			h = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$" + b64.EncodeToString(make([]byte, 32))
		}
		s.dummy = h
	})
	return s.dummy
}
