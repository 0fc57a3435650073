package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// walkWorld is a district with two streets, each with one grid, on its own
// layer: enough for every route to have something to find.
func walkWorld(t *testing.T, ts *testServer, layer string) {
	t.Helper()
	body := `{"type":"FeatureCollection","features":[` + strings.Join([]string{
		feat("D", "", square(121.0, 31.0, 0.02)),
		feat("S1", "D", square(121.0, 31.0, 0.01)),
		feat("S2", "D", square(121.01, 31.0, 0.01)),
	}, ",") + `]}`
	if r := do(t, "PUT", ts.url+"/v1/layers/"+layer, `{"name":"walk","kind":"comprehensive","levels":["district","street"]}`); r.status >= 300 {
		t.Fatalf("layer: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", ts.url+"/v1/layers/"+layer+"/import", body); r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	eventuallyWithin(t, 10*time.Second, "the layer reaches the lookup index", func() bool {
		var a lookupJSON
		r := do(t, "GET", ts.url+"/v1/lookup?layer="+layer+"&lon=121.005&lat=31.005", "")
		return r.status == 200 && json.Unmarshal(r.body, &a) == nil && len(a.Layers[layer].Chain) == 2
	})
}

// walkParams fill a route's parameters with harmless values: writes aimed
// at nothing, so that every caller's request finds the same world.
var walkParams = map[string]string{
	":layer": "walk", ":code": "nosuch", ":id": "999999999", ":username": "nosuch-user", ":name": "nosuch-token",
	":date": "2031-01-01", ":tileset": "walk", ":z": "1", ":x": "1", ":y": "1.mvt", ":tilejson": "walk.json",
	":secret": "gml_nosuch", "*": "en.json",
}

func fillRoute(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if v, ok := walkParams[p]; ok {
			parts[i] = v
		}
	}
	return strings.Join(parts, "/")
}

// walkCaller is who calls in the route walk.
type walkCaller struct {
	name   string
	header []string
	role   string // "" for nobody
	scoped bool
}

