package web

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"callrec"
	"callrec/consolidation/audit"
	"callrec/consolidation/store"
)

// ExportFormat names the layout of an export bundle.
const ExportFormat = "callrec-export/1"

// MaxReason bounds an export reason (bytes).
const MaxReason = 1000

// Manifest is manifest.json in an export bundle: what the bundle holds,
// who exported it, when and why, and the SHA-256 of every audio file.
// SHA256SUMS lists the same digests (and the manifest's) in the format
// `sha256sum -c` checks.
type Manifest struct {
	Format      string                 `json:"format"`
	ExportedAt  time.Time              `json:"exported_at"`
	ExportedBy  string                 `json:"exported_by"`
	Role        string                 `json:"role"`
	Reason      string                 `json:"reason"`
	AuditEntry  ManifestAudit          `json:"audit_entry"`
	Interaction store.Interaction      `json:"interaction"`
	Contact     *callrec.Contact       `json:"contact"`
	Recordings  []ManifestRecording    `json:"recordings"`
	Unavailable []UnavailableRecording `json:"unavailable,omitempty"`
	Verify      string                 `json:"verify"`
}

// ManifestAudit ties a bundle to its audit entry (the trail's hash chain
// proves when and by whom it was exported).
type ManifestAudit struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// ManifestRecording is one audio file of a bundle.
type ManifestRecording struct {
	File   string `json:"file"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"` // of the file in the bundle
	// RecordedSHA256 is the digest the recorder computed when the recording
	// finished (empty while it is still being written); equal to SHA256
	// for a finished recording.
	RecordedSHA256 string             `json:"recorded_sha256,omitempty"`
	Recording      *callrec.Recording `json:"recording"`
}

func (s *Server) handleExport(w http.ResponseWriter, r *http.Request, p *principal) {
	var body struct {
		Reason string `json:"reason"`
	}
	if err := decodeJSON(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	body.Reason = strings.TrimSpace(body.Reason)
	if len(body.Reason) > MaxReason || !utf8.ValidString(body.Reason) {
		s.fail(w, r, callrec.Errorf(callrec.EINVALID, "reason: at most %d bytes of text", MaxReason))
		return
	}
	id := r.PathValue("id")
	in, ok := s.interaction(w, r, p, id)
	if !ok {
		return
	}
	d, err := s.detail(r.Context(), in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// Check every finished recording against the digest the recorder
	// computed before anything is sent: an altered file is refused with a
	// clear error instead of a bundle cut short.
	for _, rec := range d.Recordings {
		if err := s.verifyAudio(r, rec.INUM); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	inums := make([]string, len(d.Recordings))
	for i, rec := range d.Recordings {
		inums[i] = string(rec.INUM)
	}
	entry, err := s.audit(r, p, audit.Export, id, body.Reason, map[string]string{"inums": strings.Join(inums, ",")})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	m := Manifest{Format: ExportFormat, ExportedAt: entry.Time, ExportedBy: p.user.Name, Role: string(p.user.Role),
		Reason: body.Reason, AuditEntry: ManifestAudit{Seq: entry.Seq, Hash: entry.Hash},
		Interaction: in, Contact: d.Contact, Unavailable: d.Unavailable, Recordings: []ManifestRecording{},
		Verify: "sha256sum -c SHA256SUMS  (or: shasum -a 256 -c SHA256SUMS)"}

	name := "callrec-" + safeName(id) + "-" + entry.Time.Format("20060102T150405Z") + ".zip"
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	zw := zip.NewWriter(w)
	var sums strings.Builder
	// Past this point the status is sent: a failure can only cut the zip
	// short (its central directory is then missing, so no tool accepts it).
	for _, rec := range d.Recordings {
		mr, err := s.exportAudio(r, zw, rec)
		if err != nil {
			s.log.Error("export aborted", "id", id, callrec.LogKeyINUM, rec.INUM, callrec.LogKeyErr, err)
			return
		}
		m.Recordings = append(m.Recordings, mr)
		fmt.Fprintf(&sums, "%s  %s\n", mr.SHA256, mr.File)
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		s.log.Error("export manifest", callrec.LogKeyErr, err)
		return
	}
	mb = append(mb, '\n')
	msum := sha256.Sum256(mb)
	fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(msum[:]), "manifest.json")
	for _, f := range []struct {
		name string
		b    []byte
	}{{"manifest.json", mb}, {"SHA256SUMS", []byte(sums.String())}} {
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: entry.Time})
		if err == nil {
			_, err = fw.Write(f.b)
		}
		if err != nil {
			s.log.Error("export aborted", "id", id, callrec.LogKeyErr, err)
			return
		}
	}
	if err := zw.Close(); err != nil {
		s.log.Error("export aborted", "id", id, callrec.LogKeyErr, err)
	}
}

// exportAudio copies one recording into the zip (stored, not compressed:
// μ-law barely compresses) and returns its manifest entry.
func (s *Server) exportAudio(r *http.Request, zw *zip.Writer, rec *callrec.Recording) (ManifestRecording, error) {
	a, err := s.cfg.Recordings.OpenAudio(r.Context(), rec.INUM)
	if err != nil {
		return ManifestRecording{}, err
	}
	defer a.Close()
	file := string(rec.INUM) + ".wav"
	fw, err := zw.CreateHeader(&zip.FileHeader{Name: file, Method: zip.Store, Modified: rec.StartedAt})
	if err != nil {
		return ManifestRecording{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(fw, h), io.LimitReader(a, a.Size))
	if err != nil {
		return ManifestRecording{}, err
	}
	if n != a.Size {
		return ManifestRecording{}, fmt.Errorf("audio of %s: %d of %d bytes", rec.INUM, n, a.Size)
	}
	mr := ManifestRecording{File: file, Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil)),
		RecordedSHA256: a.Recording.Audio.SHA256, Recording: a.Recording}
	if mr.RecordedSHA256 != "" && mr.RecordedSHA256 != mr.SHA256 {
		// The file on disk no longer matches what was recorded: never
		// hand it out as if it did.
		return mr, fmt.Errorf("audio of %s: digest %s, recorded %s: the file was altered", rec.INUM, mr.SHA256, mr.RecordedSHA256)
	}
	return mr, nil
}

// verifyAudio checks a finished recording's file against its recorded
// digest (ECONFLICT if it differs).
func (s *Server) verifyAudio(r *http.Request, n callrec.INUM) error {
	a, err := s.cfg.Recordings.OpenAudio(r.Context(), n)
	if err != nil {
		return err
	}
	defer a.Close()
	want := a.Recording.Audio.SHA256
	if want == "" {
		return nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(a, a.Size)); err != nil {
		return fmt.Errorf("verify audio of %s: %w", n, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		s.log.Error("recorded audio does not match its digest", callrec.LogKeyINUM, n, "sha256", got, "recorded_sha256", want)
		return callrec.Errorf(callrec.ECONFLICT, "the audio of %s does not match the digest recorded when it finished (%s): it was altered or damaged; not exported", n, want)
	}
	return nil
}

// safeName keeps letters, digits, '-' and '_' of an id for a file name.
func safeName(id string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, id)
}
