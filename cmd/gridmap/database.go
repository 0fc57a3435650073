package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/gridmap/gridmap/postgres"
)

// database is an open, migrated gridmap database: the one DATABASE_URL
// names, or the managed cluster under the data directory.
type database struct {
	*postgres.DB
	cluster *postgres.Cluster // nil when DATABASE_URL is used
	logger  *slog.Logger
}

func openDatabase(ctx context.Context, dataDir string, logger *slog.Logger) (*database, error) {
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
	db, err := postgres.Open(ctx, conn, logger)
	if err != nil {
		d.releaseCluster(false)
		return nil, err
	}
	d.DB = db
	if err := db.Migrate(ctx); err != nil {
		d.Close(false)
		return nil, err
	}
	return d, nil
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
