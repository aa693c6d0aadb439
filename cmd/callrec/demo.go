package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"callrec"
	"callrec/simulate"
	"callrec/simulate/scenario"
)

// demoToken returns a random auth token for --demo when none is configured:
// the demo's calls are signed like Twilio's, so signature checks stay on.
func demoToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// demoTwilio serves the simulator's Twilio REST API on loopback for --demo:
// the CTI path's Start/Stop Stream requests go there, and it opens the
// Media Streams back into us.
type demoTwilio struct {
	tw  *simulate.Twilio
	srv *http.Server
	url string
}

func startDemoTwilio(token string) (*demoTwilio, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	tw := simulate.NewTwilio(simulate.DefaultAccountSID, token, simulate.Config{URL: "ws://unused", Duration: 10 * time.Minute})
	d := &demoTwilio{tw: tw, srv: &http.Server{Handler: tw, ReadHeaderTimeout: 5 * time.Second}, url: "http://" + ln.Addr().String()}
	go func() { _ = d.srv.Serve(ln) }()
	return d, nil
}

func (d *demoTwilio) close() {
	d.tw.Close()
	_ = d.srv.Close()
}

// runDemo plays a steady trickle of whole Flex calls until ctx is done:
// signed Event Streams to our webhook, Start/Stop Stream on the simulated
// Twilio API, real speech audio on the Media Streams; a new call every few
// seconds, at most four at a time, mostly answered calls with some
// transfers, rejections and abandoned calls.
func runDemo(ctx context.Context, eventsURL, token string, tw *simulate.Twilio, log *slog.Logger) {
	log = log.With(callrec.LogKeyComponent, "demo")
	log.Info("demo: placing simulated Flex calls")
	mix := []scenario.Scenario{scenario.Answered, scenario.Answered, scenario.Answered, scenario.RejectedThenAccepted,
		scenario.WarmTransfer, scenario.ExternalTransfer, scenario.AbandonedInQueue, scenario.DuplicatedReordered}
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case sem <- struct{}{}:
		}
		sc := mix[mrand.IntN(len(mix))]
		talk := time.Duration(8+mrand.IntN(23)) * time.Second
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := scenario.Play(ctx, sc, scenario.Env{Sink: &scenario.WebhookSink{URL: eventsURL, AuthToken: token}, Twilio: tw, Talk: talk})
			if err != nil && !errors.Is(err, context.Canceled) {
				log.Warn("demo call failed", "scenario", sc, callrec.LogKeyErr, err)
				return
			}
			if c != nil {
				log.Info("demo call done", "scenario", sc, "task_sid", c.TaskSID)
			}
		})
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(3+mrand.IntN(4)) * time.Second):
		}
	}
}
