package dispatch

import (
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
)

func testLayer(t testing.TB) *gridmap.Layer {
	l := &gridmap.Layer{ID: "demo", Levels: []string{"district", "street", "community", "grid"}}
	if err := l.Normalize(); err != nil {
		t.Fatal(err)
	}
	return l
}

// chain builds a chain from codes, one per level from the district down.
func chain(codes ...string) []gridmap.GridRef {
	levels := []string{"district", "street", "community", "grid"}
	var c []gridmap.GridRef
	for i, code := range codes {
		c = append(c, gridmap.GridRef{Code: code, Level: levels[i]})
	}
	return c
}

func TestAssignTiers(t *testing.T) {
	loc := time.UTC
	p := &Policy{Calendar: &Calendar{Location: loc}}
	layer := testLayer(t)
	primary := chain("D1", "S1", "C1", "G1")
	cat := &gridmap.Category{Code: "01", Departments: []string{"cg"}, Limit: gridmap.Limit{Value: 2, Clock: gridmap.ClockUrgentHours}}
	twoDepts := &gridmap.Category{Code: "02", Departments: []string{"cg", "police"}, Limit: gridmap.Limit{Value: 2, Clock: gridmap.ClockUrgentHours}}
	cases := []struct {
		name     string
		coOwners [][]gridmap.GridRef
		category *gridmap.Category
		tier     string
	}{
		{"alone in its grid", nil, cat, gridmap.TierGrid},
		{"two grids of one community", [][]gridmap.GridRef{chain("D1", "S1", "C1", "G2")}, cat, gridmap.TierStreet},
		{"two communities of one street", [][]gridmap.GridRef{chain("D1", "S1", "C2", "G9")}, cat, gridmap.TierStreet},
		{"two streets of one district", [][]gridmap.GridRef{chain("D1", "S2", "C7", "G7")}, cat, gridmap.TierDistrict},
		{"two districts", [][]gridmap.GridRef{chain("D2", "S5", "C5", "G5")}, cat, gridmap.TierCity},
		{"one grid, two departments", nil, twoDepts, gridmap.TierStreet},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ans := &gridmap.LayerAnswer{Layer: "demo", Chain: primary, DataVersion: 4}
			chains := map[string][]gridmap.GridRef{}
			for _, co := range c.coOwners {
				f := co[len(co)-1]
				ans.CoOwners = append(ans.CoOwners, gridmap.CoOwner{GridRef: f, DistanceM: 12, Reason: gridmap.ReasonWithinTolerance})
				chains[f.Code] = co
			}
			a, err := p.Assign(AssignInput{Layer: layer, Answer: ans, Chains: chains, Category: c.category, ReportedAt: time.Date(2026, 1, 5, 9, 0, 0, 0, loc)})
			if err != nil {
				t.Fatal(err)
			}
			if a.Tier != c.tier || a.Primary.Code != "G1" || a.BoundaryVersion != 4 || !a.DueAt.Equal(time.Date(2026, 1, 5, 11, 0, 0, 0, loc)) {
				t.Errorf("tier %s primary %s version %d due %s; want tier %s: %s", a.Tier, a.Primary.Code, a.BoundaryVersion, a.DueAt, c.tier, a.Explanation)
			}
		})
	}
	t.Run("outside coverage: the nearest grid within reach, else the duty desk", func(t *testing.T) {
		near := &gridmap.LayerAnswer{Nearest: &gridmap.NearestGrid{GridRef: gridmap.GridRef{Code: "G1", Level: "grid"}, DistanceM: 120}}
		a, err := p.Assign(AssignInput{Layer: layer, Answer: near, Category: cat, ReportedAt: time.Now()})
		if err != nil || a.Primary == nil || a.Primary.Code != "G1" || strings.Join(a.Flags, ",") != gridmap.FlagOutsideCoverage {
			t.Errorf("near: %+v %v", a, err)
		}
		far := &gridmap.LayerAnswer{Nearest: &gridmap.NearestGrid{GridRef: gridmap.GridRef{Code: "G1"}, DistanceM: 5000}}
		a, err = p.Assign(AssignInput{Layer: layer, Answer: far, Category: cat, ReportedAt: time.Now()})
		if err != nil || a.Primary != nil || !strings.Contains(strings.Join(a.Flags, ","), gridmap.FlagDutyDesk) || a.Tier != gridmap.TierDistrict {
			t.Errorf("far: %+v %v", a, err)
		}
	})
	t.Run("the department's own unit at the point", func(t *testing.T) {
		units := map[string]*gridmap.LayerAnswer{"beats": {Chain: []gridmap.GridRef{{Code: "P1"}, {Code: "P1-03", Level: "beat"}}}}
		a, err := p.Assign(AssignInput{Layer: layer, Answer: &gridmap.LayerAnswer{Chain: primary}, Category: twoDepts, Units: units,
			Departments: map[string]Department{"police": {Name: "公安", Layer: "beats"}}, ReportedAt: time.Now()})
		if err != nil || len(a.Departments) != 2 || a.Departments[1].Unit == nil || a.Departments[1].Unit.Code != "P1-03" {
			t.Errorf("%+v %v", a, err)
		}
	})
}

// BenchmarkAssign is the policy alone (no database): owners, tier,
// departments with units, deadline on the working-hours clock.
func BenchmarkAssign(b *testing.B) {
	p := &Policy{Calendar: &Calendar{Location: time.UTC, Days: map[string]bool{"2026-01-01": false}}}
	layer := testLayer(b)
	ans := &gridmap.LayerAnswer{Chain: chain("D1", "S1", "C1", "G1"), CoOwners: []gridmap.CoOwner{{GridRef: gridmap.GridRef{Code: "G2", Level: "grid"}, DistanceM: 8, Reason: gridmap.ReasonWithinTolerance}}}
	chains := map[string][]gridmap.GridRef{"G2": chain("D1", "S1", "C1", "G2")}
	cat := &gridmap.Category{Code: "01", Departments: []string{"cg", "police"}, Limit: gridmap.Limit{Value: 4, Clock: gridmap.ClockWorkingHours}}
	units := map[string]*gridmap.LayerAnswer{"beats": {Chain: []gridmap.GridRef{{Code: "P1-03"}}}}
	depts := map[string]Department{"police": {Layer: "beats"}}
	at := time.Date(2026, 1, 2, 17, 30, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Assign(AssignInput{Layer: layer, Answer: ans, Chains: chains, Category: cat, Units: units, Departments: depts, ReportedAt: at}); err != nil {
			b.Fatal(err)
		}
	}
}
