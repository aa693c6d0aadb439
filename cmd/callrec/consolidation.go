package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"callrec"
	"callrec/consolidation/audit"
	"callrec/consolidation/ingest"
	"callrec/consolidation/join"
	"callrec/consolidation/recsource"
	"callrec/consolidation/store"
	"callrec/consolidation/users"
	"callrec/consolidation/web"
	"callrec/pool"
	"callrec/recorder"
)

// consolidationConfig configures consolidation's HTTP side.
type consolidationConfig struct {
	TLSCert, TLSKey string // serve HTTPS on the HTTP listener
	SecureCookies   bool
	SessionIdle     time.Duration
	TrustedProxies  []netip.Prefix
}

func (c *consolidationConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.TLSCert, "tls-cert", "", "certificate file: serve HTTPS on --http-addr (UI, API, webhooks)")
	fs.StringVar(&c.TLSKey, "tls-key", "", "key file for --tls-cert")
	fs.BoolVar(&c.SecureCookies, "secure-cookies", false, "mark session cookies Secure even on plain HTTP (TLS terminated by a proxy in front)")
	fs.DurationVar(&c.SessionIdle, "session-idle", 30*time.Minute, "sign a browser out after this long without a request")
	fs.Func("trusted-proxies", "reverse proxies in front of the UI and API (comma-separated CIDRs or IPs, may repeat): from them, the client's address is read from X-Forwarded-For (or Forwarded) for sign-in rate limits, the audit trail and logs, and X-Forwarded-Proto: https marks cookies Secure (default none: the connection's address, those headers ignored)", func(s string) error {
		ps, err := web.ParseTrustedProxies(s)
		if err != nil {
			return err
		}
		c.TrustedProxies = append(c.TrustedProxies, ps...)
		return nil
	})
}

// consolidation is the open consolidation role: interactions, the join,
// users, the audit trail and the web server.
type consolidation struct {
	store  *store.Store
	joiner *join.Joiner
	users  *users.Store
	audit  *audit.Log
	web    *web.Server
}

// openConsolidation opens the stores under dataDir/consolidation.
func openConsolidation(dataDir string, log *slog.Logger) (*consolidation, error) {
	c := &consolidation{}
	path := func(f string) (string, error) { return consolidationPath(dataDir, f) }
	p, err := path("interactions.db")
	if err == nil {
		c.store, err = store.Open(p)
	}
	if err == nil {
		p, err = path("join.db")
	}
	if err == nil {
		c.joiner, err = join.New(c.store, p, log.With(callrec.LogKeyComponent, "join"))
	}
	if err == nil {
		p, err = path("users.db")
	}
	if err == nil {
		c.users, err = users.Open(p)
	}
	if err == nil {
		p, err = path("audit.db")
	}
	if err == nil {
		c.audit, err = audit.Open(p)
	}
	if err != nil {
		c.close(log)
		return nil, fmt.Errorf("consolidation: %w", err)
	}
	return c, nil
}

// serve builds the web server over the recordings source.
func (c *consolidation) serve(cfg consolidationConfig, recs web.Recordings, recorderAPI http.Handler, log *slog.Logger) {
	c.web = web.New(web.Config{Store: c.store, Joined: c.joiner, Users: c.users, Audit: c.audit, Recordings: recs,
		RecorderAPI: recorderAPI, SecureCookies: cfg.SecureCookies, SessionIdle: cfg.SessionIdle,
		TrustedProxies: cfg.TrustedProxies, Log: log})
	if len(cfg.TrustedProxies) > 0 {
		log.Info("client addresses are read from X-Forwarded-For of trusted proxies", "trusted_proxies", fmt.Sprint(cfg.TrustedProxies))
	}
	for _, p := range cfg.TrustedProxies {
		if p.Bits() == 0 {
			log.Warn("--trusted-proxies trusts every address: any client that reaches consolidation directly can choose the address the audit trail records", "prefix", p.String())
		}
	}
}

