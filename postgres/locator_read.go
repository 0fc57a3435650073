package postgres

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/paulmach/orb"
)

// The lookup index loads from the streaming replica when one is given
// (DB.Read): a big layer's load is a heavy read. The index must never go
// back, nor miss a change it was told of (WaitFor callers wait for their
// own writes to be in it; a change of the people responsible does not
// move a layer's data version), so a load reads the replica only once it
// has replayed the primary's WAL up to where it was when the load began:
// every change committed before then. The versions the index already
// holds are checked again inside the replica's snapshot.

// replicaWait bounds how long a load waits for the replica to replay
// before reading from the primary instead; for replicaRest after such a
// wait, loads wait only replicaRestWait (the replica is read if it is as
// good as current), so that a burst of changes to several layers waits
// once, not once a layer. Both are short of intake's wait for the index
// (indexWait): a request waiting for its own change still finds it in the
// index while the replica lags. replicaPoll is how often the replica's
// position is read meanwhile.
const (
	replicaWait     = time.Second
	replicaRest     = 5 * time.Second
	replicaRestWait = 50 * time.Millisecond
	replicaPoll     = 20 * time.Millisecond
)

// errReplicaBehind is a replica that has not replayed what a load must see.
var errReplicaBehind = errors.New("the replica has not replayed the changes the lookup index must hold")

// read reads the layers of a load (see readLayers) from one snapshot: the
// replica's once it has replayed the primary's WAL up to now (waiting up
// to replicaWait) and holds each layer of floor at least at its version;
// else, or when the replica fails (DB.OnReplica), the primary's.
// fromReplica says which.
func (l *Locator) read(ctx context.Context, layer string, cur *geo.Index, floor map[string]int64) (inputs []geo.LayerInput, fromReplica bool, err error) {
	var lsn string
	if l.db.Read != l.db.Pool {
		if err := l.db.Pool.QueryRow(ctx, walInsertedSQL).Scan(&lsn); err != nil {
			lsn = "" // the primary's own read below reports what is wrong
		}
	}
	if lsn == "" {
		inputs, err = readLayers(ctx, l.db.Pool, layer, cur, nil)
		return inputs, false, err
	}
	err = l.db.OnReplica(func(pool *pgxpool.Pool) error {
		var err error
		if fromReplica = pool != l.db.Pool; !fromReplica {
			inputs, err = readLayers(ctx, pool, layer, cur, nil)
			return err
		}
		wait := replicaWait
		if time.Now().UnixNano() < l.replicaRestUntil.Load() {
			wait = replicaRestWait
		}
		if err := awaitReplay(ctx, pool, lsn, wait); err != nil {
			if errors.Is(err, errReplicaBehind) && wait == replicaWait {
				l.replicaRestUntil.Store(time.Now().Add(replicaRest).UnixNano())
				l.db.Logger.Info("the replica lags: the lookup index reads the primary", "layer", layer, "waited", wait.String())
			}
			return err
		}
		inputs, err = readLayers(ctx, pool, layer, cur, floor)
		return err
	}, func(err error) bool { return errors.Is(err, errReplicaBehind) })
	return inputs, fromReplica, err
}

// walInsertedSQL reads where the primary's WAL is inserted to, not
// written: a commit made without waiting for its flush (synchronous_commit
// off, as on a throwaway cluster) lies between the two until the WAL writer
// catches up, and the replica replays only what was flushed. At the start
// of a WAL page the position inserted to lies past the page's header (24
// bytes, 40 for a segment's first page), where no replay ends until the
// next record is written: it is taken back to the page's start.
const walInsertedSQL = `SELECT (CASE WHEN (l - '0/0'::pg_lsn) % 8192 IN (24, 40) THEN l - (l - '0/0'::pg_lsn) % 8192 ELSE l END)::text
	FROM pg_current_wal_insert_lsn() l`

