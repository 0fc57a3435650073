package server

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/cql2"
	"github.com/labstack/echo/v4"
)

// OGC API - Features (Parts 1 and 3) under /ogc: every layer is a
// collection of its grids, a layer's draft one more for its editors, and
// the reports one for those who may read reports, scoped as /v1/reports
// is. QGIS, GDAL (OAPIF:) and other standard clients read them with the
// tokens they would send to /v1.

const (
	crs84        = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
	mediaGeoJSON = "application/geo+json"
	mediaHTML    = "text/html"
	mediaOAS     = "application/vnd.oai.openapi+json;version=3.0"
	mediaSchema  = "application/schema+json"
	defaultItems = 100
)

// ogcConformance lists the conformance classes /ogc implements.
var ogcConformance = append([]string{
	"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
	"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
	"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
	"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
	"http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
	"http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
	"http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
	"http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
}, cql2.Conformance...)

type ogcLink struct {
	Href  string `json:"href"`
	Rel   string `json:"rel"`
	Type  string `json:"type,omitempty"`
	Title string `json:"title,omitempty"`
}

func (s *Server) ogcRoutes() {
	e := s.echo
	e.GET("/ogc", s.handleOGCLanding)
	e.GET("/ogc/conformance", s.handleOGCConformance)
	e.GET("/ogc/api", s.handleOGCAPI())
	e.GET("/ogc/collections", s.handleOGCCollections)
	e.GET("/ogc/collections/:collectionId", s.handleOGCCollection)
	e.GET("/ogc/collections/:collectionId/items", s.handleOGCItems)
	e.GET("/ogc/collections/:collectionId/items/:id", s.handleOGCItem)
	e.GET("/ogc/collections/:collectionId/queryables", s.handleOGCQueryables)
}

// ogcHTML says whether the client asked for the HTML view: f=html, or no
// f and an Accept that names HTML and no JSON (a browser's). Returns
// EINVALID for another f.
func ogcHTML(c echo.Context) (bool, error) {
	c.Response().Header().Add("Vary", "Accept") // one URL, two representations
	switch f := c.QueryParam("f"); f {
	case "html":
		return true, nil
	case "json", "geojson":
		return false, nil
	case "":
		accept := c.Request().Header.Get("Accept")
		return strings.Contains(accept, mediaHTML) && !strings.Contains(accept, "json"), nil
	default:
		return false, gridmap.Errorf(gridmap.EINVALID, "f=%q: this service answers f=json (GeoJSON for features) or f=html", f)
	}
}

// ogcURL is the absolute URL of path on this service with query.
func ogcURL(c echo.Context, path string, query url.Values) string {
	u := baseURL(c) + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return u
}

// selfLinks are a resource's self and alternate links, the JSON (of type
// jsonType) and the HTML view.
func selfLinks(c echo.Context, path, jsonType string, html bool) []ogcLink {
	q := url.Values{}
	for k, v := range c.QueryParams() {
		if k != "f" {
			q[k] = v
		}
	}
	withF := func(f string) url.Values {
		out := url.Values{"f": {f}}
		for k, v := range q {
			out[k] = v
		}
		return out
	}
	jsonLink := ogcLink{Href: ogcURL(c, path, withF("json")), Type: jsonType, Title: "this document as JSON"}
	htmlLink := ogcLink{Href: ogcURL(c, path, withF("html")), Type: mediaHTML, Title: "this document as HTML"}
	if html {
		jsonLink.Rel, htmlLink.Rel = "alternate", "self"
		return []ogcLink{htmlLink, jsonLink}
	}
	jsonLink.Rel, htmlLink.Rel = "self", "alternate"
	return []ogcLink{jsonLink, htmlLink}
}

