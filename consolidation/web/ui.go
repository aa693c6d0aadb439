package web

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

// uiFiles is the browser UI: plain HTML, CSS and JavaScript modules, no
// build step, nothing loaded from elsewhere.
//
//go:embed ui
var uiFiles embed.FS

// contentSecurityPolicy allows only this origin's scripts and styles (no
// inline code), audio from this origin, and no framing.
const contentSecurityPolicy = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; " +
	"script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

func (s *Server) routeUI(mux *http.ServeMux) {
	page := func(file string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, err := fs.ReadFile(uiFiles, "ui/"+file)
			if err != nil {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write(b)
		})
	}
	mux.Handle("GET /{$}", page("search.html"))
	mux.Handle("GET /login", page("login.html"))
	mux.Handle("GET /calls/{id}", page("call.html"))
	mux.Handle("GET /audit", page("audit.html"))
	mux.HandleFunc("GET /ui/{file}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		b, err := fs.ReadFile(uiFiles, "ui/"+name)
		if err != nil || strings.HasSuffix(name, ".html") {
			http.NotFound(w, r)
			return
		}
		if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
		_, _ = w.Write(b)
	})
}
