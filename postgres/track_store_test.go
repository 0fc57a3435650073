package postgres_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// trackWorld is a layer of its own for the patrol tests (lon 70.00-70.04,
// lat -30.04 to -30.00, where no other test draws): district TD, streets
// TS1 (west) and TS2 (east), each with two grids of 0.01 by 0.02 degrees,
// and a grid worker linked to each grid.
type trackWorld struct {
	db      *postgres.DB
	patrols *postgres.PatrolStore
	access  *postgres.AccessStore
	layer   string
	// workers maps a grid code to its worker's caller.
	workers map[string]*gridmap.Caller
}

// trackGrids are the grid codes of trackWorld with their lower-left
// corners.
var trackGrids = map[string][2]float64{
	"TG11": {70.00, -30.04}, "TG12": {70.01, -30.04}, "TG21": {70.02, -30.04}, "TG22": {70.03, -30.04},
}

var trackWorldOnce = map[string]*trackWorld{}
var trackWorldMu sync.Mutex

func newTrackWorld(t *testing.T, layer string) *trackWorld {
	t.Helper()
	trackWorldMu.Lock()
	defer trackWorldMu.Unlock()
	if w, ok := trackWorldOnce[layer]; ok {
		return w
	}
	ctx := context.Background()
	db := pgtest.Shared(t)
	s := stores{postgres.NewLayerStore(db), postgres.NewGridStore(db)}
	if _, err := s.layers.PutLayer(ctx, &gridmap.Layer{ID: layer, Kind: gridmap.KindComprehensive, Levels: []string{"district", "street", "grid"}}); err != nil {
		t.Fatal(err)
	}
	rect := func(x, y, w, h float64) string {
		return fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,%g],[%g,%g],[%g,%g],[%g,%g],[%g,%g]]]}`, x, y, x+w, y, x+w, y+h, x, y+h, x, y)
	}
	features := []string{
		feature("TD", "district", "", rect(70.00, -30.04, 0.04, 0.04)),
		feature("TS1", "street", "TD", rect(70.00, -30.04, 0.02, 0.04)),
		feature("TS2", "street", "TD", rect(70.02, -30.04, 0.02, 0.04)),
	}
	for code, c := range trackGrids {
		features = append(features, feature(code, "grid", "TS"+code[2:3], rect(c[0], c[1], 0.01, 0.04)))
	}
	if res, err := importString(s, layer, collection(features...), gridmap.ImportOptions{}); err != nil || len(res.Rejected) > 0 {
		t.Fatalf("importing the patrol world: %v %+v", err, res)
	}
	w := &trackWorld{db: db, patrols: postgres.NewPatrolStore(db, time.UTC, 0), access: postgres.NewAccessStore(db), layer: layer,
		workers: map[string]*gridmap.Caller{}}
	for code := range trackGrids {
		name := "worker of " + code
		if err := s.grids.SetPeople(ctx, layer, code, []gridmap.Person{{Role: gridmap.RoleGridWorker, Name: name}}); err != nil {
			t.Fatal(err)
		}
		w.workers[code] = w.addWorker(t, strings.ToLower(layer+"-"+code), &gridmap.PersonRef{Layer: layer, Grid: code, Name: name})
	}
	trackWorldOnce[layer] = w
	return w
}

// addWorker adds a reporter account linked to person (nil: none) and
// returns it as a caller.
func (w *trackWorld) addWorker(t *testing.T, username string, person *gridmap.PersonRef) *gridmap.Caller {
	t.Helper()
	a := &gridmap.Account{Username: username, DisplayName: "W " + username, Role: gridmap.RoleReporter, Person: person}
	if err := w.access.AddAccount(context.Background(), a, goodPassword); err != nil {
		t.Fatalf("adding worker %s: %v", username, err)
	}
	c := &gridmap.Caller{Kind: gridmap.CallerAccount, ID: a.ID, Name: a.Username, DisplayName: a.DisplayName, Role: a.Role, Person: person}
	if person != nil {
		c.Scope = &gridmap.Scope{Layer: person.Layer, Code: person.Grid}
	}
	return c
}

func as(c *gridmap.Caller) context.Context {
	return gridmap.NewContextWithCaller(context.Background(), c)
}

// walk returns n points one every step from start, wandering inside the
// box [x0, x1] x [y0, y1] at walking pace.
func walk(rng *rand.Rand, start time.Time, n int, step time.Duration, x0, y0, x1, y1 float64) []gridmap.TrackPoint {
	pts := make([]gridmap.TrackPoint, n)
	x, y := x0+(x1-x0)*rng.Float64(), y0+(y1-y0)*rng.Float64()
	heading := rng.Float64() * 2 * math.Pi
	speed := 1.2 * step.Seconds() / 111_000 // about 1.2 m/s, in degrees
	for i := range pts {
		heading += rng.NormFloat64() * 0.3
		nx, ny := x+speed*math.Cos(heading), y+speed*math.Sin(heading)
		if nx < x0 || nx > x1 || ny < y0 || ny > y1 {
			heading += math.Pi // turn back at the edge
			nx, ny = x, y
		}
		x, y = nx, ny
		pts[i] = gridmap.TrackPoint{T: start.Add(time.Duration(i) * step), Lon: x, Lat: y}
	}
	return pts
}

func TestTrackIntakeIsIdempotentAndConverts(t *testing.T) {
	w := newTrackWorld(t, "trk")
	ctx := as(w.workers["TG11"])
	now := time.Now().Truncate(time.Second)

	t.Run("a retried batch stores nothing twice and says so", func(t *testing.T) {
		pts := walk(rand.New(rand.NewPCG(1, 2)), now.Add(-time.Hour), 100, 10*time.Second, 70.0, -30.04, 70.01, -30.0)
		b := &gridmap.TrackBatch{Device: "phone-a", Points: pts}
		got, err := w.patrols.AddTrack(ctx, b)
		if err != nil || got.Stored != 100 || got.Duplicates != 0 {
			t.Fatalf("first batch: %+v %v, want 100 stored", got, err)
		}
		got, err = w.patrols.AddTrack(ctx, b)
		if err != nil || got.Stored != 0 || got.Duplicates != 100 {
			t.Fatalf("the batch again: %+v %v, want 100 duplicates", got, err)
		}
		// Half old, half new: only the new half is stored.
		more := append(pts[50:], walk(rand.New(rand.NewPCG(3, 4)), now.Add(-30*time.Minute), 50, 10*time.Second, 70.0, -30.04, 70.01, -30.0)...)
		got, err = w.patrols.AddTrack(ctx, &gridmap.TrackBatch{Device: "phone-a", Points: more})
		if err != nil || got.Stored != 50 || got.Duplicates != 50 {
			t.Fatalf("a batch overlapping the first: %+v %v, want 50 stored and 50 duplicates", got, err)
		}
		// Another device at the same times is another phone's points.
		got, err = w.patrols.AddTrack(ctx, &gridmap.TrackBatch{Device: "phone-b", Points: pts[:10]})
		if err != nil || got.Stored != 10 {
			t.Fatalf("another device: %+v %v, want 10 stored", got, err)
		}
	})

	t.Run("GCJ-02 points are stored in WGS84", func(t *testing.T) {
		c := w.addWorker(t, "trk-gcj", nil)
		lon, lat := 116.397, 39.908 // Beijing, where GCJ-02 shifts
		b := &gridmap.TrackBatch{Device: "amap", CRS: gridmap.CRSGCJ02, Points: []gridmap.TrackPoint{{T: now.Add(-time.Minute), Lon: lon, Lat: lat}}}
		if _, err := w.patrols.AddTrack(as(c), b); err != nil {
			t.Fatal(err)
		}
		var x, y float64
		if err := w.db.Pool.QueryRow(context.Background(), `SELECT ST_X(location), ST_Y(location) FROM track_points WHERE account_id = $1`, c.ID).Scan(&x, &y); err != nil {
			t.Fatal(err)
		}
		wx, wy := geo.GCJ02ToWGS84(lon, lat)
		if math.Abs(x-wx) > 1e-9 || math.Abs(y-wy) > 1e-9 || math.Abs(x-lon) < 1e-4 {
			t.Errorf("stored %v, %v; want geo.GCJ02ToWGS84 = %v, %v", x, y, wx, wy)
		}
	})

	t.Run("bad batches are refused whole", func(t *testing.T) {
		c := w.addWorker(t, "trk-bad", nil)
		good := gridmap.TrackPoint{T: now, Lon: 70.001, Lat: -30.001}
		many := make([]gridmap.TrackPoint, gridmap.MaxTrackPoints+1)
		for i := range many {
			many[i] = good
		}
		for _, tc := range []struct {
			name string
			b    gridmap.TrackBatch
			code string
			says string
		}{
			{"no device", gridmap.TrackBatch{Points: []gridmap.TrackPoint{good}}, gridmap.EINVALID, "device"},
			{"a time in the future", gridmap.TrackBatch{Device: "d", Points: []gridmap.TrackPoint{good, {T: now.Add(time.Hour), Lon: 70, Lat: -30}}}, gridmap.EINVALID, "point 1"},
			{"a latitude out of range", gridmap.TrackBatch{Device: "d", Points: []gridmap.TrackPoint{good, good, {T: now, Lon: 70, Lat: -91}}}, gridmap.EINVALID, "point 2"},
			{"an unknown crs", gridmap.TrackBatch{Device: "d", CRS: "osgb", Points: []gridmap.TrackPoint{good}}, gridmap.EINVALID, "crs \"osgb\""},
			{"too many points", gridmap.TrackBatch{Device: "d", Points: many}, gridmap.ETOOLARGE, "at most 10000"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := w.patrols.AddTrack(as(c), &tc.b)
				if gridmap.ErrorCode(err) != tc.code || !strings.Contains(gridmap.ErrorMessage(err), tc.says) {
					t.Errorf("got %v, want %s saying %q", err, tc.code, tc.says)
				}
			})
		}
		var n int
		w.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM track_points WHERE account_id = $1`, c.ID).Scan(&n)
		if n != 0 {
			t.Errorf("%d points stored from refused batches", n)
		}
	})

	t.Run("a token is not a worker", func(t *testing.T) {
		_, err := w.patrols.AddTrack(as(&gridmap.Caller{Kind: gridmap.CallerToken, Name: "hotline", Role: gridmap.RoleAdmin}),
			&gridmap.TrackBatch{Device: "d", Points: []gridmap.TrackPoint{{T: now, Lon: 70, Lat: -30}}})
		wantCode(t, "a token's track", err, gridmap.EFORBIDDEN)
	})
}

