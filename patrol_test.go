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
