package gridmap

import (
	"context"
	"time"

	"github.com/gridmap/gridmap/cql2"
	"github.com/paulmach/orb"
)

// Collections, as OGC API - Features serves them: every layer's grids, a
// layer's draft (for its editors) and the reports the caller may see.

// ReportsCollection is the id of the collection of reports. Layer ids have
// no dots, so it cannot name a layer; nor can a draft's id.
const ReportsCollection = "gridmap.reports"

// DraftCollectionSuffix ends the id of a layer's draft collection:
// "streets.draft".
const DraftCollectionSuffix = ".draft"

// MaxFeaturesPage is the most features one page of a collection holds.
const MaxFeaturesPage = 10000

// FeatureQuery selects a page of one collection's features.
type FeatureQuery struct {
	// Layer names a layer's grids, or its draft with Draft; both empty
	// with Reports: the reports.
	Layer   string
	Draft   bool
	Reports bool
	// Code selects one feature (a grid's code, a report's id).
	Code string
	// BBox keeps the features whose geometry intersects it.
	BBox *orb.Bound
	// At, for grids, is the instant the grids are read as of (boundary
	// history); zero is now. From and To, for reports, bound reported_at
	// (either may be zero: open).
	At       time.Time
	From, To time.Time
	// Level and Parent keep the grids of a level, or under a parent.
	Level, Parent string
	// Equal keeps the features whose queryable (key) equals the value, as
	// text.
	Equal map[string]string
	// Filter is a CQL2 filter over the collection's queryables.
	Filter cql2.Expr
	// Limit and Offset page through the features in id order.
	Limit, Offset int
}

// Queryable is a property a collection's features can be filtered on.
type Queryable struct {
	Name  string
	Title string
	Type  cql2.Type
}

// Extent is where and when a collection's features lie.
type Extent struct {
	BBox *orb.Bound
	// Start and End bound the features' times (grids: their versions'
	// validity; reports: when they were reported); zero when unknown or
	// open.
	Start, End time.Time
}

// FeatureService reads collections of features.
type FeatureService interface {
	// Features calls start with the number of features q matches (paging
	// aside), then each with every feature of the page as a GeoJSON Feature
	// (the bytes are reused after each returns), in id order, all from one
	// snapshot of the data. Reports are those within the caller's scope.
	// Returns ENOTFOUND for an unknown layer or a layer without a draft,
	// EINVALID for a filter on a property the collection does not have.
	Features(ctx context.Context, q *FeatureQuery, start func(matched int64) error, each func(feature []byte) error) error
	// Queryables lists the properties of q's collection (Layer, Draft,
	// Reports) that filters may use: the grids' own fields and the free
	// attributes their features carry, or the reports' fields.
	Queryables(ctx context.Context, q *FeatureQuery) ([]Queryable, error)
	// Extent is where and when q's collection lies.
	Extent(ctx context.Context, q *FeatureQuery) (*Extent, error)
}
