// Package ws wraps gorilla/websocket: it is the only package that imports it.
// It offers exactly what callrec needs on both ends of a Twilio Media Stream:
// a server-side upgrade and a client-side dial, and a Conn that reads messages
// into a caller's reusable buffer so the media read loop does not allocate.
package ws

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// Message types.
const (
	TextMessage   = websocket.TextMessage
	BinaryMessage = websocket.BinaryMessage
)

// Close codes (RFC 6455 section 7.4.1).
const (
	CloseNormal           = websocket.CloseNormalClosure
	CloseGoingAway        = websocket.CloseGoingAway
	CloseProtocolError    = websocket.CloseProtocolError
	CloseUnsupportedData  = websocket.CloseUnsupportedData
	CloseInvalidPayload   = websocket.CloseInvalidFramePayloadData
	ClosePolicyViolation  = websocket.ClosePolicyViolation
	CloseMessageTooBig    = websocket.CloseMessageTooBig
	CloseInternalError    = websocket.CloseInternalServerErr
	CloseNoStatusReceived = websocket.CloseNoStatusReceived
	CloseAbnormal         = websocket.CloseAbnormalClosure
)

// ErrMessageTooBig is returned by ReadMessage when a message exceeds the
// connection's read limit.
var ErrMessageTooBig = errors.New("message exceeds read limit")

// CloseError is returned by ReadMessage after the peer sent a close frame.
type CloseError struct {
	Code int
	Text string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("websocket closed by peer: %d %s", e.Code, e.Text)
}

// Conn is one WebSocket connection. ReadMessage must be called from one
// goroutine; the write methods are safe to call from another.
type Conn struct {
	c     *websocket.Conn
	limit int64
}

// UpgradeOptions configures Upgrade.
type UpgradeOptions struct {
	ReadBufferSize  int
	WriteBufferSize int
	ReadLimit       int64 // largest message accepted, bytes
	// CheckOrigin is nil to accept any origin: Twilio sends none.
	CheckOrigin func(r *http.Request) bool
}

// Upgrade turns an HTTP request into a WebSocket connection. On failure it has
// already answered the request.
func Upgrade(w http.ResponseWriter, r *http.Request, opt UpgradeOptions) (*Conn, error) {
	u := websocket.Upgrader{
		ReadBufferSize:  opt.ReadBufferSize,
		WriteBufferSize: opt.WriteBufferSize,
		CheckOrigin:     opt.CheckOrigin,
	}
	if u.CheckOrigin == nil {
		u.CheckOrigin = func(*http.Request) bool { return true }
	}
	c, err := u.Upgrade(w, r, nil)
	if err != nil {
		return nil, fmt.Errorf("websocket upgrade: %w", err)
	}
	return wrap(c, opt.ReadLimit), nil
}

// IsUpgrade reports whether r asks for a WebSocket upgrade.
func IsUpgrade(r *http.Request) bool { return websocket.IsWebSocketUpgrade(r) }

// DialOptions configures Dial.
type DialOptions struct {
	Header          http.Header
	TLSConfig       *tls.Config
	HandshakeTimout time.Duration
	ReadBufferSize  int
	WriteBufferSize int
	// NetDial, when set, opens the TCP connection (tests use it to reach a
	// listener by address whatever the URL's host says).
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Dial opens a client connection to url (ws:// or wss://). On a handshake
// refused by the server, the error says the HTTP status.
func Dial(ctx context.Context, url string, opt DialOptions) (*Conn, error) {
	d := websocket.Dialer{
		TLSClientConfig:  opt.TLSConfig,
		HandshakeTimeout: opt.HandshakeTimout,
		ReadBufferSize:   opt.ReadBufferSize,
		WriteBufferSize:  opt.WriteBufferSize,
		NetDialContext:   opt.NetDial,
	}
	if d.HandshakeTimeout == 0 {
		d.HandshakeTimeout = 10 * time.Second
	}
	c, resp, err := d.DialContext(ctx, url, opt.Header)
	if err != nil {
		if resp != nil {
			return nil, &HandshakeError{Status: resp.StatusCode, Err: err}
		}
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	return wrap(c, 0), nil
}

// HandshakeError is a refused upgrade: the server answered with Status.
type HandshakeError struct {
	Status int
	Err    error
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("websocket handshake refused: HTTP %d: %v", e.Status, e.Err)
}
func (e *HandshakeError) Unwrap() error { return e.Err }

func wrap(c *websocket.Conn, limit int64) *Conn {
	// The limit is enforced by ReadMessage, not by gorilla, so the caller
	// learns of an oversize message and can close with a clear reason.
	c.SetPingHandler(nil)
	return &Conn{c: c, limit: limit}
}

// ReadMessage reads the next message into buf[:0], growing it as needed, and
// returns the message type and bytes. The bytes alias buf's storage.
func (c *Conn) ReadMessage(buf []byte) (int, []byte, error) {
	mt, r, err := c.c.NextReader()
	if err != nil {
		return 0, buf, mapErr(err)
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if c.limit > 0 && int64(len(buf)) > c.limit {
			return mt, buf, ErrMessageTooBig
		}
		if err == io.EOF {
			return mt, buf, nil
		}
		if err != nil {
			return mt, buf, mapErr(err)
		}
	}
}

// Discard reads and drops the next message, returning its type and size.
func (c *Conn) Discard() (int, int64, error) {
	mt, r, err := c.c.NextReader()
	if err != nil {
		return 0, 0, mapErr(err)
	}
	n, err := io.Copy(io.Discard, r)
	return mt, n, mapErr(err)
}

func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return &CloseError{Code: ce.Code, Text: ce.Text}
	}
	if errors.Is(err, websocket.ErrReadLimit) {
		return ErrMessageTooBig
	}
	return err
}

// WriteText sends one text message.
func (c *Conn) WriteText(p []byte) error { return c.c.WriteMessage(websocket.TextMessage, p) }

// WriteBinary sends one binary message.
func (c *Conn) WriteBinary(p []byte) error { return c.c.WriteMessage(websocket.BinaryMessage, p) }

// SendClose sends a close frame with code and reason (cut to the 123 bytes
// a close frame allows). It is safe to call while another goroutine reads.
func (c *Conn) SendClose(code int, reason string) error {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	err := c.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
	if errors.Is(err, websocket.ErrCloseSent) {
		return nil
	}
	return err
}

// CloseWith sends a close frame, waits up to linger for the peer's close
// (discarding what it still sends), then closes the TCP connection.
// Closing with unread data makes the kernel send a reset, which can destroy
// the close frame before the peer reads it; the wait avoids that. Call it
// from the reading goroutine.
func (c *Conn) CloseWith(code int, reason string, linger time.Duration) error {
	werr := c.SendClose(code, reason)
	if werr == nil && linger > 0 {
		_ = c.c.SetReadDeadline(time.Now().Add(linger))
		for {
			if _, _, err := c.Discard(); err != nil {
				break
			}
		}
	}
	cerr := c.c.Close()
	if werr != nil && !errors.Is(werr, net.ErrClosed) {
		return werr
	}
	return cerr
}

// Close closes the TCP connection without a close frame (a cut socket).
func (c *Conn) Close() error { return c.c.Close() }

// SetReadDeadline bounds the next reads.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.c.SetReadDeadline(t) }

// SetWriteDeadline bounds the next writes.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.c.SetWriteDeadline(t) }

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.c.RemoteAddr() }

// NetConn returns the underlying connection (tests cut it to simulate a
// broken pipe).
func (c *Conn) NetConn() net.Conn { return c.c.NetConn() }
