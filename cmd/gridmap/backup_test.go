package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
)

// runEnv runs gridmap with env and returns what it wrote and its exit status.
func runEnv(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

func onDatabase(conn string) []string {
	return append(withoutDatabaseURL(), "DATABASE_URL="+conn)
}

func box(x0, y0, x1, y1 float64) string {
	return fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,%g],[%g,%g],[%g,%g],[%g,%g],[%g,%g]]]}`, x0, y0, x1, y0, x1, y1, x0, y1, x0, y0)
}

func gridFeature(code, level, parent, geometry string) string {
	p := "null"
	if parent != "" {
		p = fmt.Sprintf("%q", parent)
	}
	return fmt.Sprintf(`{"type":"Feature","properties":{"code":%q,"name":"grid %s","level":%q,"parent":%s},"geometry":%s}`,
		code, code, level, p, geometry)
}

// backupWorld is what the round trip carries: layer bk near Hangzhou
// (district D, streets S1 and S2, grids G11, G12 and G21), grid G11 renamed
// once (two versions), and two reports, one registered and dispatched.
type backupWorld struct {
	reports    []int64
	beforeEdit time.Time
}

func populateBackupWorld(t *testing.T, db *postgres.DB) backupWorld {
	t.Helper()
	ctx := context.Background()
	layers, grids := postgres.NewLayerStore(db), postgres.NewGridStore(db)
	if _, err := layers.PutLayer(ctx, &gridmap.Layer{ID: "bk", Name: "backup", Levels: []string{"district", "street", "grid"}}); err != nil {
		t.Fatal(err)
	}
	fc := `{"type":"FeatureCollection","features":[` + strings.Join([]string{
		gridFeature("D", "district", "", box(120, 30, 120.03, 30.02)),
		gridFeature("S1", "street", "D", box(120, 30, 120.02, 30.02)),
		gridFeature("S2", "street", "D", box(120.02, 30, 120.03, 30.02)),
		gridFeature("G11", "grid", "S1", box(120, 30, 120.01, 30.02)),
		gridFeature("G12", "grid", "S1", box(120.01, 30, 120.02, 30.02)),
		gridFeature("G21", "grid", "S2", box(120.02, 30, 120.03, 30.02)),
	}, ",") + `]}`
	if _, err := grids.Import(ctx, "bk", geo.NewFeatureReader(strings.NewReader(fc), geo.DefaultFieldMap), gridmap.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	w := backupWorld{beforeEdit: time.Now()}
	time.Sleep(10 * time.Millisecond)
	g, err := geojson.UnmarshalGeometry([]byte(box(120, 30, 120.01, 30.02)))
	if err != nil {
		t.Fatal(err)
	}
	f := geojson.NewFeature(g.Geometry())
	f.Properties["code"], f.Properties["name"] = "G11", "renamed G11"
	rename := gridmap.Operation{Op: gridmap.OpPut, Code: "G11", Feature: f}
	if _, err := grids.ApplyChangeset(ctx, "bk", &gridmap.Changeset{Reason: "rename", Author: "tester", Operations: []gridmap.Operation{rename}}); err != nil {
		t.Fatal(err)
	}

	cats := postgres.NewCategoryStore(db)
	if _, err := cats.PutDepartment(ctx, &gridmap.Department{Code: "bk-cg", Name: "城管"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := cats.PutCategory(ctx, &gridmap.Category{Code: "bk-01", Name: "市容环境", Departments: []string{"bk-cg"},
		Limit: gridmap.Limit{Value: 4, Clock: gridmap.ClockWorkingHours}}); err != nil {
		t.Fatal(err)
	}
	loc := postgres.NewLocator(db)
	if err := loc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	tz, _ := time.LoadLocation("Asia/Shanghai")
	reports := postgres.NewReportStore(db, loc, tz)
	for i, p := range []orb.Point{{120.005, 30.01}, {120.025, 30.01}} {
		r := &gridmap.Report{ExternalID: fmt.Sprintf("bk-%d", i), Category: "bk-01", Description: "垃圾堆放", Source: "citizen_app",
			Location: geojson.NewGeometry(p), ReportedAt: time.Date(2026, 11, 20, 10, 0, 0, 0, tz)}
		if _, err := reports.CreateReport(ctx, r); err != nil {
			t.Fatal(err)
		}
		w.reports = append(w.reports, r.ID)
	}
	for _, action := range []string{"register", "dispatch"} {
		if _, err := reports.AddEvent(ctx, w.reports[0], &gridmap.ReportEvent{Action: action, Actor: "tester"}); err != nil {
			t.Fatalf("%s: %v", action, err)
		}
	}
	return w
}

// TestRestoreReplaceOverPartitions: a database holding the days of track
// points a server keeps making (partitions with their parts of
// track_points' key) is backed up, restored, and restored again over
// itself with --replace, which drops those keys and makes them again.
func TestRestoreReplaceOverPartitions(t *testing.T) {
	ctx := context.Background()
	src := pgtest.NewDB(t)
	tz, _ := time.LoadLocation("Asia/Shanghai")
	if _, _, err := postgres.NewPatrolStore(src, tz, 180*24*time.Hour).ExpireTracks(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Pool.Exec(ctx, `INSERT INTO track_points (account_id, device, t, location) VALUES (1, 'phone', now(), ST_SetSRID(ST_MakePoint(120.005, 30.01), 4326))`); err != nil {
		t.Fatal(err)
	}
	var keys int
	if err := src.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_constraint WHERE contype = 'p' AND conparentid <> 0`).Scan(&keys); err != nil || keys < 3 {
		t.Fatalf("%d partitions' keys (%v), want the days'", keys, err)
	}
	file := filepath.Join(t.TempDir(), "parts.dump")
	if out, errOut, code := runEnv(t, onDatabase(src.Pool.Config().ConnString()), "backup", file); code != 0 {
		t.Fatalf("backup: exit %d\n%s%s", code, out, errOut)
	}
	dst := pgtest.ConnString(t)
	for _, args := range [][]string{{"restore", file}, {"restore", "--replace", file}, {"restore", "--replace", file}} {
		if out, errOut, code := runEnv(t, onDatabase(dst), args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	restored, err := postgres.Open(ctx, dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	var points int
	if err := restored.Pool.QueryRow(ctx, `SELECT count(*) FROM track_points`).Scan(&points); err != nil || points != 1 {
		t.Errorf("%d track points after the restores (%v), want 1", points, err)
	}
	var invalid int
	if err := restored.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_index WHERE NOT indisvalid`).Scan(&invalid); err != nil || invalid != 0 {
		t.Errorf("%d indexes left invalid (%v)", invalid, err)
	}
}

// answers reads back, as JSON, what the round trip must keep: lookups at
// points inside, on an edge and outside (now and before the edit), each
// report with its events, the indicators of their day, and the history of
// G11.
func answers(t *testing.T, db *postgres.DB, w backupWorld) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	put := func(key string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out[key] = string(b)
	}
	loc := postgres.NewLocator(db)
	if err := loc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range []orb.Point{{120.005, 30.01}, {120.01, 30.01}, {120.025, 30.015}, {120.0305, 30.01}, {121, 31}} {
		for _, at := range []*time.Time{nil, &w.beforeEdit} {
			q := gridmap.LookupQuery{Lon: p[0], Lat: p[1], Layer: "bk", At: at}
			var a gridmap.LookupAnswer
			if err := loc.Lookup(ctx, q, &a); err != nil {
				t.Fatalf("lookup %v: %v", p, err)
			}
			put(fmt.Sprintf("lookup %v at %v", p, at != nil), a)
		}
	}
	tz, _ := time.LoadLocation("Asia/Shanghai")
	reports := postgres.NewReportStore(db, loc, tz)
	for _, id := range w.reports {
		r, err := reports.Report(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		events, err := reports.Events(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		put(fmt.Sprintf("report %d", id), r)
		put(fmt.Sprintf("events of report %d", id), events)
	}
	from, to := time.Date(2026, 11, 20, 0, 0, 0, 0, tz), time.Date(2026, 11, 21, 0, 0, 0, 0, tz)
	for _, group := range []string{gridmap.StatsByGrid, gridmap.StatsByDepartment} {
		st, err := postgres.NewStatsStore(db).StatsAt(ctx, gridmap.StatsQuery{Layer: "bk", Group: group, From: &from, To: &to}, to)
		if err != nil {
			t.Fatal(err)
		}
		if st.Total.Received != 2 {
			t.Fatalf("stats by %s count %d reports, want 2", group, st.Total.Received)
		}
		put("stats by "+group, st)
	}
	history, err := postgres.NewGridStore(db).History(ctx, "bk", "G11")
	if err != nil {
		t.Fatal(err)
	}
	if len(history) != 2 {
		t.Fatalf("G11 has %d versions, want 2 (import and rename)", len(history))
	}
	put("history of G11", history)
	return out
}

// TestBackupRestoreRoundTrip backs a database up with gridmap backup and
// restores it into an empty one with gridmap restore: lookups, reports with
// their events and grid history read back the same.
func TestBackupRestoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	src := pgtest.NewDB(t)
	w := populateBackupWorld(t, src)
	want := answers(t, src, w)

	// Under PG variables that point elsewhere, which neither gridmap nor
	// the PostgreSQL tools it runs may follow.
	file := filepath.Join(t.TempDir(), "gridmap.dump")
	out, errOut, code := runEnv(t, misleadingEnv(t, src.Pool.Config().ConnString()), "backup", file)
	if code != 0 || !strings.Contains(out, "backed up schema version") {
		t.Fatalf("gridmap backup: exit %d\n%s%s", code, out, errOut)
	}
	entries, _ := os.ReadDir(filepath.Dir(file))
	if len(entries) != 1 {
		t.Errorf("backup left %d files beside the archive, want only the archive", len(entries)-1)
	}

	dst := pgtest.ConnString(t)
	out, errOut, code = runEnv(t, misleadingEnv(t, dst), "restore", file)
	if code != 0 || !strings.Contains(out, "restored") {
		t.Fatalf("gridmap restore: exit %d\n%s%s", code, out, errOut)
	}
	restored, err := postgres.Open(ctx, dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	got := answers(t, restored, w)
	for key, w := range want {
		if got[key] != w {
			t.Errorf("%s differs after the round trip:\nbefore %s\nafter  %s", key, w, got[key])
		}
	}

	t.Run("restore over a database with data is refused without --replace", func(t *testing.T) {
		restored.Close() // --replace needs the database to itself
		_, errOut, code := runEnv(t, onDatabase(dst), "restore", file)
		found := fmt.Sprintf("already holds gridmap schema version %d with data in", postgres.LatestSchemaVersion())
		if code != 1 || !strings.Contains(errOut, "--replace") || !strings.Contains(errOut, found) {
			t.Fatalf("exit %d, want 1 with %q and --replace:\n%s", code, found, errOut)
		}
		out, errOut, code := runEnv(t, onDatabase(dst), "restore", "--replace", file)
		if code != 0 {
			t.Fatalf("restore --replace: exit %d\n%s%s", code, out, errOut)
		}
		again, err := postgres.Open(ctx, dst, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer again.Close()
		got := answers(t, again, w)
		for key, w := range want {
			if got[key] != w {
				t.Errorf("%s differs after restore --replace:\nbefore %s\nafter  %s", key, w, got[key])
			}
		}
	})

	t.Run("a role that owns the database but not PostGIS restores, and restores again with --replace", func(t *testing.T) {
		conn := ownedDatabase(t)
		for _, args := range [][]string{{"restore", file}, {"restore", "--replace", file}} {
			if out, errOut, code := runEnv(t, onDatabase(conn), args...); code != 0 {
				t.Fatalf("gridmap %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
			}
		}
		db, err := postgres.Open(ctx, conn, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		got := answers(t, db, w)
		for key, w := range want {
			if got[key] != w {
				t.Errorf("%s differs after restoring as the database's owner:\nbefore %s\nafter  %s", key, w, got[key])
			}
		}
	})
	// What the database to restore into holds is read from its schema
	// version and its rows.
	targets := []struct {
		name    string
		prepare []string // SQL run on the migrated database; nil: left empty of gridmap
		replace bool
		want    string
	}{
		{"a newly migrated database is refused without --replace, found to hold no data", []string{}, false,
			fmt.Sprintf("already holds gridmap schema version %d with no data", postgres.LatestSchemaVersion())},
		{"a newly migrated database is replaced with --replace", []string{}, true, ""},
		{"a database of a newer schema than the backup's is refused even with --replace",
			[]string{fmt.Sprintf("INSERT INTO goose_db_version (version_id, is_applied) VALUES (%d, true)", postgres.LatestSchemaVersion()+1)}, true,
			fmt.Sprintf("holds gridmap schema version %d, newer than the backup's %d", postgres.LatestSchemaVersion()+1, postgres.LatestSchemaVersion())},
		{"a database of another program is refused even with --replace", nil, true, "no gridmap schema (no goose_db_version table): it is not a gridmap database"},
	}
	for _, tc := range targets {
		t.Run(tc.name, func(t *testing.T) {
			conn := pgtest.ConnString(t)
			if tc.prepare != nil {
				if out, errOut, code := runEnv(t, onDatabase(conn), "migrate"); code != 0 {
					t.Fatalf("gridmap migrate: exit %d\n%s%s", code, out, errOut)
				}
			} else {
				tc.prepare = []string{"CREATE TABLE inventory (item text)", "INSERT INTO inventory VALUES ('chair')"}
			}
			db, err := pgx.Connect(ctx, conn)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range tc.prepare {
				if _, err := db.Exec(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			db.Close(ctx)
			before := tableCount(t, conn)
			args := []string{"restore", file}
			if tc.replace {
				args = []string{"restore", "--replace", file}
			}
			out, errOut, code := runEnv(t, onDatabase(conn), args...)
			if tc.want == "" {
				if code != 0 {
					t.Fatalf("exit %d\n%s%s", code, out, errOut)
				}
				return
			}
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, want 1 with %q:\n%s", code, tc.want, errOut)
			}
			if after := tableCount(t, conn); after != before {
				t.Errorf("the refused restore changed the tables from %d to %d", before, after)
			}
		})
	}
	t.Run("restore --replace is refused while another session uses the database", func(t *testing.T) {
		_, errOut, code := runEnv(t, onDatabase(src.Pool.Config().ConnString()), "restore", "--replace", file)
		if code != 1 || !strings.Contains(errOut, "other sessions") {
			t.Fatalf("exit %d\n%s", code, errOut)
		}
	})
	// The table of contents comes first in the archive and the tables' data
	// after it, the last bytes being the last table's compressed rows: a
	// truncated archive is refused before anything is restored, one damaged
	// near its end fails halfway through and is rolled back.
	damaged := []struct {
		name, want string
		damage     func(b []byte) []byte
	}{
		{"a truncated archive is refused", "not a readable pg_dump archive", func(b []byte) []byte { return b[:len(b)*2/3] }},
		{"an archive damaged in its data restores nothing", "rolled back", func(b []byte) []byte {
			for i := len(b) - 400; i < len(b)-336; i++ {
				b[i] = 0xff
			}
			return b
		}},
	}
	for _, tc := range damaged {
		t.Run(tc.name, func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			bad := filepath.Join(t.TempDir(), "bad.dump")
			if err := os.WriteFile(bad, tc.damage(b), 0o600); err != nil {
				t.Fatal(err)
			}
			empty := pgtest.ConnString(t)
			_, errOut, code := runEnv(t, onDatabase(empty), "restore", bad)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, want 1 with %q:\n%s", code, tc.want, errOut)
			}
			if tables := tableCount(t, empty); tables != 0 {
				t.Errorf("a failed restore left %d tables", tables)
			}
		})
	}
}

// misleadingEnv is onDatabase(conn) with PG variables that point
// elsewhere: a service naming the cluster's postgres database, and a host,
// port and database that do not exist. conn names each setting, so
// gridmap's own connection follows none of them; the PostgreSQL tools it
// runs must not either.
func misleadingEnv(t *testing.T, conn string) []string {
	t.Helper()
	cfg, err := pgconn.ParseConfig(conn)
	if err != nil {
		t.Fatal(err)
	}
	service := filepath.Join(t.TempDir(), "pg_service.conf")
	if err := os.WriteFile(service, fmt.Appendf(nil, "[elsewhere]\nhost=%s\nport=%d\ndbname=postgres\n", cfg.Host, cfg.Port), 0o600); err != nil {
		t.Fatal(err)
	}
	return append(onDatabase(conn), "PGSERVICEFILE="+service, "PGSERVICE=elsewhere",
		"PGHOST=/nonexistent", "PGPORT=1", "PGDATABASE=nowhere", "PGUSER=nobody")
}

// ownedDatabase returns the address of a new database, with PostGIS
// created by the superuser, as a role of its own that owns the database
// and nothing else, as a hosted PostgreSQL gives. Both go when the test ends.
func ownedDatabase(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	conn := pgtest.ConnString(t)
	cfg, err := pgconn.ParseConfig(conn)
	if err != nil {
		t.Fatal(err)
	}
	role := fmt.Sprintf("owner_%d", time.Now().UnixNano())
	admin, err := pgx.Connect(ctx, strings.Replace(conn, "dbname="+cfg.Database, "dbname=postgres", 1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{cfg.Database}.Sanitize()+" WITH (FORCE)")
		_, _ = admin.Exec(ctx, "DROP ROLE IF EXISTS "+role)
		admin.Close(ctx)
	})
	for _, q := range []string{"CREATE ROLE " + role + " LOGIN", "ALTER DATABASE " + pgx.Identifier{cfg.Database}.Sanitize() + " OWNER TO " + role} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return strings.Replace(conn, "user="+cfg.User, "user="+role, 1)
}

// tableCount counts the tables of the database at conn outside PostGIS.
func tableCount(t *testing.T, conn string) int {
	t.Helper()
	db, err := postgres.Open(context.Background(), conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	err = db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM information_schema.tables
		WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> 'spatial_ref_sys'`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRestoreBadInput gives gridmap restore what is not a backup: each is
// an error that says what to give instead, and the database is untouched.
func TestRestoreBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	unreadable := write("unreadable.dump", "PGDMP")
	if err := os.Chmod(unreadable, 0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no file given", []string{"restore"}, "restore needs the FILE"},
		{"a missing file", []string{"restore", filepath.Join(dir, "nothing.dump")}, "does not exist"},
		{"a directory", []string{"restore", dir}, "is a directory"},
		{"a plain SQL dump", []string{"restore", write("plain.sql", "--\n-- PostgreSQL database dump\n--\n")}, "not a pg_dump custom-format archive"},
		{"an empty file", []string{"restore", write("empty.dump", "")}, "not a pg_dump custom-format archive"},
		{"a corrupt archive", []string{"restore", write("corrupt.dump", "PGDMP\x01\x0e\x00garbage")}, "not a readable pg_dump archive"},
	}
	if os.Geteuid() != 0 { // root reads any file
		tests = append(tests, struct {
			name string
			args []string
			want string
		}{"an unreadable file", []string{"restore", unreadable}, "cannot read"})
	}
	// An archive whose version table claims a schema newer than this binary's.
	newer := pgtest.NewDB(t)
	if _, err := newer.Pool.Exec(context.Background(), "INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1, true)", postgres.LatestSchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	newerFile := filepath.Join(dir, "newer.dump")
	if _, err := postgres.Backup(context.Background(), newer, newer.Pool.Config().ConnString(), newerFile); err != nil {
		t.Fatal(err)
	}
	tests = append(tests, struct {
		name string
		args []string
		want string
	}{"an archive of a newer schema", []string{"restore", newerFile},
		fmt.Sprintf("holds schema version %d, and this gridmap knows versions up to %d only: the backup was made by a newer gridmap",
			postgres.LatestSchemaVersion()+1, postgres.LatestSchemaVersion())})
	conn := pgtest.ConnString(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := runEnv(t, onDatabase(conn), tc.args...)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, want 1 with %q:\n%s", code, tc.want, errOut)
			}
		})
	}
	if tables := tableCount(t, conn); tables != 0 {
		t.Errorf("bad input left %d tables in the database", tables)
	}
}

