// Package postgres holds every SQL statement of gridmap outside the
// migrations: the stores behind the domain interfaces, and the managed local
// PostgreSQL cluster used as the embedded default and by tests.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/migrations"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// DB is a connection pool to a gridmap database.
type DB struct {
	Pool *pgxpool.Pool
	// Read is the pool of the reads that tolerate a replica's lag (grid
	// tiles, OGC features) or wait for it (the lookup index's loads): the
	// replica's when one is given (Options.ReplicaURL), else Pool. Writes,
	// and reads of what a request has just written, stay on Pool.
	Read   *pgxpool.Pool
	Logger *slog.Logger

	acquires *acquireTracer // every wait for a connection, for PoolStats
}

// Open connects to the database at connString with the default Options and
// checks it answers.
func Open(ctx context.Context, connString string, logger *slog.Logger) (*DB, error) {
	return OpenWith(ctx, connString, logger, Options{})
}

// OpenWith connects to the database at connString with a pool tuned by opts
// and checks it answers.
func OpenWith(ctx context.Context, connString string, logger *slog.Logger, opts Options) (*DB, error) {
	cfg, err := poolConfig(connString, opts)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to database: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	db := &DB{Pool: pool, Read: pool, Logger: logger, acquires: cfg.ConnConfig.Tracer.(*acquireTracer)}
	if opts.ReplicaURL != "" {
		rcfg, err := poolConfig(opts.ReplicaURL, Options{MaxConns: cfg.MaxConns, StatementTimeout: opts.StatementTimeout})
		if err != nil {
			pool.Close()
			return nil, fmt.Errorf("the replica: %w", err)
		}
		// Not pinged: a replica down at start, or later, only sends its
		// reads to the primary (OnReplica).
		if db.Read, err = pgxpool.NewWithConfig(ctx, rcfg); err != nil {
			pool.Close()
			return nil, fmt.Errorf("the replica: %w", err)
		}
	}
	return db, nil
}

// replicaFailed tells whether a read failed for the replica's sake: the
// replica unreachable, or the read cancelled by a conflict with its replay
// (SQLSTATE 40001).
func replicaFailed(err error) bool {
	var pgErr *pgconn.PgError
	return unreachable(err, true) || errors.As(err, &pgErr) && pgErr.Code == "40001"
}

// OnReplica runs read on the replica (DB.Read) and, when the replica
// failed it (unreachable, or the read cancelled by a conflict with
// replay: SQLSTATE 40001) or again says (by again) its answer is not to
// be trusted, on the primary. Without a replica it runs read once, on
// the primary.
func (db *DB) OnReplica(read func(pool *pgxpool.Pool) error, again func(err error) bool) error {
	err := read(db.Read)
	if db.Read == db.Pool {
		return err
	}
	if replicaFailed(err) || again != nil && again(err) {
		if replicaFailed(err) {
			db.Logger.Warn("a read on the replica failed; reading from the primary", "err", err)
		}
		return read(db.Pool)
	}
	return err
}

// Close closes every connection.
func (db *DB) Close() {
	if db.Read != db.Pool {
		db.Read.Close()
	}
	db.Pool.Close()
}

// migrationLockID is the advisory lock that serialises migrations, so that
// several instances starting together apply each migration once.
const migrationLockID = 0x6772_6964_6d61_70 // "gridmap"

// restoreLockID is the advisory lock that keeps a restore and migrations
// apart: gridmap restore holds it exclusively while it loads a backup, and
// MigrateTo (run by serve, migrate and every other command before it uses
// the database) holds it shared, so that neither starts while the other
// runs.
const restoreLockID = 0x6772_6964_7273_74 // "gridrst"

// ErrRestoring is returned by Migrate while gridmap restore is loading a
// backup into the database.
var ErrRestoring = errors.New("gridmap restore is loading a backup into this database: start again once it has finished")

// Migrate applies every pending migration under an advisory lock.
// Migrations may rewrite whole tables, so they run on connections of their
// own with no statement timeout (and leave the pool, however small, alone).
// Returns ErrRestoring, having changed nothing, while gridmap restore is
// loading a backup into the database.
func (db *DB) Migrate(ctx context.Context) error { return db.MigrateTo(ctx, math.MaxInt64) }

