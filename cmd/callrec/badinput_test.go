package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"callrec"
	"callrec/internal/twilio"
	"callrec/internal/ws"
	"callrec/simulate"
)

// fakeTwilio speaks the Media Streams protocol by hand, so a test can send
// exactly the bad input it wants.
type fakeTwilio struct {
	t         *testing.T
	conn      *ws.Conn
	streamSID string
	seq       int
	chunk     [2]int
}

func dialTwilio(t *testing.T, s *system, streamSID string) *fakeTwilio {
	t.Helper()
	h := http.Header{twilio.SignatureHeader: {twilio.Sign(testToken, s.cfg.Media.PublicURL, nil)}}
	c, err := ws.Dial(t.Context(), s.MediaURL, ws.DialOptions{Header: h})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return &fakeTwilio{t: t, conn: c, streamSID: streamSID}
}

func (f *fakeTwilio) send(msg string) {
	f.t.Helper()
	if err := f.conn.WriteText([]byte(msg)); err != nil {
		f.t.Fatalf("send: %v", err)
	}
}

func (f *fakeTwilio) connected() { f.send(`{"event":"connected","protocol":"Call","version":"1.0.0"}`) }

func (f *fakeTwilio) start() {
	f.seq++
	f.send(fmt.Sprintf(`{"event":"start","sequenceNumber":"%d","start":{"accountSid":"ACe268443e43d93dab7ebef303bbe9642f","streamSid":"%s","callSid":"CA%s","tracks":["inbound","outbound"],"customParameters":{"test":"bad-input"},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"%s"}`,
		f.seq, f.streamSID, f.streamSID[2:], f.streamSID))
}

// media sends the next frame of both tracks; payload "" means 160 bytes of audio.
func (f *fakeTwilio) media(payload string) {
	for tr, name := range []string{"inbound", "outbound"} {
		f.seq++
		f.chunk[tr]++
		p := payload
		if p == "" {
			p = base64.StdEncoding.EncodeToString(make([]byte, 160))
		}
		f.send(fmt.Sprintf(`{"event":"media","sequenceNumber":"%d","media":{"track":"%s","chunk":"%d","timestamp":"%d","payload":"%s"},"streamSid":"%s"}`,
			f.seq, name, f.chunk[tr], (f.chunk[tr]-1)*20, p, f.streamSID))
	}
}

func (f *fakeTwilio) stop() {
	f.seq++
	f.send(fmt.Sprintf(`{"event":"stop","sequenceNumber":"%d","stop":{"accountSid":"ACe268443e43d93dab7ebef303bbe9642f","callSid":"CA%s"},"streamSid":"%s"}`, f.seq, f.streamSID[2:], f.streamSID))
}

// closed waits for the server to close the socket and returns its close code and reason.
func (f *fakeTwilio) closed() (int, string) {
	f.t.Helper()
	_ = f.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := f.conn.ReadMessage(nil)
		var ce *ws.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Text
		}
		if err != nil {
			f.t.Fatalf("socket ended without a close frame: %v", err)
		}
	}
}

func sid(n int) string { return fmt.Sprintf("MZ%032x", 0xbad0000+n) }

