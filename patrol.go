package gridmap

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
)

// Grid workers (网格员) patrol their grids with a phone that records where
// they walk. The phone sends its points in batches; the service keeps them
// for a retention period, follows each worker's last position live, plays a
// day's walk back, and measures how much of each grid the day's walks came
// near (巡查覆盖率).

// Patrol limits and rules.
const (
	// MaxTrackPoints is the most points one track batch may carry.
	MaxTrackPoints = 10_000
	// TrackFutureSlack is how far in the future a point's time may lie
	// (phone clocks drift).
	TrackFutureSlack = 5 * time.Minute
	// DefaultTrackRetention is how long track points are kept unless
	// configured otherwise.
	DefaultTrackRetention = 180 * 24 * time.Hour
	// OnDutyWithin: a worker whose last position is at most this old is on
	// duty.
	OnDutyWithin = 15 * time.Minute
	// TrackGap splits a track into stretches: two points further apart in
	// time are not joined by a line.
	TrackGap = 5 * time.Minute
	// PatrolReachM is how near a track must come to a place for the place
	// to count as patrolled, in metres.
	PatrolReachM = 50
	// maxDeviceLen bounds a device id.
	maxDeviceLen = 128
	// DefaultNearbyWorkers is how many nearby workers are listed unless
	// asked otherwise; MaxNearbyWorkers the most that may be asked for.
	DefaultNearbyWorkers = 20
	MaxNearbyWorkers     = 200
)

// TrackPoint is one recorded position of a worker's phone.
type TrackPoint struct {
	T   time.Time `json:"t"`
	Lon float64   `json:"lon"`
	Lat float64   `json:"lat"`
	// AccuracyM is the phone's stated accuracy, nil when it gave none.
	AccuracyM *float64 `json:"accuracy_m,omitempty"`
}

// trackPointJSON is TrackPoint's object form, for decoding.
type trackPointJSON struct {
	T         time.Time `json:"t"`
	Lon       *float64  `json:"lon"`
	Lat       *float64  `json:"lat"`
	AccuracyM *float64  `json:"accuracy_m"`
}

// UnmarshalJSON reads a point as an object {"t", "lon", "lat",
// "accuracy_m"} or as an array [lon, lat, t, accuracy_m?].
func (p *TrackPoint) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var a []json.RawMessage
		if err := json.Unmarshal(b, &a); err != nil {
			return err
		}
		if len(a) < 3 || len(a) > 4 {
			return Errorf(EINVALID, "a point as an array is [lon, lat, time, accuracy_m?], not %d values", len(a))
		}
		for i, dst := range []any{&p.Lon, &p.Lat, &p.T} {
			if err := json.Unmarshal(a[i], dst); err != nil {
				return err
			}
		}
		if len(a) == 4 && string(a[3]) != "null" {
			p.AccuracyM = new(float64)
			return json.Unmarshal(a[3], p.AccuracyM)
		}
		return nil
	}
	var o trackPointJSON
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	if o.Lon == nil || o.Lat == nil {
		return Errorf(EINVALID, "a point needs lon and lat")
	}
	*p = TrackPoint{T: o.T, Lon: *o.Lon, Lat: *o.Lat, AccuracyM: o.AccuracyM}
	return nil
}

// TrackBatch is what a worker's phone sends: points in CRS (wgs84 when
// empty), in any order.
type TrackBatch struct {
	Device string       `json:"device"`
	CRS    string       `json:"crs"`
	Points []TrackPoint `json:"points"`
}

// TrackResult says what became of a batch's points: stored, already stored
// before (a retried batch), or older than the retention and not stored.
type TrackResult struct {
	Stored     int `json:"stored"`
	Duplicates int `json:"duplicates"`
	Expired    int `json:"expired"`
}

