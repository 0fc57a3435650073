package gridmap

import (
	"context"
	"fmt"
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

// Check refuses a changeset too large or too malformed to be worth a
// transaction: more than MaxChangesetOperations operations, an operation
// naming more than MaxCodesPerOperation codes or a geometry past the limits
// of CheckGeometrySize (ETOOLARGE, saying which), a code that is not text of
// at most MaxCodeLength bytes, or a split line with a coordinate out of
// range (EINVALID). What needs the layer (codes that exist, geometry that
// fits) is left to ApplyChangeset; call Check before it.
func (cs *Changeset) Check() error {
	if n := len(cs.Operations); n > MaxChangesetOperations {
		return Errorf(ETOOLARGE, "a changeset takes at most %s operations; this one has %s: split it, or import the grids",
			thousands(MaxChangesetOperations), thousands(n))
	}
	for i := range cs.Operations {
		if err := cs.Operations[i].check(); err != nil {
			return &Error{Code: ErrorCode(err), Message: fmt.Sprintf("operation %d: %s", i, ErrorMessage(err))}
		}
	}
	return nil
}

// check is Changeset.Check for one operation.
func (op *Operation) check() error {
	for _, l := range []struct {
		name string
		n    int
	}{{"codes", len(op.Codes)}, {"new_codes", len(op.NewCodes)}, {"parts", len(op.Parts)}} {
		if l.n > MaxCodesPerOperation {
			return Errorf(ETOOLARGE, "%s has %s %s; at most %s codes or parts are accepted per operation",
				op.Op, thousands(l.n), l.name, thousands(MaxCodesPerOperation))
		}
	}
	featureCode := ""
	if op.Feature != nil {
		featureCode, _ = op.Feature.Properties["code"].(string)
	}
	for _, c := range []struct{ what, code string }{
		{"code", op.Code}, {"into", op.Into}, {"from", op.From}, {"to", op.To}, {"the feature's code", featureCode},
	} {
		if err := CheckCode(c.what, c.code); err != nil {
			return err
		}
	}
	for _, l := range []struct {
		name  string
		codes []string
	}{{"codes", op.Codes}, {"new_codes", op.NewCodes}} {
		for j, code := range l.codes {
			if err := CheckCode(fmt.Sprintf("%s[%d]", l.name, j), code); err != nil {
				return err
			}
		}
	}
	if op.Feature != nil {
		if err := CheckGeometrySize(op.Feature.Geometry); err != nil {
			return err
		}
	}
	for _, g := range append([]*geojson.Geometry{op.Line, op.Geometry, op.Area}, op.Parts...) {
		if g == nil {
			continue
		}
		if err := CheckGeometrySize(g.Geometry()); err != nil {
			return err
		}
	}
	if op.Line != nil {
		if err := CheckCoordinates(op.Line.Geometry()); err != nil {
			return Errorf(EINVALID, "line: %s", ErrorMessage(err))
		}
	}
	return nil
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
