package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"callrec"
	"callrec/consolidation/audit"
	"callrec/consolidation/users"
	"callrec/consolidation/web"
	"callrec/internal/callrectest"
	"callrec/recorder/wav"
	"callrec/simulate"
	"callrec/simulate/scenario"
)

// browserDir returns test/browser, where the playwright-core scripts are.
// Without node, Debian's Chromium or playwright-core the test is skipped,
// except in CI, where it fails.
func browserDir(t *testing.T) string {
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
	return dir
}

// runNode runs a script of test/browser with node, stopped when the test
// ends or after timeout, and returns its stdout. Its stderr (progress and
// the browser's console errors) goes to the test log.
func runNode(t *testing.T, timeout time.Duration, env []string, script string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{filepath.Join(browserDir(t), script)}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	// SIGTERM first: playwright then closes Chromium before node exits.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if stderr.Len() > 0 {
		t.Logf("%s stderr:\n%s", script, stderr.Bytes())
	}
	if err != nil {
		t.Fatalf("node %s: %v (context: %v)", script, err, ctx.Err())
	}
	return out
}

// adminToken is the API token startRun made for s.
func adminToken(t *testing.T, s *system) string {
	t.Helper()
	u, err := url.Parse(s.HTTPURL)
	if err != nil {
		t.Fatal(err)
	}
	tok, ok := apiTokens.Load(u.Host)
	if !ok {
		t.Fatalf("no API token for %s", s.HTTPURL)
	}
	return tok.(string)
}

// TestBrowserPlaysRecording proves the on-disk format plays in a stock
// browser: headless Chromium (Debian's, driven by playwright-core) plays a
// recording in an <audio> element, and its own WAV decoder, at 8 kHz,
// yields the μ-law samples the simulator sent, left = inbound, right =
// outbound. The audio is fetched from the authenticated API with an API
// token.
func TestBrowserPlaysRecording(t *testing.T) {
	browserDir(t)
	s := startRun(t, testConfig(t))
	sum, err := simulate.Run(t.Context(), simConfig(s, 1, 3*time.Second))
	if err != nil || sum.Failed != 0 {
		t.Fatalf("simulate: %v, %d failed", err, sum.Failed)
	}
	rec := finished(t, s, sum.Calls[0].StreamSID)

	out := runNode(t, time.Minute, []string{"CALLREC_API_TOKEN=" + adminToken(t, s)}, "play.mjs",
		s.HTTPURL+"/", "/api/recordings/"+string(rec.INUM)+"/audio")
	var got struct {
		Advanced              bool
		CurrentTime, Duration float64
		MediaError            int
		PlayError             string
		Channels, SampleRate  int
		Length                int
		Left, Right           []float64
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("play.mjs output: %v: %s", err, out)
	}
	if !got.Advanced || got.MediaError != 0 || got.PlayError != "" {
		t.Errorf("<audio> did not play: advanced %v at %.2f s, media error %d, play error %q", got.Advanced, got.CurrentTime, got.MediaError, got.PlayError)
	}
	if math.Abs(got.Duration-3) > 0.05 {
		t.Errorf("<audio> duration %.3f s, want 3 s", got.Duration)
	}
	if got.Channels != 2 || got.SampleRate != 8000 || len(got.Left) != 4000 {
		t.Fatalf("decoded %d channels at %d Hz, %d samples", got.Channels, got.SampleRate, len(got.Left))
	}
	for i, ch := range [][]float64{got.Left, got.Right} {
		sent := sum.Calls[0].Tracks[i].Timeline
		for j, v := range ch {
			want := float64(wav.MulawToLinear[sent[j]]) / 32768
			if math.Abs(v-want) > 1e-4 {
				t.Fatalf("track %s sample %d: Chromium decodes %.5f, the μ-law sent is %.5f", callrec.Track(i), j, v, want)
			}
		}
	}
}

