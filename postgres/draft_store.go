package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
	"github.com/paulmach/orb/encoding/wkb"
	"github.com/paulmach/orb/geojson"
)

// A layer's draft lives in drafts and draft_grids (migration 00016), apart
// from grid_versions, so that nothing that serves the published layer
// (lookup index, tiles, search, assignment) can read it by mistake. It is
// a whole copy of the layer: publishing makes the layer equal to it.

var _ gridmap.DraftService = (*GridStore)(nil)

// requireDraft returns ENOTFOUND when layer has no draft.
func requireDraft(ctx context.Context, q querier, layer string) error {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM drafts WHERE layer_id = $1)`, layer).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return gridmap.Errorf(gridmap.ENOTFOUND, "layer %s has no draft: import with draft=true (gridmap import --draft) to start one", layer)
	}
	return nil
}

// ensureDraft starts the layer's draft as a copy of its current grids,
// unless it has one already.
func ensureDraft(ctx context.Context, tx pgx.Tx, layer, author string) error {
	tag, err := tx.Exec(ctx, `INSERT INTO drafts (layer_id, author, base_data_version)
		SELECT id, $2, data_version FROM layers WHERE id = $1 ON CONFLICT (layer_id) DO NOTHING`, layer, author)
	if err != nil || tag.RowsAffected() == 0 {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO draft_grids (layer_id, code, version, name, level, parent_code, geom, attributes)
		SELECT layer_id, code, version, name, level, parent_code, geom, attributes FROM grid_versions
		WHERE layer_id = $1 AND valid_to IS NULL`, layer)
	return err
}

// commitDraft writes a draft changeset's working copies into the draft:
// deleted grids go, the others replace their draft row with the next
// draft version.
func (c *changeset) commitDraft(ctx context.Context, res *gridmap.ChangesetResult) error {
	tx, layer := c.tx, c.layer.ID
	if _, err := tx.Exec(ctx, `DELETE FROM draft_grids d USING cs_work w WHERE d.layer_id = $1 AND d.code = w.code AND w.deleted`, layer); err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `INSERT INTO draft_grids (layer_id, code, version, name, level, parent_code, geom, attributes)
		SELECT $1, w.code, 1, w.name, w.level, w.parent_code, w.geom, w.attributes FROM cs_work w WHERE NOT w.deleted
		ON CONFLICT (layer_id, code) DO UPDATE SET version = draft_grids.version + 1, name = EXCLUDED.name,
			level = EXCLUDED.level, parent_code = EXCLUDED.parent_code, geom = EXCLUDED.geom, attributes = EXCLUDED.attributes
		RETURNING code, version`, layer)
	if err != nil {
		return err
	}
	var code string
	var version int
	if _, err := pgx.ForEachRow(rows, []any{&code, &version}, func() error {
		res.Versions[code] = version
		return nil
	}); err != nil {
		return err
	}
	rows, err = tx.Query(ctx, `SELECT code FROM cs_work WHERE base_version IS NULL AND NOT deleted ORDER BY code`)
	if err != nil {
		return err
	}
	if res.Created, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE drafts SET updated_at = now() WHERE layer_id = $1`, layer)
	return err
}

// draftDiffSQL compares each draft grid of layer $1 with the published
// one: created (no current grid), same (nothing a version records differs).
const draftDiffSQL = `SELECT d.code, g.code IS NULL AS created,
	coalesce(g.name = d.name AND g.level = d.level AND g.parent_code IS NOT DISTINCT FROM d.parent_code
		AND g.attributes = d.attributes AND ST_OrderingEquals(g.geom, d.geom), false) AS same
	FROM draft_grids d LEFT JOIN grid_versions g ON g.layer_id = d.layer_id AND g.code = d.code AND g.valid_to IS NULL
	WHERE d.layer_id = $1`

// endedSQL lists the current grids of layer $1 that the draft no longer has.
const endedSQL = `SELECT g.code FROM grid_versions g WHERE g.layer_id = $1 AND g.valid_to IS NULL
	AND NOT EXISTS (SELECT 1 FROM draft_grids d WHERE d.layer_id = $1 AND d.code = g.code)`

// Draft summarises the layer's draft (see gridmap.DraftService).
func (s *GridStore) Draft(ctx context.Context, layer string) (*gridmap.DraftSummary, error) {
	sum := &gridmap.DraftSummary{Layer: layer, Counts: map[string]int{}}
	err := pgx.BeginTxFunc(ctx, s.db.Pool, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		if err := s.checkLayerIn(ctx, tx, layer); err != nil {
			return err
		}
		if err := requireDraft(ctx, tx, layer); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT author FROM drafts WHERE layer_id = $1`, layer).Scan(&sum.Author); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT level, count(*) FROM draft_grids WHERE layer_id = $1 GROUP BY level`, layer)
		if err != nil {
			return err
		}
		var level string
		var n int
		if _, err := pgx.ForEachRow(rows, []any{&level, &n}, func() error { sum.Counts[level] = n; return nil }); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE created), count(*) FILTER (WHERE NOT created AND NOT same),
			count(*) FILTER (WHERE same), (SELECT count(*) FROM (`+endedSQL+`) e) FROM (`+draftDiffSQL+`) d`, layer).
			Scan(&sum.Created, &sum.Changed, &sum.Unchanged, &sum.Ended); err != nil {
			return err
		}
		sum.Problems, err = draftProblems(ctx, tx, layer)
		return err
	})
	if err != nil {
		return nil, translate(err, "reading the draft of layer "+layer)
	}
	return sum, nil
}

