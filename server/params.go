package server

import (
	"time"

	"github.com/gridmap/gridmap"
	"github.com/labstack/echo/v4"
)

// parseTime reads a time parameter (name says which, for the message) in
// RFC 3339. Returns EINVALID with an example of the form.
func parseTime(name, value string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, value)
	if err != nil {
		return time.Time{}, gridmap.Errorf(gridmap.EINVALID, "%s %q must be an RFC 3339 time such as 2026-01-31T08:00:00+08:00", name, value)
	}
	return t, nil
}

// refuseUnstorableText answers 400, naming the parameter, for a request
// whose path or query parameters hold text PostgreSQL cannot store (a NUL,
// bytes that are not UTF-8): passed on to a query, such text fails it with
// an error that is no fault of the service. Register it with Echo.Use, after
// routing, so path parameters are known.
func refuseUnstorableText(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		// Each value is checked first without its name, so that naming
		// it costs nothing on a request that is fine.
		values := c.ParamValues()
		for i, name := range c.ParamNames() {
			if i < len(values) && gridmap.CheckText("", values[i]) != nil {
				return gridmap.CheckText("path parameter "+name, values[i])
			}
		}
		q := newQueryPairs(c.Request().URL.RawQuery)
		for name, v, ok := q.next(); ok; name, v, ok = q.next() {
			if gridmap.CheckText("", v) != nil {
				return gridmap.CheckText("query parameter "+name, v)
			}
		}
		return next(c)
	}
}
