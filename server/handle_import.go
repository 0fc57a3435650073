package server

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/labstack/echo/v4"
)

// importReadTimeout bounds how long a client may take to send an import body.
const importReadTimeout = 30 * time.Minute

// handleImport loads grids from a GeoJSON FeatureCollection or text sequence
// body: POST /v1/layers/{layer}/import. Query parameters: level (for every
// feature; else each feature's level property), code_field, name_field,
// parent_field, level_field, skip_invalid, make_valid, draft (into the
// layer's draft), and levels (+ kind) to create or redefine the layer first. 200 with what was done; 422 listing every
// rejected feature when any was rejected and skip_invalid is not set.
func (s *Server) handleImport(c echo.Context) error {
	q := c.QueryParams()
	fields := geo.FieldMap{
		Code: valueOr(q.Get("code_field"), "code"), Name: valueOr(q.Get("name_field"), "name"),
		Parent: valueOr(q.Get("parent_field"), "parent"), Level: valueOr(q.Get("level_field"), "level"),
		DefaultLevel: q.Get("level"),
	}
	if q.Get("level") != "" && q.Get("level_field") == "" {
		fields.Level = "" // one level for the whole body
	}
	var opts gridmap.ImportOptions
	var err error
	if opts.SkipInvalid, err = boolParam(c, "skip_invalid"); err != nil {
		return err
	}
	if opts.MakeValid, err = boolParam(c, "make_valid"); err != nil {
		return err
	}
	if opts.Draft, err = boolParam(c, "draft"); err != nil {
		return err
	}
	opts.Reason = valueOr(q.Get("reason"), "import")
	if v := q.Get("levels"); v != "" {
		opts.Levels = strings.Split(v, ",")
	}
	opts.Kind = q.Get("kind")
	_ = http.NewResponseController(c.Response().Writer).SetReadDeadline(time.Now().Add(importReadTimeout))
	_ = http.NewResponseController(c.Response().Writer).SetWriteDeadline(time.Now().Add(importReadTimeout))
	res, err := s.deps.Importer.Import(c.Request().Context(), c.Param("layer"), geo.NewFeatureReader(c.Request().Body, fields), opts)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

func valueOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func boolParam(c echo.Context, name string) (bool, error) {
	v := c.QueryParam(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, gridmap.Errorf(gridmap.EINVALID, "%s=%q must be true or false", name, v)
	}
	return b, nil
}
