package pool_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"callrec/pool"
)

// widest returns meta with every number at its maximum and the given
// strings, the worst case the size limit must allow for.
func widest(role pool.Role, version, addr, http string) pool.Meta {
	return pool.Meta{
		Role: role, Version: version, Addr: addr, HTTPAddr: http,
		RecorderNode: math.MaxUint16, Capacity: math.MaxInt, Active: math.MaxInt,
		FreeDiskBytes: math.MaxUint64, Draining: true,
		Started: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("x", 14*3600)),
	}
}

func TestMetaValidate_WorstCaseFits(t *testing.T) {
	if pool.MetaStringBudget < 250 {
		t.Fatalf("string budget = %d bytes, want room for real addresses (≥ 250)", pool.MetaStringBudget)
	}
	// Realistic worst case: long Kubernetes names, a wss URL, a long version.
	m := widest(pool.RoleConsolidation,
		"v10.200.3000-rc.12+g0123456789ab",
		"wss://mediaadapter-7f9c8d6b5-x2k4q.mediaadapter.callrec-production.svc.cluster.local:8443/twilio/media?x=1&y=2",
		"http://mediaadapter-7f9c8d6b5-x2k4q.mediaadapter.callrec-production.svc.cluster.local:9090")
	if err := m.Validate(); err != nil {
		t.Fatalf("realistic worst case refused: %v", err)
	}

	// The budget exactly: accepted; one byte more: refused.
	n := pool.MetaStringBudget
	v, a := strings.Repeat("v", 32), strings.Repeat("a", 200)
	h := strings.Repeat("h", n-len(v)-len(a))
	if err := widest(pool.RoleConsolidation, v, a, h).Validate(); err != nil {
		t.Fatalf("meta at the budget (%d string bytes) refused: %v", n, err)
	}
	err := widest(pool.RoleConsolidation, v, a, h+"h").Validate()
	if !errors.Is(err, pool.ErrInvalidMeta) {
		t.Fatalf("meta one byte over the budget: err = %v, want ErrInvalidMeta", err)
	}
	if !strings.Contains(err.Error(), "512") || !strings.Contains(err.Error(), "shorten") {
		t.Errorf("error %q does not name the limit and the remedy", err)
	}
	// A small meta with small counters is judged by its widest counters.
	if err := (pool.Meta{Role: pool.RoleRecorder, Addr: strings.Repeat("a", n+40)}).Validate(); !errors.Is(err, pool.ErrInvalidMeta) {
		t.Errorf("small-counter meta with an oversize addr: err = %v, want ErrInvalidMeta", err)
	}
}

func TestMetaValidate_Rejects(t *testing.T) {
	tests := []struct {
		name string
		m    pool.Meta
	}{
		{"unknown role", pool.Meta{Role: "dj"}},
		{"no role", pool.Meta{}},
		{"negative active", pool.Meta{Role: pool.RoleRecorder, Active: -1}},
		{"negative capacity", pool.Meta{Role: pool.RoleRecorder, Capacity: -5}},
		{"invalid utf-8", pool.Meta{Role: pool.RoleRecorder, Addr: "\xff\xfe"}},
		// JSON escapes control characters to six bytes each.
		{"escaping overflows", pool.Meta{Role: pool.RoleRecorder, Addr: strings.Repeat("\x01", 60)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.m.Validate(); !errors.Is(err, pool.ErrInvalidMeta) {
				t.Errorf("Validate() = %v, want ErrInvalidMeta", err)
			}
		})
	}
}

func TestParseSecretKey(t *testing.T) {
	k, err := pool.ParseSecretKey(pool.NewSecretKey())
	if err != nil || len(k) != 32 {
		t.Fatalf("ParseSecretKey(NewSecretKey()) = %d bytes, %v; want 32, nil", len(k), err)
	}
	for _, bad := range []string{"", "not base64!", "AAAA"} {
		if _, err := pool.ParseSecretKey(bad); err == nil {
			t.Errorf("ParseSecretKey(%q) accepted", bad)
		}
	}
}
