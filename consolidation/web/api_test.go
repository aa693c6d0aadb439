package web_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"callrec"
	"callrec/consolidation/audit"
	"callrec/consolidation/store"
	"callrec/consolidation/users"
	"callrec/consolidation/web"
)

func TestSearchParameters(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seed(t)
	c := e.tokenClient(t, "comp-bot", users.Compliance)
	tests := []string{
		"?color=red",                       // unknown parameter
		"?From=" + t0.Format(time.RFC3339), // parameters are case-sensitive
		"?from=yesterday",
		"?to=2026-03-02",
		"?to=2026-03-02T10:00:00", // no zone
		"?min_duration=abc",
		"?min_duration=-1",
		"?max_duration=1e12",
		"?max_duration=Inf",
		"?limit=ten",
		"?limit=-1",
		"?offset=-5",
		"?limit=100000",
		"?inum=1234",
		"?inum=" + string(e.inumOf(t, "east1"))[:15] + "0", // check digit
		"?sort=loudest",
		"?number=12",
	}
	for _, q := range tests {
		r := c.get(t, "/api/interactions"+q)
		if r.Status != http.StatusBadRequest || r.errorCode() != callrec.EINVALID {
			t.Errorf("GET /api/interactions%s = %s, want 400 invalid", q, r)
		}
	}
}

func TestSearchResults(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seed(t)
	c := e.tokenClient(t, "comp-bot", users.Compliance)
	ts := func(d time.Duration) string { return url.QueryEscape(t0.Add(d).Format(time.RFC3339)) }
	tests := []struct {
		query string
		want  []string
		total int
	}{
		{"", []string{"WTmixed", "WTwest1", "WTeast2", "WTeast1"}, 4},
		{"?direction=outbound", []string{"WTeast2"}, 1},
		{"?min_duration=60", []string{"WTwest1", "WTeast1"}, 2},          // 120 s and 600 s
		{"?max_duration=45", []string{"WTmixed", "WTeast2"}, 2},          // 45 s inclusive, 30 s
		{"?min_duration=44.5&max_duration=45.5", []string{"WTmixed"}, 1}, // decimals
		{"?min_duration=121", []string{"WTwest1"}, 1},                    // seconds, not ms
		{"?from=" + ts(30*time.Minute) + "&to=" + ts(2*time.Hour+30*time.Minute), []string{"WTwest1", "WTeast2"}, 2},
		{"?to=" + ts(time.Hour), []string{"WTeast1"}, 1}, // to is exclusive
		{"?from=" + url.QueryEscape(t0.Add(time.Hour).In(time.FixedZone("X", -5*3600)).Format(time.RFC3339Nano)), []string{"WTmixed", "WTwest1", "WTeast2"}, 3},
		{"?agent=alice", []string{"WTmixed", "WTeast1"}, 2},
		{"?tag=vip", []string{"WTmixed", "WTeast1"}, 2},
		{"?tag=vip&tag=escalated", []string{"WTmixed"}, 1},
		{"?queue=sales&direction=inbound", []string{"WTwest1", "WTeast1"}, 2},
		{"?number=0003333", []string{"WTwest1"}, 1},
		{"?inum=" + string(e.inumOf(t, "east2")), []string{"WTeast2"}, 1},
		{"?call_sid=CAeast1", []string{"WTeast1"}, 1},
		{"?task_sid=WTwest1", []string{"WTwest1"}, 1},
		{"?status=complete&agent=bob", []string{"WTmixed", "WTwest1"}, 2},
		{"?status=partial", []string{}, 0},
		{"?sort=-start", []string{"WTeast1", "WTeast2", "WTwest1", "WTmixed"}, 4},
		{"?sort=duration", []string{"WTwest1", "WTeast1", "WTmixed", "WTeast2"}, 4},
		{"?limit=2", []string{"WTmixed", "WTwest1"}, 4},
		{"?limit=2&offset=2", []string{"WTeast2", "WTeast1"}, 4},
		{"?offset=10", []string{}, 4},
		{"?agent=nobody", []string{}, 0},
	}
	for _, tt := range tests {
		ids, total := searchIDs(t, c, tt.query)
		if !cmp.Equal(ids, tt.want) || total != tt.total {
			t.Errorf("search %s = %v (total %d), want %v (total %d)", tt.query, ids, total, tt.want, tt.total)
		}
	}

	// The page echoes its limit and offset; items are whole interactions.
	var body struct {
		Items  []store.Interaction `json:"items"`
		Limit  int                 `json:"limit"`
		Offset int                 `json:"offset"`
	}
	c.get(t, "/api/interactions?agent=alice&offset=1").want(t, http.StatusOK).decode(t, &body)
	if body.Limit != store.DefaultLimit || body.Offset != 1 || len(body.Items) != 1 {
		t.Fatalf("page = limit %d offset %d, %d items; want %d, 1, 1", body.Limit, body.Offset, len(body.Items), store.DefaultLimit)
	}
	if diff := cmp.Diff(e.calls["east1"], body.Items[0]); diff != "" {
		t.Errorf("search item differs from the stored interaction (-stored +got):\n%s", diff)
	}
	var empty map[string]any
	c.get(t, "/api/interactions?agent=nobody").want(t, http.StatusOK).decode(t, &empty)
	if items, ok := empty["items"].([]any); !ok || len(items) != 0 {
		t.Errorf("empty search items = %#v, want []", empty["items"])
	}
}

