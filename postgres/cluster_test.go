package postgres_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newCluster starts a cluster of the test's own in a fresh directory.
func newCluster(t *testing.T, dir string) *postgres.Cluster {
	t.Helper()
	c, err := postgres.NewCluster(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Throwaway = true
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

func postmasterPID(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "pg", "postmaster.pid"))
	if err != nil {
		t.Fatalf("reading postmaster.pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func TestClusterLifecycle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ctx := context.Background()

	c := newCluster(t, dir)
	if !c.Started() {
		t.Fatal("first start of a new cluster should report that it started it")
	}
	db, err := postgres.Open(ctx, c.ConnString(postgres.DatabaseName), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var postgis string
	if err := db.Pool.QueryRow(ctx, "SELECT postgis_lib_version()").Scan(&postgis); err != nil {
		t.Fatalf("PostGIS is not usable in the managed database: %v", err)
	}
	if _, err := db.Pool.Exec(ctx, "INSERT INTO layers (id, name, kind, levels) VALUES ('kept', 'kept', 'comprehensive', '{a}')"); err != nil {
		t.Fatal(err)
	}
	var listening string
	if err := db.Pool.QueryRow(ctx, "SHOW listen_addresses").Scan(&listening); err != nil {
		t.Fatal(err)
	}
	if listening != "" {
		t.Errorf("managed cluster listens on TCP %q; it must use the unix socket only", listening)
	}
	db.Close()
	pid := postmasterPID(t, dir)

	t.Run("a second user finds it running and leaves it running", func(t *testing.T) {
		c2 := newCluster(t, dir)
		if c2.Started() {
			t.Error("second user claims to have started a running cluster")
		}
		if err := c2.Release(false); err != nil {
			t.Fatal(err)
		}
		if !alive(pid) {
			t.Fatal("cluster stopped when a user that did not start it released it")
		}
	})

	t.Run("release with stop while another user holds it leaves it running", func(t *testing.T) {
		c2 := newCluster(t, dir)
		if err := c2.Release(true); err != nil {
			t.Fatal(err)
		}
		if !alive(pid) {
			t.Fatal("cluster stopped while the first user still held it")
		}
	})

	if err := c.Release(true); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)

	t.Run("restart finds the data", func(t *testing.T) {
		c := newCluster(t, dir)
		defer c.Release(true)
		if !c.Started() {
			t.Error("restart after stop should start the cluster")
		}
		db, err := postgres.Open(ctx, c.ConnString(postgres.DatabaseName), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM layers WHERE id = 'kept'").Scan(&n); err != nil || n != 1 {
			t.Fatalf("layer written before the restart: count %d, err %v", n, err)
		}
	})
}

func TestClusterRecoversFromKilledPostmaster(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	c := newCluster(t, dir)
	pid := postmasterPID(t, dir)
	// Drop the lock as a killed gridmap would, then kill PostgreSQL hard:
	// postmaster.pid stays behind.
	if err := c.Release(false); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
	if _, err := os.Stat(filepath.Join(dir, "pg", "postmaster.pid")); err != nil {
		t.Fatalf("expected a stale postmaster.pid after kill -9: %v", err)
	}

	c2 := newCluster(t, dir)
	defer c2.Release(true)
	if !c2.Started() {
		t.Fatal("a cluster whose postmaster was killed should be started again")
	}
	db, err := postgres.Open(context.Background(), c2.ConnString(postgres.DatabaseName), nil)
	if err != nil {
		t.Fatalf("cluster not usable after recovery: %v", err)
	}
	db.Close()
}

// TestClusterFoundHungIsGivenUp: a cluster whose postmaster is stopped
// (SIGSTOP: it runs, but takes no connection) makes the next start give up
// with an error rather than wait for good; once it runs again, it is found
// running and used.
func TestClusterFoundHungIsGivenUp(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	c := newCluster(t, dir)
	defer c.Release(true)
	pid := postmasterPID(t, dir)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}()
	hung, err := postgres.NewCluster(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = hung.Start(ctx)
	hung.Release(false)
	if err == nil || !strings.Contains(err.Error(), "connecting to managed PostgreSQL") || ctx.Err() != nil {
		t.Fatalf("a start over a stopped postmaster: %v (its context: %v)", err, ctx.Err())
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stopped = false
	again := newCluster(t, dir)
	defer again.Release(false)
	if again.Started() || postmasterPID(t, dir) != pid {
		t.Fatal("the postmaster running again was not the one used")
	}
}

func TestLongDataPathUsesShortSocketDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("long-directory-name-", 6), "data")
	c := newCluster(t, dir)
	defer c.Release(true)
	conn := c.ConnString(postgres.DatabaseName)
	if strings.Contains(conn, dir) {
		t.Fatalf("socket placed under the long data path %s", dir)
	}
	db, err := postgres.Open(context.Background(), conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for i := 0; i < 200 && alive(pid); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if alive(pid) {
		t.Fatalf("postmaster %d still running", pid)
	}
}
