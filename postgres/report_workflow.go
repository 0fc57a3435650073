package postgres

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

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
	if err == pgx.ErrNoRows {
		return nil, gridmap.Errorf(gridmap.ENOTFOUND, "report %d does not exist", id)
	}
	return r, translate(err, "report "+strconv.FormatInt(id, 10))
}

// Reports returns a page of reports, newest first.
func (s *ReportStore) Reports(ctx context.Context, f gridmap.ReportFilter) ([]*gridmap.Report, int64, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	var bbox []float64
	if f.BBox != nil {
		bbox = []float64{f.BBox.Min[0], f.BBox.Min[1], f.BBox.Max[0], f.BBox.Max[1]}
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT `+reportColumns+` FROM reports
		WHERE ($1 = '' OR status = $1 OR ($1 = 'open' AND status NOT IN ('closed', 'rejected'))
		       OR ($1 = 'done' AND status IN ('closed', 'rejected')))
		  AND ($2 = '' OR primary_code = $2) AND ($3::timestamptz IS NULL OR reported_at >= $3)
		  AND ($4 = 0 OR id < $4) AND ($6 = '' OR category = $6 OR category LIKE $6 || '%')
		  AND ($7::bigint[] IS NULL OR id = ANY($7)) AND ($8::timestamptz IS NULL OR reported_at < $8)
		  AND ($9::float8[] IS NULL OR location && ST_MakeEnvelope($9[1], $9[2], $9[3], $9[4], 4326))
		ORDER BY id DESC LIMIT $5`, f.Status, f.Grid, f.Since, f.Cursor, f.Limit+1, f.Category, f.IDs, f.Until, bbox)
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

// tierAbove is the next tier up, for escalation (吹哨).
var tierAbove = map[string]string{gridmap.TierGrid: gridmap.TierStreet, gridmap.TierStreet: gridmap.TierDistrict,
	gridmap.TierDistrict: gridmap.TierCity, gridmap.TierCity: gridmap.TierCity}

// AddEvent moves a report through the workflow in one transaction: the
// move is checked against the current status under a row lock, so two
// racing moves cannot both apply. escalate raises the tier one step;
// extend grants the category's limit again from now. Returns ENOTFOUND,
// ECONFLICT for a move the workflow does not allow.
func (s *ReportStore) AddEvent(ctx context.Context, id int64, e *gridmap.ReportEvent) (*gridmap.Report, error) {
	var out *gridmap.Report
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		var status, category string
		var resume *string
		var urgent bool
		var assignment []byte
		err := tx.QueryRow(ctx, `SELECT status, resume_status, category, urgent, assignment FROM reports WHERE id = $1 FOR UPDATE`, id).
			Scan(&status, &resume, &category, &urgent, &assignment)
		if err == pgx.ErrNoRows {
			return gridmap.Errorf(gridmap.ENOTFOUND, "report %d does not exist", id)
		} else if err != nil {
			return err
		}
		resumeTo := ""
		if resume != nil {
			resumeTo = *resume
		}
		to, err := dispatch.Next(status, e.Action, resumeTo)
		if err != nil {
			return err
		}
		var a gridmap.Assignment
		if err := json.Unmarshal(assignment, &a); err != nil {
			return err
		}
		newResume := resume
		switch e.Action {
		case dispatch.ActionSuspend:
			newResume = &status
		case dispatch.ActionResume:
			newResume = nil
		case dispatch.ActionEscalate:
			a.Tier = tierAbove[a.Tier]
			// Whistle: each department called in (those named, else the
			// report's) gets a task with a report-in deadline.
			called := e.Departments
			if len(called) == 0 {
				called = departmentCodes(&a)
			}
			cal, err := s.calendar(ctx, time.Now())
			if err != nil {
				return err
			}
			due, err := dispatch.Due(time.Now(), dispatch.ReportInLimit, cal)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO report_tasks (report_id, department, report_in_due)
				SELECT $1, d, $3 FROM unnest($2::text[]) d ON CONFLICT (report_id, department) WHERE status = 'open' DO NOTHING`,
				id, called, due); err != nil {
				if isSQLState(err, "23503") {
					return gridmap.Errorf(gridmap.EINVALID, "departments %v: some do not exist", called)
				}
				return err
			}
			e.Departments = called
		case dispatch.ActionReportIn:
			if len(e.Departments) == 0 {
				return gridmap.Errorf(gridmap.EINVALID, "report_in needs departments: the ones reporting in")
			}
			tag, err := tx.Exec(ctx, `UPDATE report_tasks SET status = 'reported_in', reported_in_at = now()
				WHERE report_id = $1 AND department = ANY($2) AND status = 'open'`, id, e.Departments)
			if err != nil {
				return err
			}
			if int(tag.RowsAffected()) != len(e.Departments) {
				return gridmap.Errorf(gridmap.ECONFLICT, "only departments called in by an escalation, and not yet reported in, can report in: %v", e.Departments)
			}
		case dispatch.ActionExtend:
			cat, err := NewCategoryStore(s.db).Category(ctx, category)
			if err != nil {
				return err
			}
			limit := cat.Limit
			if urgent && cat.UrgentLimit != nil {
				limit = *cat.UrgentLimit
			}
			cal, err := s.calendar(ctx, time.Now())
			if err != nil {
				return err
			}
			if a.DueAt, err = dispatch.Due(time.Now(), limit, cal); err != nil {
				return err
			}
		}
		if to != status {
			cat, err := NewCategoryStore(s.db).Category(ctx, category)
			if err != nil {
				return err
			}
			cal, err := s.calendar(ctx, time.Now())
			if err != nil {
				return err
			}
			if err := dispatch.SetStep(&a, to, cat, time.Now(), cal); err != nil {
				return err
			}
		}
		newAssignment, _ := json.Marshal(a)
		if _, err := tx.Exec(ctx, `UPDATE reports SET status = $2, resume_status = $3, tier = $4, due_at = $5, assignment = $6, updated_at = now()
			WHERE id = $1`, id, to, newResume, a.Tier, a.DueAt, newAssignment); err != nil {
			return err
		}
		if e.Departments == nil {
			e.Departments = []string{}
		}
		e.ReportID, e.From, e.To = id, status, to
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, report_boxes(ARRAY[$2::bigint]))`, ReportChannel, id); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO report_events (report_id, action, from_status, to_status, actor, note, departments)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, at`, id, e.Action, status, to, e.Actor, e.Note, e.Departments).Scan(&e.ID, &e.At); err != nil {
			return err
		}
		// Tell the report's departments, through the outbox, in this transaction.
		_, err = tx.Exec(ctx, `INSERT INTO outbox (department, url, event_id, payload)
			SELECT d.code, d.webhook_url, $1, jsonb_build_object('event', 'report', 'action', $2::text, 'report_id', $3::bigint,
			  'from', $4::text, 'status', $5::text, 'note', $6::text, 'assignment', $7::jsonb)
			FROM departments d WHERE d.code = ANY($8::text[]) AND d.webhook_url <> ''`,
			e.ID, e.Action, id, status, to, e.Note, newAssignment, departmentCodes(&a))
		return err
	})
	if err != nil {
		return nil, translate(err, "report "+strconv.FormatInt(id, 10))
	}
	out, err = s.Report(ctx, id)
	return out, err
}

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
