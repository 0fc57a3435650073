package postgres

import (
	"context"

	"github.com/gridmap/gridmap/tiles"
	"github.com/jackc/pgx/v5"
)

// TileSQL names the hot tile statements, for plan checks.
var TileSQL = map[string]string{
	"raw grids": rawGridTileSQL, "band grids": bandGridTileSQL,
	"report clusters": clusterReportTileSQL, "single reports": singleReportTileSQL,
	"hotspots": hotspotTileSQL,
}

// RenderUngeneralised renders a layer tile from the grids' own geometry at
// any zoom: what the tile would be without generalisation.
func (s *TileStore) RenderUngeneralised(ctx context.Context, layer string, z, x, y int, allLevels bool) ([]byte, error) {
	l, err := s.layer(ctx, layer)
	if err != nil {
		return nil, err
	}
	levels := l.LevelsAt(z)
	if allLevels {
		levels = l.Levels
	}
	var mvt []byte
	var version, layerVersion int64
	err = s.db.Pool.QueryRow(ctx, rawGridTileSQL, l.ID, z, x, y, levels, l.Levels, float64(tiles.Buffer)/tiles.Extent).Scan(&mvt, &version, &layerVersion)
	return mvt, err
}

// RefreshShapes brings the tile shapes of layer up to date as an edit of
// the grids codes within area (a lon/lat box) does, and returns the box of
// the shapes that changed.
func RefreshShapes(ctx context.Context, db *DB, layer string, codes []string, area []float64) ([]float64, error) {
	var changed []float64
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) (err error) {
		changed, err = refreshShapes(ctx, tx, layer, codes, area)
		return err
	})
	return changed, err
}

// ShapeChunkPoints is about how many vertices a whole layer's tile shapes
// are made of at once.
const ShapeChunkPoints = shapeChunkPoints

// SetCoverageParallelParents sets how many parents a coverage needs before
// PostgreSQL may share it out between parallel workers, until the
// returned function is called.
func SetCoverageParallelParents(n int) (restore func()) {
	was := coverageParallelParents
	coverageParallelParents = n
	return func() { coverageParallelParents = was }
}

// SearchSQL names the search statements, for plan checks.
var SearchSQL = map[string]string{"grids": searchGridsSQL, "reports": searchReportsSQL}

// CoverageSQL names the coverage statements by the table they read, for
// plan checks.
var CoverageSQL = coverageSQL

// StoredShapesSQL names the reads of a chunk's stored shapes and labels,
// for plan checks.
var StoredShapesSQL = map[string]string{"shapes": storedShapesSQL, "labels": storedLabelsSQL, "drop": dropShapesSQL}

// DropClosedSQL names the deletes of shapes and labels of closed versions,
// for plan checks.
var DropClosedSQL = map[string]string{"shapes": dropClosedShapesSQL, "labels": dropClosedLabelsSQL}

// SetBeforeStaging makes f run before each COPY of an import's checked
// features, until the returned function is called.
func SetBeforeStaging(f func()) (restore func()) {
	beforeStaging = f
	return func() { beforeStaging = nil }
}

// ImportBatch is how many features an import stages in one COPY.
const ImportBatch = importBatch

// ReportTable names the partition of reports holding report id.
var ReportTable = reportTable

// ReportMonthsFirst is the first id of any month.
const ReportMonthsFirst = reportMonthsFirst

// AnalyzeReports analyzes reports as FollowMonths does once a day.
func AnalyzeReports(ctx context.Context, s *ReportStore) error { return s.analyzeReports(ctx) }

// WALInsertedSQL reads the primary's WAL position a load of the lookup
// index waits for the replica to replay.
const WALInsertedSQL = walInsertedSQL
