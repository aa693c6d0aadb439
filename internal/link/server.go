package link

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"callrec"
)

// StreamKey identifies a stream across reconnects: the adapter's id and the
// stream's id on that adapter.
type StreamKey struct {
	Adapter string
	ID      uint32
}

// Handler is the recorder side: it opens recordings for streams.
type Handler interface {
	// OpenStream starts (or, with req.Resume, continues) the recording of a
	// stream and returns the sink its records go to. reply.LastSeq is the
	// highest record sequence the sink already has.
	OpenStream(ctx context.Context, key StreamKey, req OpenRequest, r *Replier) (StreamSink, OpenReply, error)
}

// StreamSink receives one stream's records, in order, from one goroutine.
type StreamSink interface {
	// Frame delivers an audio frame; f.Payload is only valid during the call.
	Frame(f *callrec.Frame)
	Note(seq uint64, n Note)
	Close(seq uint64, c Close)
	// Detach reports that the connection carrying the stream is gone; the
	// adapter may come back and re-open it.
	Detach(r *Replier)
}

// Replier sends acknowledgements and results for one stream back over the
// connection it arrived on. Safe for concurrent use.
type Replier struct {
	conn *serverConn
	id   uint32
}

// Ack acknowledges every record up to seq as durably written.
func (r *Replier) Ack(seq uint64) { r.conn.queueAck(r.id, seq) }

// Closed reports the finished recording; the adapter forgets the stream.
func (r *Replier) Closed(reply CloseReply) {
	body, _ := json.Marshal(reply)
	r.conn.queueControl(msgClosed, r.id, body)
}

// Failed reports that the recorder cannot go on with the stream.
func (r *Replier) Failed(err error) {
	r.conn.queueControl(msgFailed, r.id, []byte(err.Error()))
}

// Server accepts adapter connections.
type Server struct {
	h    Handler
	node uint16
	log  *slog.Logger

	wg sync.WaitGroup
}

// NewServer returns a Server that hands streams to h.
func NewServer(h Handler, node uint16, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{h: h, node: node, log: log}
}

// Serve accepts connections from ln until ctx is done, then closes ln and
// waits for its connections to end.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	defer s.wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("link accept: %w", err)
		}
		s.wg.Go(func() {
			if err := s.ServeConn(ctx, conn); err != nil {
				s.log.Warn("link connection ended", callrec.LogKeyRemote, conn.RemoteAddr().String(), callrec.LogKeyErr, err)
			}
		})
	}
}

