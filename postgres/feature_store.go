package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/cql2"
	"github.com/gridmap/gridmap/geo"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/paulmach/orb"
)

// FeatureStore reads the collections OGC API - Features serves: a layer's
// grids (now or as of an instant), its draft, and the reports (see
// gridmap.FeatureService). Features leave PostgreSQL as WKB and are
// written as GeoJSON here row by row, so a page streams and a collection
// of any size never sits in memory.
type FeatureStore struct {
	db *DB

	mu sync.Mutex
	// attributes caches each layer's free attributes (name to type), and
	// extents each layer's extent, by the layer's data version: finding
	// either reads every current grid.
	attributes map[string]layerAttributes
	extents    map[string]layerExtent
}

type layerExtent struct {
	dataVersion int64
	extent      *gridmap.Extent
}

type layerAttributes struct {
	dataVersion int64
	types       map[string]cql2.Type
}

// NewFeatureStore reads collections from db.
func NewFeatureStore(db *DB) *FeatureStore {
	return &FeatureStore{db: db, attributes: map[string]layerAttributes{}, extents: map[string]layerExtent{}}
}

var _ gridmap.FeatureService = (*FeatureStore)(nil)

// A collection as the statements see it: grids as g, reports as r.
type collection struct {
	from  string // the table and its alias
	where []string
	args  []any
	id    string // the id column, the features' order
	props map[string]cql2.Property
	list  []gridmap.Queryable
	// columns are the columns each row is written from; write is the
	// feature writer that knows them.
	columns string
	write   func(dst []byte, rows pgx.Rows) ([]byte, error)
}

// Grid queryables: the grids' own fields, in the order they are listed.
type gridField struct {
	name, title, sql string
	typ              cql2.Type
	publishedOnly    bool
}

var gridFields = []gridField{
	{"code", "Code", "g.code", cql2.String, false},
	{"name", "Name", "g.name", cql2.String, false},
	{"level", "Level", "g.level", cql2.String, false},
	{"parent", "Parent's code", "g.parent_code", cql2.String, false},
	{"version", "Version", "g.version", cql2.Integer, false},
	{"valid_from", "Valid from", "g.valid_from", cql2.Timestamp, true},
	{"geometry", "Outline", "g.geom", cql2.Geometry, false},
}

// Report queryables.
var reportFields = []struct {
	name, title, sql string
	typ              cql2.Type
}{
	{"id", "Report id", "r.id", cql2.Integer},
	{"external_id", "Id in the system that filed it", "r.external_id", cql2.String},
	{"category", "Category", "r.category", cql2.String},
	{"status", "Status", "r.status", cql2.String},
	{"urgent", "Urgent", "r.urgent", cql2.Boolean},
	{"source", "Source", "r.source", cql2.String},
	{"tier", "Tier", "r.tier", cql2.String},
	{"layer", "Layer of its grid", "r.layer_id", cql2.String},
	{"grid", "Grid that owns it", "r.primary_code", cql2.String},
	{"reported_at", "Reported at", "r.reported_at", cql2.Timestamp},
	{"received_at", "Received at", "r.received_at", cql2.Timestamp},
	{"due_at", "Due at", "r.due_at", cql2.Timestamp},
	{"geometry", "Location", "r.location", cql2.Geometry},
}

// read runs a read of q's collection where it belongs: on the replica,
// whose lag is tolerated (DB.OnReplica), but not by an editor reading the
// draft it just wrote. A read the replica failed, or a layer it does not
// hold yet, is read from the primary, unless started says the answer has
// begun.
func (s *FeatureStore) read(q *gridmap.FeatureQuery, read func(pool *pgxpool.Pool) error, started func() bool) error {
	if q.Draft || s.db.Read == s.db.Pool {
		return read(s.db.Pool)
	}
	err := read(s.db.Read)
	if err != nil && (started == nil || !started()) && (replicaFailed(err) || gridmap.ErrorCode(err) == gridmap.ENOTFOUND) {
		return read(s.db.Pool)
	}
	return err
}

