package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/labstack/echo/v4"
)

// handleRecurring lists recurring problems (类事): GET /v1/recurring, with
//   - layer: the reports assigned in that layer (default: every layer);
//   - category: the category and its subcategories (400 for an unknown one);
//   - from, to (RFC 3339): reported_at from (inclusive) to (exclusive),
//     default the 90 days to now, at most 366 days;
//   - within_m: the clustering distance in metres, default 30, at most 1000;
//   - min: the fewest reports of a problem, default 10, at least 2.
//
// 200 with {"problems": [{category, center, radius_m, count, first, last,
// members, grids}]}, the largest first; a scoped caller's problems hold
// only the reports in its subtree. 400 saying what to fix.
func (s *Server) handleRecurring(c echo.Context) error {
	finder, ok := s.deps.Reports.(gridmap.RecurringFinder)
	if !ok {
		return gridmap.Errorf(gridmap.ENOTFOUND, "this server does not find recurring problems")
	}
	q, err := recurringQueryOf(c, time.Now())
	if err != nil {
		return err
	}
	problems, err := finder.Recurring(c.Request().Context(), q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"problems": problems})
}

// recurringQueryOf reads GET /v1/recurring's parameters, defaults counted
// back from now. Returns EINVALID saying what to fix.
func recurringQueryOf(c echo.Context, now time.Time) (gridmap.RecurringQuery, error) {
	q := gridmap.RecurringQuery{Layer: c.QueryParam("layer"), Category: c.QueryParam("category"),
		To: now, WithinM: gridmap.DefaultRecurringWithinM, Min: gridmap.DefaultRecurringMin}
	if v := c.QueryParam("to"); v != "" {
		t, err := parseTime("to", v)
		if err != nil {
			return q, err
		}
		q.To = t
	}
	q.From = q.To.Add(-gridmap.DefaultRecurringWindow)
	if v := c.QueryParam("from"); v != "" {
		t, err := parseTime("from", v)
		if err != nil {
			return q, err
		}
		q.From = t
	}
	if v := c.QueryParam("within_m"); v != "" {
		m, err := strconv.ParseFloat(v, 64)
		if err != nil || !(m > 0 && m <= gridmap.MaxRecurringWithinM) {
			return q, gridmap.Errorf(gridmap.EINVALID, "within_m %q must be a number of metres above 0 and at most %g", v, gridmap.MaxRecurringWithinM)
		}
		q.WithinM = m
	}
	if v := c.QueryParam("min"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2 || n > 100000 {
			return q, gridmap.Errorf(gridmap.EINVALID, "min %q must be a whole number of reports from 2 to 100000", v)
		}
		q.Min = n
	}
	if !q.From.Before(q.To) {
		return q, gridmap.Errorf(gridmap.EINVALID, "from %s must be before to %s", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	if q.To.Sub(q.From) > gridmap.MaxRecurringWindow {
		return q, gridmap.Errorf(gridmap.EINVALID, "from %s to %s spans more than %d days; ask for a shorter window",
			q.From.Format(time.RFC3339), q.To.Format(time.RFC3339), int(gridmap.MaxRecurringWindow.Hours()/24))
	}
	return q, nil
}
