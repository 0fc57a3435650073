package server

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
)

// Open311 GeoReport v2 (https://wiki.open311.org/GeoReport_v2), JSON
// format: categories are its services, reports its service requests.
// Errors use the format's own shape, [{"code", "description"}].

func (s *Server) open311Routes() {
	g := s.echo.Group(open311Prefix, middleware.BodyLimit(s.cfg.BodyLimit))
	g.GET("/services.json", s.handleOpen311Services)
	g.GET("/services/:code", s.handleOpen311Service)
	g.GET("/requests.json", s.handleOpen311Requests)
	g.POST("/requests.json", s.handleOpen311Create)
	g.GET("/requests/:id", s.handleOpen311Request)
}

// open311Error is GeoReport v2's error, one of a list.
type open311Error struct {
	Code        int    `json:"code"`
	Description string `json:"description"`
}

// underOpen311 tells whether a request's path is one of the Open311 routes'
// (or would be, were it known).
func underOpen311(path string) bool {
	rest, ok := strings.CutPrefix(path, open311Prefix)
	return ok && (rest == "" || rest[0] == '/')
}

type open311Service struct {
	Code        string `json:"service_code"`
	Name        string `json:"service_name"`
	Description string `json:"description"`
	Metadata    bool   `json:"metadata"`
	Type        string `json:"type"`
	Keywords    string `json:"keywords"`
	Group       string `json:"group"`
}

// handleOpen311Services lists the categories as services:
// GET /open311/v2/services.json.
func (s *Server) handleOpen311Services(c echo.Context) error {
	cats, err := s.deps.Categories.Categories(c.Request().Context())
	if err != nil {
		return err
	}
	names := map[string]string{}
	for _, cat := range cats {
		names[cat.Code] = cat.Name
	}
	out := []open311Service{}
	for _, cat := range cats {
		group := names[cat.Parent]
		if cat.Parent == "" {
			group = cat.Name
		}
		out = append(out, open311Service{Code: cat.Code, Name: cat.Name, Type: "realtime", Group: group,
			Description: fmt.Sprintf("%s: handled by %s within %g %s", cat.Name, strings.Join(cat.Departments, ", "),
				cat.Limit.Value, strings.ReplaceAll(cat.Limit.Clock, "_", " "))})
	}
	return c.JSON(http.StatusOK, out)
}

// handleOpen311Service describes one service: GET /open311/v2/services/{code}.json.
// Services take no extra attributes.
func (s *Server) handleOpen311Service(c echo.Context) error {
	code := strings.TrimSuffix(c.Param("code"), ".json")
	if _, err := s.deps.Categories.Category(c.Request().Context(), code); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"service_code": code, "attributes": []any{}})
}

// handleOpen311Create files a service request from a form:
// POST /open311/v2/requests.json with service_code, lat, long,
// description, address_string, media_url and the contact fields. The
// optional external_id (an extension) makes retries safe; without it,
// a submission identical in every field is the same request.
func (s *Server) handleOpen311Create(c echo.Context) error {
	form, err := c.FormParams()
	if err != nil {
		return gridmap.Errorf(gridmap.EINVALID, "the body must be form-encoded (application/x-www-form-urlencoded)")
	}
	code := form.Get("service_code")
	if code == "" {
		return gridmap.Errorf(gridmap.EINVALID, "service_code is required (see services.json)")
	}
	lat, err1 := strconv.ParseFloat(form.Get("lat"), 64)
	lon, err2 := strconv.ParseFloat(form.Get("long"), 64)
	if err1 != nil || err2 != nil {
		return gridmap.Errorf(gridmap.EINVALID, "lat and long are required as decimal degrees (WGS84); address-only requests are not supported")
	}
	if err := gridmap.CheckLonLat(lon, lat); err != nil {
		return err
	}
	externalID := form.Get("external_id")
	if externalID == "" {
		externalID = "open311-" + formDigest(form)
	}
	desc := form.Get("description")
	if a := form.Get("address_string"); a != "" {
		desc = strings.TrimSpace(desc + " (" + a + ")")
	}
	r := &gridmap.Report{ExternalID: externalID, Category: code, Description: desc, Source: "open311",
		Location: geojson.NewGeometry(orb.Point{lon, lat}), CRS: form.Get("crs")}
	created, err := s.deps.Reports.CreateReport(c.Request().Context(), r)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return c.JSON(status, []map[string]any{{"service_request_id": strconv.FormatInt(r.ID, 10),
		"service_notice": r.Assignment.Explanation, "account_id": nil}})
}

