package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/paulmach/orb/encoding/wkb"
	"github.com/paulmach/orb/geojson"
)

// importBatch is how many checked features go to PostgreSQL in one COPY.
const importBatch = 500

// wholeLayerSettings set up a transaction that writes a whole layer (an
// import, or its tile shapes). A big file's checks and tile shapes run
// past the pool's statement timeout; the caller's context bounds them
// instead. And the tables such a transaction fills grow a thousandfold
// within it: a generic plan made while they were small (a scan of a table
// of ten rows) would be kept by the connection for every later round, and
// reading a chunk's labels took half a second once a province had 60,000
// of them. So every statement is planned for the tables as they are.
const wholeLayerSettings = `SET LOCAL statement_timeout = 0; SET LOCAL plan_cache_mode = force_custom_plan`

// stagedFeature is what the importer keeps in memory per accepted feature
// while the geometry waits in the staging table.
type stagedFeature struct {
	index               int
	code, level, parent string
}

// Import checks every feature and writes the accepted ones in one
// transaction (see gridmap.Importer). Features stream through: geometry is
// checked and copied to a staging table as it is read, and only codes,
// levels and parents stay in memory until parents are resolved at the end.
func (s *GridStore) Import(ctx context.Context, layerID string, src gridmap.FeatureSource, opts gridmap.ImportOptions) (*gridmap.ImportResult, error) {
	res := &gridmap.ImportResult{Layer: layerID, Rejected: []gridmap.Problem{}, Repaired: []gridmap.Problem{}}
	var imp *importer
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, wholeLayerSettings); err != nil {
			return err
		}
		layer, err := s.importLayer(ctx, tx, layerID, opts)
		if err != nil {
			return err
		}
		imp = &importer{layer: layer, opts: opts, res: res, tx: tx, checker: geo.NewChecker(), table: publishedTable,
			inFile: map[string]int{}, rejectedCodes: map[string]bool{}, stepStart: time.Now()}
		if opts.Draft {
			imp.table, imp.opts.MakeValid, res.Draft = draftTable, true, true
			if err := ensureDraft(ctx, tx, layer.ID, opts.Author); err != nil {
				return err
			}
		}
		if layer.CodePattern != "" {
			if imp.codeRE, err = gridmap.CompileCodePattern(layer.CodePattern); err != nil {
				return err
			}
		}
		if err := imp.loadExisting(ctx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE import_rows (
			idx integer PRIMARY KEY, code text NOT NULL, name text NOT NULL, level text NOT NULL, parent text,
			attrs jsonb NOT NULL, wkb bytea NOT NULL, people jsonb, unchanged boolean NOT NULL DEFAULT false
		) ON COMMIT DROP`); err != nil {
			return err
		}
		if err := imp.stream(ctx, src); err != nil {
			return err
		}
		imp.step("reading")
		imp.resolveParents()
		sort.Slice(res.Rejected, func(i, j int) bool { return *res.Rejected[i].Index < *res.Rejected[j].Index })
		if len(res.Rejected) > 0 && !opts.SkipInvalid {
			return &gridmap.Error{Code: gridmap.EUNPROCESSABLE, Details: res.Rejected,
				Message: fmt.Sprintf("%d of %d features were rejected and nothing was imported; fix them, or import the rest with skip-invalid", len(res.Rejected), res.Read)}
		}
		if opts.Draft {
			return imp.commitDraft(ctx)
		}
		return imp.commit(ctx)
	})
	if err != nil {
		if imp != nil {
			imp.step("stopped")
			s.db.Logger.Info("import refused or failed", append([]any{"layer", layerID, "read", res.Read, "err", err}, imp.steps...)...)
		}
		return nil, translate(err, "importing into layer "+layerID)
	}
	imp.step("committing")
	s.db.Logger.Info("imported", append([]any{"layer", layerID, "read", res.Read, "created", res.Created, "replaced", res.Replaced}, imp.steps...)...)
	if imp.grew {
		// The generic plans connections keep for tile and edit statements
		// were made for the tables before the import: made for a few rows,
		// they scan whole tables once there are thousands. Refreshing the
		// statistics of the shapes the import wrote too makes PostgreSQL plan
		// them again now rather than when autovacuum gets to it. Failing it is
		// no reason to fail the import.
		// It waits at most a second for its lock: a big import still
		// running elsewhere holds it (see grown), and this import is done.
		tables := []string{"grid_shapes", "grid_labels"}
		if opts.Draft {
			tables = nil
		}
		if !imp.analyzed { // its lock was busy within the import
			tables = append(tables, imp.table)
		}
		analyze := ""
		if len(tables) > 0 {
			analyze = `ANALYZE ` + strings.Join(tables, ", ")
		}
		if analyze != "" {
			err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '1s'`); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, analyze)
				return err
			})
			if err != nil {
				s.db.Logger.Warn("analyzing after import", "err", err)
			}
		}
	}
	return res, nil
}

