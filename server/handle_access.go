package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/labstack/echo/v4"
)

// Accounts, tokens and the audit log, for admins.

// handleUsers lists accounts: GET /v1/users -> {"users": [...]}.
func (s *Server) handleUsers(c echo.Context) error {
	users, err := s.deps.Access.Accounts(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"users": users})
}

// handleUser reads one account: GET /v1/users/{username}.
func (s *Server) handleUser(c echo.Context) error {
	a, err := s.deps.Access.Account(c.Request().Context(), c.Param("username"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a)
}

// handleAddUser creates an account: POST /v1/users {"username",
// "display_name", "role", "scope": {"layer", "code"}, "person": {"layer",
// "grid", "name"}, "password"} -> 201 {"user", "password"}; without a
// password one is generated and answered once.
func (s *Server) handleAddUser(c echo.Context) error {
	var req struct {
		gridmap.Account
		Password string `json:"password"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	generated := req.Password == ""
	if generated {
		req.Password = gridmap.NewPassword()
	}
	a := req.Account
	if err := s.deps.Access.AddAccount(c.Request().Context(), &a, req.Password); err != nil {
		return err
	}
	out := map[string]any{"user": &a}
	if generated {
		out["password"] = req.Password
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, out)
}

// handleChangeUser changes an account: PATCH /v1/users/{username} with any
// of "display_name", "role", "scope", "person", "disabled", "password".
// Disabling an account or changing its role, scope or password ends its
// sessions at once.
func (s *Server) handleChangeUser(c echo.Context) error {
	var ch gridmap.AccountChange
	if err := decodeJSON(c, &ch); err != nil {
		return err
	}
	a, err := s.deps.Access.ChangeAccount(c.Request().Context(), c.Param("username"), ch)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a)
}

// handleTokens lists tokens (never their secrets): GET /v1/tokens.
func (s *Server) handleTokens(c echo.Context) error {
	tokens, err := s.deps.Access.Tokens(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"tokens": tokens})
}

// handleCreateToken creates a token: POST /v1/tokens {"name", "role",
// "scope", "expires_in": "720h" | "30d"} -> 201 {"token", "secret"}. The
// secret is answered this once and stored only as a hash.
func (s *Server) handleCreateToken(c echo.Context) error {
	var req struct {
		Name      string         `json:"name"`
		Role      string         `json:"role"`
		Scope     *gridmap.Scope `json:"scope"`
		ExpiresIn string         `json:"expires_in"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	t := &gridmap.Token{Name: req.Name, Role: req.Role, Scope: req.Scope, CreatedBy: callerOf(c).Actor()}
	if req.ExpiresIn != "" {
		d, err := gridmap.ParseLifetime(req.ExpiresIn)
		if err != nil {
			return err
		}
		at := time.Now().Add(d)
		t.ExpiresAt = &at
	}
	secret, err := s.deps.Access.CreateToken(c.Request().Context(), t)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, map[string]any{"token": t, "secret": secret})
}

// handleRevokeToken revokes a token: DELETE /v1/tokens/{name} -> 204; its
// next request gets 401.
func (s *Server) handleRevokeToken(c echo.Context) error {
	if err := s.deps.Access.RevokeToken(c.Request().Context(), c.Param("name")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// handleAudit reads the audit log, newest first:
// GET /v1/audit?actor=&target=&from=&to=&limit=&cursor= -> {"entries", "next"}.
func (s *Server) handleAudit(c echo.Context) error {
	f := gridmap.AuditFilter{Actor: c.QueryParam("actor"), Target: c.QueryParam("target")}
	for name, dst := range map[string]**time.Time{"from": &f.From, "to": &f.To} {
		if v := c.QueryParam(name); v != "" {
			t, err := parseTime(name, v)
			if err != nil {
				return err
			}
			*dst = &t
		}
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return gridmap.Errorf(gridmap.EINVALID, "limit %q must be a whole number from 1 to 1000", v)
		}
		f.Limit = n
	}
	if v := c.QueryParam("cursor"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return gridmap.Errorf(gridmap.EINVALID, "cursor %q is not one this service gave out; pass the \"next\" value of the previous page", v)
		}
		f.Cursor = n
	}
	entries, next, err := s.deps.Access.AuditLog(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := map[string]any{"entries": entries}
	if next != 0 {
		out["next"] = strconv.FormatInt(next, 10)
	}
	return c.JSON(http.StatusOK, out)
}