// The people of TestBrowserUI.
var (
	uiCompliance = uiLogin{User: "clara.compliance", Password: "Clara-compliance-2026!"}
	uiSupervisor = uiLogin{User: "erik.east", Password: "Erik-supervises-east-26"} // team east
	uiAuditor    = uiLogin{User: "audrey.auditor", Password: "Audrey-audits-all-2026"}
)

const uiReason = "Case 2026-114 regulator request"

// uiAuditTypes are the audit event types the auditor filters by.
var uiAuditTypes = []string{"login_ok", "search", "view", "playback", "export", "access_denied", "logout"}

type uiLogin struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// uiConfig is the argument of test/browser/ui.mjs.
type uiConfig struct {
	Base        string   `json:"base"`
	Screenshots string   `json:"screenshots"`
	Downloads   string   `json:"downloads"`
	Reason      string   `json:"reason"`
	Agent       string   `json:"agent"`      // compliance searches for this agent
	OtherAgent  string   `json:"otherAgent"` // the supervisor searches for this one
	OpenID      string   `json:"openID"`     // compliance opens, plays and exports this call
	DeniedID    string   `json:"deniedID"`   // the supervisor may not open this call
	Compliance  uiLogin  `json:"compliance"`
	Supervisor  uiLogin  `json:"supervisor"`
	Auditor     uiLogin  `json:"auditor"`
	AuditTypes  []string `json:"auditTypes"`
}

// uiResult is what ui.mjs saw.
type uiResult struct {
	Error      string
	PageErrors []string
	Compliance struct {
		Redirect, AfterLogin, SearchURL, AfterLogout string
		Session                                      uiSession
		All, ByAgent                                 uiRows
		Call                                         uiCall
		Export                                       struct {
			Suggested, File, Status, Shown string
			Failure                        *string
		}
	}
	Supervisor struct {
		AfterLogin                          string
		Session                             uiSession
		All, OtherAgent                     uiRows
		DeniedStatus                        int
		DeniedError, DeniedPlaceholder      string
		DeniedErrorVisible, CallViewVisible bool
	}
	Auditor struct {
		AfterLogin, SearchRedirect string
		Session                    uiSession
		NavSearchVisible           bool
		ByType                     map[string][]uiAuditRow
		Verify                     struct{ Class, Text string }
	}
}

// uiCall is what the call page showed and how its player behaved.
type uiCall struct {
	Customer, Status, PlayLabel string
	Timeline, Segments, IDs     []string
	Accounting                  []struct{ INUM, Summary string }
	Waveform                    struct {
		Width, Painted int
		Drawn          string
	}
	Before, Playing, AfterMute, Paused uiAudio
	Rate                               float64
	MuteAgent, MuteCustomer            bool
}

type uiSession struct{ User, Role string }

type uiRows struct {
	Count string
	Rows  []struct {
		ID, Status string
		Agents     []string
		HasLink    bool
	}
}

// ids lists the rows' call ids.
func (r uiRows) ids() []string {
	var ids []string
	for _, row := range r.Rows {
		ids = append(ids, row.ID)
	}
	return ids
}

type uiAudio struct {
	CurrentTime, Duration, PlaybackRate float64
	Paused                              bool
	MediaError                          int
}

type uiAuditRow struct {
	Type, Actor, Target, Reason string
	Seq                         uint64
}

