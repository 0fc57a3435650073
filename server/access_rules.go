package server

import (
	"net/http"
	"net/url"

	"github.com/gridmap/gridmap"
	"github.com/labstack/echo/v4"
)

// rule says who may call a route. Whether the caller may act on the
// particular grid or report is the handler's and the store's to check
// (the caller's scope travels in the request context).
type rule struct {
	// role is the weakest role that may call the route; "" opens it to
	// everyone (health checks, sign-in, the sign-in page's files).
	role string
	// public routes are opened to anonymous callers by Config.PublicRead.
	public bool
	// global routes change or read what belongs to no jurisdiction
	// (layer definitions, categories, accounts): scoped callers may not.
	global bool
	// page routes answer an anonymous browser with a redirect to /login.
	page bool
}

var (
	anyone        = rule{}
	viewers       = rule{role: gridmap.RoleViewer}
	publicViewers = rule{role: gridmap.RoleViewer, public: true}
	reporters     = rule{role: gridmap.RoleReporter}
	dispatchers   = rule{role: gridmap.RoleDispatcher}
	editors       = rule{role: gridmap.RoleEditor}
	layerEditors  = rule{role: gridmap.RoleEditor, global: true}
	admins        = rule{role: gridmap.RoleAdmin, global: true}
	pages         = rule{role: gridmap.RoleViewer, page: true}
	editorPages   = rule{role: gridmap.RoleEditor, page: true}
)

