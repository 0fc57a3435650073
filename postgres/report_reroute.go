package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/gridmap/gridmap/geo"
	"github.com/jackc/pgx/v5"
)

// applyReroutes gives each rerouted report its new owner, in the
// committing transaction tx, as a reroute event saying why: old and new
// owner and the layer's data versions before and after. The new owner's
// chain comes from the grids as committed; co-owners and tier are
// reassessed on them. Like every report event it reaches the report's
// departments through the outbox.
func applyReroutes(ctx context.Context, tx pgx.Tx, layer string, reroutes []gridmap.Reroute, fromVersion, toVersion int64) error {
	if len(reroutes) == 0 {
		return nil
	}
	var l gridmap.Layer
	if err := tx.QueryRow(ctx, `SELECT id, levels, tiers, tolerance_m FROM layers WHERE id = $1`, layer).
		Scan(&l.ID, &l.Levels, &l.Tiers, &l.ToleranceM); err != nil {
		return err
	}
	for _, rr := range reroutes {
		if err := reroute(ctx, tx, &l, rr, fromVersion, toVersion); err != nil {
			return fmt.Errorf("re-routing report %s: %w", rr.Report, err)
		}
	}
	return nil
}

func reroute(ctx context.Context, tx pgx.Tx, layer *gridmap.Layer, rr gridmap.Reroute, fromVersion, toVersion int64) error {
	id, err := strconv.ParseInt(rr.Report, 10, 64)
	if err != nil {
		return err
	}
	var accuracy float64
	lr, err := scanLocked(rowWith{tx.QueryRow(ctx, onReport(`SELECT `+stateColumns+`, r.accuracy_m FROM {report} r WHERE r.id = $1 FOR UPDATE OF r`, id), id), &accuracy})
	if err != nil {
		return err
	}
	a := &lr.state.Assignment
	chain, err := chainIn(ctx, tx, layer.ID, rr.To)
	if err != nil {
		return err
	}
	coOwners, err := coOwnersOn(ctx, tx, layer, id, rr.To, accuracy)
	if err != nil {
		return err
	}
	dispatch.Reroute(a, layer, chain, coOwners)
	why := fmt.Sprintf("boundary change: from %s to %s (layer %s, data version %d -> %d)", rr.From, rr.To, layer.ID, fromVersion, toVersion)
	if rr.From == rr.To {
		why = fmt.Sprintf("boundary change: the grids above %s changed (layer %s, data version %d -> %d)", rr.To, layer.ID, fromVersion, toVersion)
	}
	a.BoundaryVersion, a.Explanation = toVersion, why
	out := dispatch.Outcome{State: lr.state}
	out.DeadlineAt = dispatch.NextDeadline(out.State)
	data, _ := json.Marshal(map[string]any{"from": rr.From, "to": rr.To, "layer": layer.ID,
		"from_data_version": fromVersion, "to_data_version": toVersion})
	ev := &gridmap.ReportEvent{Action: dispatch.ActionReroute, From: lr.state.Status, To: lr.state.Status,
		Actor: "boundary change", Note: why, Data: data}
	return recordEvent(ctx, tx, id, nil, ev, &out, lr.about)
}

// chainSQL returns the chain of grid $2 in layer $1, root first, as JSON.
const chainSQL = `WITH RECURSIVE up AS (
	  SELECT code, name, level, version, parent_code, 0 AS depth FROM grids WHERE layer_id = $1 AND code = $2
	  UNION ALL
	  SELECT g.code, g.name, g.level, g.version, g.parent_code, up.depth + 1 FROM grids g JOIN up ON g.layer_id = $1 AND g.code = up.parent_code
	  WHERE up.depth < 32)
	SELECT coalesce(json_agg(json_build_object('code', code, 'name', name, 'level', level, 'version', version) ORDER BY depth DESC), '[]') FROM up`

// chainIn reads the current chain of a grid through q. Returns ENOTFOUND
// for a grid that is not current.
func chainIn(ctx context.Context, q querier, layer, code string) ([]gridmap.GridRef, error) {
	var raw []byte
	if err := q.QueryRow(ctx, chainSQL, layer, code).Scan(&raw); err != nil {
		return nil, err
	}
	var chain []gridmap.GridRef
	if err := json.Unmarshal(raw, &chain); err != nil {
		return nil, err
	}
	if len(chain) == 0 {
		return nil, gridmap.Errorf(gridmap.ENOTFOUND, "grid %s of layer %s does not exist", code, layer)
	}
	return chain, nil
}

