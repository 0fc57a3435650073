package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
)

// Locator answers point lookups from an in-memory index of every current
// grid, and as-of lookups from the grid history in PostGIS. It follows the
// change notifications of every gridmap process on the database: a changed
// layer is rebuilt beside the live index and swapped in whole, so lookups
// never wait for a rebuild and never see half of one.
type Locator struct {
	db      *DB
	index   atomic.Pointer[geo.Index]
	hits    sync.Pool
	rebuild sync.Mutex // one rebuild at a time; lookups never take it
	// replicaRestUntil: loads do not wait for the replica until then (unix
	// ns), after one found it lagging (see read).
	replicaRestUntil atomic.Int64

	// listening is closed once the first LISTEN is in place.
	listening chan struct{}
	listenOK  sync.Once

	statsMu  sync.Mutex
	rebuilds map[string]rebuildStats

	// swapped is closed and replaced each time a new index is swapped in,
	// waking WaitFor.
	swapMu  sync.Mutex
	swapped chan struct{}
}

type rebuildStats struct {
	count       int64
	last        time.Duration
	fromReplica bool
}

// IndexStats describes each layer of the index, for monitoring.
func (l *Locator) IndexStats() []gridmap.IndexStats {
	ix := l.index.Load()
	if ix == nil {
		return nil
	}
	l.statsMu.Lock()
	defer l.statsMu.Unlock()
	var out []gridmap.IndexStats
	for _, li := range ix.Layers() {
		st := li.Stats()
		r := l.rebuilds[li.ID]
		out = append(out, gridmap.IndexStats{Layer: li.ID, DataVersion: li.DataVersion, Grids: st.Grids, Pieces: st.Pieces,
			Vertices: st.Vertices, NearBytes: st.NearBytes, HugePageBytes: st.HugePageBytes,
			HugePagesShort: st.HugePagesShort, HugePagesRefused: st.HugePagesRefused, Rebuilds: r.count, LastRebuild: r.last, FromReplica: r.fromReplica})
	}
	return out
}

func (l *Locator) noteRebuild(layer string, took time.Duration, fromReplica bool) {
	l.statsMu.Lock()
	defer l.statsMu.Unlock()
	if l.rebuilds == nil {
		l.rebuilds = map[string]rebuildStats{}
	}
	r := l.rebuilds[layer]
	l.rebuilds[layer] = rebuildStats{r.count + 1, took, fromReplica}
}

// NewLocator returns a Locator over db. Call Load (or Follow) before
// lookups; until then they return EUNAVAILABLE.
func NewLocator(db *DB) *Locator {
	return &Locator{db: db, listening: make(chan struct{}), swapped: make(chan struct{}),
		hits: sync.Pool{New: func() any { return &locatorScratch{} }}}
}

type locatorScratch struct {
	hit   geo.Hit
	chain []int32
}

// Index returns the index lookups are answered from, nil before the first
// load.
func (l *Locator) Index() *geo.Index { return l.index.Load() }

// Ready returns nil once the index is loaded.
func (l *Locator) Ready() error {
	if l.index.Load() == nil {
		return gridmap.Errorf(gridmap.EUNAVAILABLE, "the lookup index is still loading")
	}
	return nil
}

// Load builds the index of every layer and swaps it in. With a replica it
// reads the replica once that has replayed the primary's WAL of now, and
// never a layer older than the index holds, else the primary (see
// Locator.read).
func (l *Locator) Load(ctx context.Context) error {
	l.rebuild.Lock()
	defer l.rebuild.Unlock()
	cur := l.index.Load()
	floor := map[string]int64{}
	if cur != nil {
		for _, li := range cur.Layers() {
			floor[li.ID] = li.DataVersion
		}
	}
	start := time.Now()
	inputs, fromReplica, err := l.read(ctx, "", cur, floor)
	if err != nil {
		return fmt.Errorf("loading the lookup index: %w", err)
	}
	// The read (which decodes and cuts the geometry) is of every layer at
	// once: each layer's rebuild counts it, and its own build.
	read := time.Since(start)
	layers := make([]*geo.LayerIndex, 0, len(inputs))
	for i := range inputs {
		var prev *geo.LayerIndex
		if cur != nil {
			prev = cur.Layer(inputs[i].ID)
		}
		start := time.Now()
		li, err := geo.BuildLayerIndex(handOver(inputs, i), 0, prev)
		if err != nil {
			return fmt.Errorf("indexing layer %s: %w", inputs[i].ID, err)
		}
		l.noteRebuild(inputs[i].ID, read+time.Since(start), fromReplica)
		layers = append(layers, li)
	}
	l.swap(geo.NewIndex(layers...))
	return nil
}