// TestBackupFailureLeavesNoFile makes backups fail: before pg_dump runs
// (no gridmap schema, a missing folder) and once pg_dump has started
// writing (a role that may read none of the tables). Each fails saying
// why, and the destination is as it was: an older file of that name is
// left whole, where there was none there is still none, and nothing is
// left beside it.
func TestBackupFailureLeavesNoFile(t *testing.T) {
	ctx := context.Background()
	db := pgtest.NewDB(t)
	conn := db.Pool.Config().ConnString()
	cfg, err := pgconn.ParseConfig(conn)
	if err != nil {
		t.Fatal(err)
	}
	role := fmt.Sprintf("reader_%d", time.Now().UnixNano())
	if _, err := db.Pool.Exec(ctx, "CREATE ROLE "+role+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = db.Pool.Exec(ctx, "DROP ROLE "+role) })
	tests := []struct {
		name, conn, want string
		old              bool // an older backup of that name is there
	}{
		{"a database without the gridmap schema", pgtest.ConnString(t), "nothing to back up", true},
		{"pg_dump refused the tables, over an older backup", strings.Replace(conn, "user="+cfg.User, "user="+role, 1), "pg_dump failed, no backup written", true},
		{"pg_dump refused the tables, with no older backup", strings.Replace(conn, "user="+cfg.User, "user="+role, 1), "pg_dump failed, no backup written", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "gridmap.dump")
			if tc.old {
				if err := os.WriteFile(file, []byte("yesterday's backup"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, errOut, code := runEnv(t, onDatabase(tc.conn), "backup", file)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, want 1 with %q:\n%s", code, tc.want, errOut)
			}
			if strings.HasPrefix(tc.want, "pg_dump") && !strings.Contains(errOut, "permission denied") {
				t.Errorf("the error does not carry pg_dump's reason:\n%s", errOut)
			}
			b, err := os.ReadFile(file)
			switch {
			case tc.old && string(b) != "yesterday's backup":
				t.Errorf("the old backup now holds %q (%v)", b, err)
			case !tc.old && !errors.Is(err, os.ErrNotExist):
				t.Errorf("a failed backup left a file of %d bytes (%v)", len(b), err)
			}
			entries, _ := os.ReadDir(dir)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if want := map[bool]int{true: 1, false: 0}[tc.old]; len(names) != want {
				t.Errorf("files in the folder: %v; want %d", names, want)
			}
		})
	}
	t.Run("a missing folder", func(t *testing.T) {
		_, errOut, code := runEnv(t, onDatabase(conn), "backup", filepath.Join(t.TempDir(), "no", "such", "folder", "x.dump"))
		if code != 1 || !strings.Contains(errOut, "cannot write the backup") {
			t.Errorf("exit %d\n%s", code, errOut)
		}
	})
}

