package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/jackc/pgx/v5"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkb"
	"github.com/paulmach/orb/geojson"
)

// ChangeChannel is the PostgreSQL NOTIFY channel that carries a
// gridmap.Change as JSON after every committed boundary change.
const ChangeChannel = "gridmap_changes"

var _ gridmap.BoundaryEditor = (*GridStore)(nil)

// errDryRun rolls a dry run back after its result is complete.
var errDryRun = errors.New("dry run")

// metresPerDegree converts a snapping distance to degrees of latitude (the
// stricter direction: a degree of longitude is shorter away from the equator).
const metresPerDegree = 111_320.0

// stateOf is the layer as the changeset leaves it: the working copies in
// cs_work over the current grids of table (grid_versions, or draft_grids
// for a draft: both have the columns read here, valid_to included). $1 is
// the layer id.
func stateOf(table string) string {
	return `(SELECT code, name, level, parent_code, geom, attributes FROM cs_work WHERE NOT deleted
	UNION ALL
	SELECT g.code, g.name, g.level, g.parent_code, g.geom, g.attributes FROM ` + table + ` g
	WHERE g.layer_id = $1 AND g.valid_to IS NULL AND NOT EXISTS (SELECT 1 FROM cs_work w WHERE w.code = g.code))`
}

// stateSQL is stateOf the published grids.
var stateSQL = stateOf("grid_versions")

// Tables a changeset reads its grids from: the published layer, or its draft.
const (
	publishedTable = "grid_versions"
	draftTable     = "draft_grids"
)

// polygonal keeps the polygons of a geometry expression as a MultiPolygon.
func polygonal(expr string) string {
	return "ST_Multi(ST_CollectionExtract(ST_MakeValid(" + expr + "), 3))"
}

type changeset struct {
	tx pgx.Tx
	// grids is the table holding the grids edited: publishedTable, or
	// draftTable when draft.
	grids    string
	draft    bool
	layer    *gridmap.Layer
	codeRE   *regexp.Regexp
	checker  *geo.Checker
	problems []gridmap.Problem
}

// ApplyChangeset validates the operations against the layer as it will be
// after all of them and writes them in one transaction (see
// gridmap.BoundaryEditor). Edits to one layer take turns: the layer row is
// locked for the transaction, so of two editors racing on one grid with the
// same if_match exactly one wins.
func (s *GridStore) ApplyChangeset(ctx context.Context, layerID string, cs *gridmap.Changeset) (*gridmap.ChangesetResult, error) {
	return s.applyChangeset(ctx, layerID, cs, false)
}

// ApplyDraftChangeset applies a changeset to the layer's draft (see
// gridmap.DraftService): the same operations and checks as on the
// published layer, but overlaps and spills outside a parent are listed
// without stopping it, and no report is re-routed.
func (s *GridStore) ApplyDraftChangeset(ctx context.Context, layerID string, cs *gridmap.Changeset) (*gridmap.ChangesetResult, error) {
	return s.applyChangeset(ctx, layerID, cs, true)
}

func (s *GridStore) applyChangeset(ctx context.Context, layerID string, cs *gridmap.Changeset, draft bool) (*gridmap.ChangesetResult, error) {
	if len(cs.Operations) == 0 {
		return nil, gridmap.Errorf(gridmap.EINVALID, "a changeset needs at least one operation")
	}
	if err := cs.Check(); err != nil {
		return nil, err
	}
	res := &gridmap.ChangesetResult{Versions: map[string]int{}, Problems: []gridmap.Problem{}}
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		c, err := s.beginChangeset(ctx, tx, layerID, draft)
		if err != nil {
			return err
		}
		for i := range cs.Operations {
			if err := c.apply(ctx, i, &cs.Operations[i]); err != nil {
				return err
			}
			if err := c.checkScope(ctx, i, &cs.Operations[i]); err != nil {
				return err
			}
		}
		return c.finish(ctx, cs, res)
	})
	if errors.Is(err, errDryRun) {
		return res, nil
	}
	if err != nil {
		return nil, translate(err, "changeset on layer "+layerID)
	}
	res.Applied = true
	return res, nil
}

