package postgres_test

import (
	"bytes"
	"context"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
)

// noInvalidator takes the tile cache's notices and drops nothing: the test
// renders tiles itself.
type noInvalidator struct{}

func (noInvalidator) Invalidate(string, [][4]float64) int { return 0 }
func (noInvalidator) InvalidateAll()                      {}

// TestReadsFromAStreamingReplica makes a real streaming replica of a
// cluster with pg_basebackup: grid tiles and the lookup index are read from
// it; a tile asked for, or a layer reloaded, after a change the replica has
// not replayed yet, or of a layer it does not hold yet, is read from the
// primary instead, so that what is drawn or looked up after a change is
// never older than the change, and the index never goes back; once the
// replica has caught up, tiles and index loads come from it again, also
// with lookups running during reloads on a pool of one connection; with the
// replica stopped, tiles and index loads come from the primary.
func TestReadsFromAStreamingReplica(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	primary, err := postgres.NewCluster(filepath.Join(t.TempDir(), "primary"), nil)
	if err != nil {
		t.Fatal(err)
	}
	primary.Throwaway = true
	if err := primary.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { primary.Release(true) })
	db0, err := postgres.Open(ctx, primary.ConnString(postgres.DatabaseName), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db0.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	db0.Close()
	standby, err := primary.NewStandby(ctx, filepath.Join(t.TempDir(), "standby"))
	if err != nil {
		t.Fatal(err)
	}
	if err := standby.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { standby.Release(true) })
	db, err := postgres.OpenWith(ctx, primary.ConnString(postgres.DatabaseName), nil,
		postgres.Options{MaxConns: 4, ReplicaURL: standby.ConnString(postgres.DatabaseName)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	var inRecovery bool
	if err := db.Read.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery); err != nil || !inRecovery {
		t.Fatalf("the replica is not a standby: %v %v", inRecovery, err)
	}

	s := stores{postgres.NewLayerStore(db), postgres.NewGridStore(db)}
	if _, err := s.layers.PutLayer(ctx, &gridmap.Layer{ID: "rep", Kind: gridmap.KindComprehensive, Levels: []string{"district", "grid"}}); err != nil {
		t.Fatal(err)
	}
	load := func(name string) {
		t.Helper()
		if res, err := importString(s, "rep", collection(feature("RD", "district", "", rect(10, 10, 10.02, 10.02)),
			`{"type":"Feature","properties":{"code":"RG","name":"`+name+`","level":"grid","parent":"RD"},"geometry":`+rect(10, 10, 10.01, 10.02)+`}`),
			gridmap.ImportOptions{}); err != nil || len(res.Rejected) > 0 {
			t.Fatalf("import: %v %+v", err, res)
		}
	}
	replicaVersion := func() int64 {
		t.Helper()
		var v int64
		if err := db.Read.QueryRow(ctx, `SELECT coalesce((SELECT data_version FROM layers WHERE id = 'rep'), 0)`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	primaryVersion := func() int64 {
		t.Helper()
		var v int64
		if err := db.Pool.QueryRow(ctx, `SELECT data_version FROM layers WHERE id = 'rep'`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	caughtUp := func() {
		t.Helper()
		replayed(t, db)
	}
	load("第一网格")
	// A load right after the import reads the replica once it holds the
	// import, committed on this throwaway cluster without waiting for its
	// WAL to be written.
	// (From the replica once it has replayed the import, else from the
	// primary after a second: either holds it.)
	early := postgres.NewLocator(db)
	if err := early.Load(ctx); err != nil {
		t.Fatal(err)
	}
	var ans gridmap.LookupAnswer
	if err := early.Lookup(ctx, gridmap.LookupQuery{Lon: 10.005, Lat: 10.01, Layer: "rep"}, &ans); err != nil {
		t.Fatal(err)
	}
	if f, st := ans.Layers[0].Finest(), layerStats(t, early, "rep"); f == nil || f.Name != "第一网格" || st.DataVersion != primaryVersion() {
		t.Errorf("a load right after the import answers %+v at version %d (from the replica: %v), want 第一网格 at %d",
			f, st.DataVersion, st.FromReplica, primaryVersion())
	}
	caughtUp()

	tileStore := postgres.NewTileStore(db)
	following := make(chan struct{})
	go tileStore.FollowTileChanges(ctx, noInvalidator{}, func() { close(following) })
	<-following
	// The z14 tile holding lon 10.005, lat 10.01.
	n, lat := float64(int(1)<<14), 10.01*math.Pi/180
	q := gridmap.TileQuery{Tileset: "rep", Z: 14, X: int((10.005 + 180) / 360 * n), Y: int((1 - math.Log(math.Tan(lat)+1/math.Cos(lat))/math.Pi) / 2 * n)}
	tile := func(want string) (fromReplica bool) {
		t.Helper()
		before := db.Read.Stat().AcquireCount()
		out, err := tileStore.RenderTile(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(out.MVT, []byte(want)) {
			t.Fatalf("the tile lacks %q", want)
		}
		return db.Read.Stat().AcquireCount() > before
	}
	if !tile("第一网格") {
		t.Error("a tile of a replayed layer was not read from the replica")
	}
	loc := postgres.NewLocator(db)
	if err := loc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	indexed(t, loc, "rep", "第一网格", primaryVersion(), true)
	followed := postgres.NewLocator(db)
	go followed.Follow(ctx)
	<-followed.Listening()
	indexed(t, followed, "rep", "第一网格", primaryVersion(), true)

	// The replica stops replaying; a rename on the primary.
	if _, err := db.Read.Exec(ctx, `SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatal(err)
	}
	stale := replicaVersion()
	load("第二网格")
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Until the tile store has the change's notice, the replica's old
		// tile is still a right answer; after it, never.
		out, err := tileStore.RenderTile(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(out.MVT, []byte("第二网格")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the renamed grid never reached the tile while the replica was paused")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v := replicaVersion(); v != stale {
		t.Fatalf("the paused replica moved from version %d to %d", stale, v)
	}
	tile("第二网格") // read again: still the new name, from the primary
	// A layer the paused replica has never seen.
	if _, err := s.layers.PutLayer(ctx, &gridmap.Layer{ID: "rep2", Kind: gridmap.KindComprehensive, Levels: []string{"district"}}); err != nil {
		t.Fatal(err)
	}
	if res, err := importString(s, "rep2", collection(feature("R2", "district", "", rect(10, 10, 10.02, 10.02))), gridmap.ImportOptions{}); err != nil || len(res.Rejected) > 0 {
		t.Fatalf("import: %v %+v", err, res)
	}
	q2 := q
	q2.Tileset = "rep2"
	if out, err := tileStore.RenderTile(ctx, q2); err != nil || !bytes.Contains(out.MVT, []byte("R2")) {
		t.Errorf("a new layer's tile while the replica lags: %v", err)
	}
	// The index: the following instance catches up with both changes (a
	// request waiting for its own write finds it), from the primary.
	var rep2Version int64
	if err := db.Pool.QueryRow(ctx, `SELECT data_version FROM layers WHERE id = 'rep2'`).Scan(&rep2Version); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	err = followed.WaitFor(wctx, map[string]int64{"rep": primaryVersion(), "rep2": rep2Version})
	wcancel()
	if err != nil {
		t.Fatalf("the following index did not catch up while the replica was paused: %v", err)
	}
	indexed(t, followed, "rep", "第二网格", primaryVersion(), false)
	// A change of the people responsible moves no data version: the
	// following index reads it from the primary, not the paused replica.
	if err := s.grids.SetPeople(ctx, "rep", "RG", []gridmap.Person{{Role: gridmap.RoleGridWorker, Name: "新网格员"}}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var ans gridmap.LookupAnswer
		if err := followed.Lookup(ctx, gridmap.LookupQuery{Lon: 10.005, Lat: 10.01, Layer: "rep"}, &ans); err != nil {
			t.Fatal(err)
		}
		if p := ans.Layers[0].People; len(p) == 1 && p[0].Name == "新网格员" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new grid worker never reached the following index while the replica was paused: %+v", ans.Layers[0].People)
		}
	}
	// A reload for the change's version, then one asking for no version:
	// the index still never goes back to the replica's.
	for _, atLeast := range []int64{primaryVersion(), 0} {
		if err := loc.Reload(ctx, "rep", atLeast); err != nil {
			t.Fatal(err)
		}
		indexed(t, loc, "rep", "第二网格", primaryVersion(), false)
	}
	if err := loc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	indexed(t, loc, "rep", "第二网格", primaryVersion(), false)
	if st := layerStats(t, loc, "rep2"); st.DataVersion != rep2Version || st.FromReplica {
		t.Errorf("a layer the replica lacks: %+v in the index, want version %d from the primary", st, rep2Version)
	}
	if _, err := db.Read.Exec(ctx, `SELECT pg_wal_replay_resume()`); err != nil {
		t.Fatal(err)
	}
	caughtUp()
	if !tile("第二网格") {
		t.Error("a tile was not read from the replica once it caught up")
	}
	if err := loc.Reload(ctx, "rep", primaryVersion()); err != nil {
		t.Fatal(err)
	}
	indexed(t, loc, "rep", "第二网格", primaryVersion(), true)
	if err := loc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	indexed(t, loc, "rep", "第二网格", primaryVersion(), true)
	lookupsDuringReloads(t, ctx, primary.ConnString(postgres.DatabaseName), standby.ConnString(postgres.DatabaseName), load, primaryVersion)

	// The replica stopped: tiles and the index from the primary.
	if err := standby.Stop(); err != nil {
		t.Fatal(err)
	}
	tile("第三网格")
	if err := loc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	indexed(t, loc, "rep", "第三网格", primaryVersion(), false)
	load("第四网格")
	if err := loc.Reload(ctx, "rep", primaryVersion()); err != nil {
		t.Fatal(err)
	}
	indexed(t, loc, "rep", "第四网格", primaryVersion(), false)
}

// lookupsDuringReloads runs lookups on four goroutines while two others
// reload the index and a third follows the renames of grid RG of layer rep,
// all on pools of one connection to the primary and one to the replica:
// no lookup fails, none sees the layer's data version go back, each rename
// reaches the index (WaitFor), and it ends holding the last.
func lookupsDuringReloads(t *testing.T, ctx context.Context, primaryURL, replicaURL string, rename func(name string), primaryVersion func() int64) {
	t.Helper()
	db, err := postgres.OpenWith(ctx, primaryURL, nil, postgres.Options{MaxConns: 1, ReplicaURL: replicaURL})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	loc := postgres.NewLocator(db)
	go loc.Follow(ctx)
	<-loc.Listening()

	var lookups, failures atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ans gridmap.LookupAnswer
			var last int64
			for ctx.Err() == nil {
				err := loc.Lookup(ctx, gridmap.LookupQuery{Lon: 10.005, Lat: 10.01, Layer: "rep"}, &ans)
				switch {
				case err != nil || ans.Layers[0].Finest() == nil:
					failures.Add(1)
				case ans.Layers[0].DataVersion < last:
					t.Errorf("a lookup saw the index go back from version %d to %d", last, ans.Layers[0].DataVersion)
					return
				default:
					last = ans.Layers[0].DataVersion
				}
				lookups.Add(1)
			}
		}()
	}
	for _, reload := range []func() error{
		func() error { return loc.Reload(ctx, "rep", 0) },
		func() error { return loc.Load(ctx) },
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := reload(); err != nil && ctx.Err() == nil {
					t.Errorf("a reload failed: %v", err)
					return
				}
			}
		}()
	}
	names := []string{"甲", "乙", "丙", "丁", "第三网格"}
	for _, name := range names {
		rename(name)
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		err := loc.WaitFor(wctx, map[string]int64{"rep": primaryVersion()})
		wcancel()
		if err != nil {
			t.Fatalf("the rename to %s did not reach the index: %v", name, err)
		}
	}
	cancel()
	wg.Wait()
	if failures.Load() != 0 || lookups.Load() == 0 {
		t.Errorf("%d of %d lookups failed during the reloads", failures.Load(), lookups.Load())
	}
	t.Logf("%d lookups during the reloads", lookups.Load())
	// Loads that found the replica lagging under the reloads rest from
	// waiting for it; once it has replayed, the next reads it.
	replayed(t, db)
	if err := loc.Reload(context.Background(), "rep", primaryVersion()); err != nil {
		t.Fatal(err)
	}
	indexed(t, loc, "rep", names[len(names)-1], primaryVersion(), true)
}

// replayed waits until db's replica has replayed the primary's WAL up to
// where it is now, the position a load of the lookup index compares.
func replayed(t *testing.T, db *postgres.DB) {
	t.Helper()
	var lsn string
	if err := db.Pool.QueryRow(context.Background(), postgres.WALInsertedSQL).Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		var done bool
		if err := db.Read.QueryRow(context.Background(), `SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn`, lsn).Scan(&done); err != nil {
			t.Fatal(err)
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the replica did not replay the primary's WAL in a minute")
		}
	}
}

// indexed checks what loc's index holds of layer: the name of the grid at
// lon 10.005, lat 10.01, the data version, and where the latest rebuild
// read it from.
func indexed(t *testing.T, loc *postgres.Locator, layer, name string, version int64, fromReplica bool) {
	t.Helper()
	var ans gridmap.LookupAnswer
	if err := loc.Lookup(context.Background(), gridmap.LookupQuery{Lon: 10.005, Lat: 10.01, Layer: layer}, &ans); err != nil {
		t.Fatal(err)
	}
	if f := ans.Layers[0].Finest(); f == nil || f.Name != name {
		t.Errorf("the index answers %+v, want the grid named %s", f, name)
	}
	st := layerStats(t, loc, layer)
	if st.DataVersion != version || st.FromReplica != fromReplica {
		t.Errorf("the index holds layer %s at version %d (from the replica: %v), want %d (%v)", layer, st.DataVersion, st.FromReplica, version, fromReplica)
	}
}

// layerStats returns loc's IndexStats of layer.
func layerStats(t *testing.T, loc *postgres.Locator, layer string) gridmap.IndexStats {
	t.Helper()
	for _, st := range loc.IndexStats() {
		if st.Layer == layer {
			return st
		}
	}
	t.Fatalf("the index lacks layer %s", layer)
	return gridmap.IndexStats{}
}