// TestBadInput sends every kind of bad input while good calls run: each
// gets a clear error or close reason, the process keeps running, and the
// good calls are recorded completely.
func TestBadInput(t *testing.T) {
	s := startRun(t, testConfig(t))
	var wg sync.WaitGroup
	var good *simulate.Summary
	var goodErr error
	wg.Go(func() { good, goodErr = simulate.Run(context.Background(), simConfig(s, 5, 4*time.Second)) })

	type want struct {
		code      int    // close code the server sends (0: stop, normal close)
		text      string // substring of the close reason
		state     callrec.RecordingState
		reason    string
		errKind   string // counted in the recording's error_counts
		errN      int    // how many (default 1)
		recording bool
	}
	cases := []struct {
		name string
		run  func(f *fakeTwilio)
		want want
	}{
		{"malformed JSON", func(f *fakeTwilio) {
			f.connected()
			f.start()
			f.media("")
			f.send(`{"event":"media", not json`)
			f.media("")
			f.stop()
		}, want{code: ws.CloseNormal, state: callrec.StateComplete, reason: callrec.EndStop, errKind: callrec.ErrKindMalformedJSON, recording: true}},
		{"bad base64", func(f *fakeTwilio) {
			f.connected()
			f.start()
			f.media("")
			f.media("!!not*base64!!")
			f.media("")
			f.stop()
		}, want{code: ws.CloseNormal, state: callrec.StateComplete, reason: callrec.EndStop, errKind: callrec.ErrKindBadPayload, errN: 2, recording: true}},
		{"unknown event", func(f *fakeTwilio) {
			f.connected()
			f.start()
			f.media("")
			f.send(`{"event":"transcription","streamSid":"` + f.streamSID + `"}`)
			f.media("")
			f.stop()
		}, want{code: ws.CloseNormal, state: callrec.StateComplete, reason: callrec.EndStop, errKind: callrec.ErrKindUnknownEvent, recording: true}},
		{"second start", func(f *fakeTwilio) {
			f.connected()
			f.start()
			f.media("")
			f.start()
			f.media("")
			f.stop()
		}, want{code: ws.CloseNormal, state: callrec.StateComplete, reason: callrec.EndStop, errKind: callrec.ErrKindDuplicateStart, recording: true}},
		{"1 MiB message", func(f *fakeTwilio) {
			f.connected()
			f.start()
			f.media("")
			f.send(`{"event":"media","x":"` + strings.Repeat("A", 1<<20) + `"}`)
		}, want{code: ws.CloseMessageTooBig, text: "exceeds", state: callrec.StateInterrupted, reason: callrec.EndProtocolError, errKind: callrec.ErrKindOversize, recording: true}},
		{"binary frame", func(f *fakeTwilio) {
			f.connected()
			f.start()
			f.media("")
			if err := f.conn.WriteBinary([]byte{1, 2, 3}); err != nil {
				f.t.Fatal(err)
			}
		}, want{code: ws.CloseUnsupportedData, text: "binary", state: callrec.StateInterrupted, reason: callrec.EndProtocolError, errKind: callrec.ErrKindBinaryFrame, recording: true}},
		{"media before start", func(f *fakeTwilio) {
			f.connected()
			f.media("")
		}, want{code: ws.ClosePolicyViolation, text: "media before start"}},
		{"upgrade then nothing", func(f *fakeTwilio) {},
			want{code: ws.ClosePolicyViolation, text: "no start message within"}},
		{"silence after start", func(f *fakeTwilio) {
			f.connected()
			f.start()
			f.media("")
		}, want{code: ws.ClosePolicyViolation, text: "no message for", state: callrec.StateInterrupted, reason: callrec.EndTimeout, recording: true}},
	}
	// The group returns once every parallel case has finished.
	t.Run("cases", func(t *testing.T) {
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				f := dialTwilio(t, s, sid(i))
				tc.run(f)
				code, text := f.closed()
				if code != tc.want.code || !strings.Contains(text, tc.want.text) {
					t.Errorf("closed with %d %q, want %d containing %q", code, text, tc.want.code, tc.want.text)
				}
				if !tc.want.recording {
					var list struct{ Total int }
					getJSON(t, s.HTTPURL+"/api/recordings?stream_sid="+f.streamSID, &list)
					if list.Total != 0 {
						t.Errorf("%d recordings for a stream that never started", list.Total)
					}
					return
				}
				rec := finished(t, s, f.streamSID)
				if rec.State != tc.want.state || rec.EndReason != tc.want.reason {
					t.Errorf("recording %s/%s (%s), want %s/%s", rec.State, rec.EndReason, rec.EndDetail, tc.want.state, tc.want.reason)
				}
				if n := max(tc.want.errN, 1); tc.want.errKind != "" && rec.Accounting.ErrorCounts[tc.want.errKind] != n {
					t.Errorf("error counts %v, want %d %s", rec.Accounting.ErrorCounts, n, tc.want.errKind)
				}
			})
		}

		t.Run("socket cut without stop", func(t *testing.T) {
			t.Parallel()
			f := dialTwilio(t, s, sid(100))
			f.connected()
			f.start()
			f.media("")
			f.media("")
			f.conn.NetConn().Close()
			rec := finished(t, s, f.streamSID)
			if rec.State != callrec.StateInterrupted || rec.EndReason != callrec.EndSocketClosed {
				t.Errorf("recording %s/%s, want interrupted/socket_closed", rec.State, rec.EndReason)
			}
			if got := rec.Accounting.Tracks[0].Received; got != 2 {
				t.Errorf("received %d inbound frames, want 2", got)
			}
		})
		t.Run("stalled handshake", func(t *testing.T) {
			t.Parallel()
			conn, err := net.Dial("tcp", strings.TrimPrefix(strings.TrimSuffix(s.MediaURL, "/media"), "ws://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, "GET /media HTTP/1.1\r\nHost: x\r\n"); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
			start := time.Now()
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("server kept a stalled handshake open for %v", time.Since(start))
			}
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode < 400 {
					t.Errorf("stalled handshake answered %s", resp.Status)
				}
			}
		})
		for name, sig := range map[string]string{"missing signature": "", "wrong signature": twilio.Sign("wrong-token", s.cfg.Media.PublicURL, nil)} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				h := http.Header{}
				if sig != "" {
					h.Set(twilio.SignatureHeader, sig)
				}
				_, err := ws.Dial(t.Context(), s.MediaURL, ws.DialOptions{Header: h})
				var he *ws.HandshakeError
				if !errors.As(err, &he) || he.Status != http.StatusForbidden {
					t.Errorf("dial error %v, want HTTP 403", err)
				}
			})
		}
		t.Run("plain GET", func(t *testing.T) {
			t.Parallel()
			resp, err := http.Get(strings.Replace(s.MediaURL, "ws://", "http://", 1))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUpgradeRequired {
				t.Errorf("plain GET answered %d, want 426", resp.StatusCode)
			}
		})

	})

	wg.Wait()
	if goodErr != nil || good.Failed != 0 {
		t.Fatalf("good calls: %v, %d failed", goodErr, good.Failed)
	}
	for _, c := range good.Calls {
		rec := finished(t, s, c.StreamSID)
		checkAccounting(t, c, rec)
		left, right := audio(t, s, rec)
		if err := sameAudio(left, c.Tracks[0].Timeline); err != nil {
			t.Errorf("good call %d inbound: %v", c.Index, err)
		}
		if err := sameAudio(right, c.Tracks[1].Timeline); err != nil {
			t.Errorf("good call %d outbound: %v", c.Index, err)
		}
	}
	resp, err := http.Get(s.HTTPURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{`callrec_media_bad_messages_total{kind="malformed_json"} 1`, `callrec_media_connections_refused_total{reason="signature"} 2`} {
		if !strings.Contains(string(body), m) {
			t.Errorf("metrics lack %s", m)
		}
	}
}

