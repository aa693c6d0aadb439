package link

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"callrec"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// AdapterID names this adapter process; recorders key streams by it, so
	// it must be unique among live adapters (NewAdapterID makes one).
	AdapterID string
	// Dial opens a connection to the recorder.
	Dial func(ctx context.Context) (net.Conn, error)
	// RetainBytes bounds the records kept per stream until acknowledged.
	// Past it, new frames are dropped and reported as an overflow gap.
	RetainBytes int
	// Linger is how long the writer waits after new data to batch more.
	Linger time.Duration
	// AckTimeout: when frames were sent and no acknowledgement came for
	// this long, the recorder is taken as stuck and the connection is
	// dropped (the reconnect may go to another recorder and replays what
	// was not acknowledged). 0 means DefaultAckTimeout; negative disables.
	AckTimeout time.Duration
	// Metrics, shared by every Client of the process, receives this
	// client's metrics while Run runs; nil records none.
	Metrics *Metrics
	Log     *slog.Logger
}

// Defaults for ClientConfig.
const (
	DefaultRetainBytes = 1 << 20 // ≈ 50 s of two-track audio
	DefaultLinger      = 2 * time.Millisecond
	DefaultAckTimeout  = 15 * time.Second
)

// ErrAckTimeout ends a connection whose recorder stopped acknowledging.
var ErrAckTimeout = errors.New("link: recorder stopped acknowledging")

// ErrClientClosed finishes streams still open when the client stops.
var ErrClientClosed = errors.New("link: client closed")

// ClientStats are cumulative counters of a Client.
type ClientStats struct {
	FramesQueued   atomic.Int64
	FramesDropped  atomic.Int64 // retention budget exceeded
	BytesSent      atomic.Int64
	Acks           atomic.Int64
	Reconnects     atomic.Int64
	RetainedBytes  atomic.Int64 // current, all streams
	StreamsActive  atomic.Int64
	StreamsFailed  atomic.Int64
	AckLatencyNsum atomic.Int64 // sum of (ack time - send time) of acked batches, for a mean
}

// Client is the adapter end of a link to one recorder. Streams never block
// their caller: records go into a bounded per-stream buffer, and one writer
// goroutine per connection sends them in batches.
type Client struct {
	cfg   ClientConfig
	log   *slog.Logger
	Stats ClientStats

	wake chan struct{}

	mu        sync.Mutex
	streams   map[uint32]*Stream
	ready     []*Stream
	nextID    uint32
	connected bool
	node      uint16
	closed    bool

	lastAck atomic.Int64 // unix ns of the last ACK (or of connecting)
}

// NewClient returns a Client; Run connects it.
func NewClient(cfg ClientConfig) *Client {
	if cfg.RetainBytes <= 0 {
		cfg.RetainBytes = DefaultRetainBytes
	}
	if cfg.RetainBytes > MaxMessage/2 {
		cfg.RetainBytes = MaxMessage / 2
	}
	if cfg.Linger < 0 {
		cfg.Linger = 0
	} else if cfg.Linger == 0 {
		cfg.Linger = DefaultLinger
	}
	if cfg.AckTimeout == 0 {
		cfg.AckTimeout = DefaultAckTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Client{cfg: cfg, log: cfg.Log, wake: make(chan struct{}, 1), streams: map[uint32]*Stream{}}
}

// Connected reports whether the client has a live connection.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected
}

// retained returns the bytes held for replay by every stream, exactly (not
// as last published to Stats).
func (c *Client) retained() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, s := range c.streams {
		s.mu.Lock()
		n += len(s.buf) - s.ackOff
		s.mu.Unlock()
	}
	return n
}

// Active returns the number of streams not yet finished.
func (c *Client) Active() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.streams)
}

