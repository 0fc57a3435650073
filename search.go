package gridmap

import "context"

// SearchQuery asks for grids and reports matching text: grid names by
// substring, grid codes by prefix, reports by id or external id.
type SearchQuery struct {
	Text  string
	Layer string // only grids of this layer; "" for every layer
	Limit int    // per kind; default 20, at most 100
}

// GridHit is a grid a search found, with its box to fly to.
type GridHit struct {
	Layer string     `json:"layer"`
	Code  string     `json:"code"`
	Name  string     `json:"name"`
	Level string     `json:"level"`
	BBox  [4]float64 `json:"bbox"` // minLon, minLat, maxLon, maxLat
}

// ReportHit is a report a search found.
type ReportHit struct {
	ID         int64      `json:"id"`
	ExternalID string     `json:"external_id"`
	Category   string     `json:"category"`
	Status     string     `json:"status"`
	Primary    string     `json:"primary,omitempty"`
	BBox       [4]float64 `json:"bbox"`
}

// SearchResult is what a search found, best matches first.
type SearchResult struct {
	Grids   []GridHit   `json:"grids"`
	Reports []ReportHit `json:"reports"`
}

// Searcher finds grids and reports by text. Reports are limited to the
// scope of the caller in ctx. Returns EINVALID for text shorter than one
// character or longer than 200.
type Searcher interface {
	Search(ctx context.Context, q SearchQuery) (*SearchResult, error)
}
