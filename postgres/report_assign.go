package postgres

import (
	"context"
	"encoding/json"
	"math"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/gridmap/gridmap/geo"
	"github.com/jackc/pgx/v5"
	"github.com/paulmach/orb"
)

// assign computes a report's assignment: the lookup index answers for the
// point (or the representative point of a line or polygon), PostGIS
// measures what a line or polygon crosses, and the dispatch policy does
// the rest.
//
// It returns the data version of every layer the lookup answered from, for
// the insert to check against the layers as committed, and whether the
// report's category links probable duplicates (as read now: the link
// checks again). With at set, lookups answer from PostGIS as of at.time
// and carry at.versions.
func (s *ReportStore) assign(ctx context.Context, r *gridmap.Report, at *boundariesAt) (*gridmap.Assignment, map[string]int64, bool, error) {
	geom := r.Location.Geometry()
	locJSON, _ := json.Marshal(r.Location)
	pt, isPoint := geom.(orb.Point)
	if !isPoint {
		if err := s.db.Pool.QueryRow(ctx, `SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(ST_SetSRID(ST_GeomFromGeoJSON($1), 4326)) p) x`,
			string(locJSON)).Scan(&pt[0], &pt[1]); err != nil {
			return nil, nil, false, translate(err, "report location")
		}
	}
	var ans gridmap.LookupAnswer
	q := gridmap.LookupQuery{Lon: pt[0], Lat: pt[1], AccuracyM: r.AccuracyM}
	if at != nil {
		q.At = &at.time
	}
	if err := s.loc.Lookup(ctx, q, &ans); err != nil {
		return nil, nil, false, err
	}
	if at != nil {
		for i := range ans.Layers {
			ans.Layers[i].DataVersion = at.versions[ans.Layers[i].Layer]
		}
	}

	rc, err := s.context(ctx, r.Category, r.ReportedAt)
	if err != nil {
		return nil, nil, false, err
	}
	byID := rc.layers
	// The comprehensive layer that covers the point, else the nearest one.
	var layer *gridmap.Layer
	var answer *gridmap.LayerAnswer
	best := math.Inf(1)
	units := map[string]*gridmap.LayerAnswer{}
	for i := range ans.Layers {
		la := &ans.Layers[i]
		l := byID[la.Layer]
		if l == nil {
			continue
		}
		if l.Kind != gridmap.KindComprehensive {
			units[l.ID] = la
			continue
		}
		d := math.Inf(1)
		if len(la.Chain) > 0 {
			d = -1
		} else if la.Nearest != nil {
			d = la.Nearest.DistanceM
		}
		if layer == nil || d < best {
			layer, answer, best = l, la, d
		}
	}
	if layer == nil {
		return nil, nil, false, gridmap.Errorf(gridmap.EUNPROCESSABLE, "there is no comprehensive grid layer to assign reports in; import one first")
	}

	in := dispatch.AssignInput{Layer: layer, Answer: answer, Units: units, Urgent: r.Urgent, ReportedAt: r.ReportedAt,
		Chains: map[string][]gridmap.GridRef{}, Departments: map[string]dispatch.Department{}}
	if !isPoint {
		if in.Crossed, err = s.crossed(ctx, layer.ID, string(locJSON)); err != nil {
			return nil, nil, false, err
		}
		if in.Near, err = s.nearLine(ctx, layer.ID, string(locJSON), layer.ToleranceM, r.AccuracyM); err != nil {
			return nil, nil, false, err
		}
	}
	var codes []string
	for _, c := range append(in.Crossed, in.Near...) {
		codes = append(codes, c.Code)
	}
	for _, c := range answer.CoOwners {
		codes = append(codes, c.Code)
	}
	if answer.Nearest != nil {
		codes = append(codes, answer.Nearest.Code)
	}
	for _, code := range codes {
		if at == nil {
			in.Chains[code] = s.loc.ChainOf(layer.ID, code)
		} else if in.Chains[code], err = chainIn(ctx, s.db.Pool, layer.ID, code); err != nil {
			// The index is behind: chains come from the grids in PostGIS too.
			return nil, nil, false, translate(err, "report owners")
		}
	}

	if rc.category == nil {
		return nil, nil, false, gridmap.Errorf(gridmap.EUNPROCESSABLE, "category %q does not exist; GET /v1/categories lists them", r.Category)
	}
	in.Category, in.Departments = rc.category, rc.departments
	// Every layer answered decides the assignment: which comprehensive layer
	// owns the point, and the departments' units.
	used := map[string]int64{}
	for _, la := range ans.Layers {
		used[la.Layer] = la.DataVersion
	}
	policy := dispatch.Policy{Calendar: rc.calendar}
	a, err := policy.Assign(in)
	return a, used, rc.category.LinksDuplicates(), err
}

// boundariesAt is a time to assign at from PostGIS, with the layers' data
// versions as of then.
type boundariesAt struct {
	time     time.Time
	versions map[string]int64
}

// layerVersions reads the data version of every layer and the database's
// clock, for waiting for the index or assigning from PostGIS when the index
// is behind.
func (s *ReportStore) layerVersions(ctx context.Context) (*boundariesAt, error) {
	at := &boundariesAt{versions: map[string]int64{}}
	rows, err := s.db.Pool.Query(ctx, `SELECT id, data_version, now() FROM layers`)
	if err != nil {
		return nil, translate(err, "layer versions")
	}
	var id string
	var v int64
	_, err = pgx.ForEachRow(rows, []any{&id, &v, &at.time}, func() error {
		at.versions[id] = v
		return nil
	})
	return at, translate(err, "layer versions")
}

