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
	// Left is the time to the deadline (assignment.due_at) of a report
	// whose clock runs (not done, not suspended).
	Left *timeLeft `json:"left,omitempty"`
}

// timeLeft is the time to a deadline, negative once it has passed.
type timeLeft struct {
	Seconds int64 `json:"seconds"`
	// WorkingSeconds counts only the working hours of working days: the
	// clock most limits in the responsibility list run on.
	WorkingSeconds int64 `json:"working_seconds"`
	Overdue        bool  `json:"overdue"`
	// Clock is the clock the deadline runs on (the category's limit, or
	// its urgent limit): working_hours and working_days count
	// WorkingSeconds, the others Seconds.
	Clock string `json:"clock"`
}

// view is r as c's caller reads it at now, on clocks k.
func (s *Server) view(c echo.Context, r *gridmap.Report, now time.Time, k *clocks) reportView {
	v := reportView{Report: r, Moves: []string{}}
	caller := callerOf(c)
	if move, _ := s.ruleFor(http.MethodPost, "/v1/reports/:id/events"); caller.Can(move.role) && caller.Scope.HoldsReport(r.Assignment) {
		open := false
		for _, t := range r.Tasks {
			open = open || t.Status == "open"
		}
		v.Moves = dispatch.Moves(r.Status, open)
	}
	if r.Assignment != nil && dispatch.ClockRuns(r.Status) && !r.Assignment.DueAt.IsZero() {
		due := r.Assignment.DueAt
		v.Left = &timeLeft{
			Seconds:        int64(due.Sub(now) / time.Second),
			WorkingSeconds: int64(dispatch.WorkingLeft(now, due, k.cal) / time.Second),
			Overdue:        dispatch.Overdue(r.Status, due, now),
			Clock:          k.clockOf(r),
		}
	}
	return v
}

// views is reports as c's caller reads them now.
func (s *Server) views(c echo.Context, reports []*gridmap.Report) ([]reportView, error) {
	clocks, err := s.clocks.get(c.Request().Context())
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]reportView, len(reports))
	for i, r := range reports {
		out[i] = s.view(c, r, now, clocks)
	}
	return out, nil
}

// clocks is what counting the time left on a report needs: the working
// calendar and the clock each category's limits run on.
type clocks struct {
	cal *dispatch.Calendar
	// limits maps a category's code to the clocks of its limit and of its
	// urgent limit ("" when it has none).
	limits map[string][2]string
}

// clockOf is the clock a report's deadline runs on: its category's limit,
// the urgent limit for an urgent report; "" for a category gone.
func (k *clocks) clockOf(r *gridmap.Report) string {
	l := k.limits[r.Category]
	if r.Urgent && l[1] != "" {
		return l[1]
	}
	return l[0]
}

// clockCache keeps the clocks, read again a minute after they were read,
// or at once after this server changed the calendar or a category. A
// failed read keeps serving what was read before.
type clockCache struct {
	tz         *time.Location
	categories gridmap.CategoryService // nil: no calendar days, no categories

	mu     sync.Mutex
	k      *clocks
	readAt time.Time
	// gen counts forgets: a read begun before one is not kept.
	gen int
}

const clocksFresh = time.Minute

// newClockCache counts in the zone named tz (dispatch.DefaultTimeZone when
// empty or unknown) with what categories keeps.
func newClockCache(tz string, categories gridmap.CategoryService) *clockCache {
	loc, err := time.LoadLocation(tz)
	if tz == "" || err != nil {
		if loc, err = time.LoadLocation(dispatch.DefaultTimeZone); err != nil {
			loc = time.UTC
		}
	}
	return &clockCache{tz: loc, categories: categories}
}

func (cc *clockCache) get(ctx context.Context) (*clocks, error) {
	cc.mu.Lock()
	k, fresh, gen := cc.k, cc.k != nil && time.Since(cc.readAt) < clocksFresh, cc.gen
	cc.mu.Unlock()
	if fresh {
		return k, nil
	}
	// Read without the lock: callers meanwhile read alongside, or the
	// stale clocks; none waits on another's read.
	read, err := cc.read(ctx)
	if err != nil {
		if k != nil {
			return k, nil
		}
		return nil, err
	}
	cc.mu.Lock()
	if cc.gen == gen {
		cc.k, cc.readAt = read, time.Now()
	}
	cc.mu.Unlock()
	return read, nil
}

func (cc *clockCache) read(ctx context.Context) (*clocks, error) {
	k := &clocks{cal: &dispatch.Calendar{Location: cc.tz, Days: map[string]bool{}}, limits: map[string][2]string{}}
	if cc.categories == nil {
		return k, nil
	}
	days, err := cc.categories.CalendarDays(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range days {
		k.cal.Days[d.Date] = d.Working
	}
	cats, err := cc.categories.Categories(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range cats {
		l := [2]string{c.Limit.Clock, ""}
		if c.UrgentLimit != nil {
			l[1] = c.UrgentLimit.Clock
		}
		k.limits[c.Code] = l
	}
	return k, nil
}

// forget makes the next get read the clocks again.
func (cc *clockCache) forget() {
	cc.mu.Lock()
	cc.k = nil
	cc.gen++
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
