package server

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestLookupRouteAsEchoRoutes: GET /v1/lookup goes through a middleware
// chain composed once (Server.ServeHTTP); every request answers exactly as
// through echo's own routing: status, headers and body, anonymous and with
// a token, across origins, with a caller's request id, with bad queries,
// and on the paths that only look like the route.
func TestLookupRouteAsEchoRoutes(t *testing.T) {
	ts := newTestServer(t, Config{PublicRead: true, CORSOrigins: []string{"https://map.example"}})
	ids := regexp.MustCompile(`"request_id":"[0-9a-f]{32}"`)
	for _, c := range []struct {
		name, method, target string
		header               map[string]string
	}{
		{"anonymous", "GET", "/v1/lookup?lon=-73.98&lat=40.75", nil},
		{"with a token", "GET", "/v1/lookup?lon=-73.98&lat=40.75", map[string]string{"Authorization": "Bearer " + ts.admin}},
		{"an allowed origin", "GET", "/v1/lookup?lon=-73.98&lat=40.75", map[string]string{"Origin": "https://map.example"}},
		{"a foreign origin", "GET", "/v1/lookup?lon=-73.98&lat=40.75", map[string]string{"Origin": "https://other.example"}},
		{"the caller's request id", "GET", "/v1/lookup?lon=1&lat=2", map[string]string{"X-Request-ID": "caller-chose-this"}},
		{"a bad longitude", "GET", "/v1/lookup?lon=abc&lat=40.75", nil},
		{"an unknown layer", "GET", "/v1/lookup?lon=-73.98&lat=40.75&layer=nosuch", nil},
		{"a bad escape", "GET", "/v1/lookup?lon=%ff&lat=1", nil},
		{"a bad token", "GET", "/v1/lookup?lon=1&lat=2", map[string]string{"Authorization": "Bearer nosuchtoken"}},
		{"HEAD", "HEAD", "/v1/lookup?lon=1&lat=2", nil},
		{"a trailing slash", "GET", "/v1/lookup/?lon=1&lat=2", nil},
		{"an escaped path", "GET", "/v1/l%6Fokup?lon=1&lat=2", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			do := func(h http.Handler) *httptest.ResponseRecorder {
				r := httptest.NewRequest(c.method, c.target, nil)
				r.RemoteAddr = "127.0.0.1:4000"
				for k, v := range c.header {
					r.Header.Set(k, v)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w
			}
			viaEcho, viaServer := do(ts.echo), do(ts.Server)
			if viaEcho.Code != viaServer.Code {
				t.Errorf("status %d through echo, %d through the composed chain", viaEcho.Code, viaServer.Code)
			}
			for _, h := range []http.Header{viaEcho.Header(), viaServer.Header()} {
				h.Del("Date")
				if c.header["X-Request-ID"] == "" {
					h.Del("X-Request-Id")
				}
			}
			if a, b := headerText(viaEcho.Header()), headerText(viaServer.Header()); a != b {
				t.Errorf("headers through echo:\n%s\nthrough the composed chain:\n%s", a, b)
			}
			a := ids.ReplaceAllString(viaEcho.Body.String(), `"request_id":"…"`)
			b := ids.ReplaceAllString(viaServer.Body.String(), `"request_id":"…"`)
			if a != b {
				t.Errorf("body through echo %q, through the composed chain %q", a, b)
			}
		})
	}
}

func headerText(h http.Header) string {
	var b strings.Builder
	if err := h.WriteSubset(&b, nil); err != nil {
		return err.Error()
	}
	return b.String()
}