// TestBrowserUI drives the web UI in headless Chromium through the issue's
// story, on a `callrec run` that recorded whole Flex calls (CTI path on the
// simulated Twilio): a compliance officer signs in, searches by agent, opens
// a call, plays it (currentTime advances), sees its waveform drawn and
// exports it (the bundle's digests match the recording's and SHA256SUMS
// verifies); a supervisor of team east cannot open team west's call, and the
// refusal is audited; an auditor sees each of those actions in the audit
// page and verifies the chain. It takes screenshots of the pages, into
// $CALLREC_SCREENSHOTS when set (the committed docs/screenshots).
func TestBrowserUI(t *testing.T) {
	browserDir(t)
	tw, apiURL := simTwilio(t)
	cfg := testConfig(t)
	cfg.CTI = ctiConfig{AccountSID: fixtureAccount, APIURL: apiURL}
	s := startRun(t, cfg)
	calls := playUICalls(t, s, tw)
	warm, west := calls[scenario.WarmTransfer], calls[scenario.RejectedThenAccepted]
	alice, bob := warm.Expect.Agents[0], warm.Expect.Agents[1]
	var d web.Detail
	if code := getJSON(t, s.HTTPURL+"/api/interactions/"+warm.TaskSID, &d); code != http.StatusOK {
		t.Fatalf("call %s: %d", warm.TaskSID, code)
	}
	for _, u := range []struct {
		login uiLogin
		role  users.Role
		teams []string
	}{{uiCompliance, users.Compliance, nil}, {uiSupervisor, users.Supervisor, []string{"east"}}, {uiAuditor, users.Auditor, nil}} {
		if err := s.cons.users.Add(t.Context(), users.User{Name: u.login.User, Role: u.role, Teams: u.teams}, u.login.Password); err != nil {
			t.Fatal(err)
		}
	}

	shots := os.Getenv("CALLREC_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	ui := uiConfig{Base: s.HTTPURL, Screenshots: shots, Downloads: t.TempDir(), Reason: uiReason,
		Agent: alice, OtherAgent: bob, OpenID: warm.TaskSID, DeniedID: west.TaskSID,
		Compliance: uiCompliance, Supervisor: uiSupervisor, Auditor: uiAuditor, AuditTypes: uiAuditTypes}
	arg, err := json.Marshal(ui)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out := runNode(t, 90*time.Second, nil, "ui.mjs", string(arg))
	t.Logf("ui.mjs ran for %v", time.Since(start).Round(time.Millisecond))
	var got uiResult
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("ui.mjs output: %v: %s", err, out)
	}
	if got.Error != "" {
		t.Fatalf("ui.mjs failed: %s", got.Error)
	}
	if len(got.PageErrors) > 0 {
		t.Errorf("uncaught errors in the pages: %q", got.PageErrors)
	}
	// The trail as the auditor saw it, read before this test's own API
	// requests add entries.
	trail := auditByType(t, s)

	checkUICompliance(t, &got, ui, calls, &d)
	checkUISupervisor(t, &got, ui, calls)
	checkUIAuditor(t, &got, ui, trail, &d)
	checkBundle(t, s, got.Compliance.Export.File, &d, trail["export"])
	for _, name := range []string{"login.png", "search.png", "call.png", "audit.png"} {
		checkScreenshot(t, filepath.Join(shots, name))
	}
}

// playUICalls plays, at once, the calls the UI test browses: alice alone
// (team east), a warm transfer alice → bob (east and west), bob alone after
// alice rejected the offer (west), an external transfer by alice, and an
// answered call whose stream fails mid-call (partial). Each call record is
// checked joined.
func playUICalls(t *testing.T, s *system, tw *simulate.Twilio) map[scenario.Scenario]*scenario.Call {
	t.Helper()
	scs := []scenario.Scenario{scenario.Answered, scenario.WarmTransfer, scenario.RejectedThenAccepted,
		scenario.ExternalTransfer, scenario.StreamErrorMidCall}
	// Talk times vary so the calls differ in length; the longest, the warm
	// transfer (3.5 s twice) and the external transfer (5 s, then 2.5 s
	// with the outside party), bound the time this takes.
	talk := []time.Duration{4 * time.Second, 3500 * time.Millisecond, 2 * time.Second, 5 * time.Second, 3 * time.Second}
	sink := &scenario.WebhookSink{URL: s.HTTPURL + "/twilio/events", AuthToken: testToken}
	calls := make([]*scenario.Call, len(scs))
	errs := make([]error, len(scs))
	ctx := callrectest.Context(t)
	var wg sync.WaitGroup
	for i, sc := range scs {
		wg.Go(func() {
			calls[i], errs[i] = scenario.Play(ctx, sc, scenario.Env{Sink: sink, Twilio: tw,
				Account: fixtureAccount, Talk: talk[i], Seed: int64(500 + i)})
		})
	}
	wg.Wait()
	m := map[scenario.Scenario]*scenario.Call{}
	for i, sc := range scs {
		if errs[i] != nil {
			t.Fatalf("play %s: %v", sc, errs[i])
		}
		scenarioJoined(t, s, calls[i])
		m[sc] = calls[i]
	}
	return m
}