// scan reads one row of q's collection into dest (see read); a row the
// replica does not have yet is looked for on the primary.
func (s *FeatureStore) scan(ctx context.Context, q *gridmap.FeatureQuery, sql string, args []any, dest ...any) error {
	return s.read(q, func(pool *pgxpool.Pool) error {
		err := pool.QueryRow(ctx, sql, args...).Scan(dest...)
		if errors.Is(err, pgx.ErrNoRows) && pool != s.db.Pool {
			return gridmap.Errorf(gridmap.ENOTFOUND, "not on the replica yet")
		}
		return err
	}, nil)
}

// Features streams a page of a collection (see gridmap.FeatureService).
func (s *FeatureStore) Features(ctx context.Context, q *gridmap.FeatureQuery, start func(matched int64) error, each func(feature []byte) error) error {
	if q.Limit < 1 || q.Limit > gridmap.MaxFeaturesPage || q.Offset < 0 {
		return gridmap.Errorf(gridmap.EINVALID, "limit must be between 1 and %d and offset not negative", gridmap.MaxFeaturesPage)
	}
	// One snapshot for the count and the page; a long page may outlast the
	// pool's statement timeout, and the request's context bounds it.
	started := false
	err := s.read(q, func(pool *pgxpool.Pool) error {
		return pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = 0"); err != nil {
				return err
			}
			c, err := s.collection(ctx, tx, q, namesAttributes(q))
			if err != nil {
				return err
			}
			if err := c.filter(q); err != nil {
				return err
			}
			cond := strings.Join(c.where, " AND ")
			var matched int64
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+c.from+` WHERE `+cond, c.args...).Scan(&matched); err != nil {
				return err
			}
			if q.Code != "" && matched == 0 {
				return gridmap.Errorf(gridmap.ENOTFOUND, "%s has no feature %q", describeCollection(q), q.Code)
			}
			started = true
			if err := start(matched); err != nil {
				return err
			}
			n := len(c.args)
			rows, err := tx.Query(ctx, fmt.Sprintf(`SELECT %s FROM %s WHERE %s ORDER BY %s LIMIT $%d OFFSET $%d`, c.columns, c.from, cond, c.id, n+1, n+2),
				append(c.args, q.Limit, q.Offset)...)
			if err != nil {
				return err
			}
			defer rows.Close()
			var buf []byte
			for rows.Next() {
				if buf, err = c.write(buf[:0], rows); err != nil {
					return err
				}
				if err := each(buf); err != nil {
					return err
				}
			}
			return rows.Err()
		})
	}, func() bool { return started })
	return translate(err, "reading "+describeCollection(q))
}

func describeCollection(q *gridmap.FeatureQuery) string {
	switch {
	case q.Reports:
		return "the reports"
	case q.Draft:
		return "the draft of layer " + q.Layer
	}
	return "layer " + q.Layer
}

// Queryables lists what q's collection can be filtered on.
func (s *FeatureStore) Queryables(ctx context.Context, q *gridmap.FeatureQuery) ([]gridmap.Queryable, error) {
	var c *collection
	err := s.read(q, func(pool *pgxpool.Pool) error {
		return pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
			var err error
			c, err = s.collection(ctx, tx, q, true)
			return err
		})
	}, nil)
	if err != nil {
		return nil, translate(err, "reading the queryables of "+describeCollection(q))
	}
	return c.list, nil
}

