package postgres_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/demo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// patrolBench is the demo district (a database of its own) with
// patrolBenchWorkers workers, one in each of as many grids, who walked
// yesterday from 08:00 to 16:00 UTC, a point every 10 s inside their grid's
// box (576,000 points), and patrolBenchOnDuty workers on duty now spread
// over the district, for the nearest-worker benchmark.
type patrolBench struct {
	db      *postgres.DB
	patrols *postgres.PatrolStore
	day     string
	report  int64
}

const (
	patrolBenchWorkers = 200
	patrolBenchOnDuty  = 2000
)

var (
	patrolBenchOnce sync.Once
	patrolBenchDB   *patrolBench
)

func newPatrolBench(b testing.TB) *patrolBench {
	patrolBenchOnce.Do(func() { patrolBenchDB = loadPatrolBench(b) })
	if patrolBenchDB == nil {
		b.Fatal("the patrol benchmark's data failed to load")
	}
	return patrolBenchDB
}

func loadPatrolBench(b testing.TB) *patrolBench {
	ctx := context.Background()
	// A database of its own that outlives each benchmark (pgtest drops it
	// when the package's run ends).
	db, err := postgres.Open(ctx, pgtest.ConnString(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	d, err := demo.Generate(demo.DefaultSeed)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := demo.Load(ctx, postgres.NewLayerStore(db), postgres.NewGridStore(db), d); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	// Workers are accounts linked to a grid's people; the hash is never
	// checked here.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO accounts (username, password_hash, role, person_layer, person_grid, person_name)
		SELECT 'walker-' || row_number() OVER (ORDER BY g.code), '$argon2id$bench', 'reporter', g.layer_id, g.code, 'walker'
		FROM (SELECT layer_id, code FROM grid_versions WHERE layer_id = $1 AND level = 'grid' AND valid_to IS NULL ORDER BY code LIMIT $2) g`,
		demo.LayerID, patrolBenchWorkers); err != nil {
		b.Fatal(err)
	}
	rows, err := db.Pool.Query(ctx, `SELECT a.id, a.username, a.person_grid, ST_XMin(g.geom), ST_YMin(g.geom), ST_XMax(g.geom), ST_YMax(g.geom)
		FROM accounts a JOIN grid_versions g ON g.layer_id = a.person_layer AND g.code = a.person_grid AND g.valid_to IS NULL
		WHERE a.username LIKE 'walker-%' ORDER BY a.id`)
	if err != nil {
		b.Fatal(err)
	}
	type walker struct {
		id             int64
		name, grid     string
		x0, y0, x1, y1 float64
	}
	var walkers []walker
	for rows.Next() {
		var w walker
		if err := rows.Scan(&w.id, &w.name, &w.grid, &w.x0, &w.y0, &w.x1, &w.y1); err != nil {
			b.Fatal(err)
		}
		walkers = append(walkers, w)
	}
	if rows.Err() != nil || len(walkers) != patrolBenchWorkers {
		b.Fatalf("%d walkers, %v", len(walkers), rows.Err())
	}
	store := postgres.NewPatrolStore(db, time.UTC, 0)
	y := time.Now().UTC().AddDate(0, 0, -1)
	from := time.Date(y.Year(), y.Month(), y.Day(), 8, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(5, 6))
	for _, w := range walkers {
		c := &gridmap.Caller{Kind: gridmap.CallerAccount, ID: w.id, Name: w.name, Role: gridmap.RoleReporter,
			Person: &gridmap.PersonRef{Layer: demo.LayerID, Grid: w.grid, Name: "walker"}}
		pts := walk(rng, from, 8*360, 10*time.Second, w.x0, w.y0, w.x1, w.y1)
		if _, err := store.AddTrack(as(c), &gridmap.TrackBatch{Device: "phone", Points: pts}); err != nil {
			b.Fatal(err)
		}
	}
	// On duty now: 2,000 more workers across the district's grids, at
	// random places of their grid's box.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO accounts (username, password_hash, role, person_layer, person_grid, person_name)
		SELECT 'duty-' || i, '$argon2id$bench', 'reporter', $1, g.code, 'duty'
		FROM generate_series(1, $2) i,
		  LATERAL (SELECT code FROM grid_versions WHERE layer_id = $1 AND level = 'grid' AND valid_to IS NULL ORDER BY code OFFSET (i % 500) LIMIT 1) g`,
		demo.LayerID, patrolBenchOnDuty); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO worker_positions (account_id, device, t, location, layer_id, scope_codes)
		SELECT a.id, 'phone', now(), ST_SetSRID(ST_MakePoint(ST_XMin(g.geom) + random() * (ST_XMax(g.geom) - ST_XMin(g.geom)),
		  ST_YMin(g.geom) + random() * (ST_YMax(g.geom) - ST_YMin(g.geom))), 4326), a.person_layer,
		  ARRAY[left(a.person_grid, 6), left(a.person_grid, 9), left(a.person_grid, 12), a.person_grid]
		FROM accounts a JOIN grid_versions g ON g.layer_id = a.person_layer AND g.code = a.person_grid AND g.valid_to IS NULL
		WHERE a.username LIKE 'duty-%'`); err != nil {
		b.Fatal(err)
	}
	// A report in the middle of a grid, as intake would store it.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO categories (code, name, limit_value, limit_clock) VALUES ('bench-patrol', 'p', 3, 'working_days')`); err != nil {
		b.Fatal(err)
	}
	var report int64
	if err := db.Pool.QueryRow(ctx, `INSERT INTO reports (external_id, content_hash, category, location, crs, reported_at, status, layer_id,
		  primary_code, tier, due_at, assignment, scope_codes)
		SELECT 'bench-patrol-1', '\x00', 'bench-patrol', ST_PointOnSurface(geom), 'wgs84', now(), 'reported', layer_id, code, 'grid', now() + interval '3 days',
		  jsonb_build_object('layer', layer_id, 'tier', 'grid', 'primary', jsonb_build_object('code', code, 'level', 'grid')),
		  ARRAY[left(code, 6), left(code, 9), left(code, 12), code]
		FROM grid_versions WHERE layer_id = $1 AND level = 'grid' AND valid_to IS NULL ORDER BY code OFFSET 250 LIMIT 1
		RETURNING id`, demo.LayerID).Scan(&report); err != nil {
		b.Fatal(err)
	}
	for _, table := range []string{"track_points", "worker_positions", "accounts", "reports", "grid_versions"} {
		if _, err := db.Pool.Exec(ctx, "VACUUM ANALYZE "+table); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("patrol benchmark data: %d walkers' day and %d on duty, loaded in %s", patrolBenchWorkers, patrolBenchOnDuty, time.Since(start).Round(time.Second))
	return &patrolBench{db: db, patrols: store, day: y.Format(time.DateOnly), report: report}
}

// BenchmarkPatrolCoverageDemo measures a day's coverage of the demo's 500
// grids: 200 workers, 576,000 points (what measuring a day over costs
// once, and asking for today each time).
func BenchmarkPatrolCoverageDemo(b *testing.B) {
	pb := newPatrolBench(b)
	from, _ := time.Parse(time.DateOnly, pb.day)
	b.ReportAllocs()
	for b.Loop() {
		rows, err := pb.patrols.MeasureCoverageNow(context.Background(), demo.LayerID, "grid", from, from.AddDate(0, 0, 1))
		if err != nil {
			b.Fatal(err)
		}
		if len(rows) != 500 {
			b.Fatalf("coverage: %d rows, want 500", len(rows))
		}
	}
}

// BenchmarkPatrolCoverageKept answers the same day's coverage once it is
// kept: what every later question about a day over costs.
func BenchmarkPatrolCoverageKept(b *testing.B) {
	pb := newPatrolBench(b)
	ctx := context.Background()
	if _, err := pb.patrols.Coverage(ctx, demo.LayerID, "", pb.day); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		cov, err := pb.patrols.Coverage(ctx, demo.LayerID, "", pb.day)
		if err != nil {
			b.Fatal(err)
		}
		if len(cov.Rows) != 500 || cov.Level != "grid" {
			b.Fatalf("kept coverage: %d rows of %s, want 500 of grid", len(cov.Rows), cov.Level)
		}
	}
}

