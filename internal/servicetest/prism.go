package servicetest

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"callrec/internal/callrectest"
)

// StartPrism serves Twilio's own OpenAPI spec (testdata/twilio/openapi,
// the 2010-04-01 API) with Prism on 127.0.0.1 and returns its base URL. Prism
// validates every request against the spec (a missing Url, a bad Track, a
// malformed SID: 422) and answers with the spec's examples. It is stopped
// when the test ends. Without node or the package it skips, except in CI.
func StartPrism(tb testing.TB) string {
	tb.Helper()
	root := callrectest.Root()
	bin := filepath.Join(root, "test", "services", "node_modules", ".bin", "prism")
	spec := filepath.Join(root, "testdata", "twilio", "openapi", "twilio_api_v2010.json")
	if _, err := exec.LookPath("node"); err != nil {
		missing(tb, "node is not installed")
	}
	if _, err := os.Stat(bin); err != nil {
		missing(tb, bin+" is missing")
	}
	port := freePort(tb)
	cmd := exec.Command(bin, "mock", "-h", "127.0.0.1", "-p", strconv.Itoa(port), spec)
	var out outputBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start prism: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	tb.Cleanup(func() { stopProcess(cmd, done) })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(30 * time.Second)
	for !bytes.Contains(out.Bytes(), []byte("Prism is listening")) {
		select {
		case <-done:
			tb.Fatalf("prism exited:\n%s", out.Bytes())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("prism not listening on %s within 30s:\n%s", addr, out.Bytes())
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("prism output:\n%s", out.Bytes())
		}
	})
	return "http://" + addr
}

// outputBuffer is a bytes.Buffer safe for a writer and a reader.
type outputBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *outputBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *outputBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}
