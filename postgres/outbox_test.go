package postgres_test

import (
	"context"
	"fmt"
	"io"
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

// flakyReceiver is a department's webhook that hangs on its first hangs
// requests until the outbox gives up, then fails the next failures with a
// 500, then takes everything; it records by Idempotency-Key the
// deliveries it answered 2xx, in order, when each request came, and when
// its last hang ended.
type flakyReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	hangs    int
	failures int
	accepted map[string]int
	order    []string
	times    []time.Time
	last     time.Time // the last acceptance
	hangEnd  time.Time
}

func newFlakyReceiver(t *testing.T, hangs, failures int) *flakyReceiver {
	f := &flakyReceiver{hangs: hangs, failures: failures, accepted: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read whole, so that the server notices the outbox hanging up.
		_, _ = io.Copy(io.Discard, r.Body)
		f.mu.Lock()
		f.times = append(f.times, time.Now())
		switch {
		case f.hangs > 0:
			f.hangs--
			f.mu.Unlock()
			<-r.Context().Done() // the outbox gave up: no answer counts
			f.mu.Lock()
			f.hangEnd = time.Now()
			f.mu.Unlock()
			return
		case f.failures > 0:
			f.failures--
			f.mu.Unlock()
			http.Error(w, "down for maintenance", http.StatusInternalServerError)
			return
		}
		key := r.Header.Get("Idempotency-Key")
		f.accepted[key]++
		f.order = append(f.order, key)
		f.last = time.Now()
		f.mu.Unlock()
	}))
	t.Cleanup(f.Close)
	return f
}

// TestWebhooksSurviveFailingReceivers: one department's receiver hangs
// past the outbox's timeout, then fails twice, then recovers; another's
// works. Two instances deliver at once. The working department gets all
// its deliveries while the other hangs; the other's retries wait at least
// their backoff (doubling); in the end every delivery has arrived once per
// Idempotency-Key, each department's in order.
func TestWebhooksSurviveFailingReceivers(t *testing.T) {
	ctx := context.Background()
	db := pgtest.Shared(t)
	flaky, healthy := newFlakyReceiver(t, 1, 2), newFlakyReceiver(t, 0, 0)
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
	// 12 deliveries each: more than a round takes of a department.
	want := map[string][]string{}
	for i := range 12 {
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
	const base, timeout = 200 * time.Millisecond, 2 * time.Second
	var wg sync.WaitGroup
	done := make(chan struct{})
	stopped := sync.OnceFunc(func() { close(done); wg.Wait() })
	t.Cleanup(stopped) // before the receivers close, should the test end early
	for range 2 {      // two instances
		out := postgres.NewOutbox(db, &http.Client{})
		out.RetryBase, out.Timeout = base, timeout
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := out.Deliver(ctx); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		var left int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE department IN ('hookflaky', 'hookok') AND delivered_at IS NULL`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			rows, _ := db.Pool.Query(ctx, `SELECT id, department, attempts, next_attempt_at - now(), last_error FROM outbox
				WHERE department IN ('hookflaky', 'hookok') AND delivered_at IS NULL ORDER BY id`)
			for rows.Next() {
				var id int64
				var dep, lastErr string
				var attempts int
				var next time.Duration
				_ = rows.Scan(&id, &dep, &attempts, &next, &lastErr)
				t.Logf("due: %d %s attempts %d next in %v: %s", id, dep, attempts, next, lastErr)
			}
			t.Fatalf("a minute on, %d deliveries are still due", left)
		}
	}
	stopped()
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
	if !healthy.last.Before(flaky.hangEnd) {
		t.Errorf("the working department's last delivery came at %v, after the other's hang ended at %v: it waited on it",
			healthy.last.Format("15:04:05.000"), flaky.hangEnd.Format("15:04:05.000"))
	}
	// The hang, two failures, then the deliveries: each retry no sooner
	// than its backoff after the attempt before ended. The receiver sees
	// a request after the sender's timeout has begun, by however long the
	// request took to arrive (milliseconds on a busy machine): after the
	// hang, the retry comes the timeout and the backoff after the request
	// left, so up to that long sooner after the receiver saw it.
	times := flaky.times
	if len(times) != 3+len(want["hookflaky"]) {
		t.Fatalf("the flaky receiver saw %d requests; want the hang, 2 failures and %d deliveries", len(times), len(want["hookflaky"]))
	}
	const arrival = 100 * time.Millisecond
	for i, min := range []time.Duration{timeout + base - arrival, 2 * base, 4 * base} {
		if gap := times[i+1].Sub(times[i]); gap < min {
			t.Errorf("retry %d came %v after the attempt before; its backoff is %v", i+1, gap, min)
		}
	}
}
