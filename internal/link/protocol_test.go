package link_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"callrec"
	"callrec/internal/link"
)

// Message types and record kinds as on the wire (see wire.go).
const (
	tHello   = 1
	tWelcome = 2
	tOpen    = 3
	tOpened  = 4
	tRecords = 5
	tAck     = 6
	tClosed  = 7
	tFailed  = 8
)

func msg(typ byte, parts ...[]byte) []byte {
	body := bytes.Join(parts, nil)
	b := binary.BigEndian.AppendUint32(nil, uint32(1+len(body)))
	b = append(b, typ)
	return append(b, body...)
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func uv(v uint64) []byte { return binary.AppendUvarint(nil, v) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func hello(version byte, adapter string) []byte {
	return msg(tHello, []byte{version}, uv(uint64(len(adapter))), []byte(adapter))
}

func openMsg(id uint32) []byte {
	return msg(tOpen, u32(id), []byte(`{"info":{"stream_sid":"MZ1","call_sid":"CA1","tracks":["inbound"]}}`))
}

// frameRecord encodes a frame record by hand: kind, seq, track, chunk,
// timestamp, twilio seq, payload length, payload.
func frameRecord(seq uint64, track byte, payloadLen uint64, payload []byte) []byte {
	return cat([]byte{'F'}, uv(seq), []byte{track}, uv(1), uv(20), uv(2), uv(payloadLen), payload)
}

// tcpPair returns the two ends of a loopback TCP connection (which, unlike
// net.Pipe, can be half-closed).
func tcpPair(t *testing.T) (*net.TCPConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	return a.(*net.TCPConn), b
}

// serveScript runs ServeConn on one end of a connection, writes script to
// the other and half-closes it, and returns what the server wrote and
// ServeConn's result.
func serveScript(t *testing.T, h link.Handler, script []byte) ([]byte, error) {
	t.Helper()
	a, b := tcpPair(t)
	defer a.Close()
	srv := link.NewServer(h, testNode, nil)
	errc := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				errc <- fmt.Errorf("ServeConn panicked: %v", p)
			}
		}()
		errc <- srv.ServeConn(context.Background(), b)
	}()
	outc := make(chan []byte, 1)
	go func() {
		out, _ := io.ReadAll(a)
		outc <- out
	}()
	_ = a.SetWriteDeadline(time.Now().Add(waitTimeout))
	_, _ = a.Write(script) // may fail once the server gives up on us: fine
	_ = a.CloseWrite()     // EOF for a well-formed script
	err := recv(t, "ServeConn", errc)
	return recv(t, "server output", outc), err
}

