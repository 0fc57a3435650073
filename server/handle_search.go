package server

import (
	"net/http"

	"github.com/gridmap/gridmap"
	"github.com/labstack/echo/v4"
)

// handleSearch finds grids and reports by text: GET /v1/search?q=&layer=
// -> {"grids": [{"layer", "code", "name", "level", "bbox"}], "reports":
// [{"id", "external_id", "category", "status", "primary", "bbox"}]}.
// Grids by code prefix or name substring, reports by id or external id
// prefix (the caller's jurisdiction only).
func (s *Server) handleSearch(c echo.Context) error {
	res, err := s.deps.Search.Search(c.Request().Context(), gridmap.SearchQuery{Text: c.QueryParam("q"), Layer: c.QueryParam("layer")})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}
