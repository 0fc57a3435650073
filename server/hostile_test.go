package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"
)

// hostileClient gives up on a request that hangs (an event stream that
// opened instead of being refused, say) instead of hanging the test, and
// answers with redirects rather than following them.
var hostileClient = &http.Client{Timeout: 2 * time.Minute,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// hostileDo sends one request with an administrator's credential, so what
// refuses a hostile request is the input check, not the authentication;
// with the noAuth header, with no credential at all.
func hostileDo(t *testing.T, ts *testServer, method, path, body string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, ts.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(header, noAuth[0]) {
		header = append(bearer(ts.admin), header...)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := hostileClient.Do(req)
	if err != nil {
		t.Fatalf("%s %.200s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{res.StatusCode, res.Header, b}
}

// refused checks that a hostile request got status want, with the standard
// error body, and returns the error.
func refused(t *testing.T, r response, want int) errorDetail {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d: %.400s", r.status, want, r.body)
	}
	return r.errorOf(t)
}

// refusedOpen311 is refused for the Open311 routes, whose errors have the
// GeoReport v2 shape [{"code", "description"}].
func refusedOpen311(t *testing.T, r response, want int) {
	t.Helper()
	var body []struct {
		Code        int
		Description string
	}
	if r.status != want {
		t.Fatalf("status %d, want %d: %.400s", r.status, want, r.body)
	}
	r.json(t, &body)
	if len(body) != 1 || body[0].Code != want || body[0].Description == "" {
		t.Fatalf("not a GeoReport v2 error: %.400s", r.body)
	}
}

// sqlFragments go into every parameter. unstorable marks text PostgreSQL
// cannot hold in a text column, which is refused even where any other text
// is a harmless value.
var sqlFragments = []struct {
	name, value string
	unstorable  bool
}{
	{"quote and comment", "'; DROP TABLE reports; --", false},
	{"tautology", "1 OR 1=1", false},
	{"placeholder", "$1", false},
	{"NUL", "\x00", true},
	{"invalid UTF-8", "\xff\xfe", true},
	{"very long", "' OR '1'='1' -- " + noise(66_000), false},
}

// noise is n letters and digits no compression shrinks much, so that a
// long value stays long all the way to an index.
func noise(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	x := uint64(0x9E3779B97F4A7C15)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = alphabet[x%uint64(len(alphabet))]
	}
	return string(b)
}

// hostileTables are the tables a refused request must leave as they were.
// The audit log and the record of failed sign-ins are left out: recording
// refused attempts is what they are for.
var hostileTables = []string{"layers", "layer_changes", "grid_versions", "grid_people", "grid_shapes", "departments",
	"categories", "calendar_days", "reports", "report_events", "report_tasks", "outbox",
	"accounts", "sessions", "tokens", "signin_links"}

// dbState counts the rows of hostileTables and reads every layer's
// data_version and the configuration tables' contents.
func dbState(t *testing.T) map[string]string {
	t.Helper()
	db, ctx := pgtest.Shared(t), context.Background()
	state := map[string]string{}
	for _, table := range hostileTables {
		var n int64
		if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{table}.Sanitize()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		state[table+" rows"] = strconv.FormatInt(n, 10)
	}
	for _, table := range []string{"layers", "categories", "departments", "calendar_days"} {
		var sum string
		if err := db.Pool.QueryRow(ctx, "SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM "+
			pgx.Identifier{table}.Sanitize()+" t").Scan(&sum); err != nil {
			t.Fatal(err)
		}
		state[table+" content"] = sum
	}
	rows, err := db.Pool.Query(ctx, `SELECT id, data_version FROM layers`)
	if err != nil {
		t.Fatal(err)
	}
	versions, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var id string
		var v int64
		err := r.Scan(&id, &v)
		return [2]string{id, strconv.FormatInt(v, 10)}, err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range versions {
		state["layer "+v[0]+" data_version"] = v[1]
	}
	return state
}

// hostileFixture loads what the hostile requests aim at: layer "hostile"
// (district D at 121.50-121.52 E, 31.50-31.52 N, streets S1-S4 its
// quarters, codes a capital and digits), department hostile-d, category
// hostile-c and one report in S1. It returns the report's id.
func hostileFixture(t *testing.T, ts *testServer) string {
	t.Helper()
	quarter := func(i int) string { return square(121.50+0.01*float64(i%2), 31.50+0.01*float64(i/2), 0.01) }
	features := []string{feat("D", "", square(121.50, 31.50, 0.02))}
	for i := range 4 {
		features = append(features, feat(fmt.Sprintf("S%d", i+1), "D", quarter(i)))
	}
	setup := []struct{ method, path, body string }{
		{"PUT", "/v1/layers/hostile", `{"levels":["district","street"],"code_pattern":"[A-Z][0-9]*"}`},
		{"POST", "/v1/layers/hostile/import", `{"type":"FeatureCollection","features":[` + strings.Join(features, ",") + `]}`},
		{"PUT", "/v1/departments/hostile-d", `{"name":"城管"}`},
		{"PUT", "/v1/categories/hostile-c", `{"name":"市容环境","departments":["hostile-d"],"limit":{"value":4,"clock":"working_hours"}}`},
	}
	for _, s := range setup {
		if r := hostileDo(t, ts, s.method, s.path, s.body); r.status/100 != 2 {
			t.Fatalf("%s %s: %d %s", s.method, s.path, r.status, r.body)
		}
	}
	eventually(t, "the layer reaches the lookup index", func() bool {
		return strings.Contains(string(hostileDo(t, ts, "GET", "/v1/lookup?layer=hostile&lon=121.505&lat=31.505", "").body), `"S1"`)
	})
	r := hostileDo(t, ts, "POST", "/v1/reports", `{"external_id":"hostile-1","category":"hostile-c","description":"占道经营",
		"location":{"type":"Point","coordinates":[121.505,31.505]}}`)
	var created struct{ ID int64 }
	r.json(t, &created)
	if r.status != 201 {
		t.Fatalf("report: %d %s", r.status, r.body)
	}
	return strconv.FormatInt(created.ID, 10)
}

// TestHostileInput sends malformed, oversized and hostile requests to every
// route: each is answered with a 4xx and the standard error body (never a
// 5xx, never a 2xx), and none changes anything.
func TestHostileInput(t *testing.T) {
	ts := newTestServer(t, Config{})
	report := hostileFixture(t, ts)
	forgetFailedSignIns(t)
	before := dbState(t)
	audited := hostileAudited(t, ts)

	t.Run("SQL fragments in query and path parameters", func(t *testing.T) { hostileParameters(t, ts) })
	t.Run("SQL fragments in the fields of write requests", func(t *testing.T) { hostileFields(t, ts, report) })
	t.Run("huge and non-finite coordinates", func(t *testing.T) { hostileCoordinates(t, ts) })
	t.Run("JSON nested 10,000 deep", func(t *testing.T) { hostileNesting(t, ts, report) })
	t.Run("bodies of 11 MB", func(t *testing.T) { hostileBodies(t, ts, report) })
	t.Run("geometries and changesets over the limits", func(t *testing.T) { hostileSizes(t, ts) })

	t.Run("nothing changed", func(t *testing.T) {
		after := dbState(t)
		for _, k := range slices.Sorted(maps.Keys(before)) {
			if after[k] != before[k] {
				t.Errorf("%s: %s before, %s after", k, before[k], after[k])
			}
		}
	})
	for _, what := range slices.Sorted(maps.Keys(audited)) {
		t.Run(what+" is in the audit log", func(t *testing.T) {
			db := pgtest.Shared(t)
			eventuallyWithin(t, 20*time.Second, "the entry reaches the audit log", func() bool {
				var n int
				err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE request_id = $1`, audited[what]).Scan(&n)
				return err == nil && n == 1
			})
		})
	}
	t.Run("SQL fragments in free text are stored and read back as they are", func(t *testing.T) {
		for i, f := range sqlFragments {
			if f.unstorable {
				continue
			}
			text, _ := json.Marshal(f.value)
			r := hostileDo(t, ts, "POST", "/v1/reports", fmt.Sprintf(`{"external_id":"hostile-text-%d","category":"hostile-c",
				"description":%s,"source":%s,"location":{"type":"Point","coordinates":[121.505,31.505]}}`, i, text, text))
			var stored struct {
				ID                  int64
				Description, Source string
			}
			r.json(t, &stored)
			if r.status != 201 || stored.Description != f.value || stored.Source != f.value {
				t.Errorf("%s: %d %.300s", f.name, r.status, r.body)
			}
		}
		if got := dbState(t)["reports rows"]; got == before["reports rows"] {
			t.Errorf("free-text reports were not stored: %s rows", got)
		}
	})
}

// forgetFailedSignIns deletes, when the test ends, the failed sign-ins it
// recorded: they slow down sign-ins from this address for a quarter of an
// hour, the other tests' included.
func forgetFailedSignIns(t *testing.T) {
	db := pgtest.Shared(t)
	var last int64
	if err := db.Pool.QueryRow(context.Background(), `SELECT coalesce(max(id), 0) FROM signin_failures`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := db.Pool.Exec(context.Background(), `DELETE FROM signin_failures WHERE id > $1`, last); err != nil {
			t.Error(err)
		}
	})
}

// hostileAudited sends refused writes whose path or sign-in name the
// database cannot hold as it is (a NUL; 66,000 characters, for an index
// entry of at most 2,704 bytes), and returns their request ids by what they
// are: each must still reach the audit log. (Entries are written in
// batches, so one that fails takes the others of its batch with it.)
func hostileAudited(t *testing.T, ts *testServer) map[string]string {
	t.Helper()
	long := noise(66_000)
	// The writes come from an admin (anonymous refusals are recorded once
	// a minute per address); sign-in attempts are recorded each.
	requests := []struct {
		what, method, path, body string
		header                   []string
	}{
		{"a write with a NUL in its path", "DELETE", "/v1/layers/hostile/grids/%00", "", nil},
		{"a write with a 66,000-character path", "DELETE", "/v1/layers/hostile/grids/" + long, "", nil},
		{"a sign-in with a 66,000-character name", "POST", "/v1/session", `{"username":"` + long + `","password":"x"}`, noAuth},
	}
	ids := map[string]string{}
	for _, r := range requests {
		res := hostileDo(t, ts, r.method, r.path, r.body, r.header...)
		if res.status < 400 || res.status >= 500 {
			t.Errorf("%s: %d %.300s", r.what, res.status, res.body)
		}
		ids[r.what] = res.header.Get(echo.HeaderXRequestID)
	}
	return ids
}

// hostileParameters puts each fragment into each parameter of every GET
// route that takes one (and the headers and credentials read on the way).
// An unknown layer, grid, report, category or tileset is a 404 and a
// malformed parameter a 400. A free-text filter (empty is what its answer
// holds then) is just a value nothing matches: 200 with nothing found. Text
// PostgreSQL cannot hold (NUL, invalid UTF-8) is a 400 in any parameter.
func hostileParameters(t *testing.T, ts *testServer) {
	p, q := url.PathEscape, url.QueryEscape
	grids := "/v1/layers/hostile/grids"
	lookup := "/v1/lookup?layer=hostile&lon=121.505&lat=31.505"
	cases := []struct {
		name    string
		path    func(f string) string
		want    int
		empty   string // free-text filter: the body of its 200 answer holds this
		open311 bool
	}{
		{"layer", func(f string) string { return "/v1/layers/" + p(f) }, 404, "", false},
		{"layer of grids", func(f string) string { return "/v1/layers/" + p(f) + "/grids" }, 404, "", false},
		{"grids bbox", func(f string) string { return grids + "?bbox=" + q(f) }, 400, "", false},
		{"grids level", func(f string) string { return grids + "?level=" + q(f) }, 200, `"features":[]`, false},
		{"grids parent", func(f string) string { return grids + "?parent=" + q(f) }, 200, `"features":[]`, false},
		{"grids limit", func(f string) string { return grids + "?limit=" + q(f) }, 400, "", false},
		{"grids cursor", func(f string) string { return grids + "?cursor=" + q(f) }, 400, "", false},
		{"grid code", func(f string) string { return grids + "/" + p(f) }, 404, "", false},
		{"grid layer", func(f string) string { return "/v1/layers/" + p(f) + "/grids/S1" }, 404, "", false},
		{"grid at", func(f string) string { return grids + "/S1?at=" + q(f) }, 400, "", false},
		{"history code", func(f string) string { return grids + "/" + p(f) + "/history" }, 404, "", false},
		{"history layer", func(f string) string { return "/v1/layers/" + p(f) + "/grids/S1/history" }, 404, "", false},
		{"coverage layer", func(f string) string { return "/v1/layers/" + p(f) + "/coverage" }, 404, "", false},
		{"coverage parent", func(f string) string { return "/v1/layers/hostile/coverage?parent=" + q(f) }, 404, "", false},
		{"lookup lon", func(f string) string { return "/v1/lookup?lat=31.505&lon=" + q(f) }, 400, "", false},
		{"lookup lat", func(f string) string { return "/v1/lookup?lon=121.505&lat=" + q(f) }, 400, "", false},
		{"lookup crs", func(f string) string { return lookup + "&crs=" + q(f) }, 400, "", false},
		{"lookup layer", func(f string) string { return "/v1/lookup?lon=121.505&lat=31.505&layer=" + q(f) }, 404, "", false},
		{"lookup at", func(f string) string { return lookup + "&at=" + q(f) }, 400, "", false},
		{"lookup tolerance_m", func(f string) string { return lookup + "&tolerance_m=" + q(f) }, 400, "", false},
		{"lookup accuracy_m", func(f string) string { return lookup + "&accuracy_m=" + q(f) }, 400, "", false},
		{"reports status", func(f string) string { return "/v1/reports?status=" + q(f) }, 400, "", false},
		{"reports grid", func(f string) string { return "/v1/reports?grid=" + q(f) }, 200, `"reports":[]`, false},
		{"reports bbox", func(f string) string { return "/v1/reports?bbox=" + q(f) }, 400, "", false},
		{"reports category", func(f string) string { return "/v1/reports?category=" + q(f) }, 400, "", false},
		{"reports since", func(f string) string { return "/v1/reports?since=" + q(f) }, 400, "", false},
		{"reports limit", func(f string) string { return "/v1/reports?limit=" + q(f) }, 400, "", false},
		{"reports cursor", func(f string) string { return "/v1/reports?cursor=" + q(f) }, 400, "", false},
		{"report id", func(f string) string { return "/v1/reports/" + p(f) }, 404, "", false},
		{"report events id", func(f string) string { return "/v1/reports/" + p(f) + "/events" }, 404, "", false},
		{"events since", func(f string) string { return "/v1/events?since=" + q(f) }, 400, "", false},
		{"category code", func(f string) string { return "/v1/categories/" + p(f) }, 404, "", false},
		{"department code", func(f string) string { return "/v1/departments/" + p(f) }, 404, "", false},
		{"tile tileset", func(f string) string { return "/tiles/" + p(f) + "/0/0/0.mvt" }, 404, "", false},
		{"tile z", func(f string) string { return "/tiles/hostile/" + p(f) + "/0/0.mvt" }, 400, "", false},
		{"tile x", func(f string) string { return "/tiles/hostile/0/" + p(f) + "/0.mvt" }, 400, "", false},
		{"tile y", func(f string) string { return "/tiles/hostile/0/0/" + p(f) + ".mvt" }, 400, "", false},
		{"tile status", func(f string) string { return "/tiles/reports/0/0/0.mvt?status=" + q(f) }, 400, "", false},
		{"tile category", func(f string) string { return "/tiles/reports/0/0/0.mvt?category=" + q(f) }, 400, "", false},
		{"tile since", func(f string) string { return "/tiles/reports/0/0/0.mvt?since=" + q(f) }, 400, "", false},
		{"tileset", func(f string) string { return "/tiles/" + p(f) + ".json" }, 404, "", false},
		{"tileset status", func(f string) string { return "/tiles/reports.json?status=" + q(f) }, 400, "", false},
		{"user", func(f string) string { return "/v1/users/" + p(f) }, 404, "", false},
		{"audit actor", func(f string) string { return "/v1/audit?actor=" + q(f) }, 200, `"entries":[]`, false},
		{"audit target", func(f string) string { return "/v1/audit?target=" + q(f) }, 200, `"entries":[]`, false},
		{"audit from", func(f string) string { return "/v1/audit?from=" + q(f) }, 400, "", false},
		{"audit to", func(f string) string { return "/v1/audit?to=" + q(f) }, 400, "", false},
		{"audit limit", func(f string) string { return "/v1/audit?limit=" + q(f) }, 400, "", false},
		{"audit cursor", func(f string) string { return "/v1/audit?cursor=" + q(f) }, 400, "", false},
		{"open311 service", func(f string) string { return "/open311/v2/services/" + p(f) + ".json" }, 404, "", true},
		{"open311 request id", func(f string) string { return "/open311/v2/requests/" + p(f) + ".json" }, 404, "", true},
		{"open311 request ids", func(f string) string { return "/open311/v2/requests.json?service_request_id=" + q(f) }, 400, "", true},
		{"open311 service_code", func(f string) string { return "/open311/v2/requests.json?service_code=" + q(f) }, 400, "", true},
		{"open311 status", func(f string) string { return "/open311/v2/requests.json?status=" + q(f) }, 400, "", true},
		{"open311 start_date", func(f string) string { return "/open311/v2/requests.json?start_date=" + q(f) }, 400, "", true},
		{"open311 end_date", func(f string) string { return "/open311/v2/requests.json?end_date=" + q(f) }, 400, "", true},
		{"open311 bbox", func(f string) string { return "/open311/v2/requests.json?bbox=" + q(f) }, 400, "", true},
	}
	for _, c := range cases {
		for _, f := range sqlFragments {
			t.Run(c.name+" "+f.name, func(t *testing.T) {
				r := hostileDo(t, ts, "GET", c.path(f.value), "")
				switch {
				case f.unstorable && c.open311:
					// Refused before any handler, in GeoReport's shape.
					refusedOpen311(t, r, 400)
				case f.unstorable:
					refused(t, r, 400)
				case c.empty != "":
					if r.status != 200 || !strings.Contains(string(r.body), c.empty) {
						t.Errorf("a free-text filter matching nothing: %d %.300s, want 200 with %s", r.status, r.body, c.empty)
					}
				case c.open311:
					refusedOpen311(t, r, c.want)
				default:
					refused(t, r, c.want)
				}
			})
		}
	}
	for _, f := range sqlFragments {
		t.Run("sign-in link "+f.name, func(t *testing.T) {
			// A link is opened by a browser: an unknown one goes to the
			// sign-in page, saying so.
			r := hostileDo(t, ts, "GET", "/signin/"+p(f.value), "", noAuth...)
			if f.unstorable {
				refused(t, r, 400)
			} else if r.status != http.StatusSeeOther || r.header.Get("Location") != "/login?link=used" {
				t.Errorf("%d %s %.300s, want 303 to /login?link=used", r.status, r.header.Get("Location"), r.body)
			}
		})
		t.Run("open311 api_key "+f.name, func(t *testing.T) {
			// Refused by authentication, before the Open311 handlers, in
			// GeoReport's shape all the same.
			refusedOpen311(t, hostileDo(t, ts, "GET", "/open311/v2/requests.json?api_key="+q(f.value), "", noAuth...), 401)
		})
		if strings.ContainsRune(f.value, 0) {
			continue // no HTTP client sends a NUL in a header
		}
		t.Run("Last-Event-ID "+f.name, func(t *testing.T) {
			refused(t, hostileDo(t, ts, "GET", "/v1/events", "", "Last-Event-ID", f.value), 400)
		})
		t.Run("Authorization "+f.name, func(t *testing.T) {
			refused(t, hostileDo(t, ts, "GET", "/v1/layers", "", "Authorization", "Bearer "+f.value), 401)
		})
	}
}

// hostileFields puts each fragment into one field of a write request that
// names something (a code, a level, a clock) and so is checked; free text
// (names, descriptions) is a value like any other and stored as it is.
func hostileFields(t *testing.T, ts *testServer, report string) {
	p := url.PathEscape
	street := `{"type":"Feature","properties":{"level":"street","parent":"D"},"geometry":` + square(121.50, 31.50, 0.01) + `}`
	line := `{"type":"LineString","coordinates":[[121.505,31.499],[121.505,31.511]]}`
	cases := []struct {
		name         string
		method, path string
		body         string // %[1]s is the fragment as a JSON string
		header       string // "If-Match" or "": the fragment goes in that header
		want         int
		// wantLong, when set, is the answer to the very long fragment: a
		// grid code of a changeset longer than gridmap.MaxCodeLength is
		// malformed before the layer is asked about it.
		wantLong int
	}{
		{"layer id", "PUT", "/v1/layers/{}", `{"levels":["district"]}`, "", 400, 0},
		{"layer body id", "PUT", "/v1/layers/hostile", `{"id":%[1]s,"levels":["district","street"]}`, "", 400, 0},
		{"layer levels", "PUT", "/v1/layers/hostile", `{"levels":["district",%[1]s]}`, "", 400, 0},
		{"layer kind", "PUT", "/v1/layers/hostile", `{"levels":["district","street"],"kind":%[1]s}`, "", 400, 0},
		{"layer tiers level", "PUT", "/v1/layers/hostile", `{"levels":["district","street"],"tiers":{%[1]s:"grid"}}`, "", 400, 0},
		{"layer tiers tier", "PUT", "/v1/layers/hostile", `{"levels":["district","street"],"tiers":{"street":%[1]s}}`, "", 400, 0},
		{"layer zooms level", "PUT", "/v1/layers/hostile", `{"levels":["district","street"],"zooms":{%[1]s:[0,1]}}`, "", 400, 0},
		{"grid code", "PUT", "/v1/layers/hostile/grids/{}", street, "", 422, 400},
		{"grid layer", "PUT", "/v1/layers/{}/grids/S1", street, "", 404, 0},
		{"grid body code", "PUT", "/v1/layers/hostile/grids/S1", `{"type":"Feature","properties":{"code":%[1]s},"geometry":null}`, "", 400, 0},
		{"grid level", "PUT", "/v1/layers/hostile/grids/S1", `{"type":"Feature","properties":{"level":%[1]s},"geometry":null}`, "", 422, 0},
		{"grid parent", "PUT", "/v1/layers/hostile/grids/S1", `{"type":"Feature","properties":{"parent":%[1]s},"geometry":null}`, "", 422, 0},
		{"grid If-Match", "PUT", "/v1/layers/hostile/grids/S1", street, "If-Match", 400, 0},
		{"delete code", "DELETE", "/v1/layers/hostile/grids/{}", "", "", 404, 400},
		{"delete layer", "DELETE", "/v1/layers/{}/grids/S1", "", "", 404, 0},
		{"delete If-Match", "DELETE", "/v1/layers/hostile/grids/S1", "", "If-Match", 400, 0},
		{"people code", "PUT", "/v1/layers/hostile/grids/{}/people", `{"people":[]}`, "", 404, 0},
		{"people layer", "PUT", "/v1/layers/{}/grids/S1/people", `{"people":[]}`, "", 404, 0},
		{"changeset layer", "POST", "/v1/layers/{}/changesets", `{"operations":[{"op":"delete","code":"S1"}]}`, "", 404, 0},
		{"changeset op", "POST", "/v1/layers/hostile/changesets", `{"operations":[{"op":%[1]s,"code":"S1"}]}`, "", 400, 0},
		{"changeset if_match", "POST", "/v1/layers/hostile/changesets", `{"operations":[{"op":"delete","code":"S4","if_match":%[1]s}]}`, "", 400, 0},
		{"delete op code", "POST", "/v1/layers/hostile/changesets", `{"operations":[{"op":"delete","code":%[1]s}]}`, "", 404, 400},
		{"put op code", "POST", "/v1/layers/hostile/changesets", `{"operations":[{"op":"put","code":%[1]s,"feature":` + street + `}]}`, "", 422, 400},
		{"merge codes", "POST", "/v1/layers/hostile/changesets", `{"operations":[{"op":"merge","codes":[%[1]s,"S1"],"into":"S1"}]}`, "", 404, 400},
		{"merge into", "POST", "/v1/layers/hostile/changesets", `{"operations":[{"op":"merge","codes":["S1","S2"],"into":%[1]s}]}`, "", 422, 400},
		{"split code", "POST", "/v1/layers/hostile/changesets", `{"operations":[{"op":"split","code":%[1]s,"line":` + line + `,"new_codes":["S7","S8"]}]}`, "", 404, 400},
		{"split new code", "POST", "/v1/layers/hostile/changesets", `{"operations":[{"op":"split","code":"S1","line":` + line + `,"new_codes":[%[1]s,"S8"]}]}`, "", 422, 400},
		{"move_edge code", "POST", "/v1/layers/hostile/changesets", `{"operations":[{"op":"move_edge","code":%[1]s,"geometry":` + square(121.50, 31.50, 0.01) + `}]}`, "", 404, 400},
		{"transfer from", "POST", "/v1/layers/hostile/changesets", `{"operations":[{"op":"transfer","from":%[1]s,"to":"S1","area":` + square(121.50, 31.50, 0.005) + `}]}`, "", 404, 400},
		{"transfer to", "POST", "/v1/layers/hostile/changesets", `{"operations":[{"op":"transfer","from":"S1","to":%[1]s,"area":` + square(121.50, 31.50, 0.005) + `}]}`, "", 404, 400},
		{"import layer", "POST", "/v1/layers/{}/import", `{"type":"FeatureCollection","features":[]}`, "", 404, 0},
		{"import code", "POST", "/v1/layers/hostile/import", `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":%[1]s,"level":"street","parent":"D"},"geometry":` + square(121.50, 31.50, 0.01) + `}]}`, "", 422, 0},
		{"import level", "POST", "/v1/layers/hostile/import", `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"S1","level":%[1]s,"parent":"D"},"geometry":` + square(121.50, 31.50, 0.01) + `}]}`, "", 422, 0},
		{"import parent", "POST", "/v1/layers/hostile/import", `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"S1","level":"street","parent":%[1]s},"geometry":` + square(121.50, 31.50, 0.01) + `}]}`, "", 422, 0},
		{"lookup crs", "POST", "/v1/lookup", `{"points":[[121.505,31.505]],"crs":%[1]s}`, "", 400, 0},
		{"lookup layer", "POST", "/v1/lookup", `{"points":[[121.505,31.505]],"layer":%[1]s}`, "", 404, 0},
		{"lookup at", "POST", "/v1/lookup", `{"points":[[121.505,31.505]],"at":%[1]s}`, "", 400, 0},
		{"report category", "POST", "/v1/reports", `{"external_id":"hostile-2","category":%[1]s,"location":{"type":"Point","coordinates":[121.505,31.505]}}`, "", 422, 0},
		{"report crs", "POST", "/v1/reports", `{"external_id":"hostile-2","category":"hostile-c","crs":%[1]s,"location":{"type":"Point","coordinates":[121.505,31.505]}}`, "", 422, 0},
		{"report reported_at", "POST", "/v1/reports", `{"external_id":"hostile-2","category":"hostile-c","reported_at":%[1]s,"location":{"type":"Point","coordinates":[121.505,31.505]}}`, "", 400, 0},
		{"event report id", "POST", "/v1/reports/{}/events", `{"action":"register"}`, "", 404, 0},
		{"event action", "POST", "/v1/reports/" + report + "/events", `{"action":%[1]s}`, "", 409, 0},
		{"category code", "PUT", "/v1/categories/{}", `{"name":"x","limit":{"value":4,"clock":"working_hours"}}`, "", 400, 0},
		{"category departments", "PUT", "/v1/categories/hostile-c", `{"name":"x","departments":[%[1]s],"limit":{"value":4,"clock":"working_hours"}}`, "", 400, 0},
		{"category parent", "PUT", "/v1/categories/hostile-c", `{"name":"x","parent":%[1]s,"limit":{"value":4,"clock":"working_hours"}}`, "", 400, 0},
		{"category clock", "PUT", "/v1/categories/hostile-c", `{"name":"x","limit":{"value":4,"clock":%[1]s}}`, "", 400, 0},
		{"category step", "PUT", "/v1/categories/hostile-c", `{"name":"x","limit":{"value":4,"clock":"working_hours"},"step_limits":{%[1]s:{"value":1,"clock":"working_hours"}}}`, "", 400, 0},
		{"calendar date", "PUT", "/v1/calendar/{}", `{"working":false}`, "", 400, 0},
		{"department code", "PUT", "/v1/departments/{}", `{"name":"x"}`, "", 400, 0},
		{"department layer", "PUT", "/v1/departments/hostile-d", `{"name":"x","layer":%[1]s}`, "", 400, 0},
		{"department webhook_url", "PUT", "/v1/departments/hostile-d", `{"name":"x","webhook_url":%[1]s}`, "", 400, 0},
		{"user username", "POST", "/v1/users", `{"username":%[1]s,"role":"viewer"}`, "", 400, 0},
		{"user role", "POST", "/v1/users", `{"username":"hostile-u","role":%[1]s}`, "", 400, 0},
		{"user scope layer", "POST", "/v1/users", `{"username":"hostile-u","role":"viewer","scope":{"layer":%[1]s,"code":"S1"}}`, "", 400, 0},
		{"user scope code", "POST", "/v1/users", `{"username":"hostile-u","role":"viewer","scope":{"layer":"hostile","code":%[1]s}}`, "", 400, 0},
		{"user change", "PATCH", "/v1/users/{}", `{"display_name":"x"}`, "", 404, 0},
		{"user change role", "PATCH", "/v1/users/hostile-nobody", `{"role":%[1]s}`, "", 404, 0},
		{"token name", "POST", "/v1/tokens", `{"name":%[1]s,"role":"viewer"}`, "", 400, 0},
		{"token role", "POST", "/v1/tokens", `{"name":"hostile-t","role":%[1]s}`, "", 400, 0},
		{"token expires_in", "POST", "/v1/tokens", `{"name":"hostile-t","role":"viewer","expires_in":%[1]s}`, "", 400, 0},
		{"token scope", "POST", "/v1/tokens", `{"name":"hostile-t","role":"viewer","scope":{"layer":"hostile","code":%[1]s}}`, "", 400, 0},
		{"token revoke", "DELETE", "/v1/tokens/{}", "", "", 404, 0},
	}
	for _, c := range cases {
		for _, f := range sqlFragments {
			if c.header != "" && strings.ContainsRune(f.value, 0) {
				continue // no HTTP client sends a NUL in a header
			}
			t.Run(c.name+" "+f.name, func(t *testing.T) {
				text, _ := json.Marshal(f.value)
				path := strings.ReplaceAll(c.path, "{}", p(f.value))
				body := c.body
				if strings.Contains(body, "%[1]s") {
					body = fmt.Sprintf(body, text)
				}
				var header []string
				if c.header != "" {
					header = []string{c.header, f.value}
				}
				want := c.want
				switch {
				case f.unstorable && strings.Contains(c.path, "{}"):
					want = 400 // a path parameter PostgreSQL cannot hold
				case strings.ContainsRune(f.value, 0) && strings.Contains(c.body, "%[1]s"):
					want = 400 // \u0000 in JSON text, refused as the body is read
				case f.name == "very long" && c.wantLong != 0:
					want = c.wantLong
				}
				refused(t, hostileDo(t, ts, c.method, path, body, header...), want)
			})
		}
	}
	// A failed sign-in is a 401, or a 429 once this address has failed
	// often (other tests sign in wrongly from it too).
	for _, field := range []string{"username", "password"} {
		for _, f := range sqlFragments {
			t.Run("sign-in "+field+" "+f.name, func(t *testing.T) {
				text, _ := json.Marshal(f.value)
				body := `{"username":"hostile-nobody","password":"x"}`
				body = strings.Replace(body, map[string]string{"username": `"hostile-nobody"`, "password": `"x"`}[field], string(text), 1)
				r := hostileDo(t, ts, "POST", "/v1/session", body, noAuth...)
				switch {
				case strings.ContainsRune(f.value, 0):
					refused(t, r, 400)
				case r.status == http.StatusTooManyRequests:
					refused(t, r, 429)
				default:
					refused(t, r, 401)
				}
			})
		}
	}
	// Open311 takes forms. unstorable is the answer to text PostgreSQL cannot
	// hold: a crs is checked against the list of systems before that.
	form := []struct {
		name, field      string
		want, unstorable int
	}{{"service_code", "service_code", 422, 400}, {"lat", "lat", 400, 400}, {"long", "long", 400, 400}, {"crs", "crs", 422, 422}}
	for _, c := range form {
		for _, f := range sqlFragments {
			t.Run("open311 "+c.name+" "+f.name, func(t *testing.T) {
				v := url.Values{"service_code": {"hostile-c"}, "lat": {"31.505"}, "long": {"121.505"}, "external_id": {"hostile-3"}}
				v.Set(c.field, f.value)
				want := c.want
				if f.unstorable {
					want = c.unstorable
				}
				refusedOpen311(t, hostileDo(t, ts, "POST", "/open311/v2/requests.json", v.Encode(),
					"Content-Type", "application/x-www-form-urlencoded"), want)
			})
		}
	}
}

// hostileCoordinates sends numbers no longitude or latitude can be, and
// distances no tolerance or accuracy can be.
func hostileCoordinates(t *testing.T, ts *testServer) {
	// 1e400 does not fit a float64: JSON holding it is refused as it is
	// decoded (400), or, in an import, its feature is rejected (422).
	huge := []string{"1e308", "-1e308", "1e10", "-1e10", "1e400"}
	notNumbers := []string{"NaN", "Inf", "-Inf"} // numbers to strconv.ParseFloat, not to JSON
	point := func(lon, lat string) string { return `{"type":"Point","coordinates":[` + lon + `,` + lat + `]}` }
	polygon := func(n string) string {
		return `{"type":"Polygon","coordinates":[[[121.50,31.50],[` + n + `,31.50],[121.51,` + n + `],[121.50,31.51],[121.50,31.50]]]}`
	}
	report := func(fields string) string {
		return `{"external_id":"hostile-4","category":"hostile-c",` + fields + `}`
	}
	type request struct {
		method, path, body string
		want               int
	}
	var cases []request
	for _, n := range append(slices.Clone(huge), notNumbers...) {
		cases = append(cases,
			request{"GET", "/v1/lookup?lon=" + n + "&lat=31.505", "", 400},
			request{"GET", "/v1/lookup?lon=121.505&lat=" + n, "", 400},
			request{"GET", "/v1/lookup?crs=gcj02&lon=" + n + "&lat=" + n, "", 400},
			request{"GET", "/v1/lookup?crs=bd09&lon=" + n + "&lat=31.505", "", 400},
			request{"GET", "/v1/lookup?lon=121.505&lat=31.505&tolerance_m=" + n, "", 400},
			request{"GET", "/v1/lookup?lon=121.505&lat=31.505&accuracy_m=" + n, "", 400},
			request{"GET", "/v1/layers/hostile/grids?bbox=" + n + ",0,1,1", "", 400},
			request{"GET", "/v1/layers/hostile/grids?bbox=0,0,1," + n, "", 400},
			request{"GET", "/v1/reports?bbox=0," + n + ",1,1", "", 400},
			request{"GET", "/open311/v2/requests.json?bbox=" + n + ",0,1,1", "", 400},
		)
	}
	for _, n := range huge {
		json400 := func(want int) int {
			if n == "1e400" {
				return 400
			}
			return want
		}
		cases = append(cases,
			request{"POST", "/v1/lookup", `{"points":[[` + n + `,31.505]]}`, 400},
			request{"POST", "/v1/lookup", `{"points":[[121.505,31.505],[121.505,` + n + `]],"crs":"gcj02"}`, 400},
			request{"POST", "/v1/lookup", `{"points":[[121.505,31.505]],"tolerance_m":` + n + `}`, 400},
			request{"POST", "/v1/lookup", `{"points":[[121.505,31.505]],"accuracy_m":` + n + `}`, 400},
			request{"POST", "/v1/reports", report(`"location":` + point(n, "31.505")), json400(422)},
			request{"POST", "/v1/reports", report(`"location":` + point("121.505", n)), json400(422)},
			request{"POST", "/v1/reports", report(`"crs":"bd09","location":` + polygon(n)), json400(422)},
			request{"POST", "/v1/reports", report(`"accuracy_m":` + n + `,"location":` + point("121.505", "31.505")), json400(422)},
			request{"PUT", "/v1/layers/hostile/grids/S1", `{"type":"Feature","properties":{},"geometry":` + polygon(n) + `}`, json400(422)},
			request{"POST", "/v1/layers/hostile/changesets", `{"operations":[{"op":"move_edge","code":"S1","geometry":` + polygon(n) + `}]}`, json400(422)},
			request{"POST", "/v1/layers/hostile/changesets", `{"operations":[{"op":"transfer","from":"S1","to":"S2","area":` + polygon(n) + `}]}`, json400(422)},
			request{"POST", "/v1/layers/hostile/changesets", `{"operations":[{"op":"split","code":"S1","new_codes":["S7","S8"],
				"line":{"type":"LineString","coordinates":[[121.505,31.499],[` + n + `,31.511]]}}]}`, 400},
			request{"POST", "/v1/layers/hostile/import", `{"type":"FeatureCollection","features":[{"type":"Feature",
				"properties":{"code":"S1","level":"street","parent":"D"},"geometry":` + polygon(n) + `}]}`, 422},
			request{"PUT", "/v1/layers/hostile", `{"levels":["district","street"],"tolerance_m":` + n + `}`, 400},
			request{"PUT", "/v1/layers/hostile", `{"levels":["district","street"],"snap_m":` + n + `}`, 400},
			request{"PUT", "/v1/categories/hostile-c", `{"name":"x","limit":{"value":` + n + `,"clock":"working_hours"}}`, 400},
		)
	}
	// Just past the edge of the world.
	for _, p := range [][2]string{{"180.000001", "31.505"}, {"-180.000001", "31.505"}, {"121.505", "90.000001"}, {"121.505", "-90.000001"}} {
		cases = append(cases,
			request{"GET", "/v1/lookup?lon=" + p[0] + "&lat=" + p[1], "", 400},
			request{"POST", "/v1/lookup", `{"points":[[` + p[0] + `,` + p[1] + `]]}`, 400},
			request{"POST", "/v1/reports", report(`"location":` + point(p[0], p[1])), 422},
		)
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path+" "+c.body, func(t *testing.T) {
			r := hostileDo(t, ts, c.method, c.path, c.body)
			if strings.HasPrefix(c.path, "/open311/") {
				refusedOpen311(t, r, c.want)
			} else {
				refused(t, r, c.want)
			}
		})
	}
	for _, n := range []string{`"NaN"`, `"Infinity"`, `"1e308"`, `[]`, `{}`} {
		t.Run("coordinate "+n, func(t *testing.T) {
			refused(t, hostileDo(t, ts, "POST", "/v1/reports", report(`"location":`+point(n, "31.505"))), 400)
			refused(t, hostileDo(t, ts, "PUT", "/v1/layers/hostile/grids/S1", `{"type":"Feature","properties":{},"geometry":`+polygon(n)+`}`), 400)
			refused(t, hostileDo(t, ts, "POST", "/v1/lookup", `{"points":[[`+n+`,31.505]]}`), 400)
		})
	}
	for _, form := range []string{"lat=1e308&long=121.505", "lat=31.505&long=-1e308", "lat=NaN&long=121.505", "lat=31.505&long=1e10"} {
		t.Run("open311 "+form, func(t *testing.T) {
			refusedOpen311(t, hostileDo(t, ts, "POST", "/open311/v2/requests.json", "service_code=hostile-c&external_id=hostile-5&"+form,
				"Content-Type", "application/x-www-form-urlencoded"), 400)
		})
	}
}

// jsonRoutes are the routes that take a JSON body. The lookup batch has a
// parser of its own that never nests.
func jsonRoutes(report string) []struct{ method, path string } {
	return []struct{ method, path string }{
		{"PUT", "/v1/layers/hostile"},
		{"PUT", "/v1/layers/hostile/grids/S1"},
		{"POST", "/v1/layers/hostile/changesets"},
		{"PUT", "/v1/layers/hostile/grids/S1/people"},
		{"POST", "/v1/layers/hostile/import"},
		{"POST", "/v1/lookup"},
		{"POST", "/v1/reports"},
		{"POST", "/v1/reports/" + report + "/events"},
		{"PUT", "/v1/categories/hostile-c"},
		{"PUT", "/v1/calendar/2026-10-01"},
		{"PUT", "/v1/departments/hostile-d"},
	}
}

// hostileNesting sends JSON nested 10,000 deep, as the whole body and
// inside a field: 422 naming the limit, or 400 where the body is refused by
// its first byte (the lookup batch's parser takes one shape only; an import
// must be an object).
func hostileNesting(t *testing.T, ts *testServer, report string) {
	const depth = 10_000
	bodies := map[string]string{
		"array":          strings.Repeat("[", depth) + strings.Repeat("]", depth),
		"object":         strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth),
		"unclosed array": strings.Repeat("[", depth),
	}
	inField := map[string]string{
		"PUT /v1/layers/hostile/grids/S1": `{"type":"Feature","properties":{"a":` + bodies["array"] + `},"geometry":null}`,
		"POST /v1/layers/hostile/changesets": `{"operations":[{"op":"put","code":"S1","feature":{"type":"Feature","properties":{"a":` +
			bodies["object"] + `},"geometry":null}}]}`,
		"POST /v1/layers/hostile/import": `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"S1","a":` +
			bodies["array"] + `},"geometry":null}]}`,
		"POST /v1/reports": `{"external_id":"hostile-6","category":"hostile-c","location":{"type":"Point","coordinates":` + bodies["array"] + `}}`,
	}
	for _, route := range jsonRoutes(report) {
		for _, name := range slices.Sorted(maps.Keys(bodies)) {
			t.Run(route.method+" "+route.path+" "+name, func(t *testing.T) {
				want := http.StatusUnprocessableEntity
				switch {
				case route.path == "/v1/lookup":
					want = http.StatusBadRequest // its parser takes {"points": ...} and nothing else
				case strings.HasSuffix(route.path, "/import") && name != "object":
					want = http.StatusBadRequest // not a FeatureCollection: refused at its first byte
				}
				if e := refused(t, hostileDo(t, ts, route.method, route.path, bodies[name]), want); want == 422 && !strings.Contains(e.Message, "64") {
					t.Errorf("the message does not name the limit: %s", e.Message)
				}
			})
		}
		if body, ok := inField[route.method+" "+route.path]; ok {
			t.Run(route.method+" "+route.path+" in a field", func(t *testing.T) {
				refused(t, hostileDo(t, ts, route.method, route.path, body), 422)
			})
		}
	}
}

// hostileBodies sends 11 MB to the routes limited to 10 MB.
func hostileBodies(t *testing.T, ts *testServer, report string) {
	big := `{"name":"` + strings.Repeat("x", 11<<20) + `"}`
	for _, route := range jsonRoutes(report) {
		if route.path == "/v1/lookup" || strings.HasSuffix(route.path, "/import") {
			continue // 64 MB and 1 GB
		}
		t.Run(route.method+" "+route.path, func(t *testing.T) {
			refused(t, hostileDo(t, ts, route.method, route.path, big), 413)
		})
	}
	t.Run("open311", func(t *testing.T) {
		refusedOpen311(t, hostileDo(t, ts, "POST", "/open311/v2/requests.json", "service_code=hostile-c&lat=31.505&long=121.505&description="+
			strings.Repeat("x", 11<<20), "Content-Type", "application/x-www-form-urlencoded"), 413)
	})
}

// ringAround is a Polygon tracing the square (x, y)-(x+s, y+s) through n
// vertices (n/4 along each side, the first repeated at the end): valid, and
// the same shape as the square itself.
func ringAround(x, y, s float64, n int) string {
	var b strings.Builder
	b.WriteString(`{"type":"Polygon","coordinates":[[`)
	side := n / 4
	corner := [][2]float64{{x, y}, {x + s, y}, {x + s, y + s}, {x, y + s}}
	for k := range 4 {
		a, c := corner[k], corner[(k+1)%4]
		for i := range side {
			f := float64(i) / float64(side)
			fmt.Fprintf(&b, "[%.9f,%.9f],", a[0]+f*(c[0]-a[0]), a[1]+f*(c[1]-a[1]))
		}
	}
	fmt.Fprintf(&b, "[%.9f,%.9f]]]}", x, y)
	return b.String()
}

// manyRings is a MultiPolygon of n tiny squares in a row inside (x, y)-(x+s, y+s).
func manyRings(x, y, s float64, n int) string {
	var b strings.Builder
	b.WriteString(`{"type":"MultiPolygon","coordinates":[`)
	w := s / float64(2*n)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		x0 := x + float64(2*i)*w
		fmt.Fprintf(&b, "[[[%.10f,%.10f],[%.10f,%.10f],[%.10f,%.10f],[%.10f,%.10f],[%.10f,%.10f]]]",
			x0, y, x0+w, y, x0+w, y+w, x0, y+w, x0, y)
	}
	b.WriteString("]}")
	return b.String()
}

// hostileSizes sends geometries past the vertex and ring limits, and
// changesets past the operation and code limits. Each of these would be
// accepted were it smaller: the 200,000 vertices trace S1's own square. It
// also sends many-part shapes under the limits, which once failed with a
// 500.
func hostileSizes(t *testing.T, ts *testServer) {
	huge := ringAround(121.50, 31.50, 0.01, 200_000)
	rings := manyRings(121.50, 31.50, 0.01, gridmap.MaxRings+1)
	hugeLine := strings.Replace(strings.Replace(huge, "Polygon", "LineString", 1), "[[[", "[[", 1)
	hugeLine = strings.TrimSuffix(hugeLine, "]]}") + "]}"
	put := func(geom string) string {
		return `{"type":"Feature","properties":{"code":"S1","level":"street","parent":"D"},"geometry":` + geom + `}`
	}
	changeset := func(op string) string { return `{"operations":[` + op + `]}` }
	ops := make([]string, gridmap.MaxChangesetOperations+1)
	for i := range ops {
		ops[i] = `{"op":"put","feature":{"type":"Feature","properties":{"code":"S1","name":"第` + strconv.Itoa(i) + `版"},"geometry":null}}`
	}
	codes := make([]string, gridmap.MaxCodesPerOperation+1)
	for i := range codes {
		codes[i] = strconv.Quote("S" + strconv.Itoa(i+1))
	}
	vertices := "200,001 vertices; at most 150,000"
	cases := []struct {
		name, method, path, body string
		want                     int
		message                  string
	}{
		{"grid of 200,001 vertices", "PUT", "/v1/layers/hostile/grids/S1", put(huge), 413, vertices},
		{"grid of too many rings", "PUT", "/v1/layers/hostile/grids/S1", put(rings), 413, "rings"},
		{"changeset put", "POST", "/v1/layers/hostile/changesets", changeset(`{"op":"put","feature":` + put(huge) + `}`), 413, vertices},
		{"changeset move_edge", "POST", "/v1/layers/hostile/changesets", changeset(`{"op":"move_edge","code":"S1","geometry":` + huge + `}`), 413, vertices},
		{"changeset transfer", "POST", "/v1/layers/hostile/changesets", changeset(`{"op":"transfer","from":"S1","to":"S2","area":` + huge + `}`), 413, vertices},
		{"changeset split line", "POST", "/v1/layers/hostile/changesets", changeset(`{"op":"split","code":"S1","new_codes":["S7","S8"],"line":` + hugeLine + `}`), 413, vertices},
		{"changeset split parts", "POST", "/v1/layers/hostile/changesets", changeset(`{"op":"split","code":"S1","new_codes":["S7","S8"],"parts":[` + huge + `,` + square(121.50, 31.50, 0.01) + `]}`), 413, vertices},
		{"changeset of 1,001 operations", "POST", "/v1/layers/hostile/changesets", changeset(strings.Join(ops, ",")), 413, "at most 1,000 operations"},
		{"merge of 1,001 codes", "POST", "/v1/layers/hostile/changesets", changeset(`{"op":"merge","codes":[` + strings.Join(codes, ",") + `],"into":"S1"}`), 413, "at most 1,000 codes"},
		{"report location", "POST", "/v1/reports", `{"external_id":"hostile-7","category":"hostile-c","location":` + huge + `}`, 413, vertices},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if e := refused(t, hostileDo(t, ts, c.method, c.path, c.body), c.want); !strings.Contains(e.Message, c.message) {
				t.Errorf("the message does not name the limit (%q): %s", c.message, e.Message)
			}
		})
	}
	t.Run("parts sharing edges with the old shape, around an open report, are checked, not a 500", func(t *testing.T) {
		// The open report in S1 is looked for in the old and the new shape;
		// collected into one geometry they were a GeometryCollection GEOS
		// refused to intersect ("side location conflict").
		for _, n := range []int{2, 100, 2_000} {
			r := hostileDo(t, ts, "POST", "/v1/layers/hostile/changesets", `{"dry_run":true,"operations":[{"op":"put","feature":`+
				put(manyRings(121.50, 31.50, 0.01, n))+`}]}`)
			var res gridmap.ChangesetResult
			if r.json(t, &res); r.status != 200 || res.Applied {
				t.Errorf("%d parts: %d %.300s", n, r.status, r.body)
			}
		}
	})
	t.Run("import of a feature of 200,001 vertices rejects it, naming the limit", func(t *testing.T) {
		r := hostileDo(t, ts, "POST", "/v1/layers/hostile/import", `{"type":"FeatureCollection","features":[`+put(huge)+`]}`)
		e := refused(t, r, 422)
		if len(e.Details) != 1 || e.Details[0].Index == nil || *e.Details[0].Index != 0 || !strings.Contains(e.Details[0].Message, vertices) {
			t.Errorf("%.600s", r.body)
		}
	})
}
