package web

import (
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
	if err := s.cfg.Users.Add(r.Context(), u, body.Password); err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := s.audit(r, p, audit.UserAdded, u.Name, "", map[string]string{"role": string(u.Role), "teams": strings.Join(u.Teams, ",")}); err != nil {
		s.fail(w, r, err)
		return
	}
	httpio.JSON(w, http.StatusCreated, userOf(u))
}

// handleChangeUser applies the fields given: role (with teams), disabled,
// password. Each change is audited.
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
	// Each change is saved on its own: if a later one fails, the audit
	// entry still records those already made.
	changed := map[string]string{}
	apply := func() error {
		if body.Password != nil {
			if err := s.cfg.Users.SetPassword(ctx, name, *body.Password); err != nil {
				return err
			}
			changed["password"] = "changed"
		}
		if body.Role != nil || body.Teams != nil {
			role, teams := cur.Role, cur.Teams
			if body.Role != nil {
				role = *body.Role
			}
			if body.Teams != nil {
				teams = body.Teams
			}
			if err := s.cfg.Users.SetRole(ctx, name, role, teams); err != nil {
				return err
			}
			changed["role"], changed["teams"] = string(role), strings.Join(teams, ",")
		}
		if body.Disabled != nil {
			if err := s.cfg.Users.SetDisabled(ctx, name, *body.Disabled); err != nil {
				return err
			}
			changed["disabled"] = strconv.FormatBool(*body.Disabled)
		}
		if len(changed) == 0 {
			return callrec.Errorf(callrec.EINVALID, "nothing to change: give role, teams, disabled or password")
		}
		return nil
	}
	applyErr := apply()
	if changed["password"] != "" || changed["disabled"] == "true" {
		// Sessions opened with the old password, or of a disabled user,
		// end now (a role change applies to open sessions at once anyway).
		s.sessions.endUser(name)
	}
	if len(changed) > 0 {
		if _, err := s.audit(r, p, audit.UserChanged, name, "", changed); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if applyErr != nil {
		s.fail(w, r, applyErr)
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
	tok, err := s.cfg.Users.CreateToken(r.Context(), body.Name, body.Role, body.Teams)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := s.audit(r, p, audit.UserAdded, body.Name, "", map[string]string{"kind": "api_token", "role": string(body.Role), "teams": strings.Join(body.Teams, ",")}); err != nil {
		s.fail(w, r, err)
		return
	}
	httpio.JSON(w, http.StatusCreated, map[string]any{"name": body.Name, "role": body.Role, "teams": body.Teams, "token": tok})
}

func (s *Server) handleRevokeToken(w http.ResponseWriter, r *http.Request, p *principal) {
	name := r.PathValue("name")
	if err := s.cfg.Users.RevokeToken(r.Context(), name); err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := s.audit(r, p, audit.UserChanged, name, "", map[string]string{"kind": "api_token", "revoked": "true"}); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
