package postgres

import (
	"context"
	"errors"
	"hash/fnv"
	"math"
	"slices"
	"strconv"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/jackc/pgx/v5"
	"github.com/paulmach/orb"
)

// Probable duplicates. A new report is linked at intake to the earliest
// open report of its category within the category's duplicate_within_m
// and duplicate_within_hours (reported_at either way), in the same
// implicit transaction that stores it: one batch of three statements,
//
//  1. duplicateLockSQL takes advisory locks on the category and on the
//     cells of a 500 m grid that the location, grown by the largest
//     duplicate distance, touches;
//  2. intakeSQL stores the report, its event, outbox rows and notice;
//  3. duplicateLinkSQL finds the match and sets duplicate_of.
//
// Why this cannot link two reports each to the other, nor leave two near
// reports filed at once both unlinked: a report links only to a report
// its third statement sees committed, so links follow commit order and
// can never form a cycle. Two reports near enough to match share a
// locked cell (the cell of the point of one nearest the other: each locks
// the cells of its own bounds, and the other's grown bounds reach it), so
// their batches run one after the other; the third statement of the
// second starts, and takes its snapshot, after the first committed, and
// sees it. (The lock is a statement of its own for that reason: a
// statement's snapshot is taken when it starts, before it could wait.)
// A location so large that it would touch more than maxDuplicateCells
// cells locks the whole category instead; every other intake holds the
// category's lock shared, so the two still exclude each other.

// duplicateCellM is the side of the lock grid's cells, in metres (north to
// south; the same angle east to west): the largest duplicate distance a
// category may have, so that the locks a report takes are few.
const duplicateCellM = gridmap.MaxDuplicateWithinM

// maxDuplicateCells bounds the cells one report locks.
const maxDuplicateCells = 64

// dupMetresPerDegree errs low (a degree of latitude is 110.6 to 111.7 km), so
// that bounds grown by it reach at least as far as asked.
const dupMetresPerDegree = 110000.0

// duplicateLockKeys are the advisory locks a report of category at
// bounds b takes before it is stored and linked, in the order to take
// them: the category's first, then the cells', ascending. whole is true
// when the report takes the category's lock exclusively (and no cell's);
// otherwise it takes it shared.
func duplicateLockKeys(category string, b orb.Bound) (keys []int64, whole bool) {
	cell := duplicateCellM / dupMetresPerDegree
	dlat := cell
	lat := math.Min(89, math.Max(math.Abs(b.Min[1]), math.Abs(b.Max[1]))+dlat)
	dlon := cell / math.Max(math.Cos(lat*math.Pi/180), 0.01)
	x0, x1 := math.Floor((b.Min[0]-dlon)/cell), math.Floor((b.Max[0]+dlon)/cell)
	y0, y1 := math.Floor((b.Min[1]-dlat)/cell), math.Floor((b.Max[1]+dlat)/cell)
	keys = []int64{lockKey("gridmap duplicates " + category)}
	if (x1-x0+1)*(y1-y0+1) > maxDuplicateCells {
		return keys, true
	}
	var cells []int64
	for x := x0; x <= x1; x++ {
		for y := y0; y <= y1; y++ {
			cells = append(cells, lockKey("gridmap duplicates "+category+" "+strconv.FormatFloat(x, 'f', 0, 64)+" "+strconv.FormatFloat(y, 'f', 0, 64)))
		}
	}
	slices.Sort(cells)
	return append(keys, slices.Compact(cells)...), false
}

// lockKey is an advisory lock's number for a name.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
}

// duplicateLockSQL takes the advisory locks $2 (duplicateLockKeys) in
// their order, the first shared unless $3, until the transaction ends;
// none when category $1 links no duplicates.
const duplicateLockSQL = `SELECT count(*) FROM (
	  SELECT CASE WHEN u.i = 1 AND NOT $3 THEN pg_advisory_xact_lock_shared(u.k) ELSE pg_advisory_xact_lock(u.k) END
	  FROM unnest($2::bigint[]) WITH ORDINALITY u (k, i)
	  WHERE EXISTS (SELECT 1 FROM categories WHERE code = $1 AND duplicate_within_m > 0 AND duplicate_within_hours > 0)) l`

