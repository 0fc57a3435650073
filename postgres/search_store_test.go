package postgres_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// TestSearchUsesItsIndexes: a name or code search over the NYC tracts reads
// the trigram indexes, not every grid version, and finds the tract.
func TestSearchUsesItsIndexes(t *testing.T) {
	tractLayer(t)
	db := pgtest.Shared(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `ANALYZE grid_versions`); err != nil {
		t.Fatal(err)
	}
	// With the patterns known (a custom plan, which PostgreSQL keeps for a
	// prepared statement whenever the generic one would cost more), the
	// trigram indexes answer; on a table this small a generic plan may
	// rightly read it all.
	sql := strings.NewReplacer("$1", "'1009800'", "$2", "''", "$3", "'1009800%'", "$4", "20", "$5", "'%1009800%'").Replace(postgres.SearchSQL["grids"])
	var plan strings.Builder
	rows, err := db.Pool.Query(ctx, "EXPLAIN "+sql)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var line string
		rows.Scan(&line)
		plan.WriteString(line + "\n")
	}
	if !regexp.MustCompile(`Bitmap Index Scan on grid_versions_current_(name|code)_trgm`).MatchString(plan.String()) ||
		strings.Contains(plan.String(), "Seq Scan on grid_versions") {
		t.Errorf("search plan:\n%s", plan.String())
	}
	res, err := postgres.NewSearchStore(db).Search(ctx, gridmapSearch("1009800"))
	if err != nil || len(res.Grids) == 0 || res.Grids[0].Code != "1009800" {
		t.Errorf("search for tract 1009800: %+v %v", res, err)
	}
}

func gridmapSearch(text string) gridmap.SearchQuery { return gridmap.SearchQuery{Text: text} }
