package lb

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"

	"callrec"
)

// rewrite prepares the adapter's request: everything as the client sent it
// except the forwarding headers (see "Forwarding rules" in the package doc).
// The backend's scheme and host are set per attempt.
func (l *LB) rewrite(pr *httputil.ProxyRequest) {
	in, out := pr.In, pr.Out
	out.URL.RawQuery = in.URL.RawQuery // undo ReverseProxy's cleaning
	out.Host = in.Host
	h := out.Header
	ip, _, err := net.SplitHostPort(in.RemoteAddr)
	if err != nil {
		ip = in.RemoteAddr
	}
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	host := in.Host
	xff := ip
	if l.cfg.TrustForwarded {
		// ReverseProxy dropped these four from out; the others are still there.
		if fwd := in.Header.Values("Forwarded"); len(fwd) > 0 {
			h["Forwarded"] = slices.Clone(fwd)
		}
		if prior := in.Header.Values("X-Forwarded-For"); len(prior) > 0 {
			xff = strings.Join(prior, ", ") + ", " + ip
		}
		if v := in.Header.Get("X-Forwarded-Proto"); v != "" {
			proto = v
		}
		if v := in.Header.Get("X-Forwarded-Host"); v != "" {
			host = v
		}
	} else {
		for k := range h {
			if k == "Forwarded" || k == "X-Real-Ip" || strings.HasPrefix(k, "X-Forwarded-") {
				delete(h, k)
			}
		}
	}
	h.Set("X-Forwarded-For", xff)
	h.Set("X-Forwarded-Proto", proto)
	h.Set("X-Forwarded-Host", host)
}

// attempts is the LB as ReverseProxy's transport: it picks a backend and
// sends it the upgrade; on a connect failure, a timeout or a 5xx answer it
// tries the next best backend (for a pair's copy, the next of its ranking),
// up to MaxAttempts. Nothing reaches the client
// until RoundTrip returns, so a failed attempt is invisible to it.
type attempts LB

// RoundTrip implements http.RoundTripper.
func (a *attempts) RoundTrip(req *http.Request) (*http.Response, error) {
	l := (*LB)(a)
	c, _ := req.Context().Value(connKey{}).(*conn)
	if c == nil {
		return nil, errors.New("lb: upgrade without connection state")
	}
	var failed []error
	for i := 0; i < l.cfg.MaxAttempts; i++ {
		ch, ok := l.pick(c.tried, c.pair)
		if !ok {
			break
		}
		if i > 0 {
			l.m.retries.Inc()
		}
		c.tried = append(c.tried, ch.name)
		// c.ctx, not req's context: it carries ReverseProxy's 1xx trace, which
		// would write a failing backend's 1xx answers to the client.
		out := req.Clone(c.ctx)
		out.URL.Scheme, out.URL.Host = ch.scheme, ch.host
		res, err := l.tr.RoundTrip(out)
		switch {
		case err == nil && res.StatusCode == http.StatusSwitchingProtocols:
			l.m.upgrades.WithLabelValues(ch.name, outcomeSwitched).Inc()
			l.proxying(c, ch)
			if c.pair != nil {
				l.log.Debug("media stream proxied", logKeyBackend, ch.name, callrec.LogKeyRemote, c.remote, "attempt", i+1,
					"pair", clip(c.pair.group, 80), "copy", c.pair.copy)
			} else {
				l.log.Debug("media stream proxied", logKeyBackend, ch.name, callrec.LogKeyRemote, c.remote, "attempt", i+1)
			}
			return res, nil
		case c.ctx.Err() != nil:
			discard(res)
			l.m.upgrades.WithLabelValues(ch.name, outcomeCanceled).Inc()
			l.failed(ch)
			return nil, fmt.Errorf("upgrade to %s abandoned: %w", ch.name, c.ctx.Err())
		case err == nil && res.StatusCode < http.StatusInternalServerError:
			// The adapter's verdict (a bad signature is 403): the client's to see.
			l.m.upgrades.WithLabelValues(ch.name, outcomeRefused).Inc()
			l.failed(ch)
			l.log.Info("media adapter refused an upgrade", logKeyBackend, ch.name, callrec.LogKeyRemote, c.remote, "status", res.StatusCode)
			return res, nil
		case err == nil:
			err = fmt.Errorf("answered the upgrade with %s", res.Status)
			discard(res)
		}
		l.m.upgrades.WithLabelValues(ch.name, outcomeFailed).Inc()
		l.failed(ch)
		l.log.Warn("media adapter failed an upgrade", logKeyBackend, ch.name, callrec.LogKeyRemote, c.remote, "attempt", i+1, callrec.LogKeyErr, err)
		failed = append(failed, fmt.Errorf("%s: %w", ch.name, err))
	}
	return nil, &noBackendError{failed: failed}
}

// discard drains a little of an unwanted answer, so its connection can be
// reused, and closes it.
func discard(res *http.Response) {
	if res == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, res.Body, 4<<10)
	_ = res.Body.Close()
}

// noBackendError is an upgrade no backend took: none could be picked, or
// every attempt failed.
type noBackendError struct {
	failed []error
}

func (e *noBackendError) Error() string {
	if len(e.failed) == 0 {
		return "no backend to try: none in the view, or all draining or already tried"
	}
	msgs := make([]string, len(e.failed))
	for i, err := range e.failed {
		msgs[i] = err.Error()
	}
	return fmt.Sprintf("%d attempts failed: %s", len(e.failed), strings.Join(msgs, "; "))
}

func (e *noBackendError) Unwrap() []error { return e.failed }
