package web

// Tests that docs/api/openapi.yaml, the contract integrators build against,
// cannot drift from the server: every route is documented (and nothing
// else), with its access level and security; every $ref resolves; and the
// schemas of the types the API returns have exactly the Go types' JSON
// fields, required exactly when always present, with matching types.

import (
	"fmt"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"callrec"
	"callrec/consolidation/audit"
	"callrec/consolidation/ingest"
	"callrec/consolidation/store"
	"callrec/consolidation/users"
	"callrec/internal/httpio"
	"callrec/recorder"
)

const openAPIFile = "../../docs/api/openapi.yaml"

// openAPIMethods are the operation keys of an OpenAPI path item.
var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// openAPIDoc is the parsed document with helpers.
type openAPIDoc struct {
	root map[string]any
}

func loadOpenAPI(t *testing.T) *openAPIDoc {
	t.Helper()
	b, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatalf("read the OpenAPI description: %v", err)
	}
	var v any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatalf("parse %s: %v", openAPIFile, err)
	}
	root, ok := openAPINormalize(v).(map[string]any)
	if !ok {
		t.Fatalf("%s: the document is not a mapping", openAPIFile)
	}
	if ver, _ := root["openapi"].(string); !strings.HasPrefix(ver, "3.1.") {
		t.Errorf("openapi: %q, want 3.1.x", ver)
	}
	return &openAPIDoc{root: root}
}

// openAPINormalize turns every mapping into map[string]any (YAML allows
// non-string keys, such as an unquoted 200).
func openAPINormalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = openAPINormalize(e)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = openAPINormalize(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = openAPINormalize(e)
		}
		return x
	}
	return v
}

func openAPIMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func openAPIList(v any) []any {
	l, _ := v.([]any)
	return l
}

// get follows a path of keys from the root.
func (d *openAPIDoc) get(keys ...string) any {
	var v any = d.root
	for _, k := range keys {
		v = openAPIMap(v)[k]
	}
	return v
}

// pointer resolves a local JSON pointer ("#/components/schemas/X").
func (d *openAPIDoc) pointer(ref string) (any, error) {
	p, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, fmt.Errorf("$ref %q: only references within the document are allowed", ref)
	}
	var v any = d.root
	if p == "" {
		return v, nil
	}
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("$ref %q: not a JSON pointer", ref)
	}
	for _, tok := range strings.Split(p[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch x := v.(type) {
		case map[string]any:
			e, ok := x[tok]
			if !ok {
				return nil, fmt.Errorf("$ref %q: no %q", ref, tok)
			}
			v = e
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				return nil, fmt.Errorf("$ref %q: no index %q", ref, tok)
			}
			v = x[i]
		default:
			return nil, fmt.Errorf("$ref %q: %q is inside a scalar", ref, tok)
		}
	}
	return v, nil
}

// deref follows $ref chains of a mapping (to a depth of 10).
func (d *openAPIDoc) deref(v any) (map[string]any, error) {
	m := openAPIMap(v)
	for range 10 {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, nil
		}
		t, err := d.pointer(ref)
		if err != nil {
			return nil, err
		}
		m = openAPIMap(t)
		if m == nil {
			return nil, fmt.Errorf("$ref %q: not a mapping", ref)
		}
	}
	return nil, fmt.Errorf("$ref chain too long")
}

// openAPIOp is one operation of the document.
type openAPIOp struct {
	method, path string // "GET", "/api/x/{id}"
	op           map[string]any
	pathItem     map[string]any
}

func (o openAPIOp) key() string { return o.method + " " + o.path }

func (o openAPIOp) ingest() bool {
	return slices.Contains(openAPIList(o.op["tags"]), any("ingest"))
}

