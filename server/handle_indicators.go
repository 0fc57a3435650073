package server

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/labstack/echo/v4"
)

// windowParams reads the from and to parameters (RFC 3339), nil when
// absent. Returns EINVALID naming a parameter that is not a time.
func windowParams(c echo.Context) (from, to *time.Time, err error) {
	for _, p := range []struct {
		name string
		dst  **time.Time
	}{{"from", &from}, {"to", &to}} {
		if v := c.QueryParam(p.name); v != "" {
			t, err := parseTime(p.name, v)
			if err != nil {
				return nil, nil, err
			}
			*p.dst = &t
		}
	}
	return from, to, nil
}

// handleStatsFlags raises the flags ("one grid, one project", 一网格一专项):
// GET /v1/stats/flags with layer (required), level, from, to (RFC 3339; by
// default the 30 days before now) and category. 200 with gridmap.Flags, or
// with Accept: text/csv a header row and one row per flag. A scoped
// caller's flags are its subtree's grids'. 400 saying what to fix.
func (s *Server) handleStatsFlags(c echo.Context) error {
	from, to, err := windowParams(c)
	if err != nil {
		return err
	}
	fl, err := s.deps.Indicators.Flags(c.Request().Context(), gridmap.FlagsQuery{Layer: c.QueryParam("layer"),
		Level: c.QueryParam("level"), From: from, To: to, Category: c.QueryParam("category")})
	if err != nil {
		return err
	}
	c.Response().Header().Add(echo.HeaderVary, "Accept")
	if !wantsCSV(c.Request().Header.Get(echo.HeaderAccept)) {
		return c.JSON(http.StatusOK, fl)
	}
	return writeCSV(c, []string{"key", "name", "kind", "indicator", "category", "value", "limit", "baseline_mean", "baseline_sd",
		"weeks", "reason"}, len(fl.Flags), func(i int) []string {
		f := fl.Flags[i]
		weeks := ""
		for j, n := range f.Weeks {
			if j > 0 {
				weeks += " "
			}
			weeks += strconv.FormatInt(n, 10)
		}
		return []string{csvText(f.Key), csvText(f.Name), f.Kind, f.Indicator, csvText(f.Category), csvNumber(&f.Value),
			csvNumber(&f.Limit), csvNumber(f.BaselineMean), csvNumber(f.BaselineSD), weeks, csvText(f.Reason)}
	})
}

// handleStatsWorkload compares the grids' loads (负载均衡): GET
// /v1/stats/workload with layer (required), level, from and to (by default
// the 30 days before now). 200 with gridmap.Workload, or with Accept:
// text/csv a header row and one row per grid, by load index. A scoped
// caller gets its subtree's grids.
func (s *Server) handleStatsWorkload(c echo.Context) error {
	from, to, err := windowParams(c)
	if err != nil {
		return err
	}
	w, err := s.deps.Indicators.Workload(c.Request().Context(), gridmap.WorkloadQuery{Layer: c.QueryParam("layer"),
		Level: c.QueryParam("level"), From: from, To: to})
	if err != nil {
		return err
	}
	c.Response().Header().Add(echo.HeaderVary, "Accept")
	if !wantsCSV(c.Request().Header.Get(echo.HeaderAccept)) {
		return c.JSON(http.StatusOK, w)
	}
	return writeCSV(c, []string{"key", "name", "households", "population", "received", "open", "per_1000_residents",
		"per_100_households", "load_index"}, len(w.Rows), func(i int) []string {
		r := w.Rows[i]
		return []string{csvText(r.Key), csvText(r.Name), csvNumber(r.Households), csvNumber(r.Population),
			strconv.FormatInt(r.Received, 10), strconv.FormatInt(r.Open, 10), csvNumber(r.Per1000Residents),
			csvNumber(r.Per100Households), csvNumber(r.LoadIndex)}
	})
}

