package postgres

import (
	"context"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
)

// workerFiguresSQL counts each worker's figures (gridmap.WorkerAssessment)
// for the assessment: the members of the grids of the level in the scope,
// with the reports of the layer and scope they filed in the window as
// their facts stand, their
// kept days' points and their check-ins. The parameters after
// patrolGridsSQL's four: $5 the time zone, $6 and $7 the first and last
// kept day counted, $8 and $9 the window's start and end.
var workerFiguresSQL = patrolGridsSQL + `
	SELECT a.username, a.display_name, m.code, g.name, f.filed, f.closed, f.on_time, w.days, w.points, k.checkins, k.visits
	FROM members m JOIN grids g USING (code) JOIN accounts a ON a.id = m.account_id
	CROSS JOIN LATERAL (
	  SELECT count(*) AS filed, count(x.closed_at) AS closed, count(*) FILTER (WHERE x.closed_on_time) AS on_time
	  FROM reports r LEFT JOIN report_facts x ON x.report_id = r.id
	  WHERE r.filed_by = a.username AND r.reported_at >= $8 AND r.reported_at < $9 AND ` + reportsFromSQL("r.id", "$8") + ` AND r.layer_id = $1
	    AND ` + reportInScopeSQL("r", "$3", "$4") + `) f
	CROSS JOIN LATERAL (
	  SELECT count(*) FILTER (WHERE d.points > 0) AS days, coalesce(sum(d.points), 0) AS points
	  FROM patrol_worker_days d JOIN patrol_day_runs r USING (layer_id, tz, day)
	  WHERE d.account_id = a.id AND d.layer_id = $1 AND d.tz = $5 AND r.level = $2 AND d.day BETWEEN $6 AND $7) w
	CROSS JOIN LATERAL (
	  SELECT count(*) AS checkins, count(*) FILTER (WHERE c.visit) AS visits
	  FROM checkins c WHERE c.account_id = a.id AND c.at >= $8 AND c.at < $9) k
	ORDER BY a.username`

// gridFiguresSQL counts each grid's figures (gridmap.GridAssessment but
// its reports' indicators): its workers and the reports they filed in the
// window, its kept days' coverage, leaders' visits of it (distinct leader
// and day).
var gridFiguresSQL = patrolGridsSQL + `
	SELECT g.code, g.name,
	  (SELECT count(*) FROM members m WHERE m.code = g.code),
	  (SELECT count(*) FROM members m JOIN accounts a ON a.id = m.account_id JOIN reports r ON r.filed_by = a.username
	   WHERE m.code = g.code AND r.reported_at >= $8 AND r.reported_at < $9 AND ` + reportsFromSQL("r.id", "$8") + ` AND r.layer_id = $1
	     AND ` + reportInScopeSQL("r", "$3", "$4") + `),
	  d.days, d.patrolled, d.coverage,
	  (SELECT count(DISTINCT (c.account_id, c.day)) FROM checkins c
	   WHERE c.visit AND c.layer_id = $1 AND c.grid_code = g.code AND c.at >= $8 AND c.at < $9)
	FROM grids g CROSS JOIN LATERAL (
	  SELECT count(*) AS days, count(*) FILTER (WHERE p.covered_m2 > 0) AS patrolled, avg(p.coverage) AS coverage
	  FROM patrol_days p JOIN patrol_day_runs r USING (layer_id, tz, day)
	  WHERE p.layer_id = $1 AND p.tz = $5 AND p.code = g.code AND r.level = $2 AND p.day BETWEEN $6 AND $7) d
	ORDER BY g.code`

// PatrolFigures counts the patrol service's part of an assessment (see
// gridmap.Assess): the days over wholly inside the window are measured
// first when not kept. Returns ENOTFOUND for an unknown layer, EINVALID
// for a level not of it.
func (s *PatrolStore) PatrolFigures(ctx context.Context, q gridmap.AssessmentQuery) (*gridmap.PatrolFigures, error) {
	if err := checkMaySeeWorkers(ctx); err != nil {
		return nil, err
	}
	level, err := s.keptLevel(ctx, q.Layer, q.Level)
	if err != nil {
		return nil, err
	}
	out := &gridmap.PatrolFigures{Level: level}
	days := gridmap.WholeDaysOver(q.From, q.To, time.Now(), s.tz)
	first := localDay(q.From, s.tz)
	last := first.AddDate(0, 0, -1) // no day
	if len(days) > 0 {
		first, last = days[0], days[len(days)-1]
		out.FirstDay, out.LastDay, out.Days = first.Format(time.DateOnly), last.Format(time.DateOnly), len(days)
		if _, err := s.measureDays(ctx, q.Layer, level, days, maxDaysMeasuredPerRequest, false); err != nil {
			return nil, err
		}
		kept, err := s.keptAt(ctx, q.Layer, level, days)
		if err != nil {
			return nil, err
		}
		out.MeasuredDays = len(kept)
	}
	scopeLayer, scopeCode := scopeParams(ctx)
	args := []any{pgx.QueryExecModeExec, q.Layer, level, scopeLayer, scopeCode, s.tz.String(), first, last, q.From, q.To}
	rows, err := s.db.Pool.Query(ctx, gridFiguresSQL, args...)
	if err != nil {
		return nil, translate(err, "assessment")
	}
	out.Grids, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (gridmap.GridAssessment, error) {
		var g gridmap.GridAssessment
		return g, row.Scan(&g.Code, &g.Name, &g.Workers, &g.Filed, &g.MeasuredDays, &g.PatrolledDays, &g.Coverage, &g.LeaderVisits)
	})
	if err != nil {
		return nil, translate(err, "assessment")
	}
	coverage := make(map[string]*float64, len(out.Grids))
	for _, g := range out.Grids {
		coverage[g.Code] = g.Coverage
	}
	rows, err = s.db.Pool.Query(ctx, workerFiguresSQL, args...)
	if err != nil {
		return nil, translate(err, "assessment")
	}
	out.Workers, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (gridmap.WorkerAssessment, error) {
		var w gridmap.WorkerAssessment
		err := row.Scan(&w.Worker, &w.Name, &w.Grid, &w.GridName, &w.Filed, &w.FiledClosed, &w.FiledClosedOnTime, &w.PatrolDays, &w.Points,
			&w.CheckIns, &w.Visits)
		w.GridCoverage = coverage[w.Grid]
		return w, err
	})
	if out.Grids == nil {
		out.Grids = []gridmap.GridAssessment{}
	}
	if out.Workers == nil {
		out.Workers = []gridmap.WorkerAssessment{}
	}
	return out, translate(err, "assessment")
}
