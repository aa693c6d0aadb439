package pool

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"

	"callrec"
)

// ErrUnknownMember is returned (wrapped) by Drain for a name that is not a
// live member.
var ErrUnknownMember = errors.New("no such live pool member")

// DefaultDrainTimeout bounds Drain when its context has no deadline.
const DefaultDrainTimeout = 10 * time.Second

// maxDrainAge is how old (or how far in the future, for clock skew) a drain
// request may be. It limits replays of a captured request.
const maxDrainAge = 5 * time.Minute

// drainRetry is how often an unacknowledged drain request is sent again.
const drainRetry = time.Second

// User message kinds: the first byte of a memberlist user message.
const (
	msgDrain    byte = 'D'
	msgDrainAck byte = 'A'
)

// drainRequest asks Target to drain. It travels over memberlist's reliable
// (TCP) user messages, encrypted and authenticated with the pool's key.
type drainRequest struct {
	ID       string    `json:"id"`
	From     string    `json:"from"`
	FromAddr string    `json:"from_addr"` // where to send the ack
	Target   string    `json:"target"`
	At       time.Time `json:"at"`
}

// drainAck confirms that Node started draining (or already was).
type drainAck struct {
	ID      string `json:"id"`
	Node    string `json:"node"`
	Already bool   `json:"already,omitempty"`
}

// Drain asks member name to drain: it calls that member's OnDrain (once, on
// the first request), announces it Draining so Pick skips it, and
// acknowledges. Drain returns when the acknowledgement arrives. The request
// goes straight to the member over memberlist's reliable (TCP) user
// messages, encrypted and authenticated with SecretKey, and is resent every
// second until acknowledged. Without SecretKey, anyone who can reach the
// gossip port can drain members.
//
// Errors: ErrUnknownMember when name is not a live member; a timeout (ctx,
// or DefaultDrainTimeout when ctx has no deadline) when no acknowledgement
// came, with the last send error if any.
func (p *Pool) Drain(ctx context.Context, name string) error {
	m, ok := p.Member(name)
	if !ok || m.State != StateAlive {
		return fmt.Errorf("drain %q: %w", name, ErrUnknownMember)
	}
	if name == p.cfg.Name {
		p.drainSelf(p.cfg.Name)
		p.announce(false)
		p.met.drains.WithLabelValues("acknowledged").Inc()
		return nil
	}
	to, err := addrNode(name, m.Addr)
	if err != nil {
		return fmt.Errorf("drain %q: %w", name, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultDrainTimeout)
		defer cancel()
	}
	req := drainRequest{ID: newID(), From: p.cfg.Name, FromAddr: p.Self().Addr, Target: name, At: time.Now().UTC()}
	msg, err := encodeMsg(msgDrain, req)
	if err != nil {
		return fmt.Errorf("drain %q: %w", name, err)
	}
	acked := make(chan drainAck, 1)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return fmt.Errorf("drain %q: pool closed", name)
	}
	p.acks[req.ID] = acked
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.acks, req.ID)
		p.mu.Unlock()
	}()

	var sendErr error
	for {
		if err := p.ml.SendReliable(to, msg); err != nil {
			sendErr = err
		}
		select {
		case ack := <-acked:
			p.met.drains.WithLabelValues("acknowledged").Inc()
			p.log.Info("member drained", "member", name, "already_draining", ack.Already)
			return nil
		case <-ctx.Done():
			p.met.drains.WithLabelValues("timeout").Inc()
			if sendErr != nil {
				return fmt.Errorf("drain %q: not acknowledged: %w (last send error: %v)", name, ctx.Err(), sendErr)
			}
			return fmt.Errorf("drain %q: not acknowledged: %w", name, ctx.Err())
		case <-time.After(drainRetry):
		}
	}
}

// drainSelf marks this member draining and calls OnDrain the first time. It
// reports whether it was draining on an operator's request already.
func (p *Pool) drainSelf(by string) (already bool) {
	p.mu.Lock()
	already = p.drained
	p.drained, p.draining = true, true
	p.mu.Unlock()
	if !already {
		p.log.Info("draining at operator request", "by", by)
		if p.cfg.OnDrain != nil {
			p.cfg.OnDrain()
		}
	}
	return already
}

// drainLoop serves drain requests: drain, announce, acknowledge.
func (p *Pool) drainLoop(ctx context.Context) {
	defer p.loops.Done()
	for {
		var req drainRequest
		select {
		case <-ctx.Done():
			return
		case req = <-p.drainReqs:
		}
		already := p.drainSelf(req.From)
		p.announce(false) // so Draining is on its way before the requester returns
		to, err := addrNode(req.From, req.FromAddr)
		if err == nil {
			var msg []byte
			if msg, err = encodeMsg(msgDrainAck, drainAck{ID: req.ID, Node: p.cfg.Name, Already: already}); err == nil {
				err = p.ml.SendReliable(to, msg)
			}
		}
		if err != nil { // the requester resends; we ack again
			p.log.Debug("drain acknowledgement not sent", "to", req.From, callrec.LogKeyErr, err)
		}
	}
}

// handleMsg dispatches a user message. It runs on memberlist's network
// goroutines and must not block.
func (p *Pool) handleMsg(b []byte) {
	if len(b) == 0 {
		return
	}
	switch b[0] {
	case msgDrain:
		var req drainRequest
		if err := json.Unmarshal(b[1:], &req); err != nil || req.ID == "" {
			p.log.Warn("bad drain request", callrec.LogKeyErr, err)
			return
		}
		if req.Target != p.cfg.Name {
			p.log.Warn("drain request for another member ignored", "target", req.Target, "from", req.From)
			return
		}
		if age := time.Since(req.At); age > maxDrainAge || age < -maxDrainAge {
			p.log.Warn("stale drain request ignored", "from", req.From, "age", age)
			return
		}
		select {
		case p.drainReqs <- req:
		default: // the requester will resend
		}
	case msgDrainAck:
		var ack drainAck
		if err := json.Unmarshal(b[1:], &ack); err != nil {
			p.log.Warn("bad drain acknowledgement", callrec.LogKeyErr, err)
			return
		}
		p.mu.Lock()
		ch := p.acks[ack.ID]
		p.mu.Unlock()
		if ch != nil {
			select {
			case ch <- ack:
			default:
			}
		}
	default:
		p.log.Debug("unknown pool message ignored", "kind", b[0])
	}
}

func encodeMsg(kind byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append([]byte{kind}, b...), nil
}

// addrNode makes a memberlist node to send to from a name and ip:port.
func addrNode(name, addr string) (*memberlist.Node, error) {
	host, sport, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("member address %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	port, err := strconv.ParseUint(sport, 10, 16)
	if ip == nil || err != nil {
		return nil, fmt.Errorf("member address %q is not ip:port", addr)
	}
	return &memberlist.Node{Name: name, Addr: ip, Port: uint16(port)}, nil
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
