package server

import (
	"cmp"
	"encoding/json"
	"net/http"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/labstack/echo/v4"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
)

// trackRequest is the body of POST /v1/tracks; points are read one by one
// so that a bad one is named by its index.
type trackRequest struct {
	Device string            `json:"device"`
	CRS    string            `json:"crs"`
	Points []json.RawMessage `json:"points"`
	// Person is accepted for clients written to the first draft of the
	// API; the worker is always the calling account.
	Person string `json:"person"`
}

// handleAddTrack stores a batch of the calling worker's track points:
// POST /v1/tracks {"device", "crs", "points": [{"t", "lon", "lat",
// "accuracy_m"} or [lon, lat, t, accuracy_m?], ...]} -> 200 {"stored",
// "duplicates", "expired"}. A retried batch stores nothing twice. 400
// naming the first bad point (nothing stored), 413 past
// gridmap.MaxTrackPoints points, 403 for a token (tracks are an account's
// own), 503 with Retry-After when a day's partition cannot be made now
// (nothing stored; send the batch again).
func (s *Server) handleAddTrack(c echo.Context) error {
	var req trackRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if len(req.Points) > gridmap.MaxTrackPoints {
		return gridmap.Errorf(gridmap.ETOOLARGE, "the batch has %d points; send at most %d a batch, in several batches", len(req.Points), gridmap.MaxTrackPoints)
	}
	b := &gridmap.TrackBatch{Device: req.Device, CRS: req.CRS, Points: make([]gridmap.TrackPoint, len(req.Points))}
	for i, raw := range req.Points {
		if err := json.Unmarshal(raw, &b.Points[i]); err != nil {
			return gridmap.Errorf(gridmap.EINVALID, "point %d is not {\"t\", \"lon\", \"lat\", \"accuracy_m\"} or [lon, lat, t, accuracy_m]: %s; nothing was stored",
				i, gridmap.ErrorMessage(err))
		}
	}
	res, err := s.deps.Patrols.AddTrack(c.Request().Context(), b)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

// handleWorkers lists the on-duty workers the caller may see with their
// last positions: GET /v1/workers[?layer=] -> {"workers": [...]}.
func (s *Server) handleWorkers(c echo.Context) error {
	ws, err := s.deps.Patrols.Workers(c.Request().Context(), c.QueryParam("layer"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"workers": ws, "on_duty_within_s": gridmap.OnDutyWithin.Seconds()})
}

// handleWorkerTrack plays a worker's day back: GET
// /v1/workers/{username}/track?day=YYYY-MM-DD (default today, in the
// deployment's time zone) -> {"worker", "day", "points": [...]} in time
// order, or with Accept: application/geo+json a FeatureCollection of a
// LineString per stretch without gaps over gridmap.TrackGap (a Point for a
// stretch of one point). 404 for an unknown worker or one outside the
// caller's scope.
func (s *Server) handleWorkerTrack(c echo.Context) error {
	worker := c.Param("username")
	day := cmp.Or(c.QueryParam("day"), time.Now().In(s.zone()).Format(time.DateOnly))
	points, err := s.deps.Patrols.Track(c.Request().Context(), worker, day)
	if err != nil {
		return err
	}
	c.Response().Header().Add(echo.HeaderVary, "Accept")
	if !wantsGeoJSON(c.Request().Header.Get(echo.HeaderAccept)) {
		return c.JSON(http.StatusOK, map[string]any{"worker": worker, "day": day, "points": points})
	}
	fc := geojson.NewFeatureCollection()
	for _, stretch := range gridmap.TrackStretches(points) {
		var g orb.Geometry
		if len(stretch) == 1 {
			g = orb.Point{stretch[0].Lon, stretch[0].Lat}
		} else {
			line := make(orb.LineString, len(stretch))
			for i, p := range stretch {
				line[i] = orb.Point{p.Lon, p.Lat}
			}
			g = line
		}
		f := geojson.NewFeature(g)
		f.Properties = geojson.Properties{"worker": worker, "from": stretch[0].T, "to": stretch[len(stretch)-1].T, "points": len(stretch)}
		fc.Append(f)
	}
	b, err := fc.MarshalJSON()
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "application/geo+json", b)
}

// handleNearbyWorkers lists the on-duty workers of a report's grid and the
// grids bordering it, nearest first: GET
// /v1/reports/{id}/nearby-workers[?limit=] -> {"workers": [{"worker",
// "person", "name", "distance_m", "seen_at", ...}]}, the limit (default
// gridmap.DefaultNearbyWorkers) nearest. 400 for a bad limit, 404 for an
// unknown report, 403 for one outside the caller's scope.
func (s *Server) handleNearbyWorkers(c echo.Context) error {
	id, err := reportID(c)
	if err != nil {
		return err
	}
	limit, err := gridmap.ParseNearbyLimit(c.QueryParam("limit"))
	if err != nil {
		return err
	}
	ws, err := s.deps.Patrols.NearbyWorkers(c.Request().Context(), id, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"workers": ws})
}

// zone is the deployment's time zone, in which days are counted.
func (s *Server) zone() *time.Location {
	tz, err := time.LoadLocation(cmp.Or(s.cfg.TimeZone, dispatch.DefaultTimeZone))
	if err != nil {
		return time.UTC
	}
	return tz
}

// wantsGeoJSON reads an Accept header that names application/geo+json.
func wantsGeoJSON(accept string) bool {
	return acceptsMedia(accept, "application/geo+json")
}