// awaitReplay polls the replica behind pool until it has replayed the WAL
// up to lsn. Returns errReplicaBehind when it has not after wait, and for
// a server that replays nothing (not a standby).
func awaitReplay(ctx context.Context, pool *pgxpool.Pool, lsn string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		var done bool
		if err := pool.QueryRow(ctx, `SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)`, lsn).Scan(&done); err != nil || done {
			return err
		}
		if time.Now().After(deadline) {
			return errReplicaBehind
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(replicaPoll):
		}
	}
}

// behind tells whether versions miss a layer of floor or hold one at an
// older version. A layer missing from floor is not asked for: layers are
// never deleted, so one that versions hold besides is newer, not stale.
func behind(versions, floor map[string]int64) bool {
	for layer, v := range floor {
		if got, ok := versions[layer]; !ok || got < v {
			return true
		}
	}
	return false
}

// versionsOf returns the data version of each layer read.
func versionsOf(inputs []geo.LayerInput) map[string]int64 {
	versions := make(map[string]int64, len(inputs))
	for _, in := range inputs {
		versions[in.ID] = in.DataVersion
	}
	return versions
}

// readLayers reads the current grids and people of one layer ("" for all)
// from one snapshot of pool, so the data version matches the grids read.
// A grid whose version cur already indexes is not read again: a version
// never changes once stored (a newer one replaces it), so it is given as
// cur holds it, without geometry, and the rebuild reuses its pieces; the
// other grids are read whole and cut while they arrive. A change of people
// moves no grid's version but the layer's people version (migration
// 00034): when that has not moved since cur read them, cur's are kept and
// only the grids read whole have theirs read; otherwise every grid's are
// read again. With a floor, a
// snapshot missing a layer of floor or holding one older is
// errReplicaBehind, found before the grids are read.
func readLayers(ctx context.Context, pool *pgxpool.Pool, layer string, cur *geo.Index, floor map[string]int64) ([]geo.LayerInput, error) {
	var out []geo.LayerInput
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		// Each statement planned for its values: a plan kept for the
		// statement would search a list of ids row by row where one made
		// for the list at hand looks them up by hash or in the primary
		// key, and read every layer's people or grids where one is asked
		// for.
		if _, err := tx.Exec(ctx, `SET LOCAL plan_cache_mode = force_custom_plan`); err != nil {
			return err
		}
		// With each layer, how many grids it has and how many of them have
		// people: the slices and the maps below are made that size, not grown (a province's million grids
		// were copied over and over, a tenth of a reload). A layer cur
		// holds is sized as it is there, not counted again (a second of a
		// province's reload).
		held := []string{}
		if cur != nil {
			for _, li := range cur.Layers() {
				if layer == "" || li.ID == layer {
					held = append(held, li.ID)
				}
			}
		}
		rows, err := tx.Query(ctx, `SELECT id, kind, levels, tolerance_m, data_version,
			coalesce((SELECT v.version FROM layer_people_versions v WHERE v.layer_id = l.id), 0),
			CASE WHEN id = ANY($2) THEN -1 ELSE (SELECT count(*) FROM grids g WHERE g.layer_id = l.id) END,
			CASE WHEN id = ANY($2) THEN -1 ELSE (SELECT count(DISTINCT p.grid_code) FROM grid_people p WHERE p.layer_id = l.id) END
			FROM layers l WHERE $1 = '' OR id = $1 ORDER BY id`, layer, held)
		if err != nil {
			return err
		}
		byID := map[string]int{}
		var staffed []int           // by layer, its grids with people
		var prevs []*geo.LayerIndex // by layer, cur's index of it or nil
		// Levels and grids' names, and the people's texts, each kept once;
		// two tables, so that neither crowds the other out.
		gridTexts, peopleTexts := newTexts(), newTexts()
		for rows.Next() {
			var in geo.LayerInput
			var grids, withPeople int
			if err := rows.Scan(&in.ID, &in.Kind, &in.Levels, &in.ToleranceM, &in.DataVersion, &in.PeopleVersion, &grids, &withPeople); err != nil {
				rows.Close() // the connection is free again for the rollback
				return err
			}
			for k, lv := range in.Levels {
				in.Levels[k] = gridTexts.of([]byte(lv))
			}
			var prev *geo.LayerIndex
			if cur != nil {
				prev = cur.Layer(in.ID)
			}
			if prev != nil {
				grids, withPeople = len(prev.Grids), prev.Staffed()
			}
			in.Grids = make([]geo.GridInput, 0, grids)
			staffed = append(staffed, withPeople)
			prevs = append(prevs, prev)
			byID[in.ID] = len(out)
			out = append(out, in)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if floor != nil && behind(versionsOf(out), floor) {
			return errReplicaBehind
		}
		// People by layer, then by grid code, each map keyed by one
		// string: one map keyed by both hashed each pair the generic way,
		// 1.75 s of a province's load. A layer whose people have not
		// changed since cur's index of it read them (its people version
		// has not moved) keeps cur's: only the grids read whole below have
		// theirs read, after readKnownGrids has found them.
		people := make([]map[string][]gridmap.Person, len(out))
		kept := make([]bool, len(out)) // by layer: its grids keep prev's people
		var readPeople, keptPeople []string
		for i := range people {
			if kept[i] = prevs[i] != nil && prevs[i].PeopleVersion == out[i].PeopleVersion; kept[i] {
				people[i] = map[string][]gridmap.Person{}
				keptPeople = append(keptPeople, out[i].ID)
			} else {
				people[i] = make(map[string][]gridmap.Person, staffed[i])
				readPeople = append(readPeople, out[i].ID)
			}
		}
		addPeople := func(rows pgx.Rows, err error) error {
			if err != nil {
				return err
			}
			var lid, code string
			var role, name, phone, dept pgtype.DriverBytes
			_, err = pgx.ForEachRow(rows, []any{&lid, &code, &role, &name, &phone, &dept}, func() error {
				if i, ok := byID[lid]; ok {
					people[i][code] = append(people[i][code], gridmap.Person{Role: peopleTexts.of(role), Name: peopleTexts.of(name),
						Phone: peopleTexts.of(phone), Department: peopleTexts.of(dept)})
				}
				return nil
			})
			return err
		}
		if len(readPeople) > 0 {
			if err := addPeople(tx.Query(ctx, peopleQuery(`p.layer_id = ANY($1)`), readPeople)); err != nil {
				return err
			}
		}
		// A layer cur holds is read as its grids' versions first: those
		// cur holds are given as it holds them, the others read whole
		// below with every grid of the layers cur does not hold.
		indexed, whole := []string{}, []string{}
		for i := range out {
			if prevs[i] != nil {
				indexed = append(indexed, out[i].ID)
			} else {
				whole = append(whole, out[i].ID)
			}
		}
		changed, replaced := []int64{}, make([]int, len(out))
		if len(indexed) > 0 {
			if changed, err = readKnownGrids(ctx, tx, indexed, byID, prevs, people, kept, out, replaced); err != nil {
				return err
			}
		}
		if len(keptPeople) > 0 && len(changed) > 0 {
			// The grids read whole below of the layers that keep their
			// people: theirs, by the grids' codes.
			if err := addPeople(tx.Query(ctx, peopleQuery(`p.layer_id = ANY($2) AND (p.layer_id, p.grid_code) IN
				(SELECT g.layer_id, g.code FROM grids g WHERE g.id = ANY($1))`), changed, keptPeople)); err != nil {
				return err
			}
		}
		for i := range out {
			// Grids prev holds keep their pieces where they are; what is
			// cut goes in beside them (see NextStore).
			out[i].Store = prevs[i].NextStore(replaced[i])
		}
		rows, err = tx.Query(ctx, `SELECT layer_id, id, code, name, level, coalesce(parent_code, ''), version, ST_AsBinary(geom)
			FROM grids WHERE layer_id = ANY($1)
			UNION ALL
			SELECT layer_id, id, code, name, level, coalesce(parent_code, ''), version, ST_AsBinary(geom)
			FROM grids WHERE id = ANY($2)`, whole, changed)
		if err != nil {
			return err
		}
		defer rows.Close()
		cuts := newCutter()
		// One set of places to scan each row into: declared in the loop,
		// each row's escaped to the heap, with the arguments' slice, 420 MB
		// of garbage in a province's load. The texts and the geometry are
		// the driver's bytes, valid until the next row: kept as strings and
		// copied for the workers.
		var lid string
		var g geo.GridInput
		var name, level, geomWKB pgtype.DriverBytes
		dest := []any{&lid, &g.VersionID, &g.Code, &name, &level, &g.Parent, &g.Version, &geomWKB}
		for rows.Next() {
			g = geo.GridInput{}
			if err := rows.Scan(dest...); err != nil {
				cuts.wait()
				return err
			}
			g.Name, g.Level = gridTexts.of(name), gridTexts.of(level)
			if i, ok := byID[lid]; ok {
				g.People = people[i][g.Code]
				cuts.cut(i, len(out[i].Grids), out[i].Store, geomWKB)
				out[i].Grids = append(out[i].Grids, g)
			}
		}
		cut, failed := cuts.wait()
		if failed.err != nil {
			return fmt.Errorf("grid %s/%s: %w", out[failed.layer].ID, out[failed.layer].Grids[failed.grid].Code, failed.err)
		}
		for _, c := range cut {
			out[c.layer].Grids[c.grid].Pieces = c.pieces
		}
		return rows.Err()
	})
	return out, err
}

