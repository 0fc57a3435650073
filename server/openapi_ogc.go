package server

import (
	"bytes"
	"html/template"
	"net/http"
	"sort"
	"strings"

	"github.com/labstack/echo/v4"
)

// handleOGCAPI returns the handler of GET /ogc/api: the OGC API - Features
// part as an OpenAPI 3.0 document (f=html: a page listing its operations),
// built once at the first request.
func (s *Server) handleOGCAPI() echo.HandlerFunc {
	var doc servedDocument
	var page []byte // written once, with the document
	return func(c echo.Context) error {
		if err := doc.load(func() ([]byte, error) {
			d := s.ogcDocument()
			body, err := d.marshal()
			if err != nil {
				return nil, err
			}
			page, err = ogcAPIPage(d)
			return body, err
		}); err != nil {
			return err
		}
		html, err := ogcHTML(c)
		if err != nil {
			return err
		}
		if html {
			return c.HTMLBlob(http.StatusOK, page)
		}
		return doc.serve(c, mediaOAS)
	}
}

// ogcDocument describes the /ogc routes.
func (s *Server) ogcDocument() *oasDocument {
	d := newOASDocument(oasInfo{Title: "gridmap OGC API - Features", Version: "1.0",
		Description: "Every layer's grids, layer drafts (for their editors) and the reports as OGC API - Features collections " +
			"(Part 1 core, GeoJSON, HTML, OpenAPI 3.0; Part 3 queryables and CQL2 text filters)."})
	// Paths are relative to the API's root, /ogc, as OGC clients look them
	// up (GDAL finds the items' parameters at /collections/{collectionId}/items).
	d.Servers = []oasServer{{URL: "/ogc"}}
	d.Tags = []oasTag{{Name: "Capabilities"}, {Name: "Data"}}
	f := queryParam("f", "string", "json (GeoJSON for features) or html; without it the Accept header decides")
	f.Schema.Enum = []any{"json", "html"}
	collection := &oasParameter{Name: "collectionId", In: "path", Required: true, Schema: &oasSchema{Type: "string"},
		Description: "A layer's id, a layer's id and \".draft\" (its draft, for its editors), or gridmap.reports."}
	anyJSON := &oasSchema{Type: "object"}
	filterLang := queryParam("filter-lang", "string", "cql2-text (cql-text, its draft name, is read the same).")
	filterLang.Schema.Enum = []any{"cql2-text", "cql-text"}
	feature := &oasSchema{Type: "object", Description: "A GeoJSON Feature."}
	features := &oasSchema{Type: "object", Description: "A GeoJSON FeatureCollection with numberMatched, numberReturned and next/prev links."}
	ops := []struct {
		path, summary, tag string
		params             []*oasParameter
		answer             *oasResponse
		fails              []int
	}{
		{"/ogc", "The landing page: links to the API, the conformance classes and the collections.", "Capabilities", []*oasParameter{f}, answer("The landing page.", anyJSON), nil},
		{"/ogc/conformance", "The conformance classes implemented.", "Capabilities", []*oasParameter{f}, answer("The classes.", anyJSON), nil},
		{"/ogc/api", "This document (f=html: a page listing the operations).", "Capabilities", []*oasParameter{f}, answer("The OpenAPI document.", anyJSON), nil},
		{"/ogc/collections", "The collections the caller may read, with their extents.", "Capabilities", []*oasParameter{f}, answer("The collections.", anyJSON), nil},
		{"/ogc/collections/:collectionId", "One collection.", "Capabilities", []*oasParameter{collection, f}, answer("The collection.", anyJSON), []int{http.StatusNotFound}},
		{"/ogc/collections/:collectionId/queryables", "The properties its features can be filtered on, as a JSON Schema.", "Capabilities", []*oasParameter{collection, f},
			answer("The queryables.", anyJSON), []int{http.StatusNotFound}},
		{"/ogc/collections/:collectionId/items", "A page of its features, in id order.", "Data", []*oasParameter{collection, f,
			queryParam("limit", "integer", "Features per page: 1 to 10,000 (default 100; more is taken as 10,000)."),
			queryParam("offset", "integer", "Features to skip; next and prev links carry it."),
			queryParam("bbox", "string", "minLon,minLat,maxLon,maxLat (CRS84): the features that intersect it."),
			queryParam("bbox-crs", "string", "Only "+crs84+"."),
			queryParam("crs", "string", "Only "+crs84+"."),
			queryParam("datetime", "string", "Grids: an instant (RFC 3339), the grids as they were then. Reports: an instant or an interval a/b (.. open) over reported_at."),
			queryParam("level", "string", "Grids of this level."),
			queryParam("parent", "string", "Grids under this parent code."),
			queryParam("filter", "string", "A CQL2 text filter over the queryables: comparisons, AND/OR/NOT, LIKE, BETWEEN, IN, IS NULL, S_INTERSECTS with a geometry or BBOX."),
			filterLang,
			queryParam("code", "string", "Grids: the grid of this code (any queryable may be given so)."),
			queryParam("name", "string", "Grids: the grids of this name."),
			queryParam("filter-crs", "string", "Only "+crs84+"."),
		}, geoJSONAnswer("The features; any other parameter naming a queryable keeps the features whose property equals its value.", features),
			[]int{http.StatusBadRequest, http.StatusNotFound}},
		{"/ogc/collections/:collectionId/items/:id", "One feature: a grid by code, a report by id.", "Data", []*oasParameter{collection, f,
			{Name: "id", In: "path", Required: true, Schema: &oasSchema{Type: "string"}},
			queryParam("datetime", "string", "Grids: the version valid at this instant."),
		}, geoJSONAnswer("The feature.", feature), []int{http.StatusBadRequest, http.StatusNotFound}},
	}
	for _, o := range ops {
		op := &oasOperation{Summary: o.summary, Tags: []string{o.tag}, Parameters: o.params, Responses: responses(200, o.answer)}
		if r, ok := rules["GET "+o.path]; ok {
			op.Description = s.accessNote(r)
			if r.public && s.cfg.PublicRead {
				open := append(oasSignedIn(), oasSecurityRequirement{})
				op.Security = &open
			}
			o.fails = append(o.fails, http.StatusUnauthorized, http.StatusForbidden)
		}
		d.canFail(op, o.fails...)
		d.add(http.MethodGet, ogcAPIPath(o.path), op)
	}
	return d
}