func (s *GridStore) checkLayerIn(ctx context.Context, q querier, layer string) error {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM layers WHERE id = $1)`, layer).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return gridmap.Errorf(gridmap.ENOTFOUND, "layer %q does not exist", layer)
	}
	return nil
}

// draftRootsSQL finds what the coverage report cannot see in a draft of
// layer $1: overlaps between grids without a parent at the same level, and
// parents that are missing or not coarser ($2 the levels, coarsest first).
// $3 is the tolerated area in m2.
const draftRootsSQL = `
SELECT 'overlaps_sibling', ARRAY[a.code, b.code], ST_AsBinary(i.g), ST_Area(i.g::geography)
FROM draft_grids a JOIN draft_grids b ON b.layer_id = a.layer_id AND b.parent_code IS NULL AND b.level = a.level
  AND a.code < b.code AND a.geom && b.geom AND ST_Relate(a.geom, b.geom, '2********')
CROSS JOIN LATERAL (SELECT ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 3) AS g) i
WHERE a.layer_id = $1 AND a.parent_code IS NULL AND ST_Area(i.g::geography) > $3
UNION ALL
SELECT 'unknown_parent', ARRAY[c.code, c.parent_code], NULL, NULL
FROM draft_grids c LEFT JOIN draft_grids p ON p.layer_id = c.layer_id AND p.code = c.parent_code
WHERE c.layer_id = $1 AND c.parent_code IS NOT NULL
  AND (p.code IS NULL OR array_position($2::text[], p.level) >= array_position($2::text[], c.level))`

// draftProblems lists each overlap, spill outside a parent, gap and
// missing parent of the layer's draft once, largest first within a kind.
func draftProblems(ctx context.Context, q pgx.Tx, layer string) ([]gridmap.Problem, error) {
	rows, err := q.Query(ctx, `SELECT DISTINCT parent_code FROM draft_grids WHERE layer_id = $1 AND parent_code IS NOT NULL`, layer)
	if err != nil {
		return nil, err
	}
	parents, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	cov, err := coverageUnderIn(ctx, q, draftTable, layer, parents, true)
	if err != nil {
		return nil, err
	}
	var problems []gridmap.Problem
	add := func(kind, format string, items []gridmap.CoverageItem) {
		for _, it := range items {
			area := it.AreaM2
			other := it.Codes[0]
			if len(it.Codes) > 1 {
				other = it.Codes[1]
			}
			problems = append(problems, gridmap.Problem{Kind: kind, Codes: it.Codes, AreaM2: &area,
				Where: geojson.NewGeometry(it.Geometry), Message: fmt.Sprintf(format, it.Codes[0], other, area)})
		}
	}
	add(gridmap.ProblemOverlapsSibling, "%s overlaps its sibling %s by %.1f m2", cov.Overlaps)
	add(gridmap.ProblemOutsideParent, "%s reaches outside its parent %s by %.1f m2", cov.Outside)
	add(gridmap.ProblemGap, "%[1]s has %.1[3]f m2 its children do not cover", cov.Gaps)
	var levels []string
	if err := q.QueryRow(ctx, `SELECT levels FROM layers WHERE id = $1`, layer).Scan(&levels); err != nil {
		return nil, err
	}
	rows, err = q.Query(ctx, draftRootsSQL, layer, levels, gridmap.ToleranceAreaM2)
	if err != nil {
		return nil, err
	}
	var kind string
	var codes []string
	var where []byte
	var area *float64
	if _, err := pgx.ForEachRow(rows, []any{&kind, &codes, &where, &area}, func() error {
		p := gridmap.Problem{Kind: kind, Codes: slices.Clone(codes)}
		if where != nil {
			g, err := wkb.Unmarshal(where)
			if err != nil {
				return err
			}
			p.Where = geojson.NewGeometry(g)
		}
		if area != nil {
			a := *area
			p.AreaM2 = &a
			p.Message = fmt.Sprintf("%s overlaps %s by %.1f m2", codes[0], codes[1], a)
		} else {
			p.Message = fmt.Sprintf("parent %s of %s is not in the draft, or not at a coarser level", codes[1], codes[0])
		}
		problems = append(problems, p)
		return nil
	}); err != nil {
		return nil, err
	}
	return dedupeProblems(problems), nil
}

// dedupeProblems keeps one problem per kind and set of codes (a pair of
// siblings overlaps once, whichever of them is named first); gaps, which
// name only their parent, are told apart by their area as well.
func dedupeProblems(problems []gridmap.Problem) []gridmap.Problem {
	seen := map[string]bool{}
	out := []gridmap.Problem{}
	for _, p := range problems {
		codes := slices.Clone(p.Codes)
		if p.Kind == gridmap.ProblemOverlapsSibling {
			sort.Strings(codes)
		}
		key := p.Kind + "|" + strings.Join(codes, "|")
		if p.Kind == gridmap.ProblemGap && p.AreaM2 != nil {
			key += fmt.Sprintf("|%.0f", math.Round(*p.AreaM2))
		}
		if !seen[key] {
			seen[key] = true
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return area(out[i]) > area(out[j])
	})
	return out
}

func area(p gridmap.Problem) float64 {
	if p.AreaM2 == nil {
		return 0
	}
	return *p.AreaM2
}

// ResolveOverlap removes from the other grid of pair the area it shares
// with giveTo, as a draft changeset would (see gridmap.DraftService).
func (s *GridStore) ResolveOverlap(ctx context.Context, layer string, pair [2]string, giveTo, author string) (*gridmap.ChangesetResult, error) {
	if pair[0] == "" || pair[1] == "" || pair[0] == pair[1] || (giveTo != pair[0] && giveTo != pair[1]) {
		return nil, gridmap.Errorf(gridmap.EINVALID, "overlap needs two different codes and give_to one of them")
	}
	other := pair[0]
	if other == giveTo {
		other = pair[1]
	}
	res := &gridmap.ChangesetResult{Versions: map[string]int{}, Problems: []gridmap.Problem{}}
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		c, err := s.beginChangeset(ctx, tx, layer, true)
		if err != nil {
			return err
		}
		for _, code := range pair {
			if err := c.load(ctx, 0, code, nil); err != nil {
				return err
			}
		}
		var shared float64
		if err := tx.QueryRow(ctx, `SELECT coalesce(ST_Area(ST_CollectionExtract(ST_Intersection(o.geom, g.geom), 3)::geography), 0)
			FROM cs_work o, cs_work g WHERE o.code = $1 AND g.code = $2`, other, giveTo).Scan(&shared); err != nil {
			return err
		}
		if shared <= gridmap.ToleranceAreaM2 {
			return gridmap.Errorf(gridmap.EINVALID, "%s and %s do not overlap (%.1f m2 in common)", pair[0], pair[1], shared)
		}
		if _, err := tx.Exec(ctx, `UPDATE cs_work o SET geom = `+polygonal(`ST_Difference(o.geom, g.geom)`)+`
			FROM cs_work g WHERE o.code = $1 AND g.code = $2`, other, giveTo); err != nil {
			return err
		}
		op := &gridmap.Operation{Op: "resolve", Code: other}
		if err := c.checkScope(ctx, 0, op); err != nil {
			return err
		}
		cs := &gridmap.Changeset{Author: author, Reason: fmt.Sprintf("overlap of %s and %s given to %s", pair[0], pair[1], giveTo)}
		return c.finish(ctx, cs, res)
	})
	if err != nil {
		return nil, translate(err, "resolving an overlap in the draft of layer "+layer)
	}
	res.Applied = true
	return res, nil
}

// DiscardDraft removes the layer's draft (see gridmap.DraftService). A
// scoped caller may discard only a draft whose changes lie in its scope.
func (s *GridStore) DiscardDraft(ctx context.Context, layer string) error {
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		if _, err := NewLayerStore(s.db).layer(ctx, tx, layer, true); err != nil {
			return err
		}
		if err := requireDraft(ctx, tx, layer); err != nil {
			return err
		}
		if err := checkDraftInScope(ctx, tx, layer); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM drafts WHERE layer_id = $1`, layer)
		return err
	})
	return translate(err, "discarding the draft of layer "+layer)
}

