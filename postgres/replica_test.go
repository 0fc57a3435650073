package postgres_test

import (
	"bytes"
	"context"
	"math"
	"path/filepath"
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
// cluster with pg_basebackup: grid tiles are read from it; a tile asked
// for after a change the replica has not replayed yet, or of a layer it
// does not hold yet, is read from the primary instead, so that what is
// drawn after a change is never older than the change; once the replica
// has caught up, tiles come from it again; with the replica stopped,
// tiles come from the primary.
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
		for deadline := time.Now().Add(time.Minute); replicaVersion() < primaryVersion(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the replica did not catch up in a minute")
			}
		}
	}
	load("第一网格")
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
	if _, err := db.Read.Exec(ctx, `SELECT pg_wal_replay_resume()`); err != nil {
		t.Fatal(err)
	}
	caughtUp()
	if !tile("第二网格") {
		t.Error("a tile was not read from the replica once it caught up")
	}
	// The replica stopped: tiles from the primary.
	if err := standby.Stop(); err != nil {
		t.Fatal(err)
	}
	tile("第二网格")
}
