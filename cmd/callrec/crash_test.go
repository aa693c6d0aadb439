package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"callrec"
	"callrec/internal/callrectest"
	"callrec/recorder"
	"callrec/simulate"
)

// TestMain lets a test start this binary as `callrec` in a child process.
func TestMain(m *testing.M) {
	if os.Getenv("CALLREC_TEST_AS_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// proc is a callrec command in a child process.
type proc struct {
	cmd      *exec.Cmd
	httpURL  string
	mediaURL string
	fields   map[string]any // of the line that said the process was ready
	done     chan struct{}  // closed when the process has exited
	err      error          // its exit status, once done is closed
}

// startProc starts `callrec run` on dataDir and waits until it listens.
func startProc(t *testing.T, dataDir string) *proc {
	t.Helper()
	tok, ok := procTokens.Load(dataDir)
	if !ok {
		var out bytes.Buffer
		if err := runTokenCommand(context.Background(), []string{"create", "--data-dir", dataDir, "--name", "test-client", "--role", "admin"}, &out, io.Discard); err != nil {
			t.Fatalf("token create: %v", err)
		}
		tok = strings.TrimSpace(out.String())
		procTokens.Store(dataDir, tok)
	}
	p := startChild(t, "callrec running", "run", "--data-dir", dataDir, "--http-addr", "127.0.0.1:0", "--media-addr", "127.0.0.1:0",
		"--twilio-auth-token", testToken, "--flush-interval", "50ms")
	p.httpURL, _ = p.fields["http_url"].(string)
	p.mediaURL, _ = p.fields["media_url"].(string)
	setAPIToken(p.httpURL, tok.(string))
	return p
}

// procTokens holds the admin API token made for each data dir.
var procTokens sync.Map

// startChild runs this test binary as `callrec args…` and waits for the
// JSON log line whose msg is ready. The process is killed when the test ends.
func startChild(t *testing.T, ready string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], append(args, "--log-format", "json")...)
	cmd.Env = append(os.Environ(), "CALLREC_TEST_AS_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	readyc := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == ready && p.fields == nil {
				p.fields = line
				close(readyc)
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	select {
	case <-readyc:
	case <-p.done:
		t.Fatalf("callrec %s exited before it was ready: %v", args[0], p.err)
	case <-time.After(30 * time.Second):
		t.Fatalf("callrec %s not ready within 30s", args[0])
	}
	return p
}

// TestCrashRecovery kills the recorder process with SIGKILL mid-call,
// restarts it on the same data, and checks the file plays up to the kill
// point and the index says interrupted.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dataDir := t.TempDir()
	a := startProc(t, dataDir)

	simDone := make(chan *simulate.Summary, 1)
	go func() {
		sum, _ := simulate.Run(context.Background(), simulate.Config{URL: a.mediaURL, AuthToken: testToken, Calls: 1, Duration: 30 * time.Second, KeepAudio: true})
		simDone <- sum
	}()
	s := &system{HTTPURL: a.httpURL}
	var before *callrec.Recording
	callrectest.Eventually(t, 20*time.Second, "2 s of audio synced", func() bool {
		var list recorder.ListResponse
		getJSON(t, a.httpURL+"/api/recordings", &list)
		if len(list.Recordings) == 1 && list.Recordings[0].Audio.DataBytes >= 2*2*8000 {
			before = list.Recordings[0]
			return true
		}
		return false
	})
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.done
	var sum *simulate.Summary
	select {
	case sum = <-simDone:
	case <-time.After(20 * time.Second):
		t.Fatal("simulated call did not notice the kill")
	}
	call := sum.Calls[0]
	if call.StopSent {
		t.Fatal("the call ended before the kill: nothing was tested")
	}

	b := startProc(t, dataDir)
	s.HTTPURL = b.httpURL
	var after callrec.Recording
	if code := getJSON(t, b.httpURL+"/api/recordings/"+string(before.INUM), &after); code != 200 {
		t.Fatalf("recording %s after restart: HTTP %d", before.INUM, code)
	}
	if after.State != callrec.StateInterrupted || after.EndReason != callrec.EndCrash || after.Interrupted == nil {
		t.Fatalf("after restart: state %s, reason %s, interruption %+v; want interrupted by crash", after.State, after.EndReason, after.Interrupted)
	}
	if after.Audio.DataBytes < before.Audio.DataBytes || after.Audio.SHA256 == "" {
		t.Errorf("repaired audio %d bytes (digest %q), at least %d were synced before the kill", after.Audio.DataBytes, after.Audio.SHA256, before.Audio.DataBytes)
	}
	left, right := audio(t, s, &after)
	if int64(len(left)) != after.Audio.DataBytes/2 {
		t.Errorf("%d samples per channel, header says %d", len(left), after.Audio.DataBytes/2)
	}
	for i, ch := range [][]byte{left, right} {
		sent := call.Tracks[i].Timeline
		if len(ch) > len(sent) {
			t.Fatalf("track %d: recorded %d samples, only %d were sent", i, len(ch), len(sent))
		}
		if err := sameAudio(ch, sent[:len(ch)]); err != nil {
			t.Errorf("track %d: %v", i, err)
		}
	}
	t.Logf("killed after %d synced bytes; repaired file has %d (%.2f s), truncated %d torn bytes",
		before.Audio.DataBytes, after.Audio.DataBytes, float64(after.Audio.DataBytes)/16000, after.Interrupted.TruncatedBytes)

	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.done:
		if b.err != nil {
			t.Errorf("graceful stop: %v", b.err)
		}
	case <-time.After(30 * time.Second):
		t.Error("no graceful stop within 30s of SIGTERM")
	}
}