// CheckTrackBatch checks a batch before anything of it is stored: a
// device, 1 to MaxTrackPoints points, each with a time no later than
// TrackFutureSlack after now, a longitude and latitude in range and a
// non-negative accuracy. Returns EINVALID naming the first bad point's
// index, ETOOLARGE past MaxTrackPoints. The CRS is the converter's to
// check.
func CheckTrackBatch(b *TrackBatch, now time.Time) error {
	switch {
	case b.Device == "":
		return Errorf(EINVALID, "device is required: an id of the phone sending the points, the same for every batch from it")
	case len(b.Device) > maxDeviceLen:
		return Errorf(EINVALID, "device is %d bytes long; give an id of at most %d", len(b.Device), maxDeviceLen)
	case len(b.Points) == 0:
		return Errorf(EINVALID, "points is empty; send at least one point")
	case len(b.Points) > MaxTrackPoints:
		return Errorf(ETOOLARGE, "the batch has %d points; send at most %d a batch, in several batches", len(b.Points), MaxTrackPoints)
	}
	latest := now.Add(TrackFutureSlack)
	for i, p := range b.Points {
		switch {
		case p.T.IsZero():
			return Errorf(EINVALID, "point %d has no time; give t as RFC 3339, such as 2026-11-29T08:00:00+08:00", i)
		case p.T.After(latest):
			return Errorf(EINVALID, "point %d is at %s, more than %v after now (%s); check the phone's clock",
				i, p.T.Format(time.RFC3339), TrackFutureSlack, now.UTC().Format(time.RFC3339))
		case p.T.Year() < 2000:
			return Errorf(EINVALID, "point %d is at %s; check the phone's clock", i, p.T.Format(time.RFC3339))
		case p.AccuracyM != nil && (math.IsNaN(*p.AccuracyM) || math.IsInf(*p.AccuracyM, 0) || *p.AccuracyM < 0):
			return Errorf(EINVALID, "point %d: accuracy_m %v must be a number of metres, 0 or more", i, *p.AccuracyM)
		}
		if err := CheckLonLat(p.Lon, p.Lat); err != nil {
			return Errorf(EINVALID, "point %d: %s", i, err.(*Error).Message)
		}
	}
	return nil
}

// WorkerGrid is where a worker belongs: the layer of their person link and
// the codes of its grid's chain (root first, the grid last).
type WorkerGrid struct {
	Layer string   `json:"layer"`
	Codes []string `json:"codes"`
}

// HoldsWorker reports whether a worker of grid w lies inside the scope: the
// scope's grid is in the chain of the worker's grid. A worker without a
// person link (nil w) belongs only to unscoped callers.
func (s *Scope) HoldsWorker(w *WorkerGrid) bool {
	if s == nil {
		return true
	}
	return w != nil && w.Layer == s.Layer && slices.Contains(w.Codes, s.Code)
}

// MaySeeWorkers reports whether the caller may see where workers are (live
// positions, tracks): dispatchers and stronger roles. Viewers and the
// workers themselves (reporters) may not. A scoped caller sees only the
// workers its scope holds (Scope.HoldsWorker).
func (c *Caller) MaySeeWorkers() bool { return c.Can(RoleDispatcher) }

// WorkerPosition is a worker's last known position.
type WorkerPosition struct {
	Worker    string    `json:"worker"` // the account's username
	Name      string    `json:"name"`   // its display name
	Device    string    `json:"device"`
	T         time.Time `json:"t"`
	Lon       float64   `json:"lon"`
	Lat       float64   `json:"lat"`
	AccuracyM *float64  `json:"accuracy_m"`
	// Grid and Layer are the worker's person link ("" without one).
	Grid  string `json:"grid"`
	Layer string `json:"layer"`
}

// NearbyWorker is an on-duty worker near a report.
type NearbyWorker struct {
	WorkerPosition
	// Person is the name of the grid person the account is linked to.
	Person    string  `json:"person"`
	DistanceM float64 `json:"distance_m"`
	// SeenAt is the time of the last position (T).
	SeenAt time.Time `json:"seen_at"`
}

