package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// ListenConn opens a LISTEN connection as the followers do.
func (db *DB) ListenConn(ctx context.Context, channels ...string) (*pgx.Conn, error) {
	return db.listenConn(ctx, channels...)
}

// Translate is translate, for checking which errors become which codes.
var Translate = translate