// Extent is the bounding box of q's collection and the span of its times.
func (s *FeatureStore) Extent(ctx context.Context, q *gridmap.FeatureQuery) (*gridmap.Extent, error) {
	var sql string
	var args []any
	switch {
	case q.Reports:
		if sc := scopeOf(ctx); sc != nil {
			// A scoped caller's reports lie in its grid: its box, and no
			// times (finding them would read every report of the scope).
			sql = `SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), NULL::timestamptz, NULL::timestamptz
				FROM (SELECT (SELECT Box2D(geom) FROM grid_versions WHERE layer_id = $1 AND code = $2 AND valid_to IS NULL) AS e) x`
			args = []any{sc.Layer, sc.Code}
			break
		}
		// The planner's estimate of the box (as the reports tileset), and
		// the first and last report through the reported_at index.
		sql = `SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e),
				(SELECT min(reported_at) FROM reports), (SELECT max(reported_at) FROM reports)
			FROM (SELECT report_estimated_extent() AS e) x`
	case q.Draft:
		sql = `SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), NULL::timestamptz, NULL::timestamptz FROM (SELECT ST_Extent(geom) AS e FROM draft_grids WHERE layer_id = $1) x`
		args = []any{q.Layer}
	default:
		// The box of the current grids and the first version's start,
		// read again only when the layer changed.
		var dataVersion int64
		if err := s.scan(ctx, q, `SELECT data_version FROM layers WHERE id = $1`, []any{q.Layer}, &dataVersion); errors.Is(err, pgx.ErrNoRows) {
			return nil, gridmap.Errorf(gridmap.ENOTFOUND, "layer %q does not exist; /ogc/collections lists those there are", q.Layer)
		} else if err != nil {
			return nil, translate(err, "reading the extent of "+describeCollection(q))
		}
		s.mu.Lock()
		cached, ok := s.extents[q.Layer]
		s.mu.Unlock()
		if ok && cached.dataVersion == dataVersion {
			return cached.extent, nil
		}
		e, err := s.extent(ctx, `SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), lo, NULL::timestamptz FROM (SELECT ST_Extent(geom) AS e, min(valid_from) AS lo
			FROM grid_versions WHERE layer_id = $1 AND valid_to IS NULL) x`, q, q.Layer)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.extents[q.Layer] = layerExtent{dataVersion: dataVersion, extent: e}
		s.mu.Unlock()
		return e, nil
	}
	return s.extent(ctx, sql, q, args...)
}

// extent runs a statement answering a box and a time span.
func (s *FeatureStore) extent(ctx context.Context, sql string, q *gridmap.FeatureQuery, args ...any) (*gridmap.Extent, error) {
	var box [4]*float64
	var lo, hi *time.Time
	if err := s.scan(ctx, q, sql, args, &box[0], &box[1], &box[2], &box[3], &lo, &hi); err != nil {
		return nil, translate(err, "reading the extent of "+describeCollection(q))
	}
	e := &gridmap.Extent{}
	if box[0] != nil {
		e.BBox = &orb.Bound{}
		e.BBox.Min[0], e.BBox.Min[1], e.BBox.Max[0], e.BBox.Max[1] = *box[0], *box[1], *box[2], *box[3]
	}
	if lo != nil {
		e.Start = *lo
	}
	if hi != nil {
		e.End = *hi
	}
	return e, nil
}

// namesAttributes says whether q may filter on a grid's free attributes
// (which are found by reading the layer): a CQL2 filter, or a property
// filter on a name that is none of the grid's own fields.
func namesAttributes(q *gridmap.FeatureQuery) bool {
	if q.Reports {
		return false
	}
	if q.Filter != nil {
		return true
	}
	for k := range q.Equal {
		if !slices.ContainsFunc(gridFields, func(f gridField) bool { return f.name == k }) {
			return true
		}
	}
	return false
}

// collection checks that q's collection exists and says how to read it,
// with the grids' free attributes as queryables when withAttributes.
func (s *FeatureStore) collection(ctx context.Context, tx pgx.Tx, q *gridmap.FeatureQuery, withAttributes bool) (*collection, error) {
	if q.Reports {
		layer, code := scopeParams(ctx)
		c := &collection{from: "reports r", id: "r.id", props: map[string]cql2.Property{},
			where: []string{reportInScopeSQL("r", "$1", "$2")}, args: []any{layer, code},
			columns: reportFeatureColumns, write: writeReport}
		for _, f := range reportFields {
			c.props[f.name] = cql2.Property{SQL: f.sql, Type: f.typ}
			c.list = append(c.list, gridmap.Queryable{Name: f.name, Title: f.title, Type: f.typ})
		}
		return c, nil
	}
	var dataVersion int64
	if err := tx.QueryRow(ctx, `SELECT data_version FROM layers WHERE id = $1`, q.Layer).Scan(&dataVersion); errors.Is(err, pgx.ErrNoRows) {
		return nil, gridmap.Errorf(gridmap.ENOTFOUND, "layer %q does not exist; /ogc/collections lists those there are", q.Layer)
	} else if err != nil {
		return nil, err
	}
	table := publishedTable
	if q.Draft {
		if err := requireDraft(ctx, tx, q.Layer); err != nil {
			return nil, err
		}
		table = draftTable
	}
	c := &collection{from: table + " g", id: "g.code", props: map[string]cql2.Property{},
		where: []string{"g.layer_id = $1"}, args: []any{q.Layer}, columns: gridColumnsOf(q.Draft), write: writeGrid(q.Layer)}
	for _, f := range gridFields {
		if f.publishedOnly && q.Draft {
			continue
		}
		c.props[f.name] = cql2.Property{SQL: f.sql, Type: f.typ}
		c.list = append(c.list, gridmap.Queryable{Name: f.name, Title: f.title, Type: f.typ})
	}
	if !withAttributes {
		return c, nil
	}
	attrs, err := s.layerAttributes(ctx, tx, q.Layer, q.Draft, dataVersion)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(attrs))
	for name := range attrs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if _, taken := c.props[name]; taken || name == "layer" || name == "valid_to" || name == "people" {
			continue // a grid's own field wins, as in its features
		}
		c.props[name] = cql2.Property{SQL: attributeSQL(name, attrs[name]), Type: attrs[name]}
		c.list = append(c.list, gridmap.Queryable{Name: name, Title: name, Type: attrs[name]})
	}
	return c, nil
}

