package server

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// poolServer is a server with a database pool of its own on the package's
// test database, so that its pool figures are its requests' alone.
type poolServer struct {
	url string
	db  *postgres.DB
}

func newPoolServer(t *testing.T, cfg Config, opts postgres.Options) *poolServer {
	t.Helper()
	db := pgtest.SharedWith(t, opts)
	grids := postgres.NewGridStore(db)
	access := postgres.NewAccessStore(db)
	s := New(cfg, Deps{Layers: postgres.NewLayerStore(db), Grids: grids, Importer: grids, Editor: grids, Drafts: grids,
		Reports: postgres.NewReportStore(db, postgres.NewLocator(db), shanghai), Feed: postgres.NewFeed(db),
		PoolStats: db.PoolStats, Ready: func(context.Context) error { return nil }, Access: access}, slog.New(slog.DiscardHandler))
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	signInAsAdmin(t, access, hs.Listener.Addr().String())
	return &poolServer{url: hs.URL, db: db}
}

// metric returns the value of the sample named exactly (labels included)
// in a /metrics body.
func metric(t *testing.T, body, sample string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in /metrics:\n%s", sample, body)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPoolMetrics(t *testing.T) {
	ps := newPoolServer(t, Config{}, postgres.Options{MaxConns: 3})
	for range 5 {
		for _, path := range []string{"/v1/reports", "/v1/layers"} {
			if r := do(t, "GET", ps.url+path, ""); r.status != 200 {
				t.Fatalf("GET %s: %d %s", path, r.status, r.body)
			}
		}
	}
	r := do(t, "GET", ps.url+"/metrics", "")
	if r.status != 200 {
		t.Fatalf("metrics %d", r.status)
	}
	body := string(r.body)
	if v := metric(t, body, "gridmap_db_pool_max_connections"); v != 3 {
		t.Errorf("max connections %v, want 3", v)
	}
	inUse, idle := metric(t, body, `gridmap_db_pool_connections{state="in_use"}`), metric(t, body, `gridmap_db_pool_connections{state="idle"}`)
	if inUse != 0 || idle < 1 || idle > 3 {
		t.Errorf("between requests: %v in use, %v idle; want none in use and 1 to 3 idle", inUse, idle)
	}
	if v := metric(t, body, "gridmap_db_pool_waiting"); v != 0 {
		t.Errorf("%v waiting between requests", v)
	}
	acquires := metric(t, body, "gridmap_db_pool_acquires_total")
	if acquires < 10 {
		t.Errorf("%v acquires after 10 requests that read the database", acquires)
	}
	if v := metric(t, body, "gridmap_db_pool_wait_seconds_count"); v != acquires {
		t.Errorf("wait histogram counts %v waits, acquires_total %v", v, acquires)
	}
	if v := metric(t, body, `gridmap_db_pool_wait_seconds_bucket{le="+Inf"}`); v != acquires {
		t.Errorf("wait histogram's +Inf bucket %v, want %v", v, acquires)
	}
	metric(t, body, `gridmap_db_pool_wait_seconds_bucket{le="0.0001"}`)
	metric(t, body, "gridmap_db_pool_wait_seconds_sum")
	metric(t, body, "gridmap_db_pool_acquire_failures_total")
	if v := metric(t, body, "gridmap_db_pool_wait_max_seconds"); v >= 1 {
		t.Errorf("a request waited %vs for a connection with the pool idle", v)
	}
	if max := ps.db.PoolStats().WaitMax; max >= time.Second {
		t.Errorf("longest wait %v", max)
	}
	if strings.Contains(body, `gridmap_db_pool_connections{state="opening"} -`) {
		t.Errorf("negative opening connections")
	}
}
