// Package demo generates the demo district: a made-up district of Hangzhou
// (county code 330106) cut into streets, communities, grids and micro-grids
// with GB/T 30428 codes, Chinese names and the people responsible, plus a
// police layer whose beats ignore the street boundaries. Everything follows
// from one seed, so the same seed gives the same district.
package demo

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/paulmach/orb"
)

// Layer ids of the demo.
const (
	LayerID       = "demo"
	PoliceLayerID = "demo-police"
)

// DefaultSeed is the seed `gridmap demo` uses unless told otherwise.
const DefaultSeed = 20261127

// CountyCode is the GB/T 2260 code the demo district borrows (西湖区, Hangzhou).
const CountyCode = "330106"

// Shape of the demo hierarchy: children per parent at each level.
const (
	Streets              = 10
	CommunitiesPerStreet = 5
	GridsPerCommunity    = 10
	MicrogridsPerGrid    = 5
	PoliceStations       = 5
	BeatsPerStation      = 5
)

// District is the generated demo: layers, and for each layer its grids in
// an order where every parent comes before its children.
type District struct {
	Layers []*gridmap.Layer
	Grids  map[string][]*gridmap.Feature
}

// Generate builds the demo district from seed.
func Generate(seed uint64) (*District, error) {
	return generate(seed, firstDistrict(), Layers(1), geo.NewSubdivider())
}

// districtSpec says where a district of the demo goes and what it is
// called; everything else follows from its seed.
type districtSpec struct {
	code, name   string
	centre       orb.Point
	firstStation int // number of its first police station
}

// firstDistrict is the demo district itself, the first of any province.
func firstDistrict() districtSpec {
	return districtSpec{code: CountyCode, name: "西湖区（演示）", centre: orb.Point{120.08, 30.24}, firstStation: 1}
}

// generate builds the district s from seed, with layers as its layers,
// cutting it with sub.
func generate(seed uint64, s districtSpec, layers []*gridmap.Layer, sub *geo.Subdivider) (*District, error) {
	g := &generator{rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), sub: sub,
		names: map[string]bool{}}
	d := &District{Grids: map[string][]*gridmap.Feature{}, Layers: layers}
	outline := g.outline(s.centre, 0.09, 0.075)
	district := &gridmap.Feature{Code: s.code, Name: s.name, Level: "district", Geometry: outline,
		Attributes: map[string]any{"adcode": s.code}}
	comp := []*gridmap.Feature{district}
	levelsBelow := []struct {
		level  string
		n      int
		digits int
		name   func(parent *gridmap.Feature, i int) string
	}{
		{"street", Streets, 3, func(_ *gridmap.Feature, _ int) string { return g.placeName() + "街道" }},
		{"community", CommunitiesPerStreet, 3, func(_ *gridmap.Feature, _ int) string { return g.placeName() + "社区" }},
		{"grid", GridsPerCommunity, 3, func(p *gridmap.Feature, i int) string { return fmt.Sprintf("%s第%d网格", p.Name, i+1) }},
		{"microgrid", MicrogridsPerGrid, 2, func(p *gridmap.Feature, i int) string { return fmt.Sprintf("%s%d号微网格", p.Name, i+1) }},
	}
	parents := []*gridmap.Feature{district}
	for _, lv := range levelsBelow {
		var next []*gridmap.Feature
		for _, p := range parents {
			cells, err := g.split(p.Geometry.(orb.MultiPolygon), lv.n)
			if err != nil {
				return nil, fmt.Errorf("splitting %s: %w", p.Code, err)
			}
			for i, cell := range cells {
				f := &gridmap.Feature{Code: fmt.Sprintf("%s%0*d", p.Code, lv.digits, i+1), Name: lv.name(p, i),
					Level: lv.level, Parent: p.Code, Geometry: cell, Attributes: map[string]any{}}
				f.People = g.people(lv.level)
				if lv.level == "grid" || lv.level == "microgrid" {
					f.Attributes["households"], f.Attributes["population"] = residents(seed, f.Code)
				}
				next = append(next, f)
			}
		}
		comp = append(comp, next...)
		parents = next
	}
	if err := g.renode(comp); err != nil {
		return nil, err
	}
	d.Grids[LayerID] = comp

	var police []*gridmap.Feature
	stations, err := g.split(outline, PoliceStations)
	if err != nil {
		return nil, fmt.Errorf("police stations: %w", err)
	}
	for i, st := range stations {
		station := &gridmap.Feature{Code: fmt.Sprintf("PS%02d", s.firstStation+i), Name: g.placeName() + "派出所", Level: "station",
			Geometry: st, Attributes: map[string]any{"phone": g.phone()}}
		police = append(police, station)
		beats, err := g.split(st, BeatsPerStation)
		if err != nil {
			return nil, fmt.Errorf("police beats: %w", err)
		}
		for j, b := range beats {
			police = append(police, &gridmap.Feature{Code: fmt.Sprintf("%s-%02d", station.Code, j+1),
				Name: fmt.Sprintf("%s第%d警务区", station.Name, j+1), Level: "beat", Parent: station.Code, Geometry: b,
				Attributes: map[string]any{}, People: []gridmap.Person{{Role: gridmap.RolePolice, Name: g.personName(), Phone: g.phone(), Department: "公安分局"}}})
		}
	}
	if err := g.renode(police); err != nil {
		return nil, err
	}
	d.Grids[PoliceLayerID] = police
	for _, fs := range d.Grids {
		for i, f := range fs {
			f.Index = i
		}
	}
	return d, nil
}