// importLayer reads the layer, locking it so imports into one layer take
// turns, after defining it from opts.Levels when they are given.
func (s *GridStore) importLayer(ctx context.Context, tx pgx.Tx, id string, opts gridmap.ImportOptions) (*gridmap.Layer, error) {
	layers := NewLayerStore(s.db)
	l, err := layers.layer(ctx, tx, id, true)
	switch {
	case gridmap.ErrorCode(err) == gridmap.ENOTFOUND && len(opts.Levels) > 0:
		l = &gridmap.Layer{ID: id, Kind: opts.Kind, Levels: opts.Levels}
	case gridmap.ErrorCode(err) == gridmap.ENOTFOUND:
		return nil, gridmap.Errorf(gridmap.ENOTFOUND, "layer %q does not exist: give its levels, coarsest first, to create it with the import", id)
	case err != nil:
		return nil, err
	case len(opts.Levels) == 0 || slices.Equal(l.Levels, opts.Levels):
		return l, nil
	default:
		l.Levels, l.Tiers = opts.Levels, nil // tiers follow the new levels
	}
	if err := l.Normalize(); err != nil {
		return nil, err
	}
	if _, err := layers.putLayer(ctx, tx, l); err != nil {
		return nil, err
	}
	return layers.layer(ctx, tx, id, true)
}

type importer struct {
	// grew: the import at least doubled the grids of its layer as the
	// statistics saw them; they were then refreshed within it (analyzed)
	// unless another import held the lock (see grown).
	grew, analyzed bool
	layer          *gridmap.Layer
	opts           gridmap.ImportOptions
	res            *gridmap.ImportResult
	tx             pgx.Tx
	checker        *geo.Checker
	codeRE         *regexp.Regexp
	// table holds the grids imported into: publishedTable or draftTable.
	table string

	existing      map[string]string // current code -> level, before the import
	inFile        map[string]int    // code -> index of the feature that carries it
	staged        []stagedFeature
	rejectedCodes map[string]bool
	batch         [][]any
	// copying is the COPY of the batch before, under way while the next
	// one is read and checked.
	copying chan error
	// steps are the import's steps so far, each with how long it took
	// (logged as the import commits); stepStart is when the current one
	// began.
	steps     []any
	stepStart time.Time
}

// step ends the import's current step, named name, and begins the next:
// logged as name_s, its seconds to the millisecond.
func (imp *importer) step(name string) {
	now := time.Now()
	imp.steps = append(imp.steps, name+"_s", now.Sub(imp.stepStart).Round(time.Millisecond).Seconds())
	imp.stepStart = now
}

func (imp *importer) loadExisting(ctx context.Context) error {
	imp.existing = map[string]string{}
	rows, err := imp.tx.Query(ctx, `SELECT code, level FROM `+imp.table+` WHERE layer_id = $1 AND valid_to IS NULL`, imp.layer.ID)
	if err != nil {
		return err
	}
	var code, level string
	_, err = pgx.ForEachRow(rows, []any{&code, &level}, func() error {
		imp.existing[code] = level
		return nil
	})
	return err
}

func (imp *importer) reject(p gridmap.Problem) {
	imp.res.Rejected = append(imp.res.Rejected, p)
	if len(p.Codes) > 0 {
		imp.rejectedCodes[p.Codes[0]] = true
	}
}

