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
	"github.com/gridmap/gridmap/geo"
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

// leaderGridsSQL is the grids of leader l (the outer query's) as a JSON
// array, with their current names and levels; only those in the subtree
// of grid $3 of layer $2 when $3 is not NULL.
var leaderGridsSQL = `WITH ` + subtreeSQL("$2", "$3") + `
	SELECT coalesce(json_agg(json_build_object('layer', lg.layer_id, 'code', lg.grid_code,
	  'name', coalesce(g.name, ''), 'level', coalesce(g.level, '')) ORDER BY lg.layer_id, lg.grid_code), '[]')
	FROM leader_grids lg LEFT JOIN grids g ON g.layer_id = lg.layer_id AND g.code = lg.grid_code
	WHERE lg.account_id = l.account_id AND ($3::text IS NULL OR lg.layer_id = $2 AND lg.grid_code IN (SELECT code FROM sub))`

// LeaderAssignments returns an account's grids (to a scoped caller, only
// those in its area, and only when there is one); see
// gridmap.LeaderService.
func (s *LeaderStore) LeaderAssignments(ctx context.Context, username string) (*gridmap.LeaderAssignments, error) {
	// One answer for every account the caller may not see, whatever the
	// reason, so that it cannot tell which accounts exist.
	notFound := gridmap.Errorf(gridmap.ENOTFOUND, "no leader %q that you may see", username)
	var scopeLayer, scopeCode *string
	if sc := scopeOf(ctx); sc != nil {
		if c := gridmap.CallerFrom(ctx); c == nil || c.Kind != gridmap.CallerAccount || c.Name != username {
			scopeLayer, scopeCode = &sc.Layer, &sc.Code // a leader reads all its own grids
		}
	}
	a := &gridmap.LeaderAssignments{Username: username}
	var grids []byte
	err := s.db.Pool.QueryRow(ctx, `SELECT l.visits_per_month, l.updated_at, l.updated_by, (`+leaderGridsSQL+`)
		FROM leaders l JOIN accounts a ON a.id = l.account_id WHERE a.username = $1`, username, scopeLayer, scopeCode).
		Scan(&a.VisitsPerMonth, &a.UpdatedAt, &a.UpdatedBy, &grids)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound
	} else if err != nil {
		return nil, translate(err, "leader assignments")
	}
	if err := json.Unmarshal(grids, &a.Grids); err != nil {
		return nil, err
	}
	if len(a.Grids) == 0 {
		return nil, notFound // none in the caller's area
	}
	return a, nil
}

// checkInGridsSQL measures point ($2, $3) against every grid of leader $1
// (current geometry): whether its outline covers the point, its distance
// in metres (as geography), the layer's tolerance, and the grid's depth
// (its level's place in the layer).
const checkInGridsSQL = `WITH pt AS (SELECT ST_SetSRID(ST_MakePoint($2, $3), 4326) AS p)
	SELECT lg.layer_id, lg.grid_code, coalesce(array_position(l.levels, g.level), 0),
	  ST_Covers(g.geom, pt.p), ST_Distance(g.geom::geography, pt.p::geography), l.tolerance_m
	FROM leader_grids lg JOIN layers l ON l.id = lg.layer_id
	JOIN grids g ON g.layer_id = lg.layer_id AND g.code = lg.grid_code, pt
	WHERE lg.account_id = $1`

// checkInGrid is one assigned grid as measured from a check-in.
type checkInGrid struct {
	layer, code string
	depth       int     // level's place in the layer, coarsest 1
	covers      bool    // the outline covers the point
	distanceM   float64 // metres to the grid (0 inside)
	toleranceM  float64 // the layer's
}

// judgeCheckIn decides a check-in from its measured grids (gridmap.CheckIn
// states the rule): a visit of the finest grid covering the point, else,
// for an accuracy within gridmap.CheckInAccuracyCap, of the nearest grid
// geo.CoOwnerReason would let share the point at the capped accuracy (the
// rule that names a report's co-owners); else outside at the distance of
// the nearest grid (answered to the decimetre; nearest is that distance
// unrounded, NaN for a visit), imprecise when the accuracy was past the
// cap.
func judgeCheckIn(c *gridmap.CheckIn, grids []checkInGrid) (nearest float64) {
	c.Visit, c.Imprecise, c.Layer, c.Grid, c.DistanceM = false, false, nil, nil, nil
	nearest = math.Inf(1)
	var covering, near *checkInGrid
	for i := range grids {
		g := &grids[i]
		nearest = min(nearest, g.distanceM)
		if g.covers && (covering == nil || g.depth > covering.depth) {
			covering = g
		}
		if _, _, ok := geo.CoOwnerReason(g.distanceM, min(c.AccuracyM, gridmap.CheckInAccuracyCap), g.toleranceM); ok &&
			(near == nil || g.distanceM < near.distanceM || g.distanceM == near.distanceM && g.depth > near.depth) {
			near = g
		}
	}
	visited := covering
	if visited == nil && c.AccuracyM <= gridmap.CheckInAccuracyCap {
		visited = near
	}
	if visited != nil {
		c.Visit, c.Layer, c.Grid = true, &visited.layer, &visited.code
		return math.NaN()
	}
	c.Imprecise = c.AccuracyM > gridmap.CheckInAccuracyCap
	d := math.Round(nearest*10) / 10
	c.DistanceM = &d
	return nearest
}

