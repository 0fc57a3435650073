package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"

	"github.com/labstack/echo/v4"
)

// The HTML view of /ogc: plain pages a person can read in a browser and
// follow from link to link, the features of a page as a table.

type ogcItem struct {
	Text, Href string
}

func ogcList(texts []string) []ogcItem {
	items := make([]ogcItem, len(texts))
	for i, t := range texts {
		items[i] = ogcItem{Text: t}
	}
	return items
}

var ogcTemplate = template.Must(template.New("ogc").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · gridmap OGC API</title><link rel="stylesheet" href="/app.css"></head>
<body class="ogc-page"><main>
<nav><a href="/ogc?f=html">gridmap OGC API</a> · <a href="/ogc/collections?f=html">collections</a></nav>
<h1>{{.Title}}</h1>
{{with .Description}}<p>{{.}}</p>{{end}}
{{with .Items}}<ul>{{range .}}<li>{{if .Href}}<a href="{{.Href}}">{{.Text}}</a>{{else}}{{.Text}}{{end}}</li>{{end}}</ul>{{end}}
{{if .Features}}<p>{{.Matched}} features{{if .Rows}}; {{.First}}–{{.Last}} shown{{end}}.</p>
<table><thead><tr><th>id</th>{{range .Columns}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>{{range .Rows}}<tr><td>{{if .Href}}<a href="{{.Href}}">{{.ID}}</a>{{else}}{{.ID}}{{end}}</td>{{range .Cells}}<td>{{.}}</td>{{end}}</tr>{{end}}</tbody></table>{{end}}
<h2>Links</h2><ul>{{range .Links}}<li><a href="{{.Href}}">{{.Rel}}</a>{{with .Title}} — {{.}}{{end}}{{with .Type}} ({{.}}){{end}}</li>{{end}}</ul>
</main></body></html>
`))

type ogcPageData struct {
	Title, Description string
	Links              []ogcLink
	Items              []ogcItem
	Features           bool
	Columns            []string
	Rows               []ogcRow
	Matched            int64
	First, Last        int
}

type ogcRow struct {
	ID, Href string
	Cells    []string
}

func (s *Server) ogcPage(c echo.Context, title, description string, links []ogcLink, items []ogcItem) error {
	return s.renderOGC(c, &ogcPageData{Title: title, Description: description, Links: links, Items: items})
}

// ogcFeaturesPage shows features (GeoJSON) as a table of their properties;
// the geometry is left to the JSON.
// One feature (single) has no link of its own to follow.
func (s *Server) ogcFeaturesPage(c echo.Context, title, collection string, links []ogcLink, matched int64, offset int, features [][]byte, single bool) error {
	d := &ogcPageData{Title: title, Links: links, Features: true, Matched: matched, First: offset + 1, Last: offset + len(features)}
	seen := map[string]bool{}
	var decoded []map[string]any
	var ids []string
	for _, f := range features {
		var feature struct {
			ID         any            `json:"id"`
			Properties map[string]any `json:"properties"`
		}
		dec := json.NewDecoder(bytes.NewReader(f))
		dec.UseNumber() // ids and numbers as written, not 1e+06
		if err := dec.Decode(&feature); err != nil {
			return err
		}
		decoded = append(decoded, feature.Properties)
		ids = append(ids, fmt.Sprint(feature.ID))
		for k := range feature.Properties {
			if !seen[k] {
				seen[k] = true
				d.Columns = append(d.Columns, k)
			}
		}
	}
	slices.Sort(d.Columns)
	for i, props := range decoded {
		row := ogcRow{ID: ids[i]}
		if !single {
			row.Href = "/ogc/collections/" + url.PathEscape(collection) + "/items/" + url.PathEscape(ids[i]) + "?f=html"
		}
		for _, k := range d.Columns {
			v, ok := props[k]
			switch {
			case !ok || v == nil:
				row.Cells = append(row.Cells, "")
			case isScalar(v):
				row.Cells = append(row.Cells, fmt.Sprint(v))
			default:
				b, _ := json.Marshal(v)
				row.Cells = append(row.Cells, string(b))
			}
		}
		d.Rows = append(d.Rows, row)
	}
	return s.renderOGC(c, d)
}

func isScalar(v any) bool {
	switch v.(type) {
	case string, json.Number, bool:
		return true
	}
	return false
}

func (s *Server) renderOGC(c echo.Context, d *ogcPageData) error {
	var b bytes.Buffer
	if err := ogcTemplate.Execute(&b, d); err != nil {
		return err
	}
	return c.HTMLBlob(http.StatusOK, b.Bytes())
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
