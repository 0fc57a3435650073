package server

import (
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"
)

// pageSecurity is the Content-Security-Policy of the pages: scripts,
// styles and data only from this server (no inline script or style, no
// eval), MapLibre's workers from blob: URLs, nobody may frame the pages.
const pageSecurity = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"font-src 'self'; connect-src 'self'; worker-src 'self' blob:; child-src 'self' blob:; object-src 'none'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// apiSecurity is the Content-Security-Policy of the API's answers (JSON,
// GeoJSON, XML, tiles, event streams, metrics), which are data, not
// documents: nothing may load from them or frame them, also when a browser
// opens one as a page. The pages' own policy is eight times longer and
// would be sent with every lookup for nothing.
const apiSecurity = "default-src 'none'; frame-ancestors 'none'"

// isAPIPath reports whether a request's path is the API's, which answers
// data and never a page, found or not. (OGC API answers pages too, as
// ?f=html asks.)
func isAPIPath(path string) bool {
	switch path {
	case "/openapi.json", "/healthz", "/readyz", "/metrics":
		return true
	}
	return strings.HasPrefix(path, "/v1/") || strings.HasPrefix(path, "/tiles/") || strings.HasPrefix(path, open311Prefix+"/")
}

// fixedHeader is a header every answer carries with the same value.
type fixedHeader struct {
	key   string // canonical
	value []string
}

// securityHeaders are the headers secureHeaders sets, built once: the
// value slices are shared by every answer, which net/http only reads
// (Header.Set and Add replace or grow a copy).
func securityHeaders(csp string) []fixedHeader {
	return []fixedHeader{{"Content-Security-Policy", []string{csp}}, {"X-Content-Type-Options", []string{"nosniff"}},
		{"X-Frame-Options", []string{"DENY"}}, {"Referrer-Policy", []string{"same-origin"}}}
}

var strictTransport = []string{"max-age=31536000"}

// secureHeaders sets the security headers on every answer: the pages'
// policy, or the API's on the API's routes.
func (s *Server) secureHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		fixed := s.securityHeaders
		if isAPIPath(c.Request().URL.Path) {
			fixed = s.apiSecurityHeaders
		}
		for _, f := range fixed {
			h[f.key] = f.value
		}
		if s.secureRequest(c.Request()) {
			h["Strict-Transport-Security"] = strictTransport
		}
		return next(c)
	}
}

// limiters holds a token bucket per caller (token or account) and per
// address (anonymous callers, sign-in attempts). Buckets idle for a while
// are dropped, so the map stays as small as the set of active callers.
type limiters struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	*rate.Limiter
	used time.Time
}

func newLimiters() *limiters { return &limiters{buckets: map[string]*bucket{}} }

// wait is how long the caller named by key must wait before its next
// request at perSecond (bursts up to twice that); 0 means go ahead.
func (l *limiters) wait(key string, perSecond float64, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		for k, b := range l.buckets {
			if now.Sub(b.used) > 5*time.Minute {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{Limiter: rate.NewLimiter(rate.Limit(perSecond), int(math.Max(2*perSecond, 1)))}
		l.buckets[key] = b
	}
	b.used = now
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

// limitRate answers 429 with Retry-After to a caller over its rate:
// Config.RateLimit requests a second per token or account,
// Config.AddressRateLimit per address for anonymous callers. Health checks
// are never limited.
func (s *Server) limitRate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if r, ok := s.ruleOf(c); ok && r.role == "" && c.Path() != "/v1/session" && c.Path() != "/signin/:secret" {
			return next(c)
		}
		caller := callerOf(c)
		perSecond := s.cfg.AddressRateLimit
		if caller.Kind != gridmap.CallerAnonymous {
			perSecond = s.cfg.RateLimit
		}
		if perSecond <= 0 {
			return next(c)
		}
		if d := s.rates.wait(callerKey(c, caller), perSecond, time.Now()); d > 0 {
			return &gridmap.Error{Code: gridmap.ETOOMANY, RetryAfter: d,
				Message: "too many requests from " + describeKey(caller, c) + "; slow down and try again after Retry-After seconds"}
		}
		return next(c)
	}
}

// callerKey names whose share of a limit a request uses: its token's or
// account's, or its address's when it has no credentials.
func callerKey(c echo.Context, caller *gridmap.Caller) string {
	if caller.Kind == gridmap.CallerAnonymous {
		return "address:" + c.RealIP()
	}
	return caller.Kind + ":" + strconv.FormatInt(caller.ID, 10)
}

func describeKey(caller *gridmap.Caller, c echo.Context) string {
	if caller.Kind == gridmap.CallerAnonymous {
		return "address " + c.RealIP()
	}
	return describe(caller)
}
