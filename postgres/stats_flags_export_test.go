package postgres

import (
	"context"
	"time"

	"github.com/gridmap/gridmap"
)

// Surges are the surge flags alone of the grids of level before to, for
// the benchmark of the surge figure.
func (s *IndicatorStore) Surges(ctx context.Context, q gridmap.FlagsQuery, level string, to time.Time,
	rules gridmap.IndicatorRules) ([]gridmap.Flag, error) {
	return s.surges(ctx, q, level, to, rules)
}
