package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
)

// LayerStore implements gridmap.LayerService.
type LayerStore struct{ db *DB }

// NewLayerStore returns a LayerStore over db.
func NewLayerStore(db *DB) *LayerStore { return &LayerStore{db: db} }

var _ gridmap.LayerService = (*LayerStore)(nil)

const layerColumns = `id, name, kind, levels, code_pattern, tolerance_m, snap_m, tiers, zooms, data_version, created_at, updated_at,
	EXISTS (SELECT 1 FROM drafts d WHERE d.layer_id = layers.id)`

func scanLayer(row pgx.Row) (*gridmap.Layer, error) {
	var l gridmap.Layer
	var tiers, zooms []byte
	if err := row.Scan(&l.ID, &l.Name, &l.Kind, &l.Levels, &l.CodePattern, &l.ToleranceM, &l.SnapM, &tiers, &zooms,
		&l.DataVersion, &l.CreatedAt, &l.UpdatedAt, &l.HasDraft); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(tiers, &l.Tiers); err != nil {
		return nil, fmt.Errorf("layer %s tiers: %w", l.ID, err)
	}
	// Levels without a stored zoom range (layers defined before zooms
	// existed, or levels added since) draw at their default zooms.
	l.Zooms = gridmap.DefaultZooms(l.Levels)
	if err := json.Unmarshal(zooms, &l.Zooms); err != nil {
		return nil, fmt.Errorf("layer %s zooms: %w", l.ID, err)
	}
	l.Counts = map[string]int{}
	for _, lv := range l.Levels {
		l.Counts[lv] = 0
	}
	return &l, nil
}

const countGridsSQL = `
SELECT layer_id, level, count(*) FROM grid_versions
WHERE valid_to IS NULL AND ($1 = '' OR layer_id = $1)
GROUP BY layer_id, level`

func (s *LayerStore) addCounts(ctx context.Context, q querier, layerID string, byID map[string]*gridmap.Layer) error {
	rows, err := q.Query(ctx, countGridsSQL, layerID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, level string
		var n int
		if err := rows.Scan(&id, &level, &n); err != nil {
			return err
		}
		if l := byID[id]; l != nil {
			l.Counts[level] = n
		}
	}
	return rows.Err()
}

// Layers lists every layer with its counts, ordered by id.
func (s *LayerStore) Layers(ctx context.Context) ([]*gridmap.Layer, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT `+layerColumns+` FROM layers ORDER BY id`)
	if err != nil {
		return nil, translate(err, "listing layers")
	}
	layers, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*gridmap.Layer, error) { return scanLayer(r) })
	if err != nil {
		return nil, translate(err, "listing layers")
	}
	byID := map[string]*gridmap.Layer{}
	for _, l := range layers {
		byID[l.ID] = l
	}
	if err := s.addCounts(ctx, s.db.Pool, "", byID); err != nil {
		return nil, translate(err, "counting grids")
	}
	return layers, nil
}

// Layer returns one layer with its counts. Returns ENOTFOUND.
func (s *LayerStore) Layer(ctx context.Context, id string) (*gridmap.Layer, error) {
	return s.counted(ctx, s.db.Pool, id, false)
}

// layer reads one layer's definition, locking its row when forUpdate. Its
// Counts stay at zero: counting a province's million grids takes longer
// than the edit or import that reads the layer (see counted).
func (s *LayerStore) layer(ctx context.Context, q querier, id string, forUpdate bool) (*gridmap.Layer, error) {
	sql := `SELECT ` + layerColumns + ` FROM layers WHERE id = $1`
	if forUpdate {
		sql += ` FOR UPDATE`
	}
	l, err := scanLayer(q.QueryRow(ctx, sql, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, gridmap.Errorf(gridmap.ENOTFOUND, "layer %q does not exist", id)
	} else if err != nil {
		return nil, translate(err, "reading layer")
	}
	return l, nil
}

// counted is layer with its grids counted by level.
func (s *LayerStore) counted(ctx context.Context, q querier, id string, forUpdate bool) (*gridmap.Layer, error) {
	l, err := s.layer(ctx, q, id, forUpdate)
	if err != nil {
		return nil, err
	}
	if err := s.addCounts(ctx, q, id, map[string]*gridmap.Layer{id: l}); err != nil {
		return nil, translate(err, "counting grids")
	}
	return l, nil
}

// PutLayer creates a layer or replaces its definition. Levels that still
// have grids must stay, in the same order. Returns EINVALID, ECONFLICT.
func (s *LayerStore) PutLayer(ctx context.Context, l *gridmap.Layer) (created bool, err error) {
	if err := l.Normalize(); err != nil {
		return false, err
	}
	err = pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		created, err = s.putLayer(ctx, tx, l)
		return err
	})
	return created, translate(err, "layer "+l.ID)
}

// putLayer writes a normalized layer definition inside tx.
func (s *LayerStore) putLayer(ctx context.Context, tx pgx.Tx, l *gridmap.Layer) (created bool, err error) {
	tiers, _ := json.Marshal(l.Tiers)
	zooms, _ := json.Marshal(l.Zooms)
	old, err := s.counted(ctx, tx, l.ID, true)
	if gridmap.ErrorCode(err) == gridmap.ENOTFOUND {
		_, err = tx.Exec(ctx, `INSERT INTO layers (id, name, kind, levels, code_pattern, tolerance_m, snap_m, tiers, zooms)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, l.ID, l.Name, l.Kind, l.Levels, l.CodePattern, l.ToleranceM, l.SnapM, tiers, zooms)
		return true, err
	} else if err != nil {
		return false, err
	}
	if err := checkLevelsKept(old, l.Levels); err != nil {
		return false, err
	}
	var version int64
	if err := tx.QueryRow(ctx, `UPDATE layers SET name = $2, kind = $3, levels = $4, code_pattern = $5, tolerance_m = $6,
		snap_m = $7, tiers = $8, zooms = $9, updated_at = now(), data_version = data_version + 1 WHERE id = $1 RETURNING data_version`,
		l.ID, l.Name, l.Kind, l.Levels, l.CodePattern, l.ToleranceM, l.SnapM, tiers, zooms).Scan(&version); err != nil {
		return false, err
	}
	if !maps.Equal(old.Zooms, l.Zooms) {
		// Levels drawn from other zooms need shapes for other bands: the
		// whole layer's, bounded by the caller's context as an import is.
		if _, err := tx.Exec(ctx, wholeLayerSettings); err != nil {
			return false, err
		}
		if _, err := refreshShapes(ctx, tx, l.ID, nil, nil); err != nil {
			return false, err
		}
	}
	return false, notifyChange(ctx, tx, gridmap.Change{Layer: l.ID, Kind: gridmap.ChangeLayer, DataVersion: version})
}

// checkLevelsKept refuses a new level list that drops or reorders a level
// that still has grids.
func checkLevelsKept(old *gridmap.Layer, levels []string) error {
	var used []string
	for _, lv := range old.Levels {
		if old.Counts[lv] > 0 {
			used = append(used, lv)
		}
	}
	last := -1
	for _, lv := range used {
		i := slices.Index(levels, lv)
		if i < 0 {
			return gridmap.Errorf(gridmap.ECONFLICT, "level %q of layer %s still has %d grids and cannot be removed", lv, old.ID, old.Counts[lv])
		}
		if i < last {
			return gridmap.Errorf(gridmap.ECONFLICT, "levels in use %v must keep their order in layer %s", used, old.ID)
		}
		last = i
	}
	return nil
}
