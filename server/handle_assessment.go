package server

import (
	"net/http"
	"strconv"

	"github.com/gridmap/gridmap"
	"github.com/labstack/echo/v4"
)

// assessmentTables are the tables of an assessment as CSV (?of=), each a
// header and a row writer.
var assessmentTables = map[string]struct {
	header []string
	rows   func(a *gridmap.Assessment) (int, func(i int) []string)
}{
	"workers": {
		header: []string{"worker", "name", "grid", "grid_name", "filed", "filed_closed", "filed_closed_on_time", "patrol_days", "points",
			"grid_coverage", "checkins", "visits"},
		rows: func(a *gridmap.Assessment) (int, func(i int) []string) {
			return len(a.Workers), func(i int) []string {
				w := a.Workers[i]
				return []string{csvText(w.Worker), csvText(w.Name), csvText(w.Grid), csvText(w.GridName), strconv.Itoa(w.Filed),
					strconv.Itoa(w.FiledClosed), strconv.Itoa(w.FiledClosedOnTime), strconv.Itoa(w.PatrolDays), strconv.Itoa(w.Points),
					csvShare(w.GridCoverage), strconv.Itoa(w.CheckIns), strconv.Itoa(w.Visits)}
			}
		},
	},
	"grids": {
		header: []string{"code", "name", "workers", "filed", "received", "closed", "closed_on_time", "on_time_rate", "overdue",
			"measured_days", "patrolled_days", "coverage", "leader_visits"},
		rows: func(a *gridmap.Assessment) (int, func(i int) []string) {
			return len(a.Grids), func(i int) []string {
				g := a.Grids[i]
				return []string{csvText(g.Code), csvText(g.Name), strconv.Itoa(g.Workers), strconv.Itoa(g.Filed),
					strconv.FormatInt(g.Reports.Received, 10), strconv.FormatInt(g.Reports.Closed, 10),
					strconv.FormatInt(g.Reports.ClosedOnTime, 10), csvShare(g.Reports.OnTimeRate), strconv.FormatInt(g.Reports.Overdue, 10),
					strconv.Itoa(g.MeasuredDays), strconv.Itoa(g.PatrolledDays), csvShare(g.Coverage), strconv.Itoa(g.LeaderVisits)}
			}
		},
	},
	"leaders": {
		header: leadersCSVHeader,
		rows: func(a *gridmap.Assessment) (int, func(i int) []string) {
			return len(a.Leaders), func(i int) []string { return leaderCSVRow(a.Leaders[i]) }
		},
	},
}

// csvShare writes a share or rate with four decimals, "" for none.
func csvShare(v *float64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'f', 4, 64)
}

// handleAssessment answers the assessment of the people in the field
// (述职评议考核): GET /v1/assessment?layer=&level=&from=&to= (RFC 3339; by
// default this month to now) -> gridmap.Assessment, or with Accept:
// text/csv one of its tables, ?of=workers (the default), grids or
// leaders. A scoped caller gets its area's workers, grids and leaders.
// 400 saying what to fix, 403 for a caller that may not see workers, 404
// for an unknown layer.
func (s *Server) handleAssessment(c echo.Context) error {
	from, to, err := s.monthWindow(c)
	if err != nil {
		return err
	}
	of := c.QueryParam("of")
	if of == "" {
		of = "workers"
	}
	table, ok := assessmentTables[of]
	if !ok {
		return gridmap.Errorf(gridmap.EINVALID, "of %q must be workers, grids or leaders: the table to download as CSV", of)
	}
	a, err := gridmap.Assess(c.Request().Context(), gridmap.AssessmentSources{Patrols: s.deps.Patrols, Stats: s.deps.Stats, Leaders: s.deps.Leaders},
		gridmap.AssessmentQuery{Layer: c.QueryParam("layer"), Level: c.QueryParam("level"), From: from, To: to})
	if err != nil {
		return err
	}
	c.Response().Header().Add(echo.HeaderVary, "Accept")
	if !wantsCSV(c.Request().Header.Get(echo.HeaderAccept)) {
		return c.JSON(http.StatusOK, a)
	}
	n, row := table.rows(a)
	return writeCSV(c, table.header, n, row)
}
