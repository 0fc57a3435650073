package server

import (
	"context"
	"strings"
	"testing"

	"github.com/gridmap/gridmap/postgres/pgtest"
)

// TestReadOnlyAndFullDatabase: a database that takes no writes (a
// standby, or set read-only) and one out of disk answer writes with a 503
// that says so and carries Retry-After, change nothing, and leave reads
// and lookups working; once writable again, writes go through on the same
// server.
func TestReadOnlyAndFullDatabase(t *testing.T) {
	db := pgtest.NewDB(t)
	ts := newTestServerOn(t, Config{}, db)
	ctx := context.Background()
	if r := do(t, "PUT", ts.url+"/v1/layers/ro", `{"name":"ro","kind":"comprehensive","levels":["district","grid"]}`); r.status >= 300 {
		t.Fatalf("layer: %d %s", r.status, r.body)
	}
	body := `{"type":"FeatureCollection","features":[` + feat("RD", "", rect(40, 10, 0.02, 0.02)) + `]}`
	if r := do(t, "POST", ts.url+"/v1/layers/ro/import", body); r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	if r := do(t, "PUT", ts.url+"/v1/categories/ro-cat", `{"name":"ro","departments":[],"limit":{"value":2,"clock":"working_days"}}`); r.status/100 != 2 {
		t.Fatalf("category: %d %s", r.status, r.body)
	}
	report := func(id string) response {
		return do(t, "POST", ts.url+"/v1/reports", `{"external_id":"`+id+`","category":"ro-cat","location":{"type":"Point","coordinates":[40.01,10.01]}}`)
	}
	eventually := func(what string, ok func() bool) {
		t.Helper()
		eventuallyWithin(t, 30e9, what, ok)
	}
	eventually("the layer reaches the lookup index", func() bool {
		return do(t, "GET", ts.url+"/v1/lookup?layer=ro&lon=40.01&lat=10.01", "").status == 200
	})
	var name string
	if err := db.Pool.QueryRow(ctx, `SELECT current_database()`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		t.Helper()
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM reports`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	for _, tc := range []struct {
		name, breaks, fix, says string
	}{
		{"read-only", `ALTER DATABASE ` + name + ` SET default_transaction_read_only = on`,
			`ALTER DATABASE ` + name + ` RESET default_transaction_read_only`, "read-only"},
		{"out of disk", `CREATE FUNCTION ro_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full'; END $$;
			CREATE TRIGGER ro_disk_full BEFORE INSERT ON reports FOR EACH STATEMENT EXECUTE FUNCTION ro_disk_full()`,
			`DROP TRIGGER ro_disk_full ON reports; DROP FUNCTION ro_disk_full()`, "out of disk"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := count()
			if _, err := db.Pool.Exec(ctx, tc.breaks); err != nil {
				t.Fatal(err)
			}
			db.Pool.Reset() // connections opened from now on have the setting
			r := report("ro-" + strings.ReplaceAll(tc.name, " ", "-"))
			if r.status != 503 || !strings.Contains(string(r.body), tc.says) || r.header.Get("Retry-After") == "" {
				t.Errorf("a report: %d %s (Retry-After %q); want 503 saying %q with Retry-After", r.status, r.body, r.header.Get("Retry-After"), tc.says)
			}
			if n := count(); n != before {
				t.Errorf("%d reports after the refused one; %d before", n, before)
			}
			for _, path := range []string{"/v1/lookup?layer=ro&lon=40.01&lat=10.01", "/v1/reports?limit=5", "/v1/layers/ro/grids/RD"} {
				if r := do(t, "GET", ts.url+path, ""); r.status != 200 {
					t.Errorf("GET %s: %d %s", path, r.status, r.body)
				}
			}
			conn, err := db.Pool.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, err = conn.Exec(ctx, `SET default_transaction_read_only = off`)
			if err == nil {
				_, err = conn.Exec(ctx, tc.fix)
			}
			conn.Release()
			if err != nil {
				t.Fatal(err)
			}
			db.Pool.Reset()
			if r := report("ro-after-" + strings.ReplaceAll(tc.name, " ", "-")); r.status != 201 {
				t.Errorf("a report once writable again: %d %s", r.status, r.body)
			}
		})
	}
}
