package mediaadapter_test

import (
	"errors"
	"net/http"
	"net/url"
	"testing"

	"callrec/internal/callrectest"
	"callrec/internal/link"
	"callrec/internal/ws"
	"callrec/mediaadapter"
)

// TestUpgradePaths: upgrades are accepted on the public path and on
// <public path>/pair/<group>/<copy>, each signed over exactly the URL
// Twilio was given for it (the public URL, plus that suffix before the
// public URL's query); any other path is 404, any other signature 403.
func TestUpgradePaths(t *testing.T) {
	for _, tc := range []struct {
		name, public string
	}{
		{"plain", "wss://media.example.com/media"},
		{"with query", "wss://media.example.com/media?tenant=acme&x=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.public)
			if err != nil {
				t.Fatal(err)
			}
			base := "wss://media.example.com/media"
			q := ""
			if u.RawQuery != "" {
				q = "?" + u.RawQuery
			}
			group := "callrec/CA1 è" // escaped in the path as the tracker does
			pairPath := "/media/pair/" + url.PathEscape(group) + "/2"
			client := link.NewClient(link.ClientConfig{AdapterID: "unused"}) // no stream starts here
			a := startAdapter(t, mediaadapter.Config{PublicURL: tc.public}, client, nil)
			for _, c := range []struct {
				name, path, signed, token string
				want                      int // HTTP status; 101: upgraded
			}{
				{"public path", "/media", tc.public, testToken, 101},
				{"pair copy 1", "/media/pair/grp/1", base + "/pair/grp/1" + q, testToken, 101},
				{"pair copy 2, escaped group", pairPath, base + "/pair/" + url.PathEscape(group) + "/2" + q, testToken, 101},
				{"pair signed over the public URL only", "/media/pair/grp/1", tc.public, testToken, http.StatusForbidden},
				{"pair signed over another copy", "/media/pair/grp/1", base + "/pair/grp/2" + q, testToken, http.StatusForbidden},
				{"pair signed with the suffix after the query", "/media/pair/grp/1", tc.public + "/pair/grp/1", testToken, statusIf(q != "", http.StatusForbidden, 101)},
				{"pair signed with the unescaped group", pairPath, base + "/pair/" + group + "/2" + q, testToken, http.StatusForbidden},
				{"pair, wrong token", "/media/pair/grp/1", base + "/pair/grp/1" + q, "fedcba9876543210fedcba9876543210", http.StatusForbidden},
				{"pair, unsigned", "/media/pair/grp/1", "", "", http.StatusForbidden},
				{"public path signed as a pair", "/media", base + "/pair/grp/1" + q, testToken, http.StatusForbidden},
				{"public path, wrong token", "/media", tc.public, "fedcba9876543210fedcba9876543210", http.StatusForbidden},
				{"other sub-path", "/media/other", tc.public, testToken, http.StatusNotFound},
				{"pair without copy", "/media/pair/grp", tc.public, testToken, http.StatusNotFound},
				{"pair, copy 0", "/media/pair/grp/0", base + "/pair/grp/0" + q, testToken, http.StatusNotFound},
				{"pair, copy 5", "/media/pair/grp/5", base + "/pair/grp/5" + q, testToken, http.StatusNotFound},
				{"pair, copy 01", "/media/pair/grp/01", base + "/pair/grp/01" + q, testToken, http.StatusNotFound},
				{"pair, empty group", "/media/pair//1", base + "/pair//1" + q, testToken, http.StatusNotFound},
				{"pair, extra segment", "/media/pair/grp/1/x", base + "/pair/grp/1/x" + q, testToken, http.StatusNotFound},
				{"other path", "/mediax", tc.public, testToken, http.StatusNotFound},
				{"root", "/", tc.public, testToken, http.StatusNotFound},
			} {
				conn, err := a.dial(t, c.path, c.signed, c.token)
				got := 101
				if err != nil {
					var he *ws.HandshakeError
					if !errors.As(err, &he) {
						t.Fatalf("%s: dial %s: %v", c.name, c.path, err)
					}
					got = he.Status
				} else {
					conn.Close()
				}
				if got != c.want {
					t.Errorf("%s: GET %s signed over %q: status %d, want %d", c.name, c.path, c.signed, got, c.want)
				}
			}
			refused := func(reason string) float64 {
				return callrectest.Metric(t, a.reg, "callrec_media_connections_refused_total", map[string]string{"reason": reason})
			}
			if refused("signature") == 0 || refused("not_found") == 0 {
				t.Errorf("refusals counted: signature %v, not_found %v; want both > 0", refused("signature"), refused("not_found"))
			}
		})
	}
}

func statusIf(cond bool, yes, no int) int {
	if cond {
		return yes
	}
	return no
}

// TestUpgradePathsBehindProxy: with Path set (a proxy in front rewrites
// /rec/media to /media), requests come on Path while signatures are over
// the public URL's own path.
func TestUpgradePathsBehindProxy(t *testing.T) {
	client := link.NewClient(link.ClientConfig{AdapterID: "unused"})
	public := "wss://edge.example.com/rec/media"
	a := startAdapter(t, mediaadapter.Config{PublicURL: public, Path: "/media"}, client, nil)
	for _, c := range []struct {
		path, signed string
		want         int
	}{
		{"/media", public, 101},
		{"/media/pair/g/1", public + "/pair/g/1", 101},
		{"/media/pair/g/1", "wss://edge.example.com/media/pair/g/1", http.StatusForbidden},
		{"/rec/media/pair/g/1", public + "/pair/g/1", http.StatusNotFound},
	} {
		conn, err := a.dial(t, c.path, c.signed, testToken)
		got := 101
		var he *ws.HandshakeError
		if errors.As(err, &he) {
			got = he.Status
		} else if err != nil {
			t.Fatalf("dial %s: %v", c.path, err)
		} else {
			conn.Close()
		}
		if got != c.want {
			t.Errorf("GET %s signed over %q: status %d, want %d", c.path, c.signed, got, c.want)
		}
	}
}