func TestSearchAudited(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seed(t)
	comp := e.login(t, "comp")
	east := e.tokenClient(t, "east-bot", users.Supervisor, "east", "north")

	mark := e.auditMark(t)
	comp.get(t, "/api/interactions?agent=alice&min_duration=60&tag=vip&tag=escalated").want(t, http.StatusOK)
	east.get(t, "/api/interactions").want(t, http.StatusOK)
	want := []auditLine{
		{Type: audit.Search, Actor: "comp", Role: "compliance",
			Details: map[string]string{"agent": "alice", "min_duration": "60", "tag": "vip,escalated"}},
		{Type: audit.Search, Actor: "east-bot", Role: "supervisor", Details: map[string]string{"scope": "teams=east,north"}},
	}
	if diff := cmp.Diff(want, lines(e.auditSince(t, mark))); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
}

func TestInteractionDetail(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	ctx := context.Background()
	const task = "WTdetail"
	start := t0.Add(10 * time.Second)
	n := mustINUM(t, 42)
	file := makeWAV(8000*60, 42) // one minute
	rec := finishedRecording(n, start, file)
	rec.Stream.CustomParameters = map[string]string{"task_sid": task, "agent": "alice", "team": "east"}
	e.recs.put(rec, file)
	contact := callrec.Contact{TaskSID: task, AccountSID: "AC1", Status: callrec.ContactEnded, CustomerCall: "CAcust",
		Direction: "inbound", From: "+15550009999", To: "+15551230000", QueueName: "sales", TaskVersion: 5,
		CreatedAt: t0, EndedAt: start.Add(70 * time.Second),
		Connections: []callrec.Connection{{ReservationSID: "WR1", WorkerSID: "WK1", AgentExtension: "alice", Team: "east",
			Status: callrec.ConnEnded, Version: 3, Monitored: true, OfferedAt: t0.Add(5 * time.Second), AnsweredAt: start,
			WrapUpAt: start.Add(30 * time.Second), EndedAt: start.Add(70 * time.Second)}}}
	if err := e.joiner.Contact(ctx, contact); err != nil {
		t.Fatal(err)
	}
	if err := e.joiner.NotifyRecording(ctx, callrec.RecordingEvent{Type: callrec.RecordingStopped, At: rec.StoppedAt, Recording: rec}); err != nil {
		t.Fatal(err)
	}
	east := e.login(t, "east")

	mark := e.auditMark(t)
	var d web.Detail
	east.get(t, "/api/interactions/"+task).want(t, http.StatusOK).decode(t, &d)
	if d.Interaction.ID != task || !cmp.Equal(d.Interaction.INUMs, []callrec.INUM{n}) || !cmp.Equal(d.Interaction.Teams, []string{"east"}) {
		t.Errorf("interaction = %+v, want %s with %s, team east", d.Interaction, task, n)
	}
	if d.Contact == nil || d.Contact.TaskSID != task || len(d.Contact.Connections) != 1 {
		t.Errorf("contact = %+v, want the joined contact", d.Contact)
	}
	if len(d.Recordings) != 1 || d.Recordings[0].INUM != n || d.Recordings[0].Audio.SHA256 != rec.Audio.SHA256 || len(d.Unavailable) != 0 {
		t.Errorf("recordings = %+v, unavailable %+v; want %s", d.Recordings, d.Unavailable, n)
	}
	type entry struct {
		Kind     string
		INUM     callrec.INUM
		OffsetMS int64
	}
	var got []entry
	for _, x := range d.Timeline {
		off := int64(-1)
		if x.OffsetMS != nil {
			off = *x.OffsetMS
		}
		got = append(got, entry{x.Kind, x.INUM, off})
	}
	want := []entry{
		{"offered", "", -1}, // before the recording started: not on it
		{"answered", n, 0},
		{"recording_started", n, 0},
		{"wrapup", n, 30000},
		{"recording_stopped", n, 60000},
		{"ended", "", -1}, // alice completed the task, after the recording stopped
		{"ended", "", -1}, // the call ended
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]auditLine{{Type: audit.View, Actor: "east", Role: "supervisor", Target: task}}, lines(e.auditSince(t, mark))); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}

	// A recording whose recorder is down is listed as unavailable, not hidden.
	e.recs.fail(n, callrec.Errorf(callrec.EUNAVAILABLE, "recorder 7 unreachable"))
	d = web.Detail{}
	east.get(t, "/api/interactions/"+task).want(t, http.StatusOK).decode(t, &d)
	if len(d.Recordings) != 0 || len(d.Unavailable) != 1 || d.Unavailable[0].INUM != n || d.Unavailable[0].Error != "recorder 7 unreachable" {
		t.Errorf("with the recorder down: recordings %+v, unavailable %+v", d.Recordings, d.Unavailable)
	}

	east.get(t, "/api/interactions/WTnothing").want(t, http.StatusNotFound)
}

