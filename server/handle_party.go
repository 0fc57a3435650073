package server

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/labstack/echo/v4"
)

// partyRequest is the body of PUT /v1/layers/{layer}/grids/{code}/party:
// a party organisation, as GET answers it (its read-only fields are
// accepted and ignored, so that a client may send back what it read).
type partyRequest struct {
	Layer     string                 `json:"layer"`
	Grid      string                 `json:"grid"`
	Kind      string                 `json:"kind"`
	Name      string                 `json:"name"`
	Secretary gridmap.PartySecretary `json:"secretary"`
	Members   []gridmap.PartyMember  `json:"members"`
	Street    string                 `json:"street"`
	Version   *int                   `json:"version"`
	UpdatedAt *time.Time             `json:"updated_at"`
	UpdatedBy *string                `json:"updated_by"`
}

// handlePutParty creates or replaces a grid's party organisation:
// PUT /v1/layers/{layer}/grids/{code}/party. 201 created, 200 replaced,
// with the organisation and its version as the ETag; If-Match (the
// version; "0" while there is none) is honoured, stale -> 412. 400 saying
// what to fix, 404 for an unknown grid.
func (s *Server) handlePutParty(c echo.Context) error {
	var req partyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	layer, code := c.Param("layer"), c.Param("code")
	if req.Layer != "" && req.Layer != layer || req.Grid != "" && req.Grid != code {
		return gridmap.Errorf(gridmap.EINVALID, "the body names grid %s of layer %s, the path %s of %s; leave layer and grid out or make them agree",
			req.Grid, req.Layer, code, layer)
	}
	ifMatch, err := parseIfMatch(c)
	if err != nil {
		return err
	}
	p := &gridmap.PartyOrg{Layer: layer, Grid: code, Kind: req.Kind, Name: req.Name, Secretary: req.Secretary,
		Members: req.Members, Street: req.Street}
	created, err := s.deps.Party.PutParty(c.Request().Context(), p, ifMatch)
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", `"`+strconv.Itoa(p.Version)+`"`)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		setVersions(c, nil, p.Version)
	} else {
		setVersions(c, p.Version-1, p.Version)
	}
	return c.JSON(status, p)
}

// handleParty answers a grid's party organisation:
// GET /v1/layers/{layer}/grids/{code}/party, with its version as the ETag.
// 404 for an unknown grid or one without an organisation; 403 outside a
// scoped caller's area.
func (s *Server) handleParty(c echo.Context) error {
	p, err := s.deps.Party.Party(c.Request().Context(), c.Param("layer"), c.Param("code"))
	if err != nil {
		return err
	}
	etag := `"` + strconv.Itoa(p.Version) + `"`
	c.Response().Header().Set("ETag", etag)
	if c.Request().Header.Get("If-None-Match") == etag {
		return c.NoContent(http.StatusNotModified)
	}
	return c.JSON(http.StatusOK, p)
}

// handleDeleteParty removes a grid's party organisation:
// DELETE /v1/layers/{layer}/grids/{code}/party. 204; If-Match honoured.
func (s *Server) handleDeleteParty(c echo.Context) error {
	ifMatch, err := parseIfMatch(c)
	if err != nil {
		return err
	}
	if err := s.deps.Party.DeleteParty(c.Request().Context(), c.Param("layer"), c.Param("code"), ifMatch); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// partyCSVHeader names the columns of the coverage list as CSV.
var partyCSVHeader = []string{"code", "name", "has_party", "kind", "party_name", "secretary", "secretary_phone", "members", "street"}

// handlePartyCoverage lists which grids of a level have a party
// organisation: GET /v1/party?layer=&level=&missing=. 200 with
// gridmap.PartyCoverage, or with Accept: text/csv one row per grid. A
// scoped caller's grids are its subtree's. 400 saying what to fix.
func (s *Server) handlePartyCoverage(c echo.Context) error {
	layer := c.QueryParam("layer")
	if layer == "" {
		return gridmap.Errorf(gridmap.EINVALID, "layer is required: the comprehensive layer whose grids to list")
	}
	missing, err := boolParam(c, "missing")
	if err != nil {
		return err
	}
	cov, err := s.deps.Party.PartyCoverage(c.Request().Context(), layer, c.QueryParam("level"), missing)
	if err != nil {
		return err
	}
	if !wantsCSV(c.Request().Header.Get("Accept")) {
		return c.JSON(http.StatusOK, cov)
	}
	return writeCSV(c, partyCSVHeader, len(cov.Rows), func(i int) []string {
		r := cov.Rows[i]
		if r.Party == nil {
			return []string{csvText(r.Code), csvText(r.Name), "false", "", "", "", "", "0", ""}
		}
		p := r.Party
		return []string{csvText(r.Code), csvText(r.Name), "true", p.Kind, csvText(p.Name), csvText(p.Secretary.Name),
			csvText(p.Secretary.Phone), strconv.Itoa(len(p.Members)), csvText(p.Street)}
	})
}

// handleAddMeeting records a street's joint meeting:
// POST /v1/party/meetings. 201 with the meeting, its items carrying their
// consult events and the reports' tiers after it. 400 saying what to fix,
// 422 naming a report the meeting may not take up (nothing is recorded
// then), 403 for a street outside a scoped caller's area.
func (s *Server) handleAddMeeting(c echo.Context) error {
	var m gridmap.Meeting
	if err := decodeJSON(c, &m); err != nil {
		return err
	}
	m.ID, m.CreatedBy, m.CreatedAt = 0, "", time.Time{}
	if err := s.deps.Party.AddMeeting(c.Request().Context(), &m); err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/party/meetings?layer="+url.QueryEscape(m.Layer)+"&street="+url.QueryEscape(m.Street))
	return c.JSON(http.StatusCreated, m)
}

// handleMeetings lists joint meetings: GET /v1/party/meetings?layer=
// &street=, newest first, with their items.
func (s *Server) handleMeetings(c echo.Context) error {
	layer := c.QueryParam("layer")
	if layer == "" {
		return gridmap.Errorf(gridmap.EINVALID, "layer is required: the comprehensive layer whose streets' meetings to list")
	}
	ms, err := s.deps.Party.Meetings(c.Request().Context(), layer, strings.TrimSpace(c.QueryParam("street")))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"meetings": ms})
}
