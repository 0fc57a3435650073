package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
	"github.com/paulmach/orb/planar"
)

// Departments of the demo district; the police name their beats in the
// demo-police layer.
var Departments = []*gridmap.Department{
	{Code: "cg", Name: "西湖区城市管理局"},
	{Code: "police", Name: "西湖区公安分局", Layer: "demo-police"},
	{Code: "scjg", Name: "西湖区市场监督管理局"},
	{Code: "zj", Name: "西湖区住房和城乡建设局"},
	{Code: "yj", Name: "西湖区应急管理局"},
	{Code: "water", Name: "杭州市水务集团"},
	{Code: "gas", Name: "杭州市燃气集团"},
}

func limit(v float64, clock string) gridmap.Limit { return gridmap.Limit{Value: v, Clock: clock} }

func urgent(v float64) *gridmap.Limit { l := limit(v, gridmap.ClockUrgentHours); return &l }

// Categories is the demo responsibility list, after the GB/T 30428.2 event
// classes: major classes with their subclasses, each with departments and a
// time limit.
var Categories = []*gridmap.Category{
	{Code: "01", Name: "市容环境", Departments: []string{"cg"}, Limit: limit(2, gridmap.ClockWorkingDays)},
	{Code: "0101", Parent: "01", Name: "暴露垃圾", Departments: []string{"cg"}, Limit: limit(4, gridmap.ClockWorkingHours), UrgentLimit: urgent(2)},
	{Code: "0102", Parent: "01", Name: "积存垃圾渣土", Departments: []string{"cg"}, Limit: limit(1, gridmap.ClockWorkingDays)},
	{Code: "0103", Parent: "01", Name: "道路不洁", Departments: []string{"cg"}, Limit: limit(4, gridmap.ClockWorkingHours)},
	{Code: "02", Name: "宣传广告", Departments: []string{"cg"}, Limit: limit(2, gridmap.ClockWorkingDays)},
	{Code: "0201", Parent: "02", Name: "非法小广告", Departments: []string{"cg"}, Limit: limit(8, gridmap.ClockWorkingHours)},
	{Code: "0202", Parent: "02", Name: "违章张贴悬挂广告", Departments: []string{"cg", "scjg"}, Limit: limit(2, gridmap.ClockWorkingDays)},
	{Code: "03", Name: "施工管理", Departments: []string{"zj"}, Limit: limit(3, gridmap.ClockWorkingDays)},
	{Code: "0301", Parent: "03", Name: "施工扰民", Departments: []string{"zj", "police"}, Limit: limit(4, gridmap.ClockWorkingHours), UrgentLimit: urgent(1)},
	{Code: "0302", Parent: "03", Name: "施工废弃料", Departments: []string{"zj", "cg"}, Limit: limit(2, gridmap.ClockWorkingDays)},
	{Code: "04", Name: "街面秩序", Departments: []string{"cg"}, Limit: limit(1, gridmap.ClockWorkingDays)},
	{Code: "0401", Parent: "04", Name: "无照经营游商", Departments: []string{"cg", "scjg"}, Limit: limit(4, gridmap.ClockWorkingHours)},
	{Code: "0402", Parent: "04", Name: "占道经营", Departments: []string{"cg"}, Limit: limit(4, gridmap.ClockWorkingHours)},
	{Code: "0403", Parent: "04", Name: "店外经营", Departments: []string{"cg"}, Limit: limit(8, gridmap.ClockWorkingHours)},
	{Code: "05", Name: "突发事件", Departments: []string{"yj"}, Limit: limit(2, gridmap.ClockUrgentHours)},
	{Code: "0501", Parent: "05", Name: "路面塌陷", Departments: []string{"yj", "zj", "police"}, Limit: limit(2, gridmap.ClockUrgentHours)},
	{Code: "0502", Parent: "05", Name: "自来水管破裂", Departments: []string{"water"}, Limit: limit(4, gridmap.ClockUrgentHours)},
	{Code: "0503", Parent: "05", Name: "燃气管道破裂", Departments: []string{"gas", "yj", "police"}, Limit: limit(1, gridmap.ClockUrgentHours)},
}

// LoadResponsibility defines the demo departments and categories.
func LoadResponsibility(ctx context.Context, cats gridmap.CategoryService) error {
	for _, d := range Departments {
		def := *d
		if _, err := cats.PutDepartment(ctx, &def, nil); err != nil {
			return fmt.Errorf("department %s: %w", d.Code, err)
		}
	}
	for _, c := range Categories {
		def := *c
		if _, err := cats.PutCategory(ctx, &def); err != nil {
			return fmt.Errorf("category %s: %w", c.Code, err)
		}
	}
	return nil
}

