package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gridmap/gridmap"
	"github.com/labstack/echo/v4"
	"github.com/paulmach/orb/geojson"
)

// handleChangeset applies a list of edits atomically:
// POST /v1/layers/{layer}/changesets. 200 with the result (also for a dry
// run, problems included), 422 with the problems, 412 on a stale if_match,
// 413 past a limit of gridmap.Changeset.Check (the editor applies it).
func (s *Server) handleChangeset(c echo.Context) error {
	if draft, err := boolParam(c, "draft"); err != nil {
		return err
	} else if draft {
		return s.asDraftRoute(c, "POST", "/v1/layers/:layer/draft/changesets", s.handleDraftChangeset)
	}
	var cs gridmap.Changeset
	if err := decodeJSON(c, &cs); err != nil {
		return err
	}
	cs.Author = actorOf(c, cs.Author)
	res, err := s.deps.Editor.ApplyChangeset(c.Request().Context(), c.Param("layer"), &cs)
	if err != nil {
		return err
	}
	if res.Applied {
		setVersions(c, nil, res.Versions)
	}
	return c.JSON(http.StatusOK, res)
}

// handlePutGrid creates or replaces one grid from a GeoJSON Feature:
// PUT /v1/layers/{layer}/grids/{code}. If-Match (the version) is honoured.
// 201 when created, 200 when replaced, with the stored grid and its ETag.
func (s *Server) handlePutGrid(c echo.Context) error {
	var f geojson.Feature
	if err := decodeJSON(c, &f); err != nil {
		return err
	}
	ifMatch, err := parseIfMatch(c)
	if err != nil {
		return err
	}
	layer, code := c.Param("layer"), c.Param("code")
	cs := &gridmap.Changeset{
		Reason: c.QueryParam("reason"), Author: actorOf(c, ""),
		Operations: []gridmap.Operation{{Op: gridmap.OpPut, Code: code, Feature: &f, IfMatch: ifMatch}},
	}
	res, err := s.deps.Editor.ApplyChangeset(c.Request().Context(), layer, cs)
	if err != nil {
		return err
	}
	g, err := s.deps.Grids.Grid(c.Request().Context(), layer, code)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if slices.Contains(res.Created, code) {
		status = http.StatusCreated
	}
	c.Response().Header().Set("ETag", strconv.Quote(strconv.Itoa(g.Version)))
	var before any
	if ifMatch != nil {
		before = *ifMatch
	}
	setVersions(c, before, g.Version)
	b, err := marshalFeature(g)
	if err != nil {
		return err
	}
	return c.Blob(status, "application/geo+json", b)
}

// handleDeleteGrid ends a grid's validity (it stays in history):
// DELETE /v1/layers/{layer}/grids/{code}. If-Match is honoured. 204.
func (s *Server) handleDeleteGrid(c echo.Context) error {
	ifMatch, err := parseIfMatch(c)
	if err != nil {
		return err
	}
	cs := &gridmap.Changeset{
		Reason: c.QueryParam("reason"), Author: actorOf(c, ""),
		Operations: []gridmap.Operation{{Op: gridmap.OpDelete, Code: c.Param("code"), IfMatch: ifMatch}},
	}
	if _, err := s.deps.Editor.ApplyChangeset(c.Request().Context(), c.Param("layer"), cs); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// handleGridHistory lists every version of a grid, oldest first, as a
// FeatureCollection: GET /v1/layers/{layer}/grids/{code}/history.
func (s *Server) handleGridHistory(c echo.Context) error {
	grids, err := s.deps.Editor.History(c.Request().Context(), c.Param("layer"), c.Param("code"))
	if err != nil {
		return err
	}
	fc := featureCollection{Type: "FeatureCollection", Features: make([]gridFeature, len(grids)), NumberReturned: len(grids)}
	for i, g := range grids {
		fc.Features[i] = toFeature(g)
		fc.Features[i].Properties["author"] = g.Author
		fc.Features[i].Properties["reason"] = g.Reason
	}
	c.Response().Header().Set(echo.HeaderContentType, "application/geo+json")
	return c.JSON(http.StatusOK, fc)
}

// coverageItem is a GeoJSON geometry with the area and the codes involved.
type coverageItem map[string]any

func toCoverageItems(items []gridmap.CoverageItem) []coverageItem {
	out := make([]coverageItem, len(items))
	for i, it := range items {
		b, _ := json.Marshal(geojson.NewGeometry(it.Geometry))
		var g coverageItem
		_ = json.Unmarshal(b, &g)
		g["area_m2"] = it.AreaM2
		g["codes"] = it.Codes
		out[i] = g
	}
	return out
}

// handleCoverage reports gaps, overlaps and parts outside the parent:
// GET /v1/layers/{layer}/coverage[?parent={code}].
func (s *Server) handleCoverage(c echo.Context) error {
	draft, err := boolParam(c, "draft")
	if err != nil {
		return err
	}
	coverageOf := s.deps.Editor.CoverageOf
	if draft {
		if err := s.mayUseDraft(c, http.MethodGet, "/v1/layers/:layer/draft"); err != nil {
			return err
		}
		coverageOf = s.deps.Drafts.DraftCoverageOf
	}
	cov, err := coverageOf(c.Request().Context(), c.Param("layer"), c.QueryParam("parent"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{
		"gaps": toCoverageItems(cov.Gaps), "overlaps": toCoverageItems(cov.Overlaps), "outside": toCoverageItems(cov.Outside),
	})
}

// parseIfMatch reads an If-Match header holding a version: "3", 3 or W/"3".
func parseIfMatch(c echo.Context) (*int, error) {
	h := strings.TrimSpace(c.Request().Header.Get("If-Match"))
	if h == "" {
		return nil, nil
	}
	v, err := strconv.Atoi(strings.Trim(strings.TrimPrefix(h, "W/"), `"`))
	if err != nil {
		return nil, gridmap.Errorf(gridmap.EINVALID, "If-Match %q must be the version from the grid's ETag, such as \"3\"", h)
	}
	return &v, nil
}
