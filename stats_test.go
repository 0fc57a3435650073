package gridmap

import (
	"testing"
)

func TestStatsLevel(t *testing.T) {
	nyc := &Layer{ID: "nyc", Levels: []string{"borough", "nta", "tract"}}
	cn := &Layer{ID: "cn", Levels: []string{"district", "street", "community", "grid", "microgrid"}}
	for _, c := range []struct {
		name         string
		l            *Layer
		group, level string
		want         string // "" for EINVALID
	}{
		{"district is the coarsest district-tier level", nyc, StatsByDistrict, "", "borough"},
		{"street is the coarsest street-tier level", cn, StatsByStreet, "", "street"},
		{"grid defaults to the finest grid-tier level", cn, StatsByGrid, "", "microgrid"},
		{"grid with a level takes it", nyc, StatsByGrid, "nta", "nta"},
		{"a level not of the layer is refused", nyc, StatsByGrid, "grid", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := StatsLevel(c.l, c.group, c.level)
			if c.want == "" {
				if ErrorCode(err) != EINVALID {
					t.Errorf("got %q, %v; want EINVALID", got, err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Errorf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

func TestRankStats(t *testing.T) {
	r := func(v float64) *float64 { return &v }
	rows := []StatsRow{
		{Key: "a", StatsFigures: StatsFigures{OnTimeRate: r(0.5), ClosureRate: r(0.9)}},
		{Key: "b", StatsFigures: StatsFigures{OnTimeRate: r(0.8), ClosureRate: r(0.1)}},
		{Key: "c"},
		{Key: "d", StatsFigures: StatsFigures{OnTimeRate: r(0.5), ClosureRate: r(0.9)}},
		{Key: "e", StatsFigures: StatsFigures{OnTimeRate: r(0.5), ClosureRate: r(0.95)}},
	}
	RankStats(rows)
	var got []string
	for _, row := range rows {
		got = append(got, row.Key+":"+string(rune('0'+row.Rank)))
	}
	want := []string{"b:1", "e:2", "a:3", "d:3", "c:5"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("ranked %v, want %v", got, want)
		}
	}
}
