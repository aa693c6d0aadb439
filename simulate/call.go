package simulate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"callrec"
	"callrec/internal/twilio"
	"callrec/internal/ws"
)

// silenceFrame is what a recorder writes for a lost frame.
var silenceFrame = bytes.Repeat([]byte{callrec.MulawSilence}, FrameBytes)

// fate is what the simulated network does to one frame.
type fate struct{ drop, dup, reorder bool }

// trackState is one track of a call while it streams.
type trackState struct {
	name   string
	loop   *loop
	offset int // loop frame of chunk 1
	res    *TrackResult
	hash   hash.Hash
	next   fate   // fate of the next chunk, drawn one frame ahead
	msg    []byte // reused message buffer
	sent   int64  // media messages written

	// A frame delayed by Reorder until its successor has been sent.
	held      []byte
	holding   bool
	heldChunk uint32
	heldDup   bool
}

// call is one simulated Media Stream.
type call struct {
	s      *settings
	index  int
	res    *CallResult
	st     *stream
	rng    *rand.Rand // impairments only
	conn   *ws.Conn
	seq    uint64 // last sequenceNumber assigned
	tracks []*trackState

	readDone chan struct{}
	readErr  error

	// params, when set, are the exact customParameters (a stream started
	// through the REST API); otherwise Config.Params plus call_index.
	params map[string]string
	// cut, when closed, makes the call cut its TCP connection (no stop, no
	// close frame) before the next frame: a network failure mid-stream.
	cut <-chan struct{}
	// clock, when set, places chunk 1 on the call's media clock.
	clock *CallClock
}

func newCall(s *settings, index int, res *CallResult) *call {
	res.Index = index
	res.CallSID = NewSID("CA", nil)
	res.StreamSID = NewSID("MZ", nil)
	c := &call{
		s:     s,
		index: index,
		res:   res,
		st:    newStream(s.accountSID, res.CallSID, res.StreamSID),
		rng:   rand.New(rand.NewPCG(uint64(s.Seed), uint64(index))),
	}
	ls := loops()
	n := 1
	if s.both {
		n = 2
	}
	for t := range n {
		tr := callrec.Track(t)
		ts := &trackState{
			name:   tr.String(),
			loop:   ls[t],
			offset: startFrame(index, ls[t].n),
			res:    &res.Tracks[t],
			hash:   sha256.New(),
		}
		if s.KeepAudio {
			ts.res.Timeline = make([]byte, 0, s.frames*FrameBytes)
		}
		c.tracks = append(c.tracks, ts)
	}
	for _, ts := range c.tracks {
		ts.next = c.drawFate()
	}
	return c
}

// run performs the call and fills c.res.
func (c *call) run(ctx context.Context) {
	c.res.Started = time.Now()
	defer func() { c.res.Ended = time.Now() }()
	log := c.s.log.With("call", c.index, callrec.LogKeyCallSID, c.res.CallSID, callrec.LogKeyStreamSID, c.res.StreamSID)

	header := http.Header{}
	if c.s.AuthToken != "" {
		header.Set(twilio.SignatureHeader, twilio.Sign(c.s.AuthToken, c.s.signURL, map[string]string{}))
	}
	conn, err := ws.Dial(ctx, c.s.URL, ws.DialOptions{
		Header:         header,
		TLSConfig:      c.s.TLSConfig,
		NetDial:        c.s.NetDial,
		ReadBufferSize: 512, // the server never sends data on this stream
	})
	if err != nil {
		c.res.Err = fmt.Errorf("call %d: %w", c.index, err)
		log.Warn("simulated call failed to connect", callrec.LogKeyErr, err)
		return
	}
	c.conn = conn
	c.readDone = make(chan struct{})
	go c.read()

	err = c.stream(ctx)
	c.finish(err)
	c.res.LastSeq = c.seq
	for _, ts := range c.tracks {
		ts.res.SHA256 = hex.EncodeToString(ts.hash.Sum(nil))
	}
	if c.res.Err != nil {
		log.Warn("simulated call failed", callrec.LogKeyErr, c.res.Err)
		return
	}
	log.Debug("simulated call ended", "messages", c.res.MessagesSent, "stop", c.res.StopSent,
		"cut", c.res.Cut, "close_code", c.res.CloseCode)
}

