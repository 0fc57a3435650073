package server

import (
	"net/http"

	"github.com/gridmap/gridmap"
	"github.com/labstack/echo/v4"
)

// handlePutCategory defines a line of the responsibility list:
// PUT /v1/categories/{code} {"name", "parent", "departments", "limit", "urgent_limit"}.
func (s *Server) handlePutCategory(c echo.Context) error {
	var cat gridmap.Category
	if err := decodeJSON(c, &cat); err != nil {
		return err
	}
	if cat.Code != "" && cat.Code != c.Param("code") {
		return gridmap.Errorf(gridmap.EINVALID, "body code %q differs from the category in the path %q", cat.Code, c.Param("code"))
	}
	cat.Code = c.Param("code")
	created, err := s.deps.Categories.PutCategory(c.Request().Context(), &cat)
	if err != nil {
		return err
	}
	s.clocks.forget()
	return c.JSON(createdStatus(created), cat)
}

func createdStatus(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}

// handleCategory returns one category: GET /v1/categories/{code}.
func (s *Server) handleCategory(c echo.Context) error {
	cat, err := s.deps.Categories.Category(c.Request().Context(), c.Param("code"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, cat)
}

// handleCategories lists the responsibility list: GET /v1/categories.
func (s *Server) handleCategories(c echo.Context) error {
	cats, err := s.deps.Categories.Categories(c.Request().Context())
	if err != nil {
		return err
	}
	if cats == nil {
		cats = []*gridmap.Category{}
	}
	return c.JSON(http.StatusOK, map[string]any{"categories": cats})
}

// handlePutCalendarDay marks a date working or not:
// PUT /v1/calendar/{YYYY-MM-DD} {"working", "name"}.
func (s *Server) handlePutCalendarDay(c echo.Context) error {
	var body struct {
		Working *bool  `json:"working"`
		Name    string `json:"name"`
	}
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	if body.Working == nil {
		return gridmap.Errorf(gridmap.EINVALID, "working is required: false for a holiday, true for a weekend day worked in exchange")
	}
	d := gridmap.CalendarDay{Date: c.Param("date"), Working: *body.Working, Name: body.Name}
	if err := s.deps.Categories.PutCalendarDay(c.Request().Context(), d); err != nil {
		return err
	}
	s.clocks.forget()
	return c.JSON(http.StatusOK, d)
}

// handleCalendar lists the dates that break the weekday rule: GET /v1/calendar.
func (s *Server) handleCalendar(c echo.Context) error {
	days, err := s.deps.Categories.CalendarDays(c.Request().Context())
	if err != nil {
		return err
	}
	if days == nil {
		days = []gridmap.CalendarDay{}
	}
	return c.JSON(http.StatusOK, map[string]any{"days": days})
}

// departmentRequest is the body of PUT /v1/departments/{code}: a
// department and its write-only webhook secret, absent (nil) when the
// client does not send one.
type departmentRequest struct {
	gridmap.Department
	WebhookSecret *string `json:"webhook_secret"`
}

// handlePutDepartment defines a department:
// PUT /v1/departments/{code} {"name", "webhook_url", "webhook_secret", "layer"}.
// A body without webhook_secret (as GET returns it) keeps the stored
// secret; "webhook_secret": "" removes it.
func (s *Server) handlePutDepartment(c echo.Context) error {
	var req departmentRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	d := req.Department
	if d.Code != "" && d.Code != c.Param("code") {
		return gridmap.Errorf(gridmap.EINVALID, "body code %q differs from the department in the path %q", d.Code, c.Param("code"))
	}
	d.Code = c.Param("code")
	created, err := s.deps.Categories.PutDepartment(c.Request().Context(), &d, req.WebhookSecret)
	if err != nil {
		return err
	}
	return c.JSON(createdStatus(created), d)
}

// handleDepartment returns one department: GET /v1/departments/{code}.
func (s *Server) handleDepartment(c echo.Context) error {
	d, err := s.deps.Categories.Department(c.Request().Context(), c.Param("code"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

// handleDepartments lists departments: GET /v1/departments.
func (s *Server) handleDepartments(c echo.Context) error {
	ds, err := s.deps.Categories.Departments(c.Request().Context())
	if err != nil {
		return err
	}
	if ds == nil {
		ds = []*gridmap.Department{}
	}
	return c.JSON(http.StatusOK, map[string]any{"departments": ds})
}