// checkUICompliance checks the compliance officer's path: sign-in, search
// by agent, the call page with its player, and the export.
func checkUICompliance(t *testing.T, got *uiResult, ui uiConfig, calls map[scenario.Scenario]*scenario.Call, d *web.Detail) {
	t.Helper()
	c := &got.Compliance
	if c.Redirect != "/login?next=%2F" || c.AfterLogin != "/" || c.Session != (uiSession{ui.Compliance.User, "compliance"}) {
		t.Errorf("compliance sign-in: sent to %q, back to %q, header shows %+v", c.Redirect, c.AfterLogin, c.Session)
	}
	var all, withAgent []string
	for _, call := range calls {
		all = append(all, call.TaskSID)
		if slices.Contains(call.Expect.Agents, ui.Agent) {
			withAgent = append(withAgent, call.TaskSID)
		}
	}
	if !sameSet(c.All.ids(), all) {
		t.Errorf("compliance's unfiltered search shows %v, want every call %v", c.All.ids(), all)
	}
	if u, err := url.Parse(c.SearchURL); err != nil || u.Query().Get("agent") != ui.Agent {
		t.Errorf("search URL %q: want the agent filter %s", c.SearchURL, ui.Agent)
	}
	if !sameSet(c.ByAgent.ids(), withAgent) || c.ByAgent.Count != fmt.Sprintf("%d calls", len(withAgent)) {
		t.Errorf("search by agent %s: %q, rows %v; want the calls %v", ui.Agent, c.ByAgent.Count, c.ByAgent.ids(), withAgent)
	}
	for _, row := range c.ByAgent.Rows {
		if !slices.Contains(row.Agents, ui.Agent) || !row.HasLink || row.Status == "" {
			t.Errorf("search by agent: row %+v", row)
		}
	}

	checkUICall(t, &c.Call, d)
	e := &c.Export
	if e.Failure != nil || !strings.HasPrefix(e.Suggested, "callrec-"+ui.OpenID+"-") || !strings.HasSuffix(e.Suggested, ".zip") ||
		e.Shown != "Saved as "+e.Suggested || !strings.Contains(e.Status, "sha256sum -c SHA256SUMS") {
		t.Errorf("export: download %q (failure %v), page says %q / %q", e.Suggested, e.Failure, e.Status, e.Shown)
	}
	if c.AfterLogout != "/login" {
		t.Errorf("after sign-out the browser is at %q", c.AfterLogout)
	}
}

