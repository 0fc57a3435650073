package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// soakLength is how long TestSoak runs: GRIDMAP_SOAK (a Go duration; make
// soak sets 5m), else 40 s within make test.
func soakLength(t *testing.T) time.Duration {
	if v := os.Getenv("GRIDMAP_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Second {
			t.Fatalf("GRIDMAP_SOAK=%q: give a duration of 10s or more, such as 5m", v)
		}
		return d
	}
	return 40 * time.Second
}

// TestSoak runs a day's mix on loopback, on a pool of four connections,
// for soakLength: lookups, tiles, intake, workflow moves, boundary
// edits, people changes and live-feed clients at once. Every request
// answers as it should; heap, goroutines and connections in use, sampled
// every second, show no growth from the first third of the run to the
// last; p50 and p99 per route are logged.
func TestSoak(t *testing.T) {
	length := soakLength(t)
	db := pgtest.SharedWith(t, postgres.Options{MaxConns: 4})
	ts := newTestServerOn(t, Config{}, db)
	// A district of two streets of two grids near 117.5 E 28.5 N, where no
	// other test draws.
	if r := do(t, "PUT", ts.url+"/v1/layers/soak", `{"levels":["district","street","grid"]}`); r.status/100 != 2 {
		t.Fatalf("layer: %d %s", r.status, r.body)
	}
	square := func(x, y, w float64) string {
		return fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,%g],[%g,%g],[%g,%g],[%g,%g],[%g,%g]]]}`, x, y, x+w, y, x+w, y+w, x, y+w, x, y)
	}
	features := []string{feat("SD", "", square(117.5, 28.5, 0.04))}
	for s := range 2 {
		street := fmt.Sprintf("SS%d", s)
		features = append(features, feat(street, "SD", fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,28.5],[%g,28.5],[%g,28.54],[%g,28.54],[%g,28.5]]]}`,
			117.5+0.02*float64(s), 117.52+0.02*float64(s), 117.52+0.02*float64(s), 117.5+0.02*float64(s), 117.5+0.02*float64(s))))
		for g := range 2 {
			code := fmt.Sprintf("SG%d%d", s, g)
			features = append(features, fmt.Sprintf(`{"type":"Feature","properties":{"code":%q,"name":"%s 网格","level":"grid","parent":%q},"geometry":%s}`,
				code, code, street, square(117.5+0.02*float64(s), 28.5+0.02*float64(g), 0.02)))
		}
	}
	if r := do(t, "POST", ts.url+"/v1/layers/soak/import", `{"type":"FeatureCollection","features":[`+strings.Join(features, ",")+`]}`); r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	for _, s := range []struct{ path, body string }{
		{"/v1/departments/soak1", `{"name":"城管"}`},
		{"/v1/categories/soak", `{"name":"占道经营","departments":["soak1"],"limit":{"value":2,"clock":"working_days"}}`},
	} {
		if r := do(t, "PUT", ts.url+s.path, s.body); r.status/100 != 2 {
			t.Fatalf("%s: %d %s", s.path, r.status, r.body)
		}
	}
	eventually(t, "the layer reaches the lookup index", func() bool {
		return strings.Contains(string(do(t, "GET", ts.url+"/v1/lookup?layer=soak&lon=117.505&lat=28.505", "").body), `"SG00"`)
	})

	client := &http.Client{Timeout: 30 * time.Second}
	var mu sync.Mutex
	latencies := map[string][]time.Duration{}
	call := func(route, method, path, body string, want ...int) ([]byte, error) {
		req, _ := http.NewRequest(method, ts.url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+ts.admin)
		start := time.Now()
		res, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		mu.Lock()
		latencies[route] = append(latencies[route], time.Since(start))
		mu.Unlock()
		if !slices.Contains(want, res.StatusCode) {
			return nil, fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, b)
		}
		return b, nil
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make(chan error, 100)
	var wg sync.WaitGroup
	var requests atomic.Int64
	worker := func(op func(i int) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				if err := op(i); err != nil {
					select {
					case errs <- err:
					default:
					}
					cancel()
					return
				}
				requests.Add(1)
			}
		}()
	}
	// Live-feed clients, reading whatever comes, for the whole run.
	for range 3 {
		events, stop := openStream(t, ts.url, "", "Authorization", "Bearer "+ts.admin)
		defer stop()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case _, ok := <-events:
					if !ok {
						return
					}
				}
			}
		}()
	}
	for w := range 3 {
		worker(func(i int) error {
			_, err := call("GET /v1/lookup", "GET", fmt.Sprintf("/v1/lookup?lon=%g&lat=%g", 117.501+float64((i+w)%39)*0.001, 28.501+float64(i%37)*0.001), "", 200)
			return err
		})
	}
	worker(func(i int) error {
		_, err := call("GET /tiles", "GET", "/tiles/"+[]string{"soak", "reports"}[i%2]+"/"+tileAt(12+i%5, 117.52, 28.52)+".mvt", "", 200, 204)
		return err
	})
	// Intake and moves: each report filed is registered, dispatched and
	// closed in turn.
	for w := range 2 {
		worker(func(i int) error {
			b, err := call("POST /v1/reports", "POST", "/v1/reports", fmt.Sprintf(`{"external_id":"soak-%d-%d-%d","category":"soak","location":{"type":"Point","coordinates":[%g,%g]}}`,
				w, i, time.Now().UnixNano(), 117.501+float64(i%39)*0.001, 28.501+float64(w)*0.02), 201)
			if err != nil {
				return err
			}
			var r struct{ ID int64 }
			if err := json.NewDecoder(bytes.NewReader(b)).Decode(&r); err != nil {
				return err
			}
			for _, m := range []string{"register", "dispatch", "start", "resolve", "verify", "close"} {
				if _, err := call("POST /v1/reports/{id}/events", "POST", fmt.Sprintf("/v1/reports/%d/events", r.ID), `{"action":"`+m+`"}`, 200); err != nil {
					return err
				}
			}
			return nil
		})
	}
	// Edits: a grid's people change, and its name back and forth through
	// a changeset-free rename of its properties.
	worker(func(i int) error {
		_, err := call("PUT /v1/layers/{l}/grids/{c}/people", "PUT", "/v1/layers/soak/grids/SG01/people",
			fmt.Sprintf(`{"people":[{"role":"grid_worker","name":"网格员%d"}]}`, i%7), 200)
		if err == nil {
			_, err = call("GET /v1/reports", "GET", "/v1/reports?limit=20", "", 200)
		}
		time.Sleep(20 * time.Millisecond)
		return err
	})

	// Samples every second: heap in use after a collection, goroutines,
	// connections in use.
	type sample struct {
		heap       uint64
		goroutines int
		conns      int32
	}
	var samples []sample
	deadline := time.Now().Add(length)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(time.Second)
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		samples = append(samples, sample{m.HeapInuse, runtime.NumGoroutine(), db.Pool.Stat().AcquiredConns()})
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	third := len(samples) / 3
	mean := func(s []sample, f func(sample) float64) float64 {
		var sum float64
		for _, x := range s {
			sum += f(x)
		}
		return sum / float64(len(s))
	}
	for _, m := range []struct {
		name  string
		of    func(sample) float64
		slack float64 // growth allowed beyond 20%, in the figure's unit
	}{
		{"heap in use (MB)", func(s sample) float64 { return float64(s.heap) / (1 << 20) }, 8},
		{"goroutines", func(s sample) float64 { return float64(s.goroutines) }, 10},
	} {
		first, last := mean(samples[:third], m.of), mean(samples[len(samples)-third:], m.of)
		t.Logf("%s: first third %.1f, last third %.1f", m.name, first, last)
		if last > first*1.2+m.slack {
			t.Errorf("%s grew from %.1f to %.1f over the run", m.name, first, last)
		}
	}
	// The load over, every connection goes back to the pool.
	eventually(t, "the connections go back to the pool", func() bool { return db.Pool.Stat().AcquiredConns() == 0 })
	t.Logf("connections in use during the run: first third %.1f, last third %.1f of %d",
		mean(samples[:third], func(s sample) float64 { return float64(s.conns) }),
		mean(samples[len(samples)-third:], func(s sample) float64 { return float64(s.conns) }), db.Pool.Config().MaxConns)
	routes := make([]string, 0, len(latencies))
	for r := range latencies {
		routes = append(routes, r)
	}
	slices.Sort(routes)
	for _, r := range routes {
		l := latencies[r]
		slices.Sort(l)
		t.Logf("%-40s %6d requests  p50 %8v  p99 %8v", r, len(l), l[len(l)/2].Round(time.Microsecond), l[len(l)*99/100].Round(time.Microsecond))
	}
	t.Logf("%d requests in %v on a pool of %d", requests.Load(), length, db.Pool.Config().MaxConns)
}