func TestRecordingMetadata(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seed(t)
	c := e.tokenClient(t, "comp-bot", users.Compliance)
	n := e.inumOf(t, "west1")
	mark := e.auditMark(t)
	var got callrec.Recording
	c.get(t, "/api/recordings/"+string(n)).want(t, http.StatusOK).decode(t, &got)
	want, _ := e.recs.Recording(context.Background(), n)
	if diff := cmp.Diff(*want, got); diff != "" {
		t.Errorf("recording (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]auditLine{{Type: audit.View, Actor: "comp-bot", Role: "compliance", Target: string(n)}}, lines(e.auditSince(t, mark))); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
	c.get(t, "/api/recordings/1234").want(t, http.StatusBadRequest)
}

func TestAudio(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seed(t)
	comp := e.login(t, "comp")
	n := e.inumOf(t, "east1")
	file := e.files[n]
	size := len(file)
	path := "/api/recordings/" + string(n) + "/audio"

	tests := []struct {
		name       string
		rng        string
		wantStatus int
		from, to   int // expected bytes file[from:to]
	}{
		{"whole file", "", http.StatusOK, 0, size},
		{"from byte 0", "bytes=0-", http.StatusPartialContent, 0, size},
		{"the header", "bytes=0-57", http.StatusPartialContent, 0, 58},
		{"mid-file", "bytes=1000-1999", http.StatusPartialContent, 1000, 2000},
		{"to the end", "bytes=5000-", http.StatusPartialContent, 5000, size},
		{"suffix", "bytes=-10", http.StatusPartialContent, size - 10, size},
		{"last byte", fmt.Sprintf("bytes=%d-%d", size-1, size-1), http.StatusPartialContent, size - 1, size},
		{"beyond the end", fmt.Sprintf("bytes=%d-%d", size-5, size+100), http.StatusPartialContent, size - 5, size},
	}
	mark := e.auditMark(t)
	for _, tt := range tests {
		var hdr []string
		if tt.rng != "" {
			hdr = []string{"Range", tt.rng}
		}
		r := comp.get(t, path, hdr...)
		if r.Status != tt.wantStatus {
			t.Errorf("%s: status %d, want %d", tt.name, r.Status, tt.wantStatus)
			continue
		}
		if !bytes.Equal(r.Body, file[tt.from:tt.to]) {
			t.Errorf("%s: %d bytes differ from the file's [%d:%d]", tt.name, len(r.Body), tt.from, tt.to)
		}
		if ct := r.Header.Get("Content-Type"); ct != "audio/wav" {
			t.Errorf("%s: Content-Type %q, want audio/wav", tt.name, ct)
		}
		if r.Header.Get("Accept-Ranges") != "bytes" {
			t.Errorf("%s: Accept-Ranges %q, want bytes", tt.name, r.Header.Get("Accept-Ranges"))
		}
		if tt.wantStatus == http.StatusPartialContent {
			if want := fmt.Sprintf("bytes %d-%d/%d", tt.from, tt.to-1, size); r.Header.Get("Content-Range") != want {
				t.Errorf("%s: Content-Range %q, want %q", tt.name, r.Header.Get("Content-Range"), want)
			}
		}
		if got, want := r.Header.Get("ETag"), `"`+sha256Hex(file)+`"`; got != want {
			t.Errorf("%s: ETag %q, want %q", tt.name, got, want)
		}
		if got := r.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store (recordings must not stay in browser caches)", tt.name, got)
		}
	}
	r := comp.get(t, path, "Range", fmt.Sprintf("bytes=%d-", size+10))
	if r.Status != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("range past the end: status %d, want 416", r.Status)
	}
	// One playback entry covers the player's requests (see TestPlaybackAuditWindow).
	want := []auditLine{{Type: audit.Playback, Actor: "comp", Role: "compliance", Target: string(n),
		Details: map[string]string{"interaction": "WTeast1", "range": ""}}}
	if diff := cmp.Diff(want, lines(e.auditSince(t, mark))); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
}