// checkUICall checks the call page against the API's call detail d: the
// summary, timeline, segments, accounting and identifiers, the waveform,
// and the player's playing, speed and mute.
func checkUICall(t *testing.T, v *uiCall, d *web.Detail) {
	t.Helper()
	in := d.Interaction
	if v.Customer != in.From || v.Status != in.Status {
		t.Errorf("call page shows customer %q, status %q; want %q, %q", v.Customer, v.Status, in.From, in.Status)
	}
	var kinds, segs []string
	for _, e := range d.Timeline {
		kinds = append(kinds, e.Kind)
	}
	for _, sg := range in.Segments {
		segs = append(segs, sg.Agent)
	}
	if !slices.Equal(v.Timeline, kinds) || !slices.Contains(kinds, "transfer") {
		t.Errorf("timeline shows %v, the API has %v (with a transfer)", v.Timeline, kinds)
	}
	if !slices.Equal(v.Segments, segs) {
		t.Errorf("agent segments show %v, want %v", v.Segments, segs)
	}
	wantIDs := []string{in.TaskSID, in.CallSID}
	if len(v.Accounting) != len(d.Recordings) {
		t.Errorf("frame accounting of %d recordings, want %d", len(v.Accounting), len(d.Recordings))
	}
	for i, rec := range d.Recordings {
		wantIDs = append(wantIDs, string(rec.INUM), rec.Audio.SHA256)
		if i < len(v.Accounting) && (v.Accounting[i].INUM != string(rec.INUM) || v.Accounting[i].Summary != "Every expected frame was recorded") {
			t.Errorf("frame accounting %+v of recording %s", v.Accounting[i], rec.INUM)
		}
	}
	for _, id := range wantIDs {
		if !slices.Contains(v.IDs, id) {
			t.Errorf("identifiers %v lack %s", v.IDs, id)
		}
	}
	// The canvas spans the player (about 850 px at 1280 px), and a few
	// seconds of speech paint most of its columns, several pixels high.
	if w := v.Waveform; w.Drawn != "true" || w.Width < 600 || w.Painted < 5*w.Width {
		t.Errorf("waveform %+v: want drawn, with speech painted", w)
	}
	dur := float64(d.Recordings[0].Audio.DurationMS) / 1000
	if b := v.Before; b.CurrentTime != 0 || !b.Paused || !(math.Abs(b.Duration-dur) <= 0.05) {
		t.Errorf("before play: %+v; want paused at 0 with the recording's %.3f s", b, dur)
	}
	if p := v.Playing; p.CurrentTime <= 0.5 || p.Paused || p.MediaError != 0 || v.PlayLabel != "Pause" {
		t.Errorf("after play: %+v, button %q; want playing past 0.5 s", p, v.PlayLabel)
	}
	if v.Rate != 1.5 || v.AfterMute.PlaybackRate != 1.5 {
		t.Errorf("speed 1.5×: playbackRate %v, then %v", v.Rate, v.AfterMute.PlaybackRate)
	}
	if !v.MuteAgent || v.MuteCustomer || v.AfterMute.CurrentTime-v.Playing.CurrentTime <= 0.3 || v.AfterMute.Paused {
		t.Errorf("mute agent: agent %v, customer %v; playing on from %.2f to %.2f s", v.MuteAgent, v.MuteCustomer, v.Playing.CurrentTime, v.AfterMute.CurrentTime)
	}
	if !v.Paused.Paused {
		t.Errorf("the second click on #play did not pause: %+v", v.Paused)
	}
}

// checkUISupervisor checks that a supervisor of team east sees the calls
// with an east agent only, and is refused team west's call.
func checkUISupervisor(t *testing.T, got *uiResult, ui uiConfig, calls map[scenario.Scenario]*scenario.Call) {
	t.Helper()
	sv := &got.Supervisor
	if sv.AfterLogin != "/" || sv.Session != (uiSession{ui.Supervisor.User, "supervisor"}) {
		t.Errorf("supervisor sign-in: at %q, header shows %+v", sv.AfterLogin, sv.Session)
	}
	var east []string
	for _, c := range calls {
		if slices.ContainsFunc(c.Workers, func(w *scenario.Worker) bool {
			return w.Team == "east" && slices.Contains(c.Expect.Agents, w.Identity)
		}) {
			east = append(east, c.TaskSID)
		}
	}
	if !sameSet(sv.All.ids(), east) || slices.Contains(sv.All.ids(), ui.DeniedID) {
		t.Errorf("supervisor's search shows %v, want the calls with an east agent %v", sv.All.ids(), east)
	}
	if sv.DeniedStatus != http.StatusForbidden || !sv.DeniedErrorVisible || !strings.Contains(sv.DeniedError, "not allowed") ||
		!strings.Contains(sv.DeniedPlaceholder, "not allowed") || sv.CallViewVisible {
		t.Errorf("supervisor opening %s: API %d, banner %v %q, page %q, call shown %v; want 403 and \"not allowed\"",
			ui.DeniedID, sv.DeniedStatus, sv.DeniedErrorVisible, sv.DeniedError, sv.DeniedPlaceholder, sv.CallViewVisible)
	}
	// bob took part in the warm transfer (east and west): that call only.
	if want := []string{ui.OpenID}; !slices.Equal(sv.OtherAgent.ids(), want) {
		t.Errorf("supervisor's search for %s shows %v, want %v", ui.OtherAgent, sv.OtherAgent.ids(), want)
	}
}