// coOwnersOn lists, through q, the current leaf grids other than owner
// that share report id's location, nearest first, with their chains: those
// geo.CoOwnerReason accepts within the layer's tolerance or the report's
// accuracy.
func coOwnersOn(ctx context.Context, q querier, layer *gridmap.Layer, id int64, owner string, accuracy float64) ([]gridmap.Owner, error) {
	rows, err := q.Query(ctx, `SELECT g.code, g.name, g.level, ST_Distance(g.geom::geography, r.location::geography)
		FROM reports r, grids g
		WHERE r.id = $1 AND g.layer_id = $2 AND g.code <> $3
		  AND g.geom && ST_Expand(r.location, $4 / 110000.0 / greatest(cos(radians(ST_Y(r.location))), 0.01))
		  AND ST_DWithin(g.geom::geography, r.location::geography, $4)
		  AND NOT EXISTS (SELECT 1 FROM grids c WHERE c.layer_id = g.layer_id AND c.parent_code = g.code)
		ORDER BY 4, 1`, id, layer.ID, owner, max(layer.ToleranceM, accuracy, geo.OnBoundaryM))
	if err != nil {
		return nil, err
	}
	near, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (gridmap.Owner, error) {
		var o gridmap.Owner
		err := r.Scan(&o.Code, &o.Name, &o.Level, &o.DistanceM)
		return o, err
	})
	if err != nil {
		return nil, err
	}
	owners := []gridmap.Owner{}
	for _, o := range near {
		var ok bool
		if o.Reason, o.DistanceM, ok = geo.CoOwnerReason(roundCM(o.DistanceM), accuracy, layer.ToleranceM); !ok {
			continue
		}
		if o.Chain, err = chainIn(ctx, q, layer.ID, o.Code); err != nil {
			return nil, err
		}
		owners = append(owners, o)
	}
	return owners, nil
}

// rechain re-routes, in the committing transaction tx, the open reports of
// layer whose owner stays but whose jurisdiction moved: the chain of one of
// their owners names a grid that this write closed without a successor or
// gave another parent (streets merged, a community moved to another
// street). Their chains, co-owners and tier are read again from the grids
// as written, so a scope follows the hierarchy at once. Only reports whose
// owner is still a current grid: one whose owner went and no grid took it
// keeps its assignment, as before. codes limits the grids looked at (nil:
// the whole layer); reports in done are already re-routed.
func rechain(ctx context.Context, tx pgx.Tx, layer string, codes []string, done []gridmap.Reroute, toVersion int64) error {
	skip := make([]string, len(done))
	for i, rr := range done {
		skip[i] = rr.Report
	}
	rows, err := tx.Query(ctx, `WITH moved AS (
		  SELECT o.code FROM grid_versions o
		  LEFT JOIN grid_versions n ON n.layer_id = o.layer_id AND n.code = o.code AND n.valid_to IS NULL
		  WHERE o.layer_id = $1 AND ($2::text[] IS NULL OR o.code = ANY($2)) AND o.valid_to = now()
		    AND (n.code IS NULL OR n.parent_code IS DISTINCT FROM o.parent_code))
		SELECT r.id::text, r.external_id, r.primary_code FROM reports r
		JOIN grid_versions owner ON owner.layer_id = r.layer_id AND owner.code = r.primary_code AND owner.valid_to IS NULL
		WHERE r.layer_id = $1 AND r.status <> ALL($3) AND r.id::text <> ALL($4)
		  AND r.scope_codes && ARRAY(SELECT code FROM moved)
		ORDER BY r.id`, layer, codes, dispatch.DoneStatuses, skip)
	if err != nil {
		return err
	}
	moved, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (gridmap.Reroute, error) {
		var rr gridmap.Reroute
		err := r.Scan(&rr.Report, &rr.ExternalID, &rr.From)
		rr.To = rr.From
		return rr, err
	})
	if err != nil {
		return err
	}
	return applyReroutes(ctx, tx, layer, moved, toVersion-1, toVersion)
}
