package dispatch

import (
	"testing"
	"time"

	"github.com/gridmap/gridmap"
)

func shanghai(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(DefaultTimeZone)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestDue(t *testing.T) {
	loc := shanghai(t)
	plain := &Calendar{Location: loc}
	// 2026-11-27 is a Friday; 2026-11-30 a Monday.
	mondayOff := &Calendar{Location: loc, Days: map[string]bool{"2026-11-30": false}}
	saturdayOn := &Calendar{Location: loc, Days: map[string]bool{"2026-11-28": true}}
	friday1730 := time.Date(2026, 11, 27, 17, 30, 0, 0, loc)
	cases := []struct {
		name  string
		start time.Time
		limit gridmap.Limit
		cal   *Calendar
		want  string
	}{
		{"4 working hours from Friday 17:30", friday1730, gridmap.Limit{Value: 4, Clock: gridmap.ClockWorkingHours}, plain, "2026-11-30 11:30"},
		{"the same with Monday a holiday", friday1730, gridmap.Limit{Value: 4, Clock: gridmap.ClockWorkingHours}, mondayOff, "2026-12-01 11:30"},
		{"the same with Saturday a working day", friday1730, gridmap.Limit{Value: 4, Clock: gridmap.ClockWorkingHours}, saturdayOn, "2026-11-28 11:30"},
		{"working hours skip lunch", time.Date(2026, 11, 26, 11, 0, 0, 0, loc), gridmap.Limit{Value: 2, Clock: gridmap.ClockWorkingHours}, plain, "2026-11-26 15:00"},
		{"working hours from before the day starts", time.Date(2026, 11, 26, 6, 0, 0, 0, loc), gridmap.Limit{Value: 1.5, Clock: gridmap.ClockWorkingHours}, plain, "2026-11-26 09:30"},
		{"urgent hours run through the night", friday1730, gridmap.Limit{Value: 2, Clock: gridmap.ClockUrgentHours}, plain, "2026-11-27 19:30"},
		{"calendar days", friday1730, gridmap.Limit{Value: 3, Clock: gridmap.ClockCalendarDays}, plain, "2026-11-30 17:30"},
		{"working days skip the weekend", time.Date(2026, 11, 26, 10, 0, 0, 0, loc), gridmap.Limit{Value: 2, Clock: gridmap.ClockWorkingDays}, plain, "2026-11-30 10:00"},
		{"working days from an evening count from the next morning", time.Date(2026, 11, 26, 19, 0, 0, 0, loc), gridmap.Limit{Value: 1, Clock: gridmap.ClockWorkingDays}, plain, "2026-11-30 08:00"},
		{"UTC input, local counting", time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC), gridmap.Limit{Value: 4, Clock: gridmap.ClockWorkingHours}, plain, "2026-11-30 11:30"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Due(c.start, c.limit, c.cal)
			if err != nil {
				t.Fatal(err)
			}
			if s := got.In(loc).Format("2006-01-02 15:04"); s != c.want {
				t.Errorf("due %s, want %s", s, c.want)
			}
		})
	}
	for _, bad := range []gridmap.Limit{{Value: 1, Clock: "fortnights"}, {Value: -1, Clock: gridmap.ClockUrgentHours}} {
		if _, err := Due(friday1730, bad, plain); gridmap.ErrorCode(err) != gridmap.EINVALID {
			t.Errorf("%+v: %v, want EINVALID", bad, err)
		}
	}
}

func TestWorkingTime(t *testing.T) {
	loc := shanghai(t)
	plain := &Calendar{Location: loc}
	mondayOff := &Calendar{Location: loc, Days: map[string]bool{"2026-11-30": false}}
	friday1730 := time.Date(2026, 11, 27, 17, 30, 0, 0, loc)
	cases := []struct {
		name     string
		from, to time.Time
		cal      *Calendar
		want     time.Duration
	}{
		{"over the weekend", friday1730, time.Date(2026, 11, 30, 11, 30, 0, 0, loc), plain, 4 * time.Hour},
		{"over a long weekend", friday1730, time.Date(2026, 12, 1, 11, 30, 0, 0, loc), mondayOff, 4 * time.Hour},
		{"lunch does not count", time.Date(2026, 11, 26, 11, 0, 0, 0, loc), time.Date(2026, 11, 26, 15, 0, 0, 0, loc), plain, 2 * time.Hour},
		{"a night does not count", time.Date(2026, 11, 26, 19, 0, 0, 0, loc), time.Date(2026, 11, 27, 7, 0, 0, 0, loc), plain, 0},
		{"backwards is nothing", time.Date(2026, 11, 27, 9, 0, 0, 0, loc), time.Date(2026, 11, 26, 9, 0, 0, 0, loc), plain, 0},
		{"a whole working week", time.Date(2026, 11, 23, 0, 0, 0, 0, loc), time.Date(2026, 11, 30, 0, 0, 0, 0, loc), plain, 40 * time.Hour},
	}
	for _, c := range cases {
		if got := WorkingTime(c.from, c.to, c.cal); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
	// WorkingTime undoes Due on the working-hours clock.
	for _, start := range []time.Time{friday1730, time.Date(2026, 11, 26, 6, 0, 0, 0, loc), time.Date(2026, 11, 26, 11, 20, 0, 0, loc)} {
		for _, hours := range []float64{0.5, 2, 4, 13, 41} {
			due, err := Due(start, gridmap.Limit{Value: hours, Clock: gridmap.ClockWorkingHours}, mondayOff)
			if err != nil {
				t.Fatal(err)
			}
			if got := WorkingTime(start, due, mondayOff); got != time.Duration(hours*float64(time.Hour)) {
				t.Errorf("from %s, %v working hours are due %s, but WorkingTime counts %s", start, hours, due, got)
			}
		}
	}
	if got := WorkingLeft(time.Date(2026, 11, 30, 9, 0, 0, 0, loc), friday1730, plain); got != -90*time.Minute {
		t.Errorf("overdue since Friday 17:30 on Monday 09:00: got %s, want -1h30m", got)
	}
}

// BenchmarkWorkingLeftAYearOverdue: the time left on a report a year
// overdue, as every list of old reports asks it, against the same count
// over a week.
func BenchmarkWorkingLeftAYearOverdue(b *testing.B) {
	loc, _ := time.LoadLocation(DefaultTimeZone)
	cal := &Calendar{Location: loc, Days: map[string]bool{"2026-10-01": false, "2026-10-02": false, "2026-09-27": true}}
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, loc)
	due := now.AddDate(-1, 0, 0)
	b.ReportAllocs()
	for b.Loop() {
		WorkingLeft(now, due, cal)
	}
}

func BenchmarkWorkingLeftAWeekOverdue(b *testing.B) {
	loc, _ := time.LoadLocation(DefaultTimeZone)
	cal := &Calendar{Location: loc, Days: map[string]bool{"2026-10-01": false, "2026-10-02": false, "2026-09-27": true}}
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, loc)
	due := now.AddDate(0, 0, -7)
	b.ReportAllocs()
	for b.Loop() {
		WorkingLeft(now, due, cal)
	}
}