// How far the demo's reports have got: a workflow path per outcome.
var demoPaths = [][]string{
	nil,
	{"register"},
	{"register", "dispatch"},
	{"register", "dispatch", "start"},
	{"register", "dispatch", "escalate", "start"},
	{"register", "dispatch", "start", "resolve"},
	{"register", "dispatch", "start", "resolve", "verify", "close"},
	{"register", "dispatch", "start", "resolve", "reject", "resolve", "verify", "close"},
	{"register", "dispatch", "suspend"},
	{"reject"},
}

var sources = []string{"citizen_app", "grid_worker", "12345", "sensor", "video_ai"}

// LoadReports files n generated reports across the district's grids (a
// fifth of them within metres of a grid edge, so they have co-owners), the
// categories and the workflow states, reported over the last two weeks.
// Reports already filed (same external_id) are left as they are.
func LoadReports(ctx context.Context, reports gridmap.ReportService, d *District, seed uint64, n int) (created int, err error) {
	rnd := rand.New(rand.NewPCG(seed, 42))
	cells, err := microgrids(d)
	if err != nil {
		return 0, err
	}
	subs := subcategories()
	now := time.Now()
	for i := 0; i < n; i++ {
		p := placeReport(cells, rnd)
		cat := subs[rnd.IntN(len(subs))]
		r := &gridmap.Report{ExternalID: fmt.Sprintf("demo-%04d", i), Category: cat.Code, Description: cat.Name,
			Location: geojson.NewGeometry(p), AccuracyM: float64(5 + rnd.IntN(20)), Source: sources[rnd.IntN(len(sources))],
			Urgent: rnd.IntN(10) == 0, ReportedAt: now.Add(-time.Duration(rnd.Float64() * float64(14*24*time.Hour))).Truncate(time.Second)}
		isNew, err := reports.CreateReport(ctx, r)
		if err != nil {
			return created, fmt.Errorf("demo report %s: %w", r.ExternalID, err)
		}
		if !isNew {
			continue
		}
		created++
		for _, action := range demoPaths[rnd.IntN(len(demoPaths))] {
			if _, err := reports.AddEvent(ctx, r.ID, &gridmap.ReportEvent{Action: action, Actor: "demo", Note: "demo"}); err != nil {
				return created, fmt.Errorf("demo report %s, %s: %w", r.ExternalID, action, err)
			}
		}
	}
	return created, nil
}

// microgrids returns the shapes of the demo layer's micro-grids, where
// reports are placed.
func microgrids(d *District) ([]orb.MultiPolygon, error) {
	var cells []orb.MultiPolygon
	for _, f := range d.Grids[LayerID] {
		if f.Level == "microgrid" {
			if mp, ok := f.Geometry.(orb.MultiPolygon); ok {
				cells = append(cells, mp)
			} else if p, ok := f.Geometry.(orb.Polygon); ok {
				cells = append(cells, orb.MultiPolygon{p})
			}
		}
	}
	if len(cells) == 0 {
		return nil, fmt.Errorf("the demo district has no micro-grids")
	}
	return cells, nil
}

// subcategories are the categories reports are filed under: the
// subclasses of Categories, in its order.
func subcategories() []*gridmap.Category {
	var subs []*gridmap.Category
	for _, c := range Categories {
		if c.Parent != "" {
			subs = append(subs, c)
		}
	}
	return subs
}

// placeReport picks a point in a random cell; one in five lies within
// metres of the cell's edge, so that its report has co-owners.
func placeReport(cells []orb.MultiPolygon, rnd *rand.Rand) orb.Point {
	cell := cells[rnd.IntN(len(cells))]
	p := pointIn(cell, rnd)
	if rnd.IntN(5) == 0 {
		// Onto the cell's edge, then a few metres either way.
		ring := cell[0][0]
		k := rnd.IntN(len(ring) - 1)
		t := rnd.Float64()
		p = orb.Point{ring[k][0] + t*(ring[k+1][0]-ring[k][0]) + (rnd.Float64()-0.5)*0.0001,
			ring[k][1] + t*(ring[k+1][1]-ring[k][1]) + (rnd.Float64()-0.5)*0.0001}
	}
	return p
}

// pointIn returns a random point inside mp.
func pointIn(mp orb.MultiPolygon, rnd *rand.Rand) orb.Point {
	b := mp.Bound()
	for i := 0; i < 1000; i++ {
		p := orb.Point{b.Min[0] + rnd.Float64()*(b.Max[0]-b.Min[0]), b.Min[1] + rnd.Float64()*(b.Max[1]-b.Min[1])}
		if planar.MultiPolygonContains(mp, p) {
			return p
		}
	}
	return b.Center()
}
