package postgres_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// flakyReceiver is a department's webhook that fails its first failures
// requests with a 500, then hangs on the next hangs until released (longer
// than the outbox waits), then takes everything; it counts by
// Idempotency-Key the deliveries it answered 2xx and when each request
// came.
type flakyReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	failures int
	hangs    int
	release  chan struct{}
	accepted map[string]int
	order    []string // the keys accepted, in the order they came
	times    []time.Time
}

func newFlakyReceiver(t *testing.T, failures, hangs int) *flakyReceiver {
	f := &flakyReceiver{failures: failures, hangs: hangs, release: make(chan struct{}), accepted: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.times = append(f.times, time.Now())
		switch {
		case f.failures > 0:
			f.failures--
			f.mu.Unlock()
			http.Error(w, "down for maintenance", http.StatusInternalServerError)
			return
		case f.hangs > 0:
			f.hangs--
			f.mu.Unlock()
			select {
			case <-f.release:
			case <-r.Context().Done():
			}
			return // the outbox gave up first: no answer counts
		}
		f.accepted[r.Header.Get("Idempotency-Key")]++
		f.order = append(f.order, r.Header.Get("Idempotency-Key"))
		f.mu.Unlock()
	}))
	t.Cleanup(func() {
		close(f.release)
		f.Close()
	})
	return f
}

// TestWebhooksSurviveFailingReceivers: one department's receiver fails,
// then hangs past the outbox's timeout, then recovers; another's works.
// The working one gets its deliveries while the other hangs; retries back
// off (each wait at least the one before); after recovery every delivery
// has arrived, once per Idempotency-Key, in each department's order.
func TestWebhooksSurviveFailingReceivers(t *testing.T) {
	ctx := context.Background()
	db := pgtest.Shared(t)
	flaky, healthy := newFlakyReceiver(t, 3, 2), newFlakyReceiver(t, 0, 0)
	cats := postgres.NewCategoryStore(db)
	for code, url := range map[string]string{"hookflaky": flaky.URL, "hookok": healthy.URL} {
		if _, err := cats.PutDepartment(ctx, &gridmap.Department{Code: code, Name: code, WebhookURL: url}, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if _, err := db.Pool.Exec(context.Background(), `DELETE FROM outbox WHERE department IN ('hookflaky', 'hookok')`); err != nil {
			t.Error(err)
		}
	})
	// A report event for the deliveries to be about.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO categories (code, name, limit_value, limit_clock) VALUES ('hook-test', 'h', 3, 'working_days')
		ON CONFLICT DO NOTHING`); err != nil {
		t.Fatal(err)
	}
	var event int64
	if err := db.Pool.QueryRow(ctx, `WITH r AS (
		  INSERT INTO reports (external_id, content_hash, category, location, crs, reported_at, status, tier, due_at, assignment)
		  VALUES ('hook-test-' || $1, '\x00', 'hook-test', ST_SetSRID(ST_MakePoint(-170, -80), 4326), 'wgs84', now(), 'reported',
		    'grid', now() + interval '1 day', '{}')
		  RETURNING id)
		INSERT INTO report_events (report_id, action, to_status) SELECT id, 'report', 'reported' FROM r RETURNING id`,
		strconv.FormatInt(time.Now().UnixNano(), 36)).Scan(&event); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	for i := range 4 {
		for _, dep := range []string{"hookflaky", "hookok"} {
			var id int64
			if err := db.Pool.QueryRow(ctx, `INSERT INTO outbox (department, url, event_id, payload)
				SELECT code, webhook_url, $2, jsonb_build_object('n', $3::int) FROM departments WHERE code = $1 RETURNING id`,
				dep, event, i).Scan(&id); err != nil {
				t.Fatal(err)
			}
			want[dep] = append(want[dep], strconv.FormatInt(id, 10))
		}
	}
	out := postgres.NewOutbox(db, &http.Client{})
	out.RetryBase, out.Timeout = 200*time.Millisecond, 2*time.Second

	// The first rounds: the flaky receiver fails three times, then
	// hangs; the healthy one has everything by then.
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := out.Deliver(ctx); err != nil {
			t.Fatal(err)
		}
		healthy.mu.Lock()
		done := len(healthy.accepted) == len(want["hookok"])
		healthy.mu.Unlock()
		flaky.mu.Lock()
		hanging := flaky.hangs < 2
		flaky.mu.Unlock()
		if done && hanging {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a minute on: the healthy receiver took %d of %d", len(healthy.accepted), len(want["hookok"]))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Then until everything is in.
	for {
		if _, err := out.Deliver(ctx); err != nil {
			t.Fatal(err)
		}
		var left int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE department IN ('hookflaky', 'hookok') AND delivered_at IS NULL`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a minute on, %d deliveries are still due", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for dep, r := range map[string]*flakyReceiver{"hookflaky": flaky, "hookok": healthy} {
		r.mu.Lock()
		for k, n := range r.accepted {
			if n != 1 {
				t.Errorf("%s: delivery %s accepted %d times", dep, k, n)
			}
		}
		if fmt.Sprint(r.order) != fmt.Sprint(want[dep]) {
			t.Errorf("%s accepted %v; want each once, in order: %v", dep, r.order, want[dep])
		}
		r.mu.Unlock()
	}
	// The flaky receiver's retries waited longer each time: the waits
	// between its requests grow (the hangs count the timeout too).
	flaky.mu.Lock()
	times := flaky.times
	flaky.mu.Unlock()
	if len(times) < 6 {
		t.Fatalf("the flaky receiver saw %d requests; want its 3 failures, 2 hangs and the deliveries", len(times))
	}
	for i := 2; i < 5; i++ {
		before, after := times[i-1].Sub(times[i-2]), times[i].Sub(times[i-1])
		if after < before {
			t.Errorf("retry %d came %v after the one before, which came %v after its own: the backoff shrank", i, after, before)
		}
	}
}