// formDigest identifies a submission by every field it carries.
func formDigest(form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%q;", k, form[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// open311Request is a report as GeoReport v2 shows a service request.
type open311Request struct {
	ID                string   `json:"service_request_id"`
	Status            string   `json:"status"`
	StatusNotes       string   `json:"status_notes"`
	ServiceName       string   `json:"service_name"`
	ServiceCode       string   `json:"service_code"`
	Description       string   `json:"description"`
	AgencyResponsible string   `json:"agency_responsible"`
	ServiceNotice     string   `json:"service_notice"`
	Requested         string   `json:"requested_datetime"`
	Updated           string   `json:"updated_datetime"`
	Expected          string   `json:"expected_datetime"`
	Address           string   `json:"address"`
	Lat               *float64 `json:"lat"`
	Long              *float64 `json:"long"`
	MediaURL          string   `json:"media_url"`
}

func (s *Server) toOpen311(r *gridmap.Report, names map[string]string) open311Request {
	o := open311Request{ID: strconv.FormatInt(r.ID, 10), Status: "open", StatusNotes: r.Status, ServiceCode: r.Category,
		ServiceName: names[r.Category], Description: r.Description,
		Requested: r.ReportedAt.Format(time.RFC3339), Updated: r.UpdatedAt.Format(time.RFC3339)}
	if !dispatch.Open(r.Status) {
		o.Status = "closed"
	}
	if a := r.Assignment; a != nil {
		var agencies []string
		for _, d := range a.Departments {
			name := d.Name
			if name == "" {
				name = d.Code
			}
			if d.Unit != nil {
				name += " (" + d.Unit.Code + ")"
			}
			agencies = append(agencies, name)
		}
		o.AgencyResponsible = strings.Join(agencies, "; ")
		o.ServiceNotice = a.Explanation
		o.Expected = a.DueAt.Format(time.RFC3339)
		if a.Primary != nil {
			o.Address = a.Primary.Code + " " + a.Primary.Name
		}
	}
	if p, ok := r.Location.Geometry().(orb.Point); ok {
		o.Long, o.Lat = &p[0], &p[1]
	}
	return o
}

func (s *Server) categoryNames(c echo.Context) (map[string]string, error) {
	cats, err := s.deps.Categories.Categories(c.Request().Context())
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, cat := range cats {
		names[cat.Code] = cat.Name
	}
	return names, nil
}

// handleOpen311Request shows one request: GET /open311/v2/requests/{id}.json.
func (s *Server) handleOpen311Request(c echo.Context) error {
	id, err := strconv.ParseInt(strings.TrimSuffix(c.Param("id"), ".json"), 10, 64)
	if err != nil || id <= 0 {
		return gridmap.Errorf(gridmap.ENOTFOUND, "service request %q does not exist", c.Param("id"))
	}
	r, err := s.deps.Reports.Report(c.Request().Context(), id)
	if err != nil {
		return err
	}
	names, err := s.categoryNames(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, []open311Request{s.toOpen311(r, names)})
}

// handleOpen311Requests lists requests: GET /open311/v2/requests.json with
// service_request_id (comma-separated), service_code, status (open or
// closed), start_date, end_date (RFC 3339; default the last 90 days) and,
// as an extension, bbox=minLon,minLat,maxLon,maxLat. At most 1000.
func (s *Server) handleOpen311Requests(c echo.Context) error {
	f := gridmap.ReportFilter{Limit: 1000, Category: c.QueryParam("service_code")}
	if v := c.QueryParam("service_request_id"); v != "" {
		for _, part := range strings.Split(v, ",") {
			id, err := strconv.ParseInt(strings.TrimSpace(part), 10, 64)
			if err != nil {
				return gridmap.Errorf(gridmap.EINVALID, "service_request_id %q must be ids separated by commas", v)
			}
			f.IDs = append(f.IDs, id)
		}
	}
	switch v := c.QueryParam("status"); v {
	case "":
	case "open":
		f.Status = "open"
	case "closed":
		f.Status = "done"
	default:
		return gridmap.Errorf(gridmap.EINVALID, "status %q must be open or closed", v)
	}
	for _, p := range []struct {
		name string
		dst  **time.Time
	}{{"start_date", &f.Since}, {"end_date", &f.Until}} {
		if v := c.QueryParam(p.name); v != "" {
			t, err := parseTime(p.name, v)
			if err != nil {
				return err
			}
			*p.dst = &t
		}
	}
	if f.Since == nil && f.IDs == nil {
		since := time.Now().AddDate(0, 0, -90)
		f.Since = &since
	}
	if v := c.QueryParam("bbox"); v != "" {
		b, err := parseBBox(v)
		if err != nil {
			return err
		}
		f.BBox = b
	}
	reports, _, err := s.deps.Reports.Reports(c.Request().Context(), f)
	if err != nil {
		return err
	}
	names, err := s.categoryNames(c)
	if err != nil {
		return err
	}
	out := []open311Request{}
	for _, r := range reports {
		out = append(out, s.toOpen311(r, names))
	}
	return c.JSON(http.StatusOK, out)
}

// open311Prefix is where the GeoReport v2 routes live.
const open311Prefix = "/open311/v2"
