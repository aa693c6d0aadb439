package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"callrec"
	"callrec/consolidation/audit"
	"callrec/consolidation/store"
	"callrec/consolidation/users"
	"callrec/internal/httpio"
)

// searchParams are the query parameters of GET /api/interactions.
var searchParams = []string{"from", "to", "agent", "number", "queue", "direction", "status", "call_sid",
	"task_sid", "inum", "min_duration", "max_duration", "tag", "sort", "limit", "offset"}

// parseQuery turns the query string into a store query. Durations are
// seconds (decimals allowed); times RFC 3339.
func parseQuery(v url.Values) (store.Query, error) {
	var q store.Query
	for k := range v {
		if !slices.Contains(searchParams, k) {
			return q, callrec.Errorf(callrec.EINVALID, "unknown search parameter %q", k)
		}
	}
	for name, dst := range map[string]*time.Time{"from": &q.From, "to": &q.To} {
		if s := v.Get(name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return q, callrec.Errorf(callrec.EINVALID, "%s: want an RFC 3339 time, got %q", name, s)
			}
			*dst = t
		}
	}
	for name, dst := range map[string]*time.Duration{"min_duration": &q.MinDuration, "max_duration": &q.MaxDuration} {
		if s := v.Get(name); s != "" {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || f < 0 || f > 1e9 {
				return q, callrec.Errorf(callrec.EINVALID, "%s: want seconds, got %q", name, s)
			}
			*dst = time.Duration(f * float64(time.Second))
		}
	}
	for name, dst := range map[string]*int{"limit": &q.Limit, "offset": &q.Offset} {
		if s := v.Get(name); s != "" {
			i, err := strconv.Atoi(s)
			if err != nil || i < 0 {
				return q, callrec.Errorf(callrec.EINVALID, "%s: want a non-negative integer, got %q", name, s)
			}
			*dst = i
		}
	}
	q.Agent, q.Number, q.Queue = v.Get("agent"), v.Get("number"), v.Get("queue")
	q.Direction, q.Status, q.Sort = v.Get("direction"), v.Get("status"), v.Get("sort")
	q.CallSID, q.TaskSID = v.Get("call_sid"), v.Get("task_sid")
	if s := v.Get("inum"); s != "" {
		n, err := callrec.ParseINUM(s)
		if err != nil {
			return q, err
		}
		q.INUM = n
	}
	for _, t := range v["tag"] {
		if t != "" {
			q.Tags = append(q.Tags, t)
		}
	}
	return q, nil
}

// filtersOf is the search as the audit trail keeps it: every parameter
// given, in a stable order.
func filtersOf(v url.Values) map[string]string {
	d := map[string]string{}
	for _, k := range searchParams {
		if vs := v[k]; len(vs) > 0 && strings.Join(vs, "") != "" {
			d[k] = strings.Join(vs, ",")
		}
	}
	return d
}

// searchBody is the answer to a search.
type searchBody struct {
	Items       []store.Interaction `json:"items"`
	Total       int                 `json:"total"`
	TotalCapped bool                `json:"total_capped,omitempty"`
	Limit       int                 `json:"limit"`
	Offset      int                 `json:"offset"`
}

