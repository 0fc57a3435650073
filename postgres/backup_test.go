package postgres_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/gridmap/gridmap/postgres"
)

// TestBackupToolEnv turns the connection strings gridmap accepts into the
// libpq environment pg_dump and pg_restore read: the password never on a
// command line, pgx's own pool settings left out.
func TestBackupToolEnv(t *testing.T) {
	tests := []struct {
		name, conn, db string
		want           []string
	}{
		{"a URL with a password and pool settings",
			"postgres://app:s3cret@db.example:6543/city?sslmode=require&pool_max_conns=20", "city",
			[]string{"PGHOST=db.example", "PGPORT=6543", "PGUSER=app", "PGPASSWORD=s3cret", "PGDATABASE=city", "PGSSLMODE=require"}},
		{"the managed cluster's unix socket",
			"host=/tmp/gridmap-abc port=5432 user=gridmap dbname=gridmap sslmode=disable", "gridmap",
			[]string{"PGHOST=/tmp/gridmap-abc", "PGPORT=5432", "PGUSER=gridmap", "PGDATABASE=gridmap", "PGSSLMODE=disable"}},
		{"key=value with a password",
			"host=db port=5432 user=u password=p dbname=d sslmode=verify-full", "d",
			[]string{"PGPASSWORD=p", "PGSSLMODE=verify-full"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, db, err := postgres.ToolEnv(tt.conn)
			if err != nil {
				t.Fatal(err)
			}
			if db != tt.db {
				t.Errorf("database %q, want %q", db, tt.db)
			}
			for _, w := range tt.want {
				if !slices.Contains(env, w) {
					t.Errorf("environment lacks %s", w)
				}
			}
			for _, e := range env {
				if strings.Contains(e, "pool_max_conns") {
					t.Errorf("pgx's pool setting reached libpq: %s", e)
				}
			}
		})
	}
	if _, _, err := postgres.ToolEnv("postgres://[bad"); err == nil {
		t.Error("a malformed address was accepted")
	}
}

func TestBackupArchiveTables(t *testing.T) {
	list := `;
; Archive created at 2026-11-30 01:19:19 UTC
;     dbname: gridmap
;
; Selected TOC Entries:
;
4; 3079 16385 EXTENSION - postgis 
215; 1259 16390 TABLE public grid_versions gridmap
216; 1259 16400 VIEW public grids gridmap
4310; 0 16390 TABLE DATA public grid_versions gridmap
230; 1259 16500 TABLE public goose_db_version gridmap
`
	got := postgres.ArchiveTables([]byte(list))
	if want := []string{"public.grid_versions", "public.goose_db_version"}; !slices.Equal(got, want) {
		t.Errorf("tables %v, want %v", got, want)
	}
}
