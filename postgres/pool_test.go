package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestPoolSize(t *testing.T) {
	if n := postgres.DefaultMaxConns(); n < 8 || n > 40 {
		t.Errorf("default pool size %d, want 8 to 40", n)
	}
	conn := pgtest.Shared(t).Pool.Config().ConnString()
	ctx := context.Background()
	for _, c := range []struct {
		name, conn string
		opts       postgres.Options
		want       int32
	}{
		{"the default suits the machine", conn, postgres.Options{}, postgres.DefaultMaxConns()},
		{"pool_max_conns in the address is kept", conn + " pool_max_conns=3", postgres.Options{}, 3},
		{"the option wins over the address", conn + " pool_max_conns=3", postgres.Options{MaxConns: 5}, 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			db, err := postgres.OpenWith(ctx, c.conn, nil, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if got := db.PoolStats().MaxConns; got != c.want {
				t.Errorf("pool size %d, want %d", got, c.want)
			}
		})
	}
	t.Run("a negative size is refused", func(t *testing.T) {
		if _, err := postgres.OpenWith(ctx, conn, nil, postgres.Options{MaxConns: -1}); err == nil || !strings.Contains(err.Error(), "positive") {
			t.Errorf("got %v, want an error saying what to give", err)
		}
	})
}

func TestStatementTimeout(t *testing.T) {
	ctx := context.Background()
	t.Run("pooled connections have the default", func(t *testing.T) {
		var v string
		if err := pgtest.Shared(t).Pool.QueryRow(ctx, "SHOW statement_timeout").Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != "1min" {
			t.Errorf("statement_timeout %q, want 1min", v)
		}
	})
	db := pgtest.SharedWith(t, postgres.Options{StatementTimeout: 200 * time.Millisecond})
	t.Run("pooled connections have the option", func(t *testing.T) {
		var v string
		if err := db.Pool.QueryRow(ctx, "SHOW statement_timeout").Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != "200ms" {
			t.Errorf("statement_timeout %q, want 200ms", v)
		}
	})
	t.Run("LISTEN connections have none", func(t *testing.T) {
		conn, err := db.ListenConn(ctx, postgres.ChangeChannel)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var v string
		if err := conn.QueryRow(ctx, "SHOW statement_timeout").Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != "0" {
			t.Errorf("statement_timeout %q on a LISTEN connection, want 0", v)
		}
	})
	t.Run("a statement past it is stopped, and the client may retry", func(t *testing.T) {
		_, err := db.Pool.Exec(ctx, "SELECT pg_sleep(2)")
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "57014" {
			t.Fatalf("got %v, want SQLSTATE 57014", err)
		}
		if code := gridmap.ErrorCode(postgres.Translate(err, "reports")); code != gridmap.EUNAVAILABLE {
			t.Errorf("translated to %q, want %q", code, gridmap.EUNAVAILABLE)
		}
	})
	t.Run("a passed deadline is unavailable too", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		_, err := pgtest.Shared(t).Pool.Exec(ctx, "SELECT pg_sleep(2)")
		if err == nil {
			t.Fatal("a two-second statement outlived a 50 ms deadline")
		}
		err = postgres.Translate(err, "reports")
		if gridmap.ErrorCode(err) != gridmap.EUNAVAILABLE || !strings.Contains(gridmap.ErrorMessage(err), "reports took longer") {
			t.Errorf("got %v, want %s saying what took too long", err, gridmap.EUNAVAILABLE)
		}
	})
	t.Run("imports lift it", func(t *testing.T) {
		// Checking and storing 60 cells of 200 vertices takes statements
		// of tens of milliseconds: well past the 5 ms this pool allows.
		db := pgtest.SharedWith(t, postgres.Options{StatementTimeout: 5 * time.Millisecond})
		var fs []string
		for i := range 60 {
			fs = append(fs, fmt.Sprintf(`{"type":"Feature","properties":{"code":"C%03d","level":"cell"},"geometry":%s}`,
				i, circle(float64(i%20)*0.01, float64(i/20)*0.01, 0.004, 200)))
		}
		input := `{"type":"FeatureCollection","features":[` + strings.Join(fs, ",") + `]}`
		// The statements before the lift (BEGIN, the SET itself) run under
		// the 5 ms too, and a busy machine can hold even those that long:
		// an import that fails there is retried, as a client would. Without
		// the lift every attempt fails on the checks.
		var res *gridmap.ImportResult
		var err error
		for range 3 {
			res, err = postgres.NewGridStore(db).Import(ctx, "statement-timeout", geo.NewFeatureReader(strings.NewReader(input), geo.DefaultFieldMap),
				gridmap.ImportOptions{Levels: []string{"cell"}})
			if gridmap.ErrorCode(err) != gridmap.EUNAVAILABLE {
				break
			}
		}
		if err != nil {
			t.Fatalf("import under a 5 ms statement timeout: %v", err)
		}
		if res.Created != 60 {
			t.Errorf("created %d grids, want 60", res.Created)
		}
	})
}

