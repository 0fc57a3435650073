package gridmap

import (
	"context"
	"math"
	"time"
)

// Why a grid other than the owner shares a point.
const (
	ReasonOnBoundary      = "on_boundary"      // the point lies on an edge the grids share
	ReasonWithinTolerance = "within_tolerance" // the grid is within the layer's (or the request's) tolerance
	ReasonWithinAccuracy  = "within_accuracy"  // the grid is within the point's stated accuracy
	ReasonCrossed         = "crossed"          // a line or polygon location crosses into the grid
)

// Coordinate reference systems a location may arrive in.
const (
	CRSWGS84    = "wgs84"    // GPS, EPSG:4326
	CRSCGCS2000 = "cgcs2000" // China's official datum, EPSG:4490; treated as WGS84 (they differ by centimetres)
	CRSGCJ02    = "gcj02"    // AMap, Tencent, WeChat: WGS84 shifted by the GCJ-02 obfuscation inside mainland China
	CRSBD09     = "bd09"     // Baidu: GCJ-02 shifted again
)

// MaxLookupPoints is the most points one batch lookup may ask for.
const MaxLookupPoints = 100_000

// LookupQuery asks which grids cover a point (WGS84 longitude and latitude).
type LookupQuery struct {
	Lon, Lat float64
	// Layer limits the answer to one layer; "" answers for every layer.
	Layer string
	// ToleranceM overrides every layer's co-owner tolerance when set.
	ToleranceM *float64
	// AccuracyM is the point's positioning uncertainty; grids within it are
	// co-owners too. 0 when unknown.
	AccuracyM float64
	// At answers from the boundaries as they were at that time; nil: now.
	At *time.Time
}

// GridRef names one grid (one version of it) in an answer.
type GridRef struct {
	Code    string `json:"code"`
	Name    string `json:"name"`
	Level   string `json:"level"`
	Version int    `json:"version"`
	// VersionID identifies the stored boundary version, for records that
	// must say which boundaries they were computed on.
	VersionID int64 `json:"-"`
}

// CoOwner is a grid that shares a point with its owner.
type CoOwner struct {
	GridRef
	DistanceM float64 `json:"distance_m"`
	Reason    string  `json:"reason"`
}

// NearestGrid is the closest grid to a point no grid of the layer covers.
type NearestGrid struct {
	GridRef
	DistanceM float64 `json:"distance_m"`
}

// LayerAnswer is the answer for one layer.
type LayerAnswer struct {
	Layer string
	// Chain runs from the top-level grid down to the finest grid covering
	// the point; empty when none does.
	Chain []GridRef
	// People are responsible for the finest grid of the chain. Shared with
	// the index: read, never change.
	People   []Person
	CoOwners []CoOwner
	Nearest  *NearestGrid
	// DataVersion is the layer's data version the answer was computed on
	// (0 for answers from history).
	DataVersion int64
}

// LookupAnswer is the answer for one point, one LayerAnswer per layer in
// layer id order.
type LookupAnswer struct {
	Lon, Lat float64
	Layers   []LayerAnswer
	// nearest holds the Nearest values so a reused answer allocates nothing.
	nearest []NearestGrid
}

// ForgetPeople leaves the people responsible out of the answer: their
// names and phone numbers are not for anonymous callers.
func (a *LookupAnswer) ForgetPeople() {
	for i := range a.Layers {
		a.Layers[i].People = nil
	}
}

// Reset empties the answer for reuse, keeping its storage.
func (a *LookupAnswer) Reset() {
	for i := range a.Layers {
		l := &a.Layers[i]
		l.Chain, l.CoOwners, l.People, l.Nearest = l.Chain[:0], l.CoOwners[:0], nil, nil
	}
	a.Layers = a.Layers[:0]
	a.nearest = a.nearest[:0]
}

// AddLayer appends an empty layer answer, reusing storage from earlier use.
func (a *LookupAnswer) AddLayer(layer string, dataVersion int64) *LayerAnswer {
	if len(a.Layers) < cap(a.Layers) {
		a.Layers = a.Layers[:len(a.Layers)+1]
	} else {
		a.Layers = append(a.Layers, LayerAnswer{})
	}
	l := &a.Layers[len(a.Layers)-1]
	l.Layer, l.DataVersion = layer, dataVersion
	l.Chain, l.CoOwners, l.People, l.Nearest = l.Chain[:0], l.CoOwners[:0], nil, nil
	return l
}

// SetNearest records the nearest grid of a layer answer without allocating
// once the answer has been used for as many layers before.
func (a *LookupAnswer) SetNearest(l *LayerAnswer, n NearestGrid) {
	if cap(a.nearest) < len(a.Layers) {
		// Grow once to hold one per layer: earlier pointers stay valid
		// only if the backing array never moves after that.
		grown := make([]NearestGrid, len(a.nearest), len(a.Layers)+4)
		copy(grown, a.nearest)
		for i := range a.Layers {
			if a.Layers[i].Nearest != nil {
				for j := range a.nearest {
					if a.Layers[i].Nearest == &a.nearest[j] {
						a.Layers[i].Nearest = &grown[j]
					}
				}
			}
		}
		a.nearest = grown
	}
	a.nearest = append(a.nearest, n)
	l.Nearest = &a.nearest[len(a.nearest)-1]
}

// Finest returns the finest grid of a layer answer's chain, or nil.
func (l *LayerAnswer) Finest() *GridRef {
	if len(l.Chain) == 0 {
		return nil
	}
	return &l.Chain[len(l.Chain)-1]
}

// IndexStats describes one layer of an in-memory lookup index.
type IndexStats struct {
	Layer       string
	DataVersion int64
	Grids       int
	Pieces      int
	Vertices    int
	// NearBytes is what the index keeps for points outside every grid
	// (the cells of its lattice that lookups have reached).
	NearBytes int64
	// HugePageBytes is how many bytes of the arrays lookups read the
	// layer's build moved into huge pages (see geo's hugePagesFrom);
	// HugePagesShort and HugePagesRefused count the huge pages it could
	// not move, for want of memory and because the kernel would not.
	HugePageBytes                    int64
	HugePagesShort, HugePagesRefused int
	// Rebuilds counts the rebuilds of the layer since the process started,
	// LastRebuild is how long the latest took.
	Rebuilds    int64
	LastRebuild time.Duration
	// FromReplica tells whether the latest rebuild read the layer from
	// the streaming replica (--replica-url) rather than the primary.
	FromReplica bool
}

// Locator answers point lookups.
type Locator interface {
	// Lookup fills dst (reset first) with the answer for q. Returns
	// ENOTFOUND for an unknown layer, EINVALID for an out-of-range point or
	// tolerance, EUNAVAILABLE while the index is not loaded yet.
	Lookup(ctx context.Context, q LookupQuery, dst *LookupAnswer) error
}

// CheckLonLat returns EINVALID saying what is wrong with a coordinate pair:
// each must be a finite number, longitude within ±180 and latitude ±90.
func CheckLonLat(lon, lat float64) error {
	switch {
	case math.IsNaN(lon) || math.IsInf(lon, 0) || lon < -180 || lon > 180:
		return Errorf(EINVALID, "lon %v must be a number between -180 and 180 (longitude first, then latitude)", lon)
	case math.IsNaN(lat) || math.IsInf(lat, 0) || lat < -90 || lat > 90:
		return Errorf(EINVALID, "lat %v must be a number between -90 and 90 (longitude first, then latitude)", lat)
	}
	return nil
}
