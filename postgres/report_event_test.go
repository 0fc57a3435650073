package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
)

// hookReceiver collects the webhook deliveries of departments.
type hookReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("webhook body %s: %v", b, err)
		}
		h.mu.Lock()
		h.bodies = append(h.bodies, body)
		h.mu.Unlock()
	}))
	t.Cleanup(h.Close)
	return h
}

// received returns the deliveries about report id, by action.
func (h *hookReceiver) received(id int64) map[string][]map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string][]map[string]any{}
	for _, b := range h.bodies {
		if n, _ := b["report_id"].(float64); int64(n) == id {
			out[b["action"].(string)] = append(out[b["action"].(string)], b)
		}
	}
	return out
}

// eventWorld makes layer ev, south of the other tests' layers: street S
// with grids A (west) and B (east), 0.01 degrees wide each, their shared
// edge at lon 121.01; department evd
// with a webhook to the returned receiver; category ev3 (3 calendar days,
// register within 1 hour). Its ReportStore's index follows every change,
// as a server's does.
func eventWorld(t *testing.T) (*postgres.ReportStore, stores, *hookReceiver) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s := newLayer(t, "ev")
	if _, err := importString(s, "ev", collection(
		feature("D", "district", "", rect(121, 30.2, 121.02, 30.21)),
		feature("S", "street", "D", rect(121, 30.2, 121.02, 30.21)),
		feature("A", "grid", "S", rect(121, 30.2, 121.01, 30.21)),
		feature("B", "grid", "S", rect(121.01, 30.2, 121.02, 30.21))), gridmap.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	db := pgtest.Shared(t)
	hooks := newHookReceiver(t)
	// Deliveries the receiver did not take would crowd other tests' outbox.
	t.Cleanup(func() {
		if _, err := db.Pool.Exec(context.Background(), `DELETE FROM outbox WHERE department = 'evd'`); err != nil {
			t.Error(err)
		}
	})
	cats := postgres.NewCategoryStore(db)
	if _, err := cats.PutDepartment(ctx, &gridmap.Department{Code: "evd", Name: "网格办", WebhookURL: hooks.URL}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := cats.PutCategory(ctx, &gridmap.Category{Code: "ev3", Name: "three days", Departments: []string{"evd"},
		Limit:      gridmap.Limit{Value: 3, Clock: gridmap.ClockCalendarDays},
		StepLimits: map[string]gridmap.Limit{"register": {Value: 1, Clock: gridmap.ClockUrgentHours}}}); err != nil {
		t.Fatal(err)
	}
	loc := postgres.NewLocator(db)
	go loc.Follow(ctx)
	// Every layer of the package's database is indexed, the NYC ones
	// several times over: on a busy machine under -race that takes minutes,
	// so this only guards against a load that never ends.
	select {
	case <-loc.Listening():
	case <-time.After(5 * time.Minute):
		t.Fatal("the lookup index did not load in 5 minutes")
	}
	tz, _ := time.LoadLocation("Asia/Shanghai")
	return postgres.NewReportStore(db, loc, tz), s, hooks
}

// evRun and evCount keep each report's external id apart from every other
// run's (go test -count).
var (
	evRun   = fmt.Sprint(time.Now().UnixNano())
	evCount atomic.Int64
)

func evReport(id string, lon float64) *gridmap.Report {
	return &gridmap.Report{ExternalID: fmt.Sprintf("%s-%s-%d", id, evRun, evCount.Add(1)), Category: "ev3", Source: "grid_worker",
		Location: geojson.NewGeometry(orb.Point{lon, 30.205})}
}

// deliverAll runs the outbox until nothing is due.
func deliverAll(t *testing.T, out *postgres.Outbox) {
	t.Helper()
	for i := 0; i < 20; i++ {
		n, err := out.Deliver(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

func TestReportEvents(t *testing.T) {
	reports, s, hooks := eventWorld(t)
	ctx := context.Background()
	outbox := postgres.NewOutbox(pgtest.Shared(t), hooks.Client())

	t.Run("a step deadline and then the overall deadline each escalate, calling the departments in", func(t *testing.T) {
		start := time.Now().Truncate(time.Second)
		r := evReport("ev-overdue", 121.005)
		r.ReportedAt = start
		if _, err := reports.CreateReport(ctx, r); err != nil {
			t.Fatal(err)
		}
		if r.Assignment.Tier != gridmap.TierGrid || r.Assignment.StepDueAt == nil || !r.Assignment.StepDueAt.Equal(start.Add(time.Hour)) {
			t.Fatalf("assignment %+v", r.Assignment)
		}
		escalate := func(at time.Time) {
			t.Helper()
			if _, err := reports.EscalateOverdue(ctx, at); err != nil {
				t.Fatal(err)
			}
		}
		escalate(start.Add(59 * time.Minute))
		escalate(start.Add(61 * time.Minute))
		escalate(start.Add(2 * time.Hour)) // the same deadline does not fire twice
		got, _ := reports.Report(ctx, r.ID)
		if got.Assignment.Tier != gridmap.TierStreet || len(got.Tasks) != 1 || got.Tasks[0].Department != "evd" {
			t.Fatalf("after the register step's deadline: tier %s, tasks %+v", got.Assignment.Tier, got.Tasks)
		}
		escalate(start.Add(71 * time.Hour))
		if got, _ := reports.Report(ctx, r.ID); got.Assignment.Tier != gridmap.TierStreet {
			t.Fatalf("escalated before the overall deadline: %s", got.Assignment.Tier)
		}
		escalate(start.Add(72*time.Hour + time.Minute))
		escalate(start.Add(100 * time.Hour))
		got, _ = reports.Report(ctx, r.ID)
		if got.Assignment.Tier != gridmap.TierDistrict {
			t.Fatalf("after the overall deadline: tier %s, want district", got.Assignment.Tier)
		}
		events, _ := reports.Events(ctx, r.ID)
		var notes []string
		for _, e := range events {
			if e.Action == "escalate" {
				if e.Actor != "overdue" || strings.Join(e.Departments, ",") != "evd" {
					t.Errorf("escalation %+v", e)
				}
				notes = append(notes, e.Note)
			}
		}
		if len(notes) != 2 || !strings.Contains(notes[0], "register step deadline") || strings.Contains(notes[1], "step") {
			t.Errorf("escalation notes %q", notes)
		}
		deliverAll(t, outbox)
		got2 := hooks.received(r.ID)
		if len(got2["report"]) != 1 || len(got2["escalate"]) != 2 {
			t.Errorf("webhook deliveries %v", got2)
		}
	})

	t.Run("a re-route reaches the departments' webhook", func(t *testing.T) {
		r := evReport("ev-reroute", 121.0095)
		if _, err := reports.CreateReport(ctx, r); err != nil || r.Assignment.Primary.Code != "A" {
			t.Fatalf("create: %v %+v", err, r.Assignment)
		}
		if _, err := importString(s, "ev", collection(
			feature("A", "grid", "S", rect(121, 30.2, 121.009, 30.21)),
			feature("B", "grid", "S", rect(121.009, 30.2, 121.02, 30.21))), gridmap.ImportOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := reports.Report(ctx, r.ID)
		if err != nil || got.Assignment.Primary.Code != "B" {
			t.Fatalf("not re-routed: %v %+v", err, got)
		}
		deliverAll(t, outbox)
		hooksGot := hooks.received(r.ID)
		if len(hooksGot["reroute"]) != 1 {
			t.Fatalf("webhook deliveries %v", hooksGot)
		}
		a := hooksGot["reroute"][0]["assignment"].(map[string]any)
		if a["primary"].(map[string]any)["code"] != "B" {
			t.Errorf("reroute payload %v", hooksGot["reroute"][0])
		}
	})

	t.Run("a re-route keeps an escalated tier, and a department called in hears of it", func(t *testing.T) {
		cats := postgres.NewCategoryStore(pgtest.Shared(t))
		if _, err := cats.PutDepartment(ctx, &gridmap.Department{Code: "evx", Name: "应急", WebhookURL: hooks.URL}, nil); err != nil {
			t.Fatal(err)
		}
		r := evReport("ev-escalated-reroute", 121.0085)
		if _, err := reports.CreateReport(ctx, r); err != nil || r.Assignment.Primary.Code != "A" {
			t.Fatalf("create: %v %+v", err, r.Assignment)
		}
		for _, e := range []*gridmap.ReportEvent{{Action: "register"}, {Action: "escalate", Departments: []string{"evx"}},
			{Action: "escalate", Departments: []string{"evx"}}} {
			if _, err := reports.AddEvent(ctx, r.ID, e); err != nil {
				t.Fatalf("%s: %v", e.Action, err)
			}
		}
		if _, err := importString(s, "ev", collection(
			feature("A", "grid", "S", rect(121, 30.2, 121.008, 30.21)),
			feature("B", "grid", "S", rect(121.008, 30.2, 121.02, 30.21))), gridmap.ImportOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := reports.Report(ctx, r.ID)
		if err != nil || got.Assignment.Primary.Code != "B" || got.Assignment.Tier != gridmap.TierDistrict {
			t.Fatalf("after the re-route: %v %+v; want B at the district tier it was escalated to", err, got.Assignment)
		}
		deliverAll(t, outbox)
		var escalations int
		for _, b := range hooks.received(r.ID)["escalate"] {
			if strings.Contains(fmt.Sprint(b["departments"]), "evx") {
				escalations++
			}
		}
		// Each escalation reaches the report's department and the one called in.
		if n := len(hooks.received(r.ID)["escalate"]); n != 4 || escalations != 4 {
			t.Errorf("%d escalation deliveries (%d naming evx), want 4: evd and evx for each", n, escalations)
		}
	})

	t.Run("of moves racing on one report, each applies to the state the one before left", func(t *testing.T) {
		r := evReport("ev-race", 121.005)
		if _, err := reports.CreateReport(ctx, r); err != nil {
			t.Fatal(err)
		}
		// 12 dispatchers register it at once: one does, the others are told
		// it is registered already.
		var wg sync.WaitGroup
		var applied, refused atomic.Int64
		for range 12 {
			wg.Go(func() {
				_, err := reports.AddEvent(ctx, r.ID, &gridmap.ReportEvent{Action: "register"})
				switch gridmap.ErrorCode(err) {
				case "":
					applied.Add(1)
				case gridmap.ECONFLICT:
					refused.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if applied.Load() != 1 || refused.Load() != 11 {
			t.Fatalf("%d registrations applied, %d refused; want 1 and 11", applied.Load(), refused.Load())
		}
		// 12 escalations at once all apply, one tier each, up to the city.
		for range 12 {
			wg.Go(func() {
				if _, err := reports.AddEvent(ctx, r.ID, &gridmap.ReportEvent{Action: "escalate"}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		events, err := reports.Events(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		var escalations int
		for _, e := range events {
			if e.Action == "escalate" {
				escalations++
			}
		}
		got, _ := reports.Report(ctx, r.ID)
		if escalations != 12 || got.Assignment.Tier != gridmap.TierCity || len(events) != 14 {
			t.Errorf("%d escalations of %d events, tier %s; want 12 of 14, city", escalations, len(events), got.Assignment.Tier)
		}
	})

	t.Run("report_in naming a department twice counts it once", func(t *testing.T) {
		r := evReport("ev-report-in", 121.005)
		if _, err := reports.CreateReport(ctx, r); err != nil {
			t.Fatal(err)
		}
		for _, action := range []string{"register", "escalate"} {
			if _, err := reports.AddEvent(ctx, r.ID, &gridmap.ReportEvent{Action: action}); err != nil {
				t.Fatalf("%s: %v", action, err)
			}
		}
		got, err := reports.AddEvent(ctx, r.ID, &gridmap.ReportEvent{Action: "report_in", Departments: []string{"evd", "evd"}})
		if err != nil || len(got.Tasks) != 1 || got.Tasks[0].Status != "reported_in" {
			t.Fatalf("report_in: %v %+v", err, got)
		}
		_, err = reports.AddEvent(ctx, r.ID, &gridmap.ReportEvent{Action: "report_in", Departments: []string{"evd"}})
		if gridmap.ErrorCode(err) != gridmap.ECONFLICT {
			t.Errorf("reporting in again: %v, want ECONFLICT", err)
		}
	})
}

// TestIntakeRightAfterBoundaryChange posts a report the moment a boundary
// change returns, 100 times, alternating changesets that move the shared
// edge, splits and merges, and imports: every report is assigned on the
// boundaries just committed, never on the index's older copy.
func TestIntakeRightAfterBoundaryChange(t *testing.T) {
	reports, s, _ := eventWorld(t)
	ctx := context.Background()
	edit := func(ops ...gridmap.Operation) int64 {
		t.Helper()
		res, err := s.grids.ApplyChangeset(ctx, "ev", &gridmap.Changeset{Reason: "test", Author: "tester", Operations: ops})
		if err != nil {
			var ge *gridmap.Error
			errors.As(err, &ge)
			t.Fatalf("%v: %+v", err, ge.Details)
		}
		return res.DataVersion
	}
	put := func(code, geometry string) gridmap.Operation {
		g, err := geojson.UnmarshalGeometry([]byte(geometry))
		if err != nil {
			t.Fatal(err)
		}
		return putOp(code, g, nil)
	}
	const probe = 121.0095 // west of 121.01, east of 121.009
	db := pgtest.Shared(t)
	for i := 0; i < 100; i++ {
		edge := 121.009
		if i%2 == 1 {
			edge = 121.01
		}
		var version int64
		switch i % 6 {
		case 0, 1:
			version = edit(put("A", rect(121, 30.2, edge, 30.21)), put("B", rect(edge, 30.2, 121.02, 30.21)))
		case 2:
			// B split in two at the edge into C and E, merged back next round.
			edit(put("A", rect(121, 30.2, 121.008, 30.21)), put("B", rect(121.008, 30.2, 121.02, 30.21)))
			line, _ := geojson.UnmarshalGeometry([]byte(fmt.Sprintf(`{"type":"LineString","coordinates":[[%g,30.19],[%g,30.22]]}`, edge, edge)))
			version = edit(gridmap.Operation{Op: gridmap.OpSplit, Code: "B", Line: line, NewCodes: []string{"C", "E"}})
		case 3:
			version = edit(gridmap.Operation{Op: gridmap.OpMerge, Codes: []string{"C", "E"}, Into: "B"})
		default:
			res, err := importString(s, "ev", collection(
				feature("A", "grid", "S", rect(121, 30.2, edge, 30.21)),
				feature("B", "grid", "S", rect(edge, 30.2, 121.02, 30.21))), gridmap.ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			version = res.DataVersion
		}
		// PostGIS says who owns the probe now.
		var want string
		if err := db.Pool.QueryRow(ctx, `SELECT code FROM grids g WHERE layer_id = 'ev' AND ST_Covers(geom, ST_SetSRID(ST_MakePoint($1, 30.205), 4326))
			AND NOT EXISTS (SELECT 1 FROM grids c WHERE c.layer_id = 'ev' AND c.parent_code = g.code)`, probe).Scan(&want); err != nil {
			t.Fatal(err)
		}
		r := evReport(fmt.Sprintf("ev-after-%d", i), probe)
		if _, err := reports.CreateReport(ctx, r); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if r.Assignment.Primary == nil || r.Assignment.Primary.Code != want || r.Assignment.BoundaryVersion < version {
			t.Fatalf("round %d: assigned to %+v on version %d; want %s on version %d or later",
				i, r.Assignment.Primary, r.Assignment.BoundaryVersion, want, version)
		}
	}
}

// TestIntakeWhenTheIndexLags assigns from PostGIS when the lookup index
// does not catch up with a boundary change: owners, co-owners and their
// chains all come from the grids as committed.
func TestIntakeWhenTheIndexLags(t *testing.T) {
	_, s, _ := eventWorld(t)
	ctx := context.Background()
	db := pgtest.Shared(t)
	// An index loaded once and never following: it stays behind.
	stale := postgres.NewLocator(db)
	if err := stale.Load(ctx); err != nil {
		t.Fatal(err)
	}
	tz, _ := time.LoadLocation("Asia/Shanghai")
	reports := postgres.NewReportStore(db, stale, tz)
	line, _ := geojson.UnmarshalGeometry([]byte(`{"type":"LineString","coordinates":[[121.015,30.19],[121.015,30.22]]}`))
	res, err := s.grids.ApplyChangeset(ctx, "ev", &gridmap.Changeset{Reason: "test", Author: "tester", Operations: []gridmap.Operation{
		{Op: gridmap.OpSplit, Code: "B", Line: line, NewCodes: []string{"LB1", "LB2"}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // the layer as eventWorld makes it
		if _, err := s.grids.ApplyChangeset(ctx, "ev", &gridmap.Changeset{Reason: "test", Author: "tester", Operations: []gridmap.Operation{
			{Op: gridmap.OpMerge, Codes: []string{"LB1", "LB2"}, Into: "B"}}}); err != nil {
			t.Error(err)
		}
	})
	// 5 m west of the new edge between LB1 and LB2.
	kx, _ := geo.MetresPerDegree(30.205)
	r := evReport("ev-lagging-index", 121.015-5/kx)
	if _, err := reports.CreateReport(ctx, r); err != nil {
		t.Fatal(err)
	}
	a := r.Assignment
	if a.Primary == nil || a.Primary.Code != "LB1" || a.BoundaryVersion != res.DataVersion || len(a.Primary.Chain) != 3 {
		t.Fatalf("assigned %+v on version %d, want LB1 on version %d with its chain", a.Primary, a.BoundaryVersion, res.DataVersion)
	}
	if len(a.CoOwners) != 1 || a.CoOwners[0].Code != "LB2" || len(a.CoOwners[0].Chain) != 3 || a.CoOwners[0].Chain[1].Code != "S" {
		t.Errorf("co-owners %+v, want LB2 with its chain", a.CoOwners)
	}
}
