package tiles

import (
	"container/list"
	"slices"
	"sync"

	"github.com/gridmap/gridmap/geo"
	"github.com/paulmach/orb"
)

// Key names a cached tile: tileset, tile and the canonical filter.
type Key struct {
	Tileset string
	Tile    Tile
	Filter  string
}

// Entry is a cached tile, gzip-compressed as it is sent.
type Entry struct {
	Gzip    []byte
	ETag    string
	RawSize int // bytes before compression
}

func (e *Entry) cost() int64 { return int64(len(e.Gzip)+len(e.ETag)) + 200 }

// Cache holds encoded tiles up to a number of bytes, dropping the least
// recently used first. An edit drops only the tiles whose area (with the
// tile buffer) meets the edit's box; a tile rendered while an edit that
// touches it was announced is not stored, so the cache never keeps what the
// database no longer says.
type Cache struct {
	mu     sync.Mutex
	max    int64
	size   int64
	lru    *list.List // of *cached, most recent first
	items  map[Key]*list.Element
	byZoom map[zoomKey]map[Key]struct{}
	// recent invalidations, for stores racing with them
	seq    uint64
	recent []invalidation
}

type cached struct {
	key   Key
	entry *Entry
}

type zoomKey struct {
	tileset string
	z       int
}

// invalidation is one dropped area; nil boxes are the whole tileset.
type invalidation struct {
	seq     uint64
	tileset string
	boxes   [][4]float64 // Web Mercator
}

// recentInvalidations is how many invalidations a racing store is checked
// against; a render that outlives more than this many is not stored.
const recentInvalidations = 1024

// NewCache returns a cache of at most maxBytes.
func NewCache(maxBytes int64) *Cache {
	return &Cache{max: maxBytes, lru: list.New(), items: map[Key]*list.Element{}, byZoom: map[zoomKey]map[Key]struct{}{}}
}

// Get returns a cached tile.
func (c *Cache) Get(k Key) (*Entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(el)
	return el.Value.(*cached).entry, true
}

// Mark returns the point in the invalidation sequence a render starts at;
// pass it to Put.
func (c *Cache) Mark() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seq
}

// Put stores a tile rendered from a read that started at mark, unless an
// invalidation since then touched it. Reports whether it was stored.
func (c *Cache) Put(k Key, e *Entry, mark uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.touched(k, mark) {
		return false
	}
	if e.cost() > c.max/8 {
		return false // one tile may not push out a large part of the cache
	}
	if el, ok := c.items[k]; ok {
		c.remove(el)
	}
	el := c.lru.PushFront(&cached{key: k, entry: e})
	c.items[k] = el
	zk := zoomKey{k.Tileset, k.Tile.Z}
	if c.byZoom[zk] == nil {
		c.byZoom[zk] = map[Key]struct{}{}
	}
	c.byZoom[zk][k] = struct{}{}
	c.size += e.cost()
	for c.size > c.max {
		c.remove(c.lru.Back())
	}
	return true
}

// Touched tells whether an invalidation since mark touched tile k (or too
// many happened to tell).
func (c *Cache) Touched(k Key, mark uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.touched(k, mark)
}

func (c *Cache) touched(k Key, mark uint64) bool {
	if c.seq-mark > uint64(len(c.recent)) {
		return true // too much happened meanwhile to tell
	}
	for _, inv := range c.recent {
		if inv.seq > mark && (inv.tileset == "" || inv.tileset == k.Tileset && touches(k.Tile, inv.boxes)) {
			return true
		}
	}
	return false
}

func (c *Cache) remove(el *list.Element) {
	it := el.Value.(*cached)
	c.lru.Remove(el)
	delete(c.items, it.key)
	zk := zoomKey{it.key.Tileset, it.key.Tile.Z}
	delete(c.byZoom[zk], it.key)
	if len(c.byZoom[zk]) == 0 {
		delete(c.byZoom, zk)
	}
	c.size -= it.entry.cost()
}

// Invalidate drops every tile of tileset whose area meets one of boxes
// (lon/lat: minLon, minLat, maxLon, maxLat); nil boxes drop the whole
// tileset. Returns how many tiles were dropped.
func (c *Cache) Invalidate(tileset string, boxes [][4]float64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if boxes != nil {
		boxes = mercatorBoxes(boxes)
	}
	c.record(invalidation{tileset: tileset, boxes: boxes})
	dropped := 0
	for zk, keys := range c.byZoom {
		if zk.tileset != tileset {
			continue
		}
		for k := range keys {
			if boxes == nil || touches(k.Tile, boxes) {
				c.remove(c.items[k])
				dropped++
			}
		}
	}
	return dropped
}

// record logs an invalidation for stores racing with it, keeping at least
// the latest recentInvalidations.
func (c *Cache) record(inv invalidation) {
	c.seq++
	inv.seq = c.seq
	c.recent = append(c.recent, inv)
	if len(c.recent) > 2*recentInvalidations {
		// Copied once every recentInvalidations records, not each time.
		c.recent = slices.Clone(c.recent[len(c.recent)-recentInvalidations:])
	}
}

// InvalidateAll drops every tile.
func (c *Cache) InvalidateAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	// An empty tileset name in the log stands for all of them.
	c.record(invalidation{})
	c.lru.Init()
	clear(c.items)
	clear(c.byZoom)
	c.size = 0
}

// mercatorBoxes returns lon/lat boxes in Web Mercator metres.
func mercatorBoxes(boxes [][4]float64) [][4]float64 {
	out := make([][4]float64, len(boxes))
	for i, b := range boxes {
		lo := geo.ToWebMercator(orb.Point{b[0], b[1]})
		hi := geo.ToWebMercator(orb.Point{b[2], b[3]})
		out[i] = [4]float64{lo[0], lo[1], hi[0], hi[1]}
	}
	return out
}

// touches reports whether a tile, with its buffer, meets one of boxes (Web
// Mercator; nil: everything).
func touches(t Tile, boxes [][4]float64) bool {
	if boxes == nil {
		return true
	}
	b := t.Bound()
	m := (b[2] - b[0]) * Buffer / Extent
	for _, x := range boxes {
		if x[0] <= b[2]+m && x[2] >= b[0]-m && x[1] <= b[3]+m && x[3] >= b[1]-m {
			return true
		}
	}
	return false
}

// Stats says how full the cache is.
func (c *Cache) Stats() (tiles int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items), c.size
}
