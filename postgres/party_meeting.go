package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/jackc/pgx/v5"
)

// AddMeeting records a street's joint meeting in one transaction: it
// checks the street, locks the meeting's reports, checks each may be taken
// up (dispatch.CheckConsult), and then writes the meeting, a consult event
// on each report and, for the items marked, the report's escalation as
// POST /v1/reports/{id}/events would (dispatch.Apply, recordEvent). Any
// refusal leaves everything as it was. See gridmap.PartyService.
func (s *PartyStore) AddMeeting(ctx context.Context, m *gridmap.Meeting) error {
	if err := m.Check(); err != nil {
		return err
	}
	actor := gridmap.CallerFrom(ctx).Actor()
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		if err := s.checkMeetingStreet(ctx, tx, m); err != nil {
			return err
		}
		reports, err := s.lockMeetingReports(ctx, tx, m)
		if err != nil {
			return err
		}
		now := time.Now()
		cal, err := readCalendar(ctx, tx, s.tz, now)
		if err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO party_meetings (layer_id, street_code, held_at, title, attendees, created_by)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, created_at`, m.Layer, m.Street, m.HeldAt, m.Title, m.Attendees, actor).
			Scan(&m.ID, &m.CreatedAt); err != nil {
			return err
		}
		m.CreatedBy = actor
		for i := range m.Items {
			if err := s.takeUp(ctx, tx, m, i, reports[m.Items[i].Report], actor, now, cal); err != nil {
				return err
			}
		}
		return nil
	})
	return translate(err, "recording joint meeting")
}

// checkMeetingStreet checks, through q, that the meeting's street is a
// street-tier grid of a comprehensive layer inside the caller's scope.
func (s *PartyStore) checkMeetingStreet(ctx context.Context, q querier, m *gridmap.Meeting) error {
	l, err := comprehensiveLayerIn(ctx, q, m.Layer)
	if err != nil {
		return err
	}
	chain, err := gridInScope(ctx, q, m.Layer, m.Street)
	if gridmap.ErrorCode(err) == gridmap.ENOTFOUND {
		return gridmap.Errorf(gridmap.EINVALID, "street %q is not a current grid of layer %s", m.Street, m.Layer)
	} else if err != nil {
		return err
	}
	if level := chain[len(chain)-1].Level; l.TierOfLevel(level) != gridmap.TierStreet {
		return gridmap.Errorf(gridmap.EINVALID, "street %s is a %s of the %s tier; a joint meeting is a street-tier grid's", m.Street, level, l.TierOfLevel(level))
	}
	return nil
}

// lockMeetingReports locks the meeting's reports through tx, in id order
// (so concurrent meetings cannot deadlock), and checks each may be taken
// up. Returns EUNPROCESSABLE naming the first that may not.
func (s *PartyStore) lockMeetingReports(ctx context.Context, tx pgx.Tx, m *gridmap.Meeting) (map[int64]*lockedReport, error) {
	ids := make([]int64, len(m.Items))
	for i, it := range m.Items {
		ids[i] = it.Report
	}
	rows, err := tx.Query(ctx, `SELECT `+stateColumns+` FROM reports r WHERE r.id = ANY($1) ORDER BY r.id FOR UPDATE OF r`, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	reports := map[int64]*lockedReport{}
	for rows.Next() {
		l, err := scanLocked(rows)
		if err != nil {
			return nil, err
		}
		reports[l.id] = l
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, it := range m.Items {
		l, ok := reports[it.Report]
		if !ok {
			return nil, gridmap.Errorf(gridmap.EUNPROCESSABLE, "report %d does not exist", it.Report)
		}
		if err := dispatch.CheckConsult(it.Report, l.state, m.Layer, m.Street, it.Escalate); err != nil {
			return nil, err
		}
	}
	return reports, nil
}

// takeUp writes item i of meeting m through tx: the consult event on its
// locked report l, the escalation when the meeting decided it, and the
// item's row.
func (s *PartyStore) takeUp(ctx context.Context, tx pgx.Tx, m *gridmap.Meeting, i int, l *lockedReport, actor string, now time.Time, cal *dispatch.Calendar) error {
	it := &m.Items[i]
	data, _ := json.Marshal(map[string]any{"meeting": m.ID, "street": m.Street, "title": m.Title, "decision": it.Decision, "escalate": it.Escalate})
	ev := &gridmap.ReportEvent{Action: dispatch.ActionConsult, From: l.state.Status, To: l.state.Status, Actor: actor,
		Note: fmt.Sprintf("joint meeting %d of street %s (%s): %s", m.ID, m.Street, m.Title, it.Decision), Data: data}
	out := dispatch.Consult(l.state)
	if err := recordEvent(ctx, tx, l.id, nil, ev, &out, l.about); err != nil {
		return err
	}
	it.EventID, it.Tier = ev.ID, l.state.Assignment.Tier
	if it.Escalate {
		up, err := dispatch.Apply(l.state, dispatch.Move{Action: dispatch.ActionEscalate, At: now, Category: l.category,
			Urgent: l.urgent, Calendar: cal})
		if err != nil {
			return err
		}
		esc := &gridmap.ReportEvent{Action: dispatch.ActionEscalate, From: l.state.Status, To: up.State.Status, Actor: actor,
			Note: fmt.Sprintf("handed up by joint meeting %d of street %s (提级办理)", m.ID, m.Street), Departments: up.Departments}
		if err := recordEvent(ctx, tx, l.id, nil, esc, &up, l.about); err != nil {
			return err
		}
		it.Tier = up.State.Assignment.Tier
	}
	_, err := tx.Exec(ctx, `INSERT INTO party_meeting_items (meeting_id, position, report_id, decision, escalate, event_id, tier)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, m.ID, i, l.id, it.Decision, it.Escalate, it.EventID, it.Tier)
	return err
}