// draftOutsideScopeSQL finds the first grid a publish of the draft of
// layer $4 would change (created, changed or ended; old and new outline)
// outside the scope grid ($1 layer, $2 code), by the rule of
// outsideScopeSQL.
var draftOutsideScopeSQL = scopeGridSQL + `,
	diff AS (SELECT d.code, d.geom, g.geom AS old FROM draft_grids d
	           LEFT JOIN grid_versions g ON g.layer_id = d.layer_id AND g.code = d.code AND g.valid_to IS NULL
	         WHERE d.layer_id = $4 AND (g.code IS NULL OR NOT (g.name = d.name AND g.level = d.level
	           AND g.parent_code IS NOT DISTINCT FROM d.parent_code AND g.attributes = d.attributes AND ST_OrderingEquals(g.geom, d.geom)))
	         UNION ALL
	         SELECT g.code, g.geom, NULL FROM grid_versions g WHERE g.layer_id = $4 AND g.valid_to IS NULL
	           AND NOT EXISTS (SELECT 1 FROM draft_grids d WHERE d.layer_id = $4 AND d.code = g.code))
	SELECT w.code FROM diff w LEFT JOIN s ON true
	WHERE s.geom IS NULL OR ($4 = $1 AND w.code = $2) OR ` + reachesOutside("w.geom", "$3") + `
	   OR (w.old IS NOT NULL AND ` + reachesOutside("w.old", "$3") + `)
	ORDER BY w.code LIMIT 1`

