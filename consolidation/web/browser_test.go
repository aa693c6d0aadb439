package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"callrec/internal/callrectest"
)

// browserScript returns test/browser/<name>, or skips the test without
// node, Debian's Chromium or playwright-core (fails in CI, where make
// test-deps installs them).
func browserScript(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(callrectest.Root(), "test", "browser")
	_, errNode := exec.LookPath("node")
	_, errChromium := os.Stat("/usr/bin/chromium")
	_, errPW := os.Stat(filepath.Join(dir, "node_modules", "playwright-core"))
	if errNode != nil || errChromium != nil || errPW != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("browser test needs node, /usr/bin/chromium and playwright-core (make test-deps installs them): %v %v %v", errNode, errChromium, errPW)
		}
		t.Skipf("SKIPPED: node, /usr/bin/chromium or playwright-core missing; run make test-deps (%v %v %v)", errNode, errChromium, errPW)
	}
	return filepath.Join(dir, name)
}

// streamsUI is what test/browser/streams.mjs saw.
type streamsUI struct {
	Error         string
	PageErrors    []string
	ConsoleErrors []string
	Merged        struct {
		Plays, Selected string
		Box             replicaBoxUI
		Supply          struct {
			Width, Height, Runs int
			Hidden              bool
			ByCopy              map[string]int
		}
		Legend   []string
		Copies   [][]string
		Timeline []string
		Switched struct {
			Plays, Selected string
			Box             replicaBoxUI
		}
	}
	Restarted struct {
		TimelineGaps []struct {
			Kind, Lost string
			Shaded     bool
		}
		Overview struct {
			Hidden bool
			Recs   []string
			Gaps   []struct {
				DurationMS  int64 `json:"durationMs"`
				From, To    string
				Width, Left float64
			}
			BarWidth float64
			Lost     string
		}
		SupplyHidden, ReplicaHidden bool
		SearchFlag                  []struct {
			GapMS int64 `json:"gapMs"`
			Text  string
		}
	}
}

type replicaBoxUI struct {
	Hidden         bool
	Replica, Plays string
	Text           string
	Switches       []struct {
		INUM     string `json:"inum"`
		Replica  string
		Disabled bool
	}
}

