package postgres

import (
	"context"
	"slices"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/jackc/pgx/v5"
)

// validAt selects the versions of grid_versions (alias v) in force at $3.
const validAt = `v.valid_from <= $3 AND (v.valid_to IS NULL OR v.valid_to > $3)`

// lookupAt answers q from the boundaries in force at *q.At: the same shape
// as the in-memory answer, computed by PostGIS on the versions valid then
// (ST_Covers for owners, geodesic ST_DWithin for co-owners). The people
// are today's people of the grids found.
func (l *Locator) lookupAt(ctx context.Context, q gridmap.LookupQuery, dst *gridmap.LookupAnswer) error {
	type layerInfo struct {
		id        string
		levels    []string
		tolerance float64
	}
	var layers []layerInfo
	rows, err := l.db.Pool.Query(ctx, `SELECT id, levels, tolerance_m FROM layers WHERE $1 = '' OR id = $1 ORDER BY id`, q.Layer)
	if err != nil {
		return translate(err, "lookup")
	}
	for rows.Next() {
		var li layerInfo
		if err := rows.Scan(&li.id, &li.levels, &li.tolerance); err != nil {
			rows.Close()
			return err
		}
		layers = append(layers, li)
	}
	if err := rows.Err(); err != nil {
		return translate(err, "lookup")
	}
	if q.Layer != "" && len(layers) == 0 {
		return gridmap.Errorf(gridmap.ENOTFOUND, "layer %q does not exist", q.Layer)
	}
	for _, li := range layers {
		tol := li.tolerance
		if q.ToleranceM != nil {
			tol = *q.ToleranceM
		}
		la := dst.AddLayer(li.id, 0)
		if err := l.answerAt(ctx, q, li.id, li.levels, tol, dst, la); err != nil {
			return translate(err, "lookup as of "+q.At.Format("2006-01-02T15:04:05Z07:00"))
		}
	}
	return nil
}

// Leaves at the time: versions with no child version in force then.
const leafAt = `NOT EXISTS (SELECT 1 FROM grid_versions c WHERE c.layer_id = v.layer_id AND c.parent_code = v.code
	AND c.valid_from <= $3 AND (c.valid_to IS NULL OR c.valid_to > $3))`

