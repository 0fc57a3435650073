package postgres

import (
	"context"
	"time"

	"github.com/gridmap/gridmap"
)

// StatsFromFacts computes the indicators from the facts alone, never the
// daily sums: what the sums must agree with.
func (s *StatsStore) StatsFromFacts(ctx context.Context, q gridmap.StatsQuery, now time.Time) (*gridmap.Stats, error) {
	return s.statsAt(ctx, q, now, false)
}