func (s *Server) handleOGCLanding(c echo.Context) error {
	html, err := ogcHTML(c)
	if err != nil {
		return err
	}
	links := append(selfLinks(c, "/ogc", echo.MIMEApplicationJSON, html),
		ogcLink{Href: ogcURL(c, "/ogc/api", nil), Rel: "service-desc", Type: mediaOAS, Title: "the API as OpenAPI 3.0"},
		ogcLink{Href: ogcURL(c, "/ogc/api", url.Values{"f": {"html"}}), Rel: "service-doc", Type: mediaHTML, Title: "the API, to read"},
		ogcLink{Href: ogcURL(c, "/ogc/conformance", nil), Rel: "conformance", Type: echo.MIMEApplicationJSON, Title: "the conformance classes implemented"},
		ogcLink{Href: ogcURL(c, "/ogc/collections", nil), Rel: "data", Type: echo.MIMEApplicationJSON, Title: "the collections"},
	)
	body := map[string]any{
		"title":       "gridmap",
		"description": "Grids of every layer (with their history), layer drafts for their editors, and the reports, as OGC API - Features.",
		"links":       links,
	}
	if html {
		return s.ogcPage(c, "gridmap", body["description"].(string), links, nil)
	}
	return c.JSON(http.StatusOK, body)
}

func (s *Server) handleOGCConformance(c echo.Context) error {
	html, err := ogcHTML(c)
	if err != nil {
		return err
	}
	if html {
		return s.ogcPage(c, "Conformance", "The conformance classes this service implements.",
			selfLinks(c, "/ogc/conformance", echo.MIMEApplicationJSON, true), ogcList(ogcConformance))
	}
	return c.JSON(http.StatusOK, map[string]any{"conformsTo": ogcConformance})
}

// ogcCollection is a collection's description.
type ogcCollection struct {
	ID          string    `json:"id"`
	Title       string    `json:"title"`
	Description string    `json:"description,omitempty"`
	ItemType    string    `json:"itemType"`
	Extent      ogcExtent `json:"extent"`
	CRS         []string  `json:"crs"`
	StorageCRS  string    `json:"storageCrs"`
	Links       []ogcLink `json:"links"`
}

type ogcExtent struct {
	Spatial struct {
		BBox [][4]float64 `json:"bbox"`
		CRS  string       `json:"crs"`
	} `json:"spatial"`
	Temporal *struct {
		Interval [][2]*string `json:"interval"`
		TRS      string       `json:"trs"`
	} `json:"temporal,omitempty"`
}

// featureQuery is the collection the path names, after checking the caller
// may read it: the reports as GET /v1/reports allows, a draft as its
// grids' route does; a layer's grids as GET /v1/layers/{layer}/grids.
func (s *Server) featureQuery(c echo.Context) (*gridmap.FeatureQuery, error) {
	id, err := pathParam(c, "collectionId")
	if err != nil {
		return nil, err
	}
	switch {
	case id == gridmap.ReportsCollection:
		if err := s.mayCallAs(c, http.MethodGet, "/v1/reports"); err != nil {
			return nil, err
		}
		return &gridmap.FeatureQuery{Reports: true}, nil
	case strings.HasSuffix(id, gridmap.DraftCollectionSuffix):
		if err := s.mayCallAs(c, http.MethodGet, "/v1/layers/:layer/draft/grids"); err != nil {
			return nil, err
		}
		return &gridmap.FeatureQuery{Layer: strings.TrimSuffix(id, gridmap.DraftCollectionSuffix), Draft: true}, nil
	}
	return &gridmap.FeatureQuery{Layer: id}, nil
}

// ogcCollectionRequest reads what every request of one collection
// starts with: the representation asked for and the collection.
func (s *Server) ogcCollectionRequest(c echo.Context) (html bool, q *gridmap.FeatureQuery, err error) {
	if html, err = ogcHTML(c); err != nil {
		return false, nil, err
	}
	q, err = s.featureQuery(c)
	return html, q, err
}

