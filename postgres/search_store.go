package postgres

import (
	"context"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
)

// SearchStore finds grids and reports by text (gridmap.Searcher).
type SearchStore struct{ db *DB }

// NewSearchStore returns a search over db.
func NewSearchStore(db *DB) *SearchStore { return &SearchStore{db: db} }

// searchGridsSQL finds current grids ($2: a layer or ”) whose code starts
// with $1 (pattern $3) or whose name contains it (pattern $5), exact codes
// first, then code prefixes, then names, shortest first. The patterns come
// whole, so that a generic plan reads the trigram indexes too.
const searchGridsSQL = `SELECT layer_id, code, name, level, ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom)
	FROM grid_versions
	WHERE valid_to IS NULL AND ($2 = '' OR layer_id = $2)
	  AND (code LIKE $3 OR name LIKE $5)
	ORDER BY code = $1 DESC, code LIKE $3 DESC, length(name), code
	LIMIT $4`

// searchReportsSQL finds reports by id ($1, 0 for none) or external id
// prefix (pattern $2), in the caller's scope ($4, $5).
var searchReportsSQL = `SELECT r.id, r.external_id, r.category, r.status, coalesce(r.primary_code, ''),
	  ST_XMin(r.location), ST_YMin(r.location), ST_XMax(r.location), ST_YMax(r.location)
	FROM reports r
	WHERE (r.id = $1 OR r.external_id LIKE $2) AND ` + reportInScopeSQL("r", "$4", "$5") + `
	ORDER BY r.id = $1 DESC, r.id DESC
	LIMIT $3`

// Search finds grids by code prefix or name substring, and reports by id or
// external id prefix, those of ctx's caller's scope only. Returns EINVALID
// for empty text or text of more than 200 characters.
func (s *SearchStore) Search(ctx context.Context, q gridmap.SearchQuery) (*gridmap.SearchResult, error) {
	text := strings.TrimSpace(q.Text)
	if text == "" || utf8.RuneCountInString(text) > 200 {
		return nil, gridmap.Errorf(gridmap.EINVALID, "q must be 1 to 200 characters: a grid code or name, a report id or external id")
	}
	if q.Limit <= 0 || q.Limit > 100 {
		q.Limit = 20
	}
	like := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(text)
	out := &gridmap.SearchResult{Grids: []gridmap.GridHit{}, Reports: []gridmap.ReportHit{}}
	rows, err := s.db.Pool.Query(ctx, searchGridsSQL, text, q.Layer, like+"%", q.Limit, "%"+like+"%")
	if err != nil {
		return nil, translate(err, "search")
	}
	out.Grids, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (gridmap.GridHit, error) {
		var g gridmap.GridHit
		err := r.Scan(&g.Layer, &g.Code, &g.Name, &g.Level, &g.BBox[0], &g.BBox[1], &g.BBox[2], &g.BBox[3])
		return g, err
	})
	if err != nil {
		return nil, translate(err, "search")
	}
	id, _ := strconv.ParseInt(text, 10, 64)
	scopeLayer, scopeCode := scopeParams(ctx)
	// Planned for its text each time (an unnamed statement): a plan made
	// for any pattern cannot read the index of external ids, and read every
	// month's reports whole (0.43 s for a million, against 10 to 15 ms).
	rows, err = s.db.Pool.Query(ctx, searchReportsSQL, pgx.QueryExecModeDescribeExec, id, like+"%", q.Limit, scopeLayer, scopeCode)
	if err != nil {
		return nil, translate(err, "search")
	}
	out.Reports, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (gridmap.ReportHit, error) {
		var h gridmap.ReportHit
		err := r.Scan(&h.ID, &h.ExternalID, &h.Category, &h.Status, &h.Primary, &h.BBox[0], &h.BBox[1], &h.BBox[2], &h.BBox[3])
		return h, err
	})
	if err != nil {
		return nil, translate(err, "search")
	}
	return out, nil
}