func (l *Locator) answerAt(ctx context.Context, q gridmap.LookupQuery, layer string, levels []string, tol float64,
	dst *gridmap.LookupAnswer, la *gridmap.LayerAnswer) error {
	pool := l.db.Pool
	// The finest covering version: deepest level, then lowest code (the
	// boundary rule of the in-memory index).
	var owner *gridmap.GridRef
	var parent *string
	rows, err := pool.Query(ctx, `SELECT v.id, v.code, v.name, v.level, v.version, v.parent_code
		FROM grid_versions v
		WHERE v.layer_id = $4 AND `+validAt+` AND v.geom && ST_SetSRID(ST_MakePoint($1, $2), 4326)
		  AND ST_Covers(v.geom, ST_SetSRID(ST_MakePoint($1, $2), 4326))`, q.Lon, q.Lat, *q.At, layer)
	if err != nil {
		return err
	}
	for rows.Next() {
		var g gridmap.GridRef
		var p *string
		if err := rows.Scan(&g.VersionID, &g.Code, &g.Name, &g.Level, &g.Version, &p); err != nil {
			rows.Close()
			return err
		}
		if owner == nil || slices.Index(levels, g.Level) > slices.Index(levels, owner.Level) ||
			(g.Level == owner.Level && g.Code < owner.Code) {
			owner, parent = &g, p
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if owner != nil {
		chain := []gridmap.GridRef{*owner}
		for steps := 0; parent != nil && steps < len(levels)+1; steps++ {
			var g gridmap.GridRef
			var p *string
			err := pool.QueryRow(ctx, `SELECT v.id, v.code, v.name, v.level, v.version, v.parent_code FROM grid_versions v
				WHERE v.layer_id = $2 AND v.code = $1 AND `+validAt, *parent, layer, *q.At).
				Scan(&g.VersionID, &g.Code, &g.Name, &g.Level, &g.Version, &p)
			if err == pgx.ErrNoRows {
				break
			} else if err != nil {
				return err
			}
			chain = append(chain, g)
			parent = p
		}
		slices.Reverse(chain)
		la.Chain = append(la.Chain, chain...)
		people, err := l.people(ctx, layer, owner.Code)
		if err != nil {
			return err
		}
		la.People = people
	}

	// Leaf versions within the search radius, nearest first. The bounding
	// box filter uses the GiST index; a degree of latitude is at least
	// 110.5 km and longitude degrees shrink with cos(lat), so the box is
	// padded generously and the geodesic test decides.
	radius := max(tol, q.AccuracyM, 0.001)
	rows, err = pool.Query(ctx, `WITH p AS (SELECT ST_SetSRID(ST_MakePoint($1, $2), 4326) AS g)
		SELECT v.id, v.code, v.name, v.level, v.version, ST_Distance(v.geom::geography, p.g::geography) AS d
		FROM grid_versions v, p
		WHERE v.layer_id = $4 AND `+validAt+` AND `+leafAt+`
		  AND v.geom && ST_Expand(p.g, $5 / 110000.0 / greatest(cos(radians($2)), 0.01))
		  AND ST_DWithin(v.geom::geography, p.g::geography, $5)
		ORDER BY d, v.code`, q.Lon, q.Lat, *q.At, layer, radius)
	if err != nil {
		return err
	}
	var near []gridmap.CoOwner
	for rows.Next() {
		var c gridmap.CoOwner
		if err := rows.Scan(&c.VersionID, &c.Code, &c.Name, &c.Level, &c.Version, &c.DistanceM); err != nil {
			rows.Close()
			return err
		}
		c.DistanceM = roundCM(c.DistanceM)
		near = append(near, c)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if owner == nil {
		n, err := l.nearestAt(ctx, q, layer)
		if err != nil || n == nil {
			return err
		}
		dst.SetNearest(la, *n)
	}
	for _, c := range near {
		if (owner != nil && c.Code == owner.Code) || (la.Nearest != nil && c.Code == la.Nearest.Code) {
			continue
		}
		var ok bool
		if c.Reason, c.DistanceM, ok = geo.CoOwnerReason(c.DistanceM, q.AccuracyM, tol); !ok {
			continue
		}
		la.CoOwners = append(la.CoOwners, c)
	}
	return nil
}

// nearestAt finds the leaf version nearest to a point no version covers:
// candidates by planar distance from the KNN index, decided geodesically.
func (l *Locator) nearestAt(ctx context.Context, q gridmap.LookupQuery, layer string) (*gridmap.NearestGrid, error) {
	var n gridmap.NearestGrid
	err := l.db.Pool.QueryRow(ctx, `WITH p AS (SELECT ST_SetSRID(ST_MakePoint($1, $2), 4326) AS g),
		c AS (SELECT v.* FROM grid_versions v, p WHERE v.layer_id = $4 AND `+validAt+` AND `+leafAt+`
		      ORDER BY v.geom <-> p.g LIMIT 16)
		SELECT c.id, c.code, c.name, c.level, c.version, ST_Distance(c.geom::geography, p.g::geography) AS d
		FROM c, p ORDER BY d, c.code LIMIT 1`, q.Lon, q.Lat, *q.At, layer).
		Scan(&n.VersionID, &n.Code, &n.Name, &n.Level, &n.Version, &n.DistanceM)
	if err == pgx.ErrNoRows {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	n.DistanceM = roundCM(n.DistanceM)
	return &n, nil
}

func (l *Locator) people(ctx context.Context, layer, code string) ([]gridmap.Person, error) {
	rows, err := l.db.Pool.Query(ctx, `SELECT role, name, phone, department FROM grid_people
		WHERE layer_id = $1 AND grid_code = $2 ORDER BY position, id`, layer, code)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (gridmap.Person, error) {
		var p gridmap.Person
		err := r.Scan(&p.Role, &p.Name, &p.Phone, &p.Department)
		return p, err
	})
}