// describeCollection is a collection's description, with its extent.
func (s *Server) describeCollection(c echo.Context, q *gridmap.FeatureQuery, title, description string) (*ogcCollection, error) {
	id := collectionID(q)
	ext, err := s.deps.Features.Extent(c.Request().Context(), q)
	if err != nil {
		return nil, err
	}
	base := "/ogc/collections/" + url.PathEscape(id)
	col := &ogcCollection{ID: id, Title: title, Description: description, ItemType: "feature", CRS: []string{crs84}, StorageCRS: crs84,
		Links: []ogcLink{
			{Href: ogcURL(c, base, nil), Rel: "self", Type: echo.MIMEApplicationJSON, Title: "this collection"},
			{Href: ogcURL(c, base+"/items", nil), Rel: "items", Type: mediaGeoJSON, Title: "its features"},
			{Href: ogcURL(c, base+"/items", url.Values{"f": {"html"}}), Rel: "items", Type: mediaHTML, Title: "its features, to read"},
			{Href: ogcURL(c, base+"/queryables", nil), Rel: "http://www.opengis.net/def/rel/ogc/1.0/queryables", Type: mediaSchema, Title: "what its features can be filtered on"},
		}}
	col.Extent.Spatial.CRS = crs84
	if ext.BBox != nil {
		col.Extent.Spatial.BBox = [][4]float64{{ext.BBox.Min[0], ext.BBox.Min[1], ext.BBox.Max[0], ext.BBox.Max[1]}}
	} else {
		col.Extent.Spatial.BBox = [][4]float64{{-180, -90, 180, 90}}
	}
	if !ext.Start.IsZero() || !ext.End.IsZero() {
		col.Extent.Temporal = &struct {
			Interval [][2]*string `json:"interval"`
			TRS      string       `json:"trs"`
		}{Interval: [][2]*string{{timeOrNil(ext.Start), timeOrNil(ext.End)}}, TRS: "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
	}
	return col, nil
}

func timeOrNil(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

func collectionID(q *gridmap.FeatureQuery) string {
	switch {
	case q.Reports:
		return gridmap.ReportsCollection
	case q.Draft:
		return q.Layer + gridmap.DraftCollectionSuffix
	}
	return q.Layer
}

func (s *Server) handleOGCCollections(c echo.Context) error {
	html, err := ogcHTML(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	layers, err := s.deps.Layers.Layers(ctx)
	if err != nil {
		return err
	}
	cols := []*ogcCollection{}
	drafts := s.mayCallAs(c, http.MethodGet, "/v1/layers/:layer/draft/grids") == nil
	for _, l := range layers {
		col, err := s.describeCollection(c, &gridmap.FeatureQuery{Layer: l.ID}, l.Name, layerDescription(l))
		if err != nil {
			return err
		}
		cols = append(cols, col)
		if l.HasDraft && drafts {
			col, err := s.describeCollection(c, &gridmap.FeatureQuery{Layer: l.ID, Draft: true}, l.Name+" (draft)",
				"The draft of layer "+l.ID+", waiting to be published: editors fix its problems here before it goes live.")
			if err != nil {
				return err
			}
			cols = append(cols, col)
		}
	}
	if s.mayCallAs(c, http.MethodGet, "/v1/reports") == nil {
		col, err := s.describeCollection(c, &gridmap.FeatureQuery{Reports: true}, "Reports",
			"Geolocated reports (read-only), those in the caller's jurisdiction; datetime selects by when they were reported.")
		if err != nil {
			return err
		}
		cols = append(cols, col)
	}
	links := selfLinks(c, "/ogc/collections", echo.MIMEApplicationJSON, html)
	if html {
		var items []ogcItem
		for _, col := range cols {
			items = append(items, ogcItem{Text: col.Title + " (" + col.ID + ")", Href: "/ogc/collections/" + url.PathEscape(col.ID) + "?f=html"})
		}
		return s.ogcPage(c, "Collections", "", links, items)
	}
	return c.JSON(http.StatusOK, map[string]any{"links": links, "collections": cols})
}

func layerDescription(l *gridmap.Layer) string {
	return "Layer " + l.ID + " (" + l.Kind + "): grids at the levels " + strings.Join(l.Levels, ", ") +
		"; datetime reads them as they were at an instant."
}

func (s *Server) handleOGCCollection(c echo.Context) error {
	html, q, err := s.ogcCollectionRequest(c)
	if err != nil {
		return err
	}
	title, description := "Reports", "Geolocated reports in the caller's jurisdiction."
	if !q.Reports {
		l, err := s.deps.Layers.Layer(c.Request().Context(), q.Layer)
		if err != nil {
			return err
		}
		if q.Draft && !l.HasDraft {
			return gridmap.Errorf(gridmap.ENOTFOUND, "layer %s has no draft", l.ID)
		}
		title, description = l.Name, layerDescription(l)
		if q.Draft {
			title += " (draft)"
		}
	}
	col, err := s.describeCollection(c, q, title, description)
	if err != nil {
		return err
	}
	if html {
		return s.ogcPage(c, col.Title, col.Description, col.Links, nil)
	}
	return c.JSON(http.StatusOK, col)
}

// itemsParams are the query parameters /items takes besides queryables.
var itemsParams = map[string]bool{"f": true, "limit": true, "offset": true, "bbox": true, "bbox-crs": true, "crs": true,
	"datetime": true, "level": true, "parent": true, "filter": true, "filter-lang": true, "filter-crs": true}

// itemsQuery reads the /items parameters into q. Returns EINVALID saying
// what to change.
func (s *Server) itemsQuery(c echo.Context, q *gridmap.FeatureQuery) error {
	q.Limit = defaultItems
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return gridmap.Errorf(gridmap.EINVALID, "limit=%q must be a whole number from 1 to %d", v, gridmap.MaxFeaturesPage)
		}
		q.Limit = min(n, gridmap.MaxFeaturesPage)
	}
	if v := c.QueryParam("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return gridmap.Errorf(gridmap.EINVALID, "offset=%q must be a whole number, 0 or more", v)
		}
		q.Offset = n
	}
	for _, p := range []string{"bbox-crs", "crs", "filter-crs"} {
		if v := c.QueryParam(p); v != "" && v != crs84 {
			return gridmap.Errorf(gridmap.EINVALID, "%s=%q: this service answers in %s (longitude, latitude) only", p, v, crs84)
		}
	}
	if v := c.QueryParam("bbox"); v != "" {
		parts := strings.Split(v, ",")
		if len(parts) == 6 { // with heights: minx,miny,minz,maxx,maxy,maxz
			parts = []string{parts[0], parts[1], parts[3], parts[4]}
		}
		b, err := parseBBox(strings.Join(parts, ","))
		if err != nil {
			return err
		}
		q.BBox = b
	}
	if v := c.QueryParam("datetime"); v != "" {
		if err := datetimeQuery(v, q); err != nil {
			return err
		}
	}
	q.Level, q.Parent = c.QueryParam("level"), c.QueryParam("parent")
	if v := c.QueryParam("filter"); v != "" {
		if lang := c.QueryParam("filter-lang"); lang != "" && lang != "cql2-text" && lang != "cql-text" {
			return gridmap.Errorf(gridmap.EINVALID, "filter-lang=%q: this service reads filters in cql2-text", lang)
		}
		f, err := cql2.Parse(v)
		if err != nil {
			return gridmap.Errorf(gridmap.EINVALID, "filter: %s", err.Error())
		}
		q.Filter = f
	}
	for k, v := range c.QueryParams() {
		if itemsParams[k] {
			continue
		}
		if len(v) != 1 {
			return gridmap.Errorf(gridmap.EINVALID, "%s is given %d times; give it once", k, len(v))
		}
		if q.Equal == nil {
			q.Equal = map[string]string{}
		}
		q.Equal[k] = v[0] // a name that is no queryable is refused by the store, naming it
	}
	return nil
}

