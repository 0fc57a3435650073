package server

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/labstack/echo/v4"
	"github.com/paulmach/orb/geojson"
)

// reportRequest is the body of POST /v1/reports.
type reportRequest struct {
	ExternalID  string            `json:"external_id"`
	Category    string            `json:"category"`
	Description string            `json:"description"`
	Location    *geojson.Geometry `json:"location"`
	AccuracyM   float64           `json:"accuracy_m"`
	CRS         string            `json:"crs"`
	ReportedAt  *time.Time        `json:"reported_at"`
	Source      string            `json:"source"`
	Urgent      bool              `json:"urgent"`
}

// handleCreateReport takes a report in: POST /v1/reports. 201 with the
// stored report and its assignment once it is durable; 200 with the
// existing report when the external_id was seen with the same content; 409
// with other content; 422 saying what is wrong; 413 for a location past
// gridmap.CheckGeometrySize's limits.
func (s *Server) handleCreateReport(c echo.Context) error {
	var req reportRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Location != nil {
		if err := gridmap.CheckGeometrySize(req.Location.Geometry()); err != nil {
			return gridmap.Errorf(gridmap.ETOOLARGE, "location: %s", gridmap.ErrorMessage(err))
		}
	}
	r := &gridmap.Report{ExternalID: req.ExternalID, Category: req.Category, Description: req.Description, Location: req.Location,
		AccuracyM: req.AccuracyM, CRS: req.CRS, Source: req.Source, Urgent: req.Urgent}
	if req.ReportedAt != nil {
		r.ReportedAt = *req.ReportedAt
	}
	created, err := s.deps.Reports.CreateReport(c.Request().Context(), r)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		s.noteOnSiteWork(c, r.ID, dispatch.ActionReport)
		c.Response().Header().Set(echo.HeaderLocation, "/v1/reports/"+strconv.FormatInt(r.ID, 10))
	}
	return c.JSON(status, r)
}

func reportID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, gridmap.Errorf(gridmap.ENOTFOUND, "report %q does not exist: report ids are positive whole numbers", c.Param("id"))
	}
	return id, nil
}

// handleReport returns one report: GET /v1/reports/{id}.
func (s *Server) handleReport(c echo.Context) error {
	id, err := reportID(c)
	if err != nil {
		return err
	}
	r, err := s.deps.Reports.Report(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return s.reportAnswer(c, http.StatusOK, r)
}

// handleReports lists reports: GET /v1/reports, with
//   - status: a status, "open" (not closed or rejected) or "done";
//   - grid: the primary grid's code;
//   - bbox=minLon,minLat,maxLon,maxLat: the location meets the box;
//   - category: the category and its subcategories (400 for an unknown one);
//   - since, until (RFC 3339): reported at or after, before;
//   - tier: grid, street, district or city;
//   - source: exactly;
//   - urgent=true|false;
//   - overdue=true: open and past due_at;
//   - mine=true: the caller acted on it (its history names the caller,
//     alone or acting for someone); 400 for an anonymous caller;
//   - duplicate_of: the reports linked to that report as its probable
//     duplicates;
//   - sort: arrival (newest first, the default) or deadline (due_at, the
//     earliest first);
//   - limit: 1 to 1000, default 100;
//   - cursor: the "next" of the previous page, of the same sort.
//
// 200 with {"reports": [...], "next": cursor} ("next" only when there is
// another page); 400 saying what to fix for a value that is not one.
func (s *Server) handleReports(c echo.Context) error {
	f, err := reportFilterOf(c)
	if err != nil {
		return err
	}
	f.Status, f.Limit = c.QueryParam("status"), 100
	if err := gridmap.CheckStatusFilter(f.Status); err != nil {
		return err
	}
	switch f.Sort = c.QueryParam("sort"); f.Sort {
	case "", gridmap.SortArrival, gridmap.SortDeadline:
	default:
		return gridmap.Errorf(gridmap.EINVALID, "sort %q must be %s (newest first) or %s (the earliest due first)", f.Sort, gridmap.SortArrival, gridmap.SortDeadline)
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return gridmap.Errorf(gridmap.EINVALID, "limit %q must be a whole number from 1 to 1000", v)
		}
		f.Limit = n
	}
	if v := c.QueryParam("cursor"); v != "" {
		if f.Cursor, err = gridmap.ParseReportCursor(f.Sort, v); err != nil {
			return err
		}
	}
	reports, next, err := s.deps.Reports.Reports(c.Request().Context(), f)
	if err != nil {
		return err
	}
	views, err := s.views(c, reports)
	if err != nil {
		return err
	}
	body := map[string]any{"reports": views}
	if next != nil {
		body["next"] = next.String()
	}
	return c.JSON(http.StatusOK, body)
}

