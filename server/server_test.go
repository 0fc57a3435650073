package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/gridmap/gridmap/tiles"
	"github.com/labstack/echo/v4"
)

func TestMain(m *testing.M) {
	http.DefaultTransport = &adminTransport{base: http.DefaultTransport}
	pgtest.Main(m)
}

// adminTransport signs the tests' requests to a test server in as that
// server's admin token, unless they carry credentials of their own or the
// noAuth header: the handlers' tests test the handlers, access_test.go
// tests who may call them.
type adminTransport struct{ base http.RoundTripper }

// adminTokens maps a test server's URL host to its admin token.
var adminTokens sync.Map

// noAuth sends a request with no credentials at all.
var noAuth = []string{"X-Test-No-Auth", "1"}

func (t *adminTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get(noAuth[0]) != "" {
		req = req.Clone(req.Context())
		req.Header.Del(noAuth[0])
		return t.base.RoundTrip(req)
	}
	if token, ok := adminTokens.Load(req.URL.Host); ok && req.Header.Get("Authorization") == "" && !hasSessionCookie(req) {
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", "Bearer "+token.(string))
	}
	return t.base.RoundTrip(req)
}

func hasSessionCookie(req *http.Request) bool {
	_, err := req.Cookie(sessionCookie)
	return err == nil
}

// shanghai is the deployment time zone the tests count deadlines in.
var shanghai, _ = time.LoadLocation("Asia/Shanghai")

type testServer struct {
	*Server
	url     string
	hs      *httptest.Server
	access  *postgres.AccessStore
	admin   string // the admin token's secret
	ready   error
	locator *postgres.Locator
	tiles   *tiles.Service
}

// newTestServer serves the real handlers over the package's test database.
func newTestServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	return newTestServerOn(t, cfg, pgtest.Shared(t))
}

// newTestServerOn is newTestServer over db (a pool of its own on the
// package's database, for example), with db's pool figures on /metrics.
func newTestServerOn(t *testing.T, cfg Config, db *postgres.DB) *testServer {
	t.Helper()
	grids := postgres.NewGridStore(db)
	ts := &testServer{locator: postgres.NewLocator(db)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go ts.locator.Follow(ctx)
	<-ts.locator.Listening()
	feed := postgres.NewFeed(db)
	go feed.Run(ctx)
	tileStore := postgres.NewTileStore(db)
	tileStore.KeepTileBlocks(64 << 20) // as gridmap serve draws tiles
	ts.tiles = tiles.NewService(tileStore, 64<<20)
	following := make(chan struct{})
	go tileStore.FollowTileChanges(ctx, ts.tiles.Cache(), func() { close(following) })
	<-following
	ts.access = postgres.NewAccessStore(db)
	go ts.access.Follow(ctx)
	<-ts.access.Listening()
	stats := postgres.NewStatsStore(db)
	ts.Server = New(cfg, Deps{Layers: postgres.NewLayerStore(db), Grids: grids, Importer: grids, Editor: grids, Drafts: grids,
		Locator: ts.locator, Reports: postgres.NewReportStore(db, ts.locator, shanghai), Categories: postgres.NewCategoryStore(db),
		Feed: feed, Tiles: ts.tiles, PoolStats: db.PoolStats, Unavailable: postgres.Unavailable, Ready: func(context.Context) error { return ts.ready },
		Access: ts.access, Search: postgres.NewSearchStore(db), Features: postgres.NewFeatureStore(db),
		Stats: stats, Indicators: postgres.NewIndicatorStore(db, stats, shanghai),
		Party: postgres.NewPartyStore(db, shanghai), Leaders: postgres.NewLeaderStore(db, shanghai),
		Patrols: postgres.NewPatrolStore(db, shanghai, 0)}, slog.New(slog.DiscardHandler))
	hs := httptest.NewServer(ts.Handler())
	t.Cleanup(hs.Close)
	ts.url, ts.hs = hs.URL, hs
	ts.admin = signInAsAdmin(t, ts.access, hs.Listener.Addr().String())
	return ts
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response is not JSON: %v: %s", err, r.body)
	}
}

// errorOf decodes an error response and checks its shape.
func (r response) errorOf(t *testing.T) errorDetail {
	t.Helper()
	var body errorBody
	r.json(t, &body)
	if body.Error.Code == "" || body.Error.Message == "" {
		t.Fatalf("error response without code or message: %s", r.body)
	}
	return body.Error
}