func (c *consolidation) close(log *slog.Logger) {
	var cls []io.Closer
	if c.audit != nil {
		cls = append(cls, c.audit)
	}
	if c.users != nil {
		cls = append(cls, c.users)
	}
	if c.joiner != nil {
		cls = append(cls, c.joiner)
	}
	if c.store != nil {
		cls = append(cls, c.store)
	}
	for _, cl := range cls {
		if err := cl.Close(); err != nil {
			log.Error("close consolidation store", callrec.LogKeyErr, err)
		}
	}
}

// demoAdmin makes sure the demo admin exists with a fresh random password
// and returns it (printed by `callrec run --demo`).
func (c *consolidation) demoAdmin(ctx context.Context) (string, string, error) {
	const name = "admin"
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	pw := base64.RawURLEncoding.EncodeToString(b)
	_, err := c.users.Get(ctx, name)
	switch {
	case err == nil:
		if err := c.users.SetPassword(ctx, name, pw); err != nil {
			return "", "", err
		}
		if err := c.users.SetDisabled(ctx, name, false); err != nil {
			return "", "", err
		}
	case callrec.ErrorCode(err) == callrec.ENOTFOUND:
		if err := c.users.Add(ctx, users.User{Name: name, Role: users.Admin, Created: time.Now().UTC()}, pw); err != nil {
			return "", "", err
		}
	default:
		return "", "", err
	}
	if _, err := c.audit.Append(ctx, audit.Entry{Type: audit.UserChanged, Actor: "callrec run --demo", Role: "system", Target: name,
		Details: map[string]string{"password": "generated for the demo"}}); err != nil {
		return "", "", err
	}
	return name, pw, nil
}

// multiNotifier hands recording events to several notifiers; the first
// error is returned after all were tried.
type multiNotifier []callrec.RecordingNotifier

func (m multiNotifier) NotifyRecording(ctx context.Context, ev callrec.RecordingEvent) error {
	var errs []error
	for _, n := range m {
		if err := n.NotifyRecording(ctx, ev); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// recorderNodes parses --recorder-node values "ID=URL".
type recorderNodes map[uint16]string

func (r recorderNodes) String() string { return fmt.Sprint(map[uint16]string(r)) }

func (r recorderNodes) Set(s string) error {
	id, u, ok := strings.Cut(s, "=")
	n, err := strconv.ParseUint(id, 10, 16)
	if !ok || err != nil || n == 0 || n > callrec.MaxNodeID || !strings.HasPrefix(u, "http") {
		return fmt.Errorf("want NODE_ID=http(s)://host:port, got %q", s)
	}
	r[uint16(n)] = u
	return nil
}

// runConsolidationCommand runs consolidation alone: recorders and the
// tracker send to its ingest API; it serves the UI and API and proxies audio
// from the recorder node that holds it.
func runConsolidationCommand(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("consolidation", "Runs consolidation: joins recordings to contacts, serves search, playback, export, audit and the web UI.", stderr)
	var cc consolidationConfig
	var lf logFlags
	nodes := recorderNodes{}
	dataDir := fs.String("data-dir", "./data", "where interactions, users and the audit trail are kept")
	httpAddr := fs.String("http-addr", "127.0.0.1:8085", "UI and API listen address")
	ingestToken := fs.String("ingest-token", "", "bearer token recorders and the tracker present on the ingest API (required)")
	recToken := fs.String("recorder-token", "", "bearer token for the recorders' API (their --api-token)")
	fs.Var(nodes, "recorder-node", "a recorder node's API: ID=URL (repeat for each node; with a pool, recorders are found there too)")
	var pf poolFlags
	pf.register(fs)
	cc.register(fs)
	lf.register(fs)
	if err := parseFlags(fs, args, nil); err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	if len(*ingestToken) < 16 {
		return callrec.Errorf(callrec.EINVALID, "--ingest-token: at least 16 characters")
	}
	c, err := openConsolidation(*dataDir, log)
	if err != nil {
		return err
	}
	defer c.close(log)
	remote := recsource.NewRemote(nodes, *recToken)
	c.serve(cc, remote, nil, log)
	reg := newRegistry()
	mux := http.NewServeMux()
	addOps(mux, reg, func() bool { return true })
	ing := &ingest.Handler{Token: *ingestToken, Joiner: c.joiner, Log: log}
	mux.Handle("POST /api/ingest/", ing)
	mux.Handle("/", c.web.Handler())
	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	if pf.on() {
		pc, err := pf.config(log, reg)
		if err != nil {
			ln.Close()
			return err
		}
		var self atomic.Pointer[pool.Pool]
		started := time.Now().UTC()
		pc.Meta = func() pool.Meta {
			return pool.Meta{Role: pool.RoleConsolidation, Version: callrec.Version, HTTPAddr: serviceAddr(&pf, ln.Addr(), self.Load()), Started: started}
		}
		p, err := pool.Join(ctx, pc)
		if err != nil {
			ln.Close()
			return err
		}
		self.Store(p)
		defer p.Leave(pool.DefaultLeaveTimeout)
		go followRecorders(ctx, p, remote, log)
	}
	scheme := "http"
	if cc.TLSCert != "" {
		scheme = "https"
	}
	log.Info("consolidation running", "http_url", scheme+"://"+ln.Addr().String(), "recorder_nodes", nodes.String(), "version", callrec.Version)
	return serveHTTPTLS(ctx, ln, mux, cc.TLSCert, cc.TLSKey, log, func() {})
}

// followRecorders keeps the remote recording source's node table in step
// with the pool's recorders (node id → http://HTTPAddr).
func followRecorders(ctx context.Context, p *pool.Pool, remote *recsource.Remote, log *slog.Logger) {
	events, cancel := p.Subscribe()
	defer cancel()
	sync := func() {
		for _, m := range p.Members() {
			if m.Meta.Role == pool.RoleRecorder && m.Meta.RecorderNode != 0 && m.Meta.HTTPAddr != "" && m.State == pool.StateAlive {
				remote.SetNode(m.Meta.RecorderNode, "http://"+m.Meta.HTTPAddr)
			}
		}
	}
	sync()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			m := ev.Member
			if m.Meta.Role != pool.RoleRecorder || m.Meta.RecorderNode == 0 {
				continue
			}
			if ev.Type == pool.EventLeave || ev.Type == pool.EventDead {
				log.Info("recorder left the pool: its recordings are unavailable until it is back", "node", m.Meta.RecorderNode, "member", m.Name)
			}
			sync()
		}
	}
}