// residents are the households (150 to 600) and population (2.3 to 2.9
// residents a household) of the grid with code, drawn from a hash of the
// seed and the code rather than the generator's stream, so that adding
// them moved no boundary of an existing seed's district.
func residents(seed uint64, code string) (households, population int) {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%s", seed, code)
	r := rand.New(rand.NewPCG(h.Sum64(), seed))
	households = 150 + r.IntN(451)
	population = int(math.Round(float64(households) * (2.3 + 0.6*r.Float64())))
	return households, population
}

// renode makes the grids of one layer (parents before children) share their
// edges vertex for vertex: the finest grids are renoded together and every
// parent becomes the union of its children, from the bottom up.
func (g *generator) renode(fs []*gridmap.Feature) error {
	children := map[string][]*gridmap.Feature{}
	var leaves []*gridmap.Feature
	for _, f := range fs {
		if f.Parent != "" {
			children[f.Parent] = append(children[f.Parent], f)
		}
	}
	for _, f := range fs {
		if len(children[f.Code]) == 0 {
			leaves = append(leaves, f)
		}
	}
	geoms := make([]orb.MultiPolygon, len(leaves))
	for i, f := range leaves {
		geoms[i] = f.Geometry.(orb.MultiPolygon)
	}
	renoded, err := g.sub.Renode(geoms)
	if err != nil {
		return err
	}
	for i, f := range leaves {
		f.Geometry = renoded[i]
	}
	for i := len(fs) - 1; i >= 0; i-- { // children come after parents
		f := fs[i]
		kids := children[f.Code]
		if len(kids) == 0 {
			continue
		}
		parts := make([]orb.MultiPolygon, len(kids))
		for k, c := range kids {
			parts[k] = c.Geometry.(orb.MultiPolygon)
		}
		u, err := g.sub.Union(parts)
		if err != nil {
			return fmt.Errorf("joining the children of %s: %w", f.Code, err)
		}
		f.Geometry = u
	}
	return nil
}

type generator struct {
	rnd   *rand.Rand
	sub   *geo.Subdivider
	names map[string]bool
}

// outline is a smooth, irregular closed shape around center with radii rx, ry
// in degrees: a star-shaped curve, so it never crosses itself.
func (g *generator) outline(center orb.Point, rx, ry float64) orb.MultiPolygon {
	const n = 360
	var amp [6]float64
	var phase [6]float64
	for k := range amp {
		amp[k] = 0.10 / float64(k+1)
		phase[k] = g.rnd.Float64() * 2 * math.Pi
	}
	ring := make(orb.Ring, 0, n+1)
	for i := range n {
		t := 2 * math.Pi * float64(i) / n
		r := 1.0
		for k := range amp {
			r += amp[k] * math.Sin(float64(k+2)*t+phase[k])
		}
		ring = append(ring, orb.Point{round7(center[0] + rx*r*math.Cos(t)), round7(center[1] + ry*r*math.Sin(t))})
	}
	ring = append(ring, ring[0])
	return orb.MultiPolygon{{ring}}
}

