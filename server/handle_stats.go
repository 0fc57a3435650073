package server

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/labstack/echo/v4"
)

// handleStats answers the indicators: GET /v1/stats with
//   - layer: the comprehensive layer whose grids group the reports
//     (required except with group=department);
//   - group: grid (the default), street, district or department;
//   - level: any level of the layer, with group=grid;
//   - from, to (RFC 3339): reported at or after, before;
//   - category: the category and its subcategories.
//
// 200 with gridmap.Stats as JSON, or with Accept: text/csv a header row and
// one row per group, in rank order. A scoped caller's figures cover its
// subtree only. 400 saying what to fix for a parameter that is not one.
func (s *Server) handleStats(c echo.Context) error {
	q := gridmap.StatsQuery{Layer: c.QueryParam("layer"), Group: c.QueryParam("group"), Level: c.QueryParam("level"),
		Category: c.QueryParam("category")}
	if q.Group == "" {
		q.Group = gridmap.StatsByGrid
	}
	for _, p := range []struct {
		name string
		dst  **time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if v := c.QueryParam(p.name); v != "" {
			t, err := parseTime(p.name, v)
			if err != nil {
				return err
			}
			*p.dst = &t
		}
	}
	if err := gridmap.CheckStatsQuery(q); err != nil {
		return err
	}
	st, err := s.deps.Stats.Stats(c.Request().Context(), q)
	if err != nil {
		return err
	}
	c.Response().Header().Add(echo.HeaderVary, "Accept")
	if wantsCSV(c.Request().Header.Get(echo.HeaderAccept)) {
		return writeStatsCSV(c, st)
	}
	return c.JSON(http.StatusOK, st)
}

// wantsCSV reads an Accept header that names text/csv.
func wantsCSV(accept string) bool { return acceptsMedia(accept, "text/csv") }

// acceptsMedia reads an Accept header that names the media type want.
func acceptsMedia(accept, want string) bool {
	for _, part := range strings.Split(accept, ",") {
		media, _, _ := strings.Cut(part, ";")
		if strings.EqualFold(strings.TrimSpace(media), want) {
			return true
		}
	}
	return false
}

// statsCSVHeader names the columns of the CSV form, one per figure.
var statsCSVHeader = []string{"rank", "key", "name", "received", "registered", "closed", "closed_on_time", "due", "resolved",
	"reworked", "extended", "suspended", "overdue", "registered_rate", "closure_rate", "on_time_rate", "rework_rate",
	"extension_rate", "median_handling_s"}

// writeStatsCSV writes the rows of st as CSV; a rate without a denominator
// is an empty cell.
func writeStatsCSV(c echo.Context, st *gridmap.Stats) error {
	c.Response().Header().Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	c.Response().WriteHeader(http.StatusOK)
	w := csv.NewWriter(c.Response())
	if err := w.Write(statsCSVHeader); err != nil {
		return err
	}
	num := func(n int64) string { return strconv.FormatInt(n, 10) }
	rate := func(f *float64) string {
		if f == nil {
			return ""
		}
		return strconv.FormatFloat(*f, 'f', -1, 64)
	}
	for _, r := range st.Rows {
		if err := w.Write([]string{strconv.Itoa(r.Rank), csvText(r.Key), csvText(r.Name), num(r.Received), num(r.Registered), num(r.Closed),
			num(r.ClosedOnTime), num(r.Due), num(r.Resolved), num(r.Reworked), num(r.Extended), num(r.Suspended), num(r.Overdue),
			rate(r.RegisteredRate), rate(r.ClosureRate), rate(r.OnTimeRate), rate(r.ReworkRate), rate(r.ExtensionRate),
			rate(r.MedianHandlingS)}); err != nil {
			return err
		}
	}
	w.Flush()
	return w.Error()
}

// csvText keeps a text cell from being read as a formula by a spreadsheet
// (a name an editor typed starting with =, +, -, @, a tab or a return).
func csvText(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}
