package main_test

import (
	"context"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/migrations"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
)

// oldSchema is the schema before people in the field, analytics and
// indicators (migrations 17 on).
const oldSchema = 16

// oldData is what a gridmap at schema 16 had written: layer old with
// district D > street S > grids G1 and G2, G1 renamed on 2025-06-01 (its
// version 1 closed, version 2 current), and report old-1 in G1, registered
// and dispatched, with its three events. Grid tiles (grid_shapes) are left
// out: lookups, reports and indicators do not read them.
const oldData = `
INSERT INTO layers (id, name, kind, levels, data_version) VALUES ('old', 'old layer', 'comprehensive', '{district,street,grid}', 2);
INSERT INTO grid_versions (layer_id, code, version, name, level, parent_code, geom, valid_from, valid_to, author, reason) VALUES
  ('old', 'D', 1, 'District', 'district', NULL, ST_Multi(ST_MakeEnvelope(110, 20, 110.02, 20.02, 4326)), '2025-01-01Z', NULL, 'import', ''),
  ('old', 'S', 1, 'Street', 'street', 'D', ST_Multi(ST_MakeEnvelope(110, 20, 110.02, 20.02, 4326)), '2025-01-01Z', NULL, 'import', ''),
  ('old', 'G1', 1, 'Grid one', 'grid', 'S', ST_Multi(ST_MakeEnvelope(110, 20, 110.01, 20.02, 4326)), '2025-01-01Z', '2025-06-01Z', 'import', ''),
  ('old', 'G1', 2, 'Grid one renamed', 'grid', 'S', ST_Multi(ST_MakeEnvelope(110, 20, 110.01, 20.02, 4326)), '2025-06-01Z', NULL, 'editor', 'rename'),
  ('old', 'G2', 1, 'Grid two', 'grid', 'S', ST_Multi(ST_MakeEnvelope(110.01, 20, 110.02, 20.02, 4326)), '2025-01-01Z', NULL, 'import', '');
INSERT INTO departments (code, name) VALUES ('old-cg', '城管');
INSERT INTO categories (code, name, departments, limit_value, limit_clock) VALUES ('old-01', '市容环境', '{old-cg}', 4, 'working_hours');
INSERT INTO reports (external_id, content_hash, category, description, location, crs, source, reported_at, received_at,
    status, layer_id, primary_code, tier, due_at, assignment, revision, scope_codes, updated_at)
SELECT 'old-1', '\x00'::bytea, 'old-01', '垃圾堆放', ST_SetSRID(ST_MakePoint(110.005, 20.01), 4326), 'wgs84', 'citizen_app',
    '2025-07-01T10:00:00+08', '2025-07-01T10:00:05+08', 'dispatched', 'old', 'G1', 'grid', '2025-07-01T14:00:05+08',
    jsonb_build_object('layer', 'old', 'tier', 'grid', 'co_owners', '[]'::jsonb,
        'primary', jsonb_build_object('code', 'G1', 'name', 'Grid one renamed', 'level', 'grid', 'distance_m', 0,
            'chain', '[{"code":"D","name":"District","level":"district","version":1},{"code":"S","name":"Street","level":"street","version":1},{"code":"G1","name":"Grid one renamed","level":"grid","version":2}]'::jsonb),
        'departments', '[{"code":"old-cg","name":"城管"}]'::jsonb,
        'due_at', '2025-07-01T14:00:05+08:00', 'boundary_version', g.id,
        'explanation', 'the point is in G1 Grid one renamed (grid); category old-01 goes to old-cg; due in 4 working hours.'),
    2, '{D,G1,S}', '2025-07-01T10:20:00+08'
FROM grid_versions g WHERE g.layer_id = 'old' AND g.code = 'G1' AND g.version = 2;
INSERT INTO report_events (report_id, action, from_status, to_status, actor, note, departments, at)
SELECT r.id, e.action, e.from_status, e.to_status, e.actor, '', '{old-cg}', e.at::timestamptz
FROM reports r, (VALUES ('report', NULL, 'reported', 'citizen_app', '2025-07-01T10:00:05+08'),
                        ('register', 'reported', 'registered', 'operator', '2025-07-01T10:10:00+08'),
                        ('dispatch', 'registered', 'dispatched', 'operator', '2025-07-01T10:20:00+08')) e (action, from_status, to_status, actor, at)
WHERE r.external_id = 'old-1';
`

