// Package gridmap holds the domain of grid governance: layers of nested grids,
// their versions, and the interfaces the storage and service packages implement.
// It imports nothing else of the project.
package gridmap

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Layer kinds.
const (
	KindComprehensive = "comprehensive" // 综合网格: the one grid system every report is owned in
	KindDepartmental  = "departmental"  // a department's own grid system (police beats, ...)
)

// Tiers: the level at which the owners of a report coordinate.
const (
	TierGrid     = "grid"
	TierStreet   = "street"
	TierDistrict = "district"
	TierCity     = "city"
)

// DefaultToleranceM is the distance from a boundary within which a
// neighbouring grid becomes a co-owner, when a layer does not say.
const DefaultToleranceM = 30

// DefaultSnapM is the distance within which a written vertex snaps onto a
// neighbour's boundary, when a layer does not say.
const DefaultSnapM = 0.5

// Layer is one grid system: an ordered list of levels, coarsest first, and the
// grids at those levels. Counts and DataVersion are read-only.
type Layer struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Kind        string            `json:"kind"`
	Levels      []string          `json:"levels"`
	CodePattern string            `json:"code_pattern,omitempty"`
	ToleranceM  float64           `json:"tolerance_m"`
	SnapM       float64           `json:"snap_m"`
	Tiers       map[string]string `json:"tiers"`
	// Zooms says from which to which map zoom each level is drawn (vector
	// tiles): coarse levels from far out, micro-grids only close up.
	Zooms       map[string]ZoomRange `json:"zooms"`
	Counts      map[string]int       `json:"counts"`
	DataVersion int64                `json:"data_version"`
	// HasDraft is whether the layer has a draft (GET .../draft) waiting to
	// be published. Read-only.
	HasDraft  bool      `json:"draft"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

var layerIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
var levelPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// Normalize fills defaults (name, kind, tolerance, tiers) and validates the
// definition. Returns EINVALID saying what to fix.
func (l *Layer) Normalize() error {
	if !layerIDPattern.MatchString(l.ID) {
		return Errorf(EINVALID, "layer id %q must be 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit", l.ID)
	}
	if ReportTileset(l.ID) {
		return Errorf(EINVALID, "layer id %q is the name of a tileset of reports (/tiles/%s/...); choose another", l.ID, l.ID)
	}
	if l.Name == "" {
		l.Name = l.ID
	}
	if l.Kind == "" {
		l.Kind = KindComprehensive
	}
	if l.Kind != KindComprehensive && l.Kind != KindDepartmental {
		return Errorf(EINVALID, "layer kind %q must be %q or %q", l.Kind, KindComprehensive, KindDepartmental)
	}
	if len(l.Levels) == 0 {
		return Errorf(EINVALID, "layer %s needs at least one level, coarsest first (for example [\"district\",\"street\",\"community\",\"grid\"])", l.ID)
	}
	for i, lv := range l.Levels {
		if !levelPattern.MatchString(lv) {
			return Errorf(EINVALID, "level %q must be 1-32 lowercase letters, digits or '_', starting with a letter", lv)
		}
		if slices.Index(l.Levels, lv) != i {
			return Errorf(EINVALID, "level %q is listed twice", lv)
		}
	}
	if l.CodePattern != "" {
		if _, err := CompileCodePattern(l.CodePattern); err != nil {
			return err
		}
	}
	if l.ToleranceM == 0 {
		l.ToleranceM = DefaultToleranceM
	}
	if l.ToleranceM < 0 || l.ToleranceM > 10000 {
		return Errorf(EINVALID, "tolerance_m %g must be between 0 and 10000 metres", l.ToleranceM)
	}
	if l.SnapM == 0 {
		l.SnapM = DefaultSnapM
	}
	if l.SnapM < 0 || l.SnapM > 100 {
		return Errorf(EINVALID, "snap_m %g must be between 0 and 100 metres", l.SnapM)
	}
	tiers := DefaultTiers(l.Levels)
	for lv, t := range l.Tiers {
		if !slices.Contains(l.Levels, lv) {
			return Errorf(EINVALID, "tiers names level %q, which is not one of the layer's levels %v", lv, l.Levels)
		}
		if t != TierGrid && t != TierStreet && t != TierDistrict {
			return Errorf(EINVALID, "tier %q for level %q must be grid, street or district", t, lv)
		}
		tiers[lv] = t
	}
	l.Tiers = tiers
	zooms := DefaultZooms(l.Levels)
	for lv, z := range l.Zooms {
		if !slices.Contains(l.Levels, lv) {
			return Errorf(EINVALID, "zooms names level %q, which is not one of the layer's levels %v", lv, l.Levels)
		}
		if z[0] < 0 || z[1] > MaxZoom || z[0] > z[1] {
			return Errorf(EINVALID, "zooms for level %q must be [min, max] with 0 <= min <= max <= %d, got [%d, %d]", lv, MaxZoom, z[0], z[1])
		}
		zooms[lv] = z
	}
	l.Zooms = zooms
	return nil
}

// MaxZoom is the deepest web map zoom gridmap serves tiles for.
const MaxZoom = 22

// ZoomRange is [min, max] map zoom, both drawn.
type ZoomRange [2]int

// Has reports whether zoom z is in the range.
func (r ZoomRange) Has(z int) bool { return z >= r[0] && z <= r[1] }

// DefaultZooms gives each level the zoom it starts at (and draws it up to
// MaxZoom, so a parent stays visible as an outline around its children):
// district 0, street 9, community 11, grid 13, microgrid 15, and any other
// name by position on the same steps.
func DefaultZooms(levels []string) map[string]ZoomRange {
	named := map[string]int{"district": 0, "street": 9, "community": 11, "grid": 13, "microgrid": 15}
	steps := []int{0, 9, 11, 13, 15, 17}
	zooms := make(map[string]ZoomRange, len(levels))
	for i, lv := range levels {
		z, ok := named[lv]
		if !ok {
			z = steps[min(i, len(steps)-1)]
		}
		zooms[lv] = ZoomRange{z, MaxZoom}
	}
	return zooms
}

// LevelsAt returns the levels drawn at zoom z, coarsest first.
func (l *Layer) LevelsAt(z int) []string {
	var out []string
	for _, lv := range l.Levels {
		if l.Zooms[lv].Has(z) {
			out = append(out, lv)
		}
	}
	return out
}

// DefaultTiers maps levels to tiers: levels named district, street and grid
// map to themselves, community to street, microgrid to grid, and any other
// name by position (coarsest district, next street, the rest grid).
func DefaultTiers(levels []string) map[string]string {
	named := map[string]string{
		"district": TierDistrict, "street": TierStreet, "community": TierStreet,
		"grid": TierGrid, "microgrid": TierGrid,
	}
	tiers := make(map[string]string, len(levels))
	for i, lv := range levels {
		switch t, ok := named[lv]; {
		case ok:
			tiers[lv] = t
		case i == 0:
			tiers[lv] = TierDistrict
		case i == 1:
			tiers[lv] = TierStreet
		default:
			tiers[lv] = TierGrid
		}
	}
	return tiers
}

// LevelIndex returns the position of level in the layer, coarsest 0, or -1.
func (l *Layer) LevelIndex(level string) int { return slices.Index(l.Levels, level) }

// CompileCodePattern compiles a layer's code pattern, anchored at both ends.
// Returns EINVALID for a pattern that does not compile.
func CompileCodePattern(p string) (*regexp.Regexp, error) {
	anchored := p
	if !strings.HasPrefix(anchored, "^") {
		anchored = "^(?:" + anchored + ")"
	}
	if !strings.HasSuffix(anchored, "$") {
		anchored += "$"
	}
	re, err := regexp.Compile(anchored)
	if err != nil {
		return nil, Errorf(EINVALID, "code_pattern %q is not a valid regular expression: %v", p, err)
	}
	return re, nil
}

// LayerService reads and defines layers.
type LayerService interface {
	// Layers lists every layer with its counts, ordered by id.
	Layers(ctx context.Context) ([]*Layer, error)
	// Layer returns one layer. Returns ENOTFOUND.
	Layer(ctx context.Context, id string) (*Layer, error)
	// PutLayer creates a layer or replaces its definition; levels that still
	// have grids must stay, in the same order. Returns EINVALID, ECONFLICT.
	PutLayer(ctx context.Context, l *Layer) (created bool, err error)
}

// TierOfLevel is the tier of one of the layer's levels: as Tiers says, or
// by DefaultTiers for a layer stored without them.
func (l *Layer) TierOfLevel(level string) string {
	if t, ok := l.Tiers[level]; ok {
		return t
	}
	return DefaultTiers(l.Levels)[level]
}

// FinestLevelOfTier is the finest level whose tier is tier, "" when none
// is.
func (l *Layer) FinestLevelOfTier(tier string) string {
	for i := len(l.Levels) - 1; i >= 0; i-- {
		if l.TierOfLevel(l.Levels[i]) == tier {
			return l.Levels[i]
		}
	}
	return ""
}
