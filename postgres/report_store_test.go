package postgres_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
)

func rect(x0, y0, x1, y1 float64) string {
	return fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,%g],[%g,%g],[%g,%g],[%g,%g],[%g,%g]]]}`, x0, y0, x1, y0, x1, y1, x0, y1, x0, y0)
}

// reportWorld makes layer rp near Shanghai: district D split into streets
// S1 (west) and S2 (east), each into two grids, 0.01 degrees (about 950 m)
// wide; a departmental layer rpbeats with beats P1 (west) and P2 (east);
// departments cg and police (with rpbeats); categories 01 (cg, 4 working
// hours, 1 urgent hour) and 02 (cg and police). It returns a ReportStore
// whose lookup index has loaded all of it.
func reportWorld(t *testing.T) (*postgres.ReportStore, *postgres.CategoryStore) {
	t.Helper()
	ctx := context.Background()
	s := newLayer(t, "rp")
	layer := collection(
		feature("D", "district", "", rect(121, 31, 121.04, 31.02)),
		feature("S1", "street", "D", rect(121, 31, 121.02, 31.02)),
		feature("S2", "street", "D", rect(121.02, 31, 121.04, 31.02)),
		feature("G11", "grid", "S1", rect(121, 31, 121.01, 31.02)),
		feature("G12", "grid", "S1", rect(121.01, 31, 121.02, 31.02)),
		feature("G21", "grid", "S2", rect(121.02, 31, 121.03, 31.02)),
		feature("G22", "grid", "S2", rect(121.03, 31, 121.04, 31.02)))
	if _, err := importString(s, "rp", layer, gridmap.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.layers.PutLayer(ctx, &gridmap.Layer{ID: "rpbeats", Kind: gridmap.KindDepartmental, Levels: []string{"beat"}}); err != nil {
		t.Fatal(err)
	}
	beats := collection(feature("P1", "beat", "", rect(121, 31, 121.02, 31.02)), feature("P2", "beat", "", rect(121.02, 31, 121.04, 31.02)))
	if _, err := importString(s, "rpbeats", beats, gridmap.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	db := pgtest.Shared(t)
	cats := postgres.NewCategoryStore(db)
	for _, d := range []*gridmap.Department{{Code: "cg", Name: "城管"}, {Code: "police", Name: "公安", Layer: "rpbeats"}} {
		if _, err := cats.PutDepartment(ctx, d, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []*gridmap.Category{
		{Code: "01", Name: "市容环境", Departments: []string{"cg"}, Limit: gridmap.Limit{Value: 4, Clock: gridmap.ClockWorkingHours},
			UrgentLimit: &gridmap.Limit{Value: 1, Clock: gridmap.ClockUrgentHours}},
		{Code: "02", Name: "街面秩序", Departments: []string{"cg", "police"}, Limit: gridmap.Limit{Value: 2, Clock: gridmap.ClockWorkingDays}},
	} {
		if _, err := cats.PutCategory(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	loc := postgres.NewLocator(db)
	if err := loc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	tz, _ := time.LoadLocation("Asia/Shanghai")
	return postgres.NewReportStore(db, loc, tz), cats
}

func pointReport(id string, lon, lat float64) *gridmap.Report {
	return &gridmap.Report{ExternalID: id, Category: "01", Description: "垃圾堆放", Source: "citizen_app",
		Location: geojson.NewGeometry(orb.Point{lon, lat})}
}

func TestReports(t *testing.T) {
	reports, cats := reportWorld(t)
	ctx := context.Background()
	tz, _ := time.LoadLocation("Asia/Shanghai")
	kx, _ := geo.MetresPerDegree(31.01)

	t.Run("assignment: owner, co-owners, tier, departments, boundary version", func(t *testing.T) {
		cases := []struct {
			name, category    string
			lon, lat          float64
			primary, coOwners string
			tier, departments string
		}{
			{"inside one grid", "01", 121.005, 31.01, "G11", "", gridmap.TierGrid, "cg"},
			{"10 m from a grid of the same street", "01", 121.01 - 10/kx, 31.01, "G11", "G12", gridmap.TierStreet, "cg"},
			{"10 m from the next street", "01", 121.02 + 10/kx, 31.01, "G21", "G12", gridmap.TierDistrict, "cg"},
			{"two departments, the police beat at the point", "02", 121.035, 31.01, "G22", "", gridmap.TierStreet, "cg,police:P2"},
		}
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := pointReport(fmt.Sprintf("assign-%d", i), c.lon, c.lat)
				r.Category = c.category
				created, err := reports.CreateReport(ctx, r)
				if err != nil || !created {
					t.Fatalf("create: %v %v", created, err)
				}
				a := r.Assignment
				var co, depts []string
				for _, o := range a.CoOwners {
					co = append(co, o.Code)
				}
				for _, d := range a.Departments {
					s := d.Code
					if d.Unit != nil {
						s += ":" + d.Unit.Code
					}
					depts = append(depts, s)
				}
				if a.Layer != "rp" || a.Primary == nil || a.Primary.Code != c.primary || strings.Join(co, ",") != c.coOwners ||
					a.Tier != c.tier || strings.Join(depts, ",") != c.departments || a.BoundaryVersion == 0 || a.Explanation == "" {
					t.Errorf("got %+v", a)
				}
				if len(a.Primary.Chain) != 3 || a.Primary.Chain[0].Code != "D" {
					t.Errorf("primary chain %+v", a.Primary.Chain)
				}
				stored, err := reports.Report(ctx, r.ID)
				if err != nil || stored.Assignment.Primary.Code != c.primary || stored.Status != gridmap.StatusReported {
					t.Errorf("read back: %+v %v", stored, err)
				}
			})
		}
	})

	t.Run("due dates follow the working-hours clock and the holiday calendar", func(t *testing.T) {
		friday := time.Date(2026, 11, 20, 17, 30, 0, 0, tz)
		r := pointReport("due-1", 121.005, 31.01)
		r.ReportedAt = friday
		if _, err := reports.CreateReport(ctx, r); err != nil {
			t.Fatal(err)
		}
		if got := r.Assignment.DueAt.In(tz).Format("Mon 2006-01-02 15:04"); got != "Mon 2026-11-23 11:30" {
			t.Errorf("due %s, want Monday 11:30", got)
		}
		if err := cats.PutCalendarDay(ctx, gridmap.CalendarDay{Date: "2026-11-23", Working: false, Name: "test holiday"}); err != nil {
			t.Fatal(err)
		}
		r = pointReport("due-2", 121.005, 31.01)
		r.ReportedAt = friday
		if _, err := reports.CreateReport(ctx, r); err != nil {
			t.Fatal(err)
		}
		if got := r.Assignment.DueAt.In(tz).Format("Mon 2006-01-02 15:04"); got != "Tue 2026-11-24 11:30" {
			t.Errorf("with Monday a holiday: due %s, want Tuesday 11:30", got)
		}
		r = pointReport("due-3", 121.005, 31.01)
		r.ReportedAt, r.Urgent = friday, true
		if _, err := reports.CreateReport(ctx, r); err != nil {
			t.Fatal(err)
		}
		if got := r.Assignment.DueAt.In(tz).Format("15:04"); got != "18:30" {
			t.Errorf("urgent: due %s, want 18:30 the same day", got)
		}
	})

	t.Run("a retry with the same external_id creates nothing; other content conflicts", func(t *testing.T) {
		at := time.Now().Add(-time.Minute).Truncate(time.Second)
		r := pointReport("retry-1", 121.015, 31.005)
		r.ReportedAt = at
		if created, err := reports.CreateReport(ctx, r); err != nil || !created {
			t.Fatalf("first: %v %v", created, err)
		}
		again := pointReport("retry-1", 121.015, 31.005)
		again.ReportedAt = at
		created, err := reports.CreateReport(ctx, again)
		if err != nil || created || again.ID != r.ID {
			t.Errorf("retry: created %v id %d (first %d) %v", created, again.ID, r.ID, err)
		}
		other := pointReport("retry-1", 121.016, 31.005)
		other.ReportedAt = at
		if _, err := reports.CreateReport(ctx, other); gridmap.ErrorCode(err) != gridmap.ECONFLICT {
			t.Errorf("other content: %v, want ECONFLICT", err)
		}
	})

	t.Run("bad reports are refused and nothing is stored", func(t *testing.T) {
		bad := []*gridmap.Report{
			{ExternalID: "bad-1", Category: "01"},
			{ExternalID: "bad-2", Category: "01", Location: geojson.NewGeometry(orb.Point{200, 31})},
			{ExternalID: "bad-3", Category: "nope", Location: geojson.NewGeometry(orb.Point{121.005, 31.01})},
			{ExternalID: "", Category: "01", Location: geojson.NewGeometry(orb.Point{121.005, 31.01})},
			{ExternalID: "bad-5", Category: "01", CRS: "utm", Location: geojson.NewGeometry(orb.Point{121.005, 31.01})},
		}
		for _, r := range bad {
			if _, err := reports.CreateReport(ctx, r); gridmap.ErrorCode(err) != gridmap.EUNPROCESSABLE {
				t.Errorf("%s: %v, want EUNPROCESSABLE", r.ExternalID, err)
			}
		}
		page, _, err := reports.Reports(ctx, gridmap.ReportFilter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			if strings.HasPrefix(r.ExternalID, "bad-") {
				t.Errorf("refused report %s was stored", r.ExternalID)
			}
		}
	})

	t.Run("a GCJ-02 location is converted, the original kept", func(t *testing.T) {
		gx, gy := geo.WGS84ToGCJ02(121.008, 31.01)
		r := pointReport("gcj-1", gx, gy)
		r.CRS = gridmap.CRSGCJ02
		if _, err := reports.CreateReport(ctx, r); err != nil {
			t.Fatal(err)
		}
		p := r.Location.Geometry().(orb.Point)
		if r.Assignment.Primary.Code != "G11" || r.OriginalLocation == nil || metresBetween(p, orb.Point{121.008, 31.01}) > 0.01 {
			t.Errorf("got primary %s at %v (original %v)", r.Assignment.Primary.Code, p, r.OriginalLocation)
		}
	})

	t.Run("a line goes to the grid holding most of it; the others are crossed", func(t *testing.T) {
		r := pointReport("line-1", 0, 0)
		r.Location = geojson.NewGeometry(orb.LineString{{121.004, 31.01}, {121.013, 31.01}})
		if _, err := reports.CreateReport(ctx, r); err != nil {
			t.Fatal(err)
		}
		a := r.Assignment
		if a.Primary.Code != "G11" || len(a.CoOwners) != 1 || a.CoOwners[0].Code != "G12" || a.CoOwners[0].Reason != gridmap.ReasonCrossed ||
			a.Primary.Share < 0.6 || a.Tier != gridmap.TierStreet {
			t.Errorf("got %+v", a)
		}
		// A line ending 10 m short of the next street's first grid: that
		// grid is a co-owner within the tolerance, and the district
		// coordinates.
		r = pointReport("line-2", 0, 0)
		r.Location = geojson.NewGeometry(orb.LineString{{121.015, 31.01}, {121.02 - 10/kx, 31.01}})
		if _, err := reports.CreateReport(ctx, r); err != nil {
			t.Fatal(err)
		}
		a = r.Assignment
		if a.Primary.Code != "G12" || len(a.CoOwners) != 1 || a.CoOwners[0].Code != "G21" || a.CoOwners[0].Reason != gridmap.ReasonWithinTolerance ||
			math.Abs(a.CoOwners[0].DistanceM-10) > 0.2 || a.Tier != gridmap.TierDistrict {
			t.Errorf("line near a grid: %+v", a)
		}
	})

	t.Run("a boundary edit re-routes the open reports it moves, and a dry run lists them", func(t *testing.T) {
		r := pointReport("reroute-1", 121.0105, 31.01)
		if _, err := reports.CreateReport(ctx, r); err != nil || r.Assignment.Primary.Code != "G12" {
			t.Fatalf("create: %v %+v", err, r.Assignment)
		}
		// 77 m from the old edge, 19 m from the new one: no co-owner
		// before, the grid it leaves as co-owner after.
		near := pointReport("reroute-2", 121.0108, 31.01)
		if _, err := reports.CreateReport(ctx, near); err != nil || near.Assignment.Primary.Code != "G12" || len(near.Assignment.CoOwners) != 0 {
			t.Fatalf("create: %v %+v", err, near.Assignment)
		}
		grids := postgres.NewGridStore(pgtest.Shared(t))
		g, err := geojson.UnmarshalGeometry([]byte(rect(121, 31, 121.011, 31.02)))
		if err != nil {
			t.Fatal(err)
		}
		cs := &gridmap.Changeset{DryRun: true, Reason: "widen G11", Operations: []gridmap.Operation{{Op: gridmap.OpMoveEdge, Code: "G11", Geometry: g}}}
		res, err := grids.ApplyChangeset(ctx, "rp", cs)
		want := fmt.Sprintf("[{%d reroute-1 G12 G11} {%d reroute-2 G12 G11}]", r.ID, near.ID)
		if err != nil || res.Applied || fmt.Sprint(res.Impact.Reroutes) != want {
			t.Fatalf("dry run: %v %+v, want reroutes %s", err, res, want)
		}
		cs.DryRun = false
		if res, err = grids.ApplyChangeset(ctx, "rp", cs); err != nil || !res.Applied {
			t.Fatalf("apply: %v %+v", err, res)
		}
		got, err := reports.Report(ctx, r.ID)
		if err != nil || got.Assignment.Primary.Code != "G11" || len(got.Assignment.Primary.Chain) != 3 ||
			got.Assignment.BoundaryVersion != res.DataVersion {
			t.Fatalf("after the edit: %+v %v", got.Assignment, err)
		}
		events, _ := reports.Events(ctx, r.ID)
		last := events[len(events)-1]
		if last.Action != "reroute" || !strings.Contains(last.Note, "from G12 to G11") {
			t.Errorf("last event %+v", last)
		}
		got, _ = reports.Report(ctx, near.ID)
		if a := got.Assignment; a.Primary.Code != "G11" || len(a.CoOwners) != 1 || a.CoOwners[0].Code != "G12" ||
			a.CoOwners[0].Reason != gridmap.ReasonWithinTolerance || math.Abs(a.CoOwners[0].DistanceM-19) > 1 || a.Tier != gridmap.TierStreet {
			t.Errorf("reassessed: %+v", a)
		}
	})

	t.Run("an import that moves a boundary re-routes open reports too", func(t *testing.T) {
		r := pointReport("reroute-import-1", 121.035, 31.01)
		if _, err := reports.CreateReport(ctx, r); err != nil || r.Assignment.Primary.Code != "G22" {
			t.Fatalf("create: %v %+v", err, r.Assignment)
		}
		db := pgtest.Shared(t)
		st := stores{postgres.NewLayerStore(db), postgres.NewGridStore(db)}
		res, err := importString(st, "rp", collection(
			feature("G21", "grid", "S2", rect(121.02, 31, 121.036, 31.02)),
			feature("G22", "grid", "S2", rect(121.036, 31, 121.04, 31.02))), gridmap.ImportOptions{})
		if err != nil || res.Rerouted < 1 { // assign-3 above stands on the same spot
			t.Fatalf("import: %v %+v", err, res)
		}
		got, err := reports.Report(ctx, r.ID)
		if err != nil || got.Assignment.Primary.Code != "G21" || got.Assignment.BoundaryVersion != res.DataVersion {
			t.Errorf("after the import: %+v %v", got.Assignment, err)
		}
	})

	t.Run("overdue reports escalate once per deadline, even with two instances at it", func(t *testing.T) {
		r := pointReport("overdue-1", 121.005, 31.01)
		r.ReportedAt, r.Urgent = time.Now().Add(-48*time.Hour), true
		if _, err := reports.CreateReport(ctx, r); err != nil || r.Assignment.Tier != gridmap.TierGrid {
			t.Fatalf("create: %v %+v", err, r.Assignment)
		}
		var wg sync.WaitGroup
		for i := 0; i < 2; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := reports.EscalateOverdue(ctx, time.Now()); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if _, err := reports.EscalateOverdue(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
		got, _ := reports.Report(ctx, r.ID)
		events, _ := reports.Events(ctx, r.ID)
		escalations := 0
		for _, e := range events {
			if e.Action == "escalate" && e.Actor == "overdue" {
				escalations++
			}
		}
		if escalations != 1 || got.Assignment.Tier != gridmap.TierStreet {
			t.Errorf("%d escalations, tier %s; want 1 and street", escalations, got.Assignment.Tier)
		}
		// However late the job runs again, one deadline fires once.
		if _, err := reports.EscalateOverdue(ctx, time.Now().Add(30*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got, _ := reports.Report(ctx, r.ID); got.Assignment.Tier != gridmap.TierStreet {
			t.Errorf("the same deadline fired twice: tier %s", got.Assignment.Tier)
		}
	})

	t.Run("departments hear of their reports by signed webhook, at least once", func(t *testing.T) {
		type hit struct{ key, sig, body string }
		var mu sync.Mutex
		var hits []hit
		fail := true
		receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			defer mu.Unlock()
			hits = append(hits, hit{r.Header.Get("Idempotency-Key"), r.Header.Get("X-Gridmap-Signature"), string(b)})
			if fail {
				fail = false
				w.WriteHeader(http.StatusInternalServerError)
			}
		}))
		defer receiver.Close()
		secret := "s3cret"
		if _, err := cats.PutDepartment(ctx, &gridmap.Department{Code: "wh", Name: "webhook dept", WebhookURL: receiver.URL}, &secret); err != nil {
			t.Fatal(err)
		}
		if _, err := cats.PutCategory(ctx, &gridmap.Category{Code: "wh", Name: "webhook", Departments: []string{"wh"},
			Limit: gridmap.Limit{Value: 1, Clock: gridmap.ClockUrgentHours}}); err != nil {
			t.Fatal(err)
		}
		r := pointReport("webhook-1", 121.005, 31.01)
		r.Category = "wh"
		if _, err := reports.CreateReport(ctx, r); err != nil {
			t.Fatal(err)
		}
		out := postgres.NewOutbox(pgtest.Shared(t), receiver.Client())
		out.RetryBase = 10 * time.Millisecond
		if n, err := out.Deliver(ctx); err != nil || n != 0 {
			t.Fatalf("first attempt (the receiver fails it): %d %v", n, err)
		}
		delivered := 0
		for i := 0; i < 100 && delivered == 0; i++ {
			time.Sleep(20 * time.Millisecond)
			n, err := out.Deliver(ctx)
			if err != nil {
				t.Fatal(err)
			}
			delivered += n
		}
		mu.Lock()
		defer mu.Unlock()
		if delivered != 1 || len(hits) != 2 || hits[0].key != hits[1].key || hits[0].body != hits[1].body {
			t.Fatalf("delivered %d, hits %+v", delivered, hits)
		}
		mac := hmac.New(sha256.New, []byte("s3cret"))
		mac.Write([]byte(hits[1].body))
		if hits[1].sig != "sha256="+hex.EncodeToString(mac.Sum(nil)) || !strings.Contains(hits[1].body, `"external_id": "webhook-1"`) {
			t.Errorf("delivery %+v", hits[1])
		}
		if n, _ := out.Deliver(ctx); n != 0 {
			t.Errorf("a delivered notice went out again")
		}
	})

	t.Run("each workflow step is due by the category's step limit", func(t *testing.T) {
		if _, err := cats.PutCategory(ctx, &gridmap.Category{Code: "steps", Name: "steps", Departments: []string{"cg"},
			Limit: gridmap.Limit{Value: 3, Clock: gridmap.ClockCalendarDays}, StepLimits: map[string]gridmap.Limit{"tidy": {Value: 1, Clock: "urgent_hours"}}}); gridmap.ErrorCode(err) != gridmap.EINVALID {
			t.Errorf("unknown step: %v, want EINVALID", err)
		}
		if _, err := cats.PutCategory(ctx, &gridmap.Category{Code: "steps", Name: "steps", Departments: []string{"cg"},
			Limit: gridmap.Limit{Value: 3, Clock: gridmap.ClockCalendarDays}, StepLimits: map[string]gridmap.Limit{
				"register": {Value: 1, Clock: gridmap.ClockUrgentHours}, "dispatch": {Value: 2, Clock: gridmap.ClockUrgentHours}}}); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
		r := pointReport("steps-1", 121.005, 31.01)
		r.Category, r.ReportedAt = "steps", at
		if _, err := reports.CreateReport(ctx, r); err != nil {
			t.Fatal(err)
		}
		if a := r.Assignment; a.NextStep != "register" || a.StepDueAt == nil || !a.StepDueAt.Equal(at.Add(time.Hour)) {
			t.Errorf("at intake: next %q due %v", a.NextStep, a.StepDueAt)
		}
		// A missed step escalates like a missed overall deadline, once.
		for i := 0; i < 2; i++ {
			if _, err := reports.EscalateOverdue(ctx, time.Now().Add(2*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		events, _ := reports.Events(ctx, r.ID)
		if last := events[len(events)-1]; len(events) != 2 || last.Action != "escalate" || !strings.Contains(last.Note, "register step") {
			t.Errorf("after the register step's deadline: %d events, last %+v", len(events), last)
		}
		got, err := reports.AddEvent(ctx, r.ID, &gridmap.ReportEvent{Action: "register"})
		if err != nil || got.Assignment.NextStep != "dispatch" || got.Assignment.StepDueAt == nil ||
			time.Until(*got.Assignment.StepDueAt) < 119*time.Minute || time.Until(*got.Assignment.StepDueAt) > 121*time.Minute {
			t.Errorf("after register: %+v %v", got.Assignment, err)
		}
		got, err = reports.AddEvent(ctx, r.ID, &gridmap.ReportEvent{Action: "dispatch"})
		if err != nil || got.Assignment.NextStep != "start" || got.Assignment.StepDueAt != nil {
			t.Errorf("after dispatch (start has no limit): %+v %v", got.Assignment, err)
		}
	})

	t.Run("escalation calls departments in, each to report in by its deadline", func(t *testing.T) {
		r := pointReport("whistle-1", 121.005, 31.01)
		if _, err := reports.CreateReport(ctx, r); err != nil {
			t.Fatal(err)
		}
		for _, a := range []string{"register", "dispatch"} {
			if _, err := reports.AddEvent(ctx, r.ID, &gridmap.ReportEvent{Action: a}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := reports.AddEvent(ctx, r.ID, &gridmap.ReportEvent{Action: "escalate", Departments: []string{"cg", "police"}, Note: "吹哨"})
		if err != nil || len(got.Tasks) != 2 || got.Tasks[0].Status != "open" || !got.Tasks[0].ReportInDue.After(time.Now()) ||
			got.Assignment.Tier != gridmap.TierStreet {
			t.Fatalf("escalate: %+v %v", got, err)
		}
		got, err = reports.AddEvent(ctx, r.ID, &gridmap.ReportEvent{Action: "report_in", Departments: []string{"police"}})
		if err != nil || got.Status != gridmap.StatusDispatched || got.Tasks[1].Status != "reported_in" || got.Tasks[1].ReportedInAt == nil {
			t.Fatalf("report in: %+v %v", got, err)
		}
		for _, d := range [][]string{{"police"}, {"scjg"}, nil} {
			if _, err := reports.AddEvent(ctx, r.ID, &gridmap.ReportEvent{Action: "report_in", Departments: d}); gridmap.ErrorCode(err) == "" {
				t.Errorf("report_in %v: accepted", d)
			}
		}
	})

	t.Run("the workflow refuses illegal moves with 409 and records each step", func(t *testing.T) {
		r := pointReport("flow-1", 121.005, 31.01)
		if _, err := reports.CreateReport(ctx, r); err != nil {
			t.Fatal(err)
		}
		if _, err := reports.AddEvent(ctx, r.ID, &gridmap.ReportEvent{Action: "close"}); gridmap.ErrorCode(err) != gridmap.ECONFLICT {
			t.Errorf("closing a new report: %v, want ECONFLICT", err)
		}
		steps := []struct{ action, status string }{
			{"register", gridmap.StatusRegistered}, {"dispatch", gridmap.StatusDispatched}, {"suspend", gridmap.StatusSuspended},
			{"resume", gridmap.StatusDispatched}, {"escalate", gridmap.StatusDispatched}, {"start", gridmap.StatusInProgress},
			{"resolve", gridmap.StatusResolved}, {"reject", gridmap.StatusInProgress}, {"resolve", gridmap.StatusResolved},
			{"verify", gridmap.StatusVerified}, {"close", gridmap.StatusClosed},
		}
		for _, st := range steps {
			got, err := reports.AddEvent(ctx, r.ID, &gridmap.ReportEvent{Action: st.action, Actor: "dispatcher 1", Note: st.action})
			if err != nil || got.Status != st.status {
				t.Fatalf("%s: %v %v, want %s", st.action, got, err, st.status)
			}
			if st.action == "escalate" && got.Assignment.Tier != gridmap.TierStreet {
				t.Errorf("escalation left the tier at %s", got.Assignment.Tier)
			}
		}
		if _, err := reports.AddEvent(ctx, r.ID, &gridmap.ReportEvent{Action: "start"}); gridmap.ErrorCode(err) != gridmap.ECONFLICT {
			t.Errorf("acting on a closed report: %v, want ECONFLICT", err)
		}
		events, err := reports.Events(ctx, r.ID)
		if err != nil || len(events) != len(steps)+1 || events[0].Action != "report" || events[len(events)-1].To != gridmap.StatusClosed {
			t.Errorf("%d events: %v", len(events), err)
		}
	})
}

func metresBetween(a, b orb.Point) float64 {
	kx, ky := geo.MetresPerDegree(a[1])
	dx, dy := (a[0]-b[0])*kx, (a[1]-b[1])*ky
	return dx*dx + dy*dy
}