// walkStatus sends one request of the walk and returns its status without
// waiting for a stream's body.
func walkStatus(t *testing.T, method, u string, header []string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	body := ""
	if method != "GET" && method != "HEAD" && method != "DELETE" {
		body = "{}"
	}
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := &http.Client{Transport: http.DefaultTransport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestEveryRouteHasItsRule walks every route echo has registered, with no
// credentials, a token of each role and a scoped token, and checks the
// answer is what the route's rule says: 401 (or a redirect to the sign-in
// page) for nobody, 403 for a role too weak or a scoped caller on a
// service-wide route, and neither for the rest. A route without a rule
// fails here.
func TestEveryRouteHasItsRule(t *testing.T) {
	ts := newTestServer(t, Config{})
	walkWorld(t, ts, "walk")
	callers := []walkCaller{{name: "nobody", header: noAuth}}
	for _, role := range gridmap.Roles {
		callers = append(callers, walkCaller{name: role, header: bearer(ts.token(t, role, nil)), role: role})
	}
	scope := &gridmap.Scope{Layer: "walk", Code: "S1"}
	for _, role := range []string{gridmap.RoleDispatcher, gridmap.RoleAdmin} {
		callers = append(callers, walkCaller{name: "scoped " + role, header: bearer(ts.token(t, role, scope)), role: role, scoped: true})
	}
	routes := ts.echo.Routes()
	if len(routes) < 40 {
		t.Fatalf("only %d routes registered", len(routes))
	}
	for _, rt := range routes {
		if strings.HasPrefix(rt.Name, "github.com/labstack/echo") && rt.Method == "echo_route_not_found" {
			continue
		}
		key := rt.Method + " " + rt.Path
		r, ok := ts.ruleFor(rt.Method, rt.Path)
		if !ok {
			t.Errorf("%s has no access rule in server/access_rules.go", key)
			continue
		}
		u := ts.url + fillRoute(rt.Path)
		for _, c := range callers {
			got := walkStatus(t, rt.Method, u, c.header)
			var want string
			switch {
			case r.role == "":
				want = "open"
			case c.role == "" && r.page:
				want = "303"
			case c.role == "":
				want = "401"
			case gridmap.RoleRank(c.role) < gridmap.RoleRank(r.role), c.scoped && r.global:
				want = "403"
			default:
				want = "allowed"
			}
			switch want {
			case "open", "allowed":
				if key == "GET /v1/session" && c.role == "" && got == 401 {
					break // says who is calling: nobody
				}
				if got == 401 || got == 403 {
					t.Errorf("%s as %s: %d, want neither 401 nor 403 (rule %+v)", key, c.name, got, r)
				}
			default:
				if fmt.Sprint(got) != want {
					t.Errorf("%s as %s: %d, want %s (rule %+v)", key, c.name, got, want, r)
				}
			}
		}
	}
	for key := range rules {
		if strings.HasPrefix(key, "GET /test/") {
			continue
		}
		found := false
		for _, rt := range routes {
			found = found || rt.Method+" "+rt.Path == key
		}
		if !found {
			t.Errorf("rule for %s names no route", key)
		}
	}
}

// TestPublicRead opens tiles, lookups and layer reads to anonymous callers
// and nothing else.
func TestPublicRead(t *testing.T) {
	ts := newTestServer(t, Config{PublicRead: true})
	walkWorld(t, ts, "walk")
	for _, u := range []string{"/v1/layers", "/v1/layers/walk/grids", "/v1/lookup?lon=121.005&lat=31.005&layer=walk", "/tiles/walk/10/879/415.mvt", "/tiles/walk.json"} {
		if r := do(t, "GET", ts.url+u, "", noAuth...); r.status != 200 {
			t.Errorf("GET %s anonymously with public reads: %d %s", u, r.status, r.body)
		}
	}
	for _, u := range []string{"/v1/reports", "/tiles/reports/10/879/415.mvt", "/v1/categories", "/open311/v2/requests.json", "/v1/audit"} {
		if r := do(t, "GET", ts.url+u, "", noAuth...); r.status != 401 {
			t.Errorf("GET %s anonymously with public reads: %d, want 401", u, r.status)
		}
	}
	if r := do(t, "PUT", ts.url+"/v1/layers/walk/grids/S1", feat("S1", "D", square(121.0, 31.0, 0.01)), noAuth...); r.status != 401 {
		t.Errorf("anonymous write with public reads: %d, want 401", r.status)
	}
	// The people responsible are not for anonymous callers.
	if r := do(t, "PUT", ts.url+"/v1/layers/walk/grids/S1/people", `{"people":[{"role":"grid_worker","name":"王芳","phone":"13800000000"}]}`); r.status/100 != 2 {
		t.Fatalf("people: %d %s", r.status, r.body)
	}
	eventuallyWithin(t, 10*time.Second, "the people reach the lookup index", func() bool {
		return strings.Contains(string(do(t, "GET", ts.url+"/v1/lookup?lon=121.005&lat=31.005&layer=walk", "").body), "13800000000")
	})
	for _, u := range []string{"/v1/lookup?lon=121.005&lat=31.005&layer=walk", "/v1/layers/walk/grids/S1"} {
		anon, signed := do(t, "GET", ts.url+u, "", noAuth...), do(t, "GET", ts.url+u, "")
		if strings.Contains(string(anon.body), "13800000000") || !strings.Contains(string(signed.body), "13800000000") {
			t.Errorf("GET %s: anonymous %s; signed in %s", u, anon.body, signed.body)
		}
	}
	// A proxy's Basic credentials are not ours: they sign nobody in.
	if r := do(t, "GET", ts.url+"/v1/layers", "", "Authorization", "Basic dXNlcjpwYXNz"); r.status != 200 {
		t.Errorf("public read with a Basic header: %d", r.status)
	}
	if r := do(t, "GET", ts.url+"/v1/reports", "", "Authorization", "Basic dXNlcjpwYXNz"); r.status != 401 {
		t.Errorf("reports with a Basic header: %d, want 401", r.status)
	}
}

// signIn signs in through the API and returns the session cookie and the
// CSRF token.
func signIn(t *testing.T, ts *testServer, username, password string) (*http.Cookie, string) {
	t.Helper()
	ck, csrf, err := signInAs(ts, username, password)
	if err != nil {
		t.Fatal(err)
	}
	return ck, csrf
}

// signInAs is signIn for goroutines other than the test's.
func signInAs(ts *testServer, username, password string) (*http.Cookie, string, error) {
	req, _ := http.NewRequest("POST", ts.url+"/v1/session", strings.NewReader(fmt.Sprintf(`{"username":%q,"password":%q}`, username, password)))
	req.Header.Set(noAuth[0], "1")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	var ans struct {
		CSRF   string         `json:"csrf_token"`
		Caller gridmap.Caller `json:"caller"`
	}
	if err := json.NewDecoder(res.Body).Decode(&ans); err != nil || res.StatusCode != 200 {
		return nil, "", fmt.Errorf("signing in as %s: %d %v", username, res.StatusCode, err)
	}
	if ans.CSRF == "" || ans.Caller.Name != username {
		return nil, "", fmt.Errorf("sign-in answer for %s: %+v", username, ans)
	}
	for _, ck := range res.Cookies() {
		if ck.Name == sessionCookie {
			if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" {
				return nil, "", fmt.Errorf("session cookie %+v: want HttpOnly, SameSite=Lax, Path=/", ck)
			}
			return ck, ans.CSRF, nil
		}
	}
	return nil, "", fmt.Errorf("no %s cookie in %v", sessionCookie, res.Header)
}

// postgresSmallPool is the pool of the many-callers checks.
var postgresSmallPool = postgres.Options{MaxConns: 2}

// httptestGet serves one GET from h.
func httptestGet(h http.Handler, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec
}

func addAccount(t *testing.T, ts *testServer, a gridmap.Account, password string) {
	t.Helper()
	if err := ts.access.AddAccount(context.Background(), &a, password); err != nil {
		t.Fatalf("adding %s: %v", a.Username, err)
	}
}

// TestSessionsCSRFAndRevocation: a cookie signs in; writes it authenticates
// need the CSRF token; a write from another origin is refused; signing
// out, disabling the account and revoking a token take effect on the next
// request.
func TestSessionsCSRFAndRevocation(t *testing.T) {
	ts := newTestServer(t, Config{})
	walkWorld(t, ts, "walk")
	addAccount(t, ts, gridmap.Account{Username: "li.dispatcher", DisplayName: "李调度", Role: gridmap.RoleDispatcher}, "correct horse battery")
	ck, csrf := signIn(t, ts, "li.dispatcher", "correct horse battery")
	cookie := []string{"Cookie", ck.Name + "=" + ck.Value}

	r := do(t, "GET", ts.url+"/v1/session", "", cookie...)
	var who struct {
		CSRF   string         `json:"csrf_token"`
		Caller gridmap.Caller `json:"caller"`
	}
	r.json(t, &who)
	if r.status != 200 || who.Caller.Role != gridmap.RoleDispatcher || who.Caller.DisplayName != "李调度" || who.CSRF != csrf {
		t.Fatalf("GET /v1/session: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", ts.url+"/v1/layers", "", cookie...); r.status != 200 {
		t.Fatalf("read by cookie: %d %s", r.status, r.body)
	}
	report := `{"external_id":"csrf-1","category":"none","location":{"type":"Point","coordinates":[121.005,31.005]}}`
	r = do(t, "POST", ts.url+"/v1/reports", report, cookie...)
	if r.status != 403 || !strings.Contains(r.errorOf(t).Message, csrfHeader) {
		t.Errorf("write by cookie without CSRF token: %d %s, want 403 naming the header", r.status, r.body)
	}
	r = do(t, "POST", ts.url+"/v1/reports", report, append(cookie, csrfHeader, "wrong")...)
	if r.status != 403 {
		t.Errorf("write by cookie with a wrong CSRF token: %d, want 403", r.status)
	}
	r = do(t, "POST", ts.url+"/v1/reports", report, append(cookie, csrfHeader, csrf)...)
	if r.status == 401 || r.status == 403 {
		t.Errorf("write by cookie with the CSRF token: %d %s", r.status, r.body)
	}
	// A form another site posts carries the cookie (same site, other
	// port) but neither the token nor our origin.
	form := do(t, "POST", ts.url+"/open311/v2/requests.json", "service_code=none&lat=31.005&long=121.005",
		append(cookie, "Content-Type", "application/x-www-form-urlencoded", "Origin", "http://127.0.0.1:1")...)
	if form.status != 403 {
		t.Errorf("cross-site form post: %d %s, want 403", form.status, form.body)
	}
	// Even a valid token does not let another site's page write.
	if r := do(t, "POST", ts.url+"/v1/reports", report, "Origin", "http://evil.example"); r.status != 403 {
		t.Errorf("write from another origin with a token: %d, want 403", r.status)
	}

	// Disabling the account ends its session at the next request.
	disabled := true
	if _, err := ts.access.ChangeAccount(context.Background(), "li.dispatcher", gridmap.AccountChange{Disabled: &disabled}); err != nil {
		t.Fatal(err)
	}
	if r := do(t, "GET", ts.url+"/v1/layers", "", cookie...); r.status != 401 {
		t.Errorf("disabled account's session: %d, want 401", r.status)
	}
	if r := do(t, "GET", ts.url+"/", "", cookie...); r.status != 200 || !strings.Contains(string(r.body), "login") {
		// The client follows the redirect to the sign-in page.
		t.Errorf("the start page for an ended session: %d, want the sign-in page", r.status)
	}

	// Sign out ends the session.
	addAccount(t, ts, gridmap.Account{Username: "wang.viewer", Role: gridmap.RoleViewer}, "another long password")
	ck, csrf = signIn(t, ts, "wang.viewer", "another long password")
	cookie = []string{"Cookie", ck.Name + "=" + ck.Value}
	if r := do(t, "DELETE", ts.url+"/v1/session", "", cookie...); r.status != 403 {
		t.Errorf("sign-out without the CSRF token: %d, want 403", r.status)
	}
	if r := do(t, "DELETE", ts.url+"/v1/session", "", append(cookie, csrfHeader, csrf)...); r.status != 204 {
		t.Errorf("sign-out: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", ts.url+"/v1/layers", "", cookie...); r.status != 401 {
		t.Errorf("signed-out session: %d, want 401", r.status)
	}

	// A revoked token gets 401 at its next request.
	name, secret := ts.namedToken(t, gridmap.RoleViewer, nil)
	if r := do(t, "GET", ts.url+"/v1/layers", "", bearer(secret)...); r.status != 200 {
		t.Fatalf("fresh token: %d", r.status)
	}
	var list struct {
		Tokens []gridmap.Token `json:"tokens"`
	}
	do(t, "GET", ts.url+"/v1/tokens", "").json(t, &list)
	used := false
	for _, tk := range list.Tokens {
		used = used || tk.Name == name && tk.LastUsedAt != nil
		if tk.Name == name && tk.Role != gridmap.RoleViewer {
			t.Errorf("token as listed: %+v", tk)
		}
	}
	if !used {
		t.Errorf("token %s not listed as used: %+v", name, list.Tokens)
	}
	if r := do(t, "DELETE", ts.url+"/v1/tokens/"+url.PathEscape(name), ""); r.status != 204 {
		t.Fatalf("revoking: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", ts.url+"/v1/layers", "", bearer(secret)...); r.status != 401 {
		t.Errorf("revoked token: %d, want 401", r.status)
	}
	if r := do(t, "GET", ts.url+"/v1/layers", "", "Authorization", "Bearer gmt_nonsense"); r.status != 401 {
		t.Errorf("unknown token: %d, want 401", r.status)
	}
}

// TestSignInIsSlowedDown: failed sign-ins for one name are answered 429
// with Retry-After after a few, even with the right password.
func TestSignInIsSlowedDown(t *testing.T) {
	ts := newTestServer(t, Config{})
	addAccount(t, ts, gridmap.Account{Username: "zhao.editor", Role: gridmap.RoleEditor}, "the right password")
	var last response
	for i := 0; i < 8; i++ {
		last = do(t, "POST", ts.url+"/v1/session", `{"username":"zhao.editor","password":"a wrong password"}`, noAuth...)
		if last.status != 401 && last.status != 429 {
			t.Fatalf("wrong password: %d %s", last.status, last.body)
		}
	}
	if last.status != 429 || last.header.Get("Retry-After") == "" {
		t.Fatalf("after 8 failures: %d %v, want 429 with Retry-After", last.status, last.header)
	}
	if r := do(t, "POST", ts.url+"/v1/session", `{"username":"zhao.editor","password":"the right password"}`, noAuth...); r.status != 429 {
		t.Errorf("right password while slowed down: %d, want 429", r.status)
	}
	if r := do(t, "POST", ts.url+"/v1/session", `{"username":"zhao.editor","password":"x"}`, "Content-Type", "application/x-www-form-urlencoded"); r.status < 400 || r.status >= 500 {
		t.Errorf("sign-in sent as a form: %d", r.status)
	}
}

// TestRateLimitsAndHeaders: a token over its rate gets 429 with
// Retry-After; every answer carries the security headers; /metrics needs a
// token unless served on its own address.
func TestRateLimitsAndHeaders(t *testing.T) {
	ts := newTestServer(t, Config{RateLimit: 5, AddressRateLimit: 2})
	viewer := bearer(ts.token(t, gridmap.RoleViewer, nil))
	var limited response
	for i := 0; i < 30 && limited.status != 429; i++ {
		limited = do(t, "GET", ts.url+"/v1/layers", "", viewer...)
	}
	if limited.status != 429 || limited.header.Get("Retry-After") == "" || limited.errorOf(t).Code != gridmap.ETOOMANY {
		t.Fatalf("30 requests at rate 5/s: last %d %s, want 429 with Retry-After", limited.status, limited.body)
	}
	// Over Open311 the limit's 429 is in GeoReport's shape.
	var open311 response
	for i := 0; i < 30 && open311.status != 429; i++ {
		open311 = do(t, "GET", ts.url+"/open311/v2/services.json", "", viewer...)
	}
	refusedOpen311(t, open311, 429)
	// Another token has a bucket of its own.
	if r := do(t, "GET", ts.url+"/v1/layers", "", bearer(ts.token(t, gridmap.RoleViewer, nil))...); r.status != 200 {
		t.Errorf("another token: %d", r.status)
	}
	// Health checks are never limited.
	for i := 0; i < 20; i++ {
		if r := do(t, "GET", ts.url+"/healthz", "", noAuth...); r.status != 200 {
			t.Fatalf("healthz %d: %d", i, r.status)
		}
	}
	r := do(t, "GET", ts.url+"/login", "", noAuth...)
	csp := r.header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "object-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("Content-Security-Policy allows inline or eval: %q", csp)
	}
	if r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("headers: %v", r.header)
	}
	if r := do(t, "GET", ts.url+"/metrics", "", noAuth...); r.status != 401 {
		t.Errorf("/metrics without a token: %d, want 401", r.status)
	}
	rec := httptestGet(ts.MetricsHandler(), "/metrics")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "gridmap_http_requests_total") {
		t.Errorf("/metrics on its own listener: %d", rec.Code)
	}
}

// TestCORSIsOffUnlessConfigured: no CORS headers by default; a configured
// origin may call, others not.
func TestCORSIsOffUnlessConfigured(t *testing.T) {
	ts := newTestServer(t, Config{CORSOrigins: []string{"https://gis.example.gov.cn"}})
	r := do(t, "GET", ts.url+"/v1/layers", "", "Origin", "https://gis.example.gov.cn")
	if r.header.Get("Access-Control-Allow-Origin") != "https://gis.example.gov.cn" {
		t.Errorf("configured origin: %v", r.header)
	}
	r = do(t, "GET", ts.url+"/v1/layers", "", "Origin", "https://elsewhere.example")
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin got CORS headers: %v", r.header)
	}
	if r := do(t, "PUT", ts.url+"/v1/calendar/2031-01-02", `{"working":false}`, "Origin", "https://gis.example.gov.cn"); r.status != 200 && r.status != 201 && r.status != 204 {
		t.Errorf("write from the configured origin: %d %s", r.status, r.body)
	}
}

