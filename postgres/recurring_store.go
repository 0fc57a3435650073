package postgres

import (
	"context"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
	"github.com/paulmach/orb/geojson"
)

// recurringSQL clusters the reports of a window into recurring problems.
// $1, $2 reported_at from (inclusive), to (exclusive); $3 category codes
// (categorySubtree; NULL: all); $4 a layer (empty: all); $5, $6 the caller's
// scope (scopeParams); $7 the distance in metres; $8 the fewest reports
// of a problem.
//
// ST_ClusterDBSCAN runs per category on the reports' centroids in Web
// Mercator scaled by the cosine of the category's mean latitude in the
// window: Mercator stretches lengths by 1/cos(latitude), so the scaled
// plane measures metres near that latitude (within 0.5% half a degree of
// latitude away, a city's span), and eps is $7 metres.
var recurringSQL = `WITH w AS (
	  SELECT id, category, reported_at, primary_code, ST_Centroid(location) AS p FROM reports
	  WHERE reported_at >= $1 AND reported_at < $2 AND ` + reportsFromSQL("id", "$1") + ` AND ($3::text[] IS NULL OR category = ANY($3))
	    AND ($4 = '' OR layer_id = $4) AND ` + reportInScopeSQL("reports", "$5", "$6") + `
	    -- Web Mercator ends at 85.05 degrees: a report nearer a pole (outside
	    -- any district) is left out rather than failing the whole answer.
	    AND abs(ST_Y(ST_Centroid(location))) < 85),
	k AS (SELECT category, cos(radians(avg(ST_Y(p)))) AS f FROM w GROUP BY category),
	c AS (
	  SELECT w.*, ST_ClusterDBSCAN(ST_Scale(ST_Transform(w.p, 3857), k.f, k.f), eps := $7, minpoints := $8)
	    OVER (PARTITION BY w.category) AS cluster
	  FROM w JOIN k USING (category)),
	g AS (
	  SELECT category, ST_Centroid(ST_Collect(p)) AS center, array_agg(p) AS points, count(*) AS n,
	    min(reported_at) AS first, max(reported_at) AS last, array_agg(id ORDER BY reported_at, id) AS members,
	    array_remove(array_agg(DISTINCT primary_code ORDER BY primary_code), NULL) AS grids
	  FROM c WHERE cluster IS NOT NULL GROUP BY category, cluster)
	SELECT category, ST_AsGeoJSON(center, 7),
	  (SELECT max(ST_Distance(center::geography, q::geography)) FROM unnest(points) q), n, first, last, members, grids
	FROM g ORDER BY n DESC, last DESC, category, members[1]`

// Recurring finds the recurring problems among the reports q selects
// that the context's caller may read, the largest first (then the latest).
// Returns EINVALID for an unknown category or bounds out of range.
func (s *ReportStore) Recurring(ctx context.Context, q gridmap.RecurringQuery) ([]*gridmap.RecurringProblem, error) {
	switch {
	case !q.From.Before(q.To):
		return nil, gridmap.Errorf(gridmap.EINVALID, "from %s must be before to %s", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	case q.To.Sub(q.From) > gridmap.MaxRecurringWindow:
		return nil, gridmap.Errorf(gridmap.EINVALID, "from %s to %s is longer than %d days; ask for a shorter window",
			q.From.Format(time.RFC3339), q.To.Format(time.RFC3339), int(gridmap.MaxRecurringWindow.Hours()/24))
	case !(q.WithinM > 0 && q.WithinM <= gridmap.MaxRecurringWithinM):
		return nil, gridmap.Errorf(gridmap.EINVALID, "within_m %v must be more than 0 and at most %g metres", q.WithinM, gridmap.MaxRecurringWithinM)
	case q.Min < 2:
		return nil, gridmap.Errorf(gridmap.EINVALID, "min %d must be at least 2 reports", q.Min)
	}
	categories, err := s.db.categorySubtree(ctx, q.Category)
	if err != nil {
		return nil, err
	}
	scopeLayer, scopeCode := scopeParams(ctx)
	rows, err := s.db.Pool.Query(ctx, recurringSQL, q.From, q.To, categories, q.Layer, scopeLayer, scopeCode, q.WithinM, q.Min)
	if err != nil {
		return nil, translate(err, "recurring problems")
	}
	out := []*gridmap.RecurringProblem{}
	var center string
	var p gridmap.RecurringProblem
	_, err = pgx.ForEachRow(rows, []any{&p.Category, &center, &p.RadiusM, &p.Count, &p.First, &p.Last, &p.Members, &p.Grids}, func() error {
		g, err := geojson.UnmarshalGeometry([]byte(center))
		if err != nil {
			return err
		}
		found := p
		found.Center = g
		out = append(out, &found)
		p.Members, p.Grids = nil, nil // scanned afresh, not into found's
		return nil
	})
	if err != nil {
		return nil, translate(err, "recurring problems")
	}
	return out, nil
}