// duplicateLinkSQL links the report with external_id $1 to the earliest
// (by reported_at, then id) other report of its category that is open
// (status not in $2, dispatch.DoneStatuses), lies within the category's
// duplicate_within_m of it and was reported within its
// duplicate_within_hours before or after it, and returns the link (NULL
// for none). No row when the category links no duplicates or the report
// was not stored. The box test (in degrees, generous) lets the match be
// found through reports_location; ST_DWithin on geography decides. The
// months received before the earliest match could be reported are left
// out when the statement runs (reportsFromSQL); the months after it are
// each probed by place.
var duplicateLinkSQL = `UPDATE reports n SET duplicate_of = (
	  SELECT m.id FROM reports m
	  WHERE m.category = n.category AND m.id <> n.id AND m.status <> ALL($2::text[])
	    AND m.location && ST_Expand(n.location,
	      c.duplicate_within_m / (` + metresPerDegreeSQL + ` * greatest(cos(radians(least(89, greatest(abs(ST_YMin(n.location)), abs(ST_YMax(n.location))) + 0.01))), 0.01)),
	      c.duplicate_within_m / ` + metresPerDegreeSQL + `)
	    AND ST_DWithin(m.location::geography, n.location::geography, c.duplicate_within_m)
	    AND m.reported_at BETWEEN n.reported_at - c.duplicate_within_hours * interval '1 hour'
	                          AND n.reported_at + c.duplicate_within_hours * interval '1 hour'
	    AND ` + reportsFromSQL("m.id", "n.reported_at - c.duplicate_within_hours * interval '1 hour'") + `
	  ORDER BY m.reported_at, m.id LIMIT 1)
	FROM categories c
	WHERE n.id = (SELECT report_id FROM report_keys WHERE external_id = $1) AND c.code = n.category AND c.duplicate_within_m > 0 AND c.duplicate_within_hours > 0
	RETURNING n.duplicate_of`

const metresPerDegreeSQL = "110000.0"

// intakeLinked runs intakeSQL with args between taking the duplicate
// locks and linking r to its match, as one implicit transaction, and sets
// r's id, received_at and duplicate_of. Without links (r's category, as
// assign read it, links no duplicates) it runs intakeSQL alone: the link
// is planned over every month of reports, which costs more the more
// months are kept.
// Returns pgx.ErrNoRows when intakeSQL stored nothing.
func (s *ReportStore) intakeLinked(ctx context.Context, r *gridmap.Report, args []any, links bool) error {
	batch := &pgx.Batch{}
	if links {
		keys, whole := duplicateLockKeys(r.Category, r.Location.Geometry().Bound())
		batch.Queue(duplicateLockSQL, r.Category, keys, whole)
	}
	batch.Queue(intakeSQL, args...)
	if links {
		batch.Queue(duplicateLinkSQL, r.ExternalID, dispatch.DoneStatuses)
	}
	br := s.db.Pool.SendBatch(ctx, batch)
	defer br.Close()
	if links {
		if _, err := br.Exec(); err != nil {
			return err
		}
	}
	if err := br.QueryRow().Scan(new(int64), &r.ID, &r.ReceivedAt); err != nil {
		return err
	}
	if links {
		if err := br.QueryRow().Scan(&r.DuplicateOf); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
	}
	// The commit: an error here means the report may not be stored.
	return br.Close()
}

// duplicateIDs narrows f.IDs to the duplicates of f.DuplicateOf, when set
// (an empty list, not nil, when it has none: the list selects nothing).
func (s *ReportStore) duplicateIDs(ctx context.Context, f gridmap.ReportFilter) ([]int64, error) {
	if f.DuplicateOf == 0 {
		return f.IDs, nil
	}
	ids := []int64{}
	if err := s.db.Pool.QueryRow(ctx, `SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM report_duplicates WHERE of = $1`, f.DuplicateOf).
		Scan(&ids); err != nil {
		return nil, translate(err, "duplicates of report "+strconv.FormatInt(f.DuplicateOf, 10))
	}
	if f.IDs != nil {
		ids = slices.DeleteFunc(ids, func(id int64) bool { return !slices.Contains(f.IDs, id) })
	}
	return ids, nil
}