// handleReportCounts counts reports: GET /v1/reports/counts, with the
// filters of GET /v1/reports but status, sort, limit and cursor (ignored).
// 200 with {"counts": {status: n, ...}, "open": n, "overdue": n,
// "total": n}, counts naming every status that has reports; 400 as
// GET /v1/reports.
func (s *Server) handleReportCounts(c echo.Context) error {
	f, err := reportFilterOf(c)
	if err != nil {
		return err
	}
	counts, err := s.deps.Reports.ReportCounts(c.Request().Context(), f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, counts)
}

// reportFilterOf reads the filters GET /v1/reports shares with
// GET /v1/reports/counts. Returns EINVALID saying what to fix.
func reportFilterOf(c echo.Context) (gridmap.ReportFilter, error) {
	f := gridmap.ReportFilter{Grid: c.QueryParam("grid"), Category: c.QueryParam("category"), Source: c.QueryParam("source")}
	for _, p := range []struct {
		name string
		dst  **time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := c.QueryParam(p.name); v != "" {
			t, err := parseTime(p.name, v)
			if err != nil {
				return f, err
			}
			*p.dst = &t
		}
	}
	if v := c.QueryParam("bbox"); v != "" {
		b, err := parseBBox(v)
		if err != nil {
			return f, err
		}
		f.BBox = b
	}
	if f.Tier = c.QueryParam("tier"); f.Tier != "" && !slices.Contains(dispatch.Tiers, f.Tier) {
		return f, gridmap.Errorf(gridmap.EINVALID, "tier %q must be one of %s", f.Tier, strings.Join(dispatch.Tiers, ", "))
	}
	if c.QueryParam("urgent") != "" {
		urgent, err := boolParam(c, "urgent")
		if err != nil {
			return f, err
		}
		f.Urgent = &urgent
	}
	var err error
	if f.Overdue, err = boolParam(c, "overdue"); err != nil {
		return f, err
	}
	if v := c.QueryParam("duplicate_of"); v != "" {
		if f.DuplicateOf, err = strconv.ParseInt(v, 10, 64); err != nil || f.DuplicateOf <= 0 {
			return f, gridmap.Errorf(gridmap.EINVALID, "duplicate_of %q must be a report id (a positive whole number)", v)
		}
	}
	// The store refuses mine=true from an anonymous caller.
	f.Mine, err = boolParam(c, "mine")
	return f, err
}

// eventRequest is the body of POST /v1/reports/{id}/events.
type eventRequest struct {
	Action      string   `json:"action"`
	Note        string   `json:"note"`
	Actor       string   `json:"actor"`
	Departments []string `json:"departments"`
	// Assignee is the worker a dispatch sends the report to; a dispatch
	// without one takes the report from any earlier worker
	// (dispatch.AssigneeAfter).
	Assignee string `json:"assignee"`
}

// handleReportEvent moves a report through the workflow:
// POST /v1/reports/{id}/events. 200 with the report; 409 for a move the
// workflow does not allow from its status; 400 for an assignee that is not
// a worker's account or comes with another move than dispatch.
func (s *Server) handleReportEvent(c echo.Context) error {
	id, err := reportID(c)
	if err != nil {
		return err
	}
	var req eventRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Action == "" {
		return gridmap.Errorf(gridmap.EINVALID, "action is required: register, dispatch, start, resolve, verify, close, reject, escalate, extend, suspend or resume")
	}
	r, err := s.deps.Reports.AddEvent(c.Request().Context(), id, &gridmap.ReportEvent{Action: req.Action, Note: req.Note,
		Actor: actorOf(c, req.Actor), Departments: req.Departments, Assignee: req.Assignee})
	if err != nil {
		return err
	}
	setVersions(c, nil, map[string]any{"status": r.Status, "tier": r.Assignment.Tier})
	s.noteOnSiteWork(c, id, req.Action)
	return s.reportAnswer(c, http.StatusOK, r)
}

// handleReportEvents returns a report's history: GET /v1/reports/{id}/events.
func (s *Server) handleReportEvents(c echo.Context) error {
	id, err := reportID(c)
	if err != nil {
		return err
	}
	events, err := s.deps.Reports.Events(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"events": events})
}

// actorOf names who acted, for a report's history: the caller, and the
// person a system says it acts for ("token:hotline for operator 12").
func actorOf(c echo.Context, onBehalfOf string) string {
	actor := callerOf(c).Actor()
	switch {
	case actor == "" || callerOf(c).Kind == gridmap.CallerAnonymous:
		return onBehalfOf
	case onBehalfOf != "":
		return actor + " for " + onBehalfOf
	}
	return actor
}