// attributeSQL reads a free attribute as its type, NULL where a grid's
// value is of another JSON type (a filter never fails on a stray value).
// The name comes from the data, never from the request, and is written as
// an escape string literal (E'...'), which reads the same whatever the
// server's standard_conforming_strings.
func attributeSQL(name string, t cql2.Type) string {
	key := "E'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(name) + "'"
	switch t {
	case cql2.Number:
		return `(CASE WHEN jsonb_typeof(g.attributes -> ` + key + `) = 'number' THEN (g.attributes ->> ` + key + `)::double precision END)`
	case cql2.Boolean:
		return `(CASE WHEN jsonb_typeof(g.attributes -> ` + key + `) = 'boolean' THEN (g.attributes ->> ` + key + `)::boolean END)`
	}
	return `(g.attributes ->> ` + key + `)`
}

// layerAttributes finds the free attributes of a layer's current grids (or
// its draft's) and the type of each: number or boolean when every value
// that is not null is one, else string.
func (s *FeatureStore) layerAttributes(ctx context.Context, tx pgx.Tx, layer string, draft bool, dataVersion int64) (map[string]cql2.Type, error) {
	if !draft {
		s.mu.Lock()
		cached, ok := s.attributes[layer]
		s.mu.Unlock()
		if ok && cached.dataVersion == dataVersion {
			return cached.types, nil
		}
	}
	table := publishedTable
	if draft {
		table = draftTable
	}
	rows, err := tx.Query(ctx, `SELECT e.key, array_agg(DISTINCT jsonb_typeof(e.value))
		FROM `+table+` g, jsonb_each(g.attributes) e
		WHERE g.layer_id = $1 AND g.valid_to IS NULL AND e.key <> '' AND jsonb_typeof(e.value) <> 'null'
		GROUP BY e.key`, layer)
	if err != nil {
		return nil, err
	}
	types := map[string]cql2.Type{}
	var key string
	var kinds []string
	if _, err := pgx.ForEachRow(rows, []any{&key, &kinds}, func() error {
		t := cql2.String
		if len(kinds) == 1 && kinds[0] == "number" {
			t = cql2.Number
		} else if len(kinds) == 1 && kinds[0] == "boolean" {
			t = cql2.Boolean
		}
		types[key] = t
		return nil
	}); err != nil {
		return nil, err
	}
	if !draft {
		s.mu.Lock()
		s.attributes[layer] = layerAttributes{dataVersion: dataVersion, types: types}
		s.mu.Unlock()
	}
	return types, nil
}