// checkDraftInScope returns EFORBIDDEN when ctx's caller is scoped and the
// draft changes a grid outside its scope.
func checkDraftInScope(ctx context.Context, tx pgx.Tx, layer string) error {
	sc := scopeOf(ctx)
	if sc == nil {
		return nil
	}
	var code string
	err := tx.QueryRow(ctx, draftOutsideScopeSQL, sc.Layer, sc.Code, gridmap.ToleranceAreaM2, layer).Scan(&code)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	} else if err != nil {
		return err
	}
	return gridmap.Errorf(gridmap.EFORBIDDEN, "the draft of layer %s changes grid %s, outside %s's area (%s %s)",
		layer, code, gridmap.CallerFrom(ctx).Name, sc.Layer, sc.Code)
}

// DraftCoverageOf is CoverageOf read from the layer's draft: gaps, overlaps
// and parts outside under parent, or under every parent in the draft.
// Returns ENOTFOUND without a draft, or for a parent the draft lacks.
func (s *GridStore) DraftCoverageOf(ctx context.Context, layer, parent string) (*gridmap.Coverage, error) {
	if err := requireDraft(ctx, s.db.Pool, layer); err != nil {
		return nil, err
	}
	var parents []string
	if parent != "" {
		var exists bool
		if err := s.db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM draft_grids WHERE layer_id = $1 AND code = $2)`, layer, parent).Scan(&exists); err != nil {
			return nil, translate(err, "draft coverage")
		}
		if !exists {
			return nil, gridmap.Errorf(gridmap.ENOTFOUND, "grid %q is not in the draft of layer %s", parent, layer)
		}
		parents = []string{parent}
	} else {
		rows, err := s.db.Pool.Query(ctx, `SELECT DISTINCT parent_code FROM draft_grids WHERE layer_id = $1 AND parent_code IS NOT NULL`, layer)
		if err != nil {
			return nil, translate(err, "draft coverage")
		}
		if parents, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return nil, translate(err, "draft coverage")
		}
	}
	cov, err := coverageUnderIn(ctx, s.db.Pool, draftTable, layer, parents, true)
	if err != nil {
		return nil, translate(err, "draft coverage")
	}
	return cov, nil
}