// stream reads, checks and stages every feature of src. Whatever ends it,
// the COPY under way has ended too when it returns: the transaction is the
// caller's again.
func (imp *importer) stream(ctx context.Context, src gridmap.FeatureSource) (err error) {
	defer func() {
		if cerr := imp.copied(ctx); err == nil {
			err = cerr
		}
	}()
	for {
		f, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return err
		}
		imp.res.Read++
		if imp.opts.Progress != nil && imp.res.Read%100 == 0 {
			imp.opts.Progress(imp.res.Read)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := imp.check(f); err != nil {
			return err
		}
		if len(imp.batch) >= importBatch {
			if err := imp.flush(ctx); err != nil {
				return err
			}
		}
	}
	if imp.opts.Progress != nil {
		imp.opts.Progress(imp.res.Read)
	}
	return imp.flush(ctx)
}

// check rejects f or queues it for the staging table.
func (imp *importer) check(f *gridmap.Feature) error {
	// A real reason comes first; a code repeated by a feature that is bad anyway is not news.
	if p := imp.layer.CheckFeature(f, imp.codeRE); p != nil {
		imp.reject(*p)
		return nil
	}
	g, dropped := f.Geometry, ""
	if imp.opts.MakeValid {
		if part, what := geo.PolygonalPart(g); part != nil {
			g, dropped = part, what
		}
	}
	mp, err := geo.Polygonal(g)
	if err != nil {
		imp.reject(gridmap.FeatureProblem(f, gridmap.ProblemInvalidGeometry, "%v", err))
		return nil
	}
	if iv := imp.checker.Check(mp); iv != nil {
		if !imp.opts.MakeValid {
			p := gridmap.FeatureProblem(f, gridmap.ProblemInvalidGeometry, "invalid geometry: %s (make-valid repairs it and reports the change)", iv.Reason)
			if iv.Where != nil {
				p.Where = geojson.NewGeometry(*iv.Where)
			}
			imp.reject(p)
			return nil
		}
		fixed, err := imp.checker.Repair(mp)
		if err != nil {
			imp.reject(gridmap.FeatureProblem(f, gridmap.ProblemInvalidGeometry, "invalid geometry that cannot be repaired: %v", err))
			return nil
		}
		before, after := geo.AreaM2(mp), geo.AreaM2(fixed)
		change := after - before
		p := gridmap.FeatureProblem(f, gridmap.ProblemRepaired, "repaired invalid geometry (%s); area %.1f m2 -> %.1f m2", iv.Reason, before, after)
		p.AreaM2 = &change
		if iv.Where != nil {
			p.Where = geojson.NewGeometry(*iv.Where)
		}
		imp.res.Repaired = append(imp.res.Repaired, p)
		mp = fixed
	}
	if dropped != "" {
		p := gridmap.FeatureProblem(f, gridmap.ProblemRepaired, "kept the polygons of a GeometryCollection and dropped %s", dropped)
		imp.res.Repaired = append(imp.res.Repaired, p)
	}
	if first, dup := imp.inFile[f.Code]; dup {
		imp.reject(gridmap.FeatureProblem(f, gridmap.ProblemDuplicateCode, "code %s is already used by feature %d of this input", f.Code, first))
		return nil
	}
	if err := checkPeople(f.Code, f.People); err != nil {
		imp.reject(gridmap.FeatureProblem(f, gridmap.ProblemMissingField, "%s", gridmap.ErrorMessage(err)))
		return nil
	}
	imp.inFile[f.Code] = f.Index

	geom, err := wkb.Marshal(mp)
	if err != nil {
		return fmt.Errorf("encoding feature %d: %w", f.Index, err)
	}
	attrs, err := json.Marshal(f.Attributes)
	if err != nil {
		return fmt.Errorf("encoding feature %d attributes: %w", f.Index, err)
	}
	if f.Attributes == nil {
		attrs = []byte("{}")
	}
	var people []byte
	if f.People != nil {
		people, _ = json.Marshal(f.People)
	}
	var parent any
	if f.Parent != "" {
		parent = f.Parent
	}
	imp.batch = append(imp.batch, []any{f.Index, f.Code, f.Name, f.Level, parent, attrs, geom, people})
	imp.staged = append(imp.staged, stagedFeature{index: f.Index, code: f.Code, level: f.Level, parent: f.Parent})
	return nil
}