// read drains the socket until it fails, to see the server's close frame.
func (c *call) read() {
	defer close(c.readDone)
	buf := make([]byte, 0, 256)
	for {
		_, b, err := c.conn.ReadMessage(buf)
		if err != nil {
			c.readErr = err
			return
		}
		buf = b[:0]
	}
}

// write sends one text message.
func (c *call) write(b []byte) error {
	if err := c.conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if err := c.conn.WriteText(b); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	c.res.MessagesSent++
	return nil
}

// stream sends everything up to and including stop.
func (c *call) stream(ctx context.Context) error {
	if err := c.write(connectedMsg); err != nil {
		return err
	}
	params := c.params
	if params == nil {
		params = make(map[string]string, len(c.s.Params)+1)
		for k, v := range c.s.Params {
			params[k] = v
		}
		params["call_index"] = strconv.Itoa(c.index)
	}
	start, err := c.st.startMsg(c.s.both, params)
	if err != nil {
		return err
	}
	c.seq = 1
	if err := c.write(start); err != nil {
		return err
	}

	c.startAudio(time.Now())
	p := newPacer(ctx, c.s.realtime)
	defer p.stop()
	n := c.s.frames
	cancelled := false
	for k := 1; k <= n; k++ {
		if !p.waitFor(k) {
			cancelled = true
			break
		}
		if c.cut != nil {
			select {
			case <-c.cut:
				c.res.Cut = true
				return nil
			default:
			}
		}
		for _, ts := range c.tracks {
			if err := c.frame(ts, uint32(k), k == n); err != nil {
				return err
			}
		}
	}
	if cancelled {
		// Hung up: a delayed frame goes out now, in order after all.
		for _, ts := range c.tracks {
			if ts.holding {
				ts.holding = false
				if err := c.send(ts, ts.held, ts.heldDup, ts.heldChunk); err != nil {
					return err
				}
			}
		}
	} else {
		p.waitFor(n + 1) // until the end of the last frame's audio
	}
	if c.s.cut && !cancelled {
		c.res.Cut = true
		return nil
	}
	if c.s.NoStop {
		return nil
	}
	c.seq++
	if err := c.write(c.st.appendStop(c.tracks[0].msg[:0], c.seq)); err != nil {
		return err
	}
	c.res.StopSent = true
	return nil
}

// startAudio places chunk 1 on the call's audio: call frame 0 for a call of
// its own, otherwise where the call's media clock is at now.
func (c *call) startAudio(now time.Time) {
	f := 0
	if c.clock != nil {
		f = c.clock.frame(now, c.s.realtime)
	}
	c.res.CallFrame = f
	for _, ts := range c.tracks {
		ts.offset = (startFrame(c.index, ts.loop.n) + f) % ts.loop.n
	}
	c.res.LoopFrame = c.tracks[0].offset
}

// drawFate draws what the network does to a frame.
func (c *call) drawFate() fate {
	var f fate
	if c.s.Drop > 0 {
		f.drop = c.rng.Float64() < c.s.Drop
	}
	if c.s.Duplicate > 0 {
		f.dup = c.rng.Float64() < c.s.Duplicate
	}
	if c.s.Reorder > 0 {
		f.reorder = c.rng.Float64() < c.s.Reorder
	}
	return f
}

