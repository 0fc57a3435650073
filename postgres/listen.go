package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// retryUntilDone runs follow until ctx ends, again after each failure with
// a doubling pause (100 ms up to 10 s), logging what failed.
func (db *DB) retryUntilDone(ctx context.Context, what string, follow func(context.Context) error) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := follow(ctx)
		if ctx.Err() != nil {
			return
		}
		db.Logger.Warn(what+" failed; retrying", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// listenConn opens a connection of its own (LISTEN holds it) listening on
// channels. It waits for hours by design: it has no statement timeout, and
// its opening is no wait for a pooled connection.
func (db *DB) listenConn(ctx context.Context, channels ...string) (*pgx.Conn, error) {
	cfg := db.Pool.Config().ConnConfig
	cfg.RuntimeParams["statement_timeout"] = "0"
	cfg.Tracer = nil
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	for _, ch := range channels {
		if _, err := conn.Exec(ctx, "LISTEN "+ch); err != nil {
			conn.Close(context.WithoutCancel(ctx))
			return nil, err
		}
	}
	return conn, nil
}
