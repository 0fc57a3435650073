package postgres

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/gridmap/gridmap"
)

// ReportChannel is the NOTIFY channel announcing new report events; the
// payload is a ReportChange (where the reports are).
const ReportChannel = "gridmap_reports"

// ReportChange is the payload on ReportChannel: the lon/lat box of each
// report that changed (one box around them all when there are many).
type ReportChange struct {
	Boxes [][4]float64 `json:"boxes"`
}

// reportBoxes is the ReportChange payload for one report.
func reportBoxes(r *gridmap.Report) string {
	var rc ReportChange
	if r.Location != nil {
		b := r.Location.Geometry().Bound()
		rc.Boxes = [][4]float64{{b.Min[0], b.Min[1], b.Max[0], b.Max[1]}}
	}
	payload, _ := json.Marshal(rc)
	return string(payload)
}

// Feed follows report events and boundary changes for live clients: report
// events are read back from report_events (so a client can resume from any
// event id), boundary changes are passed on as announced.
type Feed struct {
	db   *DB
	mu   sync.Mutex
	subs map[chan gridmap.FeedEvent]struct{}
}

// NewFeed returns a Feed over db; Run makes it live.
func NewFeed(db *DB) *Feed { return &Feed{db: db, subs: map[chan gridmap.FeedEvent]struct{}{}} }

// Subscribe registers a subscriber.
func (f *Feed) Subscribe() (<-chan gridmap.FeedEvent, func()) {
	ch := make(chan gridmap.FeedEvent, 16)
	f.mu.Lock()
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	return ch, func() {
		f.mu.Lock()
		delete(f.subs, ch)
		f.mu.Unlock()
	}
}

// publish hands e to every subscriber without waiting: a report wake-up a
// subscriber has not taken yet already covers the next one, and a slow
// client misses boundary notices rather than holding everyone up.
func (f *Feed) publish(e gridmap.FeedEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		select {
		case ch <- e:
		default:
		}
	}
}

// Run listens until ctx ends, reconnecting with backoff. After a reconnect
// subscribers are woken, since report events may have been missed.
func (f *Feed) Run(ctx context.Context) {
	f.db.retryUntilDone(ctx, "following the live feed", f.listen)
}

func (f *Feed) listen(ctx context.Context) error {
	conn, err := f.db.listenConn(ctx, ReportChannel, ChangeChannel)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	f.publish(gridmap.FeedEvent{Type: "report"})
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Channel == ChangeChannel {
			f.publish(gridmap.FeedEvent{Type: "boundary", Data: json.RawMessage(n.Payload)})
		} else {
			f.publish(gridmap.FeedEvent{Type: "report"})
		}
	}
}

// Latest returns the newest report event id.
func (f *Feed) Latest(ctx context.Context) (int64, error) {
	var id int64
	err := f.db.Pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM report_events`).Scan(&id)
	return id, translate(err, "report events")
}

// Since returns report events after id with their whole reports.
func (f *Feed) Since(ctx context.Context, afterID int64, limit int) ([]gridmap.FeedEvent, error) {
	rows, err := f.db.Pool.Query(ctx, `SELECT e.id, e.action, coalesce(e.from_status, ''), e.to_status, e.actor, e.note, e.at, r.*
		FROM report_events e CROSS JOIN LATERAL (SELECT `+reportColumns+` FROM reports WHERE reports.id = e.report_id) r
		WHERE e.id > $1 ORDER BY e.id LIMIT $2`, afterID, limit)
	if err != nil {
		return nil, translate(err, "report events")
	}
	defer rows.Close()
	var out []gridmap.FeedEvent
	for rows.Next() {
		var ev gridmap.ReportEvent
		vals := []any{&ev.ID, &ev.Action, &ev.From, &ev.To, &ev.Actor, &ev.Note, &ev.At}
		r, err := scanReportWith(rows, vals...)
		if err != nil {
			return nil, err
		}
		ev.ReportID = r.ID
		data, _ := json.Marshal(map[string]any{"event": ev, "report": r})
		out = append(out, gridmap.FeedEvent{ID: ev.ID, Type: "report", Data: data})
	}
	return out, translate(rows.Err(), "report events")
}