// datetimeQuery reads datetime: an instant, or for the reports an
// interval ("a/b", either end ".." or empty for open).
func datetimeQuery(v string, q *gridmap.FeatureQuery) error {
	parse := func(s string) (time.Time, error) {
		if s == "" || s == ".." {
			return time.Time{}, nil
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return t, gridmap.Errorf(gridmap.EINVALID, "datetime=%q: %q is not an RFC 3339 time such as 2024-05-01T08:00:00Z", v, s)
		}
		return t, nil
	}
	from, to, interval := strings.Cut(v, "/")
	if !interval {
		t, err := parse(v)
		if err != nil || t.IsZero() {
			return gridmap.Errorf(gridmap.EINVALID, "datetime=%q must be an RFC 3339 time, or for the reports an interval a/b", v)
		}
		if q.Reports {
			q.From, q.To = t, t
		} else {
			q.At = t
		}
		return nil
	}
	if !q.Reports {
		return gridmap.Errorf(gridmap.EINVALID, "datetime=%q: a layer's grids are read as of one instant (their history); give one time", v)
	}
	var err error
	if q.From, err = parse(from); err != nil {
		return err
	}
	if q.To, err = parse(to); err != nil {
		return err
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From) {
		return gridmap.Errorf(gridmap.EINVALID, "datetime=%q ends before it starts", v)
	}
	return nil
}

