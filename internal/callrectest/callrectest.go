// Package callrectest holds test helpers shared by callrec's packages:
// fixtures, waiting for conditions, loggers.
package callrectest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// Root returns the module's root folder.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Fixture reads testdata/twilio/<name> from the module root (the copy of
// Twilio's formats the tests use).
func Fixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(Root(), "testdata", "twilio", name))
	if err != nil {
		tb.Fatalf("read fixture: %v", err)
	}
	return b
}

// Logger returns a logger that writes to the test log (or discards when -v is
// off and the test passes).
func Logger(tb testing.TB) *slog.Logger {
	tb.Helper()
	if os.Getenv("CALLREC_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	w := &testWriter{tb: tb}
	tb.Cleanup(func() { w.done.Store(true) })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testWriter logs through tb until the test ends (logging after that panics).
type testWriter struct {
	tb   testing.TB
	done atomic.Bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.tb.Log(string(p))
	}
	return len(p), nil
}

var _ io.Writer = (*testWriter)(nil)

// Eventually polls cond every 10 ms until it returns true or timeout passes,
// then fails the test with msg. It never sleeps longer than needed.
func Eventually(tb testing.TB, timeout time.Duration, msg string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("condition not met within %v: %s", timeout, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Context returns a context cancelled when the test ends.
func Context(tb testing.TB) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	return ctx
}