func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request, p *principal) {
	v := r.URL.Query()
	q, err := parseQuery(v)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	details := filtersOf(v)
	if p.user.Role == users.Supervisor {
		details["scope"] = "teams=" + strings.Join(p.user.Teams, ",")
	}
	if _, err := s.audit(r, p, audit.Search, "", "", details); err != nil {
		s.fail(w, r, err)
		return
	}
	body := searchBody{Items: []store.Interaction{}, Limit: q.Limit, Offset: q.Offset}
	if body.Limit == 0 {
		body.Limit = store.DefaultLimit
	}
	if p.user.Role == users.Supervisor {
		if len(p.user.Teams) == 0 {
			httpio.JSON(w, http.StatusOK, body) // a supervisor of no team sees nothing
			return
		}
		q.Teams = p.user.Teams
	}
	res, err := s.cfg.Store.Search(r.Context(), q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if res.Items != nil {
		body.Items = res.Items
	}
	body.Total, body.TotalCapped = res.Total, res.TotalCapped
	httpio.JSON(w, http.StatusOK, body)
}

// canSee reports whether u may see an interaction: admin and compliance see
// all; a supervisor sees calls one of whose agents is in their teams.
func canSee(u users.User, in *store.Interaction) bool {
	if seesAll(u) {
		return true
	}
	for _, t := range in.Teams {
		if u.CanSee(t) {
			return true
		}
	}
	return false
}

// interaction loads an interaction the principal may see; it answers the
// request itself (404, or 403 audited) when ok is false.
func (s *Server) interaction(w http.ResponseWriter, r *http.Request, p *principal, id string) (store.Interaction, bool) {
	in, err := s.cfg.Store.Get(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return in, false
	}
	if !canSee(p.user, &in) {
		s.deny(w, r, p, id, fmt.Sprintf("call of teams [%s], outside the user's teams [%s]",
			strings.Join(in.Teams, ","), strings.Join(p.user.Teams, ",")))
		return in, false
	}
	return in, true
}

// PlaybackAuditWindow is how long one playback entry covers a user's
// further requests for the same recording's audio.
const PlaybackAuditWindow = 10 * time.Minute

// playbacks remembers when each user's playback of a recording was last
// audited.
type playbacks struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (pb *playbacks) due(user string, n callrec.INUM, now time.Time) bool {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	if pb.last == nil {
		pb.last = map[string]time.Time{}
	}
	for k, t := range pb.last { // bounded by the users playing within a window
		if now.Sub(t) >= PlaybackAuditWindow {
			delete(pb.last, k)
		}
	}
	k := user + "\x00" + string(n)
	if t, ok := pb.last[k]; ok && now.Sub(t) < PlaybackAuditWindow {
		return false
	}
	pb.last[k] = now
	return true
}

func (pb *playbacks) forget(user string, n callrec.INUM) {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	delete(pb.last, user+"\x00"+string(n))
}

// Detail is the answer to GET /api/interactions/{id}.
type Detail struct {
	Interaction store.Interaction    `json:"interaction"`
	Contact     *callrec.Contact     `json:"contact"`
	Recordings  []*callrec.Recording `json:"recordings"`
	// Unavailable lists recordings the call names that could not be read
	// (their recorder is down): shown, never hidden.
	Unavailable []UnavailableRecording `json:"unavailable,omitempty"`
	Timeline    []TimelineEntry        `json:"timeline"`
}

// UnavailableRecording is a recording that could not be fetched.
type UnavailableRecording struct {
	INUM  callrec.INUM `json:"inum"`
	Error string       `json:"error"`
}

func (s *Server) handleInteraction(w http.ResponseWriter, r *http.Request, p *principal) {
	id := r.PathValue("id")
	in, ok := s.interaction(w, r, p, id)
	if !ok {
		return
	}
	if _, err := s.audit(r, p, audit.View, id, "", nil); err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.detail(r.Context(), in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpio.JSON(w, http.StatusOK, d)
}

// detail gathers the contact, the recordings and the timeline of a call.
func (s *Server) detail(ctx context.Context, in store.Interaction) (*Detail, error) {
	d := &Detail{Interaction: in, Recordings: []*callrec.Recording{}}
	if s.cfg.Joined != nil {
		st, ok, err := s.cfg.Joined.Get(in.ID)
		if err != nil {
			return nil, err
		}
		if ok {
			d.Contact = st.Contact
		}
	}
	for _, n := range in.INUMs {
		rec, err := s.cfg.Recordings.Recording(ctx, n)
		if err != nil {
			s.log.Warn("recording unavailable", callrec.LogKeyINUM, n, callrec.LogKeyErr, err)
			d.Unavailable = append(d.Unavailable, UnavailableRecording{INUM: n, Error: callrec.ErrorMessage(err)})
			continue
		}
		d.Recordings = append(d.Recordings, rec)
	}
	d.Timeline = timeline(&d.Interaction, d.Contact, d.Recordings)
	return d, nil
}

// recordingFor loads a recording the principal may see: the interaction
// holding it decides. A recording not joined to any call yet is visible to
// admin and compliance only.
func (s *Server) recordingFor(w http.ResponseWriter, r *http.Request, p *principal) (callrec.INUM, string, bool) {
	n, err := callrec.ParseINUM(r.PathValue("inum"))
	if err != nil {
		s.fail(w, r, err)
		return "", "", false
	}
	res, err := s.cfg.Store.Search(r.Context(), store.Query{INUM: n, Limit: 1})
	if err != nil {
		s.fail(w, r, err)
		return "", "", false
	}
	if len(res.Items) == 0 {
		if !seesAll(p.user) {
			s.deny(w, r, p, string(n), "recording not joined to a call yet: only admin and compliance may open it")
			return "", "", false
		}
		return n, "", true
	}
	in := res.Items[0]
	if !canSee(p.user, &in) {
		s.denyWith(w, r, p, string(n), fmt.Sprintf("recording of a call of teams [%s], outside the user's teams [%s]",
			strings.Join(in.Teams, ","), strings.Join(p.user.Teams, ",")), map[string]string{"interaction": in.ID})
		return "", "", false
	}
	return n, in.ID, true
}

func (s *Server) handleRecording(w http.ResponseWriter, r *http.Request, p *principal) {
	n, _, ok := s.recordingFor(w, r, p)
	if !ok {
		return
	}
	if _, err := s.audit(r, p, audit.View, string(n), "", nil); err != nil {
		s.fail(w, r, err)
		return
	}
	rec, err := s.cfg.Recordings.Recording(r.Context(), n)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpio.JSON(w, http.StatusOK, rec)
}

// handleAudio serves a recording's WAV with Range support. Every request
// for audio counts as playback; to keep the trail readable, one entry is
// written per user and recording per PlaybackAuditWindow, whatever the
// range (a player seeking makes many requests).
func (s *Server) handleAudio(w http.ResponseWriter, r *http.Request, p *principal) {
	n, id, ok := s.recordingFor(w, r, p)
	if !ok {
		return
	}
	if s.playbacks.due(p.user.Name, n, s.now()) {
		if _, err := s.audit(r, p, audit.Playback, string(n), "", map[string]string{"interaction": id, "range": r.Header.Get("Range")}); err != nil {
			s.playbacks.forget(p.user.Name, n)
			s.fail(w, r, err)
			return
		}
	}
	a, err := s.cfg.Recordings.OpenAudio(r.Context(), n)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer a.Close()
	w.Header().Set("Content-Type", "audio/wav")
	if a.Recording.Audio.SHA256 != "" {
		w.Header().Set("ETag", `"`+a.Recording.Audio.SHA256+`"`)
		w.Header().Set("Digest", "sha-256="+a.Recording.Audio.SHA256)
	}
	http.ServeContent(w, r, string(n)+".wav", a.Recording.UpdatedAt, a)
}

func (s *Server) handlePeaks(w http.ResponseWriter, r *http.Request, p *principal) {
	n, id, ok := s.recordingFor(w, r, p)
	if !ok {
		return
	}
	if _, err := s.audit(r, p, audit.View, string(n), "", map[string]string{"interaction": id, "what": "waveform"}); err != nil {
		s.fail(w, r, err)
		return
	}
	points := 1000
	if v := r.URL.Query().Get("points"); v != "" {
		i, err := strconv.Atoi(v)
		if err != nil || i < 1 || i > MaxPeakPoints {
			s.fail(w, r, callrec.Errorf(callrec.EINVALID, "points: want 1..%d, got %q", MaxPeakPoints, v))
			return
		}
		points = i
	}
	a, err := s.cfg.Recordings.OpenAudio(r.Context(), n)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer a.Close()
	pk, err := ComputePeaks(a, a.Size, points)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	pk.INUM = n
	httpio.JSON(w, http.StatusOK, pk)
}

func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request, p *principal) {
	v := r.URL.Query()
	var f audit.Filter
	for name, dst := range map[string]*time.Time{"from": &f.From, "to": &f.To} {
		if s2 := v.Get(name); s2 != "" {
			t, err := time.Parse(time.RFC3339Nano, s2)
			if err != nil {
				s.fail(w, r, callrec.Errorf(callrec.EINVALID, "%s: want an RFC 3339 time, got %q", name, s2))
				return
			}
			*dst = t
		}
	}
	for _, t := range v["type"] {
		if t == "" {
			continue
		}
		if !audit.EventType(t).Valid() {
			s.fail(w, r, callrec.Errorf(callrec.EINVALID, "unknown audit event type %q", t))
			return
		}
		f.Types = append(f.Types, audit.EventType(t))
	}
	for k := range v {
		if !slices.Contains([]string{"from", "to", "type", "actor", "target", "limit", "offset"}, k) {
			s.fail(w, r, callrec.Errorf(callrec.EINVALID, "unknown audit filter %q", k))
			return
		}
	}
	f.Actor, f.Target = v.Get("actor"), v.Get("target")
	for name, dst := range map[string]*int{"limit": &f.Limit, "offset": &f.Offset} {
		if s2 := v.Get(name); s2 != "" {
			i, err := strconv.Atoi(s2)
			if err != nil || i < 0 {
				s.fail(w, r, callrec.Errorf(callrec.EINVALID, "%s: want a non-negative integer, got %q", name, s2))
				return
			}
			*dst = i
		}
	}
	items, total, err := s.cfg.Audit.Find(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if items == nil {
		items = []audit.Entry{}
	}
	httpio.JSON(w, http.StatusOK, map[string]any{"items": items, "total": total})
}

func (s *Server) handleAuditVerify(w http.ResponseWriter, r *http.Request, p *principal) {
	res, err := s.cfg.Audit.Verify(r.Context())
	body := map[string]any{"entries": res.Entries, "last_hash": res.LastHash}
	if err != nil && !errors.Is(err, audit.ErrTampered) {
		s.fail(w, r, err)
		return
	}
	if err != nil {
		body["error"] = map[string]string{"code": callrec.ECONFLICT, "message": err.Error()}
		httpio.JSON(w, http.StatusConflict, body)
		return
	}
	httpio.JSON(w, http.StatusOK, body)
}
