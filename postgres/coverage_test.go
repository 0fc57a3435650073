package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

// TestCoverageSumsInParallelWorkers checks the tiling check and the
// coverage report with their per-parent sums made in PostgreSQL's
// parallel workers: parallel query is made free, allowed for any number
// of parents, and the leader takes no part, so every sum is a worker's.
// An import refused for an overlap and a spill still finds both, and
// inside a transaction that has just made two streets overlap, the
// coverage finds the overlap only that transaction wrote (the workers
// share its snapshot).
func TestCoverageSumsInParallelWorkers(t *testing.T) {
	defer postgres.SetCoverageParallelParents(1)()
	ctx := context.Background()
	db, err := postgres.OpenWith(ctx, pgtest.ConnString(t)+" parallel_setup_cost=0 parallel_tuple_cost=0"+
		" min_parallel_table_scan_size=0 min_parallel_index_scan_size=0 parallel_leader_participation=off", nil, postgres.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	s := stores{postgres.NewLayerStore(db), postgres.NewGridStore(db)}
	for _, layer := range []string{"sound", "tiling"} {
		if _, err := s.layers.PutLayer(ctx, &gridmap.Layer{ID: layer, Levels: []string{"district", "street", "grid"}}); err != nil {
			t.Fatal(err)
		}
	}
	// A district of 100 streets of one grid each: enough rows for
	// PostgreSQL to share the parents out between two workers.
	sound := []string{feature("D", "district", "", box(0, 0, 0.1))}
	parents := []string{"D"}
	for i := range 10 {
		for j := range 10 {
			street := fmt.Sprintf("S%d%d", i, j)
			sound = append(sound, feature(street, "street", "D", box(float64(i)*0.01, float64(j)*0.01, 0.01)),
				feature(fmt.Sprintf("G%d%d", i, j), "grid", street, box(float64(i)*0.01, float64(j)*0.01, 0.01)))
			parents = append(parents, street)
		}
	}
	if _, err := importString(s, "sound", collection(sound...), gridmap.ImportOptions{}); err != nil {
		t.Fatalf("a sound tiling refused: %v", err)
	}
	if _, err := db.Pool.Exec(ctx, `ANALYZE grid_versions`); err != nil {
		t.Fatal(err)
	}

	_, err = importString(s, "tiling", collection(
		feature("D", "district", "", box(0, 0, 0.01)),
		feature("S1", "street", "D", box(0, 0, 0.006)),
		feature("S2", "street", "D", box(0.005, 0, 0.005)),     // overlaps S1
		feature("S3", "street", "D", box(0.009, 0.009, 0.005)), // reaches outside D
	), gridmap.ImportOptions{})
	var ge *gridmap.Error
	if !asGridmapError(err, &ge) || ge.Code != gridmap.EUNPROCESSABLE {
		t.Fatalf("got %v, want the overlap and the spill refused", err)
	}
	kinds := map[string]string{}
	for _, p := range ge.Details {
		kinds[p.Kind] = fmt.Sprint(p.Codes)
	}
	if kinds[gridmap.ProblemOverlapsSibling] != "[S1 S2]" || kinds[gridmap.ProblemOutsideParent] != "[S3 D]" || len(ge.Details) != 2 {
		t.Errorf("problems %v", ge.Details)
	}

	// Workers are a shared resource of the cluster: when none is free
	// PostgreSQL runs the plan in the leader, so try a few times.
	for try := 0; ; try++ {
		err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `WITH old AS (UPDATE grid_versions SET valid_to = now()
				  WHERE layer_id = 'sound' AND code = 'S10' AND valid_to IS NULL RETURNING *)
				INSERT INTO grid_versions (layer_id, code, version, name, level, parent_code, geom)
				SELECT layer_id, code, version + 1, name, level, parent_code, ST_Multi(ST_MakeEnvelope(0.009, 0, 0.02, 0.01, 4326)) FROM old`); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, `EXPLAIN (ANALYZE, VERBOSE, COSTS OFF) `+postgres.CoverageSQL["grid_versions"], "sound", parents, 1.0, false)
			if err != nil {
				return err
			}
			plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			if workers := workersUnder(plan, "grid_children_cover"); workers == 0 {
				t.Logf("plan:\n%s", strings.Join(plan, "\n"))
				return errNoWorkers
			}
			// The run the workers took part in found one problem: only the
			// sums they made for D could send it looking for an overlap.
			if !regexp.MustCompile(` rows=1(\.0+)? loops=1\)`).MatchString(plan[0]) {
				t.Errorf("the coverage run by the workers did not find one problem:\n%s", strings.Join(plan, "\n"))
			}
			rows, err = tx.Query(ctx, postgres.CoverageSQL["grid_versions"], "sound", parents, 1.0, false)
			if err != nil {
				return err
			}
			found := map[string]string{}
			var kind string
			var codes []string
			var geom []byte
			var area float64
			if _, err := pgx.ForEachRow(rows, []any{&kind, &codes, &geom, &area}, func() error {
				found[kind] = fmt.Sprint(codes)
				return nil
			}); err != nil {
				return err
			}
			if len(found) != 1 || found["overlap"] != "[S00 S10]" {
				t.Errorf("coverage with S10 moved over S00 in the transaction: %v; plan:\n%s", found, plan)
			}
			return errRollBack
		})
		switch {
		case errors.Is(err, errRollBack):
			return
		case errors.Is(err, errNoWorkers) && try < 20:
			time.Sleep(250 * time.Millisecond)
		default:
			t.Fatal(err)
		}
	}
}

var (
	errNoWorkers = errors.New("no parallel worker was free")
	errRollBack  = errors.New("rolled back")
)

// workersUnder is how many parallel workers ran the calls of function
// in plan (EXPLAIN ANALYZE VERBOSE's text): those launched by the Gather
// above the plan node whose output calls it; 0 when no Gather is above.
func workersUnder(plan []string, function string) int {
	launched := regexp.MustCompile(`^\s*Workers Launched: (\d+)`)
	type gather struct{ indent, workers int }
	var open []gather // the Gather nodes above the line, outermost first
	inGather := false // whether the lines are the Gather node's own
	workers := 0
	for i, line := range plan {
		text := strings.TrimLeft(line, " ")
		indent := len(line) - len(text)
		if i == 0 || strings.HasPrefix(text, "->  ") {
			for len(open) > 0 && open[len(open)-1].indent >= indent {
				open = open[:len(open)-1]
			}
			inGather = strings.HasPrefix(strings.TrimPrefix(text, "->  "), "Gather")
			if inGather {
				open = append(open, gather{indent: indent})
			}
			continue
		}
		if m := launched.FindStringSubmatch(line); m != nil && inGather {
			open[len(open)-1].workers, _ = strconv.Atoi(m[1])
		}
		if strings.HasPrefix(text, "Output:") && strings.Contains(text, function+"(") && !inGather && len(open) > 0 {
			workers = max(workers, open[len(open)-1].workers)
		}
	}
	return workers
}