func TestServerProtocolErrors(t *testing.T) {
	ok := hello(link.Version, "adapter-x")
	big := make([]byte, callrec.MaxFramePayload+1)
	tests := []struct {
		name   string
		script []byte
		want   string // in the error text
	}{
		{"zero length", cat(ok, []byte{0, 0, 0, 0, tRecords}), "message length 0"},
		{"length beyond MaxMessage", cat(ok, u32(link.MaxMessage+1), []byte{tRecords}), "message length"},
		{"zero length hello", []byte{0, 0, 0, 0, tHello}, "message length"},
		{"not hello first", cat(openMsg(1)), "want HELLO"},
		{"empty hello", msg(tHello), "want HELLO"},
		{"hello adapter id beyond body", msg(tHello, []byte{link.Version}, uv(10), []byte("ab")), "short string"},
		{"hello bad varint", msg(tHello, []byte{link.Version, 0x80}), "bad varint"},
		{"unknown message type", cat(ok, msg(99, u32(1))), "unexpected message type 99"},
		{"ack from the adapter", cat(ok, msg(tAck, u32(1), uv(1))), "unexpected message type 6"},
		{"short stream id", cat(ok, msg(tRecords, []byte{0, 1})), "short u32"},
		{"empty message", cat(ok, msg(tRecords)), "short u32"},
		{"truncated frame: no track", cat(ok, openMsg(1), msg(tRecords, u32(1), []byte{'F'}, uv(1))), "short frame"},
		{"truncated frame: cut in a varint", cat(ok, openMsg(1), msg(tRecords, u32(1), []byte{'F'}, uv(1), []byte{0, 0x80})), "bad varint"},
		{"truncated record: seq missing", cat(ok, openMsg(1), msg(tRecords, u32(1), []byte{'F'})), "bad varint"},
		{"varint overflow", cat(ok, openMsg(1), msg(tRecords, u32(1), []byte{'F'}, bytes.Repeat([]byte{0xff}, 10), []byte{0x01})), "bad varint"},
		{"frame with track 7", cat(ok, openMsg(1), msg(tRecords, u32(1), frameRecord(1, 7, 1, []byte{9}))), "track 7"},
		{"payload length beyond body", cat(ok, openMsg(1), msg(tRecords, u32(1), frameRecord(1, 0, 100, []byte{1, 2, 3}))), "out of range"},
		{"payload beyond MaxFramePayload", cat(ok, openMsg(1), msg(tRecords, u32(1), frameRecord(1, 0, uint64(len(big)), big))), "out of range"},
		{"chunk beyond uint32", cat(ok, openMsg(1), msg(tRecords, u32(1), []byte{'F'}, uv(1), []byte{0}, uv(1<<32), uv(0), uv(0), uv(0))), "out of range"},
		{"bad record after a good one", cat(ok, openMsg(1), msg(tRecords, u32(1), frameRecord(1, 0, 1, []byte{9}), []byte{'F', 2, 0})), "bad varint"},
		{"unknown record kind", cat(ok, openMsg(1), msg(tRecords, u32(1), []byte{'X'}, uv(1))), "record kind 88"},
		{"note body beyond message", cat(ok, openMsg(1), msg(tRecords, u32(1), []byte{'N'}, uv(1), uv(50), []byte("{}"))), "short record body"},
		{"bad note JSON", cat(ok, openMsg(1), msg(tRecords, u32(1), []byte{'N'}, uv(1), uv(3), []byte("{x}"))), "note"},
		{"bad close JSON", cat(ok, openMsg(1), msg(tRecords, u32(1), []byte{'C'}, uv(1), uv(1), []byte("["))), "close"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := serveScript(t, newFakeHandler(false), tt.script)
			if !errors.Is(err, link.ErrProtocol) {
				t.Fatalf("ServeConn = %v, want an error wrapping ErrProtocol", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ServeConn = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

// TestServerTruncatedMessage: a connection that ends inside a message is
// an error (not the clean end of an adapter that hung up between messages).
func TestServerTruncatedMessage(t *testing.T) {
	ok := hello(link.Version, "adapter-x")
	full := cat(openMsg(1), msg(tRecords, u32(1), frameRecord(1, 0, 3, []byte{1, 2, 3})))
	for _, cut := range []int{1, 4, 5, 9, len(full) - 1} {
		_, err := serveScript(t, newFakeHandler(false), cat(ok, full[:cut]))
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("cut at %d: ServeConn = %v, want unexpected EOF", cut, err)
		}
	}
	if _, err := serveScript(t, newFakeHandler(false), cat(ok, full)); err != nil {
		t.Errorf("uncut: ServeConn = %v", err)
	}
}

// TestServerRefusesVersion: HELLO of another version gets no WELCOME.
func TestServerRefusesVersion(t *testing.T) {
	for _, v := range []byte{0, link.Version + 1, 0xff} {
		h := newFakeHandler(false)
		out, err := serveScript(t, h, cat(hello(v, "future"), openMsg(1)))
		if !errors.Is(err, link.ErrProtocol) || !strings.Contains(err.Error(), "version") {
			t.Errorf("version %d: ServeConn = %v, want a version ErrProtocol", v, err)
		}
		if len(out) != 0 {
			t.Errorf("version %d: server wrote %x, want nothing", v, out)
		}
		if n := len(h.Opens()); n != 0 {
			t.Errorf("version %d: %d streams opened", v, n)
		}
	}
}

// TestServerScript: a well-formed session by hand, including what the
// server must tolerate: records for a stream it does not know, replays at
// or below LastSeq, and an empty RECORDS message.
func TestServerScript(t *testing.T) {
	h := newFakeHandler(true)
	script := cat(
		hello(link.Version, "adapter-x"),
		msg(tRecords, u32(9), []byte("not even records")), // unknown stream: ignored
		openMsg(1),
		msg(tRecords, u32(1)),
		msg(tRecords, u32(1), frameRecord(1, 0, 2, []byte{1, 2}), frameRecord(2, 1, 1, []byte{3})),
		msg(tRecords, u32(1), frameRecord(1, 0, 2, []byte{1, 2}), frameRecord(2, 1, 1, []byte{3}), frameRecord(3, 0, 0, nil)), // a replay
		msg(tRecords, u32(1), []byte{'N'}, uv(4), uv(2), []byte("{}"), []byte{'C'}, uv(5), uv(17), []byte(`{"reason":"stop"}`)),
	)
	a, b := tcpPair(t)
	defer a.Close()
	srv := link.NewServer(h, testNode, nil)
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeConn(context.Background(), b) }()
	_ = a.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := a.Write(script); err != nil {
		t.Fatal(err)
	}
	// The server answers WELCOME with its version and node, then OPENED.
	typ, body := readMsg(t, a)
	if want := cat([]byte{link.Version}, binary.BigEndian.AppendUint16(nil, testNode)); typ != tWelcome || !bytes.Equal(body, want) {
		t.Fatalf("first message %d %x, want WELCOME %x", typ, body, want)
	}
	typ, body = readMsg(t, a)
	if typ != tOpened || !bytes.HasPrefix(body, u32(1)) {
		t.Fatalf("second message %d %x, want OPENED of stream 1", typ, body)
	}
	sink := h.waitSink(t, key("adapter-x", 1))
	sink.waitSeq(t, 5)
	// Acks (the sink acks every record) come, coalesced, up to the close.
	for acked := uint64(0); acked < 5; {
		typ, body := readMsg(t, a)
		if typ != tAck {
			t.Fatalf("message %d %x, want ACK", typ, body)
		}
		for len(body) > 0 {
			if !bytes.HasPrefix(body, u32(1)) {
				t.Fatalf("ACK %x of another stream", body)
			}
			seq, n := binary.Uvarint(body[4:])
			if n <= 0 || seq <= acked {
				t.Fatalf("ACK %x: bad or not increasing seq after %d", body, acked)
			}
			acked, body = seq, body[4+n:]
		}
	}
	_ = a.CloseWrite()
	if err := recv(t, "ServeConn", errc); err != nil {
		t.Fatalf("ServeConn = %v", err)
	}
	got := sink.Records()
	if err := checkConsecutive(got); err != nil {
		t.Fatal(err)
	}
	want := []gotRec{
		{Kind: 'F', Seq: 1, Frame: callrec.Frame{Seq: 1, Track: 0, Chunk: 1, TimestampMS: 20, TwilioSeq: 2, Payload: []byte{1, 2}}},
		{Kind: 'F', Seq: 2, Frame: callrec.Frame{Seq: 2, Track: 1, Chunk: 1, TimestampMS: 20, TwilioSeq: 2, Payload: []byte{3}}},
		{Kind: 'F', Seq: 3, Frame: callrec.Frame{Seq: 3, Track: 0, Chunk: 1, TimestampMS: 20, TwilioSeq: 2}},
		noteRec(4, link.Note{}),
		closeRec(5, link.Close{Reason: callrec.EndStop}),
	}
	if err := diffRecords(want, got); err != nil {
		t.Error(err)
	}
	sink.waitFor(t, "detach", func(s *fakeSink) bool { return s.detaches == 1 })
}

// readMsg reads one message from the server.
func readMsg(t *testing.T, r io.Reader) (byte, []byte) {
	t.Helper()
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		t.Fatalf("read message: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:4])-1)
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatalf("read message body: %v", err)
	}
	return hdr[4], body
}

// fakeRecorder answers a client's HELLO with reply and then reads until the
// connection closes.
func fakeRecorderDial(wg *sync.WaitGroup, dials chan<- struct{}, reply []byte) func(context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		a, b := net.Pipe()
		wg.Go(func() {
			defer b.Close()
			var hdr [5]byte
			if _, err := io.ReadFull(b, hdr[:]); err != nil {
				return
			}
			if _, err := io.CopyN(io.Discard, b, int64(binary.BigEndian.Uint32(hdr[:4])-1)); err != nil {
				return
			}
			_ = b.SetWriteDeadline(time.Now().Add(waitTimeout))
			if _, err := b.Write(reply); err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, b)
		})
		select {
		case dials <- struct{}{}:
		default:
		}
		return a, nil
	}
}

// errLog collects the "err" attributes the client logs.
type errLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *errLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *errLog) WithGroup(string) slog.Handler            { return l }
func (l *errLog) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok && a.Key == callrec.LogKeyErr {
			l.mu.Lock()
			l.errs = append(l.errs, err)
			l.mu.Unlock()
		}
		return true
	})
	return nil
}