// flush stages the batch checked so far. Its COPY runs while the next
// batch is read and checked, which needs no database: flush first waits
// for the COPY before it, as stream does for the last.
func (imp *importer) flush(ctx context.Context) error {
	if err := imp.copied(ctx); err != nil {
		return err
	}
	if len(imp.batch) == 0 {
		return nil
	}
	rows := imp.batch
	imp.batch = make([][]any, 0, importBatch)
	imp.copying = make(chan error, 1)
	go func(done chan<- error) {
		// Off the request's goroutine, a panic would end the process.
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("staging features: %v", p)
			}
		}()
		if beforeStaging != nil {
			beforeStaging()
		}
		_, err := imp.tx.CopyFrom(ctx, pgx.Identifier{"import_rows"},
			[]string{"idx", "code", "name", "level", "parent", "attrs", "wkb", "people"}, pgx.CopyFromRows(rows))
		done <- err
	}(imp.copying)
	return nil
}

// beforeStaging, when set (by tests), runs before each batch's COPY.
var beforeStaging func()

// copied waits for the COPY under way, if any, and returns how it ended:
// the context's error when it was cancelled meanwhile (a COPY cut short
// may fail as a closed connection instead).
func (imp *importer) copied(ctx context.Context) error {
	if imp.copying == nil {
		return nil
	}
	err := <-imp.copying
	imp.copying = nil
	if err != nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return err
}

// resolveParents rejects every staged feature whose parent is neither in the
// layer nor accepted in this input, or is not at a coarser level. Coarse
// levels go first, so a rejected parent takes its children with it.
func (imp *importer) resolveParents() {
	sort.SliceStable(imp.staged, func(i, j int) bool {
		return imp.layer.LevelIndex(imp.staged[i].level) < imp.layer.LevelIndex(imp.staged[j].level)
	})
	accepted := map[string]string{} // code -> level, accepted from this input
	for _, sf := range imp.staged {
		accepted[sf.code] = sf.level
	}
	kept := imp.staged[:0]
	for _, sf := range imp.staged {
		f := &gridmap.Feature{Index: sf.index, Code: sf.code, Level: sf.level, Parent: sf.parent}
		if sf.parent == "" {
			kept = append(kept, sf)
			continue
		}
		parentLevel, ok := accepted[sf.parent]
		if !ok {
			parentLevel, ok = imp.existing[sf.parent]
		}
		var p *gridmap.Problem
		switch {
		case !ok && imp.rejectedCodes[sf.parent]:
			q := gridmap.FeatureProblem(f, gridmap.ProblemUnknownParent, "parent %s of %s was rejected too", sf.parent, sf.code)
			p = &q
		case !ok:
			q := gridmap.FeatureProblem(f, gridmap.ProblemUnknownParent, "parent %s of %s is neither in layer %s nor in this input", sf.parent, sf.code, imp.layer.ID)
			p = &q
		default:
			p = imp.layer.CheckParentLevel(f, parentLevel)
		}
		if p != nil {
			p.Codes = append(p.Codes, sf.parent)
			imp.reject(*p)
			delete(accepted, sf.code)
			continue
		}
		kept = append(kept, sf)
	}
	imp.staged = kept
}

