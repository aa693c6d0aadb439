package web

import (
	"crypto/tls"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies(" 10.0.0.0/8, 192.0.2.7,2001:db8::/32,, ::ffff:172.16.0.0/108, fe80::1%eth0, 10.1.2.3/16,")
	if err != nil {
		t.Fatal(err)
	}
	var gs []string
	for _, p := range got {
		gs = append(gs, p.String())
	}
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32", "172.16.0.0/12", "fe80::1/128", "10.1.0.0/16"}
	if diff := cmp.Diff(want, gs); diff != "" {
		t.Errorf("prefixes (-want +got):\n%s", diff)
	}
	if got, err := ParseTrustedProxies(""); err != nil || len(got) != 0 {
		t.Errorf(`ParseTrustedProxies("") = %v, %v; want none`, got, err)
	}
	for _, bad := range []string{"proxy.example.com", "10.0.0.0/33", "10.0.0.1:80", "10.0.0.0/8,nope", "2001:db8::/129"} {
		if got, err := ParseTrustedProxies(bad); err == nil {
			t.Errorf("ParseTrustedProxies(%q) = %v, want an error", bad, got)
		}
	}
}

func TestClientOf(t *testing.T) {
	trusted, err := ParseTrustedProxies("10.0.0.0/8, 192.0.2.10, 2001:db8:1::/48, fe80::/10")
	if err != nil {
		t.Fatal(err)
	}
	type hdr = map[string][]string
	tests := []struct {
		name    string
		remote  string
		tls     bool
		header  hdr
		trusted []netip.Prefix // nil: trusted above
		none    bool           // no trusted proxies at all
		want    client
		wantErr string // substring; "" for none
	}{
		{name: "direct, no headers", remote: "203.0.113.5:1234",
			want: client{IP: "203.0.113.5", Peer: "203.0.113.5"}},
		{name: "untrusted peer: spoofed headers ignored", remote: "203.0.113.5:1234",
			header: hdr{"X-Forwarded-For": {"198.51.100.1"}, "Forwarded": {"for=198.51.100.2"}, "X-Forwarded-Proto": {"https"}},
			want:   client{IP: "203.0.113.5", Peer: "203.0.113.5"}},
		{name: "no trusted proxies configured: headers ignored", remote: "10.0.0.2:1234", none: true,
			header: hdr{"X-Forwarded-For": {"198.51.100.1"}, "X-Forwarded-Proto": {"https"}},
			want:   client{IP: "10.0.0.2", Peer: "10.0.0.2"}},
		{name: "trusted peer without headers", remote: "10.0.0.2:1234",
			want: client{IP: "10.0.0.2", Peer: "10.0.0.2"}},
		{name: "trusted peer, one hop", remote: "10.0.0.2:1234",
			header: hdr{"X-Forwarded-For": {"198.51.100.1"}},
			want:   client{IP: "198.51.100.1", Peer: "10.0.0.2", Forwarded: true}},
		{name: "trusted chain is skipped", remote: "10.0.0.2:1234",
			header: hdr{"X-Forwarded-For": {"198.51.100.1, 10.1.1.1,192.0.2.10"}},
			want:   client{IP: "198.51.100.1", Peer: "10.0.0.2", Forwarded: true}},
		{name: "client's own entries left of the real one are ignored", remote: "10.0.0.2:1234",
			header: hdr{"X-Forwarded-For": {"6.6.6.6, 10.9.9.9, 198.51.100.1"}},
			want:   client{IP: "198.51.100.1", Peer: "10.0.0.2", Forwarded: true}},
		{name: "an untrusted hop in the chain is the client", remote: "10.0.0.2:1234",
			header: hdr{"X-Forwarded-For": {"198.51.100.1, 203.0.113.9, 10.0.0.3"}},
			want:   client{IP: "203.0.113.9", Peer: "10.0.0.2", Forwarded: true}},
		{name: "every hop trusted: the leftmost", remote: "10.0.0.2:1234",
			header: hdr{"X-Forwarded-For": {"10.0.0.7, 10.0.0.8"}},
			want:   client{IP: "10.0.0.7", Peer: "10.0.0.2", Forwarded: true}},
		{name: "several header lines are one list, in order", remote: "10.0.0.2:1234",
			header: hdr{"X-Forwarded-For": {"6.6.6.6", "198.51.100.1, 10.0.0.3"}},
			want:   client{IP: "198.51.100.1", Peer: "10.0.0.2", Forwarded: true}},
		{name: "peer without a port", remote: "10.0.0.2",
			header: hdr{"X-Forwarded-For": {"198.51.100.1"}},
			want:   client{IP: "198.51.100.1", Peer: "10.0.0.2", Forwarded: true}},
		{name: "entries with ports", remote: "10.0.0.2:1234",
			header: hdr{"X-Forwarded-For": {"198.51.100.1:4711, [2001:db8:1::9]:80, [2001:db8:1::8], 10.0.0.3:99"}},
			want:   client{IP: "198.51.100.1", Peer: "10.0.0.2", Forwarded: true}},

		// IPv6.
		{name: "IPv6 trusted peer and client", remote: "[2001:db8:1::5]:443",
			header: hdr{"X-Forwarded-For": {"2001:DB8:2:0:0:0:0:9"}},
			want:   client{IP: "2001:db8:2::9", Peer: "2001:db8:1::5", Forwarded: true}},
		{name: "IPv6 untrusted peer", remote: "[2001:db8:9::1]:443",
			header: hdr{"X-Forwarded-For": {"198.51.100.1"}},
			want:   client{IP: "2001:db8:9::1", Peer: "2001:db8:9::1"}},
		{name: "IPv4-mapped peer and entry are IPv4", remote: "[::ffff:10.0.0.2]:80",
			header: hdr{"X-Forwarded-For": {"::ffff:198.51.100.1, ::ffff:10.0.0.4"}},
			want:   client{IP: "198.51.100.1", Peer: "10.0.0.2", Forwarded: true}},
		{name: "zoned link-local peer", remote: "[fe80::1%eth0]:80",
			header: hdr{"X-Forwarded-For": {"2001:db8:2::1"}},
			want:   client{IP: "2001:db8:2::1", Peer: "fe80::1", Forwarded: true}},
		{name: "IPv6 client behind an IPv4 proxy", remote: "10.0.0.2:1234",
			header: hdr{"X-Forwarded-For": {"2001:db8:2::1"}},
			want:   client{IP: "2001:db8:2::1", Peer: "10.0.0.2", Forwarded: true}},

		// Malformed: the walk stops, the peer is the client.
		{name: "malformed rightmost entry", remote: "10.0.0.2:1234",
			header:  hdr{"X-Forwarded-For": {"198.51.100.1, garbage"}},
			want:    client{IP: "10.0.0.2", Peer: "10.0.0.2"},
			wantErr: `"garbage" is not an IP address`},
		{name: "empty entry behind a trusted hop", remote: "10.0.0.2:1234",
			header:  hdr{"X-Forwarded-For": {"198.51.100.1,,10.0.0.3"}},
			want:    client{IP: "10.0.0.2", Peer: "10.0.0.2"},
			wantErr: "not an IP address"},
		{name: "malformed entry left of the client is never read", remote: "10.0.0.2:1234",
			header: hdr{"X-Forwarded-For": {"garbage, 198.51.100.1"}},
			want:   client{IP: "198.51.100.1", Peer: "10.0.0.2", Forwarded: true}},
		{name: "out-of-range address", remote: "10.0.0.2:1234",
			header:  hdr{"X-Forwarded-For": {"198.51.100.300"}},
			want:    client{IP: "10.0.0.2", Peer: "10.0.0.2"},
			wantErr: "not an IP address"},
		{name: "a CIDR is not an address", remote: "10.0.0.2:1234",
			header:  hdr{"X-Forwarded-For": {"198.51.100.0/24"}},
			want:    client{IP: "10.0.0.2", Peer: "10.0.0.2"},
			wantErr: "not an IP address"},
		{name: "unknown", remote: "10.0.0.2:1234",
			header:  hdr{"X-Forwarded-For": {"unknown"}},
			want:    client{IP: "10.0.0.2", Peer: "10.0.0.2"},
			wantErr: "not an IP address"},
		{name: "a long bad entry is cut in the error", remote: "10.0.0.2:1234",
			header:  hdr{"X-Forwarded-For": {strings.Repeat("x", 5000)}},
			want:    client{IP: "10.0.0.2", Peer: "10.0.0.2"},
			wantErr: "…"},
		{name: "blank header is absent", remote: "10.0.0.2:1234",
			header: hdr{"X-Forwarded-For": {"  "}},
			want:   client{IP: "10.0.0.2", Peer: "10.0.0.2"}},
		{name: "peer that is no IP address", remote: "@",
			header: hdr{"X-Forwarded-For": {"198.51.100.1"}},
			want:   client{IP: "@", Peer: "@"}},

		// Forwarded (RFC 7239).
		{name: "forwarded (proto only from the nearest proxy's element)", remote: "10.0.0.2:1234",
			header: hdr{"Forwarded": {`for=198.51.100.1;proto=https, For="[2001:db8:1::7]:80";by=10.0.0.2`}},
			want:   client{IP: "198.51.100.1", Peer: "10.0.0.2", Forwarded: true}},
		{name: "forwarded IPv4 with port, quoted", remote: "10.0.0.2:1234",
			header: hdr{"Forwarded": {`for="198.51.100.1:4711"`}},
			want:   client{IP: "198.51.100.1", Peer: "10.0.0.2", Forwarded: true}},
		{name: "forwarded IPv6 client", remote: "10.0.0.2:1234",
			header: hdr{"Forwarded": {`for="[2001:db8:2::1]";PROTO="https"`}},
			want:   client{IP: "2001:db8:2::1", Peer: "10.0.0.2", Forwarded: true, TLS: true}},
		{name: "forwarded: client's element left of the real one ignored", remote: "10.0.0.2:1234",
			header: hdr{"Forwarded": {"for=6.6.6.6", "for=198.51.100.1"}},
			want:   client{IP: "198.51.100.1", Peer: "10.0.0.2", Forwarded: true}},
		{name: "X-Forwarded-For wins over Forwarded", remote: "10.0.0.2:1234",
			header: hdr{"X-Forwarded-For": {"198.51.100.1"}, "Forwarded": {"for=6.6.6.6"}},
			want:   client{IP: "198.51.100.1", Peer: "10.0.0.2", Forwarded: true}},
		{name: "forwarded unknown node", remote: "10.0.0.2:1234",
			header:  hdr{"Forwarded": {"for=unknown"}},
			want:    client{IP: "10.0.0.2", Peer: "10.0.0.2"},
			wantErr: "not an IP address"},
		{name: "forwarded obfuscated node", remote: "10.0.0.2:1234",
			header:  hdr{"Forwarded": {"for=_hidden"}},
			want:    client{IP: "10.0.0.2", Peer: "10.0.0.2"},
			wantErr: "not an IP address"},
		{name: "forwarded element without for", remote: "10.0.0.2:1234",
			header:  hdr{"Forwarded": {"for=198.51.100.1, proto=https"}},
			want:    client{IP: "10.0.0.2", Peer: "10.0.0.2", TLS: true},
			wantErr: "no for= address"},
		{name: "forwarded unterminated quote", remote: "10.0.0.2:1234",
			header:  hdr{"Forwarded": {`for="198.51.100.1`}},
			want:    client{IP: "10.0.0.2", Peer: "10.0.0.2"},
			wantErr: "unterminated"},
		{name: "forwarded IPv6 without brackets", remote: "10.0.0.2:1234",
			header:  hdr{"Forwarded": {`for="2001:db8:2::1"`}},
			want:    client{IP: "10.0.0.2", Peer: "10.0.0.2"},
			wantErr: "not an IP address"},
		{name: "forwarded pair without =", remote: "10.0.0.2:1234",
			header:  hdr{"Forwarded": {"for=198.51.100.1;secret"}},
			want:    client{IP: "10.0.0.2", Peer: "10.0.0.2"},
			wantErr: "no '='"},
		{name: "forwarded too long", remote: "10.0.0.2:1234",
			header:  hdr{"Forwarded": {strings.Repeat("for=10.0.0.1,", 1000) + "for=198.51.100.1"}},
			want:    client{IP: "10.0.0.2", Peer: "10.0.0.2"},
			wantErr: "longer than"},

		// TLS as the proxy reports it.
		{name: "trusted proxy says https", remote: "10.0.0.2:1234",
			header: hdr{"X-Forwarded-For": {"198.51.100.1"}, "X-Forwarded-Proto": {"HTTPS"}},
			want:   client{IP: "198.51.100.1", Peer: "10.0.0.2", Forwarded: true, TLS: true}},
		{name: "trusted proxy says http", remote: "10.0.0.2:1234",
			header: hdr{"X-Forwarded-Proto": {"http"}},
			want:   client{IP: "10.0.0.2", Peer: "10.0.0.2"}},
		{name: "the nearest proxy's proto counts", remote: "10.0.0.2:1234",
			header: hdr{"X-Forwarded-Proto": {"https, http"}},
			want:   client{IP: "10.0.0.2", Peer: "10.0.0.2"}},
		{name: "X-Forwarded-Proto wins over Forwarded proto", remote: "10.0.0.2:1234",
			header: hdr{"X-Forwarded-Proto": {"http"}, "Forwarded": {"for=198.51.100.1;proto=https"}},
			want:   client{IP: "198.51.100.1", Peer: "10.0.0.2", Forwarded: true}},
		{name: "real TLS", remote: "203.0.113.5:1234", tls: true,
			header: hdr{"X-Forwarded-Proto": {"http"}},
			want:   client{IP: "203.0.113.5", Peer: "203.0.113.5", TLS: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := http.NewRequest(http.MethodGet, "http://callrec.example.com/", nil)
			if err != nil {
				t.Fatal(err)
			}
			r.RemoteAddr = tt.remote
			for k, vs := range tt.header {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			tp := trusted
			if tt.none {
				tp = nil
			}
			got, err := clientOf(r, tp)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("client (-want +got):\n%s", diff)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			case err != nil && len(err.Error()) > 200:
				t.Errorf("error is %d bytes long: header data must be cut", len(err.Error()))
			}
		})
	}
}

