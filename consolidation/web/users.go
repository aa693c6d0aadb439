package web

import (
	"maps"
	"net/http"
	"strconv"
	"strings"

	"callrec"
	"callrec/consolidation/audit"
	"callrec/consolidation/users"
	"callrec/internal/httpio"
)

func (s *Server) handleUsers(w http.ResponseWriter, r *http.Request, p *principal) {
	list, err := s.cfg.Users.List(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]userBody, 0, len(list))
	for _, u := range list {
		out = append(out, userOf(u))
	}
	httpio.JSON(w, http.StatusOK, map[string]any{"items": out})
}

// Admin changes are audited before they are made (fail closed: if the
// trail cannot be written, nothing changes). A change that then fails gets a
// second entry of the same type whose reason starts "failed:", so the trail
// shows every attempt and its outcome.

// failed audits that an audited change did not happen, and answers err.
func (s *Server) failed(w http.ResponseWriter, r *http.Request, p *principal, typ audit.EventType, target string, details map[string]string, err error) {
	if _, aerr := s.audit(r, p, typ, target, "failed: "+callrec.ErrorMessage(err), details); aerr != nil {
		s.log.Error("audit of a failed change", callrec.LogKeyErr, aerr)
	}
	s.fail(w, r, err)
}

func (s *Server) handleAddUser(w http.ResponseWriter, r *http.Request, p *principal) {
	var body struct {
		Name     string     `json:"name"`
		Role     users.Role `json:"role"`
		Teams    []string   `json:"teams"`
		Password string     `json:"password"`
	}
	if err := decodeJSON(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	u := users.User{Name: body.Name, Role: body.Role, Teams: body.Teams, Created: s.now().UTC()}
	details := map[string]string{"role": string(u.Role), "teams": strings.Join(u.Teams, ",")}
	if _, err := s.audit(r, p, audit.UserAdded, u.Name, "", details); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.cfg.Users.Add(r.Context(), u, body.Password); err != nil {
		s.failed(w, r, p, audit.UserAdded, u.Name, details, err)
		return
	}
	httpio.JSON(w, http.StatusCreated, userOf(u))
}

// handleChangeUser applies the fields given: password, role (with teams),
// disabled, in that order.
func (s *Server) handleChangeUser(w http.ResponseWriter, r *http.Request, p *principal) {
	name := r.PathValue("name")
	var body struct {
		Role     *users.Role `json:"role"`
		Teams    []string    `json:"teams"`
		Disabled *bool       `json:"disabled"`
		Password *string     `json:"password"`
	}
	if err := decodeJSON(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	cur, err := s.cfg.Users.Get(ctx, name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	role, teams := cur.Role, cur.Teams
	if body.Role != nil {
		role = *body.Role
	}
	if body.Teams != nil {
		teams = body.Teams
	}
	details := map[string]string{}
	if body.Password != nil {
		details["password"] = "changed"
	}
	if body.Role != nil || body.Teams != nil {
		details["role"], details["teams"] = string(role), strings.Join(teams, ",")
	}
	if body.Disabled != nil {
		details["disabled"] = strconv.FormatBool(*body.Disabled)
	}
	if len(details) == 0 {
		s.fail(w, r, callrec.Errorf(callrec.EINVALID, "nothing to change: give role, teams, disabled or password"))
		return
	}
	if _, err := s.audit(r, p, audit.UserChanged, name, "", details); err != nil {
		s.fail(w, r, err)
		return
	}
	var applied []string
	apply := func() error {
		if body.Password != nil {
			if err := s.cfg.Users.SetPassword(ctx, name, *body.Password); err != nil {
				return err
			}
			applied = append(applied, "password")
		}
		if body.Role != nil || body.Teams != nil {
			if err := s.cfg.Users.SetRole(ctx, name, role, teams); err != nil {
				return err
			}
			applied = append(applied, "role")
		}
		if body.Disabled != nil {
			if err := s.cfg.Users.SetDisabled(ctx, name, *body.Disabled); err != nil {
				return err
			}
			applied = append(applied, "disabled")
		}
		return nil
	}
	err = apply()
	if body.Password != nil && len(applied) > 0 || body.Disabled != nil && *body.Disabled && err == nil {
		// Sessions opened with the old password, or of a disabled user,
		// end now (a role change applies to open sessions at once anyway).
		s.sessions.endUser(name)
	}
	if err != nil {
		d := maps.Clone(details)
		d["applied"] = strings.Join(applied, ",")
		s.failed(w, r, p, audit.UserChanged, name, d, err)
		return
	}
	u, err := s.cfg.Users.Get(ctx, name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpio.JSON(w, http.StatusOK, userOf(u))
}

func (s *Server) handleTokens(w http.ResponseWriter, r *http.Request, p *principal) {
	list, err := s.cfg.Users.ListTokens(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]userBody, 0, len(list))
	for _, u := range list {
		out = append(out, userOf(u))
	}
	httpio.JSON(w, http.StatusOK, map[string]any{"items": out})
}

func (s *Server) handleAddToken(w http.ResponseWriter, r *http.Request, p *principal) {
	var body struct {
		Name  string     `json:"name"`
		Role  users.Role `json:"role"`
		Teams []string   `json:"teams"`
	}
	if err := decodeJSON(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	details := map[string]string{"kind": "api_token", "role": string(body.Role), "teams": strings.Join(body.Teams, ",")}
	if _, err := s.audit(r, p, audit.UserAdded, body.Name, "", details); err != nil {
		s.fail(w, r, err)
		return
	}
	tok, err := s.cfg.Users.CreateToken(r.Context(), body.Name, body.Role, body.Teams)
	if err != nil {
		s.failed(w, r, p, audit.UserAdded, body.Name, details, err)
		return
	}
	teams := body.Teams
	if teams == nil {
		teams = []string{}
	}
	httpio.JSON(w, http.StatusCreated, map[string]any{"name": body.Name, "role": body.Role, "teams": teams, "token": tok})
}

func (s *Server) handleRevokeToken(w http.ResponseWriter, r *http.Request, p *principal) {
	name := r.PathValue("name")
	details := map[string]string{"kind": "api_token", "revoked": "true"}
	if _, err := s.audit(r, p, audit.UserChanged, name, "", details); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.cfg.Users.RevokeToken(r.Context(), name); err != nil {
		s.failed(w, r, p, audit.UserChanged, name, details, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