func TestTrackRetention(t *testing.T) {
	w := newTrackWorld(t, "trk")
	c := w.addWorker(t, "trk-old", nil)
	db := w.db
	now := time.Now()
	long := postgres.NewPatrolStore(db, time.UTC, 30*24*time.Hour)
	short := postgres.NewPatrolStore(db, time.UTC, 3*24*time.Hour)
	at := func(d time.Duration) gridmap.TrackPoint {
		return gridmap.TrackPoint{T: now.Add(-d), Lon: 70.001, Lat: -30.001}
	}
	cutoff := 3 * 24 * time.Hour
	old := []gridmap.TrackPoint{at(10 * 24 * time.Hour), at(cutoff + time.Minute), at(cutoff - time.Minute), at(time.Hour)}
	if got, err := long.AddTrack(as(c), &gridmap.TrackBatch{Device: "d", Points: old}); err != nil || got.Stored != 4 {
		t.Fatalf("storing under a long retention: %+v %v", got, err)
	}
	got, err := short.AddTrack(as(c), &gridmap.TrackBatch{Device: "e", Points: old})
	if err != nil || got.Stored != 2 || got.Expired != 2 {
		t.Fatalf("the same points under a 3-day retention: %+v %v, want 2 stored and 2 expired", got, err)
	}
	oldDay := "track_points_" + old[0].T.UTC().Format("20060102")
	var exists bool
	db.Pool.QueryRow(context.Background(), `SELECT to_regclass($1) IS NOT NULL`, oldDay).Scan(&exists)
	if !exists {
		t.Fatalf("partition %s was not created", oldDay)
	}
	dropped, _, err := short.ExpireTracks(context.Background(), now)
	if err != nil || dropped < 1 {
		t.Fatalf("retention: dropped %d, %v", dropped, err)
	}
	db.Pool.QueryRow(context.Background(), `SELECT to_regclass($1) IS NOT NULL`, oldDay).Scan(&exists)
	if exists {
		t.Errorf("partition %s of a day past the retention is still there", oldDay)
	}
	var older, kept int
	db.Pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE t < $2), count(*) FILTER (WHERE t >= $2)
		FROM track_points WHERE account_id = $1`, c.ID, now.Add(-cutoff)).Scan(&older, &kept)
	if older != 0 || kept != 4 {
		t.Errorf("after the retention job: %d points older than the retention, %d kept; want 0 and 4", older, kept)
	}
	// Intake still finds its partitions after days were dropped.
	if got, err := long.AddTrack(as(c), &gridmap.TrackBatch{Device: "f", Points: []gridmap.TrackPoint{at(2 * time.Hour)}}); err != nil || got.Stored != 1 {
		t.Errorf("intake after the retention job: %+v %v", got, err)
	}
}

// TestManyTrackClients: workers' phones post at once through a pool of
// three connections, every batch at the same moment: some batches by one
// client, others by several clients at once (retries racing each other).
// Every distinct point is stored exactly once, each batch's answers add up
// to its points stored once and duplicates for every other copy, and each
// worker's position is its latest point.
func TestManyTrackClients(t *testing.T) {
	w := newTrackWorld(t, "trk")
	db := pgtest.SharedWith(t, postgres.Options{MaxConns: 3})
	store := postgres.NewPatrolStore(db, time.UTC, 0)
	const workers, batches, size = 6, 4, 150
	type send struct {
		worker, batch int
		copies        int // clients sending this batch at once
		stored, dups  []int
	}
	callers := make([]*gridmap.Caller, workers)
	points := make([][]gridmap.TrackPoint, workers)
	var sends []*send
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	for i := range callers {
		callers[i] = w.addWorker(t, fmt.Sprintf("trk-many-%d", i), nil)
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		points[i] = walk(rng, start, batches*size, time.Second, 70.0, -30.04, 70.04, -30.0)
		for b := range batches {
			copies := 1 + (i+b)%4 // one to four clients per batch
			sends = append(sends, &send{worker: i, batch: b, copies: copies, stored: make([]int, copies), dups: make([]int, copies)})
		}
	}
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for _, s := range sends {
		batch := points[s.worker][s.batch*size : (s.batch+1)*size]
		for c := range s.copies {
			wg.Go(func() {
				// Each client its own batch value, as separate requests
				// decode their own.
				b := &gridmap.TrackBatch{Device: "p", Points: slices.Clone(batch)}
				<-gate
				got, err := store.AddTrack(as(callers[s.worker]), b)
				if err != nil {
					t.Errorf("worker %d batch %d copy %d: %v", s.worker, s.batch, c, err)
					return
				}
				if got.Expired != 0 || got.Stored+got.Duplicates != size {
					t.Errorf("worker %d batch %d copy %d: %+v, want %d points stored or duplicates", s.worker, s.batch, c, got, size)
				}
				s.stored[c], s.dups[c] = got.Stored, got.Duplicates
			})
		}
	}
	close(gate)
	wg.Wait()

	var stored, dups, sent int
	for _, s := range sends {
		st, du := 0, 0
		for c := range s.copies {
			st, du = st+s.stored[c], du+s.dups[c]
		}
		if st != size || du != size*(s.copies-1) {
			t.Errorf("worker %d batch %d sent by %d clients: %d stored and %d duplicates in all, want %d and %d",
				s.worker, s.batch, s.copies, st, du, size, size*(s.copies-1))
		}
		stored, dups, sent = stored+st, dups+du, sent+size*s.copies
	}
	ids := make([]int64, workers)
	for i, c := range callers {
		ids[i] = c.ID
	}
	var rows, distinct int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT (account_id, device, t)) FROM track_points WHERE account_id = ANY($1)`,
		ids).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	want := workers * batches * size
	if rows != want || distinct != want || stored != want || stored+dups != sent {
		t.Errorf("%d rows (%d distinct), %d answered stored and %d duplicates of %d sent; want %d points each once", rows, distinct, stored, dups, sent, want)
	}
	for i, c := range callers {
		var last time.Time
		if err := db.Pool.QueryRow(context.Background(), `SELECT t FROM worker_positions WHERE account_id = $1`, c.ID).Scan(&last); err != nil {
			t.Fatal(err)
		}
		if latest := points[i][len(points[i])-1].T; !last.Equal(latest) {
			t.Errorf("worker %d's position is at %s, want its latest point's %s", i, last, latest)
		}
	}
}

