package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
)

// GridAt returns the version of a grid valid at t: valid_from <= t < valid_to.
// Returns ENOTFOUND when the grid did not exist then.
func (s *GridStore) GridAt(ctx context.Context, layer, code string, t time.Time) (*gridmap.Grid, error) {
	g, err := scanGrid(s.db.Pool.QueryRow(ctx, `SELECT `+gridColumns+` FROM grid_versions
		WHERE layer_id = $1 AND code = $2 AND valid_from <= $3 AND (valid_to IS NULL OR valid_to > $3)`, layer, code, t))
	if errors.Is(err, pgx.ErrNoRows) {
		if err := s.checkLayer(ctx, layer); err != nil {
			return nil, err
		}
		return nil, gridmap.Errorf(gridmap.ENOTFOUND, "grid %q of layer %s did not exist at %s", code, layer, t.UTC().Format(time.RFC3339))
	} else if err != nil {
		return nil, translate(err, "reading grid")
	}
	return g, nil
}

// History lists every version of a grid, oldest first. Returns ENOTFOUND.
func (s *GridStore) History(ctx context.Context, layer, code string) ([]*gridmap.Grid, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT `+gridColumns+` FROM grid_versions
		WHERE layer_id = $1 AND code = $2 ORDER BY version`, layer, code)
	if err != nil {
		return nil, translate(err, "reading history")
	}
	grids, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*gridmap.Grid, error) { return scanGrid(r) })
	if err != nil {
		return nil, translate(err, "reading history")
	}
	if len(grids) == 0 {
		if err := s.checkLayer(ctx, layer); err != nil {
			return nil, err
		}
		return nil, gridmap.Errorf(gridmap.ENOTFOUND, "grid %q has never existed in layer %s", code, layer)
	}
	return grids, nil
}