func (d *openAPIDoc) operations(t *testing.T) []openAPIOp {
	t.Helper()
	paths := openAPIMap(d.root["paths"])
	if len(paths) == 0 {
		t.Fatal("the document has no paths")
	}
	var out []openAPIOp
	for p, item := range paths {
		pi := openAPIMap(item)
		for _, m := range openAPIMethods {
			if op, ok := pi[m]; ok {
				out = append(out, openAPIOp{method: strings.ToUpper(m), path: p, op: openAPIMap(op), pathItem: pi})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

// openAPIRoutePath converts a ServeMux pattern to "METHOD /openapi/{path}".
func openAPIRoutePath(t *testing.T, pattern string) string {
	t.Helper()
	method, path, ok := strings.Cut(pattern, " ")
	if !ok || method == "" || !strings.HasPrefix(path, "/") {
		t.Fatalf("route %q: want METHOD /path", pattern)
	}
	path = strings.TrimSuffix(path, "{$}")
	path = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)\.\.\.\}`).ReplaceAllString(path, "{$1}")
	return method + " " + path
}

func openAPIServer() *Server {
	return New(Config{RecorderAPI: http.NotFoundHandler()})
}

// TestOpenAPIRoutesDocumented checks that the spec documents exactly the
// routes of Routes() (with the recorder API, so GET /api/recordings is
// included) plus the ingest API, each with its access level.
func TestOpenAPIRoutesDocumented(t *testing.T) {
	d := loadOpenAPI(t)
	routes := openAPIServer().Routes()
	access := map[string]string{}
	for _, r := range routes {
		k := openAPIRoutePath(t, r.Pattern)
		if _, dup := access[k]; dup {
			t.Errorf("route %s listed twice by Routes()", k)
		}
		access[k] = r.Access
	}
	if _, ok := access["GET /api/recordings"]; !ok {
		t.Errorf("Routes() with a RecorderAPI has no GET /api/recordings")
	}
	ops := map[string]openAPIOp{}
	for _, o := range d.operations(t) {
		ops[o.key()] = o
	}
	for k, acc := range access {
		o, ok := ops[k]
		if !ok {
			t.Errorf("route %s (access %s) is not documented in %s", k, acc, openAPIFile)
			continue
		}
		if o.ingest() {
			t.Errorf("%s: a server route is tagged ingest", k)
		}
		if got, _ := o.op["x-callrec-access"].(string); got != acc {
			t.Errorf("%s: x-callrec-access %q, the route's access is %q", k, got, acc)
		}
	}
	wantIngest := map[string]bool{"POST " + ingest.PathRecordingEvents: true, "POST " + ingest.PathContacts: true}
	for k, o := range ops {
		if o.ingest() {
			if !wantIngest[k] {
				t.Errorf("%s is tagged ingest but the ingest API has no such endpoint", k)
			}
			if got, _ := o.op["x-callrec-access"].(string); got != "ingest" {
				t.Errorf("%s: x-callrec-access %q, want ingest", k, got)
			}
			delete(wantIngest, k)
			continue
		}
		if _, ok := access[k]; !ok {
			t.Errorf("%s is documented but is not a route of the server", k)
		}
	}
	for k := range wantIngest {
		t.Errorf("ingest endpoint %s is not documented (tagged ingest)", k)
	}
}

// TestOpenAPIRefsResolve checks every $ref of the document, and that every
// component is used.
func TestOpenAPIRefsResolve(t *testing.T) {
	d := loadOpenAPI(t)
	used := map[string]bool{}
	n := 0
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if r, ok := x["$ref"]; ok {
				n++
				ref, ok := r.(string)
				if !ok {
					t.Errorf("%s: $ref is not a string", path)
				} else if _, err := d.pointer(ref); err != nil {
					t.Errorf("%s: %v", path, err)
				} else {
					used[ref] = true
				}
			}
			for k, e := range x {
				walk(path+"/"+k, e)
			}
		case []any:
			for i, e := range x {
				walk(path+"/"+strconv.Itoa(i), e)
			}
		}
	}
	walk("#", d.root)
	if n == 0 {
		t.Fatal("no $ref at all: the walk is broken")
	}
	for _, kind := range []string{"schemas", "responses", "parameters", "headers"} {
		for name := range openAPIMap(d.get("components", kind)) {
			if ref := "#/components/" + kind + "/" + name; !used[ref] {
				t.Errorf("%s is never used", ref)
			}
		}
	}
}

// TestOpenAPIOperations checks each operation: an operationId (unique), a
// 2xx response, a description on every response, declared path
// parameters, and security matching the route's access.
func TestOpenAPIOperations(t *testing.T) {
	d := loadOpenAPI(t)
	schemes := openAPIMap(d.get("components", "securitySchemes"))
	if c := openAPIMap(schemes["cookieAuth"]); c["type"] != "apiKey" || c["in"] != "cookie" || c["name"] != CookieName {
		t.Errorf("securitySchemes.cookieAuth = %v, want apiKey in cookie %s", c, CookieName)
	}
	for _, name := range []string{"bearerAuth", "ingestToken"} {
		if c := openAPIMap(schemes[name]); c["type"] != "http" || c["scheme"] != "bearer" {
			t.Errorf("securitySchemes.%s = %v, want http bearer", name, c)
		}
	}
	if p := openAPIMap(d.get("components", "parameters", "CSRFToken")); p["name"] != CSRFHeader || p["in"] != "header" {
		t.Errorf("parameters.CSRFToken = %v, want header %s", p, CSRFHeader)
	}
	ids := map[string]string{}
	pathParam := regexp.MustCompile(`\{([^}]+)\}`)
	for _, o := range d.operations(t) {
		k := o.key()
		id, _ := o.op["operationId"].(string)
		if id == "" {
			t.Errorf("%s: no operationId", k)
		} else if prev, dup := ids[id]; dup {
			t.Errorf("%s: operationId %q also used by %s", k, id, prev)
		}
		ids[id] = k

		// Responses.
		resps := openAPIMap(o.op["responses"])
		ok2xx := false
		for code, r := range resps {
			if len(code) == 3 && code[0] == '2' {
				ok2xx = true
			}
			if _, err := strconv.Atoi(code); err != nil && code != "default" {
				t.Errorf("%s: response code %q", k, code)
			}
			rr, err := d.deref(r)
			if err != nil {
				t.Errorf("%s %s: %v", k, code, err)
				continue
			}
			if s, _ := rr["description"].(string); s == "" {
				t.Errorf("%s: response %s has no description", k, code)
			}
		}
		if !ok2xx {
			t.Errorf("%s: no 2xx response", k)
		}

		// Parameters: every {name} of the path is a required path parameter
		// and no path parameter is missing from the path.
		params := map[string]map[string]any{}
		for _, p := range append(openAPIList(o.pathItem["parameters"]), openAPIList(o.op["parameters"])...) {
			pm, err := d.deref(p)
			if err != nil {
				t.Errorf("%s: %v", k, err)
				continue
			}
			name, _ := pm["name"].(string)
			in, _ := pm["in"].(string)
			if name == "" || in == "" {
				t.Errorf("%s: parameter without name or in: %v", k, pm)
			}
			if pm["schema"] == nil && pm["content"] == nil {
				t.Errorf("%s: parameter %s has no schema", k, name)
			}
			params[in+":"+name] = pm
		}
		inPath := map[string]bool{}
		for _, m := range pathParam.FindAllStringSubmatch(o.path, -1) {
			inPath[m[1]] = true
			p := params["path:"+m[1]]
			if p == nil {
				t.Errorf("%s: path parameter {%s} is not declared", k, m[1])
			} else if p["required"] != true {
				t.Errorf("%s: path parameter {%s} is not required: true", k, m[1])
			}
		}
		for key := range params {
			if name, ok := strings.CutPrefix(key, "path:"); ok && !inPath[name] {
				t.Errorf("%s: path parameter %s is not in the path", k, name)
			}
		}

		// Security.
		acc, _ := o.op["x-callrec-access"].(string)
		secv, ok := o.op["security"]
		if !ok {
			t.Errorf("%s: no security on the operation", k)
			continue
		}
		var sec []string // one scheme per requirement, sorted
		for _, req := range openAPIList(secv) {
			rm := openAPIMap(req)
			if len(rm) != 1 {
				t.Errorf("%s: security requirement %v: want one scheme per requirement (alternatives)", k, req)
			}
			for name := range rm {
				if schemes[name] == nil {
					t.Errorf("%s: security scheme %q is not declared", k, name)
				}
				sec = append(sec, name)
			}
		}
		sort.Strings(sec)
		var want []string
		switch acc {
		case "anyone":
			want = nil
		case "ingest":
			want = []string{"ingestToken"}
		case "signed-in", "search", "audit", "admin", "all-calls":
			want = []string{"bearerAuth", "cookieAuth"}
		default:
			t.Errorf("%s: unknown x-callrec-access %q", k, acc)
			continue
		}
		if !slices.Equal(sec, want) {
			t.Errorf("%s (access %s): security %v, want %v", k, acc, sec, want)
		}
		if acc == "anyone" {
			if l, isList := secv.([]any); !isList || len(l) != 0 {
				t.Errorf("%s: access anyone needs security: [], got %v", k, secv)
			}
		}

		// Authenticated routes answer 401; routes that check a role can
		// refuse with 403; a session cookie needs the CSRF header on unsafe
		// methods.
		if want != nil && resps["401"] == nil {
			t.Errorf("%s: authenticated but no 401 response", k)
		}
		if acc != "anyone" && acc != "signed-in" && acc != "ingest" && resps["403"] == nil {
			t.Errorf("%s: access %s can be refused but there is no 403 response", k, acc)
		}
		unsafe := o.method != "GET" && o.method != "HEAD" && o.method != "OPTIONS"
		if unsafe && slices.Contains(sec, "cookieAuth") && params["header:"+CSRFHeader] == nil {
			t.Errorf("%s: unsafe method with cookie authentication but no %s parameter", k, CSRFHeader)
		}
	}
}

// TestOpenAPIContract checks values the handlers use against the
// document: search parameters, sort orders, limits, enums.
func TestOpenAPIContract(t *testing.T) {
	d := loadOpenAPI(t)
	params := func(path, method string) map[string]map[string]any {
		out := map[string]map[string]any{}
		for _, p := range openAPIList(d.get("paths", path, method, "parameters")) {
			pm, err := d.deref(p)
			if err != nil {
				t.Fatal(err)
			}
			if pm["in"] == "query" {
				out[pm["name"].(string)] = pm
			}
		}
		return out
	}
	schemaOf := func(p map[string]any) map[string]any {
		s, err := d.deref(p["schema"])
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	search := params("/api/interactions", "get")
	var names []string
	for n := range search {
		names = append(names, n)
	}
	if !openAPISameSet(names, searchParams) {
		t.Errorf("GET /api/interactions query parameters %v, the handler accepts %v", openAPISorted(names), openAPISorted(searchParams))
	}
	if s := schemaOf(search["sort"]); !openAPISameSet(openAPIStrings(s["enum"]),
		[]string{store.SortStart, store.SortStartAsc, store.SortDuration, store.SortDurationAsc}) {
		t.Errorf("sort enum %v", s["enum"])
	}
	openAPIWantNumber(t, "search limit maximum", schemaOf(search["limit"])["maximum"], store.MaxLimit)
	openAPIWantNumber(t, "search limit default", schemaOf(search["limit"])["default"], store.DefaultLimit)
	if s := schemaOf(search["tag"]); s["type"] != "array" {
		t.Errorf("tag is repeatable: want an array schema, got %v", s)
	}
	for _, n := range []string{"from", "to"} {
		if s := schemaOf(search[n]); s["format"] != "date-time" {
			t.Errorf("search %s: format %v, want date-time", n, s["format"])
		}
	}
	if pat, _ := schemaOf(search["number"])["pattern"].(string); pat == "" {
		t.Errorf("number has no pattern")
	} else {
		re := regexp.MustCompile(pat)
		for s, want := range map[string]bool{"555": true, "+1 (415) 555": true, "55": false, "a5-5": false} {
			if re.MatchString(s) != want {
				t.Errorf("number pattern %q on %q: %v, want %v (at least %d digits)", pat, s, !want, want, store.MinNumberDigits)
			}
		}
	}
	auditParams := params("/api/audit", "get")
	openAPIWantNumber(t, "audit limit maximum", schemaOf(auditParams["limit"])["maximum"], audit.MaxLimit)
	openAPIWantNumber(t, "audit limit default", schemaOf(auditParams["limit"])["default"], audit.DefaultLimit)
	peaks := params("/api/recordings/{inum}/peaks", "get")
	openAPIWantNumber(t, "peaks points maximum", schemaOf(peaks["points"])["maximum"], MaxPeakPoints)

	schema := func(name string) map[string]any {
		return openAPIMap(d.get("components", "schemas", name))
	}
	prop := func(schemaName, p string) map[string]any {
		s, err := d.deref(d.get("components", "schemas", schemaName, "properties", p))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	openAPIWantNumber(t, "ExportRequest.reason maxLength", prop("ExportRequest", "reason")["maxLength"], MaxReason)
	if got := prop("Manifest", "format")["const"]; got != ExportFormat {
		t.Errorf("Manifest.format const %v, want %s", got, ExportFormat)
	}
	enums := map[string][]string{
		"Role":              openAPIStringsOf(users.Roles),
		"AuditEventType":    openAPIStringsOf(audit.EventTypes),
		"RecordingState":    openAPIStringsOf([]callrec.RecordingState{callrec.StateRecording, callrec.StateComplete, callrec.StateInterrupted}),
		"InteractionStatus": {store.StatusComplete, store.StatusPartial, store.StatusInterrupted, store.StatusRecording, store.StatusMissingAudio},
		"ErrorCode": {callrec.EINVALID, callrec.ENOTFOUND, callrec.ECONFLICT, callrec.EUNAVAILABLE, callrec.EINTERNAL,
			callrec.EFORBIDDEN, callrec.EUNAUTHENTICATED, callrec.ETOOMANY},
	}
	for name, want := range enums {
		if got := openAPIStrings(schema(name)["enum"]); !openAPISameSet(got, want) {
			t.Errorf("schema %s enum %v, want %v", name, got, want)
		}
	}
	// The status each error code is documented with.
	for _, code := range enums["ErrorCode"] {
		st := httpio.StatusOf(code)
		if !strings.Contains(d.get("info", "description").(string), fmt.Sprintf("| `%s` | %d |", code, st)) &&
			!strings.Contains(d.get("info", "description").(string), fmt.Sprintf("| `%s` (or any unclassified error) | %d", code, st)) {
			t.Errorf("info.description does not map error code %s to %d", code, st)
		}
	}
	// Login answers 429 with Retry-After; audio answers 206.
	if h := d.get("paths", "/api/login", "post", "responses", "429", "headers", "Retry-After"); h == nil {
		t.Errorf("POST /api/login: no 429 with Retry-After")
	}
	if d.get("paths", "/api/recordings/{inum}/audio", "get", "responses", "206") == nil {
		t.Errorf("GET /api/recordings/{inum}/audio: no 206 response")
	}
	if d.get("paths", "/api/interactions/{id}/export", "post", "responses", "200", "content", "application/zip") == nil {
		t.Errorf("POST /api/interactions/{id}/export: 200 is not application/zip")
	}
}

// openAPIGoSchemas maps component schemas to the Go types they describe.
var openAPIGoSchemas = map[string]reflect.Type{
	// Core types (the brief's minimum).
	"Interaction":     reflect.TypeFor[store.Interaction](),
	"Segment":         reflect.TypeFor[store.Segment](),
	"Recording":       reflect.TypeFor[callrec.Recording](),
	"TrackAccounting": reflect.TypeFor[callrec.TrackAccounting](),
	"Gap":             reflect.TypeFor[callrec.Gap](),
	"AuditEntry":      reflect.TypeFor[audit.Entry](),
	// Everything else with a Go type.
	"StreamInfo":           reflect.TypeFor[callrec.StreamInfo](),
	"AudioInfo":            reflect.TypeFor[callrec.AudioInfo](),
	"Accounting":           reflect.TypeFor[callrec.Accounting](),
	"MessageAccounting":    reflect.TypeFor[callrec.MessageAccounting](),
	"StreamError":          reflect.TypeFor[callrec.StreamError](),
	"Interruption":         reflect.TypeFor[callrec.Interruption](),
	"Contact":              reflect.TypeFor[callrec.Contact](),
	"Connection":           reflect.TypeFor[callrec.Connection](),
	"Transfer":             reflect.TypeFor[callrec.Transfer](),
	"StreamPair":           reflect.TypeFor[callrec.StreamPair](),
	"CopyAccounting":       reflect.TypeFor[callrec.CopyAccounting](),
	"SupplyRun":            reflect.TypeFor[callrec.SupplyRun](),
	"ReplicaSet":           reflect.TypeFor[store.ReplicaSet](),
	"Replica":              reflect.TypeFor[store.Replica](),
	"RestartGap":           reflect.TypeFor[store.RestartGap](),
	"RecordingEvent":       reflect.TypeFor[callrec.RecordingEvent](),
	"RecordingList":        reflect.TypeFor[recorder.ListResponse](),
	"Detail":               reflect.TypeFor[Detail](),
	"TimelineEntry":        reflect.TypeFor[TimelineEntry](),
	"UnavailableRecording": reflect.TypeFor[UnavailableRecording](),
	"Peaks":                reflect.TypeFor[Peaks](),
	"PeakChannel":          reflect.TypeFor[PeakChannel](),
	"Manifest":             reflect.TypeFor[Manifest](),
	"ManifestAudit":        reflect.TypeFor[ManifestAudit](),
	"ManifestRecording":    reflect.TypeFor[ManifestRecording](),
	"Error":                reflect.TypeFor[httpio.ErrorBody](),
	"SearchResult":         reflect.TypeFor[searchBody](),
	"Session":              reflect.TypeFor[sessionBody](),
	"User":                 reflect.TypeFor[userBody](),
}

// TestOpenAPISchemasMatchGoTypes checks each mapped schema against its Go
// type: the same property names as the JSON fields, required exactly for
// the fields always encoded, and compatible types (a struct field of a
// mapped type must refer to that type's schema).
func TestOpenAPISchemasMatchGoTypes(t *testing.T) {
	d := loadOpenAPI(t)
	for _, name := range []string{"Interaction", "Segment", "Recording", "TrackAccounting", "Gap", "AuditEntry"} {
		if openAPIGoSchemas[name] == nil {
			t.Fatalf("core schema %s is not mapped to a Go type", name)
		}
	}
	named := map[reflect.Type]string{}
	for name, typ := range openAPIGoSchemas {
		named[typ] = name
	}
	c := &openAPIChecker{t: t, d: d, named: named}
	for name, typ := range openAPIGoSchemas {
		s := openAPIMap(d.get("components", "schemas", name))
		if s == nil {
			t.Errorf("components.schemas.%s is missing (Go type %v)", name, typ)
			continue
		}
		c.checkStruct(name, typ, s)
	}
}

// openAPIField is one JSON field of a Go struct.
type openAPIField struct {
	name string
	omit bool // left out of the JSON when empty/zero
	typ  reflect.Type
}

// openAPIJSONFields lists the fields encoding/json writes for struct type t.
func openAPIJSONFields(t reflect.Type) []openAPIField {
	var out []openAPIField
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				out = append(out, openAPIJSONFields(ft)...)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		optl := strings.Split(opts, ",")
		omit := slices.Contains(optl, "omitzero")
		if slices.Contains(optl, "omitempty") {
			switch f.Type.Kind() {
			case reflect.Struct: // omitempty does not apply to structs
			default:
				omit = true
			}
		}
		out = append(out, openAPIField{name: name, omit: omit, typ: f.Type})
	}
	return out
}

type openAPIChecker struct {
	t     *testing.T
	d     *openAPIDoc
	named map[reflect.Type]string
}

func (c *openAPIChecker) errorf(format string, args ...any) {
	c.t.Helper()
	c.t.Errorf(format, args...)
}

// checkStruct compares schema s (already dereferenced) with struct type typ.
func (c *openAPIChecker) checkStruct(where string, typ reflect.Type, s map[string]any) {
	c.t.Helper()
	if s["type"] != "object" {
		c.errorf("%s: type %v, want object (Go %v)", where, s["type"], typ)
	}
	props := openAPIMap(s["properties"])
	fields := openAPIJSONFields(typ)
	var goNames, goRequired []string
	for _, f := range fields {
		goNames = append(goNames, f.name)
		if !f.omit {
			goRequired = append(goRequired, f.name)
		}
	}
	var specNames []string
	for n := range props {
		specNames = append(specNames, n)
	}
	if !openAPISameSet(specNames, goNames) {
		c.errorf("%s: properties %v, Go %v has JSON fields %v (missing %v, extra %v)", where,
			openAPISorted(specNames), typ, openAPISorted(goNames),
			openAPIMinus(goNames, specNames), openAPIMinus(specNames, goNames))
	}
	if req := openAPIStrings(s["required"]); !openAPISameSet(req, goRequired) {
		c.errorf("%s: required %v, but Go %v always encodes %v (omitempty/omitzero fields are optional)", where,
			openAPISorted(req), typ, openAPISorted(goRequired))
	}
	for _, f := range fields {
		if p, ok := props[f.name]; ok {
			c.checkType(where+"."+f.name, f.typ, p)
		}
	}
}

// alternatives resolves a property schema into its non-null branches
// (anyOf/oneOf) and reports whether null is allowed. Each branch is
// returned dereferenced, with the schema name when it was a $ref to a
// component schema.
type openAPIBranch struct {
	ref    string
	schema map[string]any
}

func (c *openAPIChecker) alternatives(where string, v any) ([]openAPIBranch, bool) {
	m := openAPIMap(v)
	if m == nil {
		c.errorf("%s: schema is not a mapping", where)
		return nil, false
	}
	var alts []any
	for _, k := range []string{"anyOf", "oneOf"} {
		alts = append(alts, openAPIList(m[k])...)
	}
	if len(alts) == 0 {
		alts = []any{m}
	}
	var out []openAPIBranch
	null := false
	for _, a := range alts {
		am := openAPIMap(a)
		ref, _ := am["$ref"].(string)
		s, err := c.d.deref(am)
		if err != nil {
			c.errorf("%s: %v", where, err)
			continue
		}
		types := openAPITypes(s["type"])
		if slices.Contains(types, "null") {
			null = true
			if len(types) == 1 {
				continue
			}
		}
		out = append(out, openAPIBranch{ref: strings.TrimPrefix(ref, "#/components/schemas/"), schema: s})
	}
	return out, null
}

var openAPITimeType = reflect.TypeFor[time.Time]()

// checkType checks property schema v against Go type typ.
func (c *openAPIChecker) checkType(where string, typ reflect.Type, v any) {
	c.t.Helper()
	branches, null := c.alternatives(where, v)
	nullable := false
	for typ.Kind() == reflect.Pointer {
		typ, nullable = typ.Elem(), true
	}
	switch typ.Kind() {
	case reflect.Slice, reflect.Map, reflect.Interface:
		nullable = true
	}
	if null && !nullable {
		c.errorf("%s: allows null, but Go %v is never null", where, typ)
	}
	if typ.Kind() == reflect.Interface {
		return
	}
	if len(branches) == 0 {
		c.errorf("%s: no schema besides null", where)
		return
	}
	for _, b := range branches {
		s := b.schema
		types := slices.DeleteFunc(openAPITypes(s["type"]), func(x string) bool { return x == "null" })
		want := ""
		switch {
		case typ == openAPITimeType:
			want = "string"
			if s["format"] != "date-time" {
				c.errorf("%s: format %v, want date-time for Go time.Time", where, s["format"])
			}
		case typ.Kind() == reflect.String:
			want = "string"
		case typ.Kind() == reflect.Bool:
			want = "boolean"
		case typ.Kind() >= reflect.Int && typ.Kind() <= reflect.Uint64:
			want = "integer"
		case typ.Kind() == reflect.Float32 || typ.Kind() == reflect.Float64:
			want = "number"
		case typ.Kind() == reflect.Slice || typ.Kind() == reflect.Array:
			want = "array"
		case typ.Kind() == reflect.Map || typ.Kind() == reflect.Struct:
			want = "object"
		default:
			c.errorf("%s: Go kind %v not handled by the test", where, typ.Kind())
			continue
		}
		if !slices.Equal(types, []string{want}) {
			c.errorf("%s: type %v, want %s for Go %v", where, s["type"], want, typ)
			continue
		}
		switch typ.Kind() {
		case reflect.Struct:
			if typ == openAPITimeType {
				break
			}
			if name, ok := c.named[typ]; ok {
				if b.ref != name {
					c.errorf("%s: want a $ref to #/components/schemas/%s for Go %v, got %q", where, name, typ, b.ref)
				}
				// The referenced schema is checked on its own.
				break
			}
			c.checkStruct(where, typ, s)
		case reflect.Slice, reflect.Array:
			if s["items"] == nil {
				c.errorf("%s: array without items", where)
				break
			}
			c.checkType(where+"[]", typ.Elem(), s["items"])
		case reflect.Map:
			if typ.Key().Kind() != reflect.String {
				c.errorf("%s: Go map key %v", where, typ.Key())
			}
			ap, ok := s["additionalProperties"]
			if !ok || ap == true {
				if typ.Elem().Kind() != reflect.Interface {
					c.errorf("%s: map of %v needs additionalProperties with a schema", where, typ.Elem())
				}
				break
			}
			c.checkType(where+"{}", typ.Elem(), ap)
		}
	}
}

func openAPITypes(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		return openAPIStrings(x)
	}
	return nil
}

func openAPIStrings(v any) []string {
	var out []string
	for _, e := range openAPIList(v) {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func openAPIStringsOf[S ~string](in []S) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = string(s)
	}
	return out
}

func openAPISorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

func openAPISameSet(a, b []string) bool {
	return slices.Equal(slices.Compact(openAPISorted(a)), slices.Compact(openAPISorted(b))) && len(a) == len(slices.Compact(openAPISorted(a)))
}

// openAPIMinus returns the elements of a not in b.
func openAPIMinus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	sort.Strings(out)
	return out
}

func openAPIWantNumber(t *testing.T, what string, got any, want int) {
	t.Helper()
	var n float64
	switch x := got.(type) {
	case int:
		n = float64(x)
	case int64:
		n = float64(x)
	case uint64:
		n = float64(x)
	case float64:
		n = x
	default:
		t.Errorf("%s: %v (%T), want %d", what, got, got, want)
		return
	}
	if n != float64(want) {
		t.Errorf("%s: %v, want %d", what, got, want)
	}
}
