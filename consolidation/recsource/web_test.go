package recsource_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"callrec"
	"callrec/consolidation/audit"
	"callrec/consolidation/recsource"
	"callrec/consolidation/store"
	"callrec/consolidation/users"
	"callrec/consolidation/web"
	"callrec/internal/callrectest"
)

// consolidation is a web server over real stores whose recordings come
// from src; it returns the server and a compliance API token.
func consolidation(t *testing.T, src web.Recordings, in store.Interaction) (*httptest.Server, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	us, err := users.Open(filepath.Join(dir, "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { us.Close() })
	al, err := audit.Open(filepath.Join(dir, "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })
	if err := st.Put(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	tok, err := us.CreateToken(context.Background(), "comp-bot", users.Compliance, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(web.New(web.Config{Store: st, Users: us, Audit: al, Recordings: src, Log: callrectest.Logger(t)}).Handler())
	t.Cleanup(srv.Close)
	return srv, tok
}

func get(t *testing.T, srv *httptest.Server, tok, method, path string, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = bytes.NewReader([]byte(body))
	}
	req, err := http.NewRequest(method, srv.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestWebThroughRemote plays, seeks and exports a recording that web
// fetches from a recorder node over HTTP.
func TestWebThroughRemote(t *testing.T) {
	rn := openNode(t)
	rec := rn.record(t, 11, 100) // 2 s
	file := rn.file(t, rec)
	api := serveRecorder(t, rn.node.Handler(), "node-token")
	in := store.Interaction{ID: "WTremote", TaskSID: "WTremote", Teams: []string{"east"}, Start: rec.StartedAt,
		End: rec.StoppedAt, Status: store.StatusComplete, INUMs: []callrec.INUM{rec.INUM}}
	srv, tok := consolidation(t, recsource.NewRemote(map[uint16]string{nodeID: api.srv.URL}, "node-token"), in)
	audio := "/api/recordings/" + string(rec.INUM) + "/audio"

	resp, b := get(t, srv, tok, http.MethodGet, audio, "")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(b, file) || resp.Header.Get("Content-Type") != "audio/wav" {
		t.Errorf("whole file: %d, %d bytes (%s); want 200 and the %d-byte file", resp.StatusCode, len(b), resp.Header.Get("Content-Type"), len(file))
	}
	for _, rg := range [][2]int{{0, 57}, {1000, 1999}, {len(file) - 7, len(file) - 1}, {31, 31}} {
		resp, b := get(t, srv, tok, http.MethodGet, audio, "", "Range", fmt.Sprintf("bytes=%d-%d", rg[0], rg[1]))
		wantCR := fmt.Sprintf("bytes %d-%d/%d", rg[0], rg[1], len(file))
		if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Range") != wantCR || !bytes.Equal(b, file[rg[0]:rg[1]+1]) {
			t.Errorf("range %v: %d %q, %d bytes; want 206 %q and the file's bytes", rg, resp.StatusCode, resp.Header.Get("Content-Range"), len(b), wantCR)
		}
	}

	// Export: the bundle's file matches the digest the recorder computed.
	resp, b = get(t, srv, tok, http.MethodPost, "/api/interactions/WTremote/export", `{"reason":"check"}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("export: %d %s", resp.StatusCode, b)
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var m web.Manifest
	var wavBytes []byte
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(rc)
		rc.Close()
		switch f.Name {
		case "manifest.json":
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatal(err)
			}
		case string(rec.INUM) + ".wav":
			wavBytes = data
		}
	}
	if !bytes.Equal(wavBytes, file) || len(m.Recordings) != 1 || m.Recordings[0].SHA256 != rec.Audio.SHA256 || m.Recordings[0].RecordedSHA256 != rec.Audio.SHA256 {
		t.Errorf("bundle: wav %d bytes, manifest %+v; want the file with digest %s", len(wavBytes), m.Recordings, rec.Audio.SHA256)
	}

	// Waveform.
	resp, b = get(t, srv, tok, http.MethodGet, "/api/recordings/"+string(rec.INUM)+"/peaks?points=50", "")
	var p web.Peaks
	if err := json.Unmarshal(b, &p); err != nil || resp.StatusCode != http.StatusOK || p.Points != 50 || p.DurationMS != 2000 {
		t.Errorf("peaks: %d %+v %v", resp.StatusCode, p, err)
	}
}

// TestWebThroughRemoteRecorderTrouble: a recorder that is down, or refuses
// consolidation's token, is the service's trouble (503), never a reason to
// send the signed-in user back to the login page (401).
func TestWebThroughRemoteRecorderTrouble(t *testing.T) {
	rn := openNode(t)
	rec := rn.record(t, 12, 5)
	api := serveRecorder(t, rn.node.Handler(), "node-token")
	in := store.Interaction{ID: "WTremote", Start: rec.StartedAt, Status: store.StatusComplete, INUMs: []callrec.INUM{rec.INUM}}
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	for name, src := range map[string]*recsource.Remote{
		"wrong token":   recsource.NewRemote(map[uint16]string{nodeID: api.srv.URL}, "stale-token"),
		"recorder down": recsource.NewRemote(map[uint16]string{nodeID: down.URL}, "node-token"),
	} {
		srv, tok := consolidation(t, src, in)
		for _, p := range []string{"/api/recordings/" + string(rec.INUM), "/api/recordings/" + string(rec.INUM) + "/audio",
			"/api/recordings/" + string(rec.INUM) + "/peaks"} {
			if resp, b := get(t, srv, tok, http.MethodGet, p, ""); resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("%s: GET %s = %d %s, want 503", name, p, resp.StatusCode, b)
			}
		}
		resp, b := get(t, srv, tok, http.MethodGet, "/api/interactions/WTremote", "")
		var d web.Detail
		if err := json.Unmarshal(b, &d); err != nil || resp.StatusCode != http.StatusOK || len(d.Unavailable) != 1 || d.Unavailable[0].INUM != rec.INUM {
			t.Errorf("%s: detail %d, unavailable %+v; want the recording listed as unavailable", name, resp.StatusCode, d.Unavailable)
		}
		// Exporting without the audio would be a bundle missing its point.
		resp, b = get(t, srv, tok, http.MethodPost, "/api/interactions/WTremote/export", `{"reason":"x"}`)
		if resp.StatusCode == http.StatusOK {
			var m web.Manifest
			zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
			if err == nil {
				for _, f := range zr.File {
					if f.Name == "manifest.json" {
						rc, _ := f.Open()
						json.NewDecoder(rc).Decode(&m)
						rc.Close()
					}
				}
			}
			if len(m.Unavailable) != 1 {
				t.Errorf("%s: export bundle without the recording and without saying so: %+v", name, m)
			}
		}
	}
}
