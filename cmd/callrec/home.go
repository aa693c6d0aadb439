package main

import (
	"html/template"
	"net/http"

	"callrec"
	"callrec/recorder"
)

// homeTmpl is a plain page listing the latest recordings with a player each.
// The compliance UI (search, waveform, export, audit) replaces it.
var homeTmpl = template.Must(template.New("home").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>callrec</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse}
td,th{padding:.35rem .6rem;border-bottom:1px solid #ddd;text-align:left;font-size:.9rem}
.complete{color:#176317}.interrupted{color:#a33}.recording{color:#b60}code{font-size:.85rem}</style></head>
<body><h1>callrec</h1>
<p>{{.Total}} recordings on node {{.Node}}. JSON: <a href="/api/recordings">/api/recordings</a> · <a href="/metrics">metrics</a></p>
<table><thead><tr><th>INUM</th><th>started (UTC)</th><th>state</th><th>duration</th><th>frames in/out (missing)</th><th>call</th><th>audio</th></tr></thead><tbody>
{{range .Recordings}}<tr><td><a href="/api/recordings/{{.INUM}}"><code>{{.INUM}}</code></a></td>
<td>{{.StartedAt.Format "2006-01-02 15:04:05"}}</td><td class="{{.State}}">{{.State}}{{if .EndReason}} ({{.EndReason}}){{end}}</td>
<td>{{.Audio.DurationMS}} ms</td><td>{{range .Accounting.Tracks}}{{.Received}} ({{.Missing}}) {{end}}</td>
<td><code>{{.Stream.CallSID}}</code></td>
<td><audio controls preload="none" src="/api/recordings/{{.INUM}}/audio"></audio></td></tr>
{{else}}<tr><td colspan="7">No recordings yet. Place a call: <code>callrec simulate --url ws://…/media</code></td></tr>{{end}}
</tbody></table></body></html>`))

func homePage(node *recorder.Node) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs, total, err := node.FindRecordings(r.Context(), callrec.RecordingFilter{Limit: 50})
		if err != nil {
			http.Error(w, "cannot list recordings", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = homeTmpl.Execute(w, map[string]any{"Recordings": rs, "Total": total, "Node": node.NodeID()})
	})
}
