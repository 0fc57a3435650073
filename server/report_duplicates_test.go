package server

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// degreesNorth is how many degrees of latitude m metres are.
func degreesNorth(m float64) float64 { return m / 111_000 }

// setUpReportLayer makes layer id (a district D<id> of two streets side by
// side, from lon0 to lon0+0.02 E at 31.5 N: a place no other test of the
// package uses) and waits for the lookup index to hold it.
func setUpReportLayer(t *testing.T, ts *testServer, id string, lon0 float64) {
	t.Helper()
	rect := func(x0, x1 float64) string {
		return fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,31.5],[%g,31.5],[%g,31.52],[%g,31.52],[%g,31.5]]]}`, x0, x1, x1, x0, x0)
	}
	if r := do(t, "PUT", ts.url+"/v1/layers/"+id, `{"levels":["district","street"]}`); r.status/100 != 2 {
		t.Fatalf("layer: %d %s", r.status, r.body)
	}
	d, a, b := strings.ToUpper(id)+"D", strings.ToUpper(id)+"A", strings.ToUpper(id)+"B"
	body := `{"type":"FeatureCollection","features":[` + feat(d, "", rect(lon0, lon0+0.02)) + "," +
		feat(a, d, rect(lon0, lon0+0.01)) + "," + feat(b, d, rect(lon0+0.01, lon0+0.02)) + "]}"
	if r := do(t, "POST", ts.url+"/v1/layers/"+id+"/import", body); r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	eventually(t, "the layer reaches the lookup index", func() bool {
		return strings.Contains(string(do(t, "GET", ts.url+"/v1/lookup?layer="+id+"&lon="+num(lon0+0.005)+"&lat=31.505", "").body), `"`+a+`"`)
	})
}

// reportAt files a report of category at lon, lat, reported at at, and
// returns what the server answered.
func reportAt(t *testing.T, ts *testServer, externalID, category string, lon, lat float64, at time.Time) gridmap.Report {
	t.Helper()
	body := fmt.Sprintf(`{"external_id":%q,"category":%q,"location":{"type":"Point","coordinates":[%.8f,%.8f]},"reported_at":%q}`,
		externalID, category, lon, lat, at.Format(time.RFC3339))
	r := do(t, "POST", ts.url+"/v1/reports", body)
	if r.status != 201 {
		t.Fatalf("report %s: %d %s", externalID, r.status, r.body)
	}
	var rep gridmap.Report
	r.json(t, &rep)
	return rep
}

func TestDuplicateReports(t *testing.T) {
	ts := newTestServer(t, Config{})
	setUpReportLayer(t, ts, "dupl", 137.5)
	for _, c := range []struct{ code, body string }{
		{"dup-a", `{"name":"占道经营","limit":{"value":4,"clock":"urgent_hours"},"duplicate_within_m":50,"duplicate_within_hours":72}`},
		{"dup-b", `{"name":"乱堆物料","limit":{"value":4,"clock":"urgent_hours"}}`},
		{"dup-off", `{"name":"噪声","limit":{"value":4,"clock":"urgent_hours"},"duplicate_within_m":0}`},
	} {
		if r := do(t, "PUT", ts.url+"/v1/categories/"+c.code, c.body); r.status != 201 {
			t.Fatalf("category %s: %d %s", c.code, r.status, r.body)
		}
	}
	t.Run("a category without a duplicate window has the defaults", func(t *testing.T) {
		var c gridmap.Category
		do(t, "GET", ts.url+"/v1/categories/dup-b", "").json(t, &c)
		if c.DuplicateWithinM == nil || *c.DuplicateWithinM != 0 || c.DuplicateWithinHours == nil || *c.DuplicateWithinHours != 72 {
			t.Errorf("category read back: %+v", c)
		}
	})
	for _, bad := range []string{`"duplicate_within_m":-1`, `"duplicate_within_m":5000`, `"duplicate_within_hours":-2`} {
		t.Run(bad+" is a 400 naming the field", func(t *testing.T) {
			r := do(t, "PUT", ts.url+"/v1/categories/dup-bad", `{"name":"x","limit":{"value":4,"clock":"urgent_hours"},`+bad+`}`)
			field := strings.Trim(strings.Split(bad, ":")[0], `"`)
			if r.status != 400 || !strings.Contains(r.errorOf(t).Message, field) {
				t.Errorf("%d %s", r.status, r.body)
			}
		})
	}

	lon, lat := 137.505, 31.505
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, shanghai)
	first := reportAt(t, ts, "dup-1", "dup-a", lon, lat, t0)
	near := reportAt(t, ts, "dup-2", "dup-a", lon, lat+degreesNorth(20), t0.Add(time.Hour))
	far := reportAt(t, ts, "dup-3", "dup-a", lon, lat+degreesNorth(200), t0.Add(time.Hour))
	other := reportAt(t, ts, "dup-4", "dup-b", lon, lat, t0.Add(time.Hour))
	later := reportAt(t, ts, "dup-5", "dup-a", lon, lat, t0.Add(100*time.Hour))
	off := reportAt(t, ts, "dup-6", "dup-off", lon, lat, t0)
	off2 := reportAt(t, ts, "dup-7", "dup-off", lon, lat, t0)

	t.Run("a near report of the same category is linked to the open one", func(t *testing.T) {
		if first.DuplicateOf != nil || near.DuplicateOf == nil || *near.DuplicateOf != first.ID {
			t.Errorf("first links %v, near links %v, want near -> %d", first.DuplicateOf, near.DuplicateOf, first.ID)
		}
	})
	t.Run("far, other category, out of the time window or linking off: no link", func(t *testing.T) {
		for name, r := range map[string]gridmap.Report{"200 m away": far, "other category": other, "100 hours later": later,
			"linking off": off, "linking off, second": off2} {
			if r.DuplicateOf != nil {
				t.Errorf("%s: linked to %d", name, *r.DuplicateOf)
			}
		}
	})
	t.Run("the original lists its duplicates", func(t *testing.T) {
		var got gridmap.Report
		do(t, "GET", fmt.Sprintf("%s/v1/reports/%d", ts.url, first.ID), "").json(t, &got)
		if len(got.Duplicates) != 1 || got.Duplicates[0] != near.ID || got.DuplicateOf != nil {
			t.Errorf("duplicates %v, duplicate_of %v; want [%d]", got.Duplicates, got.DuplicateOf, near.ID)
		}
		var list struct{ Reports []gridmap.Report }
		do(t, "GET", fmt.Sprintf("%s/v1/reports?duplicate_of=%d", ts.url, first.ID), "").json(t, &list)
		if len(list.Reports) != 1 || list.Reports[0].ID != near.ID {
			t.Errorf("?duplicate_of lists %+v", list.Reports)
		}
		if r := do(t, "GET", ts.url+"/v1/reports?duplicate_of=abc", ""); r.status != 400 || !strings.Contains(r.errorOf(t).Message, "duplicate_of") {
			t.Errorf("bad duplicate_of: %d %s", r.status, r.body)
		}
	})
	t.Run("a done report takes no new duplicates", func(t *testing.T) {
		if r := do(t, "POST", fmt.Sprintf("%s/v1/reports/%d/events", ts.url, first.ID), `{"action":"reject","note":"不属实"}`); r.status != 200 {
			t.Fatalf("reject: %d %s", r.status, r.body)
		}
		again := reportAt(t, ts, "dup-8", "dup-a", lon, lat, t0.Add(2*time.Hour))
		if again.DuplicateOf == nil || *again.DuplicateOf != near.ID {
			t.Errorf("linked to %v, want the earliest open match %d", again.DuplicateOf, near.ID)
		}
	})
}

