package postgres_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/migrations"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/gridmap/gridmap/tiles"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/paulmach/orb/geojson"
	"github.com/pressly/goose/v3"
)

// runFeed starts a live feed over db for the test and subscribes to it.
func runFeed(t *testing.T, db *postgres.DB) (*postgres.Feed, <-chan struct{}) {
	t.Helper()
	feed := postgres.NewFeed(db)
	return feed, runFeedOf(t, feed)
}

// runFeedOf runs feed for the test and subscribes to it.
func runFeedOf(t *testing.T, feed *postgres.Feed) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { feed.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	wake, unsubscribe := feed.Subscribe()
	t.Cleanup(unsubscribe)
	return wake
}

// feedUntil reads the feed after after until it holds n events
// satisfying keep, failing after 10 s; it returns those events.
func feedUntil(t *testing.T, feed *postgres.Feed, wake <-chan struct{}, after int64, n int, keep func(gridmap.FeedEvent) bool) []gridmap.FeedEvent {
	t.Helper()
	ctx := context.Background()
	var out []gridmap.FeedEvent
	timeout := time.After(10 * time.Second)
	for {
		batch, err := feed.Since(ctx, after, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range batch {
			if e.ID <= after {
				t.Fatalf("event %d after %d", e.ID, after)
			}
			after = e.ID
			if keep(e) {
				out = append(out, e)
			}
		}
		if len(out) >= n {
			return out
		}
		if len(batch) == 100 {
			continue
		}
		select {
		case <-wake:
		case <-timeout:
			t.Fatalf("feed holds %d of %d events after 10 s", len(out), n)
		}
	}
}

// newReport stores a bare report by SQL, for writing events about it.
func newReport(t *testing.T, db *postgres.DB, externalID string) int64 {
	t.Helper()
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO categories (code, name, limit_value, limit_clock) VALUES ('feedtest', 'feed test', 1, 'urgent_hours')
		ON CONFLICT DO NOTHING`); err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := db.Pool.QueryRow(ctx, `SELECT report_id FROM report_keys WHERE external_id = $1`, externalID).Scan(&id); err == nil {
		return id
	} else if !errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(ctx, `INSERT INTO reports (external_id, content_hash, category, location, crs, reported_at, status, tier, due_at, assignment)
		VALUES ($1, '\x00', 'feedtest', ST_SetSRID(ST_MakePoint(100, 10), 4326), 'EPSG:4326', now(), 'reported', 'grid', now() + interval '1 day', '{}')
		RETURNING id`, externalID).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// eventNote returns the note of a report event on the feed.
func eventNote(e gridmap.FeedEvent) string {
	var d struct{ Event struct{ Note string } }
	if e.Type != "report" || json.Unmarshal(e.Data, &d) != nil {
		return ""
	}
	return d.Event.Note
}

// writeEvent inserts a report event in tx and announces it.
func writeEvent(t *testing.T, tx pgx.Tx, report int64, note string) int64 {
	t.Helper()
	ctx := context.Background()
	var id int64
	if err := tx.QueryRow(ctx, `INSERT INTO report_events (report_id, action, to_status, actor, note)
		VALUES ($1, 'note', 'reported', 'feed test', $2) RETURNING id`, report, note).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify('gridmap_reports', '{"boxes":[]}')`); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestFeedNumbersEventsAsTheyCommit(t *testing.T) {
	db := pgtest.Shared(t)
	ctx := context.Background()
	feed, wake := runFeed(t, db)
	// Each writer writes about a report of its own: events of one report
	// take turns (each keeps the report's facts row until it commits).
	report := newReport(t, db, "feed-commit-order")
	other := newReport(t, db, "feed-commit-order-2")
	third := newReport(t, db, "feed-commit-order-3")
	start, err := feed.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mine := func(e gridmap.FeedEvent) bool { return strings.HasPrefix(eventNote(e), "commit-order ") }

	// The first writer draws the smaller id but commits last.
	slow, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Rollback(ctx)
	first := writeEvent(t, slow, report, "commit-order slow")
	fast, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second := writeEvent(t, fast, other, "commit-order fast")
	if err := fast.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if second <= first {
		t.Fatalf("ids %d, %d: the test needs the slow writer's to be smaller", first, second)
	}
	seen := feedUntil(t, feed, wake, start, 1, mine)
	if eventNote(seen[0]) != "commit-order fast" {
		t.Fatalf("first event on the feed: %s", seen[0].Data)
	}

	rolledBack, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	writeEvent(t, rolledBack, third, "commit-order rolled back")
	if err := rolledBack.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := slow.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	t.Run("an event committed after a later id comes after the event seen", func(t *testing.T) {
		late := feedUntil(t, feed, wake, seen[0].ID, 1, mine)
		if eventNote(late[0]) != "commit-order slow" {
			t.Fatalf("next event on the feed: %s", late[0].Data)
		}
	})
	t.Run("a client resuming from the start gets both once, in commit order", func(t *testing.T) {
		all := feedUntil(t, feed, wake, start, 2, mine)
		if len(all) != 2 || eventNote(all[0]) != "commit-order fast" || eventNote(all[1]) != "commit-order slow" {
			t.Fatalf("feed from the start: %v", all)
		}
		if batch, err := feed.Since(ctx, all[1].ID, 100); err != nil || len(batch) != 0 {
			t.Fatalf("after the last: %v %v (the rolled back event must never appear)", batch, err)
		}
	})
}

func TestFeedCarriesEveryBoundaryChange(t *testing.T) {
	db := pgtest.NewDB(t) // where the layer is new every time
	ctx := context.Background()
	feed, wake := runFeed(t, db)
	s := stores{postgres.NewLayerStore(db), postgres.NewGridStore(db)}
	if _, err := s.layers.PutLayer(ctx, &gridmap.Layer{ID: "feedlayer", Levels: []string{"district"}}); err != nil {
		t.Fatal(err)
	}
	start, err := feed.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	onLayer := func(e gridmap.FeedEvent) bool {
		var ch gridmap.Change
		return e.Type == "boundary" && json.Unmarshal(e.Data, &ch) == nil && ch.Layer == "feedlayer"
	}
	// Two districts far apart.
	if _, err := importString(s, "feedlayer", collection(feature("FA", "district", "", box(100, 10, 0.01)),
		feature("FB", "district", "", box(101, 10, 0.01))), gridmap.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	// A change to FB only, which tiles over FA do not see.
	g, err := geojson.UnmarshalGeometry([]byte(box(101, 10, 0.01)))
	if err != nil {
		t.Fatal(err)
	}
	rename := putOp("FB", g, nil)
	rename.Feature.Properties["name"] = "renamed"
	if _, err := s.grids.ApplyChangeset(ctx, "feedlayer", &gridmap.Changeset{Reason: "rename", Operations: []gridmap.Operation{rename}}); err != nil {
		t.Fatal(err)
	}
	x, y, _, _ := tiles.Covering(12, [4]float64{100.004, 10.004, 100.006, 10.006}, 0)
	tile := gridmap.TileQuery{Tileset: "feedlayer", Z: 12, X: x, Y: y}
	ts := postgres.NewTileStore(db)
	before, err := ts.RenderTile(ctx, tile)
	if err != nil {
		t.Fatal(err)
	}

	if err := s.grids.SetPeople(ctx, "feedlayer", "FA", []gridmap.Person{{Role: "grid_worker", Name: "李明"}}); err != nil {
		t.Fatal(err)
	}
	events := feedUntil(t, feed, wake, start, 3, onLayer)
	var kinds []string
	for _, e := range events {
		var ch gridmap.Change
		if err := json.Unmarshal(e.Data, &ch); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, ch.Kind)
	}
	if want := fmt.Sprint([]string{gridmap.ChangeBoundaries, gridmap.ChangeBoundaries, gridmap.ChangePeople}); fmt.Sprint(kinds) != want {
		t.Errorf("boundary events %v, want %v", kinds, want)
	}
	if !strings.Contains(string(events[2].Data), `"codes":["FA"]`) {
		t.Errorf("people change on the feed: %s", events[2].Data)
	}

	t.Run("a people change keeps the tile versions", func(t *testing.T) {
		ts.Forget("")
		after, err := ts.RenderTile(ctx, tile)
		if err != nil {
			t.Fatal(err)
		}
		if after.Version != before.Version {
			t.Errorf("tile over FA changed version %s -> %s", before.Version, after.Version)
		}
	})
	t.Run("a client resuming between boundary events gets the rest", func(t *testing.T) {
		rest := feedUntil(t, feed, wake, events[0].ID, 2, onLayer)
		if rest[0].ID != events[1].ID || rest[1].ID != events[2].ID {
			t.Errorf("resumed after %d: %d, %d; want %d, %d", events[0].ID, rest[0].ID, rest[1].ID, events[1].ID, events[2].ID)
		}
	})
}

// A database with report events and boundary changes from before the feed
// numbered events, upgraded: a client resuming after an old report event id
// gets the old events after it, by id, then everything new.
func TestFeedAfterUpgrade(t *testing.T) {
	ctx := context.Background()
	conn := pgtest.ConnString(t)
	sqlDB, err := sql.Open("pgx", conn)
	if err != nil {
		t.Fatal(err)
	}
	defer sqlDB.Close()
	// Up to the migration before the feed's numbers.
	provider, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.FS, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provider.UpTo(ctx, 9); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlDB.ExecContext(ctx, `INSERT INTO layers (id, name, kind, levels) VALUES ('old', 'old', 'comprehensive', '{district}');
		INSERT INTO layer_changes (layer_id, data_version, area) VALUES ('old', 1, ST_MakeEnvelope(0, 0, 1, 1, 3857));
		INSERT INTO categories (code, name, limit_value, limit_clock) VALUES ('old', 'old', 1, 'urgent_hours');
		INSERT INTO reports (external_id, content_hash, category, location, crs, reported_at, status, tier, due_at, assignment)
		VALUES ('old', '\x00', 'old', ST_SetSRID(ST_MakePoint(100, 10), 4326), 'wgs84', now(), 'reported', 'grid', now(), '{}');
		INSERT INTO report_events (report_id, action, to_status, note) SELECT 1, 'note', 'reported', 'old ' || i FROM generate_series(1, 5) i`); err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(ctx, conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("upgrading: %v", err)
	}
	feed, wake := runFeed(t, db)
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	writeEvent(t, tx, 1, "new")
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got := feedUntil(t, feed, wake, 2, 4, func(gridmap.FeedEvent) bool { return true })
	var notes []string
	for _, e := range got {
		notes = append(notes, fmt.Sprint(e.ID, " ", eventNote(e)))
	}
	if len(got) != 4 || got[3].ID <= 5 || fmt.Sprint(notes[:3]) != "[3 old 3 4 old 4 5 old 5]" || eventNote(got[3]) != "new" {
		t.Errorf("resuming after old event 2: %q", notes)
	}
	if rest, err := feed.Since(ctx, got[3].ID, 100); err != nil || len(rest) != 0 {
		t.Errorf("after the new event: %v %v (the old boundary change is not in the feed)", rest, err)
	}
}

// Events written while no feed ran are numbered in batches, in id order.
func TestFeedNumbersABacklog(t *testing.T) {
	db := pgtest.NewDB(t)
	ctx := context.Background()
	report := newReport(t, db, "backlog")
	const n = 250 // more than two numberings take
	if _, err := db.Pool.Exec(ctx, `INSERT INTO report_events (report_id, action, to_status, note)
		SELECT $1, 'note', 'reported', 'backlog' FROM generate_series(1, $2)`, report, n); err != nil {
		t.Fatal(err)
	}
	feed := postgres.NewFeed(db)
	feed.SetNumberBatch(100)
	wake := runFeedOf(t, feed)
	got := feedUntil(t, feed, wake, 0, n, func(gridmap.FeedEvent) bool { return true })
	var last int64
	for _, e := range got {
		var d struct{ Event struct{ ID int64 } }
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d.Event.ID <= last {
			t.Fatalf("event %d numbered after event %d", d.Event.ID, last)
		}
		last = d.Event.ID
	}
}

func TestFeedQueriesUseTheirIndexes(t *testing.T) {
	db := pgtest.NewDB(t)
	ctx := context.Background()
	// A feed with a history: events from before numbering, numbered ones,
	// a few waiting for their numbers; and boundary changes.
	if _, err := postgres.NewLayerStore(db).PutLayer(ctx, &gridmap.Layer{ID: "plan", Levels: []string{"district"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO categories (code, name, limit_value, limit_clock) VALUES ('plan', 'plan', 1, 'calendar_days');
		INSERT INTO reports (external_id, content_hash, category, location, crs, reported_at, status, tier, due_at, assignment)
		SELECT 'plan-' || i, '\x00', 'plan', ST_SetSRID(ST_MakePoint(100, 10), 4326), 'wgs84', now(), 'reported', 'grid', now(), '{}'
		FROM generate_series(1, 2000) i;
		INSERT INTO report_events (report_id, action, to_status, seq) SELECT r.id + i % 2000, 'note', 'reported', 0 FROM generate_series(1, 20000) i, (SELECT min(id) id FROM reports) r;
		INSERT INTO report_events (report_id, action, to_status) SELECT r.id + i % 2000, 'note', 'reported' FROM generate_series(1, 30000) i, (SELECT min(id) id FROM reports) r;
		INSERT INTO layer_changes (layer_id, data_version, change) SELECT 'plan', i, '{}' FROM generate_series(1, 5000) i;
		UPDATE report_events SET seq = nextval('feed_ids') WHERE seq IS NULL AND id % 1000 <> 0;
		UPDATE layer_changes SET seq = nextval('feed_ids') WHERE id % 1000 <> 0;
		ANALYZE reports; ANALYZE report_events; ANALYZE layer_changes`); err != nil {
		t.Fatal(err)
	}
	var newest, lastOld int64
	if err := db.Pool.QueryRow(ctx, postgres.FeedSQL["marks"]).Scan(&newest, &lastOld); err != nil {
		t.Fatal(err)
	}
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	live, resumed := fmt.Sprintf("%d, %d, 500", newest-5, newest), fmt.Sprintf("%d, %d, 500", lastOld+100, newest)
	tests := []planCase{
		{"marks", "marks", "", []string{"report_events_feed", "layer_changes_feed"}, []string{"report_events", "layer_changes"}},
		{"number", "number", "5000", []string{"report_events_unnumbered", "layer_changes_unnumbered"}, []string{"report_events", "layer_changes"}},
		{"live report events", "report events", live, []string{"report_events_feed"}, []string{"report_events", "reports"}},
		{"resumed report events", "report events", resumed, []string{"report_events_feed"}, []string{"report_events", "reports"}},
		{"report events from before numbering", "old report events", fmt.Sprintf("100, %d, 500", lastOld),
			[]string{"report_events_(feed|pkey)"}, []string{"report_events", "reports"}},
		{"live boundary changes", "boundary changes", live, []string{"layer_changes_feed"}, []string{"layer_changes"}},
		{"resumed boundary changes", "boundary changes", resumed, []string{"layer_changes_feed"}, []string{"layer_changes"}},
	}
	checkPlans(t, conn, postgres.FeedSQL, tests)
}
