package server

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/labstack/echo/v4"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
)

// handlePutLeaderAssignments gives an account grids to look after (包联):
// PUT /v1/leaders/{username}/assignments with {"grids": [{"layer",
// "code"}], "visits_per_month"}; an empty list makes it a leader no more.
// 200 with the assignments. 400 saying what to fix, 404 for an unknown
// account.
func (s *Server) handlePutLeaderAssignments(c echo.Context) error {
	var body struct {
		Username       string               `json:"username"`
		Grids          []gridmap.LeaderGrid `json:"grids"`
		VisitsPerMonth int                  `json:"visits_per_month"`
		UpdatedAt      *time.Time           `json:"updated_at"`
		UpdatedBy      *string              `json:"updated_by"`
	}
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	username := c.Param("username")
	if body.Username != "" && body.Username != username {
		return gridmap.Errorf(gridmap.EINVALID, "the body names account %s, the path %s; leave username out or make them agree", body.Username, username)
	}
	a := &gridmap.LeaderAssignments{Username: username, Grids: body.Grids, VisitsPerMonth: body.VisitsPerMonth}
	if err := s.deps.Leaders.PutLeaderAssignments(c.Request().Context(), a); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a)
}

// handleLeaderAssignments answers an account's grids:
// GET /v1/leaders/{username}/assignments, to viewers: the grids GET
// /v1/leaders shows (a scoped caller's: those of its area; the leader's
// own: all). One 404 for an unknown account, one that is not a leader, or
// not one with a grid in a scoped caller's area.
func (s *Server) handleLeaderAssignments(c echo.Context) error {
	a, err := s.deps.Leaders.LeaderAssignments(c.Request().Context(), c.Param("username"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a)
}

// checkInRequest is the body of POST /v1/checkins: the point as lon and
// lat, or as a GeoJSON Point in location; the time as t or at; person
// (API.md's) naming the signed-in account, if sent; client_id for retries.
type checkInRequest struct {
	Person    string            `json:"person"`
	ClientID  string            `json:"client_id"`
	Lon       *float64          `json:"lon"`
	Lat       *float64          `json:"lat"`
	Location  *geojson.Geometry `json:"location"`
	CRS       string            `json:"crs"`
	AccuracyM float64           `json:"accuracy_m"`
	T         *time.Time        `json:"t"`
	At        *time.Time        `json:"at"`
	Note      string            `json:"note"`
	PhotoURL  string            `json:"photo_url"`
}

// point reads the request's point as sent. Returns EINVALID saying the
// forms taken.
func (r *checkInRequest) point() (lon, lat float64, err error) {
	switch {
	case r.Lon != nil && r.Lat != nil && r.Location == nil:
		return *r.Lon, *r.Lat, nil
	case r.Lon == nil && r.Lat == nil && r.Location != nil:
		if p, ok := r.Location.Coordinates.(orb.Point); ok {
			return p[0], p[1], nil
		}
	}
	return 0, 0, gridmap.Errorf(gridmap.EINVALID, `send where you are as "lon" and "lat", or as "location": a GeoJSON Point (one of the two)`)
}

// handleCheckIn records the signed-in leader's check-in (下沉报到):
// POST /v1/checkins. The point is converted from crs (gcj02, bd09) to
// WGS84 first. 201 with {"id", "visit", "imprecise", "layer", "grid",
// "distance_m", ...} (gridmap.CheckIn states the rule), or 200 with the
// check-in stored before under the same client_id. 400 saying what to
// fix; 403 for a caller that is not a signed-in leader or a person that is
// not the caller.
func (s *Server) handleCheckIn(c echo.Context) error {
	var req checkInRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	lon, lat, err := req.point()
	if err != nil {
		return err
	}
	if req.T != nil && req.At != nil {
		return gridmap.Errorf(gridmap.EINVALID, `send the time once, as "t" (or "at")`)
	}
	crs := strings.ToLower(req.CRS)
	if crs == "" {
		crs = gridmap.CRSWGS84
	}
	x, y, err := geo.ToWGS84(crs, lon, lat)
	if err != nil {
		return err
	}
	ci := &gridmap.CheckIn{Lon: x, Lat: y, CRS: crs, AccuracyM: req.AccuracyM, Note: req.Note, PhotoURL: req.PhotoURL,
		ClientID: req.ClientID, Person: req.Person}
	if crs != gridmap.CRSWGS84 {
		ci.Original = []float64{lon, lat}
	}
	for _, t := range []*time.Time{req.T, req.At} {
		if t != nil {
			ci.At = *t
		}
	}
	if err := ci.Check(time.Now()); err != nil {
		return err
	}
	created, err := s.deps.Leaders.CheckIn(c.Request().Context(), ci)
	if err != nil {
		return err
	}
	if !created {
		return c.JSON(http.StatusOK, ci)
	}
	return c.JSON(http.StatusCreated, ci)
}

// onSiteLinkTimeout bounds linking a report to a visit: the report's
// answer waits for it.
const onSiteLinkTimeout = 2 * time.Second

// noteOnSiteWork links a report the caller just filed or moved to the
// caller's visit under way, when the caller is a leader on a visit. The
// report's own write has succeeded by then, so the link does not end with
// the request (a client that hangs up does not lose it) but is bounded by
// onSiteLinkTimeout; a failure is logged, does not fail the request and
// is not made up later.
func (s *Server) noteOnSiteWork(c echo.Context, reportID int64, action string) {
	if s.deps.Leaders == nil || callerOf(c).Kind != gridmap.CallerAccount {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), onSiteLinkTimeout)
	defer cancel()
	if err := s.deps.Leaders.NoteOnSiteWork(ctx, reportID, action); err != nil {
		s.logger.Error("linking on-site work failed", "request_id", requestID(c), "report", reportID, "action", action, "err", err)
	}
}