// rules maps every route ("METHOD path" as registered) to its rule. A route
// missing here answers 403 to everyone, and the route-walk test fails.
var rules = map[string]rule{
	"GET /healthz":      anyone,
	"GET /openapi.json": anyone,
	// OGC API - Features: the grids as GET /v1/layers/{layer}/grids; the
	// reports and drafts collections check their /v1 routes' rules too.
	"GET /ogc": publicViewers, "GET /ogc/conformance": publicViewers, "GET /ogc/api": publicViewers,
	"GET /ogc/collections": publicViewers, "GET /ogc/collections/:collectionId": publicViewers,
	"GET /ogc/collections/:collectionId/items": publicViewers, "GET /ogc/collections/:collectionId/items/:id": publicViewers,
	"GET /ogc/collections/:collectionId/queryables": publicViewers,
	"GET /readyz":         anyone,
	"GET /metrics":        viewers,
	"GET /signin/:secret": anyone,

	"POST /v1/session":   anyone,
	"GET /v1/session":    anyone,
	"DELETE /v1/session": anyone,
	"GET /v1/users":      admins, "POST /v1/users": admins,
	"GET /v1/users/:username": admins, "PATCH /v1/users/:username": admins,
	"GET /v1/tokens": admins, "POST /v1/tokens": admins, "DELETE /v1/tokens/:name": admins,
	"GET /v1/audit":  admins,
	"GET /v1/config": viewers,

	"GET /v1/layers":                            publicViewers,
	"GET /v1/layers/:layer":                     publicViewers,
	"PUT /v1/layers/:layer":                     admins,
	"GET /v1/layers/:layer/grids":               publicViewers,
	"GET /v1/layers/:layer/grids/:code":         publicViewers,
	"PUT /v1/layers/:layer/grids/:code":         editors,
	"DELETE /v1/layers/:layer/grids/:code":      editors,
	"GET /v1/layers/:layer/grids/:code/history": publicViewers,
	"POST /v1/layers/:layer/changesets":         editors,
	"GET /v1/layers/:layer/coverage":            viewers,
	"PUT /v1/layers/:layer/grids/:code/people":  editors,
	"POST " + importRoute:                       layerEditors,
	// A draft is a copy of the whole layer, started by an import: like
	// imports, drafts are for editors of the whole layer.
	"GET /v1/layers/:layer/draft":             layerEditors,
	"DELETE /v1/layers/:layer/draft":          layerEditors,
	"GET /v1/layers/:layer/draft/grids":       layerEditors,
	"POST /v1/layers/:layer/draft/changesets": layerEditors,
	"POST /v1/layers/:layer/draft/resolve":    layerEditors,
	"POST /v1/layers/:layer/publish":          layerEditors,
	"GET " + exportRoute:                      viewers, // scoped callers get their subtree
	"GET /v1/search":                          viewers,
	"GET /v1/lookup":                          publicViewers,
	"POST /v1/lookup":                         publicViewers,
	"POST /v1/reports":                        reporters,
	"GET /v1/reports":                         viewers,
	"GET /v1/recurring":                       viewers, // scoped callers get their subtree's reports
	"GET /v1/reports/counts":                  viewers,
	"GET /v1/reports/:id":                     viewers,
	"POST /v1/reports/:id/events":             dispatchers,
	"GET /v1/reports/:id/events":              viewers,
	// Patrols: a worker (a reporter account) sends its own track; where
	// workers are is for dispatchers and up, inside their scope (the
	// store checks both again); coverage figures are like the indicators.
	"POST /v1/tracks":                    reporters,
	"GET /v1/workers":                    dispatchers,
	"GET /v1/workers/:username/track":    dispatchers,
	"GET /v1/reports/:id/nearby-workers": dispatchers,
	"GET /v1/patrol/coverage":            viewers,
	"GET /v1/patrol/idle":                viewers,
	"GET /v1/patrol":                     viewers,
	// The assessment names each worker's patrols: for those who may see
	// workers (the store checks again).
	"GET /v1/assessment":        dispatchers,
	"GET /v1/stats":             viewers, // scoped callers get their subtree's figures
	"GET /v1/stats/flags":       viewers, // scoped callers get their subtree's grids
	"GET /v1/stats/workload":    viewers,
	"GET /v1/stats/trend":       viewers, // a grid outside a scoped caller's area is 404
	"GET /v1/stats/rules":       viewers,
	"PUT /v1/stats/rules":       admins,
	"GET " + eventsRoute:        viewers,
	"GET /v1/categories":        viewers,
	"GET /v1/categories/:code":  viewers,
	"PUT /v1/categories/:code":  admins,
	"GET /v1/calendar":          viewers,
	"PUT /v1/calendar/:date":    admins,
	"GET /v1/departments":       viewers,
	"GET /v1/departments/:code": viewers,
	"PUT /v1/departments/:code": admins,
	// Party organisations (党组织) and joint meetings: scoped callers
	// read and write their subtree's; a meeting is called by dispatchers
	// of the street or above.
	"GET /v1/layers/:layer/grids/:code/party":    viewers,
	"PUT /v1/layers/:layer/grids/:code/party":    editors,
	"DELETE /v1/layers/:layer/grids/:code/party": editors,
	"GET /v1/party":           viewers,
	"GET /v1/party/meetings":  viewers,
	"POST /v1/party/meetings": dispatchers,
	// Leaders (包联): admins give grids, viewers read them (as GET
	// /v1/leaders shows them; scoped callers those of their area); check-ins
	// are a signed-in leader's own, reporters and up (a leader files
	// reports on site too, which needs the reporter role).
	"GET /v1/leaders":                       viewers, // scoped callers see leaders with a grid in their area
	"GET /v1/leaders/:username/assignments": viewers, // admins, and the leader itself (the handler checks)
	"PUT /v1/leaders/:username/assignments": admins,
	"POST /v1/checkins":                     reporters,
	"GET /open311/v2/services.json":         viewers,
	"GET /open311/v2/services/:code":        viewers,
	"GET /open311/v2/requests.json":         viewers,
	"POST /open311/v2/requests.json":        reporters,
	"GET /open311/v2/requests/:id":          viewers,
	"GET /tiles/:tileset/:z/:x/:y":          publicViewers,
	"GET /tiles/:tilejson":                  publicViewers,
	"GET /":                                 pages,
	"GET /editor":                           editorPages,
	"GET /login":                            anyone,
}