// filter adds q's conditions to c. Returns EINVALID for what the
// collection cannot be filtered by.
func (c *collection) filter(q *gridmap.FeatureQuery) error {
	add := func(cond string, vals ...any) {
		for _, v := range vals {
			c.args = append(c.args, v)
			cond = strings.Replace(cond, "?", "$"+strconv.Itoa(len(c.args)), 1)
		}
		c.where = append(c.where, cond)
	}
	geom := c.props["geometry"].SQL
	if q.Code != "" {
		if q.Reports {
			id, err := strconv.ParseInt(q.Code, 10, 64)
			if err != nil {
				return gridmap.Errorf(gridmap.ENOTFOUND, "the reports have no feature %q: report ids are whole numbers", q.Code)
			}
			add("r.id = ?", id)
		} else {
			add("g.code = ?", q.Code)
		}
	}
	if b := q.BBox; b != nil {
		add(geom+" && ST_MakeEnvelope(?, ?, ?, ?, 4326) AND ST_Intersects("+geom+", ST_MakeEnvelope(?, ?, ?, ?, 4326))",
			b.Min[0], b.Min[1], b.Max[0], b.Max[1], b.Min[0], b.Min[1], b.Max[0], b.Max[1])
	}
	switch {
	case q.Reports:
		if !q.From.IsZero() {
			add("r.reported_at >= ? AND "+reportsFromSQL("r.id", "?::timestamptz"), q.From, q.From)
		}
		if !q.To.IsZero() {
			add("r.reported_at <= ?", q.To)
		}
		if q.Level != "" || q.Parent != "" || !q.At.IsZero() {
			return gridmap.Errorf(gridmap.EINVALID, "level and parent select grids; the reports are filtered by their own queryables")
		}
	case q.At.IsZero():
		add("g.valid_to IS NULL")
	case q.Draft:
		return gridmap.Errorf(gridmap.EINVALID, "a draft has no history: datetime works on the published layer")
	default:
		add("g.valid_from <= ? AND (g.valid_to IS NULL OR g.valid_to > ?)", q.At, q.At)
	}
	if q.Level != "" {
		add("g.level = ?", q.Level)
	}
	if q.Parent != "" {
		add("g.parent_code = ?", q.Parent)
	}
	keys := make([]string, 0, len(q.Equal))
	for k := range q.Equal {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p, ok := c.props[k]
		if !ok || p.Type == cql2.Geometry {
			return gridmap.Errorf(gridmap.EINVALID, "%s has no property %q to filter on; its queryables list those it has", describeCollection(q), k)
		}
		v, cast, err := equalValue(k, q.Equal[k], p.Type)
		if err != nil {
			return err
		}
		// The property's SQL may hold any character a name in the data
		// has: its placeholder is not found by a search in it.
		c.args = append(c.args, v)
		c.where = append(c.where, p.SQL+" = $"+strconv.Itoa(len(c.args))+"::"+cast)
	}
	if q.Filter != nil {
		cond, err := cql2.SQL(q.Filter, func(name string) (cql2.Property, bool) { p, ok := c.props[name]; return p, ok }, &c.args)
		if err != nil {
			return gridmap.Errorf(gridmap.EINVALID, "filter: %s", err.Error())
		}
		c.where = append(c.where, cond)
	}
	return nil
}

// equalValue reads a property filter's text as the property's type.
func equalValue(name, text string, t cql2.Type) (any, string, error) {
	bad := func(what string) (any, string, error) {
		return nil, "", gridmap.Errorf(gridmap.EINVALID, "%s=%q: %s is %s", name, text, name, what)
	}
	switch t {
	case cql2.Number, cql2.Integer:
		v, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return bad("a number")
		}
		return v, "double precision", nil
	case cql2.Boolean:
		v, err := strconv.ParseBool(text)
		if err != nil {
			return bad("true or false")
		}
		return v, "boolean", nil
	case cql2.Timestamp:
		v, err := time.Parse(time.RFC3339Nano, text)
		if err != nil {
			return bad("a time (RFC 3339, such as 2024-05-01T08:00:00+08:00)")
		}
		return v, "timestamptz", nil
	}
	return text, "text", nil
}

func gridColumnsOf(draft bool) string {
	validFrom := "g.valid_from"
	if draft {
		validFrom = "NULL::timestamptz"
	}
	// A free attribute named as one of the grid's own fields gives way to
	// the field, as in the /v1 grids (server.toFeature).
	return `g.code, ST_AsBinary(g.geom), g.name, g.level, g.parent_code, g.version, ` + validFrom + `, g.valid_to,
		(g.attributes - '{layer,code,name,level,parent,version,valid_from,valid_to,people}'::text[])::text`
}