// checkInColumns are a stored check-in's columns (alias c, account a),
// as scanCheckIn reads them.
const checkInColumns = `c.id, a.username, ST_X(c.location), ST_Y(c.location), c.original, c.crs, c.accuracy_m, c.at, c.note, c.photo_url,
	coalesce(c.client_id, ''), c.visit, c.imprecise, c.layer_id, c.grid_code, round(c.distance_m::numeric, 1)::float8`

// scanCheckIn reads checkInColumns into c.
func scanCheckIn(row pgx.Row, c *gridmap.CheckIn) error {
	var original []byte
	if err := row.Scan(&c.ID, &c.Username, &c.Lon, &c.Lat, &original, &c.CRS, &c.AccuracyM, &c.At, &c.Note, &c.PhotoURL,
		&c.ClientID, &c.Visit, &c.Imprecise, &c.Layer, &c.Grid, &c.DistanceM); err != nil {
		return err
	}
	c.Original = nil
	if original != nil {
		return json.Unmarshal(original, &c.Original)
	}
	return nil
}

// CheckIn records a check-in of the signed-in leader; see
// gridmap.LeaderService.
func (s *LeaderStore) CheckIn(ctx context.Context, c *gridmap.CheckIn) (created bool, err error) {
	caller := gridmap.CallerFrom(ctx)
	if caller == nil || caller.Kind != gridmap.CallerAccount {
		return false, gridmap.Errorf(gridmap.EFORBIDDEN, "a check-in is a leader's own: sign in with the leader's account (a token cannot check in)")
	}
	if c.Person != "" && c.Person != caller.Name && (caller.Person == nil || c.Person != caller.Person.Name) {
		return false, gridmap.Errorf(gridmap.EFORBIDDEN, "person %q is not you: a check-in is the signed-in account's own (send %q, or leave person out)",
			c.Person, caller.Name)
	}
	c.Username = caller.Name
	rows, err := s.db.Pool.Query(ctx, checkInGridsSQL, caller.ID, c.Lon, c.Lat)
	if err != nil {
		return false, translate(err, "check-in")
	}
	grids, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (checkInGrid, error) {
		var g checkInGrid
		err := r.Scan(&g.layer, &g.code, &g.depth, &g.covers, &g.distanceM, &g.toleranceM)
		return g, err
	})
	if err != nil {
		return false, translate(err, "check-in")
	}
	if len(grids) == 0 {
		return false, gridmap.Errorf(gridmap.EFORBIDDEN, "account %s is not a leader with current grids; an admin gives it grids with PUT /v1/leaders/%s/assignments",
			caller.Name, caller.Name)
	}
	nearest := judgeCheckIn(c, grids)
	var original []byte
	if c.Original != nil {
		original, _ = json.Marshal(c.Original)
	}
	var distance *float64
	if !c.Visit {
		distance = &nearest
	}
	y, m, d := c.At.In(s.tz).Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	err = s.db.Pool.QueryRow(ctx, `INSERT INTO checkins (account_id, location, original, crs, accuracy_m, at, day, note, photo_url, client_id,
		  visit, imprecise, layer_id, grid_code, distance_m)
		VALUES ($1, ST_SetSRID(ST_MakePoint($2, $3), 4326), $4, $5, $6, $7, $8, $9, $10, nullif($11, ''), $12, $13, $14, $15, $16)
		ON CONFLICT (account_id, client_id) DO NOTHING RETURNING id`,
		caller.ID, c.Lon, c.Lat, original, c.CRS, c.AccuracyM, c.At, day, c.Note, c.PhotoURL, c.ClientID,
		c.Visit, c.Imprecise, c.Layer, c.Grid, distance).Scan(&c.ID)
	if errors.Is(err, pgx.ErrNoRows) { // a retry: answer the check-in stored before
		err = scanCheckIn(s.db.Pool.QueryRow(ctx, `SELECT `+checkInColumns+` FROM checkins c JOIN accounts a ON a.id = c.account_id
			WHERE c.account_id = $1 AND c.client_id = $2`, caller.ID, c.ClientID), c)
		return false, translate(err, "check-in")
	}
	return err == nil, translate(err, "check-in")
}

// NoteOnSiteWork links a report to the caller's visits whose on-site
// window holds now and whose grid the report lies in (its scope codes,
// gridmap.ReportScopeCodes, hold the visited grid); see
// gridmap.LeaderService.
func (s *LeaderStore) NoteOnSiteWork(ctx context.Context, reportID int64, action string) error {
	caller := gridmap.CallerFrom(ctx)
	if caller == nil || caller.Kind != gridmap.CallerAccount || !slices.Contains(dispatch.OnSiteActions, action) {
		return nil
	}
	_, err := s.db.Pool.Exec(ctx, onReport(`INSERT INTO checkin_reports (checkin_id, report_id, action)
		SELECT c.id, r.id, $3 FROM checkins c JOIN {report} r ON r.id = $2
		WHERE c.account_id = $1 AND c.visit AND c.at <= now() AND c.at > now() - make_interval(secs => $4)
		  AND r.layer_id = c.layer_id AND r.scope_codes @> ARRAY[c.grid_code]
		ON CONFLICT DO NOTHING`, reportID), caller.ID, reportID, action, gridmap.OnSiteWindow.Seconds())
	if noReport(err, reportID) {
		return nil // no report of that id: nothing to link
	}
	return translate(err, "linking on-site work")
}
