package users

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHashRoundTrip(t *testing.T) {
	phc, err := HashPassword(goodPassword, cheapParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("PHC string %q", phc)
	}
	p, salt, key, err := ParseHash(phc)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cheapParams, p); diff != "" || len(salt) != 16 || len(key) != 32 {
		t.Fatalf("ParseHash: salt %d key %d, params (-want +got):\n%s", len(salt), len(key), diff)
	}
	again, _ := HashPassword(goodPassword, cheapParams)
	if again == phc {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
	for pw, want := range map[string]bool{goodPassword: true, goodPassword + " ": false, "": false} {
		if ok, err := VerifyPassword(phc, pw); err != nil || ok != want {
			t.Errorf("VerifyPassword(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
}

func TestStoredHashWithOtherParamsVerifies(t *testing.T) {
	s, _ := openStore(t)
	other := Params{Memory: 128, Time: 3, Threads: 2, KeyLen: 24, SaltLen: 12}
	phc, err := HashPassword(goodPassword, other)
	if err != nil {
		t.Fatal(err)
	}
	// The store hashes new passwords with cheapParams; a record written
	// under other parameters must still verify with its own.
	if err := s.Add(t.Context(), User{Name: "old", Role: Auditor}, "placeholder password"); err != nil {
		t.Fatal(err)
	}
	putHash(t, s, "old", phc)
	if _, err := s.Authenticate(t.Context(), "old", goodPassword); err != nil {
		t.Fatalf("Authenticate with m=128,t=3,p=2 hash: %v", err)
	}
}

func TestParseHashRejects(t *testing.T) {
	good, _ := HashPassword("x", cheapParams)
	parts := strings.Split(good, "$")
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	for _, bad := range []string{
		"",
		"$2a$10$bcrypthash",
		strings.Replace(good, "argon2id", "argon2i", 1),
		with(2, "v=16"),
		with(3, "m=64,t=1"),
		with(3, "m=64,t=0,p=1"),
		with(3, fmt.Sprintf("m=%d,t=1,p=1", maxMemory+1)),
		with(3, "m=64,t=1,p=1,x=2"),
		with(4, "!!"),
		with(4, "c2FsdA"), // 4-byte salt
		with(5, "a2V5"),   // 3-byte key
		good + "$",
	} {
		if _, err := VerifyPassword(bad, "x"); !errors.Is(err, ErrBadHash) {
			t.Errorf("VerifyPassword(%q) = %v, want ErrBadHash", bad, err)
		}
	}
}