// Run keeps a connection to the recorder until ctx is done, reconnecting
// with exponential backoff and replaying unacknowledged records. Streams
// still open when it returns finish with ErrClientClosed.
func (c *Client) Run(ctx context.Context) error {
	defer c.shutdown()
	if m := c.cfg.Metrics; m != nil {
		m.add(c)
		defer m.remove(c)
	}
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		conn, err := c.cfg.Dial(ctx)
		if err == nil {
			var start time.Time
			start, err = time.Now(), c.serve(ctx, conn)
			if time.Since(start) > 5*time.Second {
				backoff = 50 * time.Millisecond
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		c.log.Warn("recorder link down, reconnecting", callrec.LogKeyErr, err, "backoff", backoff)
		c.Stats.Reconnects.Add(1)
		if m := c.cfg.Metrics; m != nil {
			m.reconnects.Inc()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	return nil
}

func (c *Client) shutdown() {
	c.mu.Lock()
	c.closed = true
	streams := make([]*Stream, 0, len(c.streams))
	for _, s := range c.streams {
		streams = append(streams, s)
	}
	c.streams = map[uint32]*Stream{}
	c.mu.Unlock()
	for _, s := range streams {
		s.finish(nil, ErrClientClosed)
	}
}

// serve runs one connection until it fails or ctx is done.
func (c *Client) serve(ctx context.Context, conn net.Conn) error {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() }) // also during the handshake
	defer stop()
	br := bufio.NewReaderSize(conn, 32<<10)
	if err := c.handshake(conn, br); err != nil {
		return err
	}
	c.mu.Lock()
	c.connected = true
	c.ready = c.ready[:0]
	var replay int
	for _, s := range c.streams {
		replay += s.rewind()
		c.ready = append(c.ready, s)
	}
	c.mu.Unlock()
	if m := c.cfg.Metrics; m != nil && replay > 0 {
		m.replayedBytes.Add(float64(replay))
	}
	c.signal()
	c.log.Info("recorder link up", "recorder_node", c.node, callrec.LogKeyRemote, conn.RemoteAddr().String())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.lastAck.Store(time.Now().UnixNano())
	var stuck atomic.Bool
	if c.cfg.AckTimeout > 0 {
		go c.watchAcks(ctx, conn, &stuck)
	}
	errc := make(chan error, 2)
	go func() { errc <- c.writeLoop(ctx, conn) }()
	go func() { errc <- c.readLoop(br) }()
	err := <-errc
	cancel()
	conn.Close()
	<-errc
	if stuck.Load() {
		err = ErrAckTimeout
		if m := c.cfg.Metrics; m != nil {
			m.ackTimeouts.Inc()
		}
	}
	c.mu.Lock()
	c.connected = false
	c.mu.Unlock()
	if ctx.Err() != nil && errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// watchAcks closes conn when sent frames wait longer than AckTimeout for
// an acknowledgement.
func (c *Client) watchAcks(ctx context.Context, conn net.Conn, stuck *atomic.Bool) {
	t := time.NewTicker(max(c.cfg.AckTimeout/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if time.Since(time.Unix(0, c.lastAck.Load())) > c.cfg.AckTimeout && c.awaitingAck() {
			c.log.Warn("recorder stopped acknowledging: dropping the connection", "ack_timeout", c.cfg.AckTimeout, "recorder_node", c.node)
			stuck.Store(true)
			conn.Close()
			return
		}
	}
}

// awaitingAck reports whether some stream has frames sent on this
// connection and not acknowledged.
func (c *Client) awaitingAck() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.streams {
		s.mu.Lock()
		waiting := s.sentOff > s.ackOff
		s.mu.Unlock()
		if waiting {
			return true
		}
	}
	return false
}

func (c *Client) handshake(conn net.Conn, br *bufio.Reader) error {
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	defer conn.SetDeadline(time.Time{})
	b, off := beginMessage(nil, msgHello)
	b = append(b, Version)
	b = appendString(b, c.cfg.AdapterID)
	if _, err := conn.Write(finishMessage(b, off)); err != nil {
		return fmt.Errorf("link hello: %w", err)
	}
	typ, body, _, err := readMessage(br, nil)
	if err != nil {
		return fmt.Errorf("link welcome: %w", err)
	}
	if typ != msgWelcome || len(body) < 3 {
		return fmt.Errorf("%w: want WELCOME, got type %d", ErrProtocol, typ)
	}
	if body[0] != Version {
		return fmt.Errorf("%w: recorder speaks version %d, we speak %d", ErrProtocol, body[0], Version)
	}
	c.node = binary.BigEndian.Uint16(body[1:3])
	return nil
}

func (c *Client) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *Client) enqueue(s *Stream) {
	c.mu.Lock()
	c.ready = append(c.ready, s)
	c.mu.Unlock()
	c.signal()
}

func (c *Client) writeLoop(ctx context.Context, conn net.Conn) error {
	var out []byte
	var spare []*Stream
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.wake:
		}
		linger.Reset(c.cfg.Linger)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-linger.C:
		}
		c.mu.Lock()
		ready := c.ready
		c.ready = spare[:0]
		c.mu.Unlock()
		out = out[:0]
		for _, s := range ready {
			out = s.drainTo(out)
		}
		spare = ready
		if len(out) == 0 {
			continue
		}
		_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write(out); err != nil {
			return fmt.Errorf("link write: %w", err)
		}
		c.Stats.BytesSent.Add(int64(len(out)))
		if m := c.cfg.Metrics; m != nil {
			m.sentBytes.Add(float64(len(out)))
		}
		if cap(out) > 8<<20 {
			out = nil // do not keep a replay-sized buffer forever
		}
	}
}