func (l *errLog) first() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) == 0 {
		return nil
	}
	return l.errs[0]
}

// TestClientProtocolErrors: a recorder speaking garbage (or another
// version) makes the client drop the connection and dial again; the stream
// stays open, waiting.
func TestClientProtocolErrors(t *testing.T) {
	welcome := msg(tWelcome, []byte{link.Version, 0, 1})
	tests := []struct {
		name  string
		reply []byte
		want  string
	}{
		{"welcome of another version", msg(tWelcome, []byte{link.Version + 1, 0, 1}), "version"},
		{"short welcome", msg(tWelcome, []byte{link.Version}), "want WELCOME"},
		{"opened instead of welcome", msg(tOpened, u32(1), []byte("{}")), "want WELCOME"},
		{"bad length", []byte{0, 0, 0, 0, tWelcome}, "message length"},
		{"unknown message type", cat(welcome, msg(42, u32(1))), "unexpected message type 42"},
		{"hello to the adapter", cat(welcome, msg(tHello, u32(1))), "unexpected message type 1"},
		{"truncated ack", cat(welcome, msg(tAck, u32(1), []byte{0x80})), "bad varint"},
		{"ack without seq", cat(welcome, msg(tAck, []byte{0, 0})), "short u32"},
		{"bad OPENED JSON", cat(welcome, msg(tOpened, u32(1), []byte("{"))), "OPENED"},
		{"bad CLOSED JSON", cat(welcome, msg(tClosed, u32(1), []byte("nope"))), "CLOSED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var peers sync.WaitGroup
			defer peers.Wait()
			dials := make(chan struct{}, 1)
			log := &errLog{}
			c, cancel, runErr := runClient(t, link.ClientConfig{AdapterID: "x", Dial: fakeRecorderDial(&peers, dials, tt.reply), Log: slog.New(log)})
			defer func() {
				cancel()
				if err := recv(t, "Run", runErr); err != nil {
					t.Errorf("Run: %v", err)
				}
			}()
			s := c.Open(streamInfo(1))
			recv(t, "dial", dials)
			recv(t, "redial after the bad reply", dials)
			err := log.first()
			if !errors.Is(err, link.ErrProtocol) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("logged error %v, want ErrProtocol mentioning %q", err, tt.want)
			}
			select {
			case <-s.Done():
				t.Error("stream finished by a protocol error of the connection")
			default:
			}
		})
	}
}