func TestAudioUnknownRecording(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	c := e.tokenClient(t, "comp-bot", users.Compliance)
	r := c.get(t, "/api/recordings/"+string(mustINUM(t, 500))+"/audio")
	if r.Status != http.StatusNotFound {
		t.Errorf("audio of an unknown INUM = %s, want 404", r)
	}
	c.get(t, "/api/recordings/0007000000005000/audio").want(t, http.StatusBadRequest)
}

// TestPlaybackAuditWindow: every audio request counts as playback, whatever
// its range; one entry per user and recording covers PlaybackAuditWindow.
func TestPlaybackAuditWindow(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seed(t)
	comp := e.tokenClient(t, "comp-bot", users.Compliance)
	east := e.tokenClient(t, "east-bot", users.Supervisor, "east")
	east1 := "/api/recordings/" + string(e.inumOf(t, "east1")) + "/audio"
	east2 := "/api/recordings/" + string(e.inumOf(t, "east2")) + "/audio"

	steps := []struct {
		name    string
		c       *client
		path    string
		rng     string
		advance time.Duration // before the request
		want    *auditLine
	}{
		{"a mid-file range first", comp, east1, "bytes=1000-1999", 0,
			&auditLine{Type: audit.Playback, Actor: "comp-bot", Role: "compliance", Target: string(e.inumOf(t, "east1")),
				Details: map[string]string{"interaction": "WTeast1", "range": "bytes=1000-1999"}}},
		{"the same user seeking", comp, east1, "bytes=0-", 0, nil},
		{"the whole file again", comp, east1, "", web.PlaybackAuditWindow - time.Second, nil},
		{"another recording", comp, east2, "bytes=100-", 0,
			&auditLine{Type: audit.Playback, Actor: "comp-bot", Role: "compliance", Target: string(e.inumOf(t, "east2")),
				Details: map[string]string{"interaction": "WTeast2", "range": "bytes=100-"}}},
		{"another user", east, east1, "", 0,
			&auditLine{Type: audit.Playback, Actor: "east-bot", Role: "supervisor", Target: string(e.inumOf(t, "east1")),
				Details: map[string]string{"interaction": "WTeast1", "range": ""}}},
		{"after the window", comp, east1, "bytes=-100", time.Second,
			&auditLine{Type: audit.Playback, Actor: "comp-bot", Role: "compliance", Target: string(e.inumOf(t, "east1")),
				Details: map[string]string{"interaction": "WTeast1", "range": "bytes=-100"}}},
		{"within the new window", comp, east1, "", web.PlaybackAuditWindow / 2, nil},
	}
	for _, st := range steps {
		e.clock.Advance(st.advance)
		mark := e.auditMark(t)
		var hdr []string
		if st.rng != "" {
			hdr = []string{"Range", st.rng}
		}
		r := st.c.get(t, st.path, hdr...)
		if r.Status != http.StatusOK && r.Status != http.StatusPartialContent {
			t.Fatalf("%s: %s", st.name, r)
		}
		var want []auditLine
		if st.want != nil {
			want = []auditLine{*st.want}
		}
		if diff := cmp.Diff(want, lines(e.auditSince(t, mark))); diff != "" {
			t.Errorf("%s: audit (-want +got):\n%s", st.name, diff)
		}
	}
}

