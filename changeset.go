package gridmap

import (
	"context"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
)

// Changeset operations.
const (
	OpPut      = "put"       // create or replace a grid (geometry, name, parent, attributes)
	OpDelete   = "delete"    // end a grid's validity; it stays in history
	OpSplit    = "split"     // cut a grid by a line into new codes
	OpMerge    = "merge"     // join grids into one code
	OpMoveEdge = "move_edge" // reshape a grid; its neighbours give or take the difference
	OpTransfer = "transfer"  // give an area of one grid to a neighbour
)

// Operation is one edit in a changeset. Which fields matter depends on Op.
type Operation struct {
	Op string `json:"op"`
	// put: the grid as a GeoJSON Feature with properties.code (and name,
	// level, parent, free attributes); a null geometry keeps the current one.
	Feature *geojson.Feature `json:"feature,omitempty"`
	// put, delete, split, move_edge: the grid.
	Code string `json:"code,omitempty"`
	// IfMatch is the version the editor last saw; a different current
	// version fails the whole changeset with EPRECONDITION.
	IfMatch *int `json:"if_match,omitempty"`
	// split: the cutting line and the codes of the parts, left of the line
	// (as drawn) first; or the parts themselves, one per new code, which
	// must cover the grid between them (each is clipped to it).
	Line     *geojson.Geometry   `json:"line,omitempty"`
	Parts    []*geojson.Geometry `json:"parts,omitempty"`
	NewCodes []string            `json:"new_codes,omitempty"`
	// merge: the grids to join and the code of the result (one of them, or new).
	Codes []string `json:"codes,omitempty"`
	Into  string   `json:"into,omitempty"`
	// move_edge: the new geometry of Code.
	Geometry *geojson.Geometry `json:"geometry,omitempty"`
	// transfer: the area From gives to To.
	From string            `json:"from,omitempty"`
	To   string            `json:"to,omitempty"`
	Area *geojson.Geometry `json:"area,omitempty"`
}

// Changeset is a list of edits applied together after one validation pass:
// all or nothing.
type Changeset struct {
	Reason     string      `json:"reason"`
	Author     string      `json:"author,omitempty"`
	DryRun     bool        `json:"dry_run"`
	Operations []Operation `json:"operations"`
}

// Impact says what a changeset changes.
type Impact struct {
	Grids       []string `json:"grids"`
	AreaMovedM2 float64  `json:"area_moved_m2"`
	// Reports are the ids of open reports whose owner the change moves;
	// Reroutes says from which grid to which.
	Reports  []string  `json:"reports"`
	Reroutes []Reroute `json:"reroutes"`
}

// Reroute is an open report a boundary change gives to another grid.
type Reroute struct {
	Report     string `json:"report"`
	ExternalID string `json:"external_id"`
	From       string `json:"from"`
	To         string `json:"to"`
}

// ChangesetResult is the outcome of a changeset (or of its dry run).
type ChangesetResult struct {
	Applied     bool           `json:"applied"`
	Versions    map[string]int `json:"versions"`
	Problems    []Problem      `json:"problems"`
	Impact      Impact         `json:"impact"`
	DataVersion int64          `json:"data_version"`
	// Created lists the codes the changeset gave a grid that had none (a
	// new code, or one deleted before), by code.
	Created []string `json:"created,omitempty"`
}

// Coverage lists what breaks "children tile their parent": gaps inside a
// parent, overlaps between siblings, parts of children outside their parent.
type Coverage struct {
	Gaps     []CoverageItem `json:"gaps"`
	Overlaps []CoverageItem `json:"overlaps"`
	Outside  []CoverageItem `json:"outside"`
}

// CoverageItem is one gap, overlap or outside part.
type CoverageItem struct {
	Geometry orb.Geometry
	AreaM2   float64
	Codes    []string
}

// Change is what the database announces after each committed change to a
// layer (its grids, their people or its definition), for caches and indexes
// to follow. A change without BBox may concern the whole layer.
type Change struct {
	Layer string `json:"layer"`
	// Kind is what changed: ChangeBoundaries (grids: geometry, names,
	// parents), ChangePeople, or ChangeLayer (the definition).
	Kind        string    `json:"kind"`
	DataVersion int64     `json:"data_version"`
	BBox        []float64 `json:"bbox"` // minLon, minLat, maxLon, maxLat of old and new geometry
	Codes       []string  `json:"codes"`
}

// Change kinds.
const (
	ChangeBoundaries = "boundaries"
	ChangePeople     = "people"
	ChangeLayer      = "layer"
)

// ToleranceAreaM2 is how much overlap, gap or spill outside a parent is
// tolerated as drawing noise before an edit is refused or a coverage report
// lists it. Real boundary files carry such noise: the NYC tracts, which tile
// their boroughs, leave slivers of up to 2.8 m2 along borough lines.
const ToleranceAreaM2 = 5.0

// BoundaryEditor writes grids.
type BoundaryEditor interface {
	// ApplyChangeset validates the operations against the layer as it will
	// be after all of them and writes them in one transaction (unless
	// DryRun). Returns EPRECONDITION for a stale if_match, EUNPROCESSABLE
	// with the problems when validation fails, ENOTFOUND for an unknown layer
	// or grid, EINVALID for a malformed operation.
	ApplyChangeset(ctx context.Context, layer string, cs *Changeset) (*ChangesetResult, error)
	// GridAt returns the version of a grid valid at t. Returns ENOTFOUND.
	GridAt(ctx context.Context, layer, code string, t time.Time) (*Grid, error)
	// History lists every version of a grid, oldest first. Returns ENOTFOUND.
	History(ctx context.Context, layer, code string) ([]*Grid, error)
	// CoverageOf reports gaps, overlaps and outside parts under parent, or
	// under every parent of the layer when parent is "". Returns ENOTFOUND.
	CoverageOf(ctx context.Context, layer, parent string) (*Coverage, error)
}