// handleStatsTrend draws a grid's trend: GET /v1/stats/trend with layer
// and code (required), from, to (by default the 12 weeks before now),
// bucket (day, week (the default) or month, in the server's zone) and
// category. 200 with gridmap.Trend, or with Accept: text/csv one row per
// bucket; 404 for a grid that does not exist or lies outside a scoped
// caller's area; 400 for more than gridmap.MaxTrendBuckets buckets.
func (s *Server) handleStatsTrend(c echo.Context) error {
	from, to, err := windowParams(c)
	if err != nil {
		return err
	}
	q := gridmap.TrendQuery{Layer: c.QueryParam("layer"), Code: c.QueryParam("code"), From: from, To: to,
		Bucket: c.QueryParam("bucket"), Category: c.QueryParam("category")}
	if q.Layer == "" || q.Code == "" {
		return gridmap.Errorf(gridmap.EINVALID, "layer and code are required: the grid whose trend is drawn")
	}
	tr, err := s.deps.Indicators.Trend(c.Request().Context(), q)
	if err != nil {
		return err
	}
	c.Response().Header().Add(echo.HeaderVary, "Accept")
	if !wantsCSV(c.Request().Header.Get(echo.HeaderAccept)) {
		return c.JSON(http.StatusOK, tr)
	}
	return writeCSV(c, []string{"start", "received", "registered", "closed", "closed_on_time", "overdue"}, len(tr.Points),
		func(i int) []string {
			p := tr.Points[i]
			return []string{p.Start.Format(time.RFC3339), strconv.FormatInt(p.Received, 10), strconv.FormatInt(p.Registered, 10),
				strconv.FormatInt(p.Closed, 10), strconv.FormatInt(p.ClosedOnTime, 10), strconv.FormatInt(p.Overdue, 10)}
		})
}

// handleStatsRules answers the flags' rules: GET /v1/stats/rules.
func (s *Server) handleStatsRules(c echo.Context) error {
	r, err := s.deps.Indicators.IndicatorRules(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

// rulesRequest is the body of PUT /v1/stats/rules: every field required.
type rulesRequest struct {
	MinOnTimeRate  *float64 `json:"min_on_time_rate"`
	MinClosureRate *float64 `json:"min_closure_rate"`
	MaxReworkRate  *float64 `json:"max_rework_rate"`
	MaxOverdue     *int64   `json:"max_overdue"`
	MinDue         *int64   `json:"min_due"`
	SurgeSigma     *float64 `json:"surge_sigma"`
	SurgeWeeks     *int     `json:"surge_weeks"`
	SurgeMinCount  *int64   `json:"surge_min_count"`
}

// handlePutStatsRules replaces the flags' rules (admins): PUT
// /v1/stats/rules with every field of gridmap.IndicatorRules. 200 with the
// rules; 400 naming a missing field or one out of range, changing nothing.
// The audit log records the rules before and after.
func (s *Server) handlePutStatsRules(c echo.Context) error {
	var body rulesRequest
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	var r gridmap.IndicatorRules
	for _, f := range []struct {
		name string
		set  bool
		copy func()
	}{
		{"min_on_time_rate", body.MinOnTimeRate != nil, func() { r.MinOnTimeRate = *body.MinOnTimeRate }},
		{"min_closure_rate", body.MinClosureRate != nil, func() { r.MinClosureRate = *body.MinClosureRate }},
		{"max_rework_rate", body.MaxReworkRate != nil, func() { r.MaxReworkRate = *body.MaxReworkRate }},
		{"max_overdue", body.MaxOverdue != nil, func() { r.MaxOverdue = *body.MaxOverdue }},
		{"min_due", body.MinDue != nil, func() { r.MinDue = *body.MinDue }},
		{"surge_sigma", body.SurgeSigma != nil, func() { r.SurgeSigma = *body.SurgeSigma }},
		{"surge_weeks", body.SurgeWeeks != nil, func() { r.SurgeWeeks = *body.SurgeWeeks }},
		{"surge_min_count", body.SurgeMinCount != nil, func() { r.SurgeMinCount = *body.SurgeMinCount }},
	} {
		if !f.set {
			return gridmap.Errorf(gridmap.EINVALID, "%s is required: PUT sends every rule (GET /v1/stats/rules has the current ones)", f.name)
		}
		f.copy()
	}
	before, err := s.deps.Indicators.PutIndicatorRules(c.Request().Context(), r)
	if err != nil {
		return err
	}
	setVersions(c, before, r)
	return c.JSON(http.StatusOK, r)
}

// writeCSV answers a header and n rows as CSV.
func writeCSV(c echo.Context, header []string, n int, row func(i int) []string) error {
	c.Response().Header().Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	c.Response().WriteHeader(http.StatusOK)
	w := csv.NewWriter(c.Response())
	if err := w.Write(header); err != nil {
		return err
	}
	for i := range n {
		if err := w.Write(row(i)); err != nil {
			return err
		}
	}
	w.Flush()
	return w.Error()
}

// csvNumber is a number's cell, empty for nil.
func csvNumber(f *float64) string {
	if f == nil {
		return ""
	}
	return strconv.FormatFloat(*f, 'f', -1, 64)
}
