package web

import (
	"fmt"
	"iter"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"callrec"
)

// ParseTrustedProxies parses a comma-separated list of CIDRs and single
// addresses ("10.0.0.0/8, 192.0.2.7, 2001:db8::/32") into the prefixes of
// Config.TrustedProxies. Empty items are skipped; IPv4-mapped IPv6 forms
// are stored as IPv4.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var ps []netip.Prefix
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		var p netip.Prefix
		if strings.Contains(item, "/") {
			var err error
			if p, err = netip.ParsePrefix(item); err != nil {
				return nil, fmt.Errorf("trusted proxy %q: want a CIDR or an IP address", item)
			}
		} else {
			a, err := netip.ParseAddr(item)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: want a CIDR or an IP address", item)
			}
			a = a.WithZone("")
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		ps = append(ps, p.Masked())
	}
	return ps, nil
}

// client is who sent a request, as far as the server can tell.
type client struct {
	// IP is the client's address: taken from X-Forwarded-For (or
	// Forwarded) when the connection comes from a trusted proxy, else the
	// connection's own address.
	IP string
	// Peer is the connection's address (without its port).
	Peer string
	// Forwarded says IP came from a forwarding header.
	Forwarded bool
	// TLS says the request came over TLS, or a trusted proxy says the
	// client's did (X-Forwarded-Proto: https).
	TLS bool
}

// logAttrs are the slog attributes naming the client: its address, and
// the proxy it came through when the address was forwarded.
func (c client) logAttrs() []any {
	if c.Forwarded {
		return []any{callrec.LogKeyRemote, c.IP, "proxy", c.Peer}
	}
	return []any{callrec.LogKeyRemote, c.IP}
}

// maxForwardedLen bounds the Forwarded header parsed (it is parsed left to
// right; X-Forwarded-For is walked from the right without copying).
const maxForwardedLen = 8 << 10

// clientOf tells who sent r. Forwarding headers count only when the
// connection comes from one of trusted, and then the client is found by
// walking the list from the right, skipping trusted proxies: the first
// untrusted address is the client (entries left of it may be forged by
// the client itself). If every entry is trusted, the leftmost is the
// client.
//
// X-Forwarded-For wins over Forwarded (RFC 7239), which is read only when
// no X-Forwarded-For is present: nginx and HAProxy (option forwardfor)
// append to X-Forwarded-For but pass a client's Forwarded through, so
// reading Forwarded only in its absence can never let a client choose its
// address where X-Forwarded-For alone would not.
//
// A malformed entry met in the walk stops it: the client is then the
// connection's address, and the error says what was wrong.
func clientOf(r *http.Request, trusted []netip.Prefix) (client, error) {
	c := client{TLS: r.TLS != nil}
	peer, ok := peerAddr(r.RemoteAddr)
	if !ok {
		c.Peer = r.RemoteAddr
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			c.Peer = host
		}
		c.IP = c.Peer
		return c, nil
	}
	c.Peer = peer.String()
	c.IP = c.Peer
	if !isTrusted(peer, trusted) {
		return c, nil // a client must not choose its own address
	}
	if !c.TLS {
		c.TLS = strings.EqualFold(forwardedProto(r.Header), "https")
	}
	var (
		ip  netip.Addr
		err error
	)
	if xff := headerList(r.Header, "X-Forwarded-For"); xff != "" {
		ip, err = walkXFF(xff, trusted)
	} else if fwd := headerList(r.Header, "Forwarded"); fwd != "" {
		ip, err = walkForwarded(fwd, trusted)
	} else {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	c.IP, c.Forwarded = ip.String(), true
	return c, nil
}

// headerList joins the lines of a list header in order ("" when it is
// absent or blank).
func headerList(h http.Header, name string) string {
	vs := h.Values(name)
	if len(vs) == 1 {
		return strings.TrimSpace(vs[0])
	}
	return strings.TrimSpace(strings.Join(vs, ","))
}

// peerAddr parses a connection's "ip:port" (or a bare ip).
func peerAddr(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return normalize(ap.Addr()), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return normalize(a), true
	}
	return netip.Addr{}, false
}

// normalize drops an IPv6 zone and unmaps IPv4-mapped IPv6, so one client
// has one spelling (for rate-limit keys and the audit trail).
func normalize(a netip.Addr) netip.Addr { return a.WithZone("").Unmap() }

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// walkXFF walks an X-Forwarded-For list from the right.
func walkXFF(list string, trusted []netip.Prefix) (netip.Addr, error) {
	var last netip.Addr
	for rest := list; ; {
		i := strings.LastIndexByte(rest, ',')
		entry := strings.TrimSpace(rest[i+1:])
		a, err := parseXFFEntry(entry)
		if err != nil {
			return netip.Addr{}, err
		}
		if !isTrusted(a, trusted) {
			return a, nil
		}
		last = a
		if i < 0 {
			return last, nil // every hop is trusted: the leftmost is the client
		}
		rest = rest[:i]
	}
}

