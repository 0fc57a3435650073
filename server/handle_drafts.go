package server

import (
	"net/http"

	"github.com/gridmap/gridmap"
	"github.com/labstack/echo/v4"
)

// handleDraft summarises a layer's draft: GET /v1/layers/{layer}/draft.
// 200 with counts and problems (each once, with its geometry), 404 without
// a draft.
func (s *Server) handleDraft(c echo.Context) error {
	sum, err := s.deps.Drafts.Draft(c.Request().Context(), c.Param("layer"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sum)
}

// handleDraftGrids streams the draft's grids as a GeoJSON
// FeatureCollection: GET /v1/layers/{layer}/draft/grids.
func (s *Server) handleDraftGrids(c echo.Context) error {
	return s.streamGrids(c, c.Param("layer"), true, "")
}

// handleDraftChangeset edits the draft with the operations of a changeset:
// POST /v1/layers/{layer}/draft/changesets. 200 with the result, whose
// problems include the overlaps and spills the draft still holds; 422 for
// problems a draft cannot hold either (invalid geometry, unknown parents,
// bad codes); 412 on a stale if_match (draft versions).
func (s *Server) handleDraftChangeset(c echo.Context) error {
	var cs gridmap.Changeset
	if err := decodeJSON(c, &cs); err != nil {
		return err
	}
	cs.Author = actorOf(c, cs.Author)
	res, err := s.deps.Drafts.ApplyDraftChangeset(c.Request().Context(), c.Param("layer"), &cs)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

// resolveRequest names an overlapping pair and the grid that keeps the
// overlap.
type resolveRequest struct {
	Overlap []string `json:"overlap"`
	GiveTo  string   `json:"give_to"`
}

// handleResolveOverlap gives an overlap to one grid of the pair, taking it
// from the other: POST /v1/layers/{layer}/draft/resolve {"overlap": [a, b],
// "give_to": a}. 200 with the changeset result, 400 for a pair that does
// not overlap.
func (s *Server) handleResolveOverlap(c echo.Context) error {
	var req resolveRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if len(req.Overlap) != 2 {
		return gridmap.Errorf(gridmap.EINVALID, "overlap must name the two grids that overlap, as [codeA, codeB]")
	}
	res, err := s.deps.Drafts.ResolveOverlap(c.Request().Context(), c.Param("layer"),
		[2]string{req.Overlap[0], req.Overlap[1]}, req.GiveTo, actorOf(c, ""))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

// handlePublish replaces the layer's published grids by its draft:
// POST /v1/layers/{layer}/publish {"reason", "allow": [kinds]}. 200 with
// the new versions, 422 with the problems allow does not accept, 409 when
// the layer changed since the draft was started, 404 without a draft.
func (s *Server) handlePublish(c echo.Context) error {
	var p gridmap.Publish
	if err := decodeJSON(c, &p); err != nil {
		return err
	}
	p.Author = actorOf(c, p.Author)
	if p.Reason == "" {
		p.Reason = "publish draft"
	}
	res, err := s.deps.Drafts.Publish(c.Request().Context(), c.Param("layer"), &p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

// handleDiscardDraft removes a layer's draft: DELETE
// /v1/layers/{layer}/draft. 204, 404 without a draft.
func (s *Server) handleDiscardDraft(c echo.Context) error {
	if err := s.deps.Drafts.DiscardDraft(c.Request().Context(), c.Param("layer")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// asDraftRoute answers a request for the published layer's route with
// draft=true as the draft's own route (method, path) would, under that
// route's rule: changesets?draft=true edits the draft, grids?draft=true
// lists its grids.
func (s *Server) asDraftRoute(c echo.Context, method, path string, h echo.HandlerFunc) error {
	if err := s.mayUseDraft(c, method, path); err != nil {
		return err
	}
	return h(c)
}

// mayUseDraft lets the caller through to the draft as the draft's route
// (method, path) would: EFORBIDDEN otherwise.
func (s *Server) mayUseDraft(c echo.Context, method, path string) error {
	r, _ := s.ruleFor(method, path)
	err := s.allows(c, r, method+" "+path)
	if gridmap.ErrorCode(err) == gridmap.EFORBIDDEN {
		return gridmap.Errorf(gridmap.EFORBIDDEN, "%s %s with draft=true works on the layer's draft, which only editors of the whole layer may", c.Request().Method, c.Path())
	}
	return err
}