// PatrolCoverage is a day's patrol coverage per grid of one level.
type PatrolCoverage struct {
	Layer string        `json:"layer"`
	Level string        `json:"level"`
	Day   string        `json:"day"`
	Rows  []CoverageRow `json:"rows"`
}

// CoverageRow is one grid's patrol coverage: the share of its area within
// PatrolReachM of the day's tracks of its workers (the accounts linked to
// it or a grid below it).
type CoverageRow struct {
	Code      string  `json:"code"`
	Name      string  `json:"name"`
	Workers   int     `json:"workers"`
	Points    int     `json:"points"`
	CoveredM2 float64 `json:"covered_m2"`
	AreaM2    float64 `json:"area_m2"`
	Coverage  float64 `json:"coverage"`
}

// PatrolLevel is the level of layer l whose grids patrol coverage is
// measured for when none is asked for: the coarsest grid-tier level that
// a worker's person grid lies at (linked holds those levels), so that
// every worker of the grid tier counts for the grid they are linked to or
// the one above it; without such workers, the finest grid-tier level (or
// the finest level, for a layer without a grid tier).
func PatrolLevel(l *Layer, linked []string) string {
	for _, lv := range l.Levels {
		if l.TierOfLevel(lv) == TierGrid && slices.Contains(linked, lv) {
			return lv
		}
	}
	if lv := l.FinestLevelOfTier(TierGrid); lv != "" {
		return lv
	}
	return l.Levels[len(l.Levels)-1]
}

// CoverageShare is a grid's coverage: covered over area, at most 1 (the
// buffers are measured on a projection), 0 for a grid without area.
func CoverageShare(covered, area float64) float64 {
	if area <= 0 {
		return 0
	}
	return min(1, covered/area)
}

// IdleGrids are the grids of one level nobody patrolled on any of the
// last Days days that are kept, From to To (dates in the service's time
// zone; today is not over and not counted).
type IdleGrids struct {
	Layer string `json:"layer"`
	Level string `json:"level"`
	Days  int    `json:"days"`
	From  string `json:"from"`
	To    string `json:"to"`
	// MeasuredDays are the days of From to To whose coverage is kept:
	// fewer than Days when some lie before the retention, or are still
	// being measured (ask again shortly).
	MeasuredDays int        `json:"measured_days"`
	Rows         []IdleGrid `json:"rows"`
}

// IdleGrid is a grid whose patrol coverage was 0 on each day of an
// IdleGrids; LastPatrol is the last day it was above 0 (nil: never, as
// far as days are kept).
type IdleGrid struct {
	Code       string  `json:"code"`
	Name       string  `json:"name"`
	Workers    int     `json:"workers"`
	LastPatrol *string `json:"last_patrol"`
}