// ServeConn runs one adapter connection until it ends or ctx is done.
func (s *Server) ServeConn(ctx context.Context, conn net.Conn) error {
	c := &serverConn{srv: s, conn: conn, streams: map[uint32]*serverStream{}, wake: make(chan struct{}, 1), acks: map[uint32]uint64{}}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-ctx.Done()
		conn.Close()
	}()
	br := bufio.NewReaderSize(conn, 64<<10)
	if err := c.handshake(br); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.writeLoop(ctx)
	}()
	err := c.readLoop(ctx, br)
	cancel()
	<-done
	for _, st := range c.streams {
		st.sink.Detach(st.replier)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

type serverConn struct {
	srv     *Server
	conn    net.Conn
	adapter string
	streams map[uint32]*serverStream // owned by the read loop

	mu      sync.Mutex
	acks    map[uint32]uint64
	control []byte
	wake    chan struct{}
}

type serverStream struct {
	sink    StreamSink
	replier *Replier
	lastSeq uint64
}

func (c *serverConn) handshake(br *bufio.Reader) error {
	_ = c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.conn.SetDeadline(time.Time{})
	typ, body, _, err := readMessage(br, nil)
	if err != nil {
		return fmt.Errorf("link hello: %w", err)
	}
	if typ != msgHello || len(body) < 1 {
		return fmt.Errorf("%w: want HELLO, got type %d", ErrProtocol, typ)
	}
	if body[0] != Version {
		return fmt.Errorf("%w: adapter speaks version %d, we speak %d", ErrProtocol, body[0], Version)
	}
	if c.adapter, _, err = readString(body[1:]); err != nil {
		return err
	}
	b, off := beginMessage(nil, msgWelcome)
	b = append(b, Version)
	b = binary.BigEndian.AppendUint16(b, c.srv.node)
	if _, err := c.conn.Write(finishMessage(b, off)); err != nil {
		return fmt.Errorf("link welcome: %w", err)
	}
	return nil
}

func (c *serverConn) readLoop(ctx context.Context, br *bufio.Reader) error {
	var buf []byte
	var rec record
	for {
		typ, body, nb, err := readMessage(br, buf)
		buf = nb
		if err != nil {
			return err
		}
		id, body, err := readU32(body)
		if err != nil {
			return err
		}
		switch typ {
		case msgOpen:
			c.open(ctx, id, body)
		case msgRecords:
			st := c.streams[id]
			if st == nil {
				continue // the open failed and the adapter was told
			}
			for len(body) > 0 {
				if body, err = decodeRecord(body, &rec); err != nil {
					return err
				}
				if err := st.deliver(&rec); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("%w: unexpected message type %d", ErrProtocol, typ)
		}
	}
}

func (c *serverConn) open(ctx context.Context, id uint32, body []byte) {
	var req OpenRequest
	r := &Replier{conn: c, id: id}
	if err := json.Unmarshal(body, &req); err != nil {
		r.Failed(fmt.Errorf("bad OPEN: %w", err))
		return
	}
	sink, reply, err := c.srv.h.OpenStream(ctx, StreamKey{Adapter: c.adapter, ID: id}, req, r)
	if err != nil {
		c.srv.log.Error("open stream failed", callrec.LogKeyStreamSID, req.Info.StreamSID, callrec.LogKeyErr, err)
		r.Failed(err)
		return
	}
	c.streams[id] = &serverStream{sink: sink, replier: r, lastSeq: reply.LastSeq}
	b, _ := json.Marshal(reply)
	c.queueControl(msgOpened, id, b)
}

func (st *serverStream) deliver(rec *record) error {
	seq := rec.Frame.Seq
	if seq <= st.lastSeq {
		return nil // a replay of what the recorder already has
	}
	st.lastSeq = seq
	switch rec.Kind {
	case recFrame:
		st.sink.Frame(&rec.Frame)
	case recNote:
		var n Note
		if err := json.Unmarshal(rec.Body, &n); err != nil {
			return fmt.Errorf("%w: note: %v", ErrProtocol, err)
		}
		st.sink.Note(seq, n)
	case recClose:
		var cl Close
		if err := json.Unmarshal(rec.Body, &cl); err != nil {
			return fmt.Errorf("%w: close: %v", ErrProtocol, err)
		}
		st.sink.Close(seq, cl)
	}
	return nil
}

func (c *serverConn) queueAck(id uint32, seq uint64) {
	c.mu.Lock()
	if seq > c.acks[id] {
		c.acks[id] = seq
	}
	c.mu.Unlock()
	c.signal()
}

func (c *serverConn) queueControl(typ byte, id uint32, body []byte) {
	c.mu.Lock()
	var off int
	c.control, off = beginMessage(c.control, typ)
	c.control = appendU32(c.control, id)
	c.control = append(c.control, body...)
	c.control = finishMessage(c.control, off)
	c.mu.Unlock()
	c.signal()
}

func (c *serverConn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// writeLoop sends queued control messages, then acks, in batches. Control
// messages go first so OPENED precedes acks of the same stream and acks of
// a closed stream's last records precede nothing that needs them.
func (c *serverConn) writeLoop(ctx context.Context) {
	var out []byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		}
		c.mu.Lock()
		out = append(out[:0], c.control...)
		c.control = c.control[:0]
		if len(c.acks) > 0 {
			var off int
			out, off = beginMessage(out, msgAck)
			for id, seq := range c.acks {
				out = appendU32(out, id)
				out = binary.AppendUvarint(out, seq)
			}
			out = finishMessage(out, off)
			clear(c.acks)
		}
		c.mu.Unlock()
		if len(out) == 0 {
			continue
		}
		_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.conn.Write(out); err != nil {
			c.srv.log.Warn("link write failed", callrec.LogKeyErr, err)
			c.conn.Close()
			return
		}
	}
}
