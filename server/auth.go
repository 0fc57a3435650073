package server

import (
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/labstack/echo/v4"
)

// sessionCookie carries a signed-in person's session secret.
const sessionCookie = "gridmap_session"

// csrfHeader carries the session's CSRF token on writes a cookie
// authenticates.
const csrfHeader = "X-CSRF-Token"

// anonymous is the caller of a request without credentials.
var anonymous = &gridmap.Caller{Kind: gridmap.CallerAnonymous, Name: "anonymous"}

// callerOf is the request's caller, as authenticate put it in the
// request's context.
func callerOf(c echo.Context) *gridmap.Caller {
	if v := gridmap.CallerFrom(c.Request().Context()); v != nil {
		return v
	}
	return anonymous
}

// authenticate finds out who is calling: a token (Authorization: Bearer, or
// Open311's api_key), a session cookie, or nobody. The caller goes into the
// request's context, where stores find its scope. A token that is unknown,
// revoked or expired gets 401 at once; a session that ended leaves the
// caller anonymous (the sign-in page must still load). Writes a cookie
// authenticates need the session's CSRF token, and writes from another
// origin are refused whatever their credentials.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if c.Path() == "/healthz" || c.Path() == "/readyz" {
			// Load balancers' checks: answered whatever they send, without
			// a trip to the database for credentials.
			return next(c)
		}
		if unsafeMethod(req.Method) && !s.sameOrigin(req) {
			return gridmap.Errorf(gridmap.EFORBIDDEN, "a write from the origin %s is refused: pages of other sites may not act for you", req.Header.Get(echo.HeaderOrigin))
		}
		caller, csrf, err := s.identify(c)
		if gridmap.ErrorCode(err) == gridmap.EUNAUTHORIZED && s.cfg.AddressRateLimit > 0 {
			// Guessing tokens costs a database read each: the address pays
			// for it like any caller without credentials.
			if d := s.rates.wait("address:"+c.RealIP(), s.cfg.AddressRateLimit, time.Now()); d > 0 {
				return &gridmap.Error{Code: gridmap.ETOOMANY, RetryAfter: d, Message: "too many requests with unknown credentials from address " + c.RealIP() + "; slow down"}
			}
		}
		if err != nil {
			return err
		}
		c.SetRequest(req.WithContext(gridmap.NewContextWithCaller(req.Context(), caller)))
		if csrf != "" && unsafeMethod(req.Method) && !(req.Method == http.MethodPost && c.Path() == "/v1/session") {
			if subtle.ConstantTimeCompare([]byte(req.Header.Get(csrfHeader)), []byte(csrf)) != 1 {
				return gridmap.Errorf(gridmap.EFORBIDDEN, "a write signed in by cookie needs the %s header with the csrf_token of GET /v1/session", csrfHeader)
			}
		}
		return next(c)
	}
}

// identify reads the request's credentials. csrf is the session's CSRF
// token when a cookie authenticated the request.
func (s *Server) identify(c echo.Context) (caller *gridmap.Caller, csrf string, err error) {
	req := c.Request()
	if s.deps.Access == nil {
		return anonymous, "", nil
	}
	ctx := req.Context()
	// Other schemes (a proxy's Basic) are not ours: they sign nobody in.
	if scheme, secret, _ := strings.Cut(req.Header.Get(echo.HeaderAuthorization), " "); strings.EqualFold(scheme, "Bearer") {
		if secret = strings.TrimSpace(secret); secret == "" {
			return nil, "", gridmap.Errorf(gridmap.EUNAUTHORIZED, "the Authorization header must be \"Bearer <token>\"")
		}
		caller, err := s.deps.Access.TokenCaller(ctx, secret)
		return caller, "", err
	}
	if underOpen311(req.URL.Path) {
		key := c.QueryParam("api_key")
		if key == "" && req.Method == http.MethodPost && strings.HasPrefix(req.Header.Get(echo.HeaderContentType), echo.MIMEApplicationForm) {
			// The form is read here, before anyone is known: no more of it
			// than any request body may be.
			req.Body = http.MaxBytesReader(c.Response(), req.Body, s.bodyLimit)
			if err := req.ParseForm(); err != nil {
				var tooLarge *http.MaxBytesError
				if errors.As(err, &tooLarge) {
					return nil, "", gridmap.Errorf(gridmap.ETOOLARGE, "the form is larger than the %s this endpoint accepts", s.cfg.BodyLimit)
				}
				return nil, "", gridmap.Errorf(gridmap.EINVALID, "the form cannot be read: send application/x-www-form-urlencoded fields")
			}
			key = req.PostForm.Get("api_key")
		}
		if key != "" {
			caller, err := s.deps.Access.TokenCaller(ctx, key)
			return caller, "", err
		}
	}
	if ck, err := req.Cookie(sessionCookie); err == nil && ck.Value != "" {
		caller, csrf, err := s.deps.Access.SessionCaller(ctx, ck.Value)
		switch {
		case err == nil:
			return caller, csrf, nil
		case gridmap.ErrorCode(err) != gridmap.EUNAUTHORIZED:
			return nil, "", err
		}
		c.Set(endedSessionKey, true)
	}
	return anonymous, "", nil
}