func TestAuditFailsClosed(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seed(t)
	comp := e.tokenClient(t, "comp-bot", users.Compliance)
	aud := e.tokenClient(t, "aud-bot", users.Auditor)
	n := e.inumOf(t, "east1")
	opens := e.recs.opens.Load()
	if err := e.audit.Close(); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		c      *client
		method string
		path   string
		body   any
	}{
		{"search", comp, http.MethodGet, "/api/interactions", nil},
		{"view", comp, http.MethodGet, "/api/interactions/WTeast1", nil},
		{"recording", comp, http.MethodGet, "/api/recordings/" + string(n), nil},
		{"playback", comp, http.MethodGet, "/api/recordings/" + string(n) + "/audio", nil},
		{"waveform", comp, http.MethodGet, "/api/recordings/" + string(n) + "/peaks", nil},
		{"export", comp, http.MethodPost, "/api/interactions/WTeast1/export", map[string]string{"reason": "court order"}},
		{"denial", aud, http.MethodGet, "/api/interactions", nil},
		{"user change", e.tokenClient(t, "admin-bot", users.Admin), http.MethodPost, "/api/tokens", map[string]string{"name": "x", "role": "auditor"}},
	}
	for _, tt := range tests {
		r := tt.c.do(t, tt.method, tt.path, tt.body)
		if r.Status != http.StatusServiceUnavailable || r.errorCode() != callrec.EUNAVAILABLE {
			t.Errorf("%s with the audit trail closed = %s, want 503 unavailable", tt.name, r)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q: data served", tt.name, ct)
		}
	}
	// Export reads the audio to verify it before auditing; playback and
	// waveform must not open it.
	if n := e.recs.opens.Load() - opens; n > 1 {
		t.Errorf("audio opened %d times while the audit trail was down, want at most export's verification", n)
	}

	r := e.loginResult(t, "comp", testPassword)
	if r.Status != http.StatusServiceUnavailable || len(r.resp.Cookies()) != 0 {
		t.Errorf("login with the audit trail closed = %s, cookies %v; want 503 and no session", r, r.Header["Set-Cookie"])
	}
}

