package users

import (
	"slices"
	"time"
)

// Role is what a user is allowed to do.
type Role string

// The roles.
const (
	Admin      Role = "admin"      // everything: all calls, the audit trail, user management
	Compliance Role = "compliance" // all calls
	Supervisor Role = "supervisor" // the calls of their own teams only
	Auditor    Role = "auditor"    // the audit trail only, no calls
)

// Roles lists every role.
var Roles = []Role{Admin, Compliance, Supervisor, Auditor}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// User is a person (or, for API tokens, a machine) who uses callrec.
type User struct {
	Name     string
	Role     Role
	Teams    []string // supervisors see these teams only
	Disabled bool
	Created  time.Time
}

// CanSee reports whether u may see (search, view, play, export) a call
// handled by team: admin and compliance see every call, a supervisor only
// the calls of one of their Teams, an auditor none. A disabled user sees
// nothing.
func (u User) CanSee(team string) bool {
	if u.Disabled {
		return false
	}
	switch u.Role {
	case Admin, Compliance:
		return true
	case Supervisor:
		return team != "" && slices.Contains(u.Teams, team)
	default:
		return false
	}
}

// CanSearch reports whether u may search recordings at all (supervisors'
// results must still be narrowed to their teams with CanSee).
func (u User) CanSearch() bool {
	if u.Disabled {
		return false
	}
	switch u.Role {
	case Admin, Compliance, Supervisor:
		return true
	default:
		return false
	}
}

// CanAudit reports whether u may read the audit trail: admin and auditor.
func (u User) CanAudit() bool {
	return !u.Disabled && (u.Role == Admin || u.Role == Auditor)
}
