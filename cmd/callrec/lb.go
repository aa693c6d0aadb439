package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"callrec"
	"callrec/lb"
	"callrec/pool"
)

// adapterView is the lb's view of the pool: live media adapters.
type adapterView struct{ p *pool.Pool }

func (v adapterView) Backends() []lb.Backend {
	var out []lb.Backend
	for _, m := range v.p.Members() {
		if m.Meta.Role != pool.RoleMediaAdapter || m.State != pool.StateAlive || m.Meta.Addr == "" {
			continue
		}
		u, err := url.Parse("http://" + m.Meta.Addr)
		if err != nil {
			continue
		}
		out = append(out, lb.Backend{Name: m.Name, URL: u, Active: m.Meta.Active, Draining: m.Meta.Draining})
	}
	return out
}

// runLBCommand runs the WebSocket-aware load balancer in front of the media
// adapters of the pool.
func runLBCommand(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("lb", "Runs the load balancer of the media tier: each Twilio Media Streams upgrade goes to the healthy, non-draining adapter with the fewest streams, as the pool reports them; the copies of a dual-stream pair (<path>/pair/<group>/<copy>) go to distinct adapters by rendezvous hashing, the same on every lb.", stderr)
	var pf poolFlags
	var lf logFlags
	listen := fs.String("listen-addr", "127.0.0.1:8443", "where Twilio's WebSocket upgrades arrive")
	httpAddr := fs.String("http-addr", "127.0.0.1:8088", "metrics and health listen address")
	path := fs.String("path", lb.DefaultPath, "path of the Media Streams endpoint (dual-stream copies arrive under <path>/pair/)")
	tlsCert := fs.String("tls-cert", "", "certificate file: serve wss:// on --listen-addr")
	tlsKey := fs.String("tls-key", "", "key file for --tls-cert")
	trust := fs.Bool("trust-forwarded", false, "keep clients' X-Forwarded-* headers (only behind a proxy of ours)")
	pf.register(fs)
	lf.register(fs)
	if err := parseFlags(fs, args, nil); err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	if !pf.on() {
		return fmt.Errorf("the lb finds adapters in the pool: give --pool-seeds")
	}
	ctx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	reg := newRegistry()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listener: %w", err)
	}
	pc, err := pf.config(log, reg)
	if err != nil {
		ln.Close()
		return err
	}
	var (
		self     atomic.Pointer[pool.Pool]
		balancer atomic.Pointer[lb.LB]
		draining atomic.Bool
	)
	started := time.Now().UTC()
	pc.Meta = func() pool.Meta {
		m := pool.Meta{Role: pool.RoleLB, Version: callrec.Version, Addr: serviceAddr(&pf, ln.Addr(), self.Load()), Draining: draining.Load(), Started: started}
		if b := balancer.Load(); b != nil {
			m.Active = b.Active()
		}
		return m
	}
	pc.OnDrain = func() {
		draining.Store(true)
		if b := balancer.Load(); b != nil {
			go drainThenStop(ctx, b.Active, stopAll, log)
		}
	}
	members, err := pool.Join(ctx, pc)
	if err != nil {
		ln.Close()
		return err
	}
	self.Store(members)
	defer members.Leave(pool.DefaultLeaveTimeout)
	b, err := lb.New(lb.Config{Backends: adapterView{members}, Path: *path, TrustForwarded: *trust, Log: log, Registerer: reg})
	if err != nil {
		ln.Close()
		return err
	}
	balancer.Store(b)
	srv := &http.Server{Handler: b, ReadHeaderTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	wg.Go(func() {
		var err error
		if *tlsCert != "" {
			err = srv.ServeTLS(ln, *tlsCert, *tlsKey)
		} else {
			err = srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			log.Error("lb listener", callrec.LogKeyErr, err)
		}
	})
	ops := http.NewServeMux()
	addOps(ops, reg, func() bool { return members.Joined() && !draining.Load() && len(adapterView{members}.Backends()) > 0 })
	httpLn, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		_ = srv.Close()
		wg.Wait()
		return fmt.Errorf("http listener: %w", err)
	}
	log.Info("lb running", "listen_addr", ln.Addr().String(), "http_addr", httpLn.Addr().String(), "pool_addr", members.Self().Addr, "version", callrec.Version)
	return serveHTTP(ctx, httpLn, ops, log, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		if err := b.Shutdown(sctx); err != nil {
			log.Error("lb shutdown", callrec.LogKeyErr, err)
		}
		wg.Wait()
	})
}
