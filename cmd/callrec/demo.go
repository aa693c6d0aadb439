package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"time"

	"callrec"
	"callrec/simulate"
)

// demoToken returns a random auth token for --demo when none is configured:
// the demo's calls are signed like Twilio's, so signature checks stay on.
func demoToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// runDemo places a steady trickle of realistic calls through the media
// endpoint, as Twilio would, until ctx is done: a new call every few
// seconds, 10–40 s long, at most four at a time.
func runDemo(ctx context.Context, mediaURL, signURL, token string, log *slog.Logger) {
	log = log.With(callrec.LogKeyComponent, "demo")
	log.Info("demo: placing simulated calls", "url", mediaURL)
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case sem <- struct{}{}:
		}
		d := time.Duration(10+mrand.IntN(31)) * time.Second
		wg.Go(func() {
			defer func() { <-sem }()
			sum, err := simulate.Run(ctx, simulate.Config{URL: mediaURL, SignURL: signURL, AuthToken: token, Calls: 1, Duration: d,
				Seed: int64(i), Params: map[string]string{"demo": "true"}})
			if err != nil || sum.Failed > 0 {
				log.Warn("demo call failed", callrec.LogKeyErr, err)
			}
		})
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(2+mrand.IntN(4)) * time.Second):
		}
	}
}
