package server

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/labstack/echo/v4"
)

// reportView is a report as the caller reads it: with the workflow moves
// the caller may make on it now, and the time left to its deadline.
type reportView struct {
	*gridmap.Report
	// Moves are the actions the caller may send to
	// POST /v1/reports/{id}/events now, the step the report waits for
	// first; empty for a caller without the role or the jurisdiction.
	Moves []string `json:"moves"`
	// Left is the time to the deadline (assignment.due_at) of an open
	// report.
	Left *timeLeft `json:"left,omitempty"`
}

// timeLeft is the time to a deadline, negative once it has passed.
type timeLeft struct {
	Seconds int64 `json:"seconds"`
	// WorkingSeconds counts only the working hours of working days: the
	// clock most limits in the responsibility list run on.
	WorkingSeconds int64 `json:"working_seconds"`
	Overdue        bool  `json:"overdue"`
}

// view is r as c's caller reads it at now, on calendar cal.
func (s *Server) view(c echo.Context, r *gridmap.Report, now time.Time, cal *dispatch.Calendar) reportView {
	v := reportView{Report: r, Moves: []string{}}
	caller := callerOf(c)
	if move, _ := s.ruleFor(http.MethodPost, "/v1/reports/:id/events"); caller.Can(move.role) && caller.Scope.HoldsReport(r.Assignment) {
		open := false
		for _, t := range r.Tasks {
			open = open || t.Status == "open"
		}
		v.Moves = dispatch.Moves(r.Status, open)
	}
	if r.Assignment != nil && dispatch.Open(r.Status) && !r.Assignment.DueAt.IsZero() {
		due := r.Assignment.DueAt
		v.Left = &timeLeft{
			Seconds:        int64(due.Sub(now) / time.Second),
			WorkingSeconds: int64(dispatch.WorkingLeft(now, due, cal) / time.Second),
			Overdue:        due.Before(now),
		}
	}
	return v
}

// views is reports as c's caller reads them now.
func (s *Server) views(c echo.Context, reports []*gridmap.Report) ([]reportView, error) {
	cal, err := s.calendar.get(c.Request().Context())
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]reportView, len(reports))
	for i, r := range reports {
		out[i] = s.view(c, r, now, cal)
	}
	return out, nil
}

// calendarCache keeps the working calendar for counting time left, read
// again a minute after it was read, or at once after this server changed
// it.
type calendarCache struct {
	tz   *time.Location
	days func(context.Context) ([]gridmap.CalendarDay, error)

	mu     sync.Mutex
	cal    *dispatch.Calendar
	readAt time.Time
}

const calendarFresh = time.Minute

// newCalendarCache counts in the zone named tz (dispatch.DefaultTimeZone
// when empty or unknown) with the days categories keeps, or none.
func newCalendarCache(tz string, categories gridmap.CategoryService) *calendarCache {
	loc, err := time.LoadLocation(tz)
	if tz == "" || err != nil {
		if loc, err = time.LoadLocation(dispatch.DefaultTimeZone); err != nil {
			loc = time.UTC
		}
	}
	cc := &calendarCache{tz: loc, days: func(context.Context) ([]gridmap.CalendarDay, error) { return nil, nil }}
	if categories != nil {
		cc.days = categories.CalendarDays
	}
	return cc
}

func (cc *calendarCache) get(ctx context.Context) (*dispatch.Calendar, error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.cal != nil && time.Since(cc.readAt) < calendarFresh {
		return cc.cal, nil
	}
	days, err := cc.days(ctx)
	if err != nil {
		return nil, err
	}
	cal := &dispatch.Calendar{Location: cc.tz, Days: make(map[string]bool, len(days))}
	for _, d := range days {
		cal.Days[d.Date] = d.Working
	}
	cc.cal, cc.readAt = cal, time.Now()
	return cal, nil
}

// forget makes the next get read the calendar again.
func (cc *calendarCache) forget() {
	cc.mu.Lock()
	cc.cal = nil
	cc.mu.Unlock()
}

// reportAnswer answers with one report as the caller reads it.
func (s *Server) reportAnswer(c echo.Context, status int, r *gridmap.Report) error {
	v, err := s.views(c, []*gridmap.Report{r})
	if err != nil {
		return err
	}
	return c.JSON(status, v[0])
}