// handOver returns inputs[i] for its build, keeping only its name: the
// build lets go of the grids as it reads them.
func handOver(inputs []geo.LayerInput, i int) geo.LayerInput {
	in := inputs[i]
	inputs[i] = geo.LayerInput{ID: in.ID}
	return in
}

// swap makes ix the index lookups are answered from and wakes WaitFor.
func (l *Locator) swap(ix *geo.Index) {
	l.index.Store(ix)
	l.swapMu.Lock()
	close(l.swapped)
	l.swapped = make(chan struct{})
	l.swapMu.Unlock()
}

// WaitFor waits until the index holds each layer at least at the data
// version given (a layer missing from the index counts as behind), or
// until ctx ends. Intake uses it when boundaries committed after the
// index was built. Returns EUNAVAILABLE when ctx ends first.
func (l *Locator) WaitFor(ctx context.Context, versions map[string]int64) error {
	for {
		l.swapMu.Lock()
		next := l.swapped
		l.swapMu.Unlock()
		if l.holds(versions) {
			return nil
		}
		select {
		case <-next:
		case <-ctx.Done():
			return gridmap.Errorf(gridmap.EUNAVAILABLE, "the lookup index has not caught up with the latest boundaries; retry in a moment")
		}
	}
}

func (l *Locator) holds(versions map[string]int64) bool {
	ix := l.index.Load()
	if ix == nil {
		return false
	}
	for layer, v := range versions {
		li := ix.Layer(layer)
		if li == nil || li.DataVersion < v {
			return false
		}
	}
	return true
}

// Reload rebuilds one layer (dropping it when it no longer exists) at
// data version atLeast or newer, the version its change notice names, and
// swaps it in. With a replica it reads the replica once that holds the
// layer at atLeast and at the version the index holds, else the primary
// (see Locator.read).
func (l *Locator) Reload(ctx context.Context, layer string, atLeast int64) error {
	l.rebuild.Lock()
	defer l.rebuild.Unlock()
	cur := l.index.Load()
	if cur == nil {
		cur = geo.NewIndex()
	}
	floor := map[string]int64{}
	if li := cur.Layer(layer); li != nil {
		floor[layer] = max(atLeast, li.DataVersion)
	} else if atLeast > 0 {
		floor[layer] = atLeast
	}
	start := time.Now()
	inputs, fromReplica, err := l.read(ctx, layer, cur, floor)
	if err != nil {
		return fmt.Errorf("reloading layer %s: %w", layer, err)
	}
	if len(inputs) == 0 {
		l.swap(cur.Without(layer))
		return nil
	}
	li, err := geo.BuildLayerIndex(handOver(inputs, 0), 0, cur.Layer(layer))
	if err != nil {
		return fmt.Errorf("indexing layer %s: %w", layer, err)
	}
	l.noteRebuild(layer, time.Since(start), fromReplica)
	l.swap(cur.With(li))
	return nil
}

// refreshDelay gathers the notifications of a burst of edits into one
// rebuild per layer.
const refreshDelay = 20 * time.Millisecond

// Follow listens for change notifications and rebuilds each changed layer,
// until ctx ends. It loads the whole index after (re)connecting, since
// notifications sent while not listening are lost. Errors are logged and
// retried with backoff.
func (l *Locator) Follow(ctx context.Context) {
	l.db.retryUntilDone(ctx, "following boundary changes", l.follow)
}

// Listening is closed once Follow has its first LISTEN in place and the
// index loaded: from then on no committed change is missed.
func (l *Locator) Listening() <-chan struct{} { return l.listening }

func (l *Locator) follow(ctx context.Context) error {
	conn, err := l.db.listenConn(ctx, ChangeChannel)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := l.Load(ctx); err != nil {
		return err
	}
	l.listenOK.Do(func() { close(l.listening) })
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		pending := map[string]int64{} // the newest data version noticed of each layer
		all := false
		note := func(payload string) {
			var ch gridmap.Change
			if json.Unmarshal([]byte(payload), &ch) != nil || ch.Layer == "" {
				all = true
				return
			}
			pending[ch.Layer] = max(pending[ch.Layer], ch.DataVersion)
		}
		note(n.Payload)
		// Gather the rest of a burst without waiting long.
		for {
			wctx, cancel := context.WithTimeout(ctx, refreshDelay)
			n, err := conn.WaitForNotification(wctx)
			cancel()
			if err != nil {
				// A timeout leaves the connection open: the burst is over.
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if conn.IsClosed() {
					return err
				}
				break
			}
			note(n.Payload)
		}
		if all {
			if err := l.Load(ctx); err != nil {
				return err
			}
			continue
		}
		for layer, version := range pending {
			start := time.Now()
			if err := l.Reload(ctx, layer, version); err != nil {
				return err
			}
			l.db.Logger.Debug("lookup index refreshed", "layer", layer, "took_ms", time.Since(start).Milliseconds())
		}
	}
}