// BenchmarkAssessmentWeek puts together the last week's assessment of
// the demo district: 2,200 workers, 500 grids, their reports, kept days.
func BenchmarkAssessmentWeek(b *testing.B) {
	pb := newPatrolBench(b)
	ctx := context.Background()
	src := gridmap.AssessmentSources{Patrols: pb.patrols, Stats: postgres.NewStatsStore(pb.db), Leaders: postgres.NewLeaderStore(pb.db, time.UTC)}
	to := time.Now().UTC().Truncate(24 * time.Hour)
	q := gridmap.AssessmentQuery{Layer: demo.LayerID, From: to.AddDate(0, 0, -7), To: to}
	if _, err := gridmap.Assess(ctx, src, q); err != nil { // the days measured once
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		a, err := gridmap.Assess(ctx, src, q)
		if err != nil {
			b.Fatal(err)
		}
		if a.Days != 7 || len(a.Grids) != 500 || len(a.Workers) != patrolBenchWorkers+patrolBenchOnDuty {
			b.Fatalf("assessment: %d days, %d grids, %d workers", a.Days, len(a.Grids), len(a.Workers))
		}
	}
}

// BenchmarkAssessmentWeekPlain is BenchmarkAssessmentWeek's baseline: the
// workers' days on patrol and points alone, counted from the week's raw
// points by one plain GROUP BY.
func BenchmarkAssessmentWeekPlain(b *testing.B) {
	pb := newPatrolBench(b)
	ctx := context.Background()
	to := time.Now().UTC().Truncate(24 * time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		rows, err := pb.db.Pool.Query(ctx, `SELECT a.username, count(DISTINCT date_trunc('day', p.t)), count(p.t)
			FROM accounts a LEFT JOIN track_points p ON p.account_id = a.id AND p.t >= $1 AND p.t < $2
			WHERE a.person_layer = $3 GROUP BY a.username`, to.AddDate(0, 0, -7), to, demo.LayerID)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		if rows.Err() != nil || n != patrolBenchWorkers+patrolBenchOnDuty {
			b.Fatalf("plain figures: %v, %d rows", rows.Err(), n)
		}
	}
}

