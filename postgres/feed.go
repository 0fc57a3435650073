package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/singleflight"
)

// ReportChannel is the NOTIFY channel announcing new report events; the
// payload is a ReportChange (where the reports are).
const ReportChannel = "gridmap_reports"

// ReportChange is the payload on ReportChannel: the lon/lat box of each
// report that changed (one box around them all when there are many).
type ReportChange struct {
	Boxes [][4]float64 `json:"boxes"`
}

// reportBoxSQL is the ReportChange payload for one report, from its row
// (column location): every report event's notice.
const reportBoxSQL = `json_build_object('boxes', json_build_array(json_build_array(
	ST_XMin(location), ST_YMin(location), ST_XMax(location), ST_YMax(location))))::text`

// Feed is the live feed: report events (report_events), boundary changes
// (layer_changes) and workers' positions (worker_events) in the order their
// transactions committed.
//
// Ids are drawn when a row is inserted, and transactions commit in another
// order, so ids are no place to resume from. Instead Run gives each committed
// row its feed number (seq) afterwards: woken by the writers' notifications,
// it numbers every row still without one from the feed_ids sequence, in id
// order, in one transaction holding an advisory lock (number). Those
// transactions run one at a time, and each releases the lock only once its
// commit is visible, so the next one draws larger numbers and commits later:
// a snapshot that sees a number sees every smaller one. Reading the numbers
// after n therefore gets every later event exactly once and in order, live
// or resuming, and an event written after another one committed (two moves
// of one report: the second writes only after the first committed) is
// numbered after it. Writers
// pass nothing: any transaction that inserts a row and notifies is followed.
type Feed struct {
	db      *DB
	batch   int           // how many rows one numbering takes at most
	written chan struct{} // a notification came in: rows may wait for numbers
	reads   singleflight.Group

	mu    sync.Mutex
	subs  map[chan struct{}]struct{}
	marks feedMarks // as of the last numbering
	ready bool      // numbering has run
}

// feedMarks bound what a read may return: numbers up to newest, every one
// of them visible to any later snapshot. Report events from before the feed
// numbered events (seq 0) count by their ids, all at most lastOld and below
// every number given since.
type feedMarks struct {
	newest, lastOld int64
}

// feedLockID is the advisory lock that serialises numbering, across
// instances too.
const feedLockID = 0x6772_6964_6665_6564 // "gridfeed"

// feedGather is how long numbering waits after a notification for the
// rest of a burst: events reach live clients that much later.
const feedGather = 10 * time.Millisecond

// feedSweep is how often Run numbers rows without being woken, for writers
// that did not notify.
const feedSweep = 5 * time.Second

// NewFeed returns a Feed over db; Run makes it live.
func NewFeed(db *DB) *Feed {
	return &Feed{db: db, batch: numberBatch, written: make(chan struct{}, 1), subs: map[chan struct{}]struct{}{}}
}

// Subscribe registers a subscriber, woken whenever the newest number grows.
func (f *Feed) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	f.mu.Lock()
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	return ch, func() {
		f.mu.Lock()
		delete(f.subs, ch)
		f.mu.Unlock()
	}
}

// publish records the marks and wakes the subscribers when the newest
// number grew; a wake-up a subscriber has not taken yet already covers this
// one.
func (f *Feed) publish(m feedMarks) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ready = true
	if m.newest <= f.marks.newest {
		return
	}
	f.marks = m
	for ch := range f.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Run numbers committed events and wakes the subscribers until ctx ends,
// listening for the writers' notifications (reconnecting with backoff).
func (f *Feed) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { f.db.retryUntilDone(ctx, "following the live feed", f.listen) })
	wg.Go(func() { f.numberUntilDone(ctx) })
	wg.Wait()
}

func (f *Feed) wake() {
	select {
	case f.written <- struct{}{}:
	default:
	}
}

func (f *Feed) listen(ctx context.Context) error {
	conn, err := f.db.listenConn(ctx, ReportChannel, ChangeChannel, WorkerChannel)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	f.wake() // rows may have been written while nobody listened
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		f.wake()
	}
}

// numberUntilDone numbers after every wake-up (those arriving meanwhile
// make one more run) and every feedSweep.
func (f *Feed) numberUntilDone(ctx context.Context) {
	sweep := time.NewTicker(feedSweep)
	defer sweep.Stop()
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.written:
			// A burst of commits is numbered together: one numbering per
			// event cost a sixth of the write rate under load.
			select {
			case <-ctx.Done():
				return
			case <-time.After(feedGather):
			}
			select {
			case <-f.written:
			default:
			}
		case <-sweep.C:
		}
		marks, err := f.number(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.db.Logger.Warn("numbering the live feed failed; retrying", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 10*time.Second)
			f.wake()
			continue
		}
		backoff = 100 * time.Millisecond
		f.publish(marks)
	}
}

