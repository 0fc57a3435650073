package gridmap

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestCheckTrackBatch(t *testing.T) {
	now := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	ok := TrackPoint{T: now, Lon: 120, Lat: 30}
	acc := -1.0
	for _, tc := range []struct {
		name string
		b    TrackBatch
		code string
		says string
	}{
		{"a good batch", TrackBatch{Device: "d", Points: []TrackPoint{ok}}, "", ""},
		{"four minutes ahead is a clock's drift", TrackBatch{Device: "d", Points: []TrackPoint{{T: now.Add(4 * time.Minute), Lon: 1, Lat: 1}}}, "", ""},
		{"six minutes ahead is refused", TrackBatch{Device: "d", Points: []TrackPoint{ok, {T: now.Add(6 * time.Minute), Lon: 1, Lat: 1}}}, EINVALID, "point 1"},
		{"a point without a time", TrackBatch{Device: "d", Points: []TrackPoint{ok, ok, {Lon: 1, Lat: 1}}}, EINVALID, "point 2 has no time"},
		{"a negative accuracy", TrackBatch{Device: "d", Points: []TrackPoint{{T: now, Lon: 1, Lat: 1, AccuracyM: &acc}}}, EINVALID, "point 0: accuracy_m"},
		{"a longitude out of range", TrackBatch{Device: "d", Points: []TrackPoint{{T: now, Lon: 181, Lat: 1}}}, EINVALID, "point 0: lon"},
		{"no points", TrackBatch{Device: "d"}, EINVALID, "at least one"},
		{"no device", TrackBatch{Points: []TrackPoint{ok}}, EINVALID, "device"},
		{"too many points", TrackBatch{Device: "d", Points: make([]TrackPoint, MaxTrackPoints+1)}, ETOOLARGE, "at most 10000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckTrackBatch(&tc.b, now)
			if ErrorCode(err) != tc.code && !(tc.code == "" && err == nil) || err != nil && !strings.Contains(ErrorMessage(err), tc.says) {
				t.Errorf("got %v, want %q saying %q", err, tc.code, tc.says)
			}
		})
	}
}

func TestTrackStretches(t *testing.T) {
	at := func(min float64) TrackPoint {
		return TrackPoint{T: time.Unix(0, 0).Add(time.Duration(min * float64(time.Minute)))}
	}
	got := TrackStretches([]TrackPoint{at(0), at(1), at(6), at(11.5), at(12)}) // 5 min exactly joins; 5.5 breaks
	if len(got) != 2 || len(got[0]) != 3 || len(got[1]) != 2 {
		t.Errorf("stretches %v, want [0 1 6] [11.5 12]", got)
	}
	if got := TrackStretches(nil); len(got) != 0 {
		t.Errorf("no points: %v", got)
	}
}