// latestSchema is the newest migration's number.
func latestSchema(t *testing.T) int64 {
	t.Helper()
	names, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("listing migrations: %v", err)
	}
	v, err := strconv.ParseInt(strings.SplitN(names[len(names)-1], "_", 2)[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestUpgradeFromSchema16 writes data as schema 16 stored it, then brings it
// to today's schema two ways, migrating in place and restoring a backup of
// it with gridmap restore: through today's stores the grids look up (now
// and as of before the rename), G1 keeps its history, the report reads
// back with its events, and the indicators count it.
func TestUpgradeFromSchema16(t *testing.T) {
	ctx := context.Background()
	conn := pgtest.ConnString(t)
	db, err := postgres.Open(ctx, conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.MigrateTo(ctx, oldSchema); err != nil {
		t.Fatal(err)
	}
	if v, err := db.SchemaVersion(ctx); err != nil || v != oldSchema {
		t.Fatalf("schema version %d, %v; want %d", v, err, oldSchema)
	}
	if _, err := db.Pool.Exec(ctx, oldData); err != nil {
		t.Fatalf("writing schema %d data: %v", oldSchema, err)
	}

	// A backup keeps the schema it finds: it never migrates.
	file := filepath.Join(t.TempDir(), "old.dump")
	out, errOut, code := runEnv(t, onDatabase(conn), "backup", file)
	if code != 0 || !strings.Contains(out, "schema version 16") {
		t.Fatalf("gridmap backup: exit %d\n%s%s", code, out, errOut)
	}

	latest := latestSchema(t)
	t.Run("migrated in place", func(t *testing.T) {
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		checkUpgraded(t, db, latest)
	})
	t.Run("restored from a backup", func(t *testing.T) {
		fresh := pgtest.ConnString(t)
		out, errOut, code := runEnv(t, onDatabase(fresh), "restore", file)
		if code != 0 || !strings.Contains(out, "schema version 16, migrated to "+strconv.FormatInt(latest, 10)) {
			t.Fatalf("gridmap restore: exit %d\n%s%s", code, out, errOut)
		}
		restored, err := postgres.Open(ctx, fresh, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer restored.Close()
		checkUpgraded(t, restored, latest)
	})
}

// checkUpgraded reads oldData back through today's stores.
func checkUpgraded(t *testing.T, db *postgres.DB, latest int64) {
	t.Helper()
	ctx := context.Background()
	if v, err := db.SchemaVersion(ctx); err != nil || v != latest {
		t.Fatalf("schema version %d, %v; want %d", v, err, latest)
	}
	loc := postgres.NewLocator(db)
	if err := loc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	beforeRename := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	lookups := []struct {
		name     string
		lon, lat float64
		at       *time.Time
		chain    string
	}{
		{"G1 now", 110.005, 20.01, nil, "D:District>S:Street>G1:Grid one renamed:2"},
		{"G1 before the rename", 110.005, 20.01, &beforeRename, "D:District>S:Street>G1:Grid one:1"},
		{"G2", 110.015, 20.01, nil, "D:District>S:Street>G2:Grid two:1"},
	}
	for _, l := range lookups {
		var a gridmap.LookupAnswer
		if err := loc.Lookup(ctx, gridmap.LookupQuery{Lon: l.lon, Lat: l.lat, Layer: "old", At: l.at}, &a); err != nil {
			t.Fatalf("lookup %s: %v", l.name, err)
		}
		var chain []string
		if len(a.Layers) == 1 {
			for _, g := range a.Layers[0].Chain {
				s := g.Code + ":" + g.Name
				if g.Level == "grid" {
					s += ":" + strconv.Itoa(g.Version)
				}
				chain = append(chain, s)
			}
		}
		if got := strings.Join(chain, ">"); got != l.chain {
			t.Errorf("lookup %s: %q, want %q", l.name, got, l.chain)
		}
	}
	history, err := postgres.NewGridStore(db).History(ctx, "old", "G1")
	if err != nil || len(history) != 2 || history[0].Name != "Grid one" || history[1].Reason != "rename" {
		t.Errorf("history of G1: %d versions, %v", len(history), err)
	}

	tz, _ := time.LoadLocation("Asia/Shanghai")
	reports := postgres.NewReportStore(db, loc, tz)
	var id int64
	if err := db.Pool.QueryRow(ctx, "SELECT id FROM reports WHERE external_id = 'old-1'").Scan(&id); err != nil {
		t.Fatal(err)
	}
	r, err := reports.Report(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != gridmap.StatusDispatched || r.Assignment.Primary == nil || r.Assignment.Primary.Code != "G1" || len(r.Assignment.Departments) != 1 {
		t.Errorf("report old-1 reads back as %+v", r)
	}
	events, err := reports.Events(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range events {
		actions = append(actions, e.Action)
	}
	if strings.Join(actions, ",") != "report,register,dispatch" {
		t.Errorf("events of report old-1: %v", actions)
	}

	// Reports are kept by month since migration 30: old-1 keeps its id, in
	// the partition of the reports from before; its external_id still
	// refuses other content, and a new report takes an id of its month.
	var partition string
	if err := db.Pool.QueryRow(ctx, "SELECT tableoid::regclass::text FROM reports WHERE id = $1", id).Scan(&partition); err != nil || partition != "reports_before" {
		t.Errorf("report old-1 is in %q (%v), want reports_before", partition, err)
	}
	other := &gridmap.Report{ExternalID: "old-1", Category: "old-01", Description: "另一件事", Source: "citizen_app",
		Location: geojson.NewGeometry(orb.Point{110.005, 20.01})}
	if _, err := reports.CreateReport(ctx, other); gridmap.ErrorCode(err) != gridmap.ECONFLICT {
		t.Errorf("another report as old-1: %v, want ECONFLICT", err)
	}
	fresh := &gridmap.Report{ExternalID: "new-1", Category: "old-01", Description: "垃圾堆放", Source: "citizen_app",
		Location: geojson.NewGeometry(orb.Point{110.015, 20.01})}
	if created, err := reports.CreateReport(ctx, fresh); err != nil || !created {
		t.Fatalf("a new report: %v %v", created, err)
	}
	month := fresh.ReceivedAt.UTC()
	if floor := int64(month.Year()*100+int(month.Month())) * 1_000_000_000; fresh.ID <= floor || fresh.ID >= floor+1_000_000_000 {
		t.Errorf("the new report's id %d is not one of %s's", fresh.ID, month.Format("2006-01"))
	}
	if err := db.Pool.QueryRow(ctx, "SELECT tableoid::regclass::text FROM reports WHERE id = $1", fresh.ID).Scan(&partition); err != nil ||
		partition != "reports_"+month.Format("200601") {
		t.Errorf("the new report is in %q (%v)", partition, err)
	}

	from, to := time.Date(2025, 7, 1, 0, 0, 0, 0, tz), time.Date(2025, 7, 2, 0, 0, 0, 0, tz)
	stats := postgres.NewStatsStore(db)
	for _, group := range []string{gridmap.StatsByGrid, gridmap.StatsByStreet, gridmap.StatsByDepartment} {
		st, err := stats.StatsAt(ctx, gridmap.StatsQuery{Layer: "old", Group: group, From: &from, To: &to}, to)
		if err != nil {
			t.Fatalf("stats by %s: %v", group, err)
		}
		if f := st.Total.StatsFigures; f.Received != 1 || f.Registered != 1 || f.Closed != 0 || len(st.Rows) != 1 {
			t.Errorf("stats by %s: %d received, %d registered, %d closed in %d rows; want the one report, registered, in one row",
				group, f.Received, f.Registered, f.Closed, len(st.Rows))
		}
	}
}
