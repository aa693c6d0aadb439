// Package servicetest starts local stand-ins of external services for tests.
package servicetest

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"callrec/internal/callrectest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

//go:embed preload.cjs
var preloadJS []byte

// kinesisLocalDir is where `make test-deps` installs kinesis-local, relative
// to the module root.
const kinesisLocalDir = "test/services/node_modules/kinesis-local"

// StartKinesis starts kinesis-local (the JavaScript build of kinesis-mock)
// listening on 127.0.0.1 only, waits until it answers, and returns the
// endpoint of its plain-HTTP port, e.g. "http://127.0.0.1:40123". It is
// stopped when the test ends; its output is shown if the test failed. If
// node or kinesis-local is missing the test is skipped, or fails when the
// CI environment variable is set.
func StartKinesis(tb testing.TB) (endpoint string) {
	tb.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missing(tb, "node is not on PATH")
	}
	dir := filepath.Join(callrectest.Root(), kinesisLocalDir)
	if _, err := os.Stat(filepath.Join(dir, "main.js")); err != nil {
		missing(tb, fmt.Sprintf("kinesis-local is not installed in %s", dir))
	}
	tmp := tb.TempDir()
	preload := filepath.Join(tmp, "preload.cjs")
	if err := os.WriteFile(preload, preloadJS, 0o600); err != nil {
		tb.Fatalf("servicetest: %v", err)
	}
	// A free port may be taken again before kinesis-local binds it: retry.
	var errs []error
	for attempt := range 3 {
		logPath := filepath.Join(tmp, fmt.Sprintf("kinesis-local-%d.log", attempt))
		endpoint, err := startKinesis(tb, node, dir, preload, logPath)
		if err == nil {
			return endpoint
		}
		errs = append(errs, err)
	}
	tb.Fatalf("servicetest: kinesis-local did not start: %v", errors.Join(errs...))
	return ""
}

func startKinesis(tb testing.TB, node, dir, preload, logPath string) (string, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", fmt.Errorf("create log: %w", err)
	}
	defer logFile.Close() // the child keeps its own descriptor
	plain, tls := freePort(tb), freePort(tb)
	cmd := exec.Command(node, "--require", preload, filepath.Join(dir, "main.js"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"KINESIS_MOCK_CERT_PATH="+filepath.Join(dir, "server.json"),
		"KINESIS_MOCK_PLAIN_PORT="+strconv.Itoa(plain),
		"KINESIS_MOCK_TLS_PORT="+strconv.Itoa(tls),
		"SHOULD_PERSIST_DATA=false",
		"CREATE_STREAM_DURATION=100ms",
		"DELETE_STREAM_DURATION=100ms",
		"UPDATE_SHARD_COUNT_DURATION=100ms",
		"SPLIT_SHARD_DURATION=100ms",
		"MERGE_SHARDS_DURATION=100ms",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start node: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stop := func() { stopProcess(cmd, exited) }
	endpoint := "http://127.0.0.1:" + strconv.Itoa(plain)
	if err := waitKinesis(endpoint, exited, 30*time.Second); err != nil {
		stop()
		return "", fmt.Errorf("%w; output:\n%s", err, readLog(logPath))
	}
	tb.Cleanup(func() {
		stop()
		if tb.Failed() {
			tb.Logf("kinesis-local output (%s):\n%s", logPath, readLog(logPath))
		}
	})
	return endpoint, nil
}

// NewKinesisClient returns a client of a kinesis-local endpoint (static
// credentials, region us-east-1).
func NewKinesisClient(tb testing.TB, endpoint string) *kinesis.Client {
	tb.Helper()
	return newClient(endpoint)
}

func newClient(endpoint string) *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
		BaseEndpoint: aws.String(endpoint),
	})
}

// waitKinesis polls ListStreams until it succeeds, the process exits, or
// the deadline passes.
func waitKinesis(endpoint string, exited <-chan struct{}, limit time.Duration) error {
	client := newClient(endpoint)
	deadline := time.Now().Add(limit)
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := client.ListStreams(ctx, &kinesis.ListStreamsInput{}, func(o *kinesis.Options) {
			o.RetryMaxAttempts = 1
		})
		cancel()
		if err == nil {
			return nil
		}
		lastErr = err
		select {
		case <-exited:
			return errors.New("kinesis-local exited")
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("kinesis-local not ready after %v: %w", limit, lastErr)
}

// stopProcess sends SIGTERM to the process group, then SIGKILL after 3 s
// (kinesis-local may ignore SIGTERM), and waits for the exit.
func stopProcess(cmd *exec.Cmd, exited <-chan struct{}) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-exited:
		return
	case <-time.After(3 * time.Second):
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("servicetest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func readLog(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no output: %v)", err)
	}
	const max = 16 << 10
	if len(b) > max {
		b = append([]byte("...\n"), b[len(b)-max:]...)
	}
	return string(b)
}

// missing skips the test, or fails it in CI, when a service is not installed.
func missing(tb testing.TB, why string) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatalf("servicetest: %s (CI must run this test: run make test-deps)", why)
	}
	tb.Skipf("SKIPPING: %s — run make test-deps to install the test services", why)
}
