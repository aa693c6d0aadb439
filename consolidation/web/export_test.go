package web_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"callrec"
	"callrec/consolidation/audit"
	"callrec/consolidation/users"
	"callrec/consolidation/web"
)

// unzip reads a zip answer into name → bytes, in archive order.
func unzip(t *testing.T, b []byte) (map[string][]byte, []string) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("not a zip: %v", err)
	}
	files := map[string][]byte{}
	var names []string
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatalf("open %s: %v", f.Name, err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("read %s: %v", f.Name, err)
		}
		if _, dup := files[f.Name]; dup {
			t.Errorf("%s twice in the bundle", f.Name)
		}
		files[f.Name] = data
		names = append(names, f.Name)
	}
	return files, names
}

func TestExportBundle(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seed(t)
	// A call with two recordings: one finished, one still being written
	// (no recorded digest yet).
	in := e.calls["east1"]
	live := mustINUM(t, 50)
	liveFile := makeWAV(1500, 50)
	liveRec := finishedRecording(live, in.Start.Add(time.Minute), liveFile)
	liveRec.State, liveRec.StoppedAt, liveRec.Audio.SHA256 = callrec.StateRecording, time.Time{}, ""
	e.recs.put(liveRec, liveFile)
	e.files[live] = liveFile
	in.INUMs = append(in.INUMs, live)
	if err := e.store.Put(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	comp := e.login(t, "comp")
	const reason = "Subpoena 2026-17: complaint of 2 March"

	mark := e.auditMark(t)
	r := comp.do(t, http.MethodPost, "/api/interactions/WTeast1/export", map[string]string{"reason": "  " + reason + "\n"}).want(t, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); ct != "application/zip" {
		t.Errorf("Content-Type %q, want application/zip", ct)
	}

	// Exactly one export entry, by comp, with the reason.
	entries := e.auditSince(t, mark)
	if len(entries) != 1 {
		t.Fatalf("audit = %v, want one export entry", lines(entries))
	}
	entry := entries[0]
	inums := string(in.INUMs[0]) + "," + string(live)
	wantLine := auditLine{Type: audit.Export, Actor: "comp", Role: "compliance", Target: "WTeast1", Reason: reason,
		Details: map[string]string{"inums": inums}}
	if diff := cmp.Diff([]auditLine{wantLine}, lines(entries)); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Disposition"))
	if want := "callrec-WTeast1-" + entry.Time.Format("20060102T150405Z") + ".zip"; err != nil || params["filename"] != want {
		t.Errorf("Content-Disposition %q, want attachment %q", r.Header.Get("Content-Disposition"), want)
	}

	files, names := unzip(t, r.Body)
	wantNames := []string{string(in.INUMs[0]) + ".wav", string(live) + ".wav", "manifest.json", "SHA256SUMS"}
	if !cmp.Equal(names, wantNames) {
		t.Errorf("bundle holds %v, want %v", names, wantNames)
	}

	var m web.Manifest
	dec := json.NewDecoder(bytes.NewReader(files["manifest.json"]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if m.Format != web.ExportFormat || m.ExportedBy != "comp" || m.Role != "compliance" || m.Reason != reason ||
		!m.ExportedAt.Equal(entry.Time) || m.AuditEntry.Seq != entry.Seq || m.AuditEntry.Hash != entry.Hash {
		t.Errorf("manifest = format %q by %q (%q) for %q at %v, audit %+v; want comp (compliance), %q, audit entry %d %s at %v",
			m.Format, m.ExportedBy, m.Role, m.Reason, m.ExportedAt, m.AuditEntry, reason, entry.Seq, entry.Hash, entry.Time)
	}
	if !strings.Contains(m.Verify, "sha256sum -c SHA256SUMS") {
		t.Errorf("manifest verify hint %q", m.Verify)
	}
	if diff := cmp.Diff(in, m.Interaction); diff != "" {
		t.Errorf("manifest interaction (-stored +got):\n%s", diff)
	}
	if len(m.Recordings) != 2 {
		t.Fatalf("manifest lists %d recordings, want 2", len(m.Recordings))
	}
	for _, mr := range m.Recordings {
		n := mr.Recording.INUM
		src := e.files[n]
		if mr.File != string(n)+".wav" || mr.Bytes != int64(len(src)) {
			t.Errorf("%s: file %q, %d bytes; want %s.wav, %d bytes", n, mr.File, mr.Bytes, n, len(src))
		}
		if got := sha256Hex(files[mr.File]); got != mr.SHA256 || got != sha256Hex(src) || !bytes.Equal(files[mr.File], src) {
			t.Errorf("%s: bundle file digest %s, manifest %s, source %s", n, got, mr.SHA256, sha256Hex(src))
		}
		want, _ := e.recs.Recording(context.Background(), n)
		if mr.RecordedSHA256 != want.Audio.SHA256 {
			t.Errorf("%s: recorded_sha256 %q, want %q", n, mr.RecordedSHA256, want.Audio.SHA256)
		}
	}

	// SHA256SUMS covers every other file, the manifest included.
	sums := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(files["SHA256SUMS"]))
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 {
			t.Fatalf("SHA256SUMS line %q", sc.Text())
		}
		sums[name] = sum
	}
	var summed []string
	for name := range sums {
		summed = append(summed, name)
	}
	slices.Sort(summed)
	wantSummed := slices.Sorted(slices.Values(wantNames[:3]))
	if !cmp.Equal(summed, wantSummed) {
		t.Errorf("SHA256SUMS lists %v, want %v", summed, wantSummed)
	}
	for name, sum := range sums {
		if got := sha256Hex(files[name]); got != sum {
			t.Errorf("SHA256SUMS: %s is %s, listed %s", name, got, sum)
		}
	}

	// The tool the manifest names agrees.
	if _, err := exec.LookPath("sha256sum"); err != nil {
		t.Logf("sha256sum not installed: skipping the command-line check")
		return
	}
	dir := t.TempDir()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("sha256sum", "--strict", "-c", "SHA256SUMS")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sha256sum -c SHA256SUMS: %v\n%s", err, out)
	}
	// And it notices a changed file.
	wavPath := filepath.Join(dir, wantNames[0])
	b := bytes.Clone(files[wantNames[0]])
	b[len(b)/2] ^= 1
	if err := os.WriteFile(wavPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command("sha256sum", "-c", "SHA256SUMS")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("sha256sum accepted an altered file:\n%s", out)
	}
}

