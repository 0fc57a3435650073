package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/jackc/pgx/v5"
)

// LeaderStore implements gridmap.LeaderService: leaders' grids, their
// check-ins and the on-site work linked to them here, their figures in
// leader_stats.go.
type LeaderStore struct {
	db *DB
	tz *time.Location // the deployment's: months are counted in it
}

// NewLeaderStore returns a LeaderStore over db counting months in tz.
func NewLeaderStore(db *DB, tz *time.Location) *LeaderStore { return &LeaderStore{db: db, tz: tz} }

var _ gridmap.LeaderService = (*LeaderStore)(nil)

// accountID reads an account's id through q. Returns ENOTFOUND.
func accountID(ctx context.Context, q querier, username string) (int64, error) {
	var id int64
	err := q.QueryRow(ctx, `SELECT id FROM accounts WHERE username = $1`, username).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, gridmap.Errorf(gridmap.ENOTFOUND, "account %q does not exist", username)
	}
	return id, err
}

// PutLeaderAssignments replaces an account's grids in one transaction;
// see gridmap.LeaderService.
func (s *LeaderStore) PutLeaderAssignments(ctx context.Context, a *gridmap.LeaderAssignments) error {
	if err := a.Check(); err != nil {
		return err
	}
	a.UpdatedBy = gridmap.CallerFrom(ctx).Actor()
	grids, _ := json.Marshal(a.Grids)
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		id, err := accountID(ctx, tx, a.Username)
		if err != nil {
			return err
		}
		if err := checkGridsExist(ctx, tx, a.Grids); err != nil {
			return err
		}
		if len(a.Grids) == 0 {
			_, err := tx.Exec(ctx, `DELETE FROM leaders WHERE account_id = $1`, id)
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO leaders (account_id, visits_per_month, updated_by) VALUES ($1, $2, $3)
			ON CONFLICT (account_id) DO UPDATE SET visits_per_month = $2, updated_by = $3, updated_at = now()
			RETURNING updated_at`, id, a.VisitsPerMonth, a.UpdatedBy).Scan(&a.UpdatedAt); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM leader_grids WHERE account_id = $1`, id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO leader_grids (account_id, layer_id, grid_code)
			SELECT $1, g->>'layer', g->>'code' FROM jsonb_array_elements($2::jsonb) g`, id, grids)
		return err
	})
	return translate(err, "storing leader assignments")
}

// checkGridsExist fills in the grids' names and levels through q, in one
// query, and returns EINVALID naming the first that is not a current grid.
func checkGridsExist(ctx context.Context, q querier, grids []gridmap.LeaderGrid) error {
	layers, codes := make([]string, len(grids)), make([]string, len(grids))
	for i, g := range grids {
		layers[i], codes[i] = g.Layer, g.Code
	}
	rows, err := q.Query(ctx, `SELECT w.n::int - 1, g.name, g.level
		FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS w (layer, code, n)
		LEFT JOIN grids g ON g.layer_id = w.layer AND g.code = w.code ORDER BY w.n`, layers, codes)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var i int
		var name, level *string
		if err := rows.Scan(&i, &name, &level); err != nil {
			return err
		}
		if name == nil {
			return gridmap.Errorf(gridmap.EINVALID, "grids[%d]: grid %s of layer %s does not exist", i, grids[i].Code, grids[i].Layer)
		}
		grids[i].Name, grids[i].Level = *name, *level
	}
	return rows.Err()
}

// leaderGridsSQL is a leader's grids (account $1) as a JSON array, with
// their current names and levels.
const leaderGridsSQL = `(SELECT coalesce(json_agg(json_build_object('layer', lg.layer_id, 'code', lg.grid_code,
	  'name', coalesce(g.name, ''), 'level', coalesce(g.level, '')) ORDER BY lg.layer_id, lg.grid_code), '[]')
	 FROM leader_grids lg LEFT JOIN grids g ON g.layer_id = lg.layer_id AND g.code = lg.grid_code WHERE lg.account_id = $1)`

// LeaderAssignments returns an account's grids (to a scoped caller, only
// when one lies in its area); see gridmap.LeaderService.
func (s *LeaderStore) LeaderAssignments(ctx context.Context, username string) (*gridmap.LeaderAssignments, error) {
	id, err := accountID(ctx, s.db.Pool, username)
	if err != nil {
		return nil, translate(err, "leader assignments")
	}
	a := &gridmap.LeaderAssignments{Username: username}
	var grids []byte
	err = s.db.Pool.QueryRow(ctx, `SELECT visits_per_month, updated_at, updated_by, `+leaderGridsSQL+` FROM leaders WHERE account_id = $1`, id).
		Scan(&a.VisitsPerMonth, &a.UpdatedAt, &a.UpdatedBy, &grids)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, gridmap.Errorf(gridmap.ENOTFOUND, "account %s is not a leader: it has no grids (PUT its assignments)", username)
	} else if err != nil {
		return nil, translate(err, "leader assignments")
	}
	if err := json.Unmarshal(grids, &a.Grids); err != nil {
		return nil, err
	}
	if sc := scopeOf(ctx); sc != nil {
		var inScope bool
		if err := s.db.Pool.QueryRow(ctx, leaderInScopeSQL, sc.Layer, sc.Code, id).Scan(&inScope); err != nil {
			return nil, translate(err, "leader assignments")
		}
		if !inScope {
			return nil, gridmap.Errorf(gridmap.ENOTFOUND, "account %s is not a leader with a grid in your area (%s %s)", username, sc.Layer, sc.Code)
		}
	}
	return a, nil
}

// leaderInScopeSQL is whether leader $3 has a grid in the subtree of grid
// $2 of layer $1.
var leaderInScopeSQL = `WITH ` + subtreeSQL("$1", "$2") + `
	SELECT EXISTS (SELECT 1 FROM leader_grids WHERE account_id = $3 AND layer_id = $1 AND grid_code IN (SELECT code FROM sub))`

// checkInGridsSQL measures point ($2, $3) against every grid of leader $1
// (current geometry, as geography): its distance in metres and whether it
// is within the layer's tolerance plus accuracy $4; with the grid's depth
// (its level's place in the layer).
const checkInGridsSQL = `WITH pt AS (SELECT ST_SetSRID(ST_MakePoint($2, $3), 4326)::geography AS p)
	SELECT lg.layer_id, lg.grid_code, coalesce(array_position(l.levels, g.level), 0),
	  ST_Distance(g.geom::geography, pt.p), ST_DWithin(g.geom::geography, pt.p, l.tolerance_m + $4)
	FROM leader_grids lg JOIN layers l ON l.id = lg.layer_id
	JOIN grids g ON g.layer_id = lg.layer_id AND g.code = lg.grid_code, pt
	WHERE lg.account_id = $1`

// checkInGrid is one assigned grid as measured from a check-in.
type checkInGrid struct {
	Layer     string  `json:"layer"`
	Code      string  `json:"code"`
	depth     int     // level's place in the layer, coarsest 1
	distanceM float64 // metres to the grid (0 inside)
	within    bool    // within the tolerance plus the accuracy
}

// judgeCheckIn decides a check-in from its measured grids: a visit of the
// finest grid it is within (the nearest of equals), listing every grid it
// is within; else outside at the distance of the nearest grid (answered
// to the decimetre; nearest is that distance unrounded, NaN for a visit).
func judgeCheckIn(c *gridmap.CheckIn, grids []checkInGrid) (within []checkInGrid, nearest float64) {
	c.Visit, c.Layer, c.Grid, c.DistanceM = false, nil, nil, nil
	nearest = math.Inf(1)
	var best *checkInGrid
	for i := range grids {
		g := &grids[i]
		nearest = min(nearest, g.distanceM)
		if !g.within {
			continue
		}
		within = append(within, *g)
		if best == nil || g.depth > best.depth || g.depth == best.depth && g.distanceM < best.distanceM {
			best = g
		}
	}
	if best != nil {
		c.Visit, c.Layer, c.Grid = true, &best.Layer, &best.Code
		return within, math.NaN()
	}
	d := math.Round(nearest*10) / 10
	c.DistanceM = &d
	return []checkInGrid{}, nearest
}

// CheckIn records a check-in of the signed-in leader; see
// gridmap.LeaderService.
func (s *LeaderStore) CheckIn(ctx context.Context, c *gridmap.CheckIn) error {
	caller := gridmap.CallerFrom(ctx)
	if caller == nil || caller.Kind != gridmap.CallerAccount {
		return gridmap.Errorf(gridmap.EFORBIDDEN, "a check-in is a leader's own: sign in with the leader's account (a token cannot check in)")
	}
	c.Username = caller.Name
	rows, err := s.db.Pool.Query(ctx, checkInGridsSQL, caller.ID, c.Lon, c.Lat, c.AccuracyM)
	if err != nil {
		return translate(err, "check-in")
	}
	grids, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (checkInGrid, error) {
		var g checkInGrid
		err := r.Scan(&g.Layer, &g.Code, &g.depth, &g.distanceM, &g.within)
		return g, err
	})
	if err != nil {
		return translate(err, "check-in")
	}
	if len(grids) == 0 {
		return gridmap.Errorf(gridmap.EFORBIDDEN, "account %s is not a leader with current grids; an admin gives it grids with PUT /v1/leaders/%s/assignments",
			caller.Name, caller.Name)
	}
	judged, nearest := judgeCheckIn(c, grids)
	within, _ := json.Marshal(judged)
	var original []byte
	if c.Original != nil {
		original, _ = json.Marshal(c.Original)
	}
	var distance *float64
	if !c.Visit {
		distance = &nearest
	}
	err = s.db.Pool.QueryRow(ctx, `INSERT INTO checkins (account_id, location, original, crs, accuracy_m, at, note, photo_url, visit, layer_id, grid_code, grids, distance_m)
		VALUES ($1, ST_SetSRID(ST_MakePoint($2, $3), 4326), $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id`,
		caller.ID, c.Lon, c.Lat, original, c.CRS, c.AccuracyM, c.At, c.Note, c.PhotoURL, c.Visit, c.Layer, c.Grid, within, distance).Scan(&c.ID)
	return translate(err, "check-in")
}

// NoteOnSiteWork links a report to the caller's visits whose on-site
// window holds now; see gridmap.LeaderService.
func (s *LeaderStore) NoteOnSiteWork(ctx context.Context, reportID int64, action string) error {
	caller := gridmap.CallerFrom(ctx)
	if caller == nil || caller.Kind != gridmap.CallerAccount || !slices.Contains(dispatch.OnSiteActions, action) {
		return nil
	}
	_, err := s.db.Pool.Exec(ctx, `INSERT INTO checkin_reports (checkin_id, report_id, action)
		SELECT c.id, $2, $3 FROM checkins c
		WHERE c.account_id = $1 AND c.visit AND c.at <= now() AND c.at > now() - make_interval(secs => $4)
		ON CONFLICT DO NOTHING`, caller.ID, reportID, action, gridmap.OnSiteWindow.Seconds())
	return translate(err, "linking on-site work")
}