// PatrolService keeps workers' tracks and answers where they are and where
// they went. The caller in the context is the worker for AddTrack and the
// reader otherwise: a scoped reader sees only the workers and grids of its
// scope.
type PatrolService interface {
	// AddTrack stores a batch of the calling account's points, each point
	// once (per account, device and time), and moves its last position
	// when the batch has a newer one. Returns EINVALID for a bad batch
	// (nothing stored), EFORBIDDEN for a caller that is not an account,
	// EUNAVAILABLE when the batch must wait (nothing stored; send it
	// again).
	AddTrack(ctx context.Context, b *TrackBatch) (*TrackResult, error)
	// Workers lists the on-duty workers (last position within
	// OnDutyWithin) linked to layer's grids ("" every worker), nearest
	// in time first.
	Workers(ctx context.Context, layer string) ([]WorkerPosition, error)
	// Track returns a worker's points of one day (YYYY-MM-DD in the
	// service's time zone) in time order. Returns ENOTFOUND for an unknown
	// worker or one outside the caller's scope, EINVALID for a bad day.
	Track(ctx context.Context, worker, day string) ([]TrackPoint, error)
	// Coverage answers one day's patrol coverage per grid of a level
	// ("" PatrolLevel). A day over, of that level, is
	// measured once and kept (points arriving later have it measured
	// again); today and other levels are measured when asked. Returns
	// ENOTFOUND for an unknown layer, EINVALID for a bad level or day.
	Coverage(ctx context.Context, layer, level, day string) (*PatrolCoverage, error)
	// Idle lists the grids of the default level (PatrolLevel) whose coverage
	// was 0 on each of the last days days (yesterday and before). Returns
	// as Coverage does, and EINVALID for another level.
	Idle(ctx context.Context, layer, level string, days int) (*IdleGrids, error)
	// PatrolFigures counts the workers' and grids' figures of an
	// assessment (see Assess). Returns EFORBIDDEN for a caller that may
	// not see workers, and as Coverage does.
	PatrolFigures(ctx context.Context, q AssessmentQuery) (*PatrolFigures, error)
	// NearbyWorkers lists the limit (1 to MaxNearbyWorkers) nearest
	// on-duty workers of a report's grid and of the grids bordering it,
	// nearest first. Returns ENOTFOUND, EFORBIDDEN as reading the report
	// does, EINVALID for a limit out of range.
	NearbyWorkers(ctx context.Context, report int64, limit int) ([]NearbyWorker, error)
}

// ParseNearbyLimit reads how many nearby workers to list: "" is
// DefaultNearbyWorkers, else a whole number from 1 to MaxNearbyWorkers.
// Returns EINVALID saying what to send.
func ParseNearbyLimit(v string) (int, error) {
	if v == "" {
		return DefaultNearbyWorkers, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxNearbyWorkers {
		return 0, Errorf(EINVALID, "limit %q must be a whole number from 1 to %d (default %d)", v, MaxNearbyWorkers, DefaultNearbyWorkers)
	}
	return n, nil
}

// ParseDay reads a day as YYYY-MM-DD in tz and returns its start and end.
// Returns EINVALID saying the form.
func ParseDay(day string, tz *time.Location) (time.Time, time.Time, error) {
	d, err := time.ParseInLocation(time.DateOnly, day, tz)
	if err != nil {
		return time.Time{}, time.Time{}, Errorf(EINVALID, "day %q must be a date as YYYY-MM-DD", day)
	}
	return d, d.AddDate(0, 0, 1), nil
}

// DayOf is the date of t in tz, as midnight UTC of that date (how a date
// column reads and writes).
func DayOf(t time.Time, tz *time.Location) time.Time {
	y, m, d := t.In(tz).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// DayBounds is the start and end in tz of the date day (a DayOf).
func DayBounds(day time.Time, tz *time.Location) (time.Time, time.Time) {
	start := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, tz)
	return start, start.AddDate(0, 0, 1)
}

// WholeDaysOver are the days (DayOf dates in tz) a patrol figure of [from,
// to) counts at now: those wholly inside the window and over, oldest
// first. Today is never one of them.
func WholeDaysOver(from, to, now time.Time, tz *time.Location) []time.Time {
	first := DayOf(from, tz)
	if start, _ := DayBounds(first, tz); start.Before(from) {
		first = first.AddDate(0, 0, 1)
	}
	var days []time.Time
	for d := first; ; d = d.AddDate(0, 0, 1) {
		if _, end := DayBounds(d, tz); end.After(to) || end.After(now) {
			return days
		}
		days = append(days, d)
	}
}

// TrackStretches cuts time-ordered points into stretches wherever two
// points are more than TrackGap apart.
func TrackStretches(points []TrackPoint) [][]TrackPoint {
	var out [][]TrackPoint
	start := 0
	for i := 1; i <= len(points); i++ {
		if i == len(points) || points[i].T.Sub(points[i-1].T) > TrackGap {
			out = append(out, points[start:i])
			start = i
		}
	}
	return out
}