// circle is a GeoJSON polygon of n vertices around x, y.
func circle(x, y, r float64, n int) string {
	var b strings.Builder
	b.WriteString(`{"type":"Polygon","coordinates":[[`)
	for k := 0; k <= n; k++ {
		if k > 0 {
			b.WriteString(",")
		}
		a := 2 * math.Pi * float64(k%n) / float64(n)
		fmt.Fprintf(&b, "[%.9f,%.9f]", x+r*math.Cos(a), y+r*math.Sin(a))
	}
	b.WriteString("]]}")
	return b.String()
}

func TestPoolWaits(t *testing.T) {
	ctx := context.Background()
	db := pgtest.SharedWith(t, postgres.Options{MaxConns: 1})
	held, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := db.PoolStats()
	if before.InUse != 1 || before.MaxConns != 1 || before.Waiting != 0 {
		t.Fatalf("holding the one connection: %+v", before)
	}

	t.Run("a wait past the caller's deadline fails and is counted", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		_, err := db.Pool.Exec(ctx, "SELECT 1")
		if gridmap.ErrorCode(postgres.Translate(err, "reports")) != gridmap.EUNAVAILABLE {
			t.Errorf("got %v, want a wait that ends unavailable", err)
		}
		st := db.PoolStats()
		if st.Failed != before.Failed+1 || st.Acquires != before.Acquires+1 || st.WaitMax < 50*time.Millisecond {
			t.Errorf("after one failed wait of 50 ms: %+v", st)
		}
	})

	t.Run("a wait for a held connection lasts until it is released", func(t *testing.T) {
		const hold = 300 * time.Millisecond
		done := make(chan error)
		go func() {
			_, err := db.Pool.Exec(ctx, "SELECT 1")
			done <- err
		}()
		for db.PoolStats().Waiting != 1 {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(hold)
		held.Release()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		st := db.PoolStats()
		if st.Waiting != 0 || st.InUse != 0 || st.Idle != 1 || st.Total != 1 {
			t.Errorf("connections after the wait: %+v", st)
		}
		if st.Acquires != before.Acquires+2 || st.Failed != before.Failed+1 {
			t.Errorf("acquires %d (failed %d), want %d (%d)", st.Acquires, st.Failed, before.Acquires+2, before.Failed+1)
		}
		if st.WaitMax < hold || st.WaitTotal < hold+50*time.Millisecond {
			t.Errorf("longest wait %v, total %v; want at least %v and %v", st.WaitMax, st.WaitTotal, hold, hold+50*time.Millisecond)
		}
		var prev int64
		for _, b := range st.WaitBuckets {
			if b.Count < prev || b.Count > st.Acquires {
				t.Errorf("buckets not cumulative within the count %d: %+v", st.Acquires, st.WaitBuckets)
				break
			}
			prev = b.Count
			if b.UpTo == 100*time.Millisecond && b.Count > st.Acquires-1 {
				t.Errorf("%d waits up to 100 ms, want the %v one beyond", b.Count, hold)
			}
			if b.UpTo == time.Second && b.Count != st.Acquires {
				t.Errorf("%d waits up to 1 s, want all %d", b.Count, st.Acquires)
			}
		}
	})
}