// beginChangeset locks the layer (edits to one layer, its draft included,
// take turns) and makes the working table. For a draft, returns ENOTFOUND
// when the layer has none.
func (s *GridStore) beginChangeset(ctx context.Context, tx pgx.Tx, layerID string, draft bool) (*changeset, error) {
	layer, err := NewLayerStore(s.db).layer(ctx, tx, layerID, true)
	if err != nil {
		return nil, err
	}
	c := &changeset{tx: tx, grids: publishedTable, draft: draft, layer: layer, checker: geo.NewChecker()}
	if draft {
		c.grids = draftTable
		if err := requireDraft(ctx, tx, layerID); err != nil {
			return nil, err
		}
	}
	if layer.CodePattern != "" {
		if c.codeRE, err = gridmap.CompileCodePattern(layer.CodePattern); err != nil {
			return nil, err
		}
	}
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE cs_work (
		code text PRIMARY KEY, name text NOT NULL, level text NOT NULL, parent_code text,
		geom geometry(MultiPolygon, 4326) NOT NULL, old_geom geometry(MultiPolygon, 4326),
		attributes jsonb NOT NULL DEFAULT '{}', deleted boolean NOT NULL DEFAULT false, base_version integer
	) ON COMMIT DROP`); err != nil {
		return nil, err
	}
	return c, nil
}

// finish validates the working copies, fills in the impact and commits
// them, unless a problem stops it (EUNPROCESSABLE) or it is a dry run
// (errDryRun). In a draft, overlaps and spills are listed but stop nothing.
func (c *changeset) finish(ctx context.Context, cs *gridmap.Changeset, res *gridmap.ChangesetResult) error {
	if len(c.blocking()) == 0 {
		if err := c.validate(ctx); err != nil {
			return err
		}
	}
	if err := c.impact(ctx, res); err != nil {
		return err
	}
	res.Problems = append(res.Problems, c.problems...)
	blocking := c.blocking()
	switch {
	case len(blocking) > 0 && !cs.DryRun:
		return &gridmap.Error{Code: gridmap.EUNPROCESSABLE, Details: blocking,
			Message: fmt.Sprintf("the changeset would break the layer in %d places and was not applied", len(blocking))}
	case cs.DryRun:
		return errDryRun
	case c.draft:
		return c.commitDraft(ctx, res)
	}
	return c.commit(ctx, cs, res)
}

// blocking are the problems that stop the changeset: all of them on the
// published layer; in a draft, all but overlaps and spills outside a parent,
// which a draft may hold until it is published.
func (c *changeset) blocking() []gridmap.Problem {
	if !c.draft {
		return c.problems
	}
	var out []gridmap.Problem
	for _, p := range c.problems {
		if p.Kind != gridmap.ProblemOverlapsSibling && p.Kind != gridmap.ProblemOutsideParent {
			out = append(out, p)
		}
	}
	return out
}

func (c *changeset) problem(kind string, index int, codes []string, format string, args ...any) {
	idx := index
	c.problems = append(c.problems, gridmap.Problem{Kind: kind, Index: &idx, Codes: codes, Message: fmt.Sprintf(format, args...)})
}

func (c *changeset) apply(ctx context.Context, i int, op *gridmap.Operation) error {
	switch op.Op {
	case gridmap.OpPut:
		return c.put(ctx, i, op)
	case gridmap.OpDelete:
		if err := c.load(ctx, i, op.Code, op.IfMatch); err != nil {
			return err
		}
		_, err := c.tx.Exec(ctx, `UPDATE cs_work SET deleted = true WHERE code = $1`, op.Code)
		return err
	case gridmap.OpSplit:
		return c.split(ctx, i, op)
	case gridmap.OpMerge:
		return c.merge(ctx, i, op)
	case gridmap.OpMoveEdge:
		return c.moveEdge(ctx, i, op)
	case gridmap.OpTransfer:
		return c.transfer(ctx, i, op)
	default:
		return gridmap.Errorf(gridmap.EINVALID, "operation %d: op %q must be one of put, delete, split, merge, move_edge, transfer", i, op.Op)
	}
}

// currentVersion is the grid's current version in the database, 0 if none.
func (c *changeset) currentVersion(ctx context.Context, code string) (int, error) {
	var v int
	err := c.tx.QueryRow(ctx, `SELECT version FROM `+c.grids+` WHERE layer_id = $1 AND code = $2 AND valid_to IS NULL`,
		c.layer.ID, code).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

func (c *changeset) checkIfMatch(ctx context.Context, i int, code string, ifMatch *int) error {
	if ifMatch == nil {
		return nil
	}
	v, err := c.currentVersion(ctx, code)
	if err != nil {
		return err
	}
	if v != *ifMatch {
		return gridmap.Errorf(gridmap.EPRECONDITION, "operation %d: grid %s is at version %d, not %d: someone changed it since you read it; reload it and edit again", i, code, v, *ifMatch)
	}
	return nil
}

// load puts the grid's current state into the working table, if it is not
// there yet. Returns ENOTFOUND for a grid that does not exist (or that this
// changeset already deleted), EPRECONDITION for a stale ifMatch.
func (c *changeset) load(ctx context.Context, i int, code string, ifMatch *int) error {
	if code == "" {
		return gridmap.Errorf(gridmap.EINVALID, "operation %d needs a code", i)
	}
	if err := c.checkIfMatch(ctx, i, code, ifMatch); err != nil {
		return err
	}
	if _, err := c.tx.Exec(ctx, `INSERT INTO cs_work (code, name, level, parent_code, geom, old_geom, attributes, base_version)
		SELECT code, name, level, parent_code, geom, geom, attributes, version FROM `+c.grids+`
		WHERE layer_id = $1 AND code = $2 AND valid_to IS NULL
		ON CONFLICT (code) DO NOTHING`, c.layer.ID, code); err != nil {
		return err
	}
	var deleted bool
	err := c.tx.QueryRow(ctx, `SELECT deleted FROM cs_work WHERE code = $1`, code).Scan(&deleted)
	if errors.Is(err, pgx.ErrNoRows) || deleted {
		return gridmap.Errorf(gridmap.ENOTFOUND, "operation %d: grid %s does not exist in layer %s", i, code, c.layer.ID)
	}
	return err
}

// loadChildren puts the current children of parent into the working table.
func (c *changeset) loadChildren(ctx context.Context, parent string) error {
	_, err := c.tx.Exec(ctx, `INSERT INTO cs_work (code, name, level, parent_code, geom, old_geom, attributes, base_version)
		SELECT code, name, level, parent_code, geom, geom, attributes, version FROM `+c.grids+`
		WHERE layer_id = $1 AND parent_code = $2 AND valid_to IS NULL
		ON CONFLICT (code) DO NOTHING`, c.layer.ID, parent)
	return err
}

// checkedGeometry returns a geometry from an operation as WKB after the
// structural and GEOS checks, or records the problem and returns nil.
func (c *changeset) checkedGeometry(i int, code string, g *geojson.Geometry, what string) []byte {
	if g == nil {
		c.problem(gridmap.ProblemInvalidGeometry, i, []string{code}, "operation %d needs %s", i, what)
		return nil
	}
	mp, err := geo.Polygonal(g.Geometry())
	if err != nil {
		c.problem(gridmap.ProblemInvalidGeometry, i, []string{code}, "%s: %v", what, err)
		return nil
	}
	if iv := c.checker.Check(mp); iv != nil {
		p := gridmap.Problem{Kind: gridmap.ProblemInvalidGeometry, Index: &i, Codes: []string{code},
			Message: fmt.Sprintf("%s of %s is invalid: %s", what, code, iv.Reason)}
		if iv.Where != nil {
			p.Where = geojson.NewGeometry(*iv.Where)
		}
		c.problems = append(c.problems, p)
		return nil
	}
	b, _ := wkb.Marshal(mp)
	return b
}

// snapped snaps a new geometry's vertices onto the boundaries of the grids
// at its level (and its parent) within the layer's snapping distance, so a
// hand-drawn shared edge leaves no sliver.
func (c *changeset) snapped(ctx context.Context, code, level, parent string, geom []byte) ([]byte, error) {
	tol := c.layer.SnapM / metresPerDegree
	var out []byte
	err := c.tx.QueryRow(ctx, `WITH g AS (SELECT ST_GeomFromWKB($2, 4326) AS g),
		ref AS (SELECT ST_Collect(ST_Boundary(s.geom)) AS r FROM g CROSS JOIN LATERAL (SELECT s.geom FROM `+stateOf(c.grids)+` s
			WHERE s.geom && ST_Expand(g.g, $6) AND s.code <> $3 AND (s.level = $4 OR s.code = $5) OFFSET 0) s)
		SELECT ST_AsBinary(`+polygonal(`CASE WHEN ref.r IS NULL OR $6 = 0 THEN g.g ELSE ST_Snap(g.g, ref.r, $6) END`)+`) FROM g, ref`,
		c.layer.ID, geom, code, level, parent, tol).Scan(&out)
	return out, err
}

func (c *changeset) put(ctx context.Context, i int, op *gridmap.Operation) error {
	if op.Feature == nil {
		return gridmap.Errorf(gridmap.EINVALID, "operation %d: put needs a feature", i)
	}
	f := geo.FeatureFromGeoJSON(op.Feature, i, geo.DefaultFieldMap)
	if f.Code == "" {
		f.Code = op.Code
	}
	if op.Code != "" && f.Code != op.Code {
		return gridmap.Errorf(gridmap.EINVALID, "operation %d: feature code %q differs from the operation's code %q", i, f.Code, op.Code)
	}
	if err := c.checkIfMatch(ctx, i, f.Code, op.IfMatch); err != nil {
		return err
	}
	// A property the feature leaves out keeps its current value.
	var cur struct {
		name, level string
		parent      *string
		attrs       map[string]any
		geom        []byte
	}
	err := c.tx.QueryRow(ctx, `SELECT name, level, parent_code, attributes, ST_AsBinary(geom) FROM `+stateOf(c.grids)+` s WHERE code = $2`,
		c.layer.ID, f.Code).Scan(&cur.name, &cur.level, &cur.parent, &cur.attrs, &cur.geom)
	exists := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	props := op.Feature.Properties
	if exists {
		if _, ok := props["name"]; !ok {
			f.Name = cur.name
		}
		if _, ok := props["level"]; !ok {
			f.Level = cur.level
		}
		if _, ok := props["parent"]; !ok && cur.parent != nil {
			f.Parent = *cur.parent
		}
		if len(f.Attributes) == 0 {
			f.Attributes = cur.attrs
		}
	}
	if p := c.layer.CheckFeature(f, c.codeRE); p != nil {
		c.problems = append(c.problems, *p)
		return nil
	}
	var geom []byte
	if op.Feature.Geometry == nil && exists {
		geom = cur.geom
	} else if geom = c.checkedGeometry(i, f.Code, geojson.NewGeometry(op.Feature.Geometry), "the feature's geometry"); geom == nil {
		return nil
	} else if geom, err = c.snapped(ctx, f.Code, f.Level, f.Parent, geom); err != nil {
		return err
	}
	attrs, _ := json.Marshal(f.Attributes)
	if f.Attributes == nil {
		attrs = []byte("{}")
	}
	var parent any
	if f.Parent != "" {
		parent = f.Parent
	}
	if exists {
		if err := c.load(ctx, i, f.Code, nil); err != nil {
			return err
		}
	}
	_, err = c.tx.Exec(ctx, `INSERT INTO cs_work (code, name, level, parent_code, geom, attributes)
		VALUES ($1, $2, $3, $4, ST_GeomFromWKB($5, 4326), $6)
		ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, level = EXCLUDED.level, parent_code = EXCLUDED.parent_code,
			geom = EXCLUDED.geom, attributes = EXCLUDED.attributes, deleted = false`,
		f.Code, f.Name, f.Level, parent, geom, attrs)
	return err
}

// checkNewCode records a problem when code cannot name a new grid.
func (c *changeset) checkNewCode(ctx context.Context, i int, code string) (bool, error) {
	if c.codeRE != nil && !c.codeRE.MatchString(code) {
		c.problem(gridmap.ProblemBadCode, i, []string{code}, "new code %q does not match the layer's code pattern %s", code, c.layer.CodePattern)
		return false, nil
	}
	var taken bool
	if err := c.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+stateOf(c.grids)+` s WHERE code = $2)`, c.layer.ID, code).Scan(&taken); err != nil {
		return false, err
	}
	if taken {
		c.problem(gridmap.ProblemBadCode, i, []string{code}, "new code %s is already in use in layer %s", code, c.layer.ID)
		return false, nil
	}
	return true, nil
}

// reparent moves the children of the given grids to whichever of the
// candidates holds most of each child.
func (c *changeset) reparent(ctx context.Context, from []string, candidates []string) error {
	for _, p := range from {
		if err := c.loadChildren(ctx, p); err != nil {
			return err
		}
	}
	_, err := c.tx.Exec(ctx, `UPDATE cs_work ch SET parent_code = (
			SELECT n.code FROM cs_work n WHERE n.code = ANY($2) AND NOT n.deleted
			ORDER BY ST_Area(ST_Intersection(n.geom, ch.geom)) DESC, n.code LIMIT 1)
		WHERE ch.parent_code = ANY($1) AND NOT ch.deleted`, from, candidates)
	return err
}

func (c *changeset) split(ctx context.Context, i int, op *gridmap.Operation) error {
	if err := c.load(ctx, i, op.Code, op.IfMatch); err != nil {
		return err
	}
	if len(op.Parts) > 0 {
		return c.splitIntoParts(ctx, i, op)
	}
	line, ok := lineOf(op.Line)
	if !ok {
		return gridmap.Errorf(gridmap.EINVALID, "operation %d: split needs a GeoJSON LineString as line, or the parts", i)
	}
	lineWKB, _ := wkb.Marshal(line)
	rows, err := c.tx.Query(ctx, `SELECT ST_AsBinary(d.geom), ST_X(ST_PointOnSurface(d.geom)), ST_Y(ST_PointOnSurface(d.geom))
		FROM cs_work w, ST_Dump(ST_Split(w.geom, ST_GeomFromWKB($2, 4326))) d WHERE w.code = $1`, op.Code, lineWKB)
	if err != nil {
		return err
	}
	type part struct {
		geom []byte
		at   orb.Point
	}
	parts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (part, error) {
		var p part
		err := r.Scan(&p.geom, &p.at[0], &p.at[1])
		return p, err
	})
	if err != nil {
		return err
	}
	if len(parts) != len(op.NewCodes) || len(parts) < 2 {
		return gridmap.Errorf(gridmap.EINVALID, "operation %d: the line cuts %s into %d parts but %d new codes were given; draw the line right across the grid and give one code per part",
			i, op.Code, len(parts), len(op.NewCodes))
	}
	sort.SliceStable(parts, func(a, b int) bool {
		sa, da := sideOf(line, parts[a].at)
		sb, db := sideOf(line, parts[b].at)
		if sa != sb {
			return sa > sb // left first
		}
		return da < db
	})
	geoms := make([][]byte, len(parts))
	for k, p := range parts {
		geoms[k] = p.geom
	}
	return c.replaceByParts(ctx, i, op.Code, op.NewCodes, geoms)
}

// splitIntoParts splits a grid into the given parts, each clipped to it;
// between them they must cover it.
func (c *changeset) splitIntoParts(ctx context.Context, i int, op *gridmap.Operation) error {
	if len(op.Parts) != len(op.NewCodes) || len(op.Parts) < 2 {
		return gridmap.Errorf(gridmap.EINVALID, "operation %d: give at least two parts and one new code per part (%d parts, %d codes)", i, len(op.Parts), len(op.NewCodes))
	}
	geoms := make([][]byte, len(op.Parts))
	for k, p := range op.Parts {
		g := c.checkedGeometry(i, op.NewCodes[k], p, fmt.Sprintf("part %d", k))
		if g == nil {
			return nil
		}
		if err := c.tx.QueryRow(ctx, `SELECT ST_AsBinary(`+polygonal(`ST_Intersection(geom, ST_GeomFromWKB($2, 4326))`)+`)
			FROM cs_work WHERE code = $1`, op.Code, g).Scan(&geoms[k]); err != nil {
			return err
		}
	}
	var uncovered float64
	if err := c.tx.QueryRow(ctx, `SELECT coalesce(ST_Area(ST_Difference(geom, ST_Union(ARRAY(SELECT ST_GeomFromWKB(g, 4326) FROM unnest($2::bytea[]) g)))::geography), 0)
		FROM cs_work WHERE code = $1`, op.Code, geoms).Scan(&uncovered); err != nil {
		return err
	}
	if uncovered > gridmap.ToleranceAreaM2 {
		return gridmap.Errorf(gridmap.EINVALID, "operation %d: the parts leave %.1f m2 of %s uncovered; together they must cover it", i, uncovered, op.Code)
	}
	return c.replaceByParts(ctx, i, op.Code, op.NewCodes, geoms)
}

// replaceByParts ends a grid and creates one new grid per part, with its
// level, parent and attributes; its children move to the part holding most
// of each.
func (c *changeset) replaceByParts(ctx context.Context, i int, code string, newCodes []string, parts [][]byte) error {
	for k, nc := range newCodes {
		if ok, err := c.checkNewCode(ctx, i, nc); err != nil || !ok {
			return err
		}
		if _, err := c.tx.Exec(ctx, `INSERT INTO cs_work (code, name, level, parent_code, geom, attributes)
			SELECT $2, name || ' (' || $3 || ')', level, parent_code, ST_Multi(ST_GeomFromWKB($4, 4326)), attributes
			FROM cs_work WHERE code = $1`, code, nc, strconv.Itoa(k+1), parts[k]); err != nil {
			return err
		}
	}
	if _, err := c.tx.Exec(ctx, `UPDATE cs_work SET deleted = true WHERE code = $1`, code); err != nil {
		return err
	}
	return c.reparent(ctx, []string{code}, newCodes)
}

func lineOf(g *geojson.Geometry) (orb.LineString, bool) {
	if g == nil {
		return nil, false
	}
	l, ok := g.Geometry().(orb.LineString)
	return l, ok && len(l) >= 2
}

// sideOf says on which side of the line p lies (+1 left, -1 right, as the
// line is drawn) and how far along the line its nearest point is.
func sideOf(line orb.LineString, p orb.Point) (int, float64) {
	best, side, along, walked := math.Inf(1), 0, 0.0, 0.0
	for k := 0; k+1 < len(line); k++ {
		a, b := line[k], line[k+1]
		dx, dy := b[0]-a[0], b[1]-a[1]
		seg := math.Hypot(dx, dy)
		t := 0.0
		if seg > 0 {
			t = math.Max(0, math.Min(1, ((p[0]-a[0])*dx+(p[1]-a[1])*dy)/(seg*seg)))
		}
		q := orb.Point{a[0] + t*dx, a[1] + t*dy}
		if d := math.Hypot(p[0]-q[0], p[1]-q[1]); d < best {
			best, along = d, walked+t*seg
			if cross := dx*(p[1]-a[1]) - dy*(p[0]-a[0]); cross > 0 {
				side = 1
			} else {
				side = -1
			}
		}
		walked += seg
	}
	return side, along
}

func (c *changeset) merge(ctx context.Context, i int, op *gridmap.Operation) error {
	if len(op.Codes) < 2 || op.Into == "" {
		return gridmap.Errorf(gridmap.EINVALID, "operation %d: merge needs at least two codes and the code to merge into", i)
	}
	for _, code := range op.Codes {
		var ifMatch *int
		if code == op.Into {
			ifMatch = op.IfMatch
		}
		if err := c.load(ctx, i, code, ifMatch); err != nil {
			return err
		}
	}
	var levels, parents int
	if err := c.tx.QueryRow(ctx, `SELECT count(DISTINCT level), count(DISTINCT coalesce(parent_code, '')) FROM cs_work WHERE code = ANY($1)`,
		op.Codes).Scan(&levels, &parents); err != nil {
		return err
	}
	if levels != 1 || parents != 1 {
		return gridmap.Errorf(gridmap.EINVALID, "operation %d: grids %v must share their level and parent to be merged", i, op.Codes)
	}
	intoExisting := false
	for _, code := range op.Codes {
		intoExisting = intoExisting || code == op.Into
	}
	if !intoExisting {
		if ok, err := c.checkNewCode(ctx, i, op.Into); err != nil || !ok {
			return err
		}
		if _, err := c.tx.Exec(ctx, `INSERT INTO cs_work (code, name, level, parent_code, geom, attributes)
			SELECT $2, name, level, parent_code, geom, attributes FROM cs_work WHERE code = $1`, op.Codes[0], op.Into); err != nil {
			return err
		}
	}
	if _, err := c.tx.Exec(ctx, `UPDATE cs_work SET geom = (SELECT `+polygonal(`ST_Union(geom)`)+` FROM cs_work WHERE code = ANY($2))
		WHERE code = $1`, op.Into, op.Codes); err != nil {
		return err
	}
	var others []string
	for _, code := range op.Codes {
		if code != op.Into {
			others = append(others, code)
		}
	}
	if _, err := c.tx.Exec(ctx, `UPDATE cs_work SET deleted = true WHERE code = ANY($1)`, others); err != nil {
		return err
	}
	return c.reparent(ctx, others, []string{op.Into})
}

// moveEdge gives code its new geometry; siblings lose what it gains, and
// each piece it gives up goes to the sibling sharing the longest edge with
// that piece, so the siblings still tile their parent.
func (c *changeset) moveEdge(ctx context.Context, i int, op *gridmap.Operation) error {
	if err := c.load(ctx, i, op.Code, op.IfMatch); err != nil {
		return err
	}
	var level string
	var parent *string
	if err := c.tx.QueryRow(ctx, `SELECT level, parent_code FROM cs_work WHERE code = $1`, op.Code).Scan(&level, &parent); err != nil {
		return err
	}
	p := ""
	if parent != nil {
		p = *parent
	}
	geom := c.checkedGeometry(i, op.Code, op.Geometry, "the new geometry")
	if geom == nil {
		return nil
	}
	geom, err := c.snapped(ctx, op.Code, level, p, geom)
	if err != nil {
		return err
	}
	// Siblings the new shape reaches into give up the overlap. In these
	// statements $1 is the grid, $2 its level, $3 its parent, $4 the new shape.
	const siblings = `s.level = $2 AND s.parent_code IS NOT DISTINCT FROM $3 AND s.code <> $1`
	if _, err := c.tx.Exec(ctx, `INSERT INTO cs_work (code, name, level, parent_code, geom, old_geom, attributes, base_version)
		SELECT s.code, s.name, s.level, s.parent_code, s.geom, s.geom, s.attributes, s.version FROM `+c.grids+` s
		WHERE s.layer_id = $5 AND s.valid_to IS NULL AND `+siblings+`
		  AND s.geom && ST_GeomFromWKB($4, 4326) AND ST_Relate(s.geom, ST_GeomFromWKB($4, 4326), '2********')
		ON CONFLICT (code) DO NOTHING`, op.Code, level, parent, geom, c.layer.ID); err != nil {
		return err
	}
	if _, err := c.tx.Exec(ctx, `UPDATE cs_work s SET geom = `+polygonal(`ST_Difference(s.geom, ST_GeomFromWKB($4, 4326))`)+`
		WHERE NOT s.deleted AND `+siblings+` AND ST_Relate(s.geom, ST_GeomFromWKB($4, 4326), '2********')`,
		op.Code, level, parent, geom); err != nil {
		return err
	}
	// Neighbours that may take what the grid gives up.
	if _, err := c.tx.Exec(ctx, `INSERT INTO cs_work (code, name, level, parent_code, geom, old_geom, attributes, base_version)
		SELECT s.code, s.name, s.level, s.parent_code, s.geom, s.geom, s.attributes, s.version FROM `+c.grids+` s, cs_work w
		WHERE s.layer_id = $5 AND s.valid_to IS NULL AND w.code = $1 AND `+siblings+`
		  AND s.geom && w.geom AND ST_Intersects(s.geom, ST_Difference(w.geom, ST_GeomFromWKB($4, 4326)))
		ON CONFLICT (code) DO NOTHING`, op.Code, level, parent, geom, c.layer.ID); err != nil {
		return err
	}
	// Pieces given up go to the neighbour sharing the longest edge with each.
	rows, err := c.tx.Query(ctx, `SELECT ST_AsBinary(d.geom), ST_Area(d.geom::geography),
			(SELECT s.code FROM cs_work s WHERE NOT s.deleted AND `+siblings+`
			   AND ST_Intersects(s.geom, d.geom)
			 ORDER BY ST_Length(ST_Intersection(ST_Boundary(d.geom), s.geom)) DESC, s.code LIMIT 1)
		FROM cs_work w, ST_Dump(ST_CollectionExtract(ST_Difference(w.geom, ST_GeomFromWKB($4, 4326)), 3)) d
		WHERE w.code = $1`, op.Code, level, parent, geom)
	if err != nil {
		return err
	}
	type piece struct {
		geom []byte
		area float64
		to   *string
	}
	pieces, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (piece, error) {
		var p piece
		err := r.Scan(&p.geom, &p.area, &p.to)
		return p, err
	})
	if err != nil {
		return err
	}
	for _, pc := range pieces {
		if pc.to == nil {
			if pc.area > gridmap.ToleranceAreaM2 {
				c.problem(gridmap.ProblemOutsideParent, i, []string{op.Code}, "the %.1f m2 that %s gives up touches no sibling to take it: the parent would be left with a gap", pc.area, op.Code)
			}
			continue
		}
		if _, err := c.tx.Exec(ctx, `UPDATE cs_work SET geom = `+polygonal(`ST_Union(geom, ST_GeomFromWKB($2, 4326))`)+` WHERE code = $1`,
			*pc.to, pc.geom); err != nil {
			return err
		}
	}
	_, err = c.tx.Exec(ctx, `UPDATE cs_work SET geom = ST_GeomFromWKB($2, 4326) WHERE code = $1`, op.Code, geom)
	return err
}

func (c *changeset) transfer(ctx context.Context, i int, op *gridmap.Operation) error {
	if op.From == "" || op.To == "" || op.From == op.To {
		return gridmap.Errorf(gridmap.EINVALID, "operation %d: transfer needs two different grids, from and to", i)
	}
	if err := c.load(ctx, i, op.From, op.IfMatch); err != nil {
		return err
	}
	if err := c.load(ctx, i, op.To, nil); err != nil {
		return err
	}
	area := c.checkedGeometry(i, op.From, op.Area, "the area to transfer")
	if area == nil {
		return nil
	}
	var given float64
	var touches bool
	if err := c.tx.QueryRow(ctx, `WITH piece AS (SELECT `+polygonal(`ST_Intersection(f.geom, ST_GeomFromWKB($3, 4326))`)+` AS g
			FROM cs_work f WHERE f.code = $1)
		SELECT coalesce(ST_Area(piece.g::geography), 0), ST_Intersects(t.geom, piece.g) FROM piece, cs_work t WHERE t.code = $2`,
		op.From, op.To, area).Scan(&given, &touches); err != nil {
		return err
	}
	if given <= gridmap.ToleranceAreaM2 {
		return gridmap.Errorf(gridmap.EINVALID, "operation %d: the area does not overlap %s, so there is nothing to transfer", i, op.From)
	}
	if !touches {
		return gridmap.Errorf(gridmap.EINVALID, "operation %d: the area taken from %s does not touch %s; a grid can only be given land next to it", i, op.From, op.To)
	}
	if _, err := c.tx.Exec(ctx, `UPDATE cs_work t SET geom = `+polygonal(`ST_Union(t.geom, ST_Intersection(f.geom, ST_GeomFromWKB($3, 4326)))`)+`
		FROM cs_work f WHERE t.code = $2 AND f.code = $1`, op.From, op.To, area); err != nil {
		return err
	}
	_, err := c.tx.Exec(ctx, `UPDATE cs_work SET geom = `+polygonal(`ST_Difference(geom, ST_GeomFromWKB($2, 4326))`)+` WHERE code = $1`, op.From, area)
	return err
}
