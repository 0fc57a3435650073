package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gridmap/gridmap"
)

// StatsFromFacts computes the indicators from the facts alone, never the
// daily sums: what the sums must agree with.
func (s *StatsStore) StatsFromFacts(ctx context.Context, q gridmap.StatsQuery, now time.Time) (*gridmap.Stats, error) {
	return s.statsAt(ctx, q, now, false)
}

// ScopedRowsFromSums says whether the figures of q for a caller scoped to
// grid code of q.Layer take their rows from the daily sums, as StatsAt
// would decide for a window of whole UTC days.
func (s *StatsStore) ScopedRowsFromSums(ctx context.Context, q gridmap.StatsQuery, code string) (bool, error) {
	l, err := scanLayer(s.db.Pool.QueryRow(ctx, `SELECT `+layerColumns+` FROM layers WHERE id = $1`, q.Layer))
	if err != nil {
		return false, err
	}
	level, err := gridmap.StatsLevel(l, q.Group, q.Level)
	if err != nil {
		return false, err
	}
	first, end, whole := statsDays(*q.From, *q.To)
	if !whole {
		return false, nil
	}
	var exact bool
	err = pgx.BeginTxFunc(ctx, s.db.Pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		_, exact, err = scopedRows(ctx, tx, q.Layer, code, level, first, end, nil, l.Levels)
		return err
	})
	return exact, err
}
