package postgres

import (
	"context"
	"time"

	"github.com/gridmap/gridmap"
)

// MeasureCoverageNow measures the coverage of [from, to) of every grid of
// layer's level as a coverage asked now would, keeping nothing.
func (s *PatrolStore) MeasureCoverageNow(ctx context.Context, layer, level string, from, to time.Time) ([]gridmap.CoverageRow, error) {
	grids, err := s.measureCoverage(ctx, layer, level, from, to, nil, nil)
	rows := make([]gridmap.CoverageRow, len(grids))
	for i, g := range grids {
		rows[i] = g.CoverageRow
	}
	return rows, err
}

// TakeLease is takeLease.
var TakeLease = takeLease