func TestAuditAPI(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seed(t)
	comp := e.tokenClient(t, "comp-bot", users.Compliance)
	aud := e.login(t, "aud")
	comp.get(t, "/api/interactions").want(t, http.StatusOK)
	comp.get(t, "/api/interactions/WTwest1").want(t, http.StatusOK)
	comp.get(t, "/api/recordings/"+string(e.inumOf(t, "west1"))+"/audio").want(t, http.StatusOK)

	var v struct {
		Entries  uint64 `json:"entries"`
		LastHash string `json:"last_hash"`
	}
	aud.get(t, "/api/audit/verify").want(t, http.StatusOK).decode(t, &v)
	all := e.auditSince(t, 0)
	if v.Entries != uint64(len(all)) || v.Entries != 4 || v.LastHash != all[len(all)-1].Hash {
		t.Errorf("verify = %+v, want %d entries ending with %s", v, len(all), all[len(all)-1].Hash)
	}

	var list struct {
		Items []audit.Entry `json:"items"`
		Total int           `json:"total"`
	}
	aud.get(t, "/api/audit?actor=comp-bot&type=view&type=playback").want(t, http.StatusOK).decode(t, &list)
	if list.Total != 2 || len(list.Items) != 2 || list.Items[0].Type != audit.Playback || list.Items[1].Type != audit.View {
		t.Errorf("filtered audit = %+v, want playback then view", list)
	}
	list.Items = nil
	aud.get(t, "/api/audit?target=WTwest1").want(t, http.StatusOK).decode(t, &list)
	if list.Total != 1 || list.Items[0].Actor != "comp-bot" {
		t.Errorf("audit by target = %+v", list)
	}
	aud.get(t, "/api/audit?limit=1&offset=1").want(t, http.StatusOK).decode(t, &list)
	if list.Total != len(all) || len(list.Items) != 1 || list.Items[0].Seq != all[len(all)-2].Seq {
		t.Errorf("audit page = %+v", list)
	}
	aud.get(t, "/api/audit?from="+url.QueryEscape(e.clock.Now().Add(time.Minute).Format(time.RFC3339))).want(t, http.StatusOK).decode(t, &list)
	if list.Total != 0 || list.Items == nil {
		t.Errorf("audit from the future = %+v, want an empty list", list)
	}
	for _, q := range []string{"?type=bogus", "?from=today", "?limit=x", "?limit=100000"} {
		aud.get(t, "/api/audit"+q).want(t, http.StatusBadRequest)
	}
	// Reading the trail is not itself a search of recordings.
	if got := len(e.auditSince(t, 0)); got != len(all) {
		t.Errorf("reading the audit trail added %d entries", got-len(all))
	}
}

// TestAuditVerifyReadFailure: a trail that cannot be read is not a trail
// that was tampered with.
func TestAuditVerifyReadFailure(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	aud := e.tokenClient(t, "aud-bot", users.Auditor)
	if err := e.audit.Close(); err != nil {
		t.Fatal(err)
	}
	r := aud.get(t, "/api/audit/verify")
	if r.Status == http.StatusConflict || r.errorCode() == callrec.ECONFLICT {
		t.Errorf("verify of an unreadable trail = %s: reported as a broken chain (409 conflict), want a 5xx unavailable/internal error", r)
	}
}