func (c *Client) readLoop(br *bufio.Reader) error {
	var buf []byte
	for {
		typ, body, nb, err := readMessage(br, buf)
		buf = nb
		if err != nil {
			return fmt.Errorf("link read: %w", err)
		}
		if err := c.handle(typ, body); err != nil {
			return err
		}
	}
}

func (c *Client) handle(typ byte, body []byte) error {
	if typ == msgAck {
		c.lastAck.Store(time.Now().UnixNano())
		for len(body) > 0 {
			id, rest, err := readU32(body)
			if err != nil {
				return err
			}
			seq, rest, err := uvarint(rest)
			if err != nil {
				return err
			}
			body = rest
			if s := c.stream(id); s != nil {
				s.ack(seq)
			}
		}
		return nil
	}
	id, rest, err := readU32(body)
	if err != nil {
		return err
	}
	s := c.stream(id)
	switch typ {
	case msgOpened:
		var r OpenReply
		if err := json.Unmarshal(rest, &r); err != nil {
			return fmt.Errorf("%w: OPENED: %v", ErrProtocol, err)
		}
		if s != nil {
			s.opened(r)
		}
	case msgClosed:
		var r CloseReply
		if err := json.Unmarshal(rest, &r); err != nil {
			return fmt.Errorf("%w: CLOSED: %v", ErrProtocol, err)
		}
		if s != nil {
			s.ack(r.Seq)
			c.remove(id)
			s.finish(&r, nil)
		}
	case msgFailed:
		if s != nil {
			c.remove(id)
			c.Stats.StreamsFailed.Add(1)
			s.finish(nil, fmt.Errorf("recorder failed the stream: %s", rest))
		}
	default:
		return fmt.Errorf("%w: unexpected message type %d", ErrProtocol, typ)
	}
	return nil
}

func (c *Client) stream(id uint32) *Stream {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streams[id]
}

func (c *Client) remove(id uint32) {
	c.mu.Lock()
	delete(c.streams, id)
	c.mu.Unlock()
}

// Open starts a stream to the recorder. It never blocks: the OPEN goes out
// with the next batch, and frames may follow at once.
func (c *Client) Open(info callrec.StreamInfo) *Stream {
	c.mu.Lock()
	c.nextID++
	s := &Stream{c: c, id: c.nextID, info: info, needOpen: true, queued: true, done: make(chan struct{})}
	c.Stats.StreamsActive.Add(1) // finish takes it back, also just below
	if c.closed {
		c.mu.Unlock()
		s.finish(nil, ErrClientClosed)
		return s
	}
	c.streams[s.id] = s
	c.ready = append(c.ready, s)
	c.mu.Unlock()
	c.signal()
	return s
}

// Wait blocks until every stream has finished or ctx is done.
func (c *Client) Wait(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for c.Active() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("link: %d streams still open: %w", c.Active(), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// NewAdapterID returns a process-unique adapter id: the role name, the host
// name and a random suffix, so a restarted adapter is never mistaken for the
// one before it.
func NewAdapterID(role string) string {
	host, _ := os.Hostname()
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%s-%x", role, host, b)
}