// reportContext is what assigning a report reads from the database.
type reportContext struct {
	layers      map[string]*gridmap.Layer
	category    *gridmap.Category // nil when unknown
	departments map[string]dispatch.Department
	calendar    *dispatch.Calendar
}

// context reads the layer definitions, the category with its departments
// and the calendar around t in one round trip.
func (s *ReportStore) context(ctx context.Context, category string, t time.Time) (*reportContext, error) {
	var layers, cat, depts, days []byte
	err := s.db.Pool.QueryRow(ctx, `SELECT
		  (SELECT coalesce(json_agg(json_build_object('id', id, 'kind', kind, 'levels', levels, 'tiers', tiers, 'tolerance_m', tolerance_m)), '[]') FROM layers),
		  (SELECT `+categoryObject+` FROM categories WHERE code = $1),
		  (SELECT coalesce(json_object_agg(d.code, json_build_object('Name', d.name, 'Layer', coalesce(d.layer_id, ''))), '{}')
		   FROM departments d WHERE d.code = ANY((SELECT departments FROM categories WHERE code = $1)::text[])),
		  (`+calendarDays("$2")+`)`,
		category, calendarDate(s.tz, t)).Scan(&layers, &cat, &depts, &days)
	if err != nil {
		return nil, translate(err, "report context")
	}
	rc := &reportContext{layers: map[string]*gridmap.Layer{}}
	var ls []*gridmap.Layer
	if err := json.Unmarshal(layers, &ls); err != nil {
		return nil, err
	}
	for _, l := range ls {
		rc.layers[l.ID] = l
	}
	if cat != nil {
		rc.category = &gridmap.Category{}
		if err := json.Unmarshal(cat, rc.category); err != nil {
			return nil, err
		}
	}
	if err := json.Unmarshal(depts, &rc.departments); err != nil {
		return nil, err
	}
	if rc.calendar, err = calendarOf(s.tz, days); err != nil {
		return nil, err
	}
	return rc, nil
}

// crossed lists the finest grids a line or polygon location crosses, with
// the share of its length or area in each, largest first.
func (s *ReportStore) crossed(ctx context.Context, layer, locJSON string) ([]gridmap.Owner, error) {
	rows, err := s.db.Pool.Query(ctx, `WITH loc AS (SELECT ST_SetSRID(ST_GeomFromGeoJSON($2), 4326) AS g)
		SELECT v.code, v.name, v.level,
		  CASE WHEN ST_Dimension(loc.g) = 2 THEN ST_Area(ST_Intersection(v.geom, loc.g)::geography)
		       ELSE ST_Length(ST_Intersection(v.geom, loc.g)::geography) END AS part
		FROM grids v, loc
		WHERE v.layer_id = $1 AND v.geom && loc.g AND ST_Intersects(v.geom, loc.g)
		  AND NOT EXISTS (SELECT 1 FROM grids c WHERE c.layer_id = v.layer_id AND c.parent_code = v.code)
		ORDER BY part DESC, v.code`, layer, locJSON)
	if err != nil {
		return nil, translate(err, "report location")
	}
	owners, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (gridmap.Owner, error) {
		var o gridmap.Owner
		err := r.Scan(&o.Code, &o.Name, &o.Level, &o.Share)
		return o, err
	})
	if err != nil {
		return nil, translate(err, "report location")
	}
	total := 0.0
	for _, o := range owners {
		total += o.Share
	}
	var out []gridmap.Owner
	for _, o := range owners {
		if total > 0 {
			o.Share = math.Round(o.Share/total*1e4) / 1e4
		}
		if o.Share > 0 || total == 0 {
			out = append(out, o)
		}
	}
	return out, nil
}

// nearLine lists the finest grids a line or polygon location does not
// cross but passes within the tolerance or its accuracy of, nearest first.
func (s *ReportStore) nearLine(ctx context.Context, layer, locJSON string, toleranceM, accuracyM float64) ([]gridmap.Owner, error) {
	radius := math.Max(toleranceM, accuracyM)
	rows, err := s.db.Pool.Query(ctx, `WITH loc AS (SELECT ST_SetSRID(ST_GeomFromGeoJSON($2), 4326) AS g)
		SELECT v.code, v.name, v.level, ST_Distance(v.geom::geography, loc.g::geography)
		FROM grids v, loc
		WHERE v.layer_id = $1 AND v.geom && ST_Expand(loc.g, $3 / 110000.0 / greatest(cos(radians(ST_Y(ST_Centroid(loc.g)))), 0.01))
		  AND ST_DWithin(v.geom::geography, loc.g::geography, $3) AND NOT ST_Intersects(v.geom, loc.g)
		  AND NOT EXISTS (SELECT 1 FROM grids c WHERE c.layer_id = v.layer_id AND c.parent_code = v.code)
		ORDER BY 4, 1`, layer, locJSON, radius)
	if err != nil {
		return nil, translate(err, "report location")
	}
	near, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (gridmap.Owner, error) {
		var o gridmap.Owner
		err := r.Scan(&o.Code, &o.Name, &o.Level, &o.DistanceM)
		return o, err
	})
	var owners []gridmap.Owner
	for _, o := range near {
		var ok bool
		if o.Reason, o.DistanceM, ok = geo.CoOwnerReason(roundCM(o.DistanceM), accuracyM, toleranceM); ok {
			owners = append(owners, o)
		}
	}
	return owners, translate(err, "report location")
}
