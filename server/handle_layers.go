package server

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gridmap/gridmap"
	"github.com/labstack/echo/v4"
)

// handleLayers lists every layer: GET /v1/layers.
func (s *Server) handleLayers(c echo.Context) error {
	layers, err := s.deps.Layers.Layers(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"layers": layers})
}

// handleLayer returns one layer: GET /v1/layers/{layer}.
func (s *Server) handleLayer(c echo.Context) error {
	l, err := s.deps.Layers.Layer(c.Request().Context(), c.Param("layer"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, l)
}

// handlePutLayer creates or redefines a layer: PUT /v1/layers/{layer}.
// 201 when created, 200 when replaced.
func (s *Server) handlePutLayer(c echo.Context) error {
	var l gridmap.Layer
	if err := decodeJSON(c, &l); err != nil {
		return err
	}
	id := c.Param("layer")
	if l.ID != "" && l.ID != id {
		return gridmap.Errorf(gridmap.EINVALID, "body id %q differs from the layer in the path %q", l.ID, id)
	}
	l.ID = id
	created, err := s.deps.Layers.PutLayer(c.Request().Context(), &l)
	if err != nil {
		return err
	}
	stored, err := s.deps.Layers.Layer(c.Request().Context(), id)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return c.JSON(status, stored)
}

// decodeJSON reads a JSON body strictly: unknown fields are refused so a
// misspelt field is reported rather than ignored. Returns EINVALID for a body
// that is not the expected JSON or holds an escaped NUL, EUNPROCESSABLE for
// one nested deeper than gridmap.MaxJSONDepth (found as the body streams in,
// before anything is built), and the body limit's 413.
func decodeJSON(c echo.Context, v any) error {
	dec := json.NewDecoder(gridmap.LimitJSON(c.Request().Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var he *echo.HTTPError
		var ge *gridmap.Error
		switch {
		case errors.As(err, &he):
			return he // body over the limit
		case errors.As(err, &ge):
			return ge // nested too deep, or a NUL
		}
		return gridmap.Errorf(gridmap.EINVALID, "request body is not the expected JSON: %v", err)
	}
	return nil
}
