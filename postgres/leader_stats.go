package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/gridmap/gridmap"
)

// leaderStatsSQL counts each leader's figures over [$4, $5): leaders with
// a grid in layer $1 (every leader when ”), and with a grid in the
// subtree of grid $3 of layer $2 when $3 is not NULL (the caller's
// scope). Per leader: its grids (of that subtree only, for a scoped
// caller), each with whether a visit of the window was of it; its visits,
// counted as distinct (grid, day in the deployment's time zone), so that
// checking in again and again at one grid on one day counts once; its
// outside check-ins; the reports linked to the window's visits as on-site
// work.
var leaderStatsSQL = `WITH ` + subtreeSQL("$2", "$3") + `,
	ld AS (
	  SELECT a.id, a.username, a.display_name, l.visits_per_month FROM leaders l JOIN accounts a ON a.id = l.account_id
	  WHERE ($1 = '' OR EXISTS (SELECT 1 FROM leader_grids g WHERE g.account_id = a.id AND g.layer_id = $1))
	    AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM leader_grids g WHERE g.account_id = a.id AND g.layer_id = $2
	                                     AND g.grid_code IN (SELECT code FROM sub))))
	SELECT ld.username, ld.display_name, ld.visits_per_month,
	  (SELECT coalesce(json_agg(json_build_object('layer', lg.layer_id, 'code', lg.grid_code, 'name', coalesce(g.name, ''),
	     'level', coalesce(g.level, ''),
	     'visited', EXISTS (SELECT 1 FROM checkins c WHERE c.account_id = ld.id AND c.visit AND c.at >= $4 AND c.at < $5
	                        AND c.layer_id = lg.layer_id AND c.grid_code = lg.grid_code))
	     ORDER BY lg.layer_id, lg.grid_code), '[]')
	   FROM leader_grids lg LEFT JOIN grids g ON g.layer_id = lg.layer_id AND g.code = lg.grid_code
	   WHERE lg.account_id = ld.id AND ($3::text IS NULL OR lg.layer_id = $2 AND lg.grid_code IN (SELECT code FROM sub))),
	  (SELECT count(DISTINCT (c.layer_id, c.grid_code, c.day)) FROM checkins c WHERE c.account_id = ld.id AND c.visit AND c.at >= $4 AND c.at < $5),
	  (SELECT count(*) FROM checkins c WHERE c.account_id = ld.id AND NOT c.visit AND c.at >= $4 AND c.at < $5),
	  (SELECT count(DISTINCT r.report_id) FROM checkin_reports r JOIN checkins c ON c.id = r.checkin_id
	   WHERE c.account_id = ld.id AND c.at >= $4 AND c.at < $5)
	FROM ld ORDER BY ld.username`

// LeaderStats counts every leader's figures over [from, to); see
// gridmap.LeaderService.
func (s *LeaderStore) LeaderStats(ctx context.Context, layer string, from, to time.Time) (*gridmap.LeaderStats, error) {
	if !to.After(from) {
		return nil, gridmap.Errorf(gridmap.EINVALID, "the window is empty: to (%s) must be after from (%s)", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	if layer != "" {
		if _, err := layerIn(ctx, s.db.Pool, layer); err != nil {
			return nil, translate(err, "leader figures")
		}
	}
	st := &gridmap.LeaderStats{From: from, To: to, Rows: []gridmap.LeaderRow{}}
	var scopeLayer, scopeCode *string
	if sc := scopeOf(ctx); sc != nil {
		scopeLayer, scopeCode = &sc.Layer, &sc.Code
	}
	rows, err := s.db.Pool.Query(ctx, leaderStatsSQL, layer, scopeLayer, scopeCode, from, to)
	if err != nil {
		return nil, translate(err, "leader figures")
	}
	defer rows.Close()
	for rows.Next() {
		var r gridmap.LeaderRow
		var grids []byte
		if err := rows.Scan(&r.Username, &r.DisplayName, &r.VisitsPerMonth, &grids, &r.Visits, &r.Outside, &r.OnSiteReports); err != nil {
			return nil, translate(err, "leader figures")
		}
		var visited []struct {
			gridmap.LeaderGrid
			Visited bool `json:"visited"`
		}
		if err := json.Unmarshal(grids, &visited); err != nil {
			return nil, err
		}
		r.Grids, r.NotVisited = []gridmap.LeaderGrid{}, []string{}
		for _, g := range visited {
			r.Grids = append(r.Grids, g.LeaderGrid)
			if !g.Visited {
				r.NotVisited = append(r.NotVisited, g.Code)
			}
		}
		r.RequiredVisits = gridmap.RequiredVisits(r.VisitsPerMonth, from, to, s.tz)
		st.Rows = append(st.Rows, r)
	}
	return st, translate(rows.Err(), "leader figures")
}