// endedSessionKey marks a request whose session cookie no longer signs in.
const endedSessionKey = "gridmap.session_ended"

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// sameOrigin reports whether a request comes from our own pages, a
// configured CORS origin, or no browser page at all (no Origin header:
// other systems, command-line clients).
func (s *Server) sameOrigin(req *http.Request) bool {
	origin := req.Header.Get(echo.HeaderOrigin)
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, req.Host) {
		return true
	}
	for _, o := range s.cfg.CORSOrigins {
		if strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// secureRequest reports whether the client reached us over TLS, directly or
// through a proxy that says so.
func (s *Server) secureRequest(req *http.Request) bool {
	return req.TLS != nil || s.cfg.SecureCookies ||
		s.fromTrustedProxy(req) && strings.EqualFold(req.Header.Get(echo.HeaderXForwardedProto), "https")
}

// fromTrustedProxy reports whether the connection comes from one of the
// configured reverse proxies.
func (s *Server) fromTrustedProxy(req *http.Request) bool {
	if len(s.cfg.TrustedProxies) == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	ip := net.ParseIP(host)
	if err != nil || ip == nil {
		return false
	}
	for _, n := range s.cfg.TrustedProxies {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// setSessionCookie hands a new session to the browser.
func (s *Server) setSessionCookie(c echo.Context, ses *gridmap.Session) {
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: ses.Secret, Path: "/", Expires: ses.ExpiresAt,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.secureRequest(c.Request())})
}

func (s *Server) clearSessionCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.secureRequest(c.Request())})
}

type sessionAnswer struct {
	CSRF      string          `json:"csrf_token,omitempty"`
	Caller    *gridmap.Caller `json:"caller"`
	ExpiresAt string          `json:"expires_at,omitempty"`
}

// handleSignIn signs a person in: POST /v1/session {"username", "password"}
// -> 200 with the caller and the CSRF token, and the session cookie.
// 401 for a wrong name or password, 429 with Retry-After while sign-ins are
// slowed down after failures.
func (s *Server) handleSignIn(c echo.Context) error {
	var req struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Username == "" || req.Password == "" {
		return gridmap.Errorf(gridmap.EINVALID, "sign in with both username and password")
	}
	c.Set(auditActorKey, "user:"+strings.ToLower(strings.TrimSpace(req.Username)))
	ses, err := s.deps.Access.SignIn(c.Request().Context(), req.Username, req.Password, c.RealIP())
	if err != nil {
		return err
	}
	s.setSessionCookie(c, ses)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, sessionAnswer{CSRF: ses.CSRF, Caller: ses.Caller, ExpiresAt: ses.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z")})
}

// handleSession says who is calling: GET /v1/session -> 200 with the caller
// (and the CSRF token when a cookie signed in), 401 for nobody.
func (s *Server) handleSession(c echo.Context) error {
	caller := callerOf(c)
	if caller.Kind == gridmap.CallerAnonymous {
		if c.Get(endedSessionKey) != nil {
			return gridmap.Errorf(gridmap.EUNAUTHORIZED, "your session has ended; sign in again")
		}
		return gridmap.Errorf(gridmap.EUNAUTHORIZED, "not signed in")
	}
	var csrf string
	if ck, err := c.Request().Cookie(sessionCookie); err == nil && caller.Kind == gridmap.CallerAccount {
		if _, token, err := s.deps.Access.SessionCaller(c.Request().Context(), ck.Value); err == nil {
			csrf = token
		}
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, sessionAnswer{CSRF: csrf, Caller: caller})
}

// handleSignOut ends the cookie's session: DELETE /v1/session -> 204.
func (s *Server) handleSignOut(c echo.Context) error {
	if ck, err := c.Request().Cookie(sessionCookie); err == nil && ck.Value != "" {
		if err := s.deps.Access.SignOut(c.Request().Context(), ck.Value); err != nil {
			return err
		}
	}
	s.clearSessionCookie(c)
	return c.NoContent(http.StatusNoContent)
}

// handleSignInLink signs in with a one-time link (printed by the first
// start of a new installation) and goes to the console: GET
// /signin/{secret} -> 303 to /, or to /login?expired=1 for a used link.
func (s *Server) handleSignInLink(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().Header().Set("Referrer-Policy", "no-referrer")
	ses, err := s.deps.Access.SignInWithLink(c.Request().Context(), c.Param("secret"))
	if gridmap.ErrorCode(err) == gridmap.EUNAUTHORIZED {
		return c.Redirect(http.StatusSeeOther, "/login?link=used")
	} else if err != nil {
		return err
	}
	c.Set(auditActorKey, "user:"+ses.Caller.Name)
	s.setSessionCookie(c, ses)
	return c.Redirect(http.StatusSeeOther, "/")
}
