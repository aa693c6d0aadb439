package tracker

import (
	"fmt"
	"strings"

	"callrec"
)

// Rules are the recording rules: which agents' calls are recorded
// ("monitored agents").
//
// Precedence for one agent, first match wins:
//
//  1. Exclude: an agent named in Exclude is never monitored, whatever else
//     says so.
//  2. MonitorAll: every agent not excluded is monitored.
//  3. Agents: an agent named in Agents is monitored.
//  4. Attribute and Values: an agent whose worker attribute Attribute holds
//     one of Values is monitored. A string attribute must equal a value; a
//     list attribute (such as "roles") must contain one. Attribute may be a
//     dotted path into nested objects ("routing.skills").
//  5. Otherwise the agent is not monitored.
//
// An agent is named (in Agents and Exclude) by its agent extension (the Flex
// identity, usually an email), its email attribute, or its worker SID (WK…).
// Names and attribute values compare case-insensitively.
//
// MonitorAll defaults to true: Rules that select nobody by any means
// (MonitorAll false, no Agents, no Attribute) behave as if MonitorAll were
// set, so the zero Rules record every agent. A Rules with only Exclude set
// records everyone but the excluded.
type Rules struct {
	MonitorAll bool     `json:"monitor_all"`
	Agents     []string `json:"agents,omitempty"`    // agent extensions or worker SIDs
	Attribute  string   `json:"attribute,omitempty"` // worker attribute to match, e.g. "team" or "roles"
	Values     []string `json:"values,omitempty"`    // accepted values of Attribute
	Exclude    []string `json:"exclude,omitempty"`   // agent extensions or worker SIDs never monitored
}

// Monitored reports whether the rules say to record the agent of ev (the
// worker of a reservation event). An event without a worker is not
// monitored.
func (r Rules) Monitored(ev *callrec.CTIEvent) bool {
	if ev == nil {
		return false
	}
	names := []string{ev.AgentExtension(), ev.WorkerName, ev.Worker.Email, ev.WorkerSID}
	if !anyNonEmpty(names) {
		return false
	}
	if matchAny(r.Exclude, names) {
		return false
	}
	if r.selectsAll() || matchAny(r.Agents, names) {
		return true
	}
	if r.Attribute == "" {
		return false
	}
	for _, v := range attributeValues(&ev.Worker, r.Attribute) {
		if contains(r.Values, v) {
			return true
		}
	}
	return false
}

// monitoredIdentity is Monitored for an agent known only by identity (the
// far end of an internal call, named in the task attributes): attribute
// rules cannot be evaluated, so such an agent is monitored only through
// MonitorAll or Agents.
func (r Rules) monitoredIdentity(id string) bool {
	if id == "" {
		return false
	}
	names := []string{id}
	if matchAny(r.Exclude, names) {
		return false
	}
	return r.selectsAll() || matchAny(r.Agents, names)
}

// selectsAll reports whether every agent not excluded is monitored.
func (r Rules) selectsAll() bool {
	return r.MonitorAll || (len(r.Agents) == 0 && r.Attribute == "")
}

func anyNonEmpty(ss []string) bool {
	for _, s := range ss {
		if s != "" {
			return true
		}
	}
	return false
}

// matchAny reports whether one of names (ignoring empty ones) is in list.
func matchAny(list, names []string) bool {
	for _, n := range names {
		if n != "" && contains(list, n) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(strings.TrimSpace(v), s) {
			return true
		}
	}
	return false
}

// attributeValues returns the string values of a worker attribute: the raw
// attributes first (dotted paths walk nested objects), then the decoded
// fields for the mandatory Flex attributes.
func attributeValues(w *callrec.WorkerAttributes, name string) []string {
	if w.Raw != nil {
		if v, ok := w.Raw[name]; ok {
			return stringsOf(v)
		}
		if v, ok := lookupPath(w.Raw, name); ok {
			return stringsOf(v)
		}
	}
	switch name {
	case "roles":
		return w.Roles
	case "email":
		return []string{w.Email}
	case "full_name":
		return []string{w.FullName}
	case "contact_uri":
		return []string{w.ContactURI}
	}
	return nil
}

func lookupPath(m map[string]any, path string) (any, bool) {
	parts := strings.Split(path, ".")
	var cur any = m
	for _, p := range parts {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// stringsOf turns a decoded JSON value into strings: a string, a list of
// scalars, or a scalar (numbers and booleans in their JSON spelling).
func stringsOf(v any) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return []string{x}
	case []string:
		return x
	case []any:
		var out []string
		for _, e := range x {
			switch e.(type) {
			case []any, map[string]any, nil:
				continue
			}
			out = append(out, stringsOf(e)...)
		}
		return out
	case map[string]any:
		return nil
	default:
		return []string{fmt.Sprint(x)}
	}
}