// TestClientIgnoresUnknownStreams: acks and replies for streams the client
// does not have (finished, or never opened) are not errors.
func TestClientIgnoresUnknownStreams(t *testing.T) {
	welcome := msg(tWelcome, []byte{link.Version, 0, 1})
	reply := cat(welcome,
		msg(tAck, u32(77), uv(5), u32(78), uv(1)),
		msg(tOpened, u32(77), []byte(`{"inum":"x"}`)),
		msg(tClosed, u32(77), []byte(`{"seq":3}`)),
		msg(tFailed, u32(77), []byte("gone")),
		msg(tOpened, u32(1), []byte(`{"inum":"0007000000000421"}`)),
	)
	var peers sync.WaitGroup
	defer peers.Wait()
	dials := make(chan struct{}, 1)
	c := link.NewClient(link.ClientConfig{AdapterID: "x", Dial: fakeRecorderDial(&peers, dials, reply)})
	s := c.Open(streamInfo(1)) // before Run: the fake recorder answers at once
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := recv(t, "Run", runErr); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	eventually(t, "OPENED of stream 1", func() bool { return s.INUM() == "0007000000000421" })
	if !c.Connected() || c.Stats.Reconnects.Load() != 0 {
		t.Errorf("Connected %v, Reconnects %d: the replies for unknown streams broke the link", c.Connected(), c.Stats.Reconnects.Load())
	}
}

// TestClientDropsRecorderThatStopsAcknowledging: a recorder that takes the
// stream and its frames but never acknowledges them is dropped after
// AckTimeout, and the client dials again (where, in a pool, another
// recorder gets the replay); the stream itself stays open.
func TestClientDropsRecorderThatStopsAcknowledging(t *testing.T) {
	reply := cat(msg(tWelcome, []byte{link.Version, 0, 1}), msg(tOpened, u32(1), []byte(`{"inum":"0001000000000018"}`)))
	var peers sync.WaitGroup
	defer peers.Wait()
	dials := make(chan struct{}, 1)
	log := &errLog{}
	c, cancel, runErr := runClient(t, link.ClientConfig{AdapterID: "x", AckTimeout: 200 * time.Millisecond,
		Dial: fakeRecorderDial(&peers, dials, reply), Log: slog.New(log)})
	defer func() {
		cancel()
		if err := recv(t, "Run", runErr); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	s := c.Open(streamInfo(1))
	recv(t, "dial", dials)
	if !s.Frame(&callrec.Frame{Track: callrec.TrackInbound, Chunk: 1, TimestampMS: 20, Payload: make([]byte, 160)}) {
		t.Fatal("frame refused")
	}
	recv(t, "redial after the acknowledgements stopped", dials)
	if err := log.first(); !errors.Is(err, link.ErrAckTimeout) {
		t.Errorf("logged error %v, want ErrAckTimeout", err)
	}
	select {
	case <-s.Done():
		t.Error("stream finished because its recorder stalled")
	default:
	}
}
