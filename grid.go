package gridmap

import (
	"context"
	"time"

	"github.com/paulmach/orb"
)

// Grid is one version of one grid: a polygon with a code, a level in its
// layer and a parent one level up. A grid's current version has no ValidTo.
type Grid struct {
	Layer      string
	Code       string
	Name       string
	Level      string
	Parent     string // "" for a grid at the layer's coarsest level
	Version    int
	ValidFrom  time.Time
	ValidTo    *time.Time
	Author     string
	Reason     string
	Attributes map[string]any
	Geometry   orb.MultiPolygon
	People     []Person // people responsible; filled when reading one grid
}

// Person roles.
const (
	RoleGridLeader = "grid_leader" // 网格长
	RoleGridWorker = "grid_worker" // 网格员
	RoleLiaison    = "liaison"     // 微网格联络员
	RolePolice     = "police"      // 社区民警
)

// Person is someone responsible for a grid. People belong to the grid's code,
// not to one version of its boundary.
type Person struct {
	Role       string `json:"role"`
	Name       string `json:"name"`
	Phone      string `json:"phone,omitempty"`
	Department string `json:"department,omitempty"`
}

// GridFilter selects current grids of one layer. Cursor is the last code of
// the previous page; results are ordered by code.
type GridFilter struct {
	Layer  string
	BBox   *orb.Bound
	Level  string
	Parent string
	Limit  int
	Cursor string
}

// GridService reads grids.
type GridService interface {
	// Grid returns the current version of a grid with its people.
	// Returns ENOTFOUND for an unknown layer or code.
	Grid(ctx context.Context, layer, code string) (*Grid, error)
	// FindGrids returns a page of current grids and the cursor of the next
	// page ("" when there is none). Returns ENOTFOUND for an unknown layer.
	FindGrids(ctx context.Context, f GridFilter) (grids []*Grid, next string, err error)
	// Below returns the codes of the current grids below grid code (its
	// children, theirs, and so on). Returns ENOTFOUND for an unknown layer
	// or code.
	Below(ctx context.Context, layer, code string) ([]string, error)
	// SetPeople replaces the people responsible for a grid.
	// Returns ENOTFOUND for an unknown grid, EINVALID for a person without role or name.
	SetPeople(ctx context.Context, layer, code string, people []Person) error
}

// Feature is one incoming grid as read from a file or request, before checks.
type Feature struct {
	Index      int // position in its input, 0-based
	Code       string
	Name       string
	Level      string
	Parent     string
	Attributes map[string]any
	Geometry   orb.Geometry
	People     []Person
	// DecodeError says why the reader could not decode this feature; such a
	// feature is always rejected.
	DecodeError string
}

// FeatureSource yields features one at a time; Next returns io.EOF after the
// last one. Errors other than io.EOF stop the import.
type FeatureSource interface {
	Next() (*Feature, error)
}

// ImportOptions say how an import treats bad features.
type ImportOptions struct {
	// Levels, when set, define the layer in the same transaction: it is
	// created with these levels (and Kind) if it does not exist, and its
	// levels are replaced if they differ.
	Levels []string
	Kind   string

	SkipInvalid bool // import the good features and report the bad ones
	MakeValid   bool // repair invalid geometry and report the repair
	// Draft loads into the layer's draft (started from the published grids
	// when there is none): overlaps, gaps and spills outside a parent are
	// kept and listed instead of refusing the import, and geometry is
	// repaired as with MakeValid.
	Draft  bool
	Author string
	Reason string
	// Progress, if set, is called now and then with the number of features read.
	Progress func(read int)
}

// ImportResult says what an import did. Rejected lists every feature that was
// not imported and why; Repaired every geometry that was repaired.
type ImportResult struct {
	Layer     string    `json:"layer"`
	Read      int       `json:"read"`
	Created   int       `json:"created"`
	Replaced  int       `json:"replaced"`
	Unchanged int       `json:"unchanged"`
	Rejected  []Problem `json:"rejected"`
	Repaired  []Problem `json:"repaired"`
	// DataVersion is the layer's data version after the import.
	DataVersion int64 `json:"data_version"`
	// Rerouted counts the open reports the new boundaries gave to another grid.
	Rerouted int `json:"rerouted"`
	// Draft is true for an import into the draft; Problems then lists the
	// draft's overlaps, spills and gaps (see DraftSummary).
	Draft    bool      `json:"draft,omitempty"`
	Problems []Problem `json:"problems,omitempty"`
}

// Importer loads grids into a layer.
type Importer interface {
	// Import checks every feature and writes the accepted ones in one
	// transaction: a code already current in the layer gets a new version
	// unless nothing changed. Unless opts.SkipInvalid, any rejected feature
	// means nothing is written and the error is EUNPROCESSABLE with every
	// rejected feature in its details. Returns ENOTFOUND for an unknown layer
	// when opts.Levels is empty, EINVALID or ECONFLICT for levels that cannot be.
	Import(ctx context.Context, layer string, src FeatureSource, opts ImportOptions) (*ImportResult, error)
}