// restoreLockID is postgres.restoreLockID, which gridmap restore holds
// while it loads a backup.
const restoreLockID = 0x6772_6964_7273_74

// TestServeRefusedDuringRestore starts gridmap serve and gridmap migrate
// on a database while a restore holds it: each refuses, saying why, and
// leaves the database as it was.
func TestServeRefusedDuringRestore(t *testing.T) {
	ctx := context.Background()
	conn := pgtest.ConnString(t)
	restoring, err := pgx.Connect(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	defer restoring.Close(ctx)
	if _, err := restoring.Exec(ctx, "SELECT pg_advisory_lock($1)", restoreLockID); err != nil {
		t.Fatal(err)
	}
	const want = "gridmap restore is loading a backup into this database: start again once it has finished"
	s := launchServe(t, onDatabase(conn), filepath.Join(t.TempDir(), "data"))
	select {
	case err := <-s.done:
		if err == nil || !strings.Contains(s.stderr.String(), want) {
			t.Errorf("serve exited with %v, want a failure saying %q:\n%s", err, want, s.stderr)
		}
	case <-time.After(time.Minute):
		t.Fatalf("serve still runs a minute into the restore\n%s", s.stderr)
	}
	if _, errOut, code := runEnv(t, onDatabase(conn), "migrate"); code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("migrate: exit %d, want 1 with %q:\n%s", code, want, errOut)
	}
	if tables := tableCount(t, conn); tables != 0 {
		t.Errorf("%d tables created under the restore", tables)
	}
}
