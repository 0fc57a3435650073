package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/jackc/pgx/v5"
	"github.com/paulmach/orb/geojson"
)

const reportColumns = `id, external_id, category, description, ST_AsGeoJSON(location), original, crs, accuracy_m, source,
	urgent, reported_at, received_at, status, assignment, updated_at,
	(SELECT coalesce(json_agg(json_build_object('department', t.department, 'status', t.status, 'report_in_due', t.report_in_due,
	   'reported_in_at', t.reported_in_at, 'created_at', t.created_at) ORDER BY t.id), '[]')
	 FROM report_tasks t WHERE t.report_id = reports.id)`

func scanReport(row pgx.Row) (*gridmap.Report, error) { return scanReportWith(row) }

// scanReportWith scans leading values, then a report's reportColumns.
func scanReportWith(row pgx.Row, leading ...any) (*gridmap.Report, error) {
	var r gridmap.Report
	var loc string
	var original, assignment, tasks []byte
	dest := append(leading, &r.ID, &r.ExternalID, &r.Category, &r.Description, &loc, &original, &r.CRS, &r.AccuracyM, &r.Source,
		&r.Urgent, &r.ReportedAt, &r.ReceivedAt, &r.Status, &assignment, &r.UpdatedAt, &tasks)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	g, err := geojson.UnmarshalGeometry([]byte(loc))
	if err != nil {
		return nil, err
	}
	r.Location = g
	if original != nil {
		if r.OriginalLocation, err = geojson.UnmarshalGeometry(original); err != nil {
			return nil, err
		}
	}
	r.Assignment = &gridmap.Assignment{}
	if err := json.Unmarshal(assignment, r.Assignment); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(tasks, &r.Tasks); err != nil {
		return nil, err
	}
	return &r, nil
}

// Report returns one report. Returns ENOTFOUND.
func (s *ReportStore) Report(ctx context.Context, id int64) (*gridmap.Report, error) {
	r, err := scanReport(s.db.Pool.QueryRow(ctx, `SELECT `+reportColumns+` FROM reports WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, gridmap.Errorf(gridmap.ENOTFOUND, "report %d does not exist", id)
	} else if err != nil {
		return nil, translate(err, "report "+strconv.FormatInt(id, 10))
	}
	if err := checkReportInScope(ctx, id, r.Assignment); err != nil {
		return nil, err
	}
	return r, nil
}

// Reports returns a page of reports, newest first. A category filter
// selects the category and its subcategories. Returns EINVALID for a
// category that does not exist.
func (s *ReportStore) Reports(ctx context.Context, f gridmap.ReportFilter) ([]*gridmap.Report, int64, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	var bbox []float64
	if f.BBox != nil {
		bbox = []float64{f.BBox.Min[0], f.BBox.Min[1], f.BBox.Max[0], f.BBox.Max[1]}
	}
	categories, err := s.db.categorySubtree(ctx, f.Category)
	if err != nil {
		return nil, 0, err
	}
	statuses, negate := dispatch.StatusFilter(f.Status)
	scopeLayer, scopeCode := scopeParams(ctx)
	rows, err := s.db.Pool.Query(ctx, reportsSQL, statuses, negate, f.Grid, f.Since, f.Cursor, f.Limit+1, categories, f.IDs, f.Until, bbox,
		scopeLayer, scopeCode)
	if err != nil {
		return nil, 0, translate(err, "reports")
	}
	defer rows.Close()
	var out []*gridmap.Report
	for rows.Next() {
		r, err := scanReport(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, translate(err, "reports")
	}
	var next int64
	if len(out) > f.Limit {
		out = out[:f.Limit]
		next = out[len(out)-1].ID
	}
	return out, next, nil
}

// reportsSQL lists reports by filter: $1, $2 the statuses and whether they
// are negated (dispatch.StatusFilter), $7 the category codes
// (categorySubtree), $11 and $12 the caller's scope (scopeParams); a NULL
// filter selects everything.
var reportsSQL = `SELECT ` + reportColumns + ` FROM reports
	WHERE ($1::text[] IS NULL OR (status = ANY($1)) <> $2) AND ` + reportInScopeSQL("reports", "$11", "$12") + `
	  AND ($3 = '' OR primary_code = $3) AND ($4::timestamptz IS NULL OR reported_at >= $4)
	  AND ($5 = 0 OR id < $5) AND ($7::text[] IS NULL OR category = ANY($7))
	  AND ($8::bigint[] IS NULL OR id = ANY($8)) AND ($9::timestamptz IS NULL OR reported_at < $9)
	  AND ($10::float8[] IS NULL OR location && ST_MakeEnvelope($10[1], $10[2], $10[3], $10[4], 4326))
	ORDER BY id DESC LIMIT $6`

// Events returns a report's history, oldest first. Returns ENOTFOUND.
func (s *ReportStore) Events(ctx context.Context, id int64) ([]*gridmap.ReportEvent, error) {
	if _, err := s.Report(ctx, id); err != nil {
		return nil, err
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT id, report_id, action, coalesce(from_status, ''), to_status, actor, note, departments, data, at
		FROM report_events WHERE report_id = $1 ORDER BY id`, id)
	if err != nil {
		return nil, translate(err, "report events")
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*gridmap.ReportEvent, error) {
		var e gridmap.ReportEvent
		var data []byte
		err := r.Scan(&e.ID, &e.ReportID, &e.Action, &e.From, &e.To, &e.Actor, &e.Note, &e.Departments, &data, &e.At)
		e.Data = data
		return &e, err
	})
}
