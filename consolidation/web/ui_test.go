package web_test

import (
	"mime"
	"net/http"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"
)

func TestUIPages(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	pages := map[string]string{
		"/":                      "Search calls",
		"/login":                 "Sign in",
		"/calls/WTeast1":         "Call",
		"/calls/x%20y":           "Call",
		"/audit":                 "Audit trail",
		"/login?next=%2Faudit":   "Sign in",
		"/calls/WTeast1?t=12.5s": "Call",
	}
	for p, title := range pages {
		r := e.anon().get(t, p) // pages are static: the data needs sign-in, not the page
		if r.Status != http.StatusOK {
			t.Errorf("GET %s = %d", p, r.Status)
			continue
		}
		if ct := r.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", p, ct)
		}
		csp := r.Header.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, d) {
				t.Errorf("GET %s: CSP %q lacks %q", p, csp, d)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("GET %s: CSP %q allows inline code", p, csp)
		}
		if r.Header.Get("X-Frame-Options") != "DENY" || r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: X-Frame-Options %q, X-Content-Type-Options %q", p, r.Header.Get("X-Frame-Options"), r.Header.Get("X-Content-Type-Options"))
		}
		body := string(r.Body)
		if !strings.HasPrefix(strings.ToLower(body), "<!doctype html>") || !strings.Contains(body, "<title>"+title) {
			t.Errorf("GET %s: not the %q page: %.80q", p, title, body)
		}
	}
	for _, p := range []string{"/nothing", "/calls/", "/calls/a/b", "/ui/", "/index.html"} {
		if r := e.anon().get(t, p); r.Status != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, r.Status)
		}
	}
}

// TestUIAssets serves every file of the UI folder but the pages, with the
// right type, and checks that what the pages load exists and that nothing
// relies on inline code the CSP would block.
func TestUIAssets(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	ents, err := os.ReadDir("ui")
	if err != nil {
		t.Fatal(err)
	}
	wantType := map[string]string{".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
	refs := regexp.MustCompile(`(?:src|href)="(/ui/[^"]+)"|from ['"]\./([^'"]+)['"]|import\(['"]\./([^'"]+)['"]\)`)
	inline := regexp.MustCompile(`(?i)<script(?:\s+type="module")?\s*>|\son[a-z]+="|\sstyle="|javascript:`)
	referenced := map[string]bool{}
	for _, ent := range ents {
		name := ent.Name()
		disk, err := os.ReadFile("ui/" + name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range refs.FindAllStringSubmatch(string(disk), -1) {
			for _, g := range m[1:] {
				if g != "" {
					referenced[path.Base(g)] = true
				}
			}
		}
		r := e.anon().get(t, "/ui/"+name)
		if strings.HasSuffix(name, ".html") {
			if r.Status != http.StatusNotFound {
				t.Errorf("GET /ui/%s = %d, want 404: pages are served only by their routes", name, r.Status)
			}
			if inline.Match(disk) {
				t.Errorf("%s has inline script, style or handler: the CSP blocks it (%q)", name, inline.Find(disk))
			}
			continue
		}
		if r.Status != http.StatusOK {
			t.Errorf("GET /ui/%s = %d", name, r.Status)
			continue
		}
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if want, ok := wantType[path.Ext(name)]; ok && mt != want {
			t.Errorf("GET /ui/%s: Content-Type %q, want %s", name, r.Header.Get("Content-Type"), want)
		}
		if r.Header.Get("X-Content-Type-Options") != "nosniff" || r.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET /ui/%s: security headers missing", name)
		}
		if len(r.Body) == 0 || len(r.Body) != len(disk) {
			t.Errorf("GET /ui/%s: %d bytes, the file has %d", name, len(r.Body), len(disk))
		}
	}
	for name := range referenced {
		if r := e.anon().get(t, "/ui/"+name); r.Status != http.StatusOK {
			t.Errorf("the UI loads /ui/%s, which answers %d", name, r.Status)
		}
	}
	for _, p := range []string{"/ui/nothing.js", "/ui/..%2fserver.go", "/ui/%2e%2e%2fui.go"} {
		if r := e.anon().get(t, p); r.Status != http.StatusNotFound && r.Status != http.StatusBadRequest {
			t.Errorf("GET %s = %d %.60q, want 404", p, r.Status, r.Body)
		}
	}
}
