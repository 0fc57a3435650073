// Package pgtest gives tests a fresh, migrated gridmap database in a real
// PostGIS: the managed cluster of package postgres, shared by every test
// binary on the machine (under $GRIDMAP_TEST_DATA, default a folder in the
// temporary directory), with one new database per test package.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/jackc/pgx/v5"
)

var (
	mu      sync.Mutex
	cluster *postgres.Cluster
	dbs     []string
)

// Dir is the data directory of the shared test cluster.
func Dir() string {
	if d := os.Getenv("GRIDMAP_TEST_DATA"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("gridmap-test-%d", os.Getuid()))
}

// Main runs a package's tests and then drops its databases and stops the
// shared cluster if no other test binary is using it. Call it from TestMain.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main for a TestMain with more to do afterwards: it returns the
// exit code instead of exiting.
func Run(m *testing.M) int {
	code := m.Run()
	if err := release(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// ConnString returns a connection string for a new, empty database (PostGIS
// created, no migrations) in the shared cluster. The test fails with the
// reason when the cluster cannot start; it never skips.
func ConnString(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if cluster == nil {
		c, err := postgres.NewCluster(Dir(), nil)
		if err != nil {
			t.Fatalf("managed PostgreSQL for tests: %v", err)
		}
		c.Throwaway = true
		if err := c.Start(ctx); err != nil {
			t.Fatalf("starting managed PostgreSQL for tests in %s: %v", Dir(), err)
		}
		cluster = c
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "test_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(ctx, cluster.ConnString("postgres"))
	if err != nil {
		t.Fatalf("connecting to test cluster: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("creating test database: %v", err)
	}
	dbs = append(dbs, name)
	dbConn, err := pgx.Connect(ctx, cluster.ConnString(name))
	if err != nil {
		t.Fatalf("connecting to test database: %v", err)
	}
	defer dbConn.Close(ctx)
	if _, err := dbConn.Exec(ctx, "CREATE EXTENSION postgis"); err != nil {
		t.Fatalf("creating PostGIS in test database: %v", err)
	}
	return cluster.ConnString(name)
}

// NewDB returns an open, migrated database of its own for a test or a
// package; it is closed when the test ends.
func NewDB(t testing.TB) *postgres.DB {
	t.Helper()
	return NewDBWith(t, postgres.Options{})
}

// NewDBWith is NewDB with a pool tuned by opts (a pool of one connection,
// say).
func NewDBWith(t testing.TB, opts postgres.Options) *postgres.DB {
	t.Helper()
	ctx := context.Background()
	db, err := postgres.OpenWith(ctx, ConnString(t), nil, opts)
	if err != nil {
		t.Fatalf("opening test database: %v", err)
	}
	t.Cleanup(db.Close)
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrating test database: %v", err)
	}
	return db
}

var (
	sharedOnce sync.Once
	shared     *postgres.DB
	sharedConn string
	sharedErr  error
)

// Shared returns the package's one migrated database, created on first use
// and closed by Main. Tests sharing it keep to their own layers.
func Shared(t testing.TB) *postgres.DB {
	t.Helper()
	sharedOnce.Do(func() {
		ctx := context.Background()
		sharedConn = ConnString(t)
		if shared, sharedErr = postgres.Open(ctx, sharedConn, nil); sharedErr == nil {
			sharedErr = shared.Migrate(ctx)
		}
	})
	if sharedErr != nil {
		t.Fatalf("shared test database: %v", sharedErr)
	}
	return shared
}

// SharedWith opens a pool of its own, tuned by opts, on the package's one
// migrated database (see Shared); it is closed when the test ends.
func SharedWith(t testing.TB, opts postgres.Options) *postgres.DB {
	t.Helper()
	Shared(t)
	db, err := postgres.OpenWith(context.Background(), sharedConn, nil, opts)
	if err != nil {
		t.Fatalf("opening the shared test database: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

func release() error {
	if shared != nil {
		shared.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if cluster == nil {
		return nil
	}
	ctx := context.Background()
	if conn, err := pgx.Connect(ctx, cluster.ConnString("postgres")); err == nil {
		for _, name := range dbs {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		}
		conn.Close(ctx)
	}
	err := cluster.Release(true)
	cluster = nil
	return err
}

// NYCDir returns the folder of the real New York data (../shared/data/nyc
// beside the repository, or $GRIDMAP_NYC_DATA), skipping the test with the
// reason when it is absent.
func NYCDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("GRIDMAP_NYC_DATA")
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		for root := wd; ; root = filepath.Dir(root) {
			if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
				dir = filepath.Join(root, "..", "shared", "data", "nyc")
				break
			}
			if root == filepath.Dir(root) {
				t.Fatalf("no go.mod above %s", wd)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "L3_tracts2010.geojson")); err != nil {
		t.Skipf("real NYC data not found (%v): these checks need ../shared/data/nyc beside the repository", err)
	}
	return dir
}

// LoadNYCHierarchy imports the New York borough > NTA > tract hierarchy
// into layer, unless it is there already. Skips the test when the data is absent.
func LoadNYCHierarchy(t testing.TB, db *postgres.DB, layer string) {
	t.Helper()
	dir := NYCDir(t)
	ctx := context.Background()
	if _, err := postgres.NewLayerStore(db).Layer(ctx, layer); err == nil {
		return
	}
	grids := postgres.NewGridStore(db)
	loads := []struct {
		file   string
		fields geo.FieldMap
		levels []string
	}{
		{"L1_boroughs.geojson", geo.FieldMap{Code: "borocode", Name: "boroname", DefaultLevel: "borough"}, []string{"borough", "nta", "tract"}},
		{"L2_nta2010.geojson", geo.FieldMap{Code: "ntacode", Name: "ntaname", Parent: "borocode", DefaultLevel: "nta"}, nil},
		{"L3_tracts2010.geojson", geo.FieldMap{Code: "boroct2010", Name: "ctlabel", Parent: "ntacode", DefaultLevel: "tract"}, nil},
	}
	for _, l := range loads {
		f, err := os.Open(filepath.Join(dir, l.file))
		if err != nil {
			t.Fatal(err)
		}
		_, err = grids.Import(ctx, layer, geo.NewFeatureReader(f, l.fields), gridmap.ImportOptions{MakeValid: true, Levels: l.levels})
		f.Close()
		if err != nil {
			t.Fatalf("importing %s into %s: %v", l.file, layer, err)
		}
	}
}