func TestScopeHoldsWorker(t *testing.T) {
	w := &WorkerGrid{Layer: "L", Codes: []string{"D", "S1", "G1"}}
	for _, tc := range []struct {
		name  string
		scope *Scope
		w     *WorkerGrid
		want  bool
	}{
		{"no scope holds every worker", nil, w, true},
		{"no scope holds a worker without a grid", nil, nil, true},
		{"the worker's street", &Scope{Layer: "L", Code: "S1"}, w, true},
		{"another street", &Scope{Layer: "L", Code: "S2"}, w, false},
		{"another layer", &Scope{Layer: "M", Code: "S1"}, w, false},
		{"a worker without a grid is nobody's", &Scope{Layer: "L", Code: "D"}, nil, false},
	} {
		if got := tc.scope.HoldsWorker(tc.w); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	for role, want := range map[string]bool{RoleViewer: false, RoleReporter: false, RoleDispatcher: true, RoleAdmin: true} {
		if got := (&Caller{Role: role}).MaySeeWorkers(); got != want {
			t.Errorf("a %s may see workers: %v, want %v", role, got, want)
		}
	}
}

// FuzzTrackPoint: a point's JSON, object or array, either decodes to a
// point that encodes and decodes back to itself, or is refused; never a
// panic.
func FuzzTrackPoint(f *testing.F) {
	for _, s := range []string{`{"t":"2026-11-29T08:00:00+08:00","lon":120.1,"lat":30.2,"accuracy_m":5}`,
		`[120.1, 30.2, "2026-11-29T08:00:00Z"]`, `[120.1, 30.2, "2026-11-29T08:00:00Z", null]`, `[1,2]`, `{"lon":1}`, `[]`, `null`, `"x"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var p TrackPoint
		if json.Unmarshal([]byte(s), &p) != nil {
			return
		}
		b, err := json.Marshal(p)
		if err != nil {
			return // a time past year 9999
		}
		var q TrackPoint
		if err := json.Unmarshal(b, &q); err != nil || !q.T.Equal(p.T) || q.Lon != p.Lon || q.Lat != p.Lat {
			t.Errorf("%s -> %s -> %+v, %v", s, b, q, err)
		}
	})
}

func TestPatrolLevel(t *testing.T) {
	demo := &Layer{ID: "d", Levels: []string{"district", "street", "community", "grid", "microgrid"}}
	tiered := &Layer{ID: "t", Levels: []string{"city", "district", "block", "cell"},
		Tiers: map[string]string{"city": TierDistrict, "district": TierStreet, "block": TierGrid, "cell": TierGrid}}
	noGridTier := &Layer{ID: "n", Levels: []string{"a", "b"}, Tiers: map[string]string{"a": TierDistrict, "b": TierStreet}}
	for _, tc := range []struct {
		name   string
		l      *Layer
		linked []string
		want   string
	}{
		{"workers at grids: the grids", demo, []string{"grid"}, "grid"},
		{"workers at grids and micro-grids: the grids, so all count", demo, []string{"microgrid", "grid"}, "grid"},
		{"workers at micro-grids only", demo, []string{"microgrid"}, "microgrid"},
		{"no workers: the finest grid-tier level", demo, nil, "microgrid"},
		{"workers above the grid tier only: the finest grid-tier level", demo, []string{"community", "street"}, "microgrid"},
		{"tiers named by the layer", tiered, []string{"cell", "district"}, "cell"},
		{"the coarsest of the named grid tier", tiered, []string{"cell", "block"}, "block"},
		{"a layer without a grid tier: its finest level", noGridTier, []string{"a"}, "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PatrolLevel(tc.l, tc.linked); got != tc.want {
				t.Errorf("PatrolLevel(%v, %v) = %q; want %q", tc.l.Levels, tc.linked, got, tc.want)
			}
		})
	}
}

func TestWholeDaysOver(t *testing.T) {
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, sh)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	now := at("2026-11-30 09:15")
	for _, tc := range []struct {
		name     string
		from, to time.Time
		want     string
	}{
		{"this month to now: the days over", at("2026-11-28 00:00"), now, "2026-11-28 2026-11-29"},
		{"a window starting mid-day leaves that day out", at("2026-11-27 08:00"), now, "2026-11-28 2026-11-29"},
		{"a window ending mid-day leaves that day out", at("2026-11-26 00:00"), at("2026-11-28 12:00"), "2026-11-26 2026-11-27"},
		{"a window ending at midnight counts the day before", at("2026-11-26 00:00"), at("2026-11-27 00:00"), "2026-11-26"},
		{"today is never over", at("2026-11-30 00:00"), at("2026-12-01 00:00"), ""},
		{"a window inside one day", at("2026-11-29 01:00"), at("2026-11-29 23:00"), ""},
		{"from as UTC is the same instant", at("2026-11-28 00:00").UTC(), now, "2026-11-28 2026-11-29"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, d := range WholeDaysOver(tc.from, tc.to, now, sh) {
				got = append(got, d.Format(time.DateOnly))
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("WholeDaysOver(%s, %s) = %v; want %s", tc.from, tc.to, got, tc.want)
			}
		})
	}
}
