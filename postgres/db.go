// Package postgres holds every SQL statement of gridmap outside the
// migrations: the stores behind the domain interfaces, and the managed local
// PostgreSQL cluster used as the embedded default and by tests.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"

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
	Pool   *pgxpool.Pool
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
	return &DB{Pool: pool, Logger: logger, acquires: cfg.ConnConfig.Tracer.(*acquireTracer)}, nil
}

// Close closes every connection.
func (db *DB) Close() { db.Pool.Close() }

// migrationLockID is the advisory lock that serialises migrations, so that
// several instances starting together apply each migration once.
const migrationLockID = 0x6772_6964_6d61_70 // "gridmap"

// Migrate applies every pending migration under an advisory lock.
// Migrations may rewrite whole tables, so they run on connections of their
// own with no statement timeout (and leave the pool, however small, alone).
func (db *DB) Migrate(ctx context.Context) error { return db.MigrateTo(ctx, math.MaxInt64) }

// MigrateTo applies the pending migrations numbered up to version, as
// Migrate does; tests use it to build a database of an older schema.
func (db *DB) MigrateTo(ctx context.Context, version int64) error {
	cfg := db.Pool.Config()
	cfg.MaxConns = 4 // the session lock holds one, the migrations need another
	cfg.MinConns, cfg.MinIdleConns = 0, 0
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = "0"
	cfg.ConnConfig.Tracer = nil
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connecting to database for migrations: %w", err)
	}
	defer pool.Close()
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
	return fmt.Errorf("%s: %w", what, err)
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