// MigrateTo applies the pending migrations numbered up to version, as
// Migrate does; tests use it to build a database of an older schema.
func (db *DB) MigrateTo(ctx context.Context, version int64) error {
	cfg := db.Pool.Config()
	cfg.MaxConns = 4 // the restore lock and goose's session lock hold one each, the migrations need a third
	cfg.MinConns, cfg.MinIdleConns = 0, 0
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = "0"
	cfg.ConnConfig.Tracer = nil
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connecting to database for migrations: %w", err)
	}
	defer pool.Close()
	// The shared restore lock is held on a connection of its own until the
	// migrations end; closing the pool ends the session and the lock.
	held, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connecting to database for migrations: %w", err)
	}
	defer held.Release()
	var free bool
	if err := held.QueryRow(ctx, "SELECT pg_try_advisory_lock_shared($1)", restoreLockID).Scan(&free); err != nil {
		return fmt.Errorf("connecting to database for migrations: %w", err)
	} else if !free {
		return ErrRestoring
	}
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID))
	if err != nil {
		return err
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.FS,
		goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("loading migrations: %w", err)
	}
	results, err := provider.UpTo(ctx, version)
	if err != nil {
		return fmt.Errorf("applying migrations: %w", err)
	}
	for _, r := range results {
		db.Logger.Info("applied migration", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	return nil
}

// SchemaVersion returns the newest applied migration.
func (db *DB) SchemaVersion(ctx context.Context) (int64, error) {
	var v int64
	err := db.Pool.QueryRow(ctx, "SELECT coalesce(max(version_id), 0) FROM goose_db_version WHERE is_applied").Scan(&v)
	return v, err
}

// LatestSchemaVersion returns the newest migration this binary holds: the
// newest schema version it can serve.
func LatestSchemaVersion() int64 {
	var latest int64
	entries, _ := fs.ReadDir(migrations.FS, ".")
	for _, e := range entries {
		if v, err := goose.NumericComponent(e.Name()); err == nil && v > latest {
			latest = v
		}
	}
	return latest
}

// Ping checks the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.Pool.Ping(ctx) }

// translate turns a PostgreSQL error into a gridmap error code where the
// client can act on it; anything else is wrapped as internal.
func translate(err error, what string) error {
	var pgErr *pgconn.PgError
	if err == nil {
		return nil
	}
	var ge *gridmap.Error
	if errors.As(err, &ge) {
		return err
	}
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505":
			return &gridmap.Error{Code: gridmap.ECONFLICT, Message: what + " already exists"}
		case "23503":
			return &gridmap.Error{Code: gridmap.EINVALID, Message: what + " refers to something that does not exist"}
		case "23514":
			// The rule's name says which field (layers_id_check), without
			// the statement around it.
			return &gridmap.Error{Code: gridmap.EINVALID, Message: what + " breaks the rule " + pgErr.ConstraintName}
		case "22023", "22P02":
			return &gridmap.Error{Code: gridmap.EINVALID, Message: what + " holds a value of the wrong form: " + pgErr.Message}
		case "57014":
			return tooLong(what)
		case "22021", "22P05": // character_not_in_repertoire, untranslatable_character
			return &gridmap.Error{Code: gridmap.EINVALID, Message: what + " holds text the database cannot store (a NUL character or bytes that are not UTF-8)"}
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return tooLong(what)
	}
	if ge := unavailable(err, true); ge != nil {
		ge.Message = what + ": " + ge.Message
		return fmt.Errorf("%w: %w", ge, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// databaseRetry is how long a client is asked to wait before trying again
// while the database is unreachable.
const databaseRetry = 5 * time.Second

// Unavailable is the answer to work the database could not do for a while
// (503 with Retry-After, the driver's error kept underneath for the log):
// the database unreachable, read-only (a standby, or set read-only for
// maintenance), or out of disk. nil for any other error. It knows the
// driver's own errors only, so that an error of anything else (a client's
// body cut short) is not taken for the database's; translate, which sees
// only the database's errors, also takes network errors for unreachable.
func Unavailable(err error) *gridmap.Error { return unavailable(err, false) }

func unavailable(err error, fromDatabase bool) *gridmap.Error {
	var pgErr *pgconn.PgError
	var e *gridmap.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pgErr) && pgErr.Code == "25006": // read_only_sql_transaction
		e = gridmap.Errorf(gridmap.EUNAVAILABLE, "the database takes no changes now (it is read-only: a standby, or under maintenance); nothing was changed, try again later")
	case errors.As(err, &pgErr) && (pgErr.Code == "53100" || pgErr.Code == "53200"): // disk_full, out_of_memory
		e = gridmap.Errorf(gridmap.EUNAVAILABLE, "the database is out of disk or memory; nothing was changed, try again once the operators have freed some")
	case unreachable(err, fromDatabase):
		e = gridmap.Errorf(gridmap.EUNAVAILABLE, "the database is unreachable; try again shortly (what is already acknowledged is kept)")
	default:
		return nil
	}
	e.RetryAfter = databaseRetry
	return e
}

// Unreachable tells whether err, an error of database work, means the
// database could not be reached or went away mid-work: a failed
// connection, a connection closed under the work, PostgreSQL shutting
// down, starting up or out of connections (SQLSTATE classes 08 and 57P,
// 53300), or the network under it. A deadline or a cancellation is not
// (the work was stopped, not the database gone). Such work may be tried
// again.
func Unreachable(err error) bool { return unreachable(err, true) }

func unreachable(err error, fromDatabase bool) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P") || pgErr.Code == "53300"
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) || errors.Is(err, pgconn.ErrConnClosed) || pgconn.SafeToRetry(err) {
		return true
	}
	var netErr net.Error
	return fromDatabase && (errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE))
}

// tooLong is the error for database work stopped by the caller's deadline
// (context.DeadlineExceeded) or by the statement timeout (SQLSTATE 57014,
// which is also what a cancelled statement reports).
func tooLong(what string) error {
	return gridmap.Errorf(gridmap.EUNAVAILABLE,
		"%s took longer than this service allows and was stopped; try again shortly, or ask for less at once (a smaller area, page or file)", what)
}

// querier is what a pool and a transaction have in common.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// isSQLState reports whether err is a PostgreSQL error with the given
// SQLSTATE.
func isSQLState(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}
