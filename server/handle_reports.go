package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gridmap/gridmap"
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
	return c.JSON(http.StatusOK, r)
}

// handleReports lists reports, newest first:
// GET /v1/reports?status=&grid=&bbox=&category=&since=&limit=&cursor=.
// status also takes "open" (not closed or rejected) and "done"; category
// selects the category and its subcategories (400 for an unknown one).
func (s *Server) handleReports(c echo.Context) error {
	f := gridmap.ReportFilter{Status: c.QueryParam("status"), Grid: c.QueryParam("grid"), Limit: 100}
	if err := gridmap.CheckStatusFilter(f.Status); err != nil {
		return err
	}
	if v := c.QueryParam("since"); v != "" {
		t, err := parseTime("since", v)
		if err != nil {
			return err
		}
		f.Since = &t
	}
	if v := c.QueryParam("bbox"); v != "" {
		b, err := parseBBox(v)
		if err != nil {
			return err
		}
		f.BBox = b
	}
	if v := c.QueryParam("category"); v != "" {
		f.Category = v
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return gridmap.Errorf(gridmap.EINVALID, "limit %q must be a whole number from 1 to 1000", v)
		}
		f.Limit = n
	}
	if v := c.QueryParam("cursor"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return gridmap.Errorf(gridmap.EINVALID, "cursor %q is not one this service gave out; pass the \"next\" value of the previous page", v)
		}
		f.Cursor = n
	}
	reports, next, err := s.deps.Reports.Reports(c.Request().Context(), f)
	if err != nil {
		return err
	}
	if reports == nil {
		reports = []*gridmap.Report{}
	}
	body := map[string]any{"reports": reports}
	if next != 0 {
		body["next"] = strconv.FormatInt(next, 10)
	}
	return c.JSON(http.StatusOK, body)
}

// eventRequest is the body of POST /v1/reports/{id}/events.
type eventRequest struct {
	Action      string   `json:"action"`
	Note        string   `json:"note"`
	Actor       string   `json:"actor"`
	Departments []string `json:"departments"`
}

// handleReportEvent moves a report through the workflow:
// POST /v1/reports/{id}/events. 200 with the report; 409 for a move the
// workflow does not allow from its status.
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
		Actor: actorOf(c, req.Actor), Departments: req.Departments})
	if err != nil {
		return err
	}
	setVersions(c, nil, map[string]any{"status": r.Status, "tier": r.Assignment.Tier})
	return c.JSON(http.StatusOK, r)
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
