package server

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

func TestRequestTimeout(t *testing.T) {
	ctx := context.Background()
	t.Run("database work past the deadline answers 503, and the server goes on", func(t *testing.T) {
		const timeout = 500 * time.Millisecond
		ps := newPoolServer(t, Config{RequestTimeout: timeout}, postgres.Options{MaxConns: 2})
		// Another session's lock keeps the listing waiting past the deadline.
		tx, err := pgtest.Shared(t).Pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "LOCK TABLE reports IN ACCESS EXCLUSIVE MODE"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		r := do(t, "GET", ps.url+"/v1/reports", "")
		took := time.Since(start)
		if r.status != 503 {
			t.Fatalf("listing blocked past its deadline: %d %s", r.status, r.body)
		}
		if e := r.errorOf(t); e.Code != gridmap.EUNAVAILABLE || !strings.Contains(e.Message, "took longer") {
			t.Errorf("error %+v, want %s saying it took too long", e, gridmap.EUNAVAILABLE)
		}
		if r.header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
		if took < timeout || took > timeout+5*time.Second {
			t.Errorf("answered after %v, want soon after the %v deadline", took, timeout)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		// A cancelled statement's connection comes back once PostgreSQL
		// has confirmed the cancel, a moment after the answer; then the
		// listings answer.
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if st := ps.db.PoolStats(); st.InUse == 0 && st.Waiting == 0 {
				break
			}
		}
		for range 3 {
			if r := do(t, "GET", ps.url+"/v1/reports", ""); r.status != 200 {
				t.Fatalf("after the lock went: %d %s", r.status, r.body)
			}
		}
		// A cancelled statement's connection comes back once PostgreSQL
		// has confirmed the cancel, a moment after the answer.
		var st gridmap.PoolStats
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if st = ps.db.PoolStats(); st.InUse == 0 && st.Waiting == 0 {
				break
			}
		}
		if st.InUse != 0 || st.Waiting != 0 {
			t.Errorf("connections still held after the requests: %+v", st)
		}
	})

	// A deadline passed before the handler runs fails every route whose
	// work needs the database, and none without a deadline.
	ps := newPoolServer(t, Config{RequestTimeout: time.Nanosecond}, postgres.Options{})
	t.Run("a deadline already passed answers 503", func(t *testing.T) {
		r := do(t, "GET", ps.url+"/v1/reports", "")
		if r.status != 503 || r.errorOf(t).Code != gridmap.EUNAVAILABLE {
			t.Errorf("%d %s", r.status, r.body)
		}
		if r := do(t, "GET", ps.url+"/healthz", ""); r.status != 200 {
			t.Errorf("healthz %d", r.status)
		}
	})
	t.Run("imports have a deadline of their own", func(t *testing.T) {
		r := do(t, "POST", ps.url+"/v1/layers/deadline/import?levels=district,street",
			`{"type":"FeatureCollection","features":[`+feat("DD", "", square(0, 0, 1))+`]}`)
		if r.status != 200 {
			t.Errorf("import under a 1 ns request timeout: %d %s", r.status, r.body)
		}
	})
	t.Run("the live feed has no deadline", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "GET", ps.url+"/v1/events", nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		line, err := bufio.NewReader(res.Body).ReadString('\n')
		if res.StatusCode != 200 || err != nil || !strings.HasPrefix(line, "retry:") {
			t.Errorf("events: %d %q %v", res.StatusCode, line, err)
		}
	})
}