// parseXFFEntry parses one X-Forwarded-For entry: an IP address, or one
// with a port as some proxies write it ("192.0.2.1:4711", "[2001:db8::1]:4711").
func parseXFFEntry(s string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return normalize(a), nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return normalize(ap.Addr()), nil
	}
	if inner, ok := strings.CutPrefix(s, "["); ok && strings.HasSuffix(inner, "]") {
		if a, err := netip.ParseAddr(strings.TrimSuffix(inner, "]")); err == nil && a.Is6() {
			return normalize(a), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("X-Forwarded-For entry %s is not an IP address", quoteShort(s))
}

// walkForwarded walks the for= parameters of a Forwarded header from the
// right. An element without for=, or with an obfuscated or "unknown" node,
// stops the walk like a malformed one: the client cannot be told.
func walkForwarded(h string, trusted []netip.Prefix) (netip.Addr, error) {
	if len(h) > maxForwardedLen {
		return netip.Addr{}, fmt.Errorf("forwarded header longer than %d bytes", maxForwardedLen)
	}
	elems, err := forwardedFor(h)
	if err != nil {
		return netip.Addr{}, err
	}
	var last netip.Addr
	for i := len(elems) - 1; i >= 0; i-- {
		a, err := parseForwardedNode(elems[i])
		if err != nil {
			return netip.Addr{}, err
		}
		if !isTrusted(a, trusted) {
			return a, nil
		}
		last = a
	}
	return last, nil
}

// forwardedFor returns the for= value of each element of a Forwarded
// header ("" where an element has none), unquoted.
func forwardedFor(h string) ([]string, error) {
	var out []string
	for elem := range splitQuoted(h, ',') {
		elem = strings.TrimSpace(elem)
		var v string
		for pair := range splitQuoted(elem, ';') {
			k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if !ok {
				if strings.TrimSpace(pair) == "" {
					continue
				}
				return nil, fmt.Errorf("forwarded: pair %s has no '='", quoteShort(pair))
			}
			if !strings.EqualFold(strings.TrimSpace(k), "for") {
				continue
			}
			u, err := unquote(strings.TrimSpace(val))
			if err != nil {
				return nil, err
			}
			v = u
		}
		out = append(out, v)
	}
	return out, nil
}

// splitQuoted yields the parts of s between sep bytes outside double
// quotes.
func splitQuoted(s string, sep byte) iter.Seq[string] {
	return func(yield func(string) bool) {
		start, quoted := 0, false
		for i := 0; i < len(s); i++ {
			switch c := s[i]; {
			case quoted && c == '\\':
				i++
			case c == '"':
				quoted = !quoted
			case !quoted && c == sep:
				if !yield(s[start:i]) {
					return
				}
				start = i + 1
			}
		}
		yield(s[start:])
	}
}

// unquote undoes an RFC 7230 quoted-string; a token is returned as it is.
func unquote(s string) (string, error) {
	if !strings.HasPrefix(s, `"`) {
		return s, nil
	}
	if len(s) < 2 || !strings.HasSuffix(s, `"`) {
		return "", fmt.Errorf("forwarded: unterminated quoted string %s", quoteShort(s))
	}
	var b strings.Builder
	for i := 1; i < len(s)-1; i++ {
		if s[i] == '\\' && i+1 < len(s)-1 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String(), nil
}

// parseForwardedNode parses a Forwarded node: "192.0.2.1", "192.0.2.1:4711",
// "[2001:db8::1]" or "[2001:db8::1]:4711".
func parseForwardedNode(s string) (netip.Addr, error) {
	if rest, ok := strings.CutPrefix(s, "["); ok {
		host, port, ok := strings.Cut(rest, "]")
		if ok && (port == "" || strings.HasPrefix(port, ":")) {
			if a, err := netip.ParseAddr(host); err == nil && a.Is6() {
				return normalize(a), nil
			}
		}
	} else if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
		return a, nil
	} else if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Is4() {
		return ap.Addr(), nil
	}
	if s == "" {
		return netip.Addr{}, fmt.Errorf("forwarded: an element has no for= address")
	}
	return netip.Addr{}, fmt.Errorf("forwarded: for=%s is not an IP address", quoteShort(s))
}

// forwardedProto is the scheme the nearest proxy says the client used: the
// last X-Forwarded-Proto value, or else the proto= of the last Forwarded
// element.
func forwardedProto(h http.Header) string {
	if vs := h.Values("X-Forwarded-Proto"); len(vs) > 0 {
		v := vs[len(vs)-1]
		return strings.TrimSpace(v[strings.LastIndexByte(v, ',')+1:])
	}
	vs := h.Values("Forwarded")
	if len(vs) == 0 || len(vs[len(vs)-1]) > maxForwardedLen {
		return ""
	}
	var last string
	for elem := range splitQuoted(vs[len(vs)-1], ',') {
		last = elem
	}
	for pair := range splitQuoted(last, ';') {
		if k, v, ok := strings.Cut(strings.TrimSpace(pair), "="); ok && strings.EqualFold(strings.TrimSpace(k), "proto") {
			u, err := unquote(strings.TrimSpace(v))
			if err == nil {
				return u
			}
		}
	}
	return ""
}

// quoteShort quotes s for an error message, cut to a sane length (the
// header comes from the network).
func quoteShort(s string) string {
	const limit = 64
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return fmt.Sprintf("%q", s)
}
