package pool

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
)

// ParseSecretKey decodes a gossip key given as standard base64 (the form
// Consul and Serf use), checking it is 16, 24 or 32 bytes long.
func ParseSecretKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("pool secret key: not base64: %w", err)
	}
	if len(k) == 0 {
		return nil, fmt.Errorf("pool secret key: empty")
	}
	if err := checkKey(k); err != nil {
		return nil, fmt.Errorf("pool secret key: %w", err)
	}
	return k, nil
}

// NewSecretKey returns a random 32-byte key in the form ParseSecretKey reads.
func NewSecretKey() string {
	var k [32]byte
	_, _ = rand.Read(k[:])
	return base64.StdEncoding.EncodeToString(k[:])
}
