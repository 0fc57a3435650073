// Package tiles addresses vector tiles (z/x/y in EPSG:3857), describes
// tilesets as TileJSON, and holds the per-zoom generalisation rules and the
// cache that an edit invalidates tile by tile.
package tiles