// writeGrid writes a grid row as a feature whose properties are those of
// the /v1 grids (server.toFeature): the free attributes, then the grid's
// own fields over them.
func writeGrid(layer string) func(dst []byte, rows pgx.Rows) ([]byte, error) {
	var g struct {
		code, name, level string
		parent            *string
		version           int
		validFrom         *time.Time
		validTo           *time.Time
		attrs             string
	}
	return func(dst []byte, rows pgx.Rows) ([]byte, error) {
		if err := rows.Scan(&g.code, nil, &g.name, &g.level, &g.parent, &g.version, &g.validFrom, &g.validTo, &g.attrs); err != nil {
			return dst, err
		}
		dst = append(dst, `{"type":"Feature","id":`...)
		dst = geo.AppendJSONString(dst, g.code)
		dst = append(dst, `,"geometry":`...)
		dst, err := geo.AppendGeoJSON(dst, rows.RawValues()[1], 9)
		if err != nil {
			return dst, fmt.Errorf("grid %s: %w", g.code, err)
		}
		dst = append(dst, `,"properties":{`...)
		if inner := strings.TrimSpace(g.attrs); len(inner) > 2 {
			dst = append(dst, inner[1:len(inner)-1]...)
			dst = append(dst, ',')
		}
		dst = append(dst, `"layer":`...)
		dst = geo.AppendJSONString(dst, layer)
		dst = append(dst, `,"code":`...)
		dst = geo.AppendJSONString(dst, g.code)
		dst = append(dst, `,"name":`...)
		dst = geo.AppendJSONString(dst, g.name)
		dst = append(dst, `,"level":`...)
		dst = geo.AppendJSONString(dst, g.level)
		dst = append(dst, `,"parent":`...)
		dst = appendNullableString(dst, g.parent)
		dst = append(dst, `,"version":`...)
		dst = strconv.AppendInt(dst, int64(g.version), 10)
		dst = append(dst, `,"valid_from":`...)
		dst = appendNullableTime(dst, g.validFrom)
		dst = append(dst, `,"valid_to":`...)
		dst = appendNullableTime(dst, g.validTo)
		return append(dst, "}}"...), nil
	}
}

const reportFeatureColumns = `r.id, ST_AsBinary(r.location), r.external_id, r.category, r.description, r.status, r.urgent, r.source, r.tier,
	r.layer_id, r.primary_code, r.reported_at, r.received_at, r.due_at`

func writeReport(dst []byte, rows pgx.Rows) ([]byte, error) {
	var r struct {
		id                                                      int64
		externalID, category, description, status, source, tier string
		urgent                                                  bool
		layer, grid                                             *string
		reportedAt, receivedAt, dueAt                           time.Time
	}
	if err := rows.Scan(&r.id, nil, &r.externalID, &r.category, &r.description, &r.status, &r.urgent, &r.source, &r.tier,
		&r.layer, &r.grid, &r.reportedAt, &r.receivedAt, &r.dueAt); err != nil {
		return dst, err
	}
	dst = append(dst, `{"type":"Feature","id":`...)
	dst = strconv.AppendInt(dst, r.id, 10)
	dst = append(dst, `,"geometry":`...)
	dst, err := geo.AppendGeoJSON(dst, rows.RawValues()[1], 9)
	if err != nil {
		return dst, fmt.Errorf("report %d: %w", r.id, err)
	}
	for _, f := range []struct {
		key string
		v   string
	}{{`,"properties":{"external_id":`, r.externalID}, {`,"category":`, r.category}, {`,"description":`, r.description},
		{`,"status":`, r.status}, {`,"source":`, r.source}, {`,"tier":`, r.tier}} {
		dst = append(dst, f.key...)
		dst = geo.AppendJSONString(dst, f.v)
	}
	dst = append(dst, `,"urgent":`...)
	dst = strconv.AppendBool(dst, r.urgent)
	dst = append(dst, `,"layer":`...)
	dst = appendNullableString(dst, r.layer)
	dst = append(dst, `,"grid":`...)
	dst = appendNullableString(dst, r.grid)
	for _, f := range []struct {
		key string
		v   time.Time
	}{{`,"reported_at":`, r.reportedAt}, {`,"received_at":`, r.receivedAt}, {`,"due_at":`, r.dueAt}} {
		dst = append(dst, f.key...)
		dst = appendNullableTime(dst, &f.v)
	}
	return append(dst, "}}"...), nil
}

func appendNullableString(dst []byte, s *string) []byte {
	if s == nil {
		return append(dst, "null"...)
	}
	return geo.AppendJSONString(dst, *s)
}

func appendNullableTime(dst []byte, t *time.Time) []byte {
	if t == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '"')
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}