// TestDuplicateReportsConcurrent files near-identical reports at many
// spots at once through a small pool: whatever the interleaving, at each
// spot exactly one ends unlinked and every other is linked to a report of
// its spot filed before it, so the links form a tree and no two reports
// point at each other.
func TestDuplicateReportsConcurrent(t *testing.T) {
	ts := newTestServerOn(t, Config{}, pgtest.SharedWith(t, postgres.Options{MaxConns: 8}))
	setUpReportLayer(t, ts, "dupc", 138.5)
	// A category of this run's own: reports of an earlier run (-count)
	// are not matches.
	run := time.Now().UnixNano()
	category := fmt.Sprintf("dupc%d", run)
	if r := do(t, "PUT", ts.url+"/v1/categories/"+category, `{"name":"井盖缺失","limit":{"value":4,"clock":"urgent_hours"},"duplicate_within_m":50}`); r.status != 201 {
		t.Fatalf("category: %d %s", r.status, r.body)
	}
	t.Run("filers held at the door and let in at once", func(t *testing.T) {
		// Every intake writes through the layers' rows: holding one keeps
		// the filers waiting until all of them are inside the database.
		// Then they are let go together.
		db := pgtest.Shared(t)
		ctx := context.Background()
		tx, err := db.Pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `SELECT 1 FROM layers WHERE id = 'dupc' FOR NO KEY UPDATE`); err != nil {
			t.Fatal(err)
		}
		const filers = 6
		held := make([]gridmap.Report, filers)
		var wg sync.WaitGroup
		for i := range held {
			wg.Add(1)
			go func() {
				defer wg.Done()
				held[i] = reportAt(t, ts, fmt.Sprintf("dupc-held-%d-%d", run, i), category, 138.5185+float64(i)*degreesNorth(3), 31.515, time.Now())
			}()
		}
		eventually(t, "every filer waits on a lock", func() bool {
			var n int
			err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
			return err == nil && n >= filers
		})
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		var roots []int64
		for _, r := range held {
			if r.DuplicateOf == nil {
				roots = append(roots, r.ID)
			}
		}
		if len(roots) != 1 {
			t.Errorf("%d reports are unlinked (%v), want exactly one", len(roots), roots)
		}
	})
	const spots, filers = 12, 6
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, shanghai)
	reports := make([]gridmap.Report, spots*filers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range reports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			// Spots 150 m apart in a row; at a spot, within 5 m of each
			// other (and some in the next lock cell over).
			spot, k := i%spots, i/spots
			lon := 138.5015 + float64(spot)*0.0015 + float64(k%3)*degreesNorth(2)
			reports[i] = reportAt(t, ts, fmt.Sprintf("dupc-%d-%d", run, i), category, lon, 31.505+float64(k%2)*degreesNorth(2), t0)
		}()
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	spotOf, link := map[int64]int{}, map[int64]int64{}
	roots := make([][]int64, spots)
	for i, r := range reports {
		spotOf[r.ID] = i % spots
		if r.DuplicateOf == nil {
			roots[i%spots] = append(roots[i%spots], r.ID)
		} else {
			link[r.ID] = *r.DuplicateOf
		}
	}
	for spot, rs := range roots {
		if len(rs) != 1 {
			t.Errorf("spot %d: %d reports are unlinked (%v), want exactly one", spot, len(rs), rs)
		}
	}
	for id, to := range link {
		if spotOf[to] != spotOf[id] {
			t.Errorf("report %d at spot %d is linked to %d at spot %d, 150 m away", id, spotOf[id], to, spotOf[to])
		}
		seen := map[int64]bool{}
		for at := id; ; {
			if seen[at] {
				t.Fatalf("report %d's links go round: %v", id, link)
			}
			seen[at] = true
			next, ok := link[at]
			if !ok {
				break
			}
			at = next
		}
	}
	// What each report answered is what is stored.
	for _, r := range reports {
		var got gridmap.Report
		do(t, "GET", fmt.Sprintf("%s/v1/reports/%d", ts.url, r.ID), "").json(t, &got)
		if fmt.Sprint(deref(got.DuplicateOf)) != fmt.Sprint(deref(r.DuplicateOf)) {
			t.Errorf("report %d answered duplicate_of %v, stored %v", r.ID, deref(r.DuplicateOf), deref(got.DuplicateOf))
		}
	}
}

// deref is *p, 0 for nil.
func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}
