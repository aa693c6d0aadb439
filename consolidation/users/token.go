package users

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"

	"callrec"

	bbolt "go.etcd.io/bbolt"
)

// tokenBytes is the number of random bytes in an API token.
const tokenBytes = 32

// errBadToken is the one answer to any token that does not authenticate.
var errBadToken = callrec.Errorf(callrec.EFORBIDDEN, "invalid API token")

// CreateToken creates an API token for a machine called name with the given
// role and teams, and returns it: 32 random bytes in unpadded base64url. The
// token is shown only this once; the store keeps just its SHA-256. Names are
// shared with users (ECONFLICT if taken) so audit entries stay unambiguous.
func (s *Store) CreateToken(ctx context.Context, name string, role Role, teams []string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("users: create token: %w", err)
	}
	if err := validName(name); err != nil {
		return "", err
	}
	if err := validAccess(role, teams); err != nil {
		return "", err
	}
	raw := make([]byte, tokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("users: create token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(token))
	v, err := json.Marshal(User{Name: name, Role: role, Teams: slices.Clone(teams), Created: s.now().Round(0).UTC()})
	if err != nil {
		return "", fmt.Errorf("users: create token %s: %w", name, err)
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		if nameTaken(tx, name) {
			return callrec.Errorf(callrec.ECONFLICT, "user or token %q exists", name)
		}
		if err := tx.Bucket(bucketTokens).Put(sum[:], v); err != nil {
			return fmt.Errorf("users: create token %s: %w", name, err)
		}
		if err := tx.Bucket(bucketTokenNames).Put([]byte(name), sum[:]); err != nil {
			return fmt.Errorf("users: create token %s: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// AuthenticateToken returns the machine user a token was created for, or
// EFORBIDDEN for any token that is malformed, unknown or revoked. Lookup is
// by the token's SHA-256, so timing reveals nothing useful about the token.
func (s *Store) AuthenticateToken(ctx context.Context, token string) (User, error) {
	if err := ctx.Err(); err != nil {
		return User{}, fmt.Errorf("users: authenticate token: %w", err)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(token); err != nil || len(raw) != tokenBytes {
		return User{}, errBadToken
	}
	sum := sha256.Sum256([]byte(token))
	var u User
	err := s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketTokens).Get(sum[:])
		if v == nil {
			return errBadToken
		}
		if err := json.Unmarshal(v, &u); err != nil {
			return fmt.Errorf("users: decode token %x: %w", sum[:4], err)
		}
		return nil
	})
	if err != nil {
		return User{}, err
	}
	if u.Disabled {
		return User{}, errBadToken
	}
	return u, nil
}

// ListTokens returns the machine users of every API token, revoked ones
// included (with Disabled set), sorted by name. The tokens themselves are
// not stored, so they cannot be listed.
func (s *Store) ListTokens(ctx context.Context) ([]User, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("users: list tokens: %w", err)
	}
	var out []User
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketTokenNames).ForEach(func(name, sum []byte) error {
			u, err := getToken(tx, string(name), sum)
			if err != nil {
				return err
			}
			out = append(out, u)
			return nil
		})
	})
	return out, err
}

// RevokeToken revokes the API token called name: from the moment it returns,
// the token no longer authenticates. It fails with ENOTFOUND if there is no
// token of that name. The record stays, marked Disabled, and its name stays
// taken (like a disabled user's) so audit entries naming it stay
// unambiguous; issue a replacement under a new name. Revoking a revoked
// token is not an error.
func (s *Store) RevokeToken(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("users: revoke token: %w", err)
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		sum := tx.Bucket(bucketTokenNames).Get([]byte(name))
		if sum == nil {
			return callrec.Errorf(callrec.ENOTFOUND, "no API token %q", name)
		}
		sum = bytes.Clone(sum) // Get's slice is only valid until the next write
		u, err := getToken(tx, name, sum)
		if err != nil {
			return err
		}
		u.Disabled = true
		v, err := json.Marshal(u)
		if err != nil {
			return fmt.Errorf("users: revoke token %s: %w", name, err)
		}
		if err := tx.Bucket(bucketTokens).Put(sum, v); err != nil {
			return fmt.Errorf("users: revoke token %s: %w", name, err)
		}
		return nil
	})
}

// getToken reads the record of the token called name, whose SHA-256 is sum.
func getToken(tx *bbolt.Tx, name string, sum []byte) (User, error) {
	v := tx.Bucket(bucketTokens).Get(sum)
	if v == nil {
		return User{}, fmt.Errorf("users: token %s: no record for its hash", name)
	}
	var u User
	if err := json.Unmarshal(v, &u); err != nil {
		return User{}, fmt.Errorf("users: decode token %s: %w", name, err)
	}
	return u, nil
}