// commit writes the staged features that survived: unchanged grids keep
// their version, changed ones get a new version and their old one is closed.
func (imp *importer) commit(ctx context.Context) error {
	tx, layer := imp.tx, imp.layer.ID
	var dropped []int
	for _, p := range imp.res.Rejected {
		dropped = append(dropped, *p.Index)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM import_rows WHERE idx = ANY($1)`, dropped); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE import_rows r SET unchanged = true FROM grid_versions g
		WHERE g.layer_id = $1 AND g.valid_to IS NULL AND g.code = r.code AND g.name = r.name AND g.level = r.level
		  AND g.parent_code IS NOT DISTINCT FROM r.parent AND g.attributes = r.attrs
		  AND ST_OrderingEquals(g.geom, ST_GeomFromWKB(r.wkb, 4326))`, layer); err != nil {
		return err
	}
	seen, err := imp.layerRowsSeen(ctx) // before the writes: the estimate counts them once they are in
	if err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, `UPDATE grid_versions g SET valid_to = now() FROM import_rows r
		WHERE g.layer_id = $1 AND g.valid_to IS NULL AND g.code = r.code AND NOT r.unchanged`, layer)
	if err != nil {
		return err
	}
	imp.res.Replaced = int(tag.RowsAffected())
	tag, err = tx.Exec(ctx, `INSERT INTO grid_versions (layer_id, code, version, name, level, parent_code, geom, attributes, valid_from, author, reason)
		SELECT $1, r.code, coalesce(prev.version, 0) + 1, r.name, r.level, r.parent, ST_GeomFromWKB(r.wkb, 4326), r.attrs, now(), $2, $3
		FROM import_rows r
		LEFT JOIN (SELECT code, max(version) AS version FROM grid_versions WHERE layer_id = $1 GROUP BY code) prev ON prev.code = r.code
		WHERE NOT r.unchanged
		ORDER BY r.idx`, layer, imp.opts.Author, imp.opts.Reason)
	if err != nil {
		return err
	}
	imp.res.Created = int(tag.RowsAffected()) - imp.res.Replaced
	imp.res.Unchanged = len(imp.staged) - int(tag.RowsAffected())
	if err := imp.grown(ctx, tag.RowsAffected(), seen); err != nil {
		return err
	}
	imp.step("writing_grids")
	if err := imp.checkTiling(ctx); err != nil {
		return err
	}
	imp.step("checking_tiling")
	if err := imp.commitPeople(ctx); err != nil {
		return err
	}
	imp.step("writing_people")
	bump := 0
	if tag.RowsAffected() > 0 {
		bump = 1
	}
	if err := tx.QueryRow(ctx, `UPDATE layers SET data_version = data_version + $2, updated_at = CASE WHEN $2 > 0 THEN now() ELSE updated_at END
		WHERE id = $1 RETURNING data_version`, layer, bump).Scan(&imp.res.DataVersion); err != nil {
		return err
	}
	if bump > 0 {
		// Open reports whose owner the new boundaries change go to their new
		// owner, as with any boundary edit.
		reroutes, err := findReroutes(ctx, tx, layer,
			`(SELECT code, parent_code, geom FROM grid_versions WHERE layer_id = $1 AND valid_to IS NULL)`,
			`SELECT ST_GeomFromWKB(wkb, 4326) AS g FROM import_rows WHERE NOT unchanged
			 UNION ALL SELECT geom FROM grid_versions WHERE layer_id = $1 AND valid_to = now()`)
		if err != nil {
			return err
		}
		if err := applyReroutes(ctx, tx, layer, reroutes, imp.res.DataVersion-1, imp.res.DataVersion); err != nil {
			return err
		}
		if err := rechain(ctx, tx, layer, nil, reroutes, imp.res.DataVersion); err != nil {
			return err
		}
		imp.res.Rerouted = len(reroutes)
		imp.step("rerouting_reports")
	}
	// People may have changed even when no boundary did; the announcement
	// names no codes (an import may touch thousands): the whole layer.
	kind := gridmap.ChangePeople
	if bump > 0 {
		kind = gridmap.ChangeBoundaries
		if _, err := refreshShapes(ctx, tx, layer, nil, nil); err != nil {
			return err
		}
		imp.step("tile_shapes")
	}
	return notifyChange(ctx, tx, gridmap.Change{Layer: layer, Kind: kind, DataVersion: imp.res.DataVersion})
}