// ruleOf is the rule of the route c matched; ok is false for a route
// without one.
func (s *Server) ruleOf(c echo.Context) (rule, bool) {
	r, ok := s.ruleFor(c.Request().Method, c.Path())
	if !ok && c.Request().Method == http.MethodHead {
		r, ok = s.ruleFor(http.MethodGet, c.Path())
	}
	return r, ok
}

// ruleFor is the rule of a route: from rules, or anyone's for the pages'
// own files (scripts, styles, dictionaries, vendored libraries).
func (s *Server) ruleFor(method, path string) (rule, bool) {
	if r, ok := rules[method+" "+path]; ok {
		return r, true
	}
	if method == http.MethodGet && s.assets[path] {
		return anyone, true
	}
	return rule{}, false
}

// authorize lets a request through when its caller may call the route:
// 401 for a caller who must sign in (a redirect to /login for a page),
// 403 for one whose role or scope does not allow it. Unmatched paths go
// on to the router's 404 or 405.
func (s *Server) authorize(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Path() == "" {
			return next(c)
		}
		r, ok := s.ruleOf(c)
		if !ok && !s.registered(c.Request().Method, c.Path()) {
			return next(c) // a method the path does not have: the router's 405
		}
		if !ok {
			return gridmap.Errorf(gridmap.EFORBIDDEN, "%s %s has no access rule; nobody may call it", c.Request().Method, c.Path())
		}
		if r.page && callerOf(c).Kind == gridmap.CallerAnonymous && !(r.public && s.cfg.PublicRead) && r.role != "" {
			return c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request().URL.RequestURI()))
		}
		if err := s.allows(c, r, c.Request().Method+" "+c.Path()); err != nil {
			return err
		}
		return next(c)
	}
}

// allows checks the caller against rule r of route (named in messages):
// EUNAUTHORIZED for an anonymous caller the rule does not admit (with the
// WWW-Authenticate challenge), EFORBIDDEN for a role or scope it does not
// allow.
func (s *Server) allows(c echo.Context, r rule, route string) error {
	caller := callerOf(c)
	switch {
	case r.role == "", caller.Kind == gridmap.CallerAnonymous && r.public && s.cfg.PublicRead:
		return nil
	case caller.Kind == gridmap.CallerAnonymous:
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="gridmap"`)
		return gridmap.Errorf(gridmap.EUNAUTHORIZED, "sign in, or send a token as Authorization: Bearer <token>")
	case !caller.Can(r.role):
		return gridmap.Errorf(gridmap.EFORBIDDEN, "%s needs the %s role; %s has %s", route, r.role, describe(caller), caller.Role)
	case r.global && caller.Scope != nil:
		return gridmap.Errorf(gridmap.EFORBIDDEN, "%s concerns the whole service; %s is limited to %s %s", route, describe(caller), caller.Scope.Layer, caller.Scope.Code)
	}
	return nil
}

// mayCallAs lets the caller through as the route (method, path) would,
// for a route that serves what another route guards (the reports as an
// OGC collection, as GET /v1/reports).
func (s *Server) mayCallAs(c echo.Context, method, path string) error {
	r, ok := s.ruleFor(method, path)
	if !ok {
		return gridmap.Errorf(gridmap.EFORBIDDEN, "%s %s has no access rule; nobody may call it", method, path)
	}
	return s.allows(c, r, c.Request().Method+" "+c.Request().URL.Path+" (as "+method+" "+path+")")
}

// describe names a caller in messages: "account alice", "token cad".
func describe(c *gridmap.Caller) string {
	return c.Kind + " " + c.Name
}

// registered reports whether method and path name a registered route (as
// opposed to a path matched with a method it does not have).
func (s *Server) registered(method, path string) bool {
	s.routeSet.Do(func() {
		s.routeKeys = map[string]bool{}
		for _, r := range s.echo.Routes() {
			s.routeKeys[r.Method+" "+r.Path] = true
		}
	})
	return s.routeKeys[method+" "+path] || method == http.MethodHead && s.routeKeys["GET "+path]
}