func TestExportReason(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seed(t)
	comp := e.tokenClient(t, "comp-bot", users.Compliance)
	path := "/api/interactions/WTwest1/export"
	tests := []struct {
		name string
		body any
		want int
	}{
		{"reason of 1001 bytes", map[string]string{"reason": strings.Repeat("x", web.MaxReason+1)}, http.StatusBadRequest},
		{"501 two-byte runes (1002 bytes)", map[string]string{"reason": strings.Repeat("é", web.MaxReason/2+1)}, http.StatusBadRequest},
		{"unknown field", map[string]string{"reason": "ok", "format": "mp3"}, http.StatusBadRequest},
		{"not JSON", "reason=court", http.StatusBadRequest},
		{"reason of 1000 bytes", map[string]string{"reason": strings.Repeat("y", web.MaxReason)}, http.StatusOK},
		{"1000 bytes after trimming", map[string]string{"reason": " " + strings.Repeat("z", web.MaxReason) + " "}, http.StatusOK},
	}
	for _, tt := range tests {
		mark := e.auditMark(t)
		r := comp.do(t, http.MethodPost, path, tt.body)
		if r.Status != tt.want {
			t.Errorf("%s: %s, want %d", tt.name, r, tt.want)
		}
		exports := ofType(e.auditSince(t, mark), audit.Export)
		if got, want := len(exports), map[bool]int{true: 1, false: 0}[tt.want == http.StatusOK]; got != want {
			t.Errorf("%s: %d export entries, want %d", tt.name, got, want)
		}
		if tt.want == http.StatusBadRequest && r.errorCode() != callrec.EINVALID {
			t.Errorf("%s: code %q", tt.name, r.errorCode())
		}
	}
	comp.do(t, http.MethodPost, "/api/interactions/WTnothing/export", map[string]string{"reason": "x"}).want(t, http.StatusNotFound)
}

func TestExportRefusesAlteredAudio(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seed(t)
	n := e.inumOf(t, "west1")
	rec, _ := e.recs.Recording(context.Background(), n)
	altered := bytes.Clone(e.files[n])
	altered[len(altered)-100] ^= 0x55 // one sample changed after the recorder's digest
	e.recs.put(*rec, altered)
	comp := e.tokenClient(t, "comp-bot", users.Compliance)

	mark := e.auditMark(t)
	r := comp.do(t, http.MethodPost, "/api/interactions/WTwest1/export", map[string]string{"reason": "audit"})
	if r.Status != http.StatusConflict || r.errorCode() != callrec.ECONFLICT {
		t.Errorf("export of altered audio = %s, want 409 conflict", r)
	}
	if ct := r.Header.Get("Content-Type"); ct == "application/zip" || bytes.HasPrefix(r.Body, []byte("PK")) {
		t.Errorf("a zip was sent (Content-Type %q)", ct)
	}
	if got := ofType(e.auditSince(t, mark), audit.Export); len(got) != 0 {
		t.Errorf("refused export audited as an export: %v", lines(got))
	}

	// A recording still being written has no digest to check against.
	rec.Audio.SHA256, rec.State = "", callrec.StateRecording
	e.recs.put(*rec, altered)
	r = comp.do(t, http.MethodPost, "/api/interactions/WTwest1/export", map[string]string{"reason": "audit"}).want(t, http.StatusOK)
	files, _ := unzip(t, r.Body)
	if !bytes.Equal(files[string(n)+".wav"], altered) {
		t.Error("live recording's bytes differ in the bundle")
	}
}

func TestExportListsUnavailableRecordings(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seed(t)
	n := e.inumOf(t, "mixed")
	e.recs.fail(n, callrec.Errorf(callrec.EUNAVAILABLE, "recorder 7 unreachable"))
	comp := e.tokenClient(t, "comp-bot", users.Compliance)
	r := comp.do(t, http.MethodPost, "/api/interactions/WTmixed/export", map[string]string{"reason": "review"}).want(t, http.StatusOK)
	files, names := unzip(t, r.Body)
	var m web.Manifest
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Recordings) != 0 || len(m.Unavailable) != 1 || m.Unavailable[0].INUM != n || !cmp.Equal(names, []string{"manifest.json", "SHA256SUMS"}) {
		t.Errorf("bundle %v: recordings %+v, unavailable %+v; want %s listed as unavailable", names, m.Recordings, m.Unavailable, n)
	}
}