// patrolCoveragePlainSQL is the baseline: the same figures by one plain
// PostGIS query, as the acceptance check computes them: each worker's
// stretches as lines, buffered by 50 m as geography, unioned per grid,
// cut by the grid, measured as geography.
const patrolCoveragePlainSQL = `WITH pts AS (
	  SELECT p.account_id, p.t, p.location,
	    CASE WHEN p.t - lag(p.t) OVER (PARTITION BY p.account_id ORDER BY p.t) > interval '5 minutes' THEN 1 ELSE 0 END AS brk
	  FROM track_points p WHERE p.t >= $2 AND p.t < $2 + interval '1 day'
	), marked AS (
	  SELECT account_id, t, location, sum(brk) OVER (PARTITION BY account_id ORDER BY t) AS stretch FROM pts
	), lines AS (
	  SELECT account_id, ST_MakeLine(location ORDER BY t) AS geom FROM marked GROUP BY account_id, stretch
	)
	SELECT g.code, ST_Area(ST_Intersection(g.geom, ST_Union(ST_Buffer(l.geom::geography, 50)::geometry))::geography) / ST_Area(g.geom::geography)
	FROM grid_versions g
	LEFT JOIN accounts a ON a.person_layer = g.layer_id AND left(a.person_grid, length(g.code)) = g.code
	LEFT JOIN lines l ON l.account_id = a.id
	WHERE g.layer_id = $1 AND g.level = 'grid' AND g.valid_to IS NULL
	GROUP BY g.code, g.geom`

// BenchmarkPatrolCoveragePlainPostGIS is BenchmarkPatrolCoverageDemo's
// baseline.
func BenchmarkPatrolCoveragePlainPostGIS(b *testing.B) {
	pb := newPatrolBench(b)
	day, _ := time.Parse(time.DateOnly, pb.day)
	b.ReportAllocs()
	for b.Loop() {
		rows, err := pb.db.Pool.Query(context.Background(), patrolCoveragePlainSQL, demo.LayerID, day)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		if rows.Err() != nil || n != 500 {
			b.Fatalf("plain coverage: %v, %d rows", rows.Err(), n)
		}
	}
}

// BenchmarkNearbyWorkers finds the on-duty workers of a report's grid and
// its neighbours among 2,000 on duty.
func BenchmarkNearbyWorkers(b *testing.B) {
	pb := newPatrolBench(b)
	ctx := context.Background()
	if ws, err := pb.patrols.NearbyWorkers(ctx, pb.report, gridmap.DefaultNearbyWorkers); err != nil || len(ws) == 0 {
		b.Fatalf("nearby workers: %v, %d", err, len(ws))
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pb.patrols.NearbyWorkers(ctx, pb.report, gridmap.DefaultNearbyWorkers); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNearbyWorkersReportRead is BenchmarkNearbyWorkers' baseline:
// one round trip reading the report's row by its key.
func BenchmarkNearbyWorkersReportRead(b *testing.B) {
	pb := newPatrolBench(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		var code string
		if err := pb.db.Pool.QueryRow(ctx, `SELECT primary_code FROM reports WHERE id = $1`, pb.report).Scan(&code); err != nil {
			b.Fatal(err)
		}
	}
}
