package postgres_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
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
	t.Run("the tools get what pgx resolved and no other PG variable", func(t *testing.T) {
		for k, v := range map[string]string{"PGHOST": "/nonexistent", "PGPORT": "1", "PGDATABASE": "elsewhere", "PGUSER": "someone",
			"PGPASSWORD": "theirs", "PGSERVICEFILE": "/nonexistent/pg_service.conf", "PGOPTIONS": "-c search_path=nowhere",
			"PGSSLMODE": "require"} {
			t.Setenv(k, v)
		}
		env, _, err := postgres.ToolEnv("host=/tmp/gridmap-abc port=5432 user=gridmap dbname=gridmap")
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{"PGHOST=/tmp/gridmap-abc", "PGPORT=5432", "PGUSER=gridmap", "PGDATABASE=gridmap", "PGSSLMODE=require", "PGPASSWORD=theirs"} {
			if !slices.Contains(env, w) {
				t.Errorf("environment lacks %s", w)
			}
		}
		seen := map[string]bool{}
		for _, e := range env {
			k, _, _ := strings.Cut(e, "=")
			if seen[k] {
				t.Errorf("%s given twice", k)
			}
			seen[k] = true
			if k == "PGSERVICE" || k == "PGSERVICEFILE" || k == "PGOPTIONS" {
				t.Errorf("%s reached the tools", e)
			}
		}
	})
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

func TestBackupCopySchemaVersion(t *testing.T) {
	header := "--\n-- Data for Name: goose_db_version\n--\n\nCOPY public.goose_db_version (id, version_id, is_applied, tstamp) FROM stdin;\n"
	tests := []struct {
		name, dump string
		want       int64
		ok         bool
	}{
		{"the newest applied version", header + "1\t0\tt\t2026-11-30\n2\t26\tt\t2026-11-30\n3\t25\tt\t2026-11-30\n\\.\n", 26, true},
		{"a version rolled back is not counted", header + "1\t0\tt\tx\n2\t27\tf\tx\n\\.\n", 0, true},
		{"rows after the end mark are another table's", header + "1\t3\tt\tx\n\\.\n4\t99\tt\tx\n", 3, true},
		{"columns in another order", "COPY public.goose_db_version (version_id, id, tstamp, is_applied) FROM stdin;\n12\t1\tx\tt\n\\.\n", 12, true},
		{"no rows", header + "\\.\n", 0, false},
		{"no such table", "--\n-- PostgreSQL database dump complete\n--\n", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := postgres.CopySchemaVersion(tt.dump)
			if got != tt.want || ok != tt.ok {
				t.Errorf("version %d, %v; want %d, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestRestoreExcludesMigrations runs migrations, and a second restore,
// while a restore is loading its archive: both are refused and change
// nothing, and the restored database migrates once the restore is over.
func TestRestoreExcludesMigrations(t *testing.T) {
	ctx := context.Background()
	src := pgtest.NewDB(t)
	file := filepath.Join(t.TempDir(), "gridmap.dump")
	if _, err := postgres.Backup(ctx, src, src.Pool.Config().ConnString(), file); err != nil {
		t.Fatal(err)
	}
	conn := pgtest.ConnString(t)
	target, err := postgres.OpenWith(ctx, conn, nil, postgres.Options{MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	loaded := false
	err = postgres.RestoreArchive(ctx, target, conn, file, false, func() {
		loaded = true
		other, err := postgres.Open(ctx, conn, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		if err := other.Migrate(ctx); !errors.Is(err, postgres.ErrRestoring) {
			t.Errorf("migrating during the restore: %v, want ErrRestoring", err)
		}
		if err := postgres.Restore(ctx, other, conn, file, true); err == nil || !strings.Contains(err.Error(), "another gridmap restore") {
			t.Errorf("a second restore during the restore: %v", err)
		}
		var migrated bool
		if err := other.Pool.QueryRow(ctx, "SELECT to_regclass('goose_db_version') IS NOT NULL").Scan(&migrated); err != nil {
			t.Fatal(err)
		} else if migrated {
			t.Error("the refused migrations created the schema under the restore")
		}
	})
	if err != nil || !loaded {
		t.Fatalf("restore: %v (loading reached: %v)", err, loaded)
	}
	if err := target.Migrate(ctx); err != nil {
		t.Errorf("migrating after the restore: %v", err)
	}
	if v, err := target.SchemaVersion(ctx); err != nil || v != postgres.LatestSchemaVersion() {
		t.Errorf("schema version %d (%v) after the restore, want %d", v, err, postgres.LatestSchemaVersion())
	}
}