// texts keeps one copy of each text a load reads over and over: levels,
// grids' names (社区 and 网格 names repeat across a province's districts)
// and the people's names, roles, phones and departments (a role or a
// department is one of a few, common names repeat, and a person who stands
// for several grids is read for each). In the generated province, whose
// 1.5 million people rows hold about 11,000 distinct texts and whose 1.2
// million grids 50,000 distinct names, their copies were 104 of the
// index's 1,264 MB. A table keeps at most textsKept distinct texts, the
// first read, so that a layer of names all different costs a map of
// bounded size, not a second copy of every name.
type texts struct{ kept map[string]string }

const textsKept = 1 << 16

func newTexts() texts { return texts{kept: map[string]string{}} }

// of returns b as a string, the copy kept when there is one.
func (t texts) of(b []byte) string {
	if s, ok := t.kept[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(t.kept) < textsKept {
		t.kept[s] = s
	}
	return s
}

// peopleQuery selects the people of grid_people p where cond holds, as
// readLayers adds them: by layer and code, in each grid's order.
func peopleQuery(cond string) string {
	return `SELECT p.layer_id, p.grid_code, p.role, p.name, p.phone, p.department FROM grid_people p
		WHERE ` + cond + ` ORDER BY p.layer_id, p.grid_code, p.position, p.id`
}

// readKnownGrids reads the ids of the current grids of the indexed layers
// (each held by prevs[i] for out[i]) and appends to out[i].Grids, without
// geometry, each grid whose version prevs[i] holds, as it holds it, with
// its people: prevs[i]'s where kept[i], else people[i]'s. It returns the
// ids of the others, to be read whole, and
// counts in replaced, by layer, the grids of prevs[i] no longer current
// (replaced by a new version or closed).
func readKnownGrids(ctx context.Context, tx pgx.Tx, indexed []string, byID map[string]int, prevs []*geo.LayerIndex,
	people []map[string][]gridmap.Person, kept []bool, out []geo.LayerInput, replaced []int) ([]int64, error) {
	changed := []int64{}
	for _, lid := range indexed {
		i := byID[lid]
		prev := prevs[i]
		byVersion := make(map[int64]int32, len(prev.Grids))
		for g := range prev.Grids {
			byVersion[prev.Grids[g].VersionID] = int32(g)
		}
		rows, err := tx.Query(ctx, `SELECT id FROM grids WHERE layer_id = $1`, lid)
		if err != nil {
			return nil, err
		}
		var id int64
		held := 0
		_, err = pgx.ForEachRow(rows, []any{&id}, func() error {
			g, ok := byVersion[id]
			if !ok {
				changed = append(changed, id)
				return nil
			}
			held++
			pg := &prev.Grids[g]
			ppl := people[i][pg.Code]
			if kept[i] {
				ppl = prev.People(g)
			}
			out[i].Grids = append(out[i].Grids, geo.GridInput{Code: pg.Code, Name: pg.Name, Level: prev.Level(g),
				Parent: prev.ParentCode(g), Version: int(pg.Version), VersionID: id, People: ppl})
			return nil
		})
		if err != nil {
			return nil, err
		}
		replaced[i] = len(prev.Grids) - held
	}
	return changed, nil
}

// A cutter decodes and cuts grids into their layer's store of pieces on
// every core while their rows are read, so that a load holds each grid's
// pieces, once, and not its WKB and geometry too: a province's million
// grids did not fit otherwise.
type cutter struct {
	jobs   chan cutJob
	done   chan []cutGrid
	failed cutJob // of the jobs that failed, the first by layer and grid; read once done is
	// free holds WKB buffers the workers are done with, for rows to come:
	// a buffer a row, as pgx scans, was 770 MB of garbage in a
	// province's load. Only buffers up to wkbReused bytes come back, so
	// that a district's outline does not keep megabytes for a micro-grid.
	free chan []byte
}

const wkbReused = 64 << 10

// cutQueue is how many grids wait for the cutter's workers, and as many
// again their answers: the rows are read while the workers cut.
const cutQueue = 64

type cutJob struct {
	layer, grid int
	store       *geo.PieceStore
	wkb         []byte
	pieces      *geo.Pieces
	err         error
}

// cutGrid is a grid cut: a province's million of them are held until the
// last is, in 16 bytes each where whole jobs took 72.
type cutGrid struct {
	layer, grid int32
	pieces      *geo.Pieces
}

func newCutter() *cutter {
	workers := runtime.GOMAXPROCS(0)
	// At most cutQueue buffers wait in jobs, workers are being read, and
	// one is being filled: the free list holds them all.
	c := &cutter{jobs: make(chan cutJob, cutQueue), done: make(chan []cutGrid, 1), free: make(chan []byte, cutQueue+workers+1)}
	results := make(chan cutJob, cutQueue)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mp orb.MultiPolygon // each grid's rings, read into the last one's arrays
			for j := range c.jobs {
				var err error
				mp, err = geo.PolygonsFromWKB(j.wkb, mp)
				if cap(j.wkb) <= wkbReused { // read: the next row may have it
					select {
					case c.free <- j.wkb:
					default:
					}
				}
				if err != nil {
					j.err = err
				} else {
					j.pieces, j.err = j.store.Cut(mp)
				}
				j.wkb, j.store = nil, nil
				results <- j
			}
		}()
	}
	go func() {
		wg.Wait()
		close(results)
	}()
	go func() {
		var all []cutGrid
		for j := range results {
			if j.err != nil && (c.failed.err == nil || j.layer < c.failed.layer ||
				j.layer == c.failed.layer && j.grid < c.failed.grid) {
				c.failed = j
			}
			all = append(all, cutGrid{int32(j.layer), int32(j.grid), j.pieces})
		}
		c.done <- all
	}()
	return c
}

// cut hands a grid's geometry to the workers, to cut into store. It
// copies wkb, which may be the driver's bytes of the row.
func (c *cutter) cut(layer, grid int, store *geo.PieceStore, wkb []byte) {
	var buf []byte
	select {
	case buf = <-c.free:
	default:
	}
	c.jobs <- cutJob{layer: layer, grid: grid, store: store, wkb: append(buf[:0], wkb...)}
}

// wait returns every grid cut, once the workers are done, and of the jobs
// that failed the first by layer and grid, the same whichever worker ended
// first (with a nil err when none did).
func (c *cutter) wait() ([]cutGrid, cutJob) {
	close(c.jobs)
	all := <-c.done
	return all, c.failed
}
