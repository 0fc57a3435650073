package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// TestLocatorKeepsPeopleUntilTheyChange: a reload after a boundary edit
// keeps the index's people when the layer's people version has not moved
// (the unchanged grids' people are the very ones the index held, not read
// again), reads the people of the grids it reads whole (an edited grid, a
// new grid whose people were set before it existed), and reads every
// grid's again after any change of people, by gridmap or by hand
// (insert, update, delete, truncate). After each step the reloaded index
// answers as one loaded afresh.
func TestLocatorKeepsPeopleUntilTheyChange(t *testing.T) {
	ctx := context.Background()
	db := pgtest.NewDB(t)
	layers, grids := postgres.NewLayerStore(db), postgres.NewGridStore(db)
	if _, err := layers.PutLayer(ctx, &gridmap.Layer{ID: "kp", Kind: gridmap.KindComprehensive, Levels: []string{"street", "grid"}}); err != nil {
		t.Fatal(err)
	}
	r := geo.NewFeatureReader(strings.NewReader(collection(
		feature("S", "street", "", rect(121, 31, 121.04, 31.01)),
		feature("A", "grid", "S", rect(121, 31, 121.01, 31.01)),
		feature("B", "grid", "S", rect(121.01, 31, 121.02, 31.01)),
		feature("C", "grid", "S", rect(121.02, 31, 121.03, 31.01)))), geo.DefaultFieldMap)
	if _, err := grids.Import(ctx, "kp", r, gridmap.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	for code, name := range map[string]string{"A": "Wang", "B": "Zhao"} {
		if err := grids.SetPeople(ctx, "kp", code, []gridmap.Person{{Role: gridmap.RoleGridWorker, Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	loc := postgres.NewLocator(db)
	if err := loc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	at := map[string][2]float64{"A": {121.005, 31.005}, "B": {121.015, 31.005}, "C": {121.025, 31.005}, "D": {121.035, 31.005}}
	people := func(l *postgres.Locator, code string) []gridmap.Person {
		t.Helper()
		var ans gridmap.LookupAnswer
		p := at[code]
		if err := l.Lookup(ctx, gridmap.LookupQuery{Layer: "kp", Lon: p[0], Lat: p[1]}, &ans); err != nil {
			t.Fatal(err)
		}
		chain := ans.Layers[0].Chain
		if len(chain) == 0 || chain[len(chain)-1].Code != code {
			t.Fatalf("(%v) answers %+v, want grid %s", p, chain, code)
		}
		return ans.Layers[0].People
	}
	names := func(pp []gridmap.Person) string {
		var out []string
		for _, p := range pp {
			out = append(out, p.Name)
		}
		return strings.Join(out, ",")
	}
	exec := func(sql string) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// reload reloads the layer and checks it against a fresh load and the
	// names wanted by grid.
	reload := func(when string, want map[string]string) {
		t.Helper()
		if err := loc.Reload(ctx, "kp", 0); err != nil {
			t.Fatal(err)
		}
		fresh := postgres.NewLocator(db)
		if err := fresh.Load(ctx); err != nil {
			t.Fatal(err)
		}
		for code, names0 := range want {
			if got, afresh := names(people(loc, code)), names(people(fresh, code)); got != names0 || afresh != names0 {
				t.Errorf("%s: %s's people %q (loaded afresh %q), want %q", when, code, got, afresh, names0)
			}
		}
		for x := 120.999; x < 121.042; x += 0.0007 {
			var got, want gridmap.LookupAnswer
			q := gridmap.LookupQuery{Layer: "kp", Lon: x, Lat: 31.005}
			if err := loc.Lookup(ctx, q, &got); err != nil {
				t.Fatal(err)
			}
			if err := fresh.Lookup(ctx, q, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: (%.4f, 31.005): %+v, loaded afresh %+v", when, x, got, want)
			}
		}
	}
	newVersion := func(code string, x0, x1 float64) {
		exec(fmt.Sprintf(`WITH old AS (UPDATE grid_versions SET valid_to = now() WHERE layer_id = 'kp' AND code = '%s' AND valid_to IS NULL RETURNING *)
			INSERT INTO grid_versions (layer_id, code, version, name, level, parent_code, geom)
			SELECT layer_id, code, version + 1, name, level, parent_code,
				ST_GeomFromText('MULTIPOLYGON(((%[2]v 31,%[3]v 31,%[3]v 31.01,%[2]v 31.01,%[2]v 31)))', 4326) FROM old`, code, x0, x1))
	}

	// A boundary edit, people untouched: A's people are the index's own,
	// B's (edited, read whole) read for it.
	before := unsafe.SliceData(people(loc, "A"))
	newVersion("B", 121.01, 121.0195)
	reload("B edited", map[string]string{"A": "Wang", "B": "Zhao", "C": ""})
	if after := unsafe.SliceData(people(loc, "A")); after != before {
		t.Errorf("A's people were read again though no one changed them")
	}

	// People set for D before D exists, then D added: its people come with
	// it though the version did not move in between.
	exec(`INSERT INTO grid_people (layer_id, grid_code, role, name) VALUES ('kp', 'D', 'grid_worker', 'Sun')`)
	reload("D's people set", map[string]string{"A": "Wang", "B": "Zhao"})
	before = unsafe.SliceData(people(loc, "B"))
	exec(`INSERT INTO grid_versions (layer_id, code, version, name, level, parent_code, geom)
		VALUES ('kp', 'D', 1, 'D', 'grid', 'S', ST_GeomFromText('MULTIPOLYGON(((121.03 31,121.04 31,121.04 31.01,121.03 31.01,121.03 31)))', 4326))`)
	reload("D added", map[string]string{"A": "Wang", "B": "Zhao", "D": "Sun"})
	if after := unsafe.SliceData(people(loc, "B")); after != before {
		t.Errorf("B's people were read again when D was added")
	}

	// A change of people not yet committed is not seen, nor does it stop
	// the reload keeping the people it has; once committed, it is.
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `UPDATE grid_people SET name = 'Feng' WHERE layer_id = 'kp' AND grid_code = 'B'`); err != nil {
		t.Fatal(err)
	}
	newVersion("A", 121, 121.0095)
	reload("A edited beside an uncommitted change of B's people", map[string]string{"A": "Wang", "B": "Zhao", "D": "Sun"})
	if after := unsafe.SliceData(people(loc, "B")); after != before {
		t.Errorf("B's people were read again while their change was not committed")
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	reload("B's people change committed", map[string]string{"A": "Wang", "B": "Feng", "D": "Sun"})

	// Changes by hand, each followed by a reload that must see it.
	exec(`UPDATE grid_people SET name = 'Qian' WHERE layer_id = 'kp' AND grid_code = 'A'`)
	reload("A's person renamed by hand", map[string]string{"A": "Qian", "B": "Feng", "D": "Sun"})
	exec(`INSERT INTO grid_people (layer_id, grid_code, position, role, name) VALUES ('kp', 'C', 0, 'grid_worker', 'Li'), ('kp', 'C', 1, 'grid_leader', 'Zhou')`)
	reload("C's people added by hand", map[string]string{"A": "Qian", "C": "Li,Zhou"})
	exec(`DELETE FROM grid_people WHERE layer_id = 'kp' AND grid_code = 'A'`)
	reload("A's people deleted by hand", map[string]string{"A": "", "C": "Li,Zhou"})
	before = unsafe.SliceData(people(loc, "D"))
	newVersion("C", 121.0205, 121.03)
	reload("C edited", map[string]string{"A": "", "B": "Feng", "C": "Li,Zhou", "D": "Sun"})
	if after := unsafe.SliceData(people(loc, "D")); after != before {
		t.Errorf("D's people were read again when C was edited")
	}
	exec(`TRUNCATE grid_people`)
	reload("every person removed", map[string]string{"A": "", "B": "", "C": "", "D": ""})
}

// TestLocatorPeopleUnderConcurrentChanges: people are set (by gridmap
// and by hand) and boundaries edited from many goroutines while the index
// reloads over and over, on a pool of four connections; once all is done,
// a last reload answers every grid's people as an index loaded afresh.
func TestLocatorPeopleUnderConcurrentChanges(t *testing.T) {
	ctx := context.Background()
	db := pgtest.NewDBWith(t, postgres.Options{MaxConns: 4})
	layers, grids := postgres.NewLayerStore(db), postgres.NewGridStore(db)
	if _, err := layers.PutLayer(ctx, &gridmap.Layer{ID: "cp", Kind: gridmap.KindComprehensive, Levels: []string{"grid"}}); err != nil {
		t.Fatal(err)
	}
	const n = 12
	var feats []string
	for i := range n {
		x := 121 + float64(i)*0.01
		feats = append(feats, feature(fmt.Sprintf("G%02d", i), "grid", "", rect(x, 31, x+0.01, 31.01)))
	}
	if _, err := grids.Import(ctx, "cp", geo.NewFeatureReader(strings.NewReader(collection(feats...)), geo.DefaultFieldMap), gridmap.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	loc := postgres.NewLocator(db)
	if err := loc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(w), 34))
			for k := range 15 {
				code := fmt.Sprintf("G%02d", rnd.IntN(n))
				var err error
				switch k % 3 {
				case 0:
					err = grids.SetPeople(ctx, "cp", code, []gridmap.Person{{Role: gridmap.RoleGridWorker, Name: fmt.Sprintf("w%d-%d", w, k)}})
				case 1:
					_, err = db.Pool.Exec(ctx, `UPDATE grid_people SET name = $2 WHERE layer_id = 'cp' AND grid_code = $1`, code, fmt.Sprintf("hand%d-%d", w, k))
				case 2:
					// A new version of the grid, the same outline.
					_, err = db.Pool.Exec(ctx, `WITH old AS (UPDATE grid_versions SET valid_to = now() WHERE layer_id = 'cp' AND code = $1 AND valid_to IS NULL RETURNING *)
						INSERT INTO grid_versions (layer_id, code, version, name, level, parent_code, geom)
						SELECT layer_id, code, version + 1, name, level, parent_code, geom FROM old`, code)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	var reloads sync.WaitGroup
	reloads.Add(1)
	go func() {
		defer reloads.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := loc.Reload(ctx, "cp", 0); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(done)
	reloads.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := loc.Reload(ctx, "cp", 0); err != nil {
		t.Fatal(err)
	}
	fresh := postgres.NewLocator(db)
	if err := fresh.Load(ctx); err != nil {
		t.Fatal(err)
	}
	staffed := 0
	for i := range n {
		q := gridmap.LookupQuery{Layer: "cp", Lon: 121.005 + float64(i)*0.01, Lat: 31.005}
		var got, want gridmap.LookupAnswer
		if err := loc.Lookup(ctx, q, &got); err != nil {
			t.Fatal(err)
		}
		if err := fresh.Lookup(ctx, q, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("G%02d: %+v, loaded afresh %+v", i, got, want)
		}
		if len(want.Layers[0].People) > 0 {
			staffed++
		}
	}
	if staffed == 0 {
		t.Fatal("no grid has people: the test changed none")
	}
}

// TestLocatorPeopleOfLayersLoadedTogether: a load over an index of two
// layers, one whose people changed and one whose did not, a grid edited
// in each, answers every point of both as an index loaded afresh (the
// people read for one layer's grids do not leak into the other's).
func TestLocatorPeopleOfLayersLoadedTogether(t *testing.T) {
	ctx := context.Background()
	db := pgtest.NewDB(t)
	layers, grids := postgres.NewLayerStore(db), postgres.NewGridStore(db)
	for _, id := range []string{"two1", "two2"} {
		if _, err := layers.PutLayer(ctx, &gridmap.Layer{ID: id, Kind: gridmap.KindDepartmental, Levels: []string{"grid"}}); err != nil {
			t.Fatal(err)
		}
		r := geo.NewFeatureReader(strings.NewReader(collection(
			feature("A", "grid", "", rect(121, 31, 121.01, 31.01)),
			feature("B", "grid", "", rect(121.01, 31, 121.02, 31.01)))), geo.DefaultFieldMap)
		if _, err := grids.Import(ctx, id, r, gridmap.ImportOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, code := range []string{"A", "B"} {
			if err := grids.SetPeople(ctx, id, code, []gridmap.Person{{Role: gridmap.RoleGridWorker, Name: id + code}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	loc := postgres.NewLocator(db)
	if err := loc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := grids.SetPeople(ctx, "two2", "A", []gridmap.Person{{Role: gridmap.RoleGridWorker, Name: "changed"}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"two1", "two2"} {
		if _, err := db.Pool.Exec(ctx, `WITH old AS (UPDATE grid_versions SET valid_to = now() WHERE layer_id = $1 AND code = 'B' AND valid_to IS NULL RETURNING *)
			INSERT INTO grid_versions (layer_id, code, version, name, level, parent_code, geom)
			SELECT layer_id, code, version + 1, name, level, parent_code, geom FROM old`, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := loc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	fresh := postgres.NewLocator(db)
	if err := fresh.Load(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"two1", "two2"} {
		for _, x := range []float64{121.005, 121.015} {
			q := gridmap.LookupQuery{Layer: id, Lon: x, Lat: 31.005}
			var got, want gridmap.LookupAnswer
			if err := loc.Lookup(ctx, q, &got); err != nil {
				t.Fatal(err)
			}
			if err := fresh.Lookup(ctx, q, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) || len(got.Layers[0].People) != 1 {
				t.Errorf("%s at %v: %+v, loaded afresh %+v", id, x, got, want)
			}
		}
	}
}

// TestPeopleChangeBesideALayerWriter: a change of people waits for a
// writer holding its layer's row (as an import or a publish does from its
// start, writing people at its end), and both commit: the people
// version's row is always taken after the layer's. Taken before it, the
// writer's people and the change closed a cycle, and PostgreSQL aborted
// one of them.
func TestPeopleChangeBesideALayerWriter(t *testing.T) {
	ctx := context.Background()
	db := pgtest.NewDBWith(t, postgres.Options{MaxConns: 4})
	layers, grids := postgres.NewLayerStore(db), postgres.NewGridStore(db)
	if _, err := layers.PutLayer(ctx, &gridmap.Layer{ID: "lw", Kind: gridmap.KindDepartmental, Levels: []string{"grid"}}); err != nil {
		t.Fatal(err)
	}
	r := geo.NewFeatureReader(strings.NewReader(collection(
		feature("A", "grid", "", rect(121, 31, 121.01, 31.01)),
		feature("B", "grid", "", rect(121.01, 31, 121.02, 31.01)))), geo.DefaultFieldMap)
	if _, err := grids.Import(ctx, "lw", r, gridmap.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	// A has people, so that replacing them deletes rows first.
	if err := grids.SetPeople(ctx, "lw", "A", []gridmap.Person{{Role: gridmap.RoleGridWorker, Name: "old"}}); err != nil {
		t.Fatal(err)
	}
	writer, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Rollback(ctx)
	if _, err := writer.Exec(ctx, `SELECT 1 FROM layers WHERE id = 'lw' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	changed := make(chan error, 1)
	go func() {
		changed <- grids.SetPeople(ctx, "lw", "A", []gridmap.Person{{Role: gridmap.RoleGridWorker, Name: "new"}})
	}()
	// The change waits on a lock the writer holds.
	for waiting := 0; waiting == 0; {
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-changed:
			t.Fatalf("the change of people did not wait for the layer's writer: %v", err)
		default:
		}
	}
	if _, err := writer.Exec(ctx, `INSERT INTO grid_people (layer_id, grid_code, role, name) VALUES ('lw', 'B', 'grid_worker', 'writer')`); err != nil {
		t.Fatalf("the writer's people: %v", err)
	}
	if err := writer.Commit(ctx); err != nil {
		t.Fatalf("the writer's commit: %v", err)
	}
	if err := <-changed; err != nil {
		t.Fatalf("the change of people: %v", err)
	}
	var names string
	if err := db.Pool.QueryRow(ctx, `SELECT string_agg(grid_code || ':' || name, ',' ORDER BY grid_code) FROM grid_people WHERE layer_id = 'lw'`).Scan(&names); err != nil {
		t.Fatal(err)
	}
	if names != "A:new,B:writer" {
		t.Errorf("people: %s, want A:new,B:writer", names)
	}
}

// TestLocatorKeepsRepeatedTextsOnce: grids of one name (第1网格 in every
// community) and the people's repeated texts (a leader who stands for
// several grids, a role, a department) are held by the index as one copy
// of each text, each grid keeping exactly the people it was given, after a
// load and after a reload that reads the people again.
func TestLocatorKeepsRepeatedTextsOnce(t *testing.T) {
	ctx := context.Background()
	db := pgtest.NewDB(t)
	layers, grids := postgres.NewLayerStore(db), postgres.NewGridStore(db)
	if _, err := layers.PutLayer(ctx, &gridmap.Layer{ID: "tx", Kind: gridmap.KindComprehensive, Levels: []string{"community", "grid"}}); err != nil {
		t.Fatal(err)
	}
	var fs []string
	for c := range 3 {
		x := 121 + float64(c)*0.02
		code := fmt.Sprintf("C%d", c)
		fs = append(fs, feature(code, "community", "", rect(x, 31, x+0.02, 31.01)),
			namedFeature(code+"G1", "第1网格", "grid", code, rect(x, 31, x+0.01, 31.01)),
			namedFeature(code+"G2", "第2网格", "grid", code, rect(x+0.01, 31, x+0.02, 31.01)))
	}
	if _, err := grids.Import(ctx, "tx", geo.NewFeatureReader(strings.NewReader(collection(fs...)), geo.DefaultFieldMap), gridmap.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	leader := gridmap.Person{Role: gridmap.RoleGridLeader, Name: "王芳", Phone: "13800000000", Department: "综治中心"}
	given := map[string][]gridmap.Person{}
	set := func(code string, people []gridmap.Person) {
		t.Helper()
		if err := grids.SetPeople(ctx, "tx", code, people); err != nil {
			t.Fatal(err)
		}
		given[code] = people
	}
	for c := range 3 {
		for k, g := range []string{"G1", "G2"} {
			// Each grid its own worker, of a name and phone of another
			// length, beside the leader every grid shares.
			worker := gridmap.Person{Role: gridmap.RoleGridWorker, Name: "李" + strings.Repeat("明", 1+c+k),
				Phone: fmt.Sprintf("139%0*d", 8+c+k, c*10+k), Department: "综治中心"}
			set(fmt.Sprintf("C%d%s", c, g), []gridmap.Person{leader, worker})
		}
	}
	loc := postgres.NewLocator(db)
	if err := loc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(step string) {
		t.Helper()
		li := loc.Index().Layer("tx")
		names := map[string]*byte{}
		texts := map[string]*byte{}
		for g := range li.Grids {
			ig := &li.Grids[g]
			if p, ok := names[ig.Name]; ok && p != unsafe.StringData(ig.Name) {
				t.Errorf("%s: grid %s: its name %q is a copy of its own, not the one kept", step, ig.Code, ig.Name)
			}
			names[ig.Name] = unsafe.StringData(ig.Name)
			people := li.People(int32(g))
			if !reflect.DeepEqual(people, given[ig.Code]) && (len(people) > 0 || len(given[ig.Code]) > 0) {
				t.Fatalf("%s: grid %s has people %+v, want %+v", step, ig.Code, people, given[ig.Code])
			}
			for _, p := range people {
				for _, s := range []string{p.Role, p.Name, p.Phone, p.Department} {
					if q, ok := texts[s]; ok && q != unsafe.StringData(s) {
						t.Errorf("%s: grid %s: its person's text %q is a copy of its own, not the one kept", step, ig.Code, s)
					}
					texts[s] = unsafe.StringData(s)
				}
			}
		}
		if len(names) != 5 { // three communities' names, 第1网格 and 第2网格
			t.Fatalf("%s: names %v, want five", step, names)
		}
	}
	check("load")
	// A change of people moves the layer's people version: the reload
	// reads every grid's people again.
	set("C1G2", []gridmap.Person{{Role: gridmap.RoleGridWorker, Name: "王芳", Phone: "13800000000", Department: "综治中心"}})
	if err := loc.Reload(ctx, "tx", 0); err != nil {
		t.Fatal(err)
	}
	check("reload")
}