// TestRecorderAPIListing: the raw recorder index is for admin and
// compliance, and reading it is an audited search.
func TestRecorderAPIListing(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	rec := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"recordings":[],"total":0,"limit":100,"offset":0}`)
	})
	e := newTestEnv(t, func(c *web.Config) { c.RecorderAPI = rec })
	mark := e.auditMark(t)
	e.tokenClient(t, "east-bot", users.Supervisor, "east").get(t, "/api/recordings").want(t, http.StatusForbidden)
	e.tokenClient(t, "aud-bot", users.Auditor).get(t, "/api/recordings").want(t, http.StatusForbidden)
	if calls.Load() != 0 {
		t.Fatalf("the recorder API was called for a supervisor or auditor")
	}
	if got := e.auditSince(t, mark); len(ofType(got, audit.AccessDenied)) != 2 {
		t.Errorf("refusals audited as %v, want two access_denied", lines(got))
	}
	comp := e.tokenClient(t, "comp-bot", users.Compliance)
	mark = e.auditMark(t)
	r := comp.get(t, "/api/recordings?call_sid=CA1&state=complete").want(t, http.StatusOK)
	if calls.Load() != 1 || !strings.Contains(string(r.Body), `"recordings"`) {
		t.Fatalf("recorder API calls = %d, body %s", calls.Load(), r.Body)
	}
	want := []auditLine{{Type: audit.Search, Actor: "comp-bot", Role: "compliance",
		Details: map[string]string{"index": "recorder", "call_sid": "CA1", "state": "complete"}}}
	if diff := cmp.Diff(want, lines(e.auditSince(t, mark))); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}

	// Without a recorder in the process the route does not exist.
	plain := newTestEnv(t)
	plain.tokenClient(t, "comp-bot", users.Compliance).get(t, "/api/recordings").want(t, http.StatusNotFound)
}

func TestSecurityHeadersOnAPI(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	comp := e.tokenClient(t, "comp-bot", users.Compliance)
	for _, r := range []*result{
		e.anon().get(t, "/api/session"),
		comp.get(t, "/api/session"),
		comp.get(t, "/api/interactions?bad=1"),
		e.loginResult(t, "nobody", "x"),
	} {
		for k, want := range map[string]string{
			"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
			"Content-Type": "application/json",
		} {
			if got := r.Header.Get(k); got != want {
				t.Errorf("%s %s (%d): %s = %q, want %q", r.resp.Request.Method, r.resp.Request.URL.Path, r.Status, k, got, want)
			}
		}
	}
}

func TestUnknownRoutes(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	comp := e.tokenClient(t, "comp-bot", users.Compliance)
	comp.get(t, "/api/nothing").want(t, http.StatusNotFound)
	r := comp.do(t, http.MethodDelete, "/api/interactions", nil)
	if r.Status != http.StatusMethodNotAllowed {
		t.Errorf("DELETE /api/interactions = %d, want 405", r.Status)
	}
	if got := r.Header.Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("405 without X-Frame-Options")
	}
}

// TestRecordingDenialNamesInteraction: a refused request for a recording's
// audio or waveform must be findable by the call it belongs to, as its
// playback and waveform entries are (details "interaction"): an auditor
// looking at call WTwest1 must see who tried to play it.
func TestRecordingDenialNamesInteraction(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seed(t)
	east := e.tokenClient(t, "east-bot", users.Supervisor, "east")
	n := string(e.inumOf(t, "west1"))
	for _, p := range []string{"/api/recordings/" + n, "/api/recordings/" + n + "/audio", "/api/recordings/" + n + "/peaks"} {
		mark := e.auditMark(t)
		east.get(t, p).want(t, http.StatusForbidden)
		got := e.auditSince(t, mark)
		if len(got) != 1 || got[0].Type != audit.AccessDenied {
			t.Fatalf("GET %s audited %v, want one access_denied", p, lines(got))
		}
		if got[0].Target != "WTwest1" && got[0].Details["interaction"] != "WTwest1" {
			t.Errorf("GET %s: access_denied entry has target %q and details %v: it does not name interaction WTwest1", p, got[0].Target, got[0].Details)
		}
	}
}