// TestBrowserCallStreams drives the call page in headless Chromium on a
// dual-stream pair merged by two recorders (replica 1 interrupted) and on a
// restarted stream: the page plays replica 2 and offers replica 1, which
// it switches to; it draws the supply strip in both copies' colours and
// lists the copies; it shades the restart gap in the timeline and the
// overview bar, and the search result flags the lost audio. No page or
// console error (a CSP refusal would be one).
func TestBrowserCallStreams(t *testing.T) {
	script := browserScript(t, "streams.mjs")
	e := newTestEnv(t)
	start := t0.Add(10 * time.Second)
	r1, r2 := mergedReplicas(t, e, "WTmerged", start)
	joinCall(t, e, "WTmerged", start, r1, r2)
	a, b := restartedStream(t, e, "WTrestart", start.Add(time.Hour))
	joinCall(t, e, "WTrestart", start.Add(time.Hour), a, b)

	shots := os.Getenv("CALLREC_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	arg, err := json.Marshal(map[string]string{"base": e.srv.URL, "user": "comp", "password": testPassword,
		"mergedID": "WTmerged", "restartID": "WTrestart", "screenshots": shots})
	if err != nil {
		t.Fatal(err)
	}
	got := runStreamsScript(t, script, string(arg))
	if got.Error != "" {
		t.Fatalf("streams.mjs failed: %s", got.Error)
	}
	if len(got.PageErrors) > 0 || len(got.ConsoleErrors) > 0 {
		t.Errorf("page errors %q, console errors %q", got.PageErrors, got.ConsoleErrors)
	}

	m := &got.Merged
	if m.Plays != string(r2.INUM) || m.Selected != string(r2.INUM) {
		t.Errorf("the page plays %s (selected %s), want the complete replica 2 %s", m.Plays, m.Selected, r2.INUM)
	}
	if m.Box.Hidden || m.Box.Replica != "2" || m.Box.Plays != "true" || len(m.Box.Switches) != 1 ||
		m.Box.Switches[0].INUM != string(r1.INUM) || m.Box.Switches[0].Disabled {
		t.Errorf("replica box %+v, want replica 2 playing, a switch to replica 1 (%s)", m.Box, r1.INUM)
	}
	if m.Switched.Plays != string(r1.INUM) || m.Switched.Selected != string(r1.INUM) || m.Switched.Box.Replica != "1" ||
		m.Switched.Box.Plays != "false" || !strings.Contains(m.Switched.Box.Text, "the call plays replica 2") {
		t.Errorf("after the switch: plays %s, box %+v; want replica 1 (%s), saying replica 2 is the one the call plays", m.Switched.Plays, m.Switched.Box, r1.INUM)
	}
	// Supply: copy 1 supplies chunks 1–1200 and 1206–3000 of the customer
	// track and 1–1200 of the agent's, copy 2 chunks 1201–1205 (100 ms) of
	// the customer's: both colours are painted, copy 1 far more.
	s := m.Supply
	if s.Hidden || s.Width == 0 || s.Runs != 4 || s.ByCopy["1"] == 0 || s.ByCopy["2"] == 0 || s.ByCopy["1"] < 10*s.ByCopy["2"] {
		t.Errorf("supply strip %+v: want 4 runs drawn, copy 1's colour on most of it and copy 2's on a sliver", s)
	}
	if !slices.Equal(m.Legend, []string{"Copy 1 (adapter-1)", "Copy 2 (adapter-2)"}) {
		t.Errorf("supply legend %q", m.Legend)
	}
	wantCopies := [][]string{
		{"Copy 1MZcopy1", "adapter-1", "origin", "0 ms", "6,000", "5,990", "10", "0", "stop"},
		{"Copy 2MZcopy2", "adapter-2", "content", "+1,480 ms", "3,900", "10", "3,850", "40", "socket_closed"},
	}
	if fmt.Sprint(m.Copies) != fmt.Sprint(wantCopies) {
		t.Errorf("copies table %q, want %q", m.Copies, wantCopies)
	}
	for _, k := range []string{"copy_joined", "copy_ended", "interrupted"} {
		if !slices.Contains(m.Timeline, k) {
			t.Errorf("merged call timeline %v lacks %s", m.Timeline, k)
		}
	}

	r := &got.Restarted
	if len(r.TimelineGaps) != 1 || r.TimelineGaps[0].Kind != "restart_gap" || !r.TimelineGaps[0].Shaded ||
		!strings.HasPrefix(r.TimelineGaps[0].Lost, "1.325 s of audio lost") {
		t.Errorf("timeline gaps %+v, want one shaded restart_gap entry, 1.325 s lost", r.TimelineGaps)
	}
	o := &r.Overview
	if o.Hidden || !slices.Equal(o.Recs, []string{string(a.INUM), string(b.INUM)}) || len(o.Gaps) != 1 ||
		o.Gaps[0].DurationMS != 1325 || o.Gaps[0].From != string(a.INUM) || o.Gaps[0].To != string(b.INUM) ||
		o.Gaps[0].Width <= 0 || o.Gaps[0].Left <= 0 || o.Gaps[0].Left >= o.BarWidth || !strings.HasPrefix(o.Lost, "1.325 s lost") {
		t.Errorf("overview %+v: want both recordings and the 1.325 s gap shaded between them", *o)
	}
	if !r.SupplyHidden || !r.ReplicaHidden {
		t.Errorf("single-stream call: supply strip hidden %v, replica box hidden %v; want both hidden", r.SupplyHidden, r.ReplicaHidden)
	}
	if len(r.SearchFlag) != 1 || r.SearchFlag[0].GapMS != 1325 || r.SearchFlag[0].Text != "1.325 s lost" {
		t.Errorf("search row gap flag %+v, want 1.325 s lost", r.SearchFlag)
	}
	for _, name := range []string{"call-merged.png", "call-restart.png"} {
		if st, err := os.Stat(filepath.Join(shots, name)); err != nil || st.Size() == 0 {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
}

// runStreamsScript runs the script with node (stopped when the test ends or
// after a minute) and decodes what it printed.
func runStreamsScript(t *testing.T, script, arg string) streamsUI {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script, arg)
	// SIGTERM first: playwright then closes Chromium before node exits.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if stderr.Len() > 0 {
		t.Logf("streams.mjs stderr:\n%s", stderr.Bytes())
	}
	if err != nil {
		t.Fatalf("node streams.mjs: %v (context: %v)", err, ctx.Err())
	}
	var got streamsUI
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("streams.mjs output: %v: %s", err, out)
	}
	return got
}
