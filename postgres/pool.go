package postgres

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Options tune a DB's pool; the zero value gives the defaults.
type Options struct {
	// MaxConns is the most connections the pool opens. 0 takes
	// pool_max_conns from the connection string when it is there, else
	// DefaultMaxConns.
	MaxConns int32
	// StatementTimeout ends a statement on a pooled connection that runs
	// longer (PostgreSQL's statement_timeout). 0 means
	// DefaultStatementTimeout; a negative value leaves the server's setting.
	StatementTimeout time.Duration
	// ReplicaURL is a PostgreSQL streaming replica of the database, for
	// the reads that tolerate its lag (DB.Read); "" reads everything from
	// the primary. Its pool is sized like the primary's.
	ReplicaURL string
}

// DefaultStatementTimeout is longer than a request's deadline (30 s by
// default), so that a request's own deadline stops its work first, with the
// clearer message. It is the backstop for work with no deadline of its own:
// a query left running after its caller went, a follower's reload. Work that
// may rightly take longer (imports, migrations, filling a layer's tile
// shapes at start) lifts it for itself.
const DefaultStatementTimeout = 60 * time.Second

// DefaultMaxConns is the pool size when none is given: 4 per CPU Go may use
// (GOMAXPROCS follows a container's CPU limit), at least 8 and at most 64.
// Requests spend most of their database time waiting on PostgreSQL's disk
// and CPU rather than on gridmap's, so a few connections per core keep the
// database busy; pgx's own default (one per CPU, at least 4) made a map
// opening twenty tiles at once queue behind a single dispatcher. At most 40
// leaves room, under PostgreSQL's default max_connections of 100, for a
// second instance of the same size, the LISTEN connections (four per
// instance) and psql; more instances want --db-max-conns set for them.
func DefaultMaxConns() int32 {
	return int32(min(max(8, 4*runtime.GOMAXPROCS(0)), 40))
}

// poolConfig parses connString and applies opts to the pool it describes.
func poolConfig(connString string, opts Options) (*pgxpool.Config, error) {
	if opts.MaxConns < 0 {
		return nil, fmt.Errorf("pool size %d: give a positive number of connections, or 0 for the default", opts.MaxConns)
	}
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("database address: %w", err)
	}
	switch {
	case opts.MaxConns > 0:
		cfg.MaxConns = opts.MaxConns
	case !setsPoolSize(connString):
		cfg.MaxConns = DefaultMaxConns()
	}
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	params := cfg.ConnConfig.RuntimeParams
	params["application_name"] = "gridmap"
	params["timezone"] = "UTC"
	// PostGIS functions declare high costs, which makes the planner JIT-compile
	// small spatial queries: 50-200 ms of compiling for a few ms of work.
	params["jit"] = "off"
	timeout := opts.StatementTimeout
	if timeout == 0 {
		timeout = DefaultStatementTimeout
	}
	if timeout > 0 {
		// Whole milliseconds, at least one: "0" would mean no limit.
		params["statement_timeout"] = strconv.FormatInt(max(1, (timeout+time.Millisecond-1).Milliseconds()), 10)
	}
	cfg.ConnConfig.Tracer = &acquireTracer{}
	return cfg, nil
}

// setsPoolSize reports whether connString gives pool_max_conns, which pgx
// reads as the pool size.
func setsPoolSize(connString string) bool {
	c, err := pgconn.ParseConfig(connString)
	if err != nil {
		return false
	}
	_, ok := c.RuntimeParams["pool_max_conns"]
	return ok
}

// poolWaitBuckets are the upper bounds of the acquire-wait histogram: an
// idle connection is handed out in microseconds, a new one opened in
// milliseconds; anything past 100 ms is a queue.
var poolWaitBuckets = [...]time.Duration{100 * time.Microsecond, time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 5 * time.Second, 30 * time.Second}

// acquireTracer records every wait for a pooled connection with atomics
// only, so acquiring takes no lock for it. pgxpool finds it on the
// ConnConfig's Tracer, which must be a pgx.QueryTracer too: those methods do
// nothing.
type acquireTracer struct {
	waiting   atomic.Int64
	acquires  atomic.Int64
	failed    atomic.Int64
	waitTotal atomic.Int64 // nanoseconds
	waitMax   atomic.Int64 // nanoseconds
	// buckets[i] counts the waits longer than poolWaitBuckets[i-1] and at
	// most poolWaitBuckets[i]; longer ones are counted in acquires only.
	buckets [len(poolWaitBuckets)]atomic.Int64
}

type acquireStartKey struct{}

func (t *acquireTracer) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	t.waiting.Add(1)
	return context.WithValue(ctx, acquireStartKey{}, time.Now())
}

func (t *acquireTracer) TraceAcquireEnd(ctx context.Context, _ *pgxpool.Pool, data pgxpool.TraceAcquireEndData) {
	t.waiting.Add(-1)
	start, ok := ctx.Value(acquireStartKey{}).(time.Time)
	if !ok {
		return
	}
	d := time.Since(start)
	// acquires goes up before the bucket, and PoolStats reads the buckets
	// before acquires: a histogram's count is never below its buckets.
	t.acquires.Add(1)
	if data.Err != nil {
		t.failed.Add(1)
	}
	for i, upTo := range poolWaitBuckets {
		if d <= upTo {
			t.buckets[i].Add(1)
			break
		}
	}
	t.waitTotal.Add(int64(d))
	for cur := t.waitMax.Load(); int64(d) > cur && !t.waitMax.CompareAndSwap(cur, int64(d)); cur = t.waitMax.Load() {
	}
}

func (t *acquireTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (t *acquireTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// PoolStats describes the pool: its connections now, and every wait for
// one since Open.
func (db *DB) PoolStats() gridmap.PoolStats {
	st := db.Pool.Stat()
	ps := gridmap.PoolStats{MaxConns: st.MaxConns(), InUse: st.AcquiredConns(), Idle: st.IdleConns(), Total: st.TotalConns()}
	t := db.acquires
	if t == nil {
		return ps
	}
	ps.WaitBuckets = make([]gridmap.PoolWaitBucket, len(poolWaitBuckets))
	var sum int64
	for i, upTo := range poolWaitBuckets {
		sum += t.buckets[i].Load()
		ps.WaitBuckets[i] = gridmap.PoolWaitBucket{UpTo: upTo, Count: sum}
	}
	ps.Acquires, ps.Failed = t.acquires.Load(), t.failed.Load()
	ps.WaitTotal, ps.WaitMax = time.Duration(t.waitTotal.Load()), time.Duration(t.waitMax.Load())
	ps.Waiting = t.waiting.Load()
	return ps
}