// pathParam is a path parameter unescaped: echo leaves "%3B" in a
// parameter when the request's path was escaped, as links to codes with
// such characters are.
func pathParam(c echo.Context, name string) (string, error) {
	v, err := url.PathUnescape(c.Param(name))
	if err != nil {
		return "", gridmap.Errorf(gridmap.EINVALID, "%s %q is not a well-escaped path segment", name, c.Param(name))
	}
	return v, nil
}

// maxHTMLItems bounds a page of items shown as HTML, which is held whole.
const maxHTMLItems = 500

// handleOGCItems streams a page of a collection's features as GeoJSON,
// with numberMatched and next/prev links, or shows it as HTML.
func (s *Server) handleOGCItems(c echo.Context) error {
	html, q, err := s.ogcCollectionRequest(c)
	if err != nil {
		return err
	}
	if err := s.itemsQuery(c, q); err != nil {
		return err
	}
	path := "/ogc/collections/" + url.PathEscape(collectionID(q)) + "/items"
	links := func(matched, returned int64) []ogcLink {
		out := selfLinks(c, path, mediaGeoJSON, html)
		page := func(offset int) string {
			v := url.Values{}
			for k, vals := range c.QueryParams() {
				v[k] = vals
			}
			v.Set("offset", strconv.Itoa(offset))
			v.Set("limit", strconv.Itoa(q.Limit))
			return ogcURL(c, path, v)
		}
		if int64(q.Offset)+returned < matched {
			out = append(out, ogcLink{Href: page(q.Offset + q.Limit), Rel: "next", Type: mediaGeoJSON, Title: "the next page"})
		}
		if q.Offset > 0 {
			out = append(out, ogcLink{Href: page(max(0, q.Offset-q.Limit)), Rel: "prev", Type: mediaGeoJSON, Title: "the previous page"})
		}
		return append(out, ogcLink{Href: ogcURL(c, "/ogc/collections/"+url.PathEscape(collectionID(q)), nil), Rel: "collection", Type: echo.MIMEApplicationJSON})
	}
	if html {
		q.Limit = min(q.Limit, maxHTMLItems)
		var rows [][]byte
		var matched int64
		if err := s.deps.Features.Features(c.Request().Context(), q, func(m int64) error { matched = m; return nil },
			func(f []byte) error { rows = append(rows, slices.Clone(f)); return nil }); err != nil {
			return err
		}
		return s.ogcFeaturesPage(c, collectionID(q), collectionID(q), links(matched, int64(len(rows))), matched, q.Offset, rows, false)
	}
	out := s.newFeatureStream(c)
	err = s.deps.Features.Features(c.Request().Context(), q, func(matched int64) error {
		returned := min(int64(q.Limit), max(0, matched-int64(q.Offset)))
		head, err := jsonMarshal(map[string]any{"numberMatched": matched, "numberReturned": returned,
			"timeStamp": time.Now().UTC().Format(time.RFC3339), "links": links(matched, returned)})
		if err != nil {
			return err
		}
		return out.begin(head[1 : len(head)-1])
	}, out.add)
	return out.end(err, "features", "collection", collectionID(q))
}

