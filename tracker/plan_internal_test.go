package tracker

import "testing"

func TestDecodeIdentity(t *testing.T) {
	for in, want := range map[string]string{
		"alice_2Eagent_40example_2Ecom": "alice.agent@example.com",
		"plain":                         "plain",
		"under_5Fscore":                 "under_score",
		"bad_zz":                        "bad_zz",
		"short_4":                       "short_4",
		"trailing_":                     "trailing_",
	} {
		if got := decodeIdentity(in); got != want {
			t.Errorf("decodeIdentity(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAgentIdentity(t *testing.T) {
	for _, tc := range []struct {
		end     string
		flagged bool
		want    string
		ok      bool
	}{
		{"client:bob_2Eagent_40example_2Ecom", false, "bob.agent@example.com", true},
		{"client:", false, "", false},
		{"bob.agent@example.com", false, "", false},
		{"bob.agent@example.com", true, "bob.agent@example.com", true},
		{"+14155550123", true, "", false},
		{"14155550123", true, "", false},
		{"sip:bob@pbx.example.com", true, "", false},
		{"", true, "", false},
	} {
		got, ok := agentIdentity(tc.end, tc.flagged)
		if got != tc.want || ok != tc.ok {
			t.Errorf("agentIdentity(%q, %v) = %q, %v; want %q, %v", tc.end, tc.flagged, got, ok, tc.want, tc.ok)
		}
	}
}
