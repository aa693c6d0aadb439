package mediaadapter

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"callrec"
)

// pairSegment introduces the path suffix of a dual-stream copy's URL:
// <public URL>/pair/<url.PathEscape(group)>/<copy>.
const pairSegment = "/pair/"

// initURLs derives the mount path and the parts of signed pair URLs from
// the configuration.
func (s *Server) initURLs() error {
	if s.cfg.PublicURL == "" {
		return nil // unsigned (development): any mount path
	}
	u, err := url.Parse(s.cfg.PublicURL)
	if err != nil {
		return callrec.Errorf(callrec.EINVALID, "public URL %q: %v", s.cfg.PublicURL, err)
	}
	if s.cfg.Path == "" {
		s.cfg.Path = u.EscapedPath()
	}
	// Textually, not through url.URL.String: the signature covers the
	// very characters Twilio was given.
	base, query, hasQuery := strings.Cut(s.cfg.PublicURL, "?")
	s.signBase = strings.TrimSuffix(base, "/")
	if hasQuery {
		s.signQuery = "?" + query
	}
	return nil
}

// route checks a request's path: the mount path itself, or the mount path
// followed by /pair/<group>/<copy>. It returns that suffix exactly as
// requested (still escaped: the signature covers the URL as Twilio was
// given it) and the pair the path names.
func (s *Server) route(r *http.Request) (suffix string, pair *callrec.StreamPair, ok bool) {
	raw := r.URL.EscapedPath()
	if s.cfg.Path == "" { // mount unknown: whatever precedes a pair suffix
		if i := strings.LastIndex(raw, pairSegment); i >= 0 {
			if pair, ok := parsePairPath(raw[i+len(pairSegment):]); ok {
				return raw[i:], pair, true
			}
		}
		return "", nil, true
	}
	if raw == s.cfg.Path {
		return "", nil, true
	}
	mount := strings.TrimSuffix(s.cfg.Path, "/")
	rest, found := strings.CutPrefix(raw, mount+pairSegment)
	if !found {
		return "", nil, false
	}
	pair, ok = parsePairPath(rest)
	return raw[len(mount):], pair, ok
}

// parsePairPath parses "<escaped group>/<copy>".
func parsePairPath(rest string) (*callrec.StreamPair, bool) {
	g, c, found := strings.Cut(rest, "/")
	if !found || strings.Contains(c, "/") {
		return nil, false
	}
	group, err := url.PathUnescape(g)
	if err != nil || group == "" || len(group) > 256 {
		return nil, false
	}
	n, err := strconv.Atoi(c)
	if err != nil || n < 1 || n > callrec.MaxCopies || strconv.Itoa(n) != c {
		return nil, false
	}
	return &callrec.StreamPair{Group: group, Copy: n}, true
}

// signedURL is the URL Twilio was given for a request with this path
// suffix: PublicURL itself, or PublicURL with the suffix appended to its
// path (before its query, if it has one).
func (s *Server) signedURL(suffix string) string {
	if suffix == "" {
		return s.cfg.PublicURL
	}
	return s.signBase + suffix + s.signQuery
}
