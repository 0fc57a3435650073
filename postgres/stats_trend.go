package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/jackc/pgx/v5"
)

// trendSQL counts the figures of the reports of grid $5 (its code at
// level $4 of the reports' chains) bucket by bucket: $1, $2 reported at or
// after, before; $3 the layer; $6 the category codes (NULL: all); $7, $8
// the caller's scope (scopeParams); $9 the buckets' starts (width_bucket
// numbers them from 1); $10 the time the figures are as of; $11
// dispatch.ClockStopped. The figures are gridmap.StatsFigures', as
// statsSQL counts them. Buckets without reports have no row.
var trendSQL = `SELECT width_bucket(f.reported_at, $9::timestamptz[]), count(*), count(*) FILTER (WHERE f.registered),
	  count(*) FILTER (WHERE f.closed_at IS NOT NULL), count(*) FILTER (WHERE f.closed_on_time),
	  count(*) FILTER (WHERE f.due_at < $10 AND f.status <> ALL($11::text[]))
	FROM report_facts f
	WHERE f.reported_at >= $1 AND f.reported_at < $2 AND f.layer_id = $3 AND f.chain->>$4::text = $5
	  AND ($6::text[] IS NULL OR f.category = ANY($6)) AND ` + reportInScopeSQL("f", "$7", "$8") + `
	GROUP BY 1`

// Trend draws grid q.Code's figures as of now (see TrendAt).
func (s *IndicatorStore) Trend(ctx context.Context, q gridmap.TrendQuery) (*gridmap.Trend, error) {
	return s.TrendAt(ctx, q, time.Now())
}

// TrendAt draws grid q.Code's figures bucket by bucket in the store's
// zone, as of now, every bucket present. Returns ENOTFOUND for a grid that
// does not exist now or lies outside a scoped caller's area, EINVALID for
// an unknown bucket or category, From after To, more than
// gridmap.MaxTrendBuckets buckets.
func (s *IndicatorStore) TrendAt(ctx context.Context, q gridmap.TrendQuery, now time.Time) (*gridmap.Trend, error) {
	if q.Bucket == "" {
		q.Bucket = gridmap.TrendByWeek
	}
	from, to, err := gridmap.TrendWindow(q.From, q.To, now)
	if err != nil {
		return nil, err
	}
	starts, err := gridmap.TrendBuckets(from, to, q.Bucket, s.loc)
	if err != nil {
		return nil, err
	}
	out := &gridmap.Trend{Layer: q.Layer, Code: q.Code, Bucket: q.Bucket, TimeZone: s.loc.String(), From: from, To: to, AsOf: now,
		Points: make([]gridmap.TrendPoint, len(starts))}
	var level string
	err = s.db.Pool.QueryRow(ctx, `SELECT name, level FROM grids WHERE layer_id = $1 AND code = $2`, q.Layer, q.Code).Scan(&out.Name, &level)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, gridmap.Errorf(gridmap.ENOTFOUND, "grid %q does not exist in layer %q", q.Code, q.Layer)
	} else if err != nil {
		return nil, translate(err, "trend of grid "+q.Code)
	}
	// A grid outside the caller's area is as if it did not exist, as a
	// report outside it is.
	if err := checkGridInScope(ctx, s.db.Pool, q.Layer, q.Code); gridmap.ErrorCode(err) == gridmap.EFORBIDDEN {
		return nil, gridmap.Errorf(gridmap.ENOTFOUND, "grid %q does not exist in layer %q within your area", q.Code, q.Layer)
	} else if err != nil {
		return nil, translate(err, "trend of grid "+q.Code)
	}
	categories, err := s.db.categorySubtree(ctx, q.Category)
	if err != nil {
		return nil, err
	}
	for i, t := range starts {
		out.Points[i].Start = t
	}
	scopeLayer, scopeCode := scopeParams(ctx)
	rows, err := s.db.Pool.Query(ctx, trendSQL, from, to, q.Layer, level, q.Code, categories, scopeLayer, scopeCode, starts,
		now, dispatch.ClockStopped)
	if err != nil {
		return nil, translate(err, "trend of grid "+q.Code)
	}
	defer rows.Close()
	for rows.Next() {
		var b int
		var p gridmap.TrendPoint
		if err := rows.Scan(&b, &p.Received, &p.Registered, &p.Closed, &p.ClosedOnTime, &p.Overdue); err != nil {
			return nil, translate(err, "trend of grid "+q.Code)
		}
		if b < 1 || b > len(starts) {
			continue // cannot happen: the window lies within the buckets
		}
		p.Start = starts[b-1]
		out.Points[b-1] = p
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err, "trend of grid "+q.Code)
	}
	return out, nil
}