// auditByType reads the newest entries of each audit type, as the audit
// page asks for them.
func auditByType(t *testing.T, s *system) map[string][]audit.Entry {
	t.Helper()
	m := map[string][]audit.Entry{}
	for _, typ := range uiAuditTypes {
		var res struct{ Items []audit.Entry }
		if code := getJSON(t, s.HTTPURL+"/api/audit?limit=100&type="+typ, &res); code != http.StatusOK {
			t.Fatalf("audit %s: %d", typ, code)
		}
		m[typ] = res.Items
	}
	return m
}

// checkUIAuditor checks that the audit page lists exactly the trail's
// entries of each type, among them every action of the story, and that the
// chain verifies.
func checkUIAuditor(t *testing.T, got *uiResult, ui uiConfig, trail map[string][]audit.Entry, d *web.Detail) {
	t.Helper()
	a := &got.Auditor
	if a.AfterLogin != "/audit" || a.Session != (uiSession{ui.Auditor.User, "auditor"}) || a.NavSearchVisible || a.SearchRedirect != "/audit" {
		t.Errorf("auditor: lands on %q (header %+v, search link shown %v), / sends to %q; want /audit only",
			a.AfterLogin, a.Session, a.NavSearchVisible, a.SearchRedirect)
	}
	for _, typ := range uiAuditTypes {
		rows, want := a.ByType[typ], trail[typ]
		if len(rows) != len(want) {
			t.Errorf("audit page, type %s: %d rows, the trail has %d", typ, len(rows), len(want))
			continue
		}
		for i, r := range rows {
			w := want[i]
			if r.Type != typ || r.Seq != w.Seq || r.Actor != w.Actor || r.Target != w.Target || r.Reason != w.Reason {
				t.Errorf("audit page, type %s, row %d: %+v; the trail has %+v", typ, i, r, w)
			}
		}
	}
	inum := string(d.Recordings[0].INUM)
	has := func(typ, actor, target string, ok func(audit.Entry) bool) {
		t.Helper()
		if !slices.ContainsFunc(trail[typ], func(e audit.Entry) bool {
			return e.Actor == actor && (target == "" || e.Target == target) && (ok == nil || ok(e))
		}) {
			t.Errorf("no %s entry by %s on %q in %+v", typ, actor, target, trail[typ])
		}
	}
	for _, u := range []uiLogin{ui.Compliance, ui.Supervisor, ui.Auditor} {
		has("login_ok", u.User, u.User, nil)
	}
	has("search", ui.Compliance.User, "", func(e audit.Entry) bool { return e.Details["agent"] == ui.Agent })
	has("search", ui.Supervisor.User, "", func(e audit.Entry) bool { return e.Details["scope"] == "teams=east" })
	has("view", ui.Compliance.User, ui.OpenID, nil)
	has("playback", ui.Compliance.User, inum, func(e audit.Entry) bool { return e.Details["interaction"] == ui.OpenID })
	has("export", ui.Compliance.User, ui.OpenID, func(e audit.Entry) bool { return e.Reason == ui.Reason && e.Details["inums"] == inum })
	has("access_denied", ui.Supervisor.User, ui.DeniedID, func(e audit.Entry) bool {
		return e.Role == "supervisor" && e.Details["path"] == "/api/interactions/"+ui.DeniedID && strings.Contains(e.Reason, "outside the user's teams")
	})
	has("logout", ui.Compliance.User, ui.Compliance.User, nil)
	if slices.ContainsFunc(trail["view"], func(e audit.Entry) bool { return e.Actor == ui.Supervisor.User }) {
		t.Errorf("the supervisor's refused request is audited as a view: %+v", trail["view"])
	}
	if !strings.Contains(a.Verify.Class, "ok") || !strings.Contains(a.Verify.Text, "Chain intact") {
		t.Errorf("verify: %+v", a.Verify)
	}
}