// Lookup answers q from the index, or from history when q.At is set.
func (l *Locator) Lookup(ctx context.Context, q gridmap.LookupQuery, dst *gridmap.LookupAnswer) error {
	dst.Reset()
	dst.Lon, dst.Lat = q.Lon, q.Lat
	if err := checkQuery(q); err != nil {
		return err
	}
	if q.At != nil {
		return l.lookupAt(ctx, q, dst)
	}
	ix := l.index.Load()
	if ix == nil {
		return gridmap.Errorf(gridmap.EUNAVAILABLE, "the lookup index is still loading; retry in a moment")
	}
	sc := l.hits.Get().(*locatorScratch)
	defer l.hits.Put(sc)
	if q.Layer != "" {
		li := ix.Layer(q.Layer)
		if li == nil {
			return gridmap.Errorf(gridmap.ENOTFOUND, "layer %q does not exist", q.Layer)
		}
		l.answer(li, q, sc, dst)
		return nil
	}
	for _, li := range ix.Layers() {
		l.answer(li, q, sc, dst)
	}
	return nil
}

func (l *Locator) answer(li *geo.LayerIndex, q gridmap.LookupQuery, sc *locatorScratch, dst *gridmap.LookupAnswer) {
	tol := li.ToleranceM
	if q.ToleranceM != nil {
		tol = *q.ToleranceM
	}
	h := &sc.hit
	li.Lookup(q.Lon, q.Lat, tol, q.AccuracyM, h)
	la := dst.AddLayer(li.ID, li.DataVersion)
	if h.Owner >= 0 {
		sc.chain = li.Chain(h.Owner, sc.chain[:0])
		for _, g := range sc.chain {
			la.Chain = append(la.Chain, gridRef(li, g))
		}
		la.People = li.People(h.Owner)
	} else if h.Nearest >= 0 {
		dst.SetNearest(la, gridmap.NearestGrid{GridRef: gridRef(li, h.Nearest), DistanceM: roundCM(h.NearestM)})
	}
	for _, c := range h.CoOwners {
		la.CoOwners = append(la.CoOwners, gridmap.CoOwner{GridRef: gridRef(li, c.Grid), DistanceM: roundCM(c.DistM), Reason: c.Reason})
	}
}

func gridRef(li *geo.LayerIndex, g int32) gridmap.GridRef {
	x := &li.Grids[g]
	return gridmap.GridRef{Code: x.Code, Name: x.Name, Level: li.Level(g), Version: int(x.Version), VersionID: x.VersionID}
}

// roundCM rounds a distance to centimetres: finer digits are noise.
func roundCM(m float64) float64 { return math.Round(m*100) / 100 }

// checkQuery returns EINVALID for a point or distance no lookup can use.
func checkQuery(q gridmap.LookupQuery) error {
	if err := gridmap.CheckLonLat(q.Lon, q.Lat); err != nil {
		return err
	}
	switch {
	case q.ToleranceM != nil && (math.IsNaN(*q.ToleranceM) || *q.ToleranceM < 0 || *q.ToleranceM > 10000):
		return gridmap.Errorf(gridmap.EINVALID, "tolerance_m %v must be between 0 and 10000 metres", *q.ToleranceM)
	case math.IsNaN(q.AccuracyM) || q.AccuracyM < 0 || q.AccuracyM > 10000:
		return gridmap.Errorf(gridmap.EINVALID, "accuracy_m %v must be between 0 and 10000 metres", q.AccuracyM)
	}
	return nil
}

// ChainOf returns the current chain (root first) of a grid from the index,
// nil when the index does not hold it.
func (l *Locator) ChainOf(layer, code string) []gridmap.GridRef {
	ix := l.index.Load()
	if ix == nil {
		return nil
	}
	li := ix.Layer(layer)
	if li == nil {
		return nil
	}
	g := li.GridByCode(code)
	if g < 0 {
		return nil
	}
	var out []gridmap.GridRef
	for _, c := range li.Chain(g, nil) {
		out = append(out, gridRef(li, c))
	}
	return out
}