// frame generates chunk k of a track and sends it as the network would.
func (c *call) frame(ts *trackState, k uint32, last bool) error {
	f := ts.next
	if !last {
		ts.next = c.drawFate()
	}
	reorder := f.reorder && !f.drop && !last && !ts.next.drop && !ts.holding
	c.seq++
	ts.res.Frames++
	j := (ts.offset + int(k) - 1) % ts.loop.n
	audio := ts.loop.frame(j)
	if f.drop {
		audio = silenceFrame
	}
	ts.hash.Write(audio)
	if c.s.KeepAudio {
		ts.res.Timeline = append(ts.res.Timeline, audio...)
	}
	if f.drop {
		ts.res.Dropped++
		ts.res.DroppedChunks = append(ts.res.DroppedChunks, k)
		return nil
	}
	ts.msg = c.st.appendMedia(ts.msg[:0], c.seq, ts.name, k, uint64(k-1)*uint64(FrameDuration/time.Millisecond), ts.loop.payload(j))
	if reorder {
		ts.held = append(ts.held[:0], ts.msg...)
		ts.holding, ts.heldChunk, ts.heldDup = true, k, f.dup
		return nil
	}
	if err := c.send(ts, ts.msg, f.dup, k); err != nil {
		return err
	}
	if ts.holding {
		ts.holding = false
		if err := c.send(ts, ts.held, ts.heldDup, ts.heldChunk); err != nil {
			return err
		}
		ts.res.Reordered++
		ts.res.ReorderedChunks = append(ts.res.ReorderedChunks, ts.heldChunk)
	}
	return nil
}

// send writes a media message, twice if dup.
func (c *call) send(ts *trackState, msg []byte, dup bool, chunk uint32) error {
	if err := c.write(msg); err != nil {
		return err
	}
	ts.sent++
	if !dup {
		return nil
	}
	if err := c.write(msg); err != nil {
		return err
	}
	ts.sent++
	ts.res.Duplicated++
	ts.res.DuplicatedChunks = append(ts.res.DuplicatedChunks, chunk)
	return nil
}

// finish closes the connection as the call's ending requires, waits for the
// reader, and records how the server closed the socket, if it did.
func (c *call) finish(streamErr error) {
	switch {
	case streamErr != nil:
		c.awaitServerClose()
		c.conn.Close()
	case c.res.Cut:
		c.conn.Close()
		<-c.readDone
		return // the reader saw our own cut
	default:
		c.awaitServerClose()
		// Ignore the error: the peer may have closed the socket already.
		_ = c.conn.CloseWith(ws.CloseNormal, "", 0)
	}
	<-c.readDone
	var ce *ws.CloseError
	if errors.As(c.readErr, &ce) {
		c.res.CloseCode, c.res.CloseText = ce.Code, ce.Text
	}
	if streamErr != nil {
		if ce != nil {
			c.res.Err = fmt.Errorf("call %d: server closed the stream: %w; %w", c.index, ce, streamErr)
		} else {
			c.res.Err = fmt.Errorf("call %d: %w", c.index, streamErr)
		}
	}
}

// awaitServerClose gives the server a moment to close the socket first.
func (c *call) awaitServerClose() {
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	select {
	case <-c.readDone:
	case <-t.C:
	}
}

// pacer releases frames every 20 ms of wall time, or at once when not
// real time. A late tick sends at most maxBurst frames per track; time lost
// beyond that is forgotten, never made up.
type pacer struct {
	done   <-chan struct{}
	ticker *time.Ticker
	base   time.Time // when frame 1 was due
	due    int       // frames due so far
}

func newPacer(ctx context.Context, realtime bool) *pacer {
	p := &pacer{done: ctx.Done()}
	if realtime {
		p.base = time.Now()
		p.ticker = time.NewTicker(FrameDuration)
		p.due = 1
	}
	return p
}

func (p *pacer) stop() {
	if p.ticker != nil {
		p.ticker.Stop()
	}
}

// waitFor blocks until frame k is due; it reports false if ctx ended first.
func (p *pacer) waitFor(k int) bool {
	if p.ticker == nil {
		select {
		case <-p.done:
			return false
		default:
			return true
		}
	}
	for p.due < k {
		select {
		case <-p.done:
			return false
		case <-p.ticker.C:
			sent := k - 1
			due := int(time.Since(p.base)/FrameDuration) + 1
			if due-sent > maxBurst {
				p.base = p.base.Add(time.Duration(due-sent-maxBurst) * FrameDuration)
				due = sent + maxBurst
			}
			p.due = due
		}
	}
	return true
}
