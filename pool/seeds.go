package pool

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"callrec"
)

// Joined reports whether the pool has reached a seed (or had none to reach).
func (p *Pool) Joined() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.joined
}

// WaitJoined waits until the pool reached a seed or had none to reach. It
// returns ctx's error, wrapped with the last join failure, when ctx ends
// first. Readiness probes use it.
func (p *Pool) WaitJoined(ctx context.Context) error {
	select {
	case <-p.joinedCh:
		return nil
	case <-ctx.Done():
		p.mu.Lock()
		last := p.lastJoinErr
		p.mu.Unlock()
		if last == nil {
			return fmt.Errorf("pool not joined: %w", ctx.Err())
		}
		return fmt.Errorf("pool not joined: %w (last attempt: %v)", ctx.Err(), last)
	}
}

// joinLoop keeps joining: with backoff until a seed answered, then every
// RejoinInterval for seed addresses that are not live members, which brings
// back members on the far side of a healed partition and members that
// started after us.
func (p *Pool) joinLoop(ctx context.Context) {
	defer p.loops.Done()
	if len(p.cfg.Seeds) == 0 {
		return
	}
	backoff, maxBackoff := 500*time.Millisecond, 10*time.Second
	if p.cfg.Fast {
		backoff, maxBackoff = 50*time.Millisecond, time.Second
	}
	for {
		wait := p.cfg.RejoinInterval
		if !p.Joined() {
			wait = jitter(backoff)
			backoff = min(2*backoff, maxBackoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		p.tryJoin(ctx, true)
	}
}

// jitter spreads d by ±20 % so members started together do not retry in step.
func jitter(d time.Duration) time.Duration {
	var b [1]byte
	_, _ = rand.Read(b[:])
	return d*8/10 + d*4/10*time.Duration(b[0])/255
}

// tryJoin resolves the seeds and joins their addresses (only those that are
// not live members yet, when onlyNew), recording the outcome.
func (p *Pool) tryJoin(ctx context.Context, onlyNew bool) {
	if len(p.cfg.Seeds) == 0 {
		p.setJoined(nil)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addrs, resolveErr := p.resolveSeeds(ctx)
	if onlyNew {
		addrs = p.notMembers(addrs)
	}
	if len(addrs) == 0 {
		if resolveErr != nil {
			p.setJoinErr(flatten(resolveErr))
		} else {
			// Every seed is this member (a new pool) or already a live member.
			p.setJoined(nil)
		}
		return
	}
	n, err := p.ml.Join(addrs)
	if n > 0 {
		p.setJoined(addrs)
		return
	}
	if err == nil {
		err = resolveErr
	}
	if err == nil {
		err = errors.New("no seed reachable")
	}
	p.setJoinErr(flatten(err))
}

// flatten turns a multi-line error (memberlist's multierror, errors.Join)
// into one line.
func flatten(err error) error {
	var errs []error
	switch e := err.(type) {
	case interface{ WrappedErrors() []error }:
		errs = e.WrappedErrors()
	case interface{ Unwrap() []error }:
		errs = e.Unwrap()
	default:
		return err
	}
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}

func (p *Pool) setJoined(addrs []string) {
	p.mu.Lock()
	first := !p.joined
	p.joined, p.lastJoinErr = true, nil
	p.mu.Unlock()
	if first {
		close(p.joinedCh)
		p.log.Info("joined pool", "seeds", addrs)
	}
}

func (p *Pool) setJoinErr(err error) {
	p.mu.Lock()
	joined := p.joined
	p.lastJoinErr = err
	p.joinFailures++
	n := p.joinFailures
	p.mu.Unlock()
	switch {
	case joined:
		p.log.Debug("rejoin seeds failed", callrec.LogKeyErr, err)
	case n == 1 || n%10 == 0: // with backoff: about once a minute and a half
		p.log.Warn("pool seeds not reachable yet; retrying", "attempts", n, callrec.LogKeyErr, err)
	default:
		p.log.Debug("pool seeds not reachable yet; retrying", "attempts", n, callrec.LogKeyErr, err)
	}
}

// resolveSeeds turns the seeds into ip:port addresses, without this member's
// own. A name resolves to all its addresses. Seeds that fail to resolve are
// reported in the error; the others are still returned.
func (p *Pool) resolveSeeds(ctx context.Context) ([]string, error) {
	defPort := p.cfg.BindPort
	if defPort == 0 {
		defPort = DefaultPort
	}
	self := p.Self().Addr
	seen := make(map[string]bool)
	var addrs []string
	var errs []error
	add := func(ip net.IP, port int) {
		a := net.JoinHostPort(ip.String(), strconv.Itoa(port))
		if a == self || seen[a] || p.isOwnLoopback(ip, port) {
			return
		}
		seen[a] = true
		addrs = append(addrs, a)
	}
	for _, s := range p.cfg.Seeds {
		host, port, err := splitSeed(s, defPort)
		if err != nil {
			errs = append(errs, fmt.Errorf("seed %q: %w", s, err))
			continue
		}
		if ip := net.ParseIP(host); ip != nil {
			add(ip, port)
			continue
		}
		ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		if err != nil {
			errs = append(errs, fmt.Errorf("resolve seed %q: %w", s, err))
			continue
		}
		for _, ip := range ips {
			add(ip.IP, port)
		}
	}
	return addrs, errors.Join(errs...)
}

// isOwnLoopback reports whether ip:port reaches this member through loopback
// while it listens on every interface.
func (p *Pool) isOwnLoopback(ip net.IP, port int) bool {
	bind := net.ParseIP(p.cfg.BindAddr)
	if p.cfg.BindAddr != "" && (bind == nil || !bind.IsUnspecified()) {
		return false
	}
	_, ownPort, _ := net.SplitHostPort(p.Self().Addr)
	return ip.IsLoopback() && strconv.Itoa(port) == ownPort
}

// splitSeed splits host[:port], defaulting the port.
func splitSeed(s string, defPort int) (string, int, error) {
	if s == "" {
		return "", 0, errors.New("empty seed")
	}
	host, sport, err := net.SplitHostPort(s)
	if err != nil {
		// No port: a name, an IPv4 address or a bare IPv6 address.
		if ip := net.ParseIP(s); ip != nil || !strings.ContainsAny(s, ":[]") {
			return s, defPort, nil
		}
		return "", 0, err
	}
	port, err := strconv.Atoi(sport)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", sport)
	}
	if host == "" {
		return "", 0, errors.New("no host")
	}
	return host, port, nil
}

// notMembers returns the addresses that are not a live member's gossip
// address.
func (p *Pool) notMembers(addrs []string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	live := make(map[string]bool, len(p.members))
	for _, e := range p.members {
		if e.m.State == StateAlive {
			live[e.m.Addr] = true
		}
	}
	out := addrs[:0:0]
	for _, a := range addrs {
		if !live[a] {
			out = append(out, a)
		}
	}
	return out
}