// numberSQL gives up to $1 committed rows without a number the next
// numbers, in id order (nextval runs in the outer query over the sorted
// rows), and counts them.
const numberSQL = `WITH unnumbered AS (
	SELECT 'report' AS kind, id FROM report_events WHERE seq IS NULL
	UNION ALL
	SELECT 'boundary', id FROM layer_changes WHERE seq IS NULL AND change IS NOT NULL
	UNION ALL
	SELECT 'worker', id FROM worker_events WHERE seq IS NULL
	ORDER BY id LIMIT $1
), numbered AS (
	SELECT kind, id, nextval('feed_ids') AS seq FROM unnumbered
), reports AS (
	UPDATE report_events e SET seq = n.seq FROM numbered n WHERE n.kind = 'report' AND e.id = n.id
), changes AS (
	UPDATE layer_changes c SET seq = n.seq FROM numbered n WHERE n.kind = 'boundary' AND c.id = n.id
), workers AS (
	UPDATE worker_events w SET seq = n.seq FROM numbered n WHERE n.kind = 'worker' AND w.id = n.id
)
SELECT count(*) FROM numbered`

// numberBatch is how many rows one numbering takes at most: a backlog
// (events written while no feed ran) is numbered in several.
const numberBatch = 5000

// marksSQL reads the feedMarks.
const marksSQL = `SELECT greatest(r.newest, c.newest, w.newest, o.last, 0), coalesce(o.last, 0)
	FROM (SELECT max(seq) AS newest FROM report_events WHERE seq IS NOT NULL) r,
	     (SELECT max(seq) AS newest FROM layer_changes WHERE seq IS NOT NULL) c,
	     (SELECT max(seq) AS newest FROM worker_events WHERE seq IS NOT NULL) w,
	     (SELECT max(id) AS last FROM report_events WHERE seq = 0) o`

// number numbers the committed events without a number and returns the
// marks after them.
func (f *Feed) number(ctx context.Context) (feedMarks, error) {
	var m feedMarks
	err := pgx.BeginFunc(ctx, f.db.Pool, func(tx pgx.Tx) error {
		// READ COMMITTED: numberSQL's snapshot is taken once the lock is
		// held, so it sees every number given before.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(feedLockID)); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, numberSQL, f.batch).Scan(&n); err != nil {
			return err
		}
		if n == f.batch {
			f.wake() // more wait
		}
		return tx.QueryRow(ctx, marksSQL).Scan(&m.newest, &m.lastOld)
	})
	return m, translate(err, "numbering the live feed")
}

// current returns the marks of the last numbering, or reads them when
// numbering has not run yet.
func (f *Feed) current(ctx context.Context) (feedMarks, error) {
	f.mu.Lock()
	m, ready := f.marks, f.ready
	f.mu.Unlock()
	if ready {
		return m, nil
	}
	err := f.db.Pool.QueryRow(ctx, marksSQL).Scan(&m.newest, &m.lastOld)
	return m, translate(err, "live feed")
}

// Latest returns the newest number.
func (f *Feed) Latest(ctx context.Context) (int64, error) {
	m, err := f.current(ctx)
	return m.newest, err
}

// feedReadTimeout bounds a read shared by several clients, which no one
// client's cancellation stops.
const feedReadTimeout = 30 * time.Second

// Since returns up to limit events numbered after after, in order. Clients
// woken together at the same place share one read.
func (f *Feed) Since(ctx context.Context, after int64, limit int) ([]gridmap.FeedEvent, error) {
	m, err := f.current(ctx)
	if err != nil || after >= m.newest {
		return nil, err
	}
	key := fmt.Sprint(after, " ", m.newest, " ", limit)
	read := f.reads.DoChan(key, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), feedReadTimeout)
		defer cancel()
		return f.read(ctx, after, m, limit)
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case res := <-read:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.([]gridmap.FeedEvent), nil
	}
}