// TestAuditLog: every write is recorded with its actor, outcome and
// versions, refusals included, and only admins read the log.
func TestAuditLog(t *testing.T) {
	ts := newTestServer(t, Config{})
	walkWorld(t, ts, "audit")
	editor := ts.token(t, gridmap.RoleEditor, nil)
	viewer := ts.token(t, gridmap.RoleViewer, nil)
	r := do(t, "PUT", ts.url+"/v1/layers/audit/grids/S1?reason=redraw", feat("S1", "D", square(121.0, 31.0, 0.0099)), append(bearer(editor), "If-Match", `"1"`)...)
	if r.status != 200 {
		t.Fatalf("edit: %d %s", r.status, r.body)
	}
	if r := do(t, "PUT", ts.url+"/v1/layers/audit/grids/S2", feat("S2", "D", square(121.01, 31.0, 0.0099)), bearer(viewer)...); r.status != 403 {
		t.Fatalf("viewer's edit: %d", r.status)
	}
	if r := do(t, "GET", ts.url+"/v1/audit", "", bearer(editor)...); r.status != 403 {
		t.Errorf("editor reads the audit log: %d, want 403", r.status)
	}
	var log struct {
		Entries []gridmap.AuditEntry `json:"entries"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		do(t, "GET", ts.url+"/v1/audit?target=/v1/layers/audit/grids/", "").json(t, &log)
		if len(log.Entries) >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(log.Entries) != 2 {
		t.Fatalf("audit entries for the grids: %+v", log.Entries)
	}
	refused, done := log.Entries[0], log.Entries[1] // newest first
	if refused.Status != 403 || !strings.HasPrefix(refused.Actor, "token:viewer-") || refused.Role != gridmap.RoleViewer {
		t.Errorf("refused write: %+v", refused)
	}
	if done.Status != 200 || !strings.HasPrefix(done.Actor, "token:editor-") || done.Action != "PUT /v1/layers/:layer/grids/:code" ||
		done.Target != "/v1/layers/audit/grids/S1" || done.RequestID == "" || fmt.Sprint(done.Before) != "1" || fmt.Sprint(done.After) != "2" {
		t.Errorf("edit: %+v", done)
	}
	var mine struct {
		Entries []gridmap.AuditEntry `json:"entries"`
	}
	do(t, "GET", ts.url+"/v1/audit?actor="+url.QueryEscape(done.Actor), "").json(t, &mine)
	if len(mine.Entries) != 1 || mine.Entries[0].ID != done.ID {
		t.Errorf("entries of %s: %+v", done.Actor, mine.Entries)
	}
	// Refusals before anyone is known are recorded too, once a minute per
	// address: a bad token, then a flood without credentials.
	since := time.Now().Add(-time.Second).UTC().Format(time.RFC3339)
	if r := do(t, "POST", ts.url+"/v1/categories/audit-x", `{}`, "Authorization", "Bearer gmt_not-a-token"); r.status != 401 {
		t.Fatalf("bad token: %d", r.status)
	}
	// The flood's requests, by id: the log is the database's, which other
	// tests' servers write to as well.
	flooded := map[string]bool{}
	for i := 0; i < 30; i++ {
		for _, r := range []response{
			do(t, "PUT", ts.url+"/v1/categories/audit-x", `{}`, noAuth...),
			do(t, "POST", ts.url+"/v1/reports", `{}`, append(noAuth, "Origin", "http://evil.example")...),
			do(t, "DELETE", ts.url+"/v1/session", "", noAuth...),
		} {
			id := r.header.Get("X-Request-Id")
			if id == "" {
				t.Fatal("a refused request without an id")
			}
			flooded[id] = true
		}
	}
	if r := do(t, "GET", ts.url+"/signin/gml_thisisnotalink", "", noAuth...); r.status != 200 { // followed to /login
		t.Fatalf("sign-in link: %d", r.status)
	}
	var refusals struct {
		Entries []gridmap.AuditEntry `json:"entries"`
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		do(t, "GET", ts.url+"/v1/audit?actor=anonymous&from="+since, "").json(t, &refusals)
		// Five kinds are expected; the writer may still hold the last.
		if len(refusals.Entries) >= 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var categoryRefusals, links int
	seen := map[string]int{}
	for _, e := range refusals.Entries {
		if flooded[e.RequestID] {
			seen[e.Action+" "+strconv.Itoa(e.Status)]++
		}
		switch {
		case e.Target == "/v1/categories/audit-x" && e.Status == 401:
			categoryRefusals++
		case strings.HasPrefix(e.Target, "/signin/"):
			links++
			if strings.Contains(e.Target, "thisisnotalink") {
				t.Errorf("the audit log keeps a sign-in link's secret: %q", e.Target)
			}
		}
	}
	if categoryRefusals != 2 || links != 1 {
		t.Errorf("anonymous entries: %d refused category writes (want 2: the bad token's POST and the flood's PUT, once a minute each), %d sign-in links (want 1): %+v", categoryRefusals, links, refusals.Entries)
	}
	for _, flood := range []string{"POST /v1/reports 403", "DELETE /v1/session 204"} {
		if seen[flood] != 1 {
			t.Errorf("%d entries for 30 anonymous %s, want 1", seen[flood], flood)
		}
	}

	// The grid's history names the editor too.
	var hist struct {
		Features []struct {
			Properties map[string]any `json:"properties"`
		} `json:"features"`
	}
	do(t, "GET", ts.url+"/v1/layers/audit/grids/S1/history", "").json(t, &hist)
	if n := len(hist.Features); n != 2 || hist.Features[1].Properties["author"] != done.Actor {
		t.Errorf("history: %+v", hist.Features)
	}
}

// TestManyCallersSignInAndWork: many people sign in and work at once, with
// tokens being revoked meanwhile, on a pool of two connections.
func TestManyCallersSignInAndWork(t *testing.T) {
	db := pgtest.NewDBWith(t, postgresSmallPool)
	ts := newTestServerOn(t, Config{}, db)
	walkWorld(t, ts, "many")
	const people = 12
	for i := 0; i < people; i++ {
		addAccount(t, ts, gridmap.Account{Username: fmt.Sprintf("worker%d", i), Role: gridmap.RoleViewer}, "a password for many")
	}
	revoked, names := make([]string, 4), make([]string, 4)
	for i := range revoked {
		names[i], revoked[i] = ts.namedToken(t, gridmap.RoleViewer, nil)
	}
	var wg sync.WaitGroup
	errs := make(chan error, people*4)
	for i := 0; i < people; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ck, _, err := signInAs(ts, fmt.Sprintf("worker%d", i), "a password for many")
			if err != nil {
				errs <- err
				return
			}
			for j := 0; j < 10; j++ {
				if r := do(t, "GET", ts.url+"/v1/layers/many/grids", "", "Cookie", ck.Name+"="+ck.Value); r.status != 200 {
					errs <- fmt.Errorf("worker%d read %d: %d %s", i, j, r.status, r.body)
					return
				}
			}
		}(i)
	}
	for _, secret := range revoked {
		wg.Add(1)
		go func(secret string) {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				do(t, "GET", ts.url+"/v1/layers", "", bearer(secret)...)
			}
		}(secret)
	}
	for _, name := range names {
		if r := do(t, "DELETE", ts.url+"/v1/tokens/"+name, ""); r.status != 204 {
			t.Errorf("revoke %s: %d", name, r.status)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, secret := range revoked {
		if r := do(t, "GET", ts.url+"/v1/layers", "", bearer(secret)...); r.status != 401 {
			t.Errorf("revoked token after concurrent use: %d", r.status)
		}
	}
}

// TestOpen311TakesAPIKey: Open311 clients send their token as api_key, in
// the query or the form, and get the token's rights.
func TestOpen311TakesAPIKey(t *testing.T) {
	ts := newTestServer(t, Config{})
	walkWorld(t, ts, "o311key")
	if r := do(t, "PUT", ts.url+"/v1/categories/o311key-litter", `{"name":"Litter","departments":[],"limit":{"value":2,"clock":"working_days"}}`); r.status/100 != 2 {
		t.Fatalf("category: %d %s", r.status, r.body)
	}
	reporter, viewer := ts.token(t, gridmap.RoleReporter, nil), ts.token(t, gridmap.RoleViewer, nil)
	form := func(key string) string {
		return "service_code=o311key-litter&lat=31.005&long=121.005&description=bags&external_id=o311key-" + key[len(key)-6:] + "&api_key=" + url.QueryEscape(key)
	}
	formHeader := append([]string{"Content-Type", "application/x-www-form-urlencoded"}, noAuth...)
	if r := do(t, "POST", ts.url+"/open311/v2/requests.json", form(reporter), formHeader...); r.status != 201 {
		t.Errorf("intake with a reporter's api_key: %d %s", r.status, r.body)
	}
	// Refusals before the Open311 handlers (the key's rights, an unknown
	// key, none at all, a path no route has) are in GeoReport's shape too.
	refusedOpen311(t, do(t, "POST", ts.url+"/open311/v2/requests.json", form(viewer), formHeader...), 403)
	refusedOpen311(t, do(t, "POST", ts.url+"/open311/v2/requests.json", form("gmt_not-a-token"), formHeader...), 401)
	if r := do(t, "GET", ts.url+"/open311/v2/requests.json?api_key="+url.QueryEscape(viewer), "", noAuth...); r.status != 200 {
		t.Errorf("list with a viewer's api_key in the query: %d %s", r.status, r.body)
	}
	refusedOpen311(t, do(t, "GET", ts.url+"/open311/v2/requests.json", "", noAuth...), 401)
	refusedOpen311(t, do(t, "GET", ts.url+"/open311/v2/no-such-endpoint.json?api_key="+url.QueryEscape(viewer), "", noAuth...), 404)
	// The JSON API next to it keeps its own shape.
	if e := refused(t, do(t, "GET", ts.url+"/v1/reports", "", noAuth...), 401); e.Code != gridmap.EUNAUTHORIZED {
		t.Errorf("GET /v1/reports without credentials: code %q, want %q", e.Code, gridmap.EUNAUTHORIZED)
	}
}

// TestJurisdictionFollowsTheHierarchy: when streets are merged, the open
// reports of their grids belong to the new street at once, and no longer
// to the old ones; a scoped reporter files only where its grid is the
// owner, whatever accuracy it claims.
func TestJurisdictionFollowsTheHierarchy(t *testing.T) {
	ts := newTestServer(t, Config{})
	layer := "merge"
	gridFeat := func(code, parent, geom string) string {
		return fmt.Sprintf(`{"type":"Feature","properties":{"code":%q,"name":%q,"level":"grid","parent":%q},"geometry":%s}`, code, code, parent, geom)
	}
	body := `{"type":"FeatureCollection","features":[` + strings.Join([]string{
		feat("MD", "", square(122.0, 31.0, 0.02)),
		feat("MS1", "MD", square(122.0, 31.0, 0.01)),
		feat("MS2", "MD", square(122.01, 31.0, 0.01)),
		gridFeat("MG1", "MS1", square(122.0, 31.0, 0.01)),
		gridFeat("MG2", "MS2", square(122.01, 31.0, 0.01)),
	}, ",") + `]}`
	if r := do(t, "PUT", ts.url+"/v1/layers/"+layer, `{"name":"merge","kind":"comprehensive","levels":["district","street","grid"]}`); r.status >= 300 {
		t.Fatalf("layer: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", ts.url+"/v1/layers/"+layer+"/import", body); r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	eventuallyWithin(t, 10*time.Second, "the layer reaches the lookup index", func() bool {
		var a lookupJSON
		r := do(t, "GET", ts.url+"/v1/lookup?layer="+layer+"&lon=122.005&lat=31.005", "")
		return r.status == 200 && json.Unmarshal(r.body, &a) == nil && len(a.Layers[layer].Chain) == 3
	})
	if r := do(t, "PUT", ts.url+"/v1/categories/merge-litter", `{"name":"Litter","departments":[],"limit":{"value":2,"clock":"working_days"}}`); r.status/100 != 2 {
		t.Fatalf("category: %d %s", r.status, r.body)
	}
	reporter := bearer(ts.token(t, gridmap.RoleReporter, &gridmap.Scope{Layer: layer, Code: "MS1"}))
	report := func(id string, lon float64, accuracy int) response {
		return do(t, "POST", ts.url+"/v1/reports", fmt.Sprintf(`{"external_id":%q,"category":"merge-litter","accuracy_m":%d,
			"location":{"type":"Point","coordinates":[%g,31.005]}}`, id, accuracy, lon), reporter...)
	}
	if r := report("merge-far", 122.015, 5000); r.status != 403 {
		t.Errorf("a report in the next street claiming 5 km accuracy: %d %s, want 403", r.status, r.body)
	}
	r := report("merge-1", 122.005, 0)
	var rep gridmap.Report
	if r.status != 201 || json.Unmarshal(r.body, &rep) != nil {
		t.Fatalf("a report in the reporter's street: %d %s", r.status, r.body)
	}
	listed := func(scope string) []int64 {
		var page struct {
			Reports []gridmap.Report `json:"reports"`
		}
		do(t, "GET", ts.url+"/v1/reports?limit=1000", "", bearer(ts.token(t, gridmap.RoleViewer, &gridmap.Scope{Layer: layer, Code: scope}))...).json(t, &page)
		var ids []int64
		for _, p := range page.Reports {
			ids = append(ids, p.ID)
		}
		return ids
	}
	oldStreet := bearer(ts.token(t, gridmap.RoleViewer, &gridmap.Scope{Layer: layer, Code: "MS1"}))
	if got := listed("MS1"); len(got) != 1 || got[0] != rep.ID {
		t.Fatalf("street MS1 lists %v, want [%d]", got, rep.ID)
	}
	merge := `{"reason":"two streets become one","operations":[{"op":"merge","codes":["MS1","MS2"],"into":"MS3"}]}`
	if r := do(t, "POST", ts.url+"/v1/layers/"+layer+"/changesets", merge); r.status != 200 {
		t.Fatalf("merge: %d %s", r.status, r.body)
	}
	if got := listed("MS3"); len(got) != 1 || got[0] != rep.ID {
		t.Errorf("the merged street MS3 lists %v, want [%d]", got, rep.ID)
	}
	if got := listed("MD"); len(got) != 1 {
		t.Errorf("the district lists %v, want the report", got)
	}
	var history struct {
		Events []gridmap.ReportEvent `json:"events"`
	}
	do(t, "GET", ts.url+"/v1/reports/"+strconv.FormatInt(rep.ID, 10)+"/events", "").json(t, &history)
	events := history.Events
	if last := events[len(events)-1]; last.Action != "reroute" || !strings.Contains(last.Note, "grids above MG1") {
		t.Errorf("the report's last event: %+v, want a reroute saying the grids above MG1 changed", last)
	}
	// A token scoped to the old street, made before the merge, names a
	// grid that no longer exists: it holds nothing.
	var page struct {
		Reports []gridmap.Report `json:"reports"`
	}
	do(t, "GET", ts.url+"/v1/reports?limit=1000", "", oldStreet...).json(t, &page)
	if len(page.Reports) != 0 {
		t.Errorf("the merged-away street still lists %d reports", len(page.Reports))
	}
	if r := do(t, "GET", ts.url+"/v1/reports/"+strconv.FormatInt(rep.ID, 10), "", oldStreet...); r.status != 403 {
		t.Errorf("the merged-away street reads the report: %d, want 403", r.status)
	}
}

// TestEventStreamEndsWhenAccessEnds: an open live feed stops before the
// next event once its token is revoked, and a disabled account's stream
// likewise.
func TestEventStreamEndsWhenAccessEnds(t *testing.T) {
	ts := newTestServer(t, Config{})
	walkWorld(t, ts, "feedend")
	name, secret := ts.namedToken(t, gridmap.RoleViewer, nil)
	addAccount(t, ts, gridmap.Account{Username: "feed.viewer", Role: gridmap.RoleViewer}, "a feed password")
	ck, _ := signIn(t, ts, "feed.viewer", "a feed password")
	byToken, stop1 := openStream(t, ts.url, "", bearer(secret)...)
	defer stop1()
	byCookie, stop2 := openStream(t, ts.url, "", append(noAuth, "Cookie", ck.Name+"="+ck.Value)...)
	defer stop2()
	put := func(code string) {
		t.Helper()
		if r := do(t, "PUT", ts.url+"/v1/layers/feedend/grids/"+code+"/people", `{"people":[{"role":"grid_worker","name":"Lin"}]}`); r.status/100 != 2 {
			t.Fatalf("people: %d %s", r.status, r.body)
		}
	}
	put("S1")
	waitFor(t, byToken, "the first change by token", func(e sseEvent) bool { return e.event == "boundary" })
	waitFor(t, byCookie, "the first change by cookie", func(e sseEvent) bool { return e.event == "boundary" })

	if r := do(t, "DELETE", ts.url+"/v1/tokens/"+name, ""); r.status != 204 {
		t.Fatalf("revoke: %d", r.status)
	}
	disabled := true
	if _, err := ts.access.ChangeAccount(context.Background(), "feed.viewer", gridmap.AccountChange{Disabled: &disabled}); err != nil {
		t.Fatal(err)
	}
	put("S2")
	for name, events := range map[string]<-chan sseEvent{"revoked token": byToken, "disabled account": byCookie} {
		timeout := time.After(10 * time.Second)
	read:
		for {
			select {
			case e, ok := <-events:
				if !ok {
					break read
				}
				t.Errorf("the %s's stream still delivered %s %s", name, e.event, e.data)
			case <-timeout:
				t.Errorf("the %s's stream is still open 10 s later", name)
				break read
			}
		}
	}
}

// TestOpen311FormIsBoundedBeforeSignIn: a form too large for any request is
// refused before it is read, whoever sends it.
func TestOpen311FormIsBoundedBeforeSignIn(t *testing.T) {
	ts := newTestServer(t, Config{BodyLimit: "1M"})
	body := "api_key=x&description=" + strings.Repeat("a", 3<<20)
	r := do(t, "POST", ts.url+"/open311/v2/requests.json", body, append([]string{"Content-Type", "application/x-www-form-urlencoded"}, noAuth...)...)
	refusedOpen311(t, r, 413)
}

// TestForwardedForOnlyFromTrustedProxies: X-Forwarded-For names the client
// only when the connection comes from a configured proxy; otherwise a
// client cannot pick an address to escape its limit.
func TestForwardedForOnlyFromTrustedProxies(t *testing.T) {
	_, loopback, _ := net.ParseCIDR("127.0.0.1/32")
	_, elsewhere, _ := net.ParseCIDR("10.9.0.0/16")
	for _, c := range []struct {
		name    string
		proxies []*net.IPNet
		limited bool
	}{
		{"no proxy configured", nil, true},
		{"another network's proxy", []*net.IPNet{elsewhere}, true},
		{"from the configured proxy", []*net.IPNet{loopback}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ts := newTestServer(t, Config{AddressRateLimit: 1, TrustedProxies: c.proxies})
			limited := false
			for i := 0; i < 10; i++ {
				r := do(t, "GET", ts.url+"/v1/layers", "", append(noAuth, "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i))...)
				limited = limited || r.status == 429
			}
			if limited != c.limited {
				t.Errorf("10 anonymous requests naming 10 addresses at 1/s: limited %v, want %v", limited, c.limited)
			}
		})
	}
}

// TestEditsWhereReportsLoseTheirGrid: deleting a street with its grids, or
// merging a grid that holds a line report, still applies when open reports
// are left without a grid or keep theirs by location.
func TestEditsWhereReportsLoseTheirGrid(t *testing.T) {
	ts := newTestServer(t, Config{})
	layer := "edge"
	gridFeat := func(code, parent, geom string) string {
		return fmt.Sprintf(`{"type":"Feature","properties":{"code":%q,"name":%q,"level":"grid","parent":%q},"geometry":%s}`, code, code, parent, geom)
	}
	body := `{"type":"FeatureCollection","features":[` + strings.Join([]string{
		feat("ED", "", square(123.0, 31.0, 0.03)),
		feat("ES1", "ED", square(123.0, 31.0, 0.01)),
		feat("ES2", "ED", square(123.01, 31.0, 0.02)),
		gridFeat("EG1", "ES1", square(123.0, 31.0, 0.01)),
		gridFeat("EG2", "ES2", square(123.01, 31.0, 0.01)),
		gridFeat("EG3", "ES2", square(123.02, 31.0, 0.01)),
	}, ",") + `]}`
	if r := do(t, "PUT", ts.url+"/v1/layers/"+layer, `{"name":"edge","kind":"comprehensive","levels":["district","street","grid"]}`); r.status >= 300 {
		t.Fatalf("layer: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", ts.url+"/v1/layers/"+layer+"/import", body); r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	eventuallyWithin(t, 10*time.Second, "the layer reaches the lookup index", func() bool {
		var a lookupJSON
		r := do(t, "GET", ts.url+"/v1/lookup?layer="+layer+"&lon=123.005&lat=31.005", "")
		return r.status == 200 && json.Unmarshal(r.body, &a) == nil && len(a.Layers[layer].Chain) == 3
	})
	if r := do(t, "PUT", ts.url+"/v1/categories/edge-litter", `{"name":"Litter","departments":[],"limit":{"value":2,"clock":"working_days"}}`); r.status/100 != 2 {
		t.Fatalf("category: %d %s", r.status, r.body)
	}
	for id, loc := range map[string]string{
		"edge-point": `{"type":"Point","coordinates":[123.005,31.005]}`,
		"edge-line":  `{"type":"LineString","coordinates":[[123.012,31.005],[123.018,31.005]]}`,
	} {
		if r := do(t, "POST", ts.url+"/v1/reports", `{"external_id":"`+id+`","category":"edge-litter","location":`+loc+`}`); r.status != 201 {
			t.Fatalf("report %s: %d %s", id, r.status, r.body)
		}
	}
	changes := ts.url + "/v1/layers/" + layer + "/changesets"
	if r := do(t, "POST", changes, `{"reason":"a grid and its street go","operations":[{"op":"delete","code":"EG1"},{"op":"delete","code":"ES1"}]}`); r.status != 200 {
		t.Errorf("deleting a street with a report in its grid: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", changes, `{"reason":"two grids become one","operations":[{"op":"merge","codes":["EG2","EG3"],"into":"EG23"}]}`); r.status != 200 {
		t.Errorf("merging the grid of a line report: %d %s", r.status, r.body)
	}
}

// TestAPIAnswersCarryTheAPIPolicy: the API's answers are data, and carry
// the short policy that lets nothing load from them or frame them,
// answered or refused, found or not, on the lookup's own path as on
// echo's; the pages and everything else, OGC API's pages among them, carry
// the pages' policy.
func TestAPIAnswersCarryTheAPIPolicy(t *testing.T) {
	ts := newTestServer(t, Config{})
	walkWorld(t, ts, "policy")
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/v1/lookup?layer=policy&lon=121.005&lat=31.005", 200},
		{"/v1/lookup?layer=nowhere&lon=0&lat=0", 404},
		{"/v1/lookup?layer=policy&lon=200&lat=0", 400},
		{"/v1/layers", 200},
		{"/v1/layers/nowhere", 404},
		{"/v1/nowhere", 404},
		{"/tiles/policy/14/13699/6706.mvt", 200},
		{"/tiles/nowhere/0/0/0.mvt", 404},
		{"/open311/v2/services.json", 200},
		{"/openapi.json", 200},
		{"/healthz", 200},
		{"/metrics", 200},
	} {
		r := do(t, "GET", ts.url+c.path, "")
		if csp := r.header.Get("Content-Security-Policy"); csp != "default-src 'none'; frame-ancestors 'none'" ||
			r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s (%d): headers %v, want the API's policy", c.path, r.status, r.header)
		}
		if r.status != c.status {
			t.Errorf("%s: %d %.200s, want %d", c.path, r.status, r.body, c.status)
		}
	}
	for _, path := range []string{"/", "/editor", "/login", "/ogc?f=html", "/ogc/collections?f=json", "/nowhere"} {
		if csp := do(t, "GET", ts.url+path, "").header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s: Content-Security-Policy %q, want the pages'", path, csp)
		}
	}
}

// TestBasemapStyleIsAllowedAndAnnounced: a configured basemap's origin is
// added to the Content-Security-Policy and told to the pages.
func TestBasemapStyleIsAllowedAndAnnounced(t *testing.T) {
	ts := newTestServer(t, Config{BasemapStyle: "https://map.example.gov.cn/styles/vec.json", TimeZone: "Asia/Shanghai"})
	r := do(t, "GET", ts.url+"/v1/config", "")
	var cfg map[string]string
	r.json(t, &cfg)
	if cfg["basemap_style"] != "https://map.example.gov.cn/styles/vec.json" || cfg["time_zone"] != "Asia/Shanghai" {
		t.Errorf("config: %s", r.body)
	}
	if csp := do(t, "GET", ts.url+"/editor", "").header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self' https://map.example.gov.cn") {
		t.Errorf("CSP %q does not let the pages fetch the basemap", csp)
	}
	plain := newTestServer(t, Config{})
	if csp := do(t, "GET", plain.url+"/editor", "").header.Get("Content-Security-Policy"); strings.Contains(csp, "example") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("CSP without a basemap: %q", csp)
	}
}
