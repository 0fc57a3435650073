package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/gridmap/gridmap/postgres"
)

// database is an open, migrated gridmap database: the one DATABASE_URL
// names, or the managed cluster under the data directory.
type database struct {
	*postgres.DB
	cluster    *postgres.Cluster // nil when DATABASE_URL is used
	connString string            // for the PostgreSQL tools (pg_dump, pg_restore)
	logger     *slog.Logger
}

// openDatabase opens the database with the default pool.
func openDatabase(ctx context.Context, dataDir string, logger *slog.Logger) (*database, error) {
	return openDatabaseWith(ctx, dataDir, logger, postgres.Options{})
}

// openDatabaseWith opens the database with a pool tuned by opts.
func openDatabaseWith(ctx context.Context, dataDir string, logger *slog.Logger, opts postgres.Options) (*database, error) {
	d, err := openUnmigrated(ctx, dataDir, logger, opts)
	if err != nil {
		return nil, err
	}
	if err := d.Migrate(ctx); err != nil {
		d.Close(false)
		return nil, err
	}
	return d, nil
}

// openUnmigrated opens the database as it is, starting the managed cluster
// if needed, for the commands that must see the schema before migrations
// touch it (backup, restore).
func openUnmigrated(ctx context.Context, dataDir string, logger *slog.Logger, opts postgres.Options) (*database, error) {
	d := &database{logger: logger}
	conn := os.Getenv("DATABASE_URL")
	if conn == "" {
		c, err := postgres.NewCluster(dataDir, logger)
		if err != nil {
			return nil, err
		}
		if err := c.Start(ctx); err != nil {
			_ = c.Release(false)
			return nil, err
		}
		d.cluster = c
		conn = c.ConnString(postgres.DatabaseName)
	}
	d.connString = conn
	db, err := postgres.OpenWith(ctx, conn, logger, opts)
	if err != nil {
		d.releaseCluster(false)
		return nil, err
	}
	d.DB = db
	return d, nil
}

// poolOptions reads the pool flags: --db-max-conns (a number, 0 for the
// default) and --db-statement-timeout (0 leaves the database's setting).
func poolOptions(maxConns string, statementTimeout time.Duration) (postgres.Options, error) {
	n, err := strconv.ParseInt(maxConns, 10, 32)
	if err != nil || n < 0 {
		return postgres.Options{}, fmt.Errorf("--db-max-conns %q: give a whole number of connections, or 0 for the default", maxConns)
	}
	if statementTimeout < 0 {
		return postgres.Options{}, fmt.Errorf("--db-statement-timeout %v: give a duration such as 60s, or 0 for the database's own setting", statementTimeout)
	}
	opts := postgres.Options{MaxConns: int32(n), StatementTimeout: statementTimeout}
	if statementTimeout == 0 {
		opts.StatementTimeout = -1
	}
	return opts, nil
}

// Close closes the connections and ends this process's use of the managed
// cluster: it is stopped when stop is set (serve) or when this process started
// it (subcommands leave it as they found it), unless another gridmap process
// is still using it.
func (d *database) Close(stop bool) {
	if d.DB != nil {
		d.DB.Close()
	}
	d.releaseCluster(stop)
}

func (d *database) releaseCluster(stop bool) {
	if d.cluster == nil {
		return
	}
	if err := d.cluster.Release(stop || d.cluster.Started()); err != nil {
		d.logger.Error("stopping managed PostgreSQL", "err", err)
	}
}