// ogcAPIPath is a /ogc route's path in the document: relative to /ogc.
func ogcAPIPath(route string) string {
	if p := strings.TrimPrefix(route, "/ogc"); p != "" {
		return p
	}
	return "/"
}

var ogcAPITemplate = template.Must(template.New("api").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title><link rel="stylesheet" href="/app.css"></head>
<body class="ogc-page"><main><nav><a href="/ogc?f=html">gridmap OGC API</a> · <a href="/ogc/api">the OpenAPI document</a></nav>
<h1>{{.Title}}</h1><p>{{.Description}}</p>
{{range .Operations}}<h2>GET /ogc{{.Path}}</h2><p>{{.Summary}}</p>{{with .Params}}<ul>{{range .}}<li><code>{{.Name}}</code> ({{.In}}){{with .Description}}: {{.}}{{end}}</li>{{end}}</ul>{{end}}{{end}}
</main></body></html>
`))

// ogcAPIPage is the document as a page to read (the service-doc link).
func ogcAPIPage(d *oasDocument) ([]byte, error) {
	type op struct {
		Path, Summary string
		Params        []*oasParameter
	}
	var ops []op
	for path, item := range d.Paths {
		if get := item["get"]; get != nil {
			ops = append(ops, op{Path: path, Summary: get.Summary, Params: get.Parameters})
		}
	}
	sort.Slice(ops, func(i, j int) bool { return strings.Compare(ops[i].Path, ops[j].Path) < 0 })
	var b bytes.Buffer
	err := ogcAPITemplate.Execute(&b, map[string]any{"Title": d.Info.Title, "Description": d.Info.Description, "Operations": ops})
	return b.Bytes(), err
}