// handleOGCItem is one feature: a grid by code (as of datetime), a report
// by id.
func (s *Server) handleOGCItem(c echo.Context) error {
	html, q, err := s.ogcCollectionRequest(c)
	if err != nil {
		return err
	}
	for k := range c.QueryParams() {
		if k != "f" && k != "datetime" {
			return gridmap.Errorf(gridmap.EINVALID, "%s: one feature takes only f and (for grids) datetime", k)
		}
	}
	if v := c.QueryParam("datetime"); v != "" {
		if err := datetimeQuery(v, q); err != nil {
			return err
		}
	}
	if q.Code, err = pathParam(c, "id"); err != nil {
		return err
	}
	q.Limit = 1
	var feature []byte
	if err := s.deps.Features.Features(c.Request().Context(), q, func(int64) error { return nil },
		func(f []byte) error { feature = slices.Clone(f); return nil }); err != nil {
		return err
	}
	path := "/ogc/collections/" + url.PathEscape(collectionID(q)) + "/items/" + url.PathEscape(q.Code)
	links := append(selfLinks(c, path, mediaGeoJSON, html),
		ogcLink{Href: ogcURL(c, "/ogc/collections/"+url.PathEscape(collectionID(q)), nil), Rel: "collection", Type: echo.MIMEApplicationJSON})
	if html {
		return s.ogcFeaturesPage(c, collectionID(q)+" "+q.Code, collectionID(q), links, 1, 0, [][]byte{feature}, true)
	}
	// The feature with its links, without decoding it: its closing brace
	// gives way to them.
	l, err := jsonMarshal(links)
	if err != nil {
		return err
	}
	out := append(feature[:len(feature)-1:len(feature)-1], `,"links":`...)
	out = append(append(out, l...), '}')
	return c.Blob(http.StatusOK, mediaGeoJSON, out)
}

// handleOGCQueryables is the collection's queryables as a JSON Schema.
func (s *Server) handleOGCQueryables(c echo.Context) error {
	html, q, err := s.ogcCollectionRequest(c)
	if err != nil {
		return err
	}
	list, err := s.deps.Features.Queryables(c.Request().Context(), q)
	if err != nil {
		return err
	}
	path := "/ogc/collections/" + url.PathEscape(collectionID(q)) + "/queryables"
	if html {
		var items []ogcItem
		for _, p := range list {
			items = append(items, ogcItem{Text: p.Name + " (" + p.Type.String() + ")"})
		}
		return s.ogcPage(c, "Queryables of "+collectionID(q), "Filter with these: property=value, or a CQL2 text filter.",
			selfLinks(c, path, mediaSchema, true), items)
	}
	props := map[string]any{}
	for _, p := range list {
		props[p.Name] = jsonSchemaOf(p)
	}
	// The draft of Part 3 that GDAL 3.6 (and the QGIS built on it) reads
	// listed the queryables as an array of ids: kept beside the schema,
	// whose validators ignore a keyword they do not know.
	legacy := make([]map[string]string, len(list))
	for i, p := range list {
		legacy[i] = map[string]string{"id": p.Name, "type": p.Type.String()}
	}
	c.Response().Header().Set(echo.HeaderContentType, mediaSchema)
	return c.JSON(http.StatusOK, map[string]any{
		"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": ogcURL(c, path, nil),
		"type": "object", "title": collectionID(q), "properties": props, "additionalProperties": false,
		"queryables": legacy,
	})
}

func jsonSchemaOf(p gridmap.Queryable) map[string]any {
	s := map[string]any{"title": p.Title}
	switch p.Type {
	case cql2.Number:
		s["type"] = "number"
	case cql2.Integer:
		s["type"] = "integer"
	case cql2.Boolean:
		s["type"] = "boolean"
	case cql2.Timestamp:
		s["type"], s["format"] = "string", "date-time"
	case cql2.Date:
		s["type"], s["format"] = "string", "date"
	case cql2.Geometry:
		s["format"] = "geometry-any"
		s["$ref"] = "https://geojson.org/schema/Geometry.json"
	default:
		s["type"] = "string"
	}
	return s
}
