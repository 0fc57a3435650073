package gridmap

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Statuses lists every report status, in workflow order.
var Statuses = []string{StatusReported, StatusRegistered, StatusDispatched, StatusInProgress, StatusResolved,
	StatusVerified, StatusClosed, StatusRejected, StatusSuspended}

var categoryCode = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// ReportsTileset is the tileset of reports; every other tileset is a layer.
const ReportsTileset = "reports"

// HotspotsTileset is the tileset of report density: counts of reports in
// square bins of a fixed size on screen.
const HotspotsTileset = "hotspots"

// ReportTileset says whether a tileset draws reports (and so takes the
// report filters and the caller's scope) rather than a layer.
func ReportTileset(name string) bool { return name == ReportsTileset || name == HotspotsTileset }

// Tile layer names inside the MVT of a tileset.
const (
	TileLayerGrids   = "grids"
	TileLayerLabels  = "labels"
	TileLayerReports = "reports"
	// TileLayerHotspots holds one square polygon per bin with reports.
	TileLayerHotspots = "hotspots"
)

// TileQuery asks for one vector tile. The report filters apply to the
// tilesets of reports only (ReportTileset).
type TileQuery struct {
	Tileset  string
	Z, X, Y  int
	Status   string    // a status, "open" (not closed or rejected) or "done"
	Category string    // a category code; its subcategories are included
	Since    time.Time // reported at or after; zero for any time
	Until    time.Time // reported before; zero for any time
	// Scope limits the reports to a jurisdiction: the caller's, never
	// the client's choice.
	Scope *Scope
}

// Key names the tile with its filters and scope: tiles with the same key
// are the same tiles.
func (q TileQuery) Key() string {
	if q.Scope == nil {
		return q.Filter()
	}
	return q.Filter() + "\x00scope=" + q.Scope.Layer + "/" + q.Scope.Code
}

// Filter returns the report filters as a canonical query string ("" when
// there are none): tiles with the same filter are the same tiles.
func (q TileQuery) Filter() string {
	var parts []string
	if q.Category != "" {
		parts = append(parts, "category="+q.Category)
	}
	if !q.Since.IsZero() {
		parts = append(parts, "since="+q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		parts = append(parts, "until="+q.Until.UTC().Format(time.RFC3339Nano))
	}
	if q.Status != "" {
		parts = append(parts, "status="+q.Status)
	}
	return strings.Join(parts, "&")
}

// CheckStatusFilter validates a status filter as clients send it: "" for
// any, a status, "open" or "done". Returns EINVALID saying what to fix.
func CheckStatusFilter(f string) error {
	if f != "" && f != "open" && f != "done" && !slices.Contains(Statuses, f) {
		return Errorf(EINVALID, "status %q must be open, done or one of %s", f, strings.Join(Statuses, ", "))
	}
	return nil
}

// CheckReportFilter validates the report filters of a tile query. Returns
// EINVALID saying what to fix.
func (q TileQuery) CheckReportFilter() error {
	if err := CheckStatusFilter(q.Status); err != nil {
		return err
	}
	if q.Category != "" && !categoryCode.MatchString(q.Category) {
		return Errorf(EINVALID, "category %q must be a category code (letters, digits, '.', '_' or '-')", q.Category)
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		return Errorf(EINVALID, "until (%s) must come after since (%s)", q.Until.Format(time.RFC3339), q.Since.Format(time.RFC3339))
	}
	return nil
}

// RenderedTile is an encoded vector tile (Mapbox Vector Tile, uncompressed)
// and the version of what it shows: tiles of the same tileset, place and
// filter with the same Version are the same.
type RenderedTile struct {
	MVT     []byte
	Version string
}

// Tileset describes a tileset for TileJSON.
type Tileset struct {
	Name        string
	Description string
	// Bounds is the lon/lat box of the data (minLon, minLat, maxLon, maxLat).
	Bounds           [4]float64
	MinZoom, MaxZoom int
	VectorLayers     []VectorLayer
}

// VectorLayer describes one layer inside a tileset's tiles.
type VectorLayer struct {
	ID          string            `json:"id"`
	Description string            `json:"description,omitempty"`
	MinZoom     int               `json:"minzoom"`
	MaxZoom     int               `json:"maxzoom"`
	Fields      map[string]string `json:"fields"`
}

// TileSource renders vector tiles.
type TileSource interface {
	// Tileset describes a tileset: a layer id, ReportsTileset or
	// HotspotsTileset. Returns
	// ENOTFOUND.
	Tileset(ctx context.Context, name string) (*Tileset, error)
	// RenderTile encodes one tile with every MVT layer of its tileset, in
	// one database round trip. Returns ENOTFOUND for an unknown tileset.
	RenderTile(ctx context.Context, q TileQuery) (*RenderedTile, error)
}
