package server

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// TestNYC311Reports posts the real 311 requests of New York through
// POST /v1/reports with the borough > NTA > tract hierarchy as the
// comprehensive layer, then checks every assignment against PostGIS on the
// same polygons, and replays them all.
func TestNYC311Reports(t *testing.T) {
	nyc := pgtest.NYCDir(t)
	ts, db := nyc311World(t)
	ctx := context.Background()

	f, err := os.Open(filepath.Join(nyc, "incidents_311_animals_2025Q1.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd := csv.NewReader(f)
	header, err := rd.Read()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	var bodies []string
	for {
		rec, err := rd.Read()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		lat, err1 := strconv.ParseFloat(rec[col["Latitude"]], 64)
		lon, err2 := strconv.ParseFloat(rec[col["Longitude"]], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		created, err := time.ParseInLocation("1/2/2006 15:04", rec[col["Created Date"]], time.UTC)
		if err != nil {
			t.Fatalf("created date %q: %v", rec[col["Created Date"]], err)
		}
		b, _ := json.Marshal(map[string]any{"external_id": "311-" + rec[col["Unique Key"]], "category": "animals",
			"description": rec[col["Complaint Type"]] + ": " + rec[col["Descriptor"]], "source": "311",
			"location": map[string]any{"type": "Point", "coordinates": []float64{lon, lat}}, "reported_at": created})
		bodies = append(bodies, string(b))
	}
	if len(bodies) < 4800 {
		t.Fatalf("read %d requests with coordinates, expected about 4,907", len(bodies))
	}

	post := func(want int) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		wrong := map[int]int{}
		next := 0
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					mu.Lock()
					i := next
					next++
					mu.Unlock()
					if i >= len(bodies) {
						return
					}
					res, err := http.Post(ts.url+"/v1/reports", "application/json", strings.NewReader(bodies[i]))
					if err != nil {
						t.Error(err)
						return
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != want {
						mu.Lock()
						wrong[res.StatusCode]++
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		if len(wrong) > 0 {
			t.Fatalf("statuses other than %d: %v", want, wrong)
		}
	}
	start := time.Now()
	post(http.StatusCreated)
	t.Logf("%d reports posted by 8 clients in %v", len(bodies), time.Since(start).Round(time.Millisecond))

	// The primary grid against PostGIS ST_Covers on the same polygons.
	rows, err := db.Pool.Query(ctx, `SELECT r.id, coalesce(r.primary_code, ''), r.assignment,
		  coalesce((SELECT g.code FROM grids g WHERE g.layer_id = 'nyc311' AND g.geom && r.location AND ST_Covers(g.geom, r.location)
		   ORDER BY array_position(ARRAY['borough', 'nta', 'tract'], g.level) DESC, g.code LIMIT 1), ''),
		  EXISTS (SELECT 1 FROM grids g WHERE g.layer_id = 'nyc311' AND g.geom && ST_Expand(r.location, 1e-7)
		          AND ST_DWithin(ST_Boundary(g.geom), r.location, 1e-7)),
		  coalesce((SELECT json_object_agg(g.code, ST_Distance(g.geom::geography, r.location::geography)) FROM grids g
		   WHERE g.layer_id = 'nyc311' AND g.level = 'tract' AND g.geom && ST_Expand(r.location, 0.0006)
		     AND ST_DWithin(g.geom::geography, r.location::geography, 30.3)), '{}')
		FROM reports r WHERE r.external_id LIKE '311-%'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	checked, outside, withCo, cityTier := 0, 0, 0, 0
	for rows.Next() {
		var id int64
		var primary, covers string
		var assignment, near []byte
		var nearBoundary bool
		if err := rows.Scan(&id, &primary, &assignment, &covers, &nearBoundary, &near); err != nil {
			t.Fatal(err)
		}
		var a gridmap.Assignment
		var within map[string]float64
		if err := json.Unmarshal(assignment, &a); err != nil || json.Unmarshal(near, &within) != nil {
			t.Fatalf("report %d: %v", id, err)
		}
		if nearBoundary {
			continue
		}
		if covers == "" {
			outside++
			if len(a.Flags) == 0 || a.Flags[0] != gridmap.FlagOutsideCoverage {
				t.Errorf("report %d lies outside every grid but is not flagged: %+v", id, a)
			}
			continue
		}
		if primary != covers || a.Layer != "nyc311" {
			t.Fatalf("report %d: primary %q in %s, PostGIS ST_Covers says %q", id, primary, a.Layer, covers)
		}
		delete(within, covers)
		got := map[string]bool{}
		for _, c := range a.CoOwners {
			got[c.Code] = true
			if _, ok := within[c.Code]; !ok {
				t.Errorf("report %d: co-owner %s is not within 30.3 m by PostGIS", id, c.Code)
			}
		}
		for code, d := range within {
			if d < 29.7 && !got[code] {
				t.Errorf("report %d: tract %s at %.1f m is missing from the co-owners %+v", id, code, d, a.CoOwners)
			}
		}
		if len(a.CoOwners) > 0 {
			withCo++
			// Owners under one NTA meet at the street tier, under one borough
			// at the district tier, across boroughs at the city's.
			want := gridmap.TierStreet
			for _, c := range a.CoOwners {
				switch {
				case c.Chain[0].Code != a.Primary.Chain[0].Code:
					want = gridmap.TierCity
				case c.Chain[1].Code != a.Primary.Chain[1].Code && want != gridmap.TierCity:
					want = gridmap.TierDistrict
				}
			}
			if a.Tier != want {
				t.Errorf("report %d: tier %s, want %s for owners %s and %+v", id, a.Tier, want, a.Primary.Code, a.CoOwners)
			}
			if want == gridmap.TierCity {
				cityTier++
			}
		} else if a.Tier != gridmap.TierStreet {
			// Alone in a tract, with two departments: at least the street.
			t.Errorf("report %d: tier %s alone in its tract with two departments, want street", id, a.Tier)
		}
		checked++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d reports checked against PostGIS: %d with co-owners (%d across boroughs), %d outside every grid", checked, withCo, cityTier, outside)
	if checked < 4800 || withCo < 100 {
		t.Errorf("only %d reports checked, %d with co-owners", checked, withCo)
	}

	var before int
	db.Pool.QueryRow(ctx, `SELECT count(*) FROM reports`).Scan(&before)
	post(http.StatusOK)
	var after int
	db.Pool.QueryRow(ctx, `SELECT count(*) FROM reports`).Scan(&after)
	if after != before {
		t.Errorf("replaying the requests made %d new reports", after-before)
	}
}

// nyc311World is a server over the package's database holding the NYC
// borough > NTA > tract hierarchy as layer nyc311 (in the lookup index), and
// the category the 311 animal complaints are filed under.
func nyc311World(t *testing.T) (*testServer, *postgres.DB) {
	t.Helper()
	ts := newTestServer(t, Config{})
	db := pgtest.Shared(t)
	pgtest.LoadNYCHierarchy(t, db, "nyc311")
	for _, s := range []struct{ path, body string }{
		{"/v1/departments/nypd", `{"name":"New York City Police Department"}`},
		{"/v1/departments/dohmh", `{"name":"Department of Health and Mental Hygiene"}`},
		{"/v1/categories/animals", `{"name":"Animal complaints","departments":["nypd","dohmh"],"limit":{"value":3,"clock":"working_days"}}`},
	} {
		if r := do(t, "PUT", ts.url+s.path, s.body); r.status/100 != 2 {
			t.Fatalf("%s: %d %s", s.path, r.status, r.body)
		}
	}
	eventuallyWithin(t, time.Minute, "the NYC tracts reach the lookup index", func() bool {
		var a lookupJSON
		r := do(t, "GET", ts.url+"/v1/lookup?layer=nyc311&lon=-73.9855&lat=40.758", "")
		return r.status == 200 && json.Unmarshal(r.body, &a) == nil && len(a.Layers["nyc311"].Chain) == 3
	})
	return ts, db
}
