package postgres

import (
	"context"
	"time"

	"github.com/gridmap/gridmap"
)

// StatsFromFacts computes the indicators from the facts alone, never the
// daily sums: what the sums must agree with.
func (s *StatsStore) StatsFromFacts(ctx context.Context, q gridmap.StatsQuery, now time.Time) (*gridmap.Stats, error) {
	return s.statsAt(ctx, q, now, false, nil)
}

// StatsAtFromSums is StatsAt, saying also whether it read the daily sums
// for the window's whole days.
func (s *StatsStore) StatsAtFromSums(ctx context.Context, q gridmap.StatsQuery, now time.Time) (*gridmap.Stats, bool, error) {
	var fromSums bool
	st, err := s.statsAt(ctx, q, now, true, &fromSums)
	return st, fromSums, err
}

// ReportCountsFrom is ReportCounts, from the daily sums where they
// serve when sums is true (else never), saying also whether it read them.
func (s *ReportStore) ReportCountsFrom(ctx context.Context, f gridmap.ReportFilter, sums bool) (*gridmap.ReportCounts, bool, error) {
	var fromSums bool
	c, err := s.reportCounts(ctx, f, sums, &fromSums)
	return c, fromSums, err
}

// FoldStatsIn is FoldStats moving the deltas of at most pages pages a
// transaction.
func (s *StatsStore) FoldStatsIn(ctx context.Context, pages int64) (int64, error) {
	return s.foldStats(ctx, pages)
}
