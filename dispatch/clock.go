package dispatch

import (
	"math"
	"time"

	"github.com/gridmap/gridmap"
)

// DefaultTimeZone is where deadlines are counted unless the deployment says
// otherwise.
const DefaultTimeZone = "Asia/Shanghai"

// Calendar tells working days from rest days: Monday to Friday work unless
// a date is set otherwise (a public holiday, or a weekend day made a working
// day in exchange, 调休).
type Calendar struct {
	Location *time.Location
	// Days overrides the weekday rule, keyed "2006-01-02".
	Days map[string]bool
}

// Working reports whether the local date of t is a working day.
func (c *Calendar) Working(t time.Time) bool {
	t = t.In(c.Location)
	if len(c.Days) > 0 {
		// Looked up without allocating: counting a year of working time
		// asks this of every day.
		var key [len(time.DateOnly)]byte
		if w, ok := c.Days[string(t.AppendFormat(key[:0], time.DateOnly))]; ok {
			return w
		}
	}
	wd := t.Weekday()
	return wd != time.Saturday && wd != time.Sunday
}

// workingWindows are the working hours of a working day: 08:00-12:00 and
// 14:00-18:00.
var workingWindows = [][2]int{{8, 12}, {14, 18}}

// Due returns when a step started at start must be done under limit, in the
// calendar's time zone:
//   - urgent_hours: continuous hours;
//   - working_hours: hours inside 08:00-12:00 and 14:00-18:00 of working
//     days (a report at Friday 17:30 with 4 hours is due Monday 11:30);
//   - working_days: the same local time on the Nth working day after the
//     start's date (a start outside working hours counts from the next
//     working morning, 08:00);
//   - calendar_days: the same local time N days later.
//
// Returns EINVALID for an unknown clock or a negative or non-finite value.
func Due(start time.Time, limit gridmap.Limit, cal *Calendar) (time.Time, error) {
	if math.IsNaN(limit.Value) || math.IsInf(limit.Value, 0) || limit.Value < 0 {
		return time.Time{}, gridmap.Errorf(gridmap.EINVALID, "limit value %v must be a number of hours or days, 0 or more", limit.Value)
	}
	// Deadlines are kept to the microsecond, as PostgreSQL stores them, so
	// a deadline read back equals the one computed.
	start = start.In(cal.Location).Truncate(time.Microsecond)
	switch limit.Clock {
	case gridmap.ClockUrgentHours:
		return start.Add(time.Duration(limit.Value * float64(time.Hour))), nil
	case gridmap.ClockCalendarDays:
		whole := math.Floor(limit.Value)
		return start.AddDate(0, 0, int(whole)).Add(time.Duration((limit.Value - whole) * 24 * float64(time.Hour))), nil
	case gridmap.ClockWorkingHours:
		return addWorkingHours(start, time.Duration(limit.Value*float64(time.Hour)), cal), nil
	case gridmap.ClockWorkingDays:
		return addWorkingDays(start, limit.Value, cal), nil
	}
	return time.Time{}, gridmap.Errorf(gridmap.EINVALID, "clock %q must be one of urgent_hours, working_hours, working_days, calendar_days", limit.Clock)
}

func at(day time.Time, hour int) time.Time {
	y, m, d := day.Date()
	return time.Date(y, m, d, hour, 0, 0, 0, day.Location())
}

// addWorkingHours walks the working windows from start, spending left.
func addWorkingHours(start time.Time, left time.Duration, cal *Calendar) time.Time {
	t := start
	for days := 0; days < 3660; days++ {
		if cal.Working(t) {
			for _, w := range workingWindows {
				from, to := at(t, w[0]), at(t, w[1])
				if t.Before(from) {
					t = from
				}
				if !t.Before(to) {
					continue
				}
				if avail := to.Sub(t); left <= avail {
					return t.Add(left)
				} else {
					left -= avail
					t = to
				}
			}
		}
		t = at(t, 0).AddDate(0, 0, 1)
	}
	return t // ten years of holidays: give up counting
}

// addWorkingDays moves to the same local time n working days later; a
// fraction of a day is spent as working hours (a working day has 8).
func addWorkingDays(start time.Time, n float64, cal *Calendar) time.Time {
	t := start
	if !cal.Working(t) || t.Hour() >= 18 {
		// Counted from the next working morning.
		t = at(t, 0).AddDate(0, 0, 1)
		for i := 0; i < 3660 && !cal.Working(t); i++ {
			t = t.AddDate(0, 0, 1)
		}
		t = at(t, 8)
	} else if t.Hour() < 8 {
		t = at(t, 8)
	}
	whole := int(math.Floor(n))
	for counted, i := 0, 0; counted < whole && i < 3660; i++ {
		t = t.AddDate(0, 0, 1)
		if cal.Working(t) {
			counted++
		}
	}
	if frac := n - float64(whole); frac > 0 {
		t = addWorkingHours(t, time.Duration(frac*8*float64(time.Hour)), cal)
	}
	return t
}

// WorkingTime is the working time between from and to: the part of
// [from, to) inside the working hours of working days (the clock a
// working-hours deadline runs on). It is 0 when to is not after from.
func WorkingTime(from, to time.Time, cal *Calendar) time.Duration {
	if !to.After(from) {
		return 0
	}
	from, to = from.In(cal.Location), to.In(cal.Location)
	var sum time.Duration
	for day, days := at(from, 0), 0; day.Before(to) && days < 3660; day, days = day.AddDate(0, 0, 1), days+1 {
		if !cal.Working(day) {
			continue
		}
		for _, w := range workingWindows {
			start, end := at(day, w[0]), at(day, w[1])
			if start.Before(from) {
				start = from
			}
			if end.After(to) {
				end = to
			}
			if end.After(start) {
				sum += end.Sub(start)
			}
		}
	}
	return sum
}

// WorkingLeft is the working time from now to due, negative (the working
// time since due) once due has passed.
func WorkingLeft(now, due time.Time, cal *Calendar) time.Duration {
	if due.Before(now) {
		return -WorkingTime(due, now, cal)
	}
	return WorkingTime(now, due, cal)
}