// TestRecorderCannotWrite: when the recorder cannot create the recording's
// file, the stream is not silently swallowed: Twilio's socket is closed with
// 1011 and the reason (so Twilio reports stream-error), and the index keeps
// an interrupted record saying why.
func TestRecorderCannotWrite(t *testing.T) {
	cfg := testConfig(t)
	year := filepath.Join(cfg.DataDir, "recorder", "1", time.Now().UTC().Format("2006"))
	if err := os.MkdirAll(filepath.Dir(year), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(year, []byte("not a directory"), 0o640); err != nil {
		t.Fatal(err)
	}
	s := startRun(t, cfg)
	sum, err := simulate.Run(t.Context(), simConfig(s, 1, 2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	c := sum.Calls[0]
	if c.CloseCode != ws.CloseInternalError || !strings.Contains(c.CloseText, "recording failed") {
		t.Errorf("socket closed with %d %q, want 1011 recording failed", c.CloseCode, c.CloseText)
	}
	var list struct{ Recordings []callrec.Recording }
	getJSON(t, s.HTTPURL+"/api/recordings?stream_sid="+c.StreamSID, &list)
	if len(list.Recordings) != 1 || list.Recordings[0].State != callrec.StateInterrupted || list.Recordings[0].EndReason != callrec.EndWriteError {
		t.Errorf("index has %+v, want one interrupted/write_error recording", list.Recordings)
	}
}
