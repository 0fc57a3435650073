package server

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridmap/gridmap/dispatch"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// TestStatsNYC311 files the real 311 requests of New York (2025 Q1) on the
// borough > NTA > tract hierarchy, moves some of them, and checks the
// figures per NTA and per borough over February against an independent
// GROUP BY over the reports table (the primary chain's codes in the
// assignment JSON, the flags from the event history).
func TestStatsNYC311(t *testing.T) {
	nyc := pgtest.NYCDir(t)
	ts, db := nyc311World(t)
	ctx := context.Background()
	bodies := nyc311Bodies(t, filepath.Join(nyc, "incidents_311_animals_2025Q1.csv"))

	// Filed by 8 clients: 201, or 200 where another test filed them first.
	ids := make([]int64, len(bodies))
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				res, err := http.Post(ts.url+"/v1/reports", "application/json", strings.NewReader(bodies[i]))
				if err != nil {
					t.Error(err)
					continue
				}
				var r struct{ ID int64 }
				err = json.NewDecoder(res.Body).Decode(&r)
				res.Body.Close()
				if res.StatusCode/100 != 2 || err != nil {
					t.Errorf("report %d: %d %v", i, res.StatusCode, err)
				}
				ids[i] = r.ID
			}
		}()
	}
	for i := range bodies {
		work <- i
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// Some move on: every 5th is registered, every 7th rejected at intake,
	// every 10th closed, every 20th extended (as far as their status
	// allows, should another run have moved them already).
	for i, id := range ids {
		var actions []string
		switch {
		case i%10 == 0:
			actions = toClose
		case i%20 == 5:
			actions = []string{"register", "dispatch", "extend"}
		case i%5 == 0:
			actions = []string{"register"}
		case i%7 == 0:
			actions = []string{"reject"}
		}
		for _, a := range actions {
			if r := do(t, "POST", fmt.Sprintf("%s/v1/reports/%d/events", ts.url, id), `{"action":"`+a+`"}`); r.status != 200 && r.status != 409 {
				t.Fatalf("report %d %s: %d %s", id, a, r.status, r.body)
			}
		}
	}

	from, to := time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct{ group, level, want string }{
		{"grid", "nta", "nta"},
		{"district", "", "borough"},
		{"grid", "", "tract"},
	} {
		t.Run(c.group+" "+c.want, func(t *testing.T) {
			q := fmt.Sprintf("layer=nyc311&group=%s&level=%s&from=%s&to=%s", c.group, c.level, from.Format(time.RFC3339), to.Format(time.RFC3339))
			st := getStats(t, ts.url, q)
			if st.Level != c.want {
				t.Errorf("level %q, want %q", st.Level, c.want)
			}
			got := map[string][6]int64{}
			for _, r := range st.Rows {
				got[r.Key] = [6]int64{r.Received, r.Registered, r.Closed, r.ClosedOnTime, r.Extended, r.Overdue}
			}
			rows, err := db.Pool.Query(ctx, `SELECT c->>'code', count(*),
				  count(*) FILTER (WHERE EXISTS (SELECT 1 FROM report_events e WHERE e.report_id = r.id AND e.action = 'register')),
				  count(*) FILTER (WHERE r.status = 'closed'),
				  count(*) FILTER (WHERE EXISTS (SELECT 1 FROM report_events e WHERE e.report_id = r.id AND e.to_status = 'closed' AND e.at <= r.due_at)),
				  count(*) FILTER (WHERE EXISTS (SELECT 1 FROM report_events e WHERE e.report_id = r.id AND e.action = 'extend')),
				  count(*) FILTER (WHERE r.due_at < now() AND r.status <> ALL($4))
				FROM reports r, jsonb_array_elements(r.assignment->'primary'->'chain') c
				WHERE r.layer_id = 'nyc311' AND c->>'level' = $1 AND r.reported_at >= $2 AND r.reported_at < $3
				GROUP BY 1`, c.want, from, to, dispatch.ClockStopped)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string][6]int64{}
			total := int64(0)
			for rows.Next() {
				var code string
				var v [6]int64
				if err := rows.Scan(&code, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]); err != nil {
					t.Fatal(err)
				}
				want[code] = v
				total += v[0]
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if len(want) < 5 || total < 1000 {
				t.Fatalf("the window holds %d reports in %d groups; expected about a third of 4,907", total, len(want))
			}
			if len(got) != len(want) {
				t.Errorf("%d groups, want %d", len(got), len(want))
			}
			for k, w := range want {
				if got[k] != w {
					t.Errorf("%s: received, registered, closed, on time, extended, overdue = %v, want %v", k, got[k], w)
				}
			}
			if st.Total.Received < total {
				t.Errorf("total received %d, below the %d of the groups", st.Total.Received, total)
			}
			t.Logf("%d reports in %d groups at level %s", total, len(want), c.want)
		})
	}
}

// nyc311Bodies reads the 311 requests with coordinates as POST /v1/reports
// bodies, as TestNYC311Reports files them.
func nyc311Bodies(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd := csv.NewReader(f)
	header, err := rd.Read()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	var bodies []string
	for {
		rec, err := rd.Read()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		lat, err1 := strconv.ParseFloat(rec[col["Latitude"]], 64)
		lon, err2 := strconv.ParseFloat(rec[col["Longitude"]], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		created, err := time.ParseInLocation("1/2/2006 15:04", rec[col["Created Date"]], time.UTC)
		if err != nil {
			t.Fatalf("created date %q: %v", rec[col["Created Date"]], err)
		}
		b, _ := json.Marshal(map[string]any{"external_id": "311-" + rec[col["Unique Key"]], "category": "animals",
			"description": rec[col["Complaint Type"]] + ": " + rec[col["Descriptor"]], "source": "311",
			"location": map[string]any{"type": "Point", "coordinates": []float64{lon, lat}}, "reported_at": created})
		bodies = append(bodies, string(b))
	}
	if len(bodies) < 4800 {
		t.Fatalf("read %d requests with coordinates, expected about 4,907", len(bodies))
	}
	return bodies
}
