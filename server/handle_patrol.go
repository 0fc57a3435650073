package server

import (
	"cmp"
	"net/http"
	"strconv"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/labstack/echo/v4"
)

// handlePatrolCoverage measures a day's patrol coverage (巡查覆盖率) per
// grid: GET /v1/patrol/coverage?layer=&level=&day=YYYY-MM-DD (level by
// default gridmap.PatrolLevel, day by default today in the
// deployment's time zone) -> gridmap.PatrolCoverage, or with Accept:
// text/csv a header row and one row per grid. A scoped caller gets its
// subtree's grids. 400 saying what to fix, 404 for an unknown layer.
func (s *Server) handlePatrolCoverage(c echo.Context) error {
	day := cmp.Or(c.QueryParam("day"), time.Now().In(s.zone()).Format(time.DateOnly))
	cov, err := s.deps.Patrols.Coverage(c.Request().Context(), c.QueryParam("layer"), c.QueryParam("level"), day)
	if err != nil {
		return err
	}
	c.Response().Header().Add(echo.HeaderVary, "Accept")
	if !wantsCSV(c.Request().Header.Get(echo.HeaderAccept)) {
		return c.JSON(http.StatusOK, cov)
	}
	return writeCSV(c, []string{"code", "name", "workers", "points", "covered_m2", "area_m2", "coverage"}, len(cov.Rows), func(i int) []string {
		r := cov.Rows[i]
		return []string{csvText(r.Code), csvText(r.Name), strconv.Itoa(r.Workers), strconv.Itoa(r.Points),
			strconv.FormatFloat(r.CoveredM2, 'f', 1, 64), strconv.FormatFloat(r.AreaM2, 'f', 1, 64), strconv.FormatFloat(r.Coverage, 'f', 4, 64)}
	})
}

// handlePatrolIdle lists the grids nobody patrolled lately: GET
// /v1/patrol/idle?layer=&level=&days=N (default 7) -> gridmap.IdleGrids,
// or CSV with Accept: text/csv: the grids of the layer's default patrol
// level whose patrol coverage was 0 on each of the last N days (yesterday
// and before), with the last day it was not (null: never). 400 saying what
// to fix, 404 for an unknown layer.
func (s *Server) handlePatrolIdle(c echo.Context) error {
	days := 7
	if v := c.QueryParam("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return gridmap.Errorf(gridmap.EINVALID, "days %q must be a whole number of days, such as 7", v)
		}
		days = n
	}
	idle, err := s.deps.Patrols.Idle(c.Request().Context(), c.QueryParam("layer"), c.QueryParam("level"), days)
	if err != nil {
		return err
	}
	c.Response().Header().Add(echo.HeaderVary, "Accept")
	if !wantsCSV(c.Request().Header.Get(echo.HeaderAccept)) {
		return c.JSON(http.StatusOK, idle)
	}
	return writeCSV(c, []string{"code", "name", "workers", "last_patrol"}, len(idle.Rows), func(i int) []string {
		r := idle.Rows[i]
		last := ""
		if r.LastPatrol != nil {
			last = *r.LastPatrol
		}
		return []string{csvText(r.Code), csvText(r.Name), strconv.Itoa(r.Workers), last}
	})
}

// handlePatrol answers the day's patrol coverage under API.md's name: GET
// /v1/patrol?layer=&date=YYYY-MM-DD[&level=][&grid=][&parent=] -> the
// answer of GET /v1/patrol/coverage, with date for day, narrowed to one
// grid (grid) or to the grids below one (parent). 404 for a grid or parent
// that is not a current grid of the layer.
func (s *Server) handlePatrol(c echo.Context) error {
	ctx := c.Request().Context()
	layer, grid, parent := c.QueryParam("layer"), c.QueryParam("grid"), c.QueryParam("parent")
	if grid != "" {
		if _, err := s.deps.Grids.Grid(ctx, layer, grid); err != nil {
			return err
		}
	}
	var below map[string]bool
	if parent != "" {
		codes, err := s.deps.Grids.Below(ctx, layer, parent)
		if err != nil {
			return err
		}
		below = make(map[string]bool, len(codes))
		for _, code := range codes {
			below[code] = true
		}
	}
	day := cmp.Or(c.QueryParam("date"), c.QueryParam("day"), time.Now().In(s.zone()).Format(time.DateOnly))
	cov, err := s.deps.Patrols.Coverage(ctx, layer, c.QueryParam("level"), day)
	if err != nil {
		return err
	}
	rows := cov.Rows[:0:0]
	for _, r := range cov.Rows {
		if (grid == "" || r.Code == grid) && (below == nil || below[r.Code]) {
			rows = append(rows, r)
		}
	}
	cov.Rows = rows
	return c.JSON(http.StatusOK, cov)
}
