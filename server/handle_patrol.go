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
// default the layer's finest grid-tier level, day by default today in the
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
// or CSV with Accept: text/csv: the grids of the level whose workers
// recorded no point inside them for the last N days, with the last time
// one did (null: never). 400 saying what to fix, 404 for an unknown layer.
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
			last = r.LastPatrol.Format(time.RFC3339)
		}
		return []string{csvText(r.Code), csvText(r.Name), strconv.Itoa(r.Workers), last}
	})
}