// FuzzClientOf checks that no header crashes the walk, that an untrusted
// peer's headers never count, and that a forwarded address is an address.
func FuzzClientOf(f *testing.F) {
	trusted, err := ParseTrustedProxies("10.0.0.0/8, 2001:db8:1::/48")
	if err != nil {
		f.Fatal(err)
	}
	f.Add("10.0.0.2:80", "198.51.100.1, 10.0.0.3", "", "https")
	f.Add("10.0.0.2:80", "", `for="[2001:db8::1]:80";proto=https, for=10.0.0.9`, "")
	f.Add("203.0.113.1:80", "198.51.100.1", "for=198.51.100.2", "https")
	f.Add("[2001:db8:1::1]:443", "[2001:db8:2::1]:1, garbage", `for="\"`, "http, https")
	f.Fuzz(func(t *testing.T, remote, xff, fwd, proto string) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
		r.Header.Set("X-Forwarded-For", xff)
		r.Header.Set("Forwarded", fwd)
		r.Header.Set("X-Forwarded-Proto", proto)
		c, err := clientOf(r, trusted)
		peer, ok := peerAddr(remote)
		if !ok || !isTrusted(peer, trusted) {
			if c.Forwarded || c.TLS || c.IP != c.Peer || err != nil {
				t.Fatalf("untrusted peer %q: client %+v, err %v; want its own address", remote, c, err)
			}
			return
		}
		if err != nil && (c.Forwarded || c.IP != c.Peer) {
			t.Fatalf("malformed header: client %+v, want the peer", c)
		}
		if c.Forwarded {
			a, perr := netip.ParseAddr(c.IP)
			if perr != nil || a.Zone() != "" || a.Is4In6() {
				t.Fatalf("forwarded client %q is not a plain IP address", c.IP)
			}
		}
	})
}