// checkBundle opens the export the browser downloaded: each WAV's SHA-256
// equals the manifest's and the digest the recorder computed (as the API
// gives it), SHA256SUMS verifies with sha256sum -c, and the manifest names
// the exporter, the reason and the export's audit entry.
func checkBundle(t *testing.T, s *system, file string, d *web.Detail, exports []audit.Entry) {
	t.Helper()
	zr, err := zip.OpenReader(file)
	if err != nil {
		t.Fatalf("the downloaded bundle: %v", err)
	}
	defer zr.Close()
	dir := t.TempDir()
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("bundle file %s: %v", f.Name, err)
		}
		if filepath.Base(f.Name) != f.Name {
			t.Fatalf("bundle file name %q", f.Name)
		}
		files[f.Name] = b
		if err := os.WriteFile(filepath.Join(dir, f.Name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var m web.Manifest
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	var entry audit.Entry
	for _, e := range exports {
		if e.Target == d.Interaction.ID && e.Actor == uiCompliance.User {
			entry = e
		}
	}
	if m.Format != web.ExportFormat || m.ExportedBy != uiCompliance.User || m.Role != "compliance" || m.Reason != uiReason ||
		m.Interaction.ID != d.Interaction.ID || m.AuditEntry.Seq != entry.Seq || m.AuditEntry.Hash != entry.Hash || len(m.Unavailable) != 0 {
		t.Errorf("manifest: format %q, by %q (%s), reason %q, call %s, audit entry %+v, unavailable %v; want %s by %s for %q, audit entry %d %s",
			m.Format, m.ExportedBy, m.Role, m.Reason, m.Interaction.ID, m.AuditEntry, m.Unavailable,
			d.Interaction.ID, uiCompliance.User, uiReason, entry.Seq, entry.Hash)
	}
	want := []string{"SHA256SUMS", "manifest.json"}
	if len(m.Recordings) != len(d.Recordings) {
		t.Errorf("bundle of %d recordings, the call has %d", len(m.Recordings), len(d.Recordings))
	}
	for _, mr := range m.Recordings {
		want = append(want, mr.File)
		sum := sha256.Sum256(files[mr.File])
		var rec callrec.Recording
		if code := getJSON(t, s.HTTPURL+"/api/recordings/"+string(mr.Recording.INUM), &rec); code != http.StatusOK {
			t.Fatalf("recording %s: %d", mr.Recording.INUM, code)
		}
		if got := hex.EncodeToString(sum[:]); got != mr.SHA256 || got != mr.RecordedSHA256 || got != rec.Audio.SHA256 ||
			rec.Audio.SHA256 == "" || int64(len(files[mr.File])) != mr.Bytes || mr.File != string(rec.INUM)+".wav" {
			t.Errorf("%s in the bundle: %d bytes, SHA-256 %s; manifest says %d bytes, %s (recorded %s); the recording's digest is %s",
				mr.File, len(files[mr.File]), got, mr.Bytes, mr.SHA256, mr.RecordedSHA256, rec.Audio.SHA256)
		}
	}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	if !sameSet(names, want) {
		t.Errorf("bundle holds %v, want %v", names, want)
	}
	sums := strings.Split(strings.TrimSpace(string(files["SHA256SUMS"])), "\n")
	if len(sums) != len(want)-1 {
		t.Errorf("SHA256SUMS lists %d files, want %d: %q", len(sums), len(want)-1, sums)
	}
	cmd := exec.Command("sha256sum", "--strict", "-c", "SHA256SUMS")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || strings.Count(string(out), ": OK\n") != len(want)-1 {
		t.Errorf("sha256sum -c SHA256SUMS: %v\n%s", err, out)
	}
}

// checkScreenshot checks that a screenshot is a PNG of the full 1280-px
// wide page.
func checkScreenshot(t *testing.T, file string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	c, err := png.DecodeConfig(f)
	if err != nil || c.Width != 1280 || c.Height < 800 {
		t.Errorf("screenshot %s: %dx%d, %v; want a 1280-px wide page", file, c.Width, c.Height, err)
	}
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}