// TestPatrolCoverageMatchesPostGIS: the coverage of each grid is the area
// within 50 m of its worker's day, as geography ST_Buffer of the track's
// lines measures it, within 1%.
func TestPatrolCoverageMatchesPostGIS(t *testing.T) {
	w := newTrackWorld(t, "trkcov")
	day := time.Now().UTC().AddDate(0, 0, -2) // wholly more than a day ago
	start := time.Date(day.Year(), day.Month(), day.Day(), 1, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(11, 12))
	tracks := map[string][]gridmap.TrackPoint{}
	for code, c := range trackGrids {
		// Two stretches with a gap of an hour; the walk leaves the grid
		// a little on one side.
		pts := walk(rng, start, 300, 10*time.Second, c[0]-0.002, c[1]+0.01, c[0]+0.008, c[1]+0.03)
		pts = append(pts, walk(rng, start.Add(2*time.Hour), 200, 10*time.Second, c[0], c[1], c[0]+0.01, c[1]+0.01)...)
		if code == "TG22" {
			pts = nil // an idle grid
		}
		tracks[code] = pts
		if len(pts) > 0 {
			if _, err := w.patrols.AddTrack(as(w.workers[code]), &gridmap.TrackBatch{Device: "d", Points: pts}); err != nil {
				t.Fatal(err)
			}
		}
	}
	cov, err := w.patrols.Coverage(context.Background(), w.layer, "", day.Format(time.DateOnly))
	if err != nil {
		t.Fatal(err)
	}
	if cov.Level != "grid" || len(cov.Rows) != 4 {
		t.Fatalf("coverage: level %s, %d rows; want grid and 4: %+v", cov.Level, len(cov.Rows), cov)
	}
	for _, r := range cov.Rows {
		var lines []string
		for _, s := range gridmap.TrackStretches(tracks[r.Code]) {
			var xy []string
			for _, p := range s {
				xy = append(xy, fmt.Sprintf("%.9f %.9f", p.Lon, p.Lat))
			}
			lines = append(lines, "LINESTRING("+strings.Join(xy, ",")+")")
		}
		var want, area float64
		err := w.db.Pool.QueryRow(context.Background(), `SELECT
			coalesce(ST_Area(ST_Intersection(g.geom, (SELECT ST_Union(ST_Buffer(ST_GeogFromText(l)::geography, 50)::geometry) FROM unnest($3::text[]) l))::geography), 0),
			ST_Area(g.geom::geography)
			FROM grid_versions g WHERE g.layer_id = $1 AND g.code = $2 AND g.valid_to IS NULL`, w.layer, r.Code, lines).Scan(&want, &area)
		if err != nil {
			t.Fatal(err)
		}
		wantShare := want / area
		t.Logf("%s: %d points, covered %.0f m2 of %.0f (%.4f); PostGIS %.0f m2 (%.4f)", r.Code, r.Points, r.CoveredM2, r.AreaM2, r.Coverage, want, wantShare)
		if r.Workers != 1 || r.Points != len(tracks[r.Code]) {
			t.Errorf("%s: %d workers, %d points; want 1 and %d", r.Code, r.Workers, r.Points, len(tracks[r.Code]))
		}
		if math.Abs(r.AreaM2-area) > area*1e-6 {
			t.Errorf("%s: area %.1f, PostGIS %.1f", r.Code, r.AreaM2, area)
		}
		if math.Abs(r.Coverage-wantShare) > 0.01*wantShare || (wantShare == 0) != (r.Coverage == 0) {
			t.Errorf("%s: coverage %.5f, PostGIS %.5f: more than 1%% apart", r.Code, r.Coverage, wantShare)
		}
	}

	t.Run("a scoped caller gets its street's grids", func(t *testing.T) {
		street := &gridmap.Caller{Kind: gridmap.CallerToken, Name: "s", Role: gridmap.RoleViewer, Scope: &gridmap.Scope{Layer: w.layer, Code: "TS2"}}
		cov, err := w.patrols.Coverage(as(street), w.layer, "grid", day.Format(time.DateOnly))
		if err != nil || len(cov.Rows) != 2 || cov.Rows[0].Code != "TG21" || cov.Rows[1].Code != "TG22" {
			t.Errorf("street TS2's coverage: %+v %v, want TG21 and TG22", cov, err)
		}
	})

	t.Run("idle grids", func(t *testing.T) {
		idle, err := w.patrols.Idle(context.Background(), w.layer, "grid", 1)
		if err != nil || len(idle.Rows) != 4 {
			t.Fatalf("idle for a day: %+v %v, want all four grids", idle, err)
		}
		for _, r := range idle.Rows {
			if never := r.LastPatrol == nil; never != (r.Code == "TG22") {
				t.Errorf("%s: last patrol %v; want one for every grid but TG22", r.Code, r.LastPatrol)
			}
		}
		idle, err = w.patrols.Idle(context.Background(), w.layer, "grid", 30)
		if err != nil || len(idle.Rows) != 1 || idle.Rows[0].Code != "TG22" || idle.Rows[0].Workers != 1 {
			t.Errorf("idle for 30 days: %+v %v, want TG22 alone", idle, err)
		}
	})

	t.Run("bad queries say what to fix", func(t *testing.T) {
		_, err := w.patrols.Coverage(context.Background(), w.layer, "block", "2026-01-01")
		wantCode(t, "an unknown level", err, gridmap.EINVALID)
		_, err = w.patrols.Coverage(context.Background(), w.layer, "", "yesterday")
		wantCode(t, "a bad day", err, gridmap.EINVALID)
		_, err = w.patrols.Coverage(context.Background(), "nosuch-layer", "", "2026-01-01")
		wantCode(t, "an unknown layer", err, gridmap.ENOTFOUND)
		_, err = w.patrols.Idle(context.Background(), w.layer, "", 0)
		wantCode(t, "days 0", err, gridmap.EINVALID)
	})
}