// The reads of the feed after $1 up to $2. Report events from before
// numbering come by id, the others by number. Each event's report is read
// by its id in its month (reportByIDSQL): joined, the planner hashed every
// report (4.6 s for a catch-up of 5,000 events over a million reports in
// 14 months, where the probes take milliseconds).
var (
	feedOldReportsSQL = `SELECT e.id, e.id, e.action, coalesce(e.from_status, ''), e.to_status, e.actor, e.note, e.at, r.*
	FROM report_events e CROSS JOIN LATERAL ` + reportByIDSQL("e.report_id") + ` r
	WHERE e.seq = 0 AND e.id > $1 AND e.id <= $2 ORDER BY e.id LIMIT $3`
	feedReportsSQL = `SELECT e.seq, e.id, e.action, coalesce(e.from_status, ''), e.to_status, e.actor, e.note, e.at, r.*
	FROM report_events e CROSS JOIN LATERAL ` + reportByIDSQL("e.report_id") + ` r
	WHERE e.seq > $1 AND e.seq <= $2 ORDER BY e.seq LIMIT $3`
)

const (
	feedChangesSQL = `SELECT seq, change FROM layer_changes WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3`
	feedWorkersSQL = `SELECT seq, data, layer_id, scope_codes FROM worker_events WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3`
)

// read returns the first limit events numbered in (after, m.newest]. Each
// statement may see a later snapshot than the one before; bounded by m they
// all see the same events.
func (f *Feed) read(ctx context.Context, after int64, m feedMarks, limit int) ([]gridmap.FeedEvent, error) {
	var out []gridmap.FeedEvent
	if after < m.lastOld {
		old, err := f.reportEvents(ctx, feedOldReportsSQL, after, min(m.lastOld, m.newest), limit)
		if err != nil || len(old) == limit {
			return old, err
		}
		out, limit = old, limit-len(old)
	}
	reports, err := f.reportEvents(ctx, feedReportsSQL, after, m.newest, limit)
	if err != nil {
		return nil, err
	}
	rows, err := f.db.Pool.Query(ctx, feedChangesSQL, after, m.newest, limit)
	if err != nil {
		return nil, translate(err, "boundary changes")
	}
	changes, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (gridmap.FeedEvent, error) {
		e := gridmap.FeedEvent{Type: "boundary"}
		var change []byte
		err := row.Scan(&e.ID, &change)
		e.Data = change
		return e, err
	})
	if err != nil {
		return nil, translate(err, "boundary changes")
	}
	workers, err := f.workerEvents(ctx, after, m.newest, limit)
	if err != nil {
		return nil, err
	}
	numbered := append(append(reports, changes...), workers...)
	slices.SortFunc(numbered, func(a, b gridmap.FeedEvent) int { return cmp.Compare(a.ID, b.ID) })
	return append(out, numbered[:min(len(numbered), limit)]...), nil
}

// reportEvents runs one of the report event reads: each event with its
// whole report.
func (f *Feed) reportEvents(ctx context.Context, sql string, after, upTo int64, limit int) ([]gridmap.FeedEvent, error) {
	rows, err := f.db.Pool.Query(ctx, sql, after, upTo, limit)
	if err != nil {
		return nil, translate(err, "report events")
	}
	defer rows.Close()
	var out []gridmap.FeedEvent
	for rows.Next() {
		var n int64
		var ev gridmap.ReportEvent
		r, err := scanReportWith(rows, &n, &ev.ID, &ev.Action, &ev.From, &ev.To, &ev.Actor, &ev.Note, &ev.At)
		if err != nil {
			return nil, translate(err, "report events")
		}
		ev.ReportID = r.ID
		data, _ := json.Marshal(map[string]any{"event": ev, "report": r})
		out = append(out, gridmap.FeedEvent{ID: n, Type: "report", Data: data, Owners: r.Assignment})
	}
	return out, translate(rows.Err(), "report events")
}

// workerEvents reads the worker events numbered in (after, upTo], each with
// the worker's grid for the readers' scope.
func (f *Feed) workerEvents(ctx context.Context, after, upTo int64, limit int) ([]gridmap.FeedEvent, error) {
	rows, err := f.db.Pool.Query(ctx, feedWorkersSQL, after, upTo, limit)
	if err != nil {
		return nil, translate(err, "worker events")
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (gridmap.FeedEvent, error) {
		e := gridmap.FeedEvent{Type: "worker"}
		var data []byte
		var layer *string
		var codes []string
		err := row.Scan(&e.ID, &data, &layer, &codes)
		e.Data = data
		if layer != nil {
			e.Worker = &gridmap.WorkerGrid{Layer: *layer, Codes: codes}
		}
		return e, err
	})
	return out, translate(err, "worker events")
}