// grown refreshes the statistics of the importer's table inside the
// transaction when the written grids at least double the layer as the
// statistics saw it before the import wrote (seen, from layerRowsSeen).
// The statements that check the new grids and cut their tile shapes are
// planned on those statistics, and ones describing a table a fraction of
// its size sent them the wrong way: at 400 districts a chunk's neighbours
// were read by level, a million rows, not by box, a minute and more a
// chunk. A layer new to a table that already holds a big one is as badly
// described: the statistics give it a handful of rows. ANALYZE counts the
// transaction's own rows.
func (imp *importer) grown(ctx context.Context, written int64, seen float64) error {
	if written < 100 || float64(written) < seen {
		return nil
	}
	imp.grew = true
	// ANALYZE's lock is held until the import commits, so another big
	// import's ANALYZE would wait that long: this one waits a tenth of a
	// second for it, and goes on without fresh statistics when it must.
	// (ANALYZE writes the table's size to pg_class at once, not at commit:
	// an import refused later leaves it too large until the next ANALYZE.)
	var timeout string
	if err := imp.tx.QueryRow(ctx, `SELECT current_setting('lock_timeout')`).Scan(&timeout); err != nil {
		return err
	}
	if _, err := imp.tx.Exec(ctx, `SAVEPOINT fresh_statistics; SET LOCAL lock_timeout = '100ms'`); err != nil {
		return err
	}
	if _, err := imp.tx.Exec(ctx, `ANALYZE `+imp.table); err != nil {
		if pgErr := (*pgconn.PgError)(nil); !errors.As(err, &pgErr) || pgErr.Code != lockNotAvailable {
			return err
		}
		_, err := imp.tx.Exec(ctx, `ROLLBACK TO SAVEPOINT fresh_statistics`) // the lock_timeout goes with it
		return err
	}
	if _, err := imp.tx.Exec(ctx, `RELEASE SAVEPOINT fresh_statistics`); err != nil {
		return err
	}
	imp.analyzed = true
	_, err := imp.tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`, timeout)
	return err
}

// layerRowsSeen is how many current grids of the layer the planner
// expects in the importer's table: the table's size as it is now, spread
// over the layers as the statistics last saw them. Rows this transaction
// wrote count in the size, so it is asked before the import writes.
func (imp *importer) layerRowsSeen(ctx context.Context) (float64, error) {
	var plan []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		}
	}
	if err := imp.tx.QueryRow(ctx, `EXPLAIN (FORMAT JSON) SELECT 1 FROM `+imp.table+` WHERE layer_id = $1 AND valid_to IS NULL`,
		imp.layer.ID).Scan(&plan); err != nil {
		return 0, fmt.Errorf("estimating the layer's grids: %w", err)
	}
	if len(plan) != 1 {
		return 0, fmt.Errorf("estimating the layer's grids: %d plans", len(plan))
	}
	return plan[0].Plan.Rows, nil
}

// checkTiling refuses an import that leaves siblings overlapping or children
// outside their parent, looking only under the parents of the grids it
// wrote (one union per parent, as the coverage report does). Such problems
// involve two grids, so they are not skipped: the whole import is refused
// with each of them listed.
func (imp *importer) checkTiling(ctx context.Context) error {
	// The parents of written grids, and written grids that have children
	// (a reshaped parent may leave them outside); leaves need no union.
	rows, err := imp.tx.Query(ctx, `SELECT DISTINCT parent FROM import_rows WHERE NOT unchanged AND parent IS NOT NULL
		UNION SELECT r.code FROM import_rows r WHERE NOT r.unchanged AND EXISTS (SELECT 1 FROM grid_versions c
			WHERE c.layer_id = $1 AND c.valid_to IS NULL AND c.parent_code = r.code)`, imp.layer.ID)
	if err != nil {
		return err
	}
	parents, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(parents) == 0 {
		return err
	}
	cov, err := coverageUnder(ctx, imp.tx, imp.layer.ID, parents, false)
	if err != nil {
		return err
	}
	index := map[string]int{}
	for _, sf := range imp.staged {
		index[sf.code] = sf.index
	}
	var problems []gridmap.Problem
	add := func(kind, what string, items []gridmap.CoverageItem) {
		for _, it := range items {
			area := it.AreaM2
			p := gridmap.Problem{Kind: kind, Codes: it.Codes, AreaM2: &area, Where: geojson.NewGeometry(it.Geometry),
				Message: fmt.Sprintf("%s %s by %.1f m2", it.Codes[0], what, area)}
			for _, c := range it.Codes {
				if i, ok := index[c]; ok {
					p.Index = &i
					break
				}
			}
			if p.Index != nil { // grids that were already there are not this import's doing
				problems = append(problems, p)
			}
		}
	}
	add(gridmap.ProblemOverlapsSibling, "overlaps a sibling", cov.Overlaps)
	add(gridmap.ProblemOutsideParent, "reaches outside its parent", cov.Outside)
	if len(problems) == 0 {
		return nil
	}
	sort.SliceStable(problems, func(i, j int) bool { return *problems[i].Index < *problems[j].Index })
	return &gridmap.Error{Code: gridmap.EUNPROCESSABLE, Details: problems,
		Message: fmt.Sprintf("the import would leave %d overlaps or parts outside a parent, and nothing was imported", len(problems))}
}

// commitPeople replaces the people of every imported feature that listed some.
func (imp *importer) commitPeople(ctx context.Context) error {
	rows, err := imp.tx.Query(ctx, `SELECT code, people FROM import_rows WHERE people IS NOT NULL ORDER BY idx`)
	if err != nil {
		return err
	}
	var codes []string
	var people [][]gridmap.Person
	var code string
	var list []gridmap.Person
	_, err = pgx.ForEachRow(rows, []any{&code, &list}, func() error {
		codes = append(codes, code)
		people = append(people, slices.Clone(list))
		return nil
	})
	if err != nil || len(codes) == 0 {
		return err
	}
	return replacePeople(ctx, imp.tx, imp.layer.ID, codes, people)
}

// commitDraft writes the staged features into the layer's draft: a code
// already in the draft is replaced (its draft version goes up) unless
// nothing changed. Overlaps, spills and gaps are kept and listed in the
// result; nothing is announced, since nothing published changed.
func (imp *importer) commitDraft(ctx context.Context) error {
	tx, layer := imp.tx, imp.layer.ID
	var dropped []int
	for _, p := range imp.res.Rejected {
		dropped = append(dropped, *p.Index)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM import_rows WHERE idx = ANY($1)`, dropped); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE import_rows r SET unchanged = true FROM draft_grids g
		WHERE g.layer_id = $1 AND g.code = r.code AND g.name = r.name AND g.level = r.level
		  AND g.parent_code IS NOT DISTINCT FROM r.parent AND g.attributes = r.attrs
		  AND ST_OrderingEquals(g.geom, ST_GeomFromWKB(r.wkb, 4326))`, layer); err != nil {
		return err
	}
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM import_rows r JOIN draft_grids g ON g.layer_id = $1 AND g.code = r.code
		WHERE NOT r.unchanged`, layer).Scan(&imp.res.Replaced); err != nil {
		return err
	}
	seen, err := imp.layerRowsSeen(ctx) // before the writes: the estimate counts them once they are in
	if err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, `INSERT INTO draft_grids (layer_id, code, version, name, level, parent_code, geom, attributes, people)
		SELECT $1, r.code, 1, r.name, r.level, r.parent, ST_GeomFromWKB(r.wkb, 4326), r.attrs, r.people
		FROM import_rows r WHERE NOT r.unchanged ORDER BY r.idx
		ON CONFLICT (layer_id, code) DO UPDATE SET version = draft_grids.version + 1, name = EXCLUDED.name,
			level = EXCLUDED.level, parent_code = EXCLUDED.parent_code, geom = EXCLUDED.geom,
			attributes = EXCLUDED.attributes, people = coalesce(EXCLUDED.people, draft_grids.people)`, layer)
	if err != nil {
		return err
	}
	imp.res.Created = int(tag.RowsAffected()) - imp.res.Replaced
	imp.res.Unchanged = len(imp.staged) - int(tag.RowsAffected())
	if err := imp.grown(ctx, tag.RowsAffected(), seen); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE draft_grids g SET people = r.people FROM import_rows r
		WHERE g.layer_id = $1 AND g.code = r.code AND r.unchanged AND r.people IS NOT NULL`, layer); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE drafts SET updated_at = now() WHERE layer_id = $1`, layer); err != nil {
		return err
	}
	if err := tx.QueryRow(ctx, `SELECT data_version FROM layers WHERE id = $1`, layer).Scan(&imp.res.DataVersion); err != nil {
		return err
	}
	imp.res.Problems, err = draftProblems(ctx, tx, layer)
	imp.step("writing_draft")
	return err
}
