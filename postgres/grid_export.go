package postgres

import (
	"context"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
)

// exportSQL builds each current grid of layer $1 in table (grid_versions
// or draft_grids) as a GeoJSON Feature in PostgreSQL, in code order (the
// current-code index, no sort), so an export streams row by row and never
// holds the layer in memory. A scoped caller ($2 scope layer, $3 scope
// code, both NULL for everyone) gets the grids inside its scope grid, up to
// $4 m2 of drawing noise, as edits are checked (outsideScopeSQL). people
// is the draft's own list where it has one.
func exportSQL(table, people string) string {
	return `SELECT jsonb_build_object('type', 'Feature', 'id', g.code,
		'geometry', ST_AsGeoJSON(g.geom, 9)::jsonb,
		'properties', g.attributes || jsonb_build_object('code', g.code, 'name', g.name, 'level', g.level,
			'parent', g.parent_code, 'people', ` + people + `))::text
	FROM ` + table + ` g
	WHERE g.layer_id = $1 AND g.valid_to IS NULL
	  AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM grid_versions s
	       WHERE s.layer_id = $2 AND s.code = $3 AND s.valid_to IS NULL AND s.geom && g.geom
	         AND (ST_CoveredBy(g.geom, s.geom) OR ST_Area(ST_Difference(g.geom, s.geom)::geography) <= $4)))
	ORDER BY g.code`
}

// publishedPeopleSQL is the people of grid g as a JSON array.
const publishedPeopleSQL = `(SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object('role', p.role, 'name', p.name,
		'phone', nullif(p.phone, ''), 'department', nullif(p.department, ''))) ORDER BY p.position), '[]')
	FROM grid_people p WHERE p.layer_id = g.layer_id AND p.grid_code = g.code)`

var exportSQLs = map[bool]string{
	false: exportSQL(publishedTable, publishedPeopleSQL),
	true:  exportSQL(draftTable, "coalesce(g.people, "+publishedPeopleSQL+")"),
}

// ExportGrids calls each with every current grid (or draft grid) of the
// layer as a GeoJSON Feature (see gridmap.DraftService). Returns ENOTFOUND
// for an unknown layer or a missing draft, before the first call of each.
func (s *GridStore) ExportGrids(ctx context.Context, layer string, draft bool, each func(feature []byte) error) error {
	if err := s.checkLayer(ctx, layer); err != nil {
		return err
	}
	if draft {
		if err := requireDraft(ctx, s.db.Pool, layer); err != nil {
			return translate(err, "exporting layer "+layer)
		}
	}
	scopeLayer, scopeCode := scopeParams(ctx)
	// A big layer takes longer than the pool's statement timeout allows a
	// query; the request's context bounds the export instead.
	err := pgx.BeginTxFunc(ctx, s.db.Pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = 0"); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, exportSQLs[draft], layer, scopeLayer, scopeCode, gridmap.ToleranceAreaM2)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			raw := rows.RawValues()
			if err := each(raw[0]); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	return translate(err, "exporting layer "+layer)
}