// meetingsSQL lists the meetings of layer $1 (of street $2 unless it is
// ”), newest first, of streets in the subtree of grid $3 only when $3 is
// not NULL.
var meetingsSQL = `WITH ` + subtreeSQL("$1", "$3") + `
	SELECT m.id, m.layer_id, m.street_code, m.held_at, m.title, m.attendees, m.created_by, m.created_at,
	  (SELECT coalesce(json_agg(json_build_object('report', i.report_id, 'decision', i.decision, 'escalate', i.escalate,
	     'event_id', i.event_id, 'tier', i.tier) ORDER BY i.position), '[]') FROM party_meeting_items i WHERE i.meeting_id = m.id)
	FROM party_meetings m
	WHERE m.layer_id = $1 AND ($2 = '' OR m.street_code = $2) AND ($3::text IS NULL OR m.street_code IN (SELECT code FROM sub))
	ORDER BY m.held_at DESC, m.id DESC LIMIT 1000`

// Meetings lists a layer's joint meetings; see gridmap.PartyService.
func (s *PartyStore) Meetings(ctx context.Context, layer, street string) ([]*gridmap.Meeting, error) {
	if _, err := layerIn(ctx, s.db.Pool, layer); err != nil {
		return nil, translate(err, "joint meetings")
	}
	out := []*gridmap.Meeting{}
	scope := scopeOf(ctx)
	if scope != nil && scope.Layer != layer {
		return out, nil
	}
	var scopeCode *string
	if scope != nil {
		scopeCode = &scope.Code
	}
	rows, err := s.db.Pool.Query(ctx, meetingsSQL, layer, street, scopeCode)
	if err != nil {
		return nil, translate(err, "joint meetings")
	}
	defer rows.Close()
	for rows.Next() {
		var m gridmap.Meeting
		var items []byte
		if err := rows.Scan(&m.ID, &m.Layer, &m.Street, &m.HeldAt, &m.Title, &m.Attendees, &m.CreatedBy, &m.CreatedAt, &items); err != nil {
			return nil, translate(err, "joint meetings")
		}
		if err := json.Unmarshal(items, &m.Items); err != nil {
			return nil, err
		}
		out = append(out, &m)
	}
	return out, translate(rows.Err(), "joint meetings")
}