func do(t *testing.T, method, url, body string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{res.StatusCode, res.Header, b}
}

func square(x, y, s float64) string {
	return fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,%g],[%g,%g],[%g,%g],[%g,%g],[%g,%g]]]}`, x, y, x+s, y, x+s, y+s, x, y+s, x, y)
}

// feat is a street under parent, or the district when parent is "".
func feat(code, parent, geom string) string {
	level, p := "street", fmt.Sprintf("%q", parent)
	if parent == "" {
		level, p = "district", "null"
	}
	return fmt.Sprintf(`{"type":"Feature","properties":{"code":%q,"name":"%s 网格","level":%q,"parent":%s,"note":"kept"},"geometry":%s}`, code, code, level, p, geom)
}

func TestHealthAndMetrics(t *testing.T) {
	ts := newTestServer(t, Config{})
	if r := do(t, "GET", ts.url+"/healthz", ""); r.status != 200 {
		t.Errorf("healthz %d", r.status)
	}
	if r := do(t, "GET", ts.url+"/readyz", ""); r.status != 200 {
		t.Errorf("readyz %d", r.status)
	}
	ts.ready = gridmap.Errorf(gridmap.EUNAVAILABLE, "database unreachable")
	if r := do(t, "GET", ts.url+"/readyz", ""); r.status != 503 || !strings.Contains(string(r.body), "database unreachable") {
		t.Errorf("readyz when not ready: %d %s", r.status, r.body)
	}
	r := do(t, "GET", ts.url+"/metrics", "")
	if r.status != 200 || !strings.Contains(string(r.body), `gridmap_http_requests_total{method="GET",route="/readyz",status="503"} 1`) {
		t.Errorf("metrics do not count requests by route and status: %d\n%s", r.status, r.body)
	}
}

func TestErrors(t *testing.T) {
	ts := newTestServer(t, Config{})
	rules["GET /test/internal"], rules["GET /test/panic"] = anyone, anyone
	t.Cleanup(func() { delete(rules, "GET /test/internal"); delete(rules, "GET /test/panic") })
	ts.echo.GET("/test/internal", func(echo.Context) error {
		return fmt.Errorf("query failed: %w", errors.New("password=hunter2 at db.internal"))
	})
	ts.echo.GET("/test/panic", func(echo.Context) error { panic("boom") })

	t.Run("internal errors do not leak", func(t *testing.T) {
		r := do(t, "GET", ts.url+"/test/internal", "")
		e := r.errorOf(t)
		if r.status != 500 || e.Code != gridmap.EINTERNAL || strings.Contains(string(r.body), "hunter2") || e.RequestID == "" {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("a panic is a 500, and the server keeps serving", func(t *testing.T) {
		if r := do(t, "GET", ts.url+"/test/panic", ""); r.status != 500 || strings.Contains(string(r.body), "boom") {
			t.Errorf("%d %s", r.status, r.body)
		}
		if r := do(t, "GET", ts.url+"/healthz", ""); r.status != 200 {
			t.Errorf("after panic: %d", r.status)
		}
	})
	t.Run("unknown endpoint", func(t *testing.T) {
		r := do(t, "GET", ts.url+"/v1/nothing", "")
		if e := r.errorOf(t); r.status != 404 || e.Code != gridmap.ENOTFOUND {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("wrong method", func(t *testing.T) {
		if r := do(t, "DELETE", ts.url+"/v1/layers", ""); r.status != 405 {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
}

func TestLayersAPI(t *testing.T) {
	ts := newTestServer(t, Config{})
	r := do(t, "PUT", ts.url+"/v1/layers/api-layers", `{"name":"测试","levels":["district","street","grid"],"code_pattern":"[A-Z]\\d*"}`)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	r = do(t, "PUT", ts.url+"/v1/layers/api-layers", `{"name":"测试图层","levels":["district","street","grid"]}`)
	if r.status != 200 {
		t.Fatalf("replace: %d %s", r.status, r.body)
	}
	var l gridmap.Layer
	do(t, "GET", ts.url+"/v1/layers/api-layers", "").json(t, &l)
	if l.Name != "测试图层" || l.Tiers["street"] != "street" || l.ToleranceM != 30 || len(l.Counts) != 3 {
		t.Errorf("layer read back: %+v", l)
	}
	var list struct{ Layers []gridmap.Layer }
	do(t, "GET", ts.url+"/v1/layers", "").json(t, &list)
	found := false
	for _, x := range list.Layers {
		found = found || x.ID == "api-layers"
	}
	if !found {
		t.Error("layer not listed")
	}

	bad := []struct{ name, path, body string }{
		{"misspelt field", "/v1/layers/api-layers", `{"levles":["a"]}`},
		{"bad id", "/v1/layers/Bad%20Id", `{"levels":["a"]}`},
		{"no levels", "/v1/layers/api-none", `{"name":"x"}`},
		{"not JSON", "/v1/layers/api-layers", `levels: a`},
	}
	for _, b := range bad {
		t.Run(b.name+" is a 400 that says what to fix", func(t *testing.T) {
			r := do(t, "PUT", ts.url+b.path, b.body)
			if e := r.errorOf(t); r.status != 400 || e.Code != gridmap.EINVALID {
				t.Errorf("%d %s", r.status, r.body)
			}
		})
	}
	if r := do(t, "GET", ts.url+"/v1/layers/api-missing", ""); r.status != 404 {
		t.Errorf("missing layer: %d", r.status)
	}
}

func TestImportAndGridsAPI(t *testing.T) {
	ts := newTestServer(t, Config{ImportLimit: "64K"})
	base := ts.url + "/v1/layers/api-grids"
	good := []string{feat("D", "", square(0, 0, 10))}
	for i := range 12 {
		good = append(good, feat(fmt.Sprintf("S%02d", i), "D", square(float64(i%10), float64(i/10), 1)))
	}
	bad := append(append([]string{}, good...),
		feat("S98", "D", `{"type":"Polygon","coordinates":[[[0,0],[1,1],[1,0],[0,1],[0,0]]]}`),
		feat("S99", "NOPE", square(5, 5, 1)))
	fc := func(fs []string) string {
		return `{"type":"FeatureCollection","features":[` + strings.Join(fs, ",") + `]}`
	}
	withLevels := "?levels=district,street"

	t.Run("bad features: 422 listing each by index and code, nothing written", func(t *testing.T) {
		r := do(t, "POST", base+"/import"+withLevels, fc(bad))
		e := r.errorOf(t)
		if r.status != 422 || e.Code != gridmap.EUNPROCESSABLE || len(e.Details) != 2 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if *e.Details[0].Index != 13 || e.Details[0].Codes[0] != "S98" || e.Details[0].Kind != gridmap.ProblemInvalidGeometry ||
			*e.Details[1].Index != 14 || e.Details[1].Codes[0] != "S99" || e.Details[1].Kind != gridmap.ProblemUnknownParent {
			t.Errorf("details %s", r.body)
		}
		if r := do(t, "GET", base, ""); r.status != 404 {
			t.Errorf("a rejected import left its layer defined: %d %s", r.status, r.body)
		}
	})
	t.Run("import into a missing layer without levels is a 404 that says what to give", func(t *testing.T) {
		r := do(t, "POST", base+"/import", fc(good))
		if e := r.errorOf(t); r.status != 404 || !strings.Contains(e.Message, "levels") {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("skip_invalid imports the rest", func(t *testing.T) {
		r := do(t, "POST", base+"/import"+withLevels+"&skip_invalid=true", fc(bad))
		var res gridmap.ImportResult
		r.json(t, &res)
		if r.status != 200 || res.Created != 13 || len(res.Rejected) != 2 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("body over the import limit is a 413", func(t *testing.T) {
		huge := fc(good) + strings.Repeat(" ", 70<<10)
		if r := do(t, "POST", base+"/import"+withLevels, huge); r.status != 413 {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("grid by code with ETag, attributes and parent", func(t *testing.T) {
		r := do(t, "GET", base+"/grids/S03", "")
		if r.status != 200 || r.header.Get("ETag") != `"1"` || !strings.HasPrefix(r.header.Get("Content-Type"), "application/geo+json") {
			t.Fatalf("%d %v %s", r.status, r.header, r.body)
		}
		var f struct {
			ID         string
			Geometry   struct{ Type string }
			Properties map[string]any
		}
		r.json(t, &f)
		p := f.Properties
		if f.ID != "S03" || f.Geometry.Type != "MultiPolygon" || p["parent"] != "D" || p["level"] != "street" || p["note"] != "kept" || p["version"] != 1.0 || p["valid_to"] != nil {
			t.Errorf("feature %s", r.body)
		}
		if r := do(t, "GET", base+"/grids/S03", "", "If-None-Match", `"1"`); r.status != 304 {
			t.Errorf("If-None-Match: %d", r.status)
		}
		if r := do(t, "GET", base+"/grids/S77", ""); r.status != 404 || r.errorOf(t).Code != gridmap.ENOTFOUND {
			t.Errorf("missing grid: %d %s", r.status, r.body)
		}
	})
	t.Run("grids page by cursor", func(t *testing.T) {
		var codes []string
		url := base + "/grids?level=street&limit=5"
		for pages := 0; pages < 10; pages++ {
			var fc struct {
				Features []struct{ ID string }
				Next     *string
			}
			r := do(t, "GET", url, "")
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			r.json(t, &fc)
			for _, f := range fc.Features {
				codes = append(codes, f.ID)
			}
			if fc.Next == nil {
				break
			}
			url = base + "/grids?level=street&limit=5&cursor=" + *fc.Next
		}
		if len(codes) != 12 || codes[0] != "S00" || codes[11] != "S11" {
			t.Errorf("paged codes %v", codes)
		}
	})
	t.Run("grids by bbox and parent", func(t *testing.T) {
		var fc struct{ Features []struct{ ID string } }
		do(t, "GET", base+"/grids?bbox=0.2,1.2,1.5,1.5", "").json(t, &fc)
		var ids []string
		for _, f := range fc.Features {
			ids = append(ids, f.ID)
		}
		if strings.Join(ids, ",") != "D,S10,S11" {
			t.Errorf("bbox got %v", ids)
		}
		do(t, "GET", base+"/grids?parent=D&limit=1000", "").json(t, &fc)
		if len(fc.Features) != 12 {
			t.Errorf("parent filter got %d", len(fc.Features))
		}
	})
	for _, q := range []string{"bbox=1,2,3", "bbox=3,0,1,1", "bbox=0,0,1,100", "limit=0", "limit=5000", "cursor=%25%25"} {
		t.Run("bad query "+q+" is a 400", func(t *testing.T) {
			if r := do(t, "GET", base+"/grids?"+q, ""); r.status != 400 || r.errorOf(t).Code != gridmap.EINVALID {
				t.Errorf("%d %s", r.status, r.body)
			}
		})
	}
	t.Run("people", func(t *testing.T) {
		r := do(t, "PUT", base+"/grids/S01/people", `{"people":[{"role":"grid_leader","name":"张敏","phone":"13900001111"}]}`)
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var f struct {
			Properties struct{ People []gridmap.Person }
		}
		do(t, "GET", base+"/grids/S01", "").json(t, &f)
		if len(f.Properties.People) != 1 || f.Properties.People[0].Name != "张敏" {
			t.Errorf("people %+v", f.Properties.People)
		}
		if r := do(t, "PUT", base+"/grids/S01/people", `{"people":[{"role":"grid_leader"}]}`); r.status != 400 {
			t.Errorf("person without name: %d", r.status)
		}
	})
}

// signInAsAdmin makes the tests' requests to the server at host (an
// address) carry a new admin token, and returns its secret.
func signInAsAdmin(t testing.TB, access *postgres.AccessStore, host string) string {
	t.Helper()
	secret, err := access.CreateToken(context.Background(), &gridmap.Token{Name: "test-admin-" + strconv.FormatInt(rand.Int64(), 36), Role: gridmap.RoleAdmin})
	if err != nil {
		t.Fatalf("creating the admin token: %v", err)
	}
	adminTokens.Store(host, secret)
	t.Cleanup(func() { adminTokens.Delete(host) })
	return secret
}

// token creates a token with role and scope and returns its secret.
func (ts *testServer) token(t testing.TB, role string, scope *gridmap.Scope) string {
	t.Helper()
	_, secret := ts.namedToken(t, role, scope)
	return secret
}

// namedToken creates a token with role and scope and returns its name and
// secret.
func (ts *testServer) namedToken(t testing.TB, role string, scope *gridmap.Scope) (name, secret string) {
	t.Helper()
	name = role + "-" + strconv.FormatInt(rand.Int64(), 36)
	secret, err := ts.access.CreateToken(context.Background(), &gridmap.Token{Name: name, Role: role, Scope: scope})
	if err != nil {
		t.Fatalf("creating a %s token: %v", role, err)
	}
	return name, secret
}

// bearer is the header pair of a token.
func bearer(secret string) []string { return []string{"Authorization", "Bearer " + secret} }