// monthWindow reads from and to (RFC 3339) of a window of figures; by
// default from the start of this month, in the deployment's time zone (the
// month before on its first instant), to now.
func (s *Server) monthWindow(c echo.Context) (from, to time.Time, err error) {
	f, t, err := windowParams(c)
	if err != nil {
		return from, to, err
	}
	to = time.Now()
	if t != nil {
		to = *t
	}
	if f != nil {
		return *f, to, nil
	}
	local := to.In(s.clocks.tz)
	from = time.Date(local.Year(), local.Month(), 1, 0, 0, 0, 0, s.clocks.tz)
	if !from.Before(to) {
		from = from.AddDate(0, -1, 0)
	}
	return from, to, nil
}

// leadersCSVHeader names the columns of the leaders' figures as CSV.
var leadersCSVHeader = []string{"username", "display_name", "grids", "visits_per_month", "required_visits", "visits", "outside",
	"grids_not_visited", "on_site_reports"}

// handleLeaders answers the leaders' figures over a window:
// GET /v1/leaders?layer=&from=&to= (RFC 3339; by default from the start of
// this month, in the deployment's time zone, to now). 200 with
// gridmap.LeaderStats, or with Accept: text/csv one row per leader. A
// scoped caller sees the leaders with a grid in its area, and of their
// grids only those.
func (s *Server) handleLeaders(c echo.Context) error {
	from, to, err := s.monthWindow(c)
	if err != nil {
		return err
	}
	st, err := s.deps.Leaders.LeaderStats(c.Request().Context(), c.QueryParam("layer"), from, to)
	if err != nil {
		return err
	}
	if !wantsCSV(c.Request().Header.Get("Accept")) {
		return c.JSON(http.StatusOK, st)
	}
	return writeCSV(c, leadersCSVHeader, len(st.Rows), func(i int) []string { return leaderCSVRow(st.Rows[i]) })
}

// leaderCSVRow is a leader's figures as a row under leadersCSVHeader.
func leaderCSVRow(r gridmap.LeaderRow) []string {
	codes := make([]string, len(r.Grids))
	for j, g := range r.Grids {
		codes[j] = g.Code
	}
	return []string{csvText(r.Username), csvText(r.DisplayName), csvText(strings.Join(codes, " ")), strconv.Itoa(r.VisitsPerMonth),
		strconv.FormatFloat(r.RequiredVisits, 'f', -1, 64), strconv.Itoa(r.Visits), strconv.Itoa(r.Outside),
		csvText(strings.Join(r.NotVisited, " ")), strconv.Itoa(r.OnSiteReports)}
}
