package recorder

import (
	"net/http"
	"strconv"
	"time"

	"callrec"
	"callrec/internal/httpio"
)

// Handler serves the recorder's JSON API:
//
//	GET /api/recordings                 ?call_sid= &stream_sid= &from= &to= &state= &limit= &offset=
//	GET /api/recordings/{inum}          one recording with its frame accounting
//	GET /api/recordings/{inum}/audio    the WAV file (HTTP Range supported)
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/recordings", n.handleList)
	mux.HandleFunc("GET /api/recordings/{inum}", n.handleGet)
	mux.HandleFunc("GET /api/recordings/{inum}/audio", n.handleAudio)
	return mux
}

// ListResponse is the body of GET /api/recordings.
type ListResponse struct {
	Recordings []*callrec.Recording `json:"recordings"`
	Total      int                  `json:"total"`
	Limit      int                  `json:"limit"`
	Offset     int                  `json:"offset"`
}

func (n *Node) handleList(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r)
	if err != nil {
		httpio.Error(w, r, n.log, err)
		return
	}
	rs, total, err := n.FindRecordings(r.Context(), f)
	if err != nil {
		httpio.Error(w, r, n.log, err)
		return
	}
	if rs == nil {
		rs = []*callrec.Recording{}
	}
	httpio.JSON(w, http.StatusOK, ListResponse{Recordings: rs, Total: total, Limit: f.Limit, Offset: f.Offset})
}

func parseFilter(r *http.Request) (callrec.RecordingFilter, error) {
	q := r.URL.Query()
	f := callrec.RecordingFilter{CallSID: q.Get("call_sid"), StreamSID: q.Get("stream_sid"), Limit: 100}
	for name, dst := range map[string]*time.Time{"from": &f.From, "to": &f.To} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return f, callrec.Errorf(callrec.EINVALID, "%s: want an RFC 3339 time, got %q", name, v)
			}
			*dst = t
		}
	}
	for name, dst := range map[string]*int{"limit": &f.Limit, "offset": &f.Offset} {
		if v := q.Get(name); v != "" {
			i, err := strconv.Atoi(v)
			if err != nil || i < 0 {
				return f, callrec.Errorf(callrec.EINVALID, "%s: want a non-negative integer, got %q", name, v)
			}
			*dst = i
		}
	}
	switch s := callrec.RecordingState(q.Get("state")); s {
	case "", callrec.StateRecording, callrec.StateComplete, callrec.StateInterrupted:
		f.State = s
	default:
		return f, callrec.Errorf(callrec.EINVALID, "state: want recording, complete or interrupted, got %q", s)
	}
	return f, nil
}

func (n *Node) handleGet(w http.ResponseWriter, r *http.Request) {
	inum, err := callrec.ParseINUM(r.PathValue("inum"))
	if err != nil {
		httpio.Error(w, r, n.log, err)
		return
	}
	rec, err := n.FindRecordingByINUM(r.Context(), inum)
	if err != nil {
		httpio.Error(w, r, n.log, err)
		return
	}
	httpio.JSON(w, http.StatusOK, rec)
}

func (n *Node) handleAudio(w http.ResponseWriter, r *http.Request) {
	inum, err := callrec.ParseINUM(r.PathValue("inum"))
	if err != nil {
		httpio.Error(w, r, n.log, err)
		return
	}
	b, rec, size, err := n.OpenAudio(r.Context(), inum)
	if err != nil {
		httpio.Error(w, r, n.log, err)
		return
	}
	defer b.Close()
	w.Header().Set("Content-Type", "audio/wav")
	if rec.Audio.SHA256 != "" {
		w.Header().Set("ETag", `"`+rec.Audio.SHA256+`"`)
		w.Header().Set("Digest", "sha-256="+rec.Audio.SHA256)
	} else {
		w.Header().Set("Cache-Control", "no-store") // still growing
	}
	http.ServeContent(w, r, string(inum)+".wav", rec.UpdatedAt, sectionReader(b, size))
}