// serveHTTPTLS is serveHTTP with optional TLS.
func serveHTTPTLS(ctx context.Context, ln net.Listener, h http.Handler, cert, key string, log *slog.Logger, stop func()) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() {
		if cert != "" {
			errc <- srv.ServeTLS(ln, cert, key)
			return
		}
		errc <- srv.Serve(ln)
	}()
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	log.Info("shutting down")
	stop()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if errors.Is(runErr, http.ErrServerClosed) {
		runErr = nil
	}
	return runErr
}

// resyncWindow is how far back a starting `callrec run` hands its
// recorder's recordings to the join again, so events queued but not joined
// when the process stopped are not lost (repeats change nothing).
const resyncWindow = 48 * time.Hour

// resyncRecordings hands every recording started within resyncWindow to the
// join.
func resyncRecordings(ctx context.Context, node *recorder.Node, j callrec.RecordingNotifier) error {
	f := callrec.RecordingFilter{From: time.Now().Add(-resyncWindow), Limit: 500}
	for {
		rs, total, err := node.FindRecordings(ctx, f)
		if err != nil {
			return fmt.Errorf("resync recordings: %w", err)
		}
		for _, r := range rs {
			typ := callrec.RecordingStarted
			if r.State != callrec.StateRecording {
				typ = callrec.RecordingStopped
			}
			if err := j.NotifyRecording(ctx, callrec.RecordingEvent{Type: typ, At: r.UpdatedAt, Recording: *r}); err != nil {
				if callrec.ErrorCode(err) == callrec.EINVALID {
					continue // a recording no call can be joined to (no call SID)
				}
				return fmt.Errorf("resync recording %s: %w", r.INUM, err)
			}
		}
		f.Offset += len(rs)
		if len(rs) == 0 || f.Offset >= total {
			return nil
		}
	}
}
