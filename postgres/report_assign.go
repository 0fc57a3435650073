package postgres

import (
	"context"
	"encoding/json"
	"math"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/jackc/pgx/v5"
	"github.com/paulmach/orb"
)

// assign computes a report's assignment: the lookup index answers for the
// point (or the representative point of a line or polygon), PostGIS
// measures what a line or polygon crosses, and the dispatch policy does
// the rest.
func (s *ReportStore) assign(ctx context.Context, r *gridmap.Report) (*gridmap.Assignment, error) {
	geom := r.Location.Geometry()
	locJSON, _ := json.Marshal(r.Location)
	pt, isPoint := geom.(orb.Point)
	if !isPoint {
		if err := s.db.Pool.QueryRow(ctx, `SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(ST_SetSRID(ST_GeomFromGeoJSON($1), 4326)) p) x`,
			string(locJSON)).Scan(&pt[0], &pt[1]); err != nil {
			return nil, translate(err, "report location")
		}
	}
	var ans gridmap.LookupAnswer
	if err := s.loc.Lookup(ctx, gridmap.LookupQuery{Lon: pt[0], Lat: pt[1], AccuracyM: r.AccuracyM}, &ans); err != nil {
		return nil, err
	}

	byID, err := s.layerDefinitions(ctx)
	if err != nil {
		return nil, err
	}
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
		return nil, gridmap.Errorf(gridmap.EUNPROCESSABLE, "there is no comprehensive grid layer to assign reports in; import one first")
	}

	in := dispatch.AssignInput{Layer: layer, Answer: answer, Units: units, Urgent: r.Urgent, ReportedAt: r.ReportedAt,
		Chains: map[string][]gridmap.GridRef{}, Departments: map[string]dispatch.Department{}}
	if !isPoint {
		if in.Crossed, err = s.crossed(ctx, layer.ID, string(locJSON)); err != nil {
			return nil, err
		}
	}
	for _, c := range in.Crossed {
		in.Chains[c.Code] = s.loc.ChainOf(layer.ID, c.Code)
	}
	for _, c := range answer.CoOwners {
		in.Chains[c.Code] = s.loc.ChainOf(layer.ID, c.Code)
	}
	if answer.Nearest != nil {
		in.Chains[answer.Nearest.Code] = s.loc.ChainOf(layer.ID, answer.Nearest.Code)
	}

	cats := NewCategoryStore(s.db)
	if in.Category, err = cats.Category(ctx, r.Category); gridmap.ErrorCode(err) == gridmap.ENOTFOUND {
		return nil, gridmap.Errorf(gridmap.EUNPROCESSABLE, "category %q does not exist; GET /v1/categories lists them", r.Category)
	} else if err != nil {
		return nil, err
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT code, name, coalesce(layer_id, '') FROM departments WHERE code = ANY($1)`, in.Category.Departments)
	if err != nil {
		return nil, translate(err, "departments")
	}
	for rows.Next() {
		var code string
		var d dispatch.Department
		if err := rows.Scan(&code, &d.Name, &d.Layer); err != nil {
			rows.Close()
			return nil, err
		}
		in.Departments[code] = d
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	cal, err := s.calendar(ctx, r.ReportedAt)
	if err != nil {
		return nil, err
	}
	policy := dispatch.Policy{Calendar: cal, OutsideCoverageM: s.outsideM}
	return policy.Assign(in)
}

// layerDefinitions reads each layer's kind, levels and tiers: what an
// assignment needs, without the per-level counts LayerStore adds.
func (s *ReportStore) layerDefinitions(ctx context.Context) (map[string]*gridmap.Layer, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT id, kind, levels, tiers FROM layers`)
	if err != nil {
		return nil, translate(err, "layers")
	}
	defer rows.Close()
	out := map[string]*gridmap.Layer{}
	for rows.Next() {
		var l gridmap.Layer
		if err := rows.Scan(&l.ID, &l.Kind, &l.Levels, &l.Tiers); err != nil {
			return nil, err
		}
		out[l.ID] = &l
	}
	return out, translate(rows.Err(), "layers")
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

// calendar reads the dates around t that break the weekday rule.
func (s *ReportStore) calendar(ctx context.Context, t time.Time) (*dispatch.Calendar, error) {
	cal := &dispatch.Calendar{Location: s.tz, Days: map[string]bool{}}
	rows, err := s.db.Pool.Query(ctx, `SELECT to_char(day, 'YYYY-MM-DD'), working FROM calendar_days
		WHERE day BETWEEN $1::date - 7 AND $1::date + 400`, t.In(s.tz).Format(time.DateOnly))
	if err != nil {
		return nil, translate(err, "calendar")
	}
	defer rows.Close()
	for rows.Next() {
		var day string
		var working bool
		if err := rows.Scan(&day, &working); err != nil {
			return nil, err
		}
		cal.Days[day] = working
	}
	return cal, translate(rows.Err(), "calendar")
}
