package users

import (
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
// EFORBIDDEN for any token that is malformed or unknown. Lookup is by the
// token's SHA-256, so timing reveals nothing useful about the token.
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