func round7(v float64) float64 { return math.Round(v*1e7) / 1e7 }

// split cuts a parent into n cells, trying new seeds if a draw fails.
func (g *generator) split(parent orb.MultiPolygon, n int) ([]orb.MultiPolygon, error) {
	var err error
	for range 5 {
		var cells []orb.MultiPolygon
		if cells, err = g.sub.Subdivide(parent, geo.Seeds(parent, n, g.rnd), g.rnd); err == nil {
			return cells, nil
		}
	}
	return nil, err
}

var (
	nameFirst  = []rune("文翠古西灵转留蒋北三双之青云桂枫竹梅柳荷丹金玉紫锦华龙凤松兰溪")
	nameSecond = []rune("新苑荡溪隐塘下村山墩浦江湾岭桥林港坞园庄河田源湖亭州")
	surnames   = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾")
	given      = []string{"伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "霞", "平", "刚", "桂英", "建华", "晓东", "海燕", "志强", "丽华", "国庆", "文博", "雨欣"}
)

// placeName returns a two-character place name not used before.
func (g *generator) placeName() string {
	for {
		n := string(nameFirst[g.rnd.IntN(len(nameFirst))]) + string(nameSecond[g.rnd.IntN(len(nameSecond))])
		if !g.names[n] {
			g.names[n] = true
			return n
		}
	}
}

func (g *generator) personName() string {
	return string(surnames[g.rnd.IntN(len(surnames))]) + given[g.rnd.IntN(len(given))]
}

// phone returns a mobile number in the 139-0000 block, which no real
// subscriber is given in the demo's made-up district.
func (g *generator) phone() string { return fmt.Sprintf("1390000%04d", g.rnd.IntN(10000)) }

// people returns those responsible for a grid at level: a grid has a
// leader (网格长) and one or two workers (网格员); a micro-grid a liaison.
func (g *generator) people(level string) []gridmap.Person {
	switch level {
	case "grid":
		ps := []gridmap.Person{{Role: gridmap.RoleGridLeader, Name: g.personName(), Phone: g.phone()}}
		for range 1 + g.rnd.IntN(2) {
			ps = append(ps, gridmap.Person{Role: gridmap.RoleGridWorker, Name: g.personName(), Phone: g.phone()})
		}
		return ps
	case "microgrid":
		return []gridmap.Person{{Role: gridmap.RoleLiaison, Name: g.personName(), Phone: g.phone()}}
	}
	return nil
}

// Loaded reports whether the demo layers already hold grids.
func Loaded(ctx context.Context, layers gridmap.LayerService) (bool, error) {
	for _, id := range []string{LayerID, PoliceLayerID} {
		l, err := layers.Layer(ctx, id)
		if gridmap.ErrorCode(err) == gridmap.ENOTFOUND {
			return false, nil
		} else if err != nil {
			return false, err
		}
		total := 0
		for _, n := range l.Counts {
			total += n
		}
		if total == 0 {
			return false, nil
		}
	}
	return true, nil
}

// Load defines the demo layers and imports their grids. Loading the same
// district again changes nothing.
func Load(ctx context.Context, layers gridmap.LayerService, imp gridmap.Importer, d *District) ([]*gridmap.ImportResult, error) {
	var results []*gridmap.ImportResult
	for _, l := range d.Layers {
		def := *l
		if _, err := layers.PutLayer(ctx, &def); err != nil {
			return nil, fmt.Errorf("defining layer %s: %w", l.ID, err)
		}
		res, err := imp.Import(ctx, l.ID, &sliceSource{features: d.Grids[l.ID]},
			gridmap.ImportOptions{Author: "gridmap demo", Reason: "demo district"})
		if err != nil {
			return nil, fmt.Errorf("importing layer %s: %w", l.ID, err)
		}
		results = append(results, res)
	}
	return results, nil
}

type sliceSource struct {
	features []*gridmap.Feature
	next     int
}

func (s *sliceSource) Next() (*gridmap.Feature, error) {
	if s.next >= len(s.features) {
		return nil, io.EOF
	}
	s.next++
	return s.features[s.next-1], nil
}
