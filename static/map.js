// The map: the grids of one layer with their names and the reports on top,
// over no basemap (it works offline) or the deployment's basemap style.
// All colours and widths by meaning live in `style`, named once.

// MapLibre loads while the page asks the API what to show (the library is
// a megabyte to parse), and its workers start before the map is made.
const library = import('/vendor/maplibre-gl/maplibre-gl.mjs').then((lib) => {
  lib.prewarm();
  return lib;
});

// style: colours by meaning. Grid lines by depth (0 = coarsest: the
// district, then streets, communities, grids, microgrids).
export const style = {
  background: '#eef1f4',
  gridFill: '#5b7fa6',
  gridFillOpacity: 0.04,
  depthColour: ['#1b2a3a', '#1f3f66', '#3f6896', '#7f9cbd', '#b4c4d6'],
  depthWidth: [3.2, 2.4, 1.4, 0.8, 0.4],
  // Names: larger for coarser levels; a halo keeps them legible over lines.
  labelSize: [16, 14, 12.5, 11.5, 10.5],
  labelColour: ['#13202e', '#1f3f66', '#2c4f78', '#4a6585', '#5f7590'],
  labelHalo: '#ffffff',
  // Fonts the browser draws names with (no glyph server: offline).
  fonts: ['Noto Sans CJK SC', 'sans-serif'],
  highlight: '#e8590c',
  status: {
    reported: '#6b7280',
    registered: '#2563eb',
    dispatched: '#7c3aed',
    in_progress: '#d97706',
    resolved: '#0d9488',
    verified: '#16a34a',
    closed: '#9ca3af',
    rejected: '#9ca3af',
    suspended: '#a16207',
  },
  cluster: '#1f5fbf',
  clusterUrgent: '#c2410c',
  urgent: '#dc2626',
  overdue: '#ef4444', // the halo of a report past its deadline
  clusterText: '#ffffff',
  tierText: '#1d2733',
  overlay: '#9333ea',
  // Grids the indicators flag (threshold or surge), filled and outlined.
  flagged: '#b42318',
  flaggedFillOpacity: 0.16,
  // Hotspot bins by how many reports they hold: light to dark.
  hotspotRamp: [1, '#fde68a', 5, '#fb923c', 20, '#dc2626', 60, '#7f1d1d'],
  hotspotOpacity: 0.55,
  // On-duty grid workers: a person marker, faded as they fall silent, and
  // the circle their position may be off by (drawn close up).
  worker: '#0f766e',
  workerText: '#0b3b36',
  accuracy: '#14b8a6',
  accuracyOpacity: 0.14,
  accuracyMinZoom: 15,
  // A worker's track: stretches solid, the gaps between them dashed.
  track: '#0369a1',
  trackGap: '#94a3b8',
  trackMarker: '#f59e0b',
  // Patrol coverage of a day, by share of the grid covered: a step per
  // legend entry, red (nothing) to green (all).
  coverageSteps: [[0, '#ef4444'], [0.25, '#f97316'], [0.5, '#facc15'], [0.75, '#a3e635'], [0.9, '#16a34a']],
  coverageOpacity: 0.45,
  // Grids nobody patrolled for days, and grids without a Party organisation.
  idle: '#7c2d12',
  party: '#c026d3',
};

export const GRIDS = 'grids';
export const REPORTS = 'reports';
export const HOTSPOTS = 'hotspots';
export const WORKERS = 'workers';
export const TRACK = 'track';
// The playback marker, a source of its own: moving it every frame does not
// send the whole track to the map's worker again.
export const TRACK_MARKER = 'track-marker';
export const reportLayers = ['report-clusters', 'report-points'];
export const workerLayers = ['worker-icons'];

const origin = location.origin;

function byDepth(values) {
  const expr = ['match', ['to-number', ['get', 'depth'], 9]];
  values.forEach((v, i) => expr.push(i, v));
  expr.push(values[values.length - 1]);
  return expr;
}

function reportsURL({ status, category, since } = {}) {
  const q = new URLSearchParams();
  if (status && status !== 'all') q.set('status', status);
  if (category) q.set('category', category);
  if (since) q.set('since', since);
  const query = q.toString();
  return `${origin}/tiles/reports/{z}/{x}/{y}.mvt${query ? `?${query}` : ''}`;
}

// hotspotsURL is the hotspot tiles' address for a category and a window
// (since at or after, until before; empty for unbounded).
function hotspotsURL({ category, since, until } = {}) {
  const q = new URLSearchParams();
  if (category) q.set('category', category);
  if (since) q.set('since', since);
  if (until) q.set('until', until);
  const query = q.toString();
  return `${origin}/tiles/hotspots/{z}/{x}/{y}.mvt${query ? `?${query}` : ''}`;
}

// basemapStyle fetches the deployment's basemap style (a MapLibre style
// URL); null when there is none or it cannot be read (the map then works
// without one).
export async function basemapStyle(url) {
  if (!url) return null;
  try {
    const res = await fetch(url, { credentials: 'omit', signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return await res.json();
  } catch (err) {
    console.warn(`basemap style ${url} could not be read (${err.message}); the map shows without it`);
    return null;
  }
}

// under puts a basemap style's sources and layers beneath ours, their ids
// prefixed so they cannot clash.
function under(base, ours) {
  if (!base) return ours;
  const sources = { ...ours.sources };
  for (const [id, src] of Object.entries(base.sources ?? {})) sources[`base:${id}`] = src;
  const layers = (base.layers ?? []).map((l) => (l.source ? { ...l, id: `base:${l.id}`, source: `base:${l.source}` } : { ...l, id: `base:${l.id}` }));
  const style = { ...ours, sources, layers: [...layers, ...ours.layers.filter((l) => l.id !== 'background')] };
  if (base.glyphs) style.glyphs = base.glyphs;
  if (base.sprite) style.sprite = base.sprite;
  return style;
}

// withReports is style, or style without the reports when show is false.
function withReports(show, style) {
  if (show) return style;
  const { [REPORTS]: _, ...sources } = style.sources;
  return { ...style, sources, layers: style.layers.filter((l) => l.source !== REPORTS) };
}

// createMap resolves to the map for layer (an entry of /v1/layers) with its
// TileJSON, showing reports filtered by status, category and since (none
// with reports false), over basemap (a style from basemapStyle, or null).
export async function createMap(container, layer, tilejson, { basemap, reports = true, ...filters } = {}) {
  const maplibregl = await library;
  const b = tilejson?.bounds;
  const map = new maplibregl.Map({
    container,
    attributionControl: false,
    dragRotate: false,
    pitchWithRotate: false,
    bounds: b ? [[b[0], b[1]], [b[2], b[3]]] : undefined,
    fitBoundsOptions: { padding: 20 },
    center: b ? undefined : [120.08, 30.24],
    zoom: b ? undefined : 11,
    style: under(basemap, withReports(reports, {
      version: 8,
      sources: {
        [GRIDS]: {
          type: 'vector',
          tiles: [`${origin}/tiles/${encodeURIComponent(layer.id)}/{z}/{x}/{y}.mvt`],
          minzoom: tilejson?.minzoom ?? 0,
          maxzoom: tilejson?.maxzoom ?? 16,
          bounds: b,
          // Grids are known by code: patrol coverage is set on them as feature state.
          promoteId: 'code',
        },
        [REPORTS]: { type: 'vector', tiles: [reportsURL(filters)], minzoom: 0, maxzoom: 22 },
      },
      layers: [
        { id: 'background', type: 'background', paint: { 'background-color': style.background } },
        {
          id: 'grid-fill', type: 'fill', source: GRIDS, 'source-layer': 'grids',
          paint: { 'fill-color': style.gridFill, 'fill-opacity': style.gridFillOpacity },
        },
        {
          id: 'grid-flagged', type: 'fill', source: GRIDS, 'source-layer': 'grids',
          filter: ['in', ['get', 'code'], ['literal', []]],
          paint: { 'fill-color': style.flagged, 'fill-opacity': style.flaggedFillOpacity },
        },
        {
          id: 'grid-flagged-lines', type: 'line', source: GRIDS, 'source-layer': 'grids',
          filter: ['in', ['get', 'code'], ['literal', []]],
          paint: { 'line-color': style.flagged, 'line-width': 2.2, 'line-dasharray': [2, 1] },
        },
        {
          id: 'grid-lines', type: 'line', source: GRIDS, 'source-layer': 'grids',
          layout: { 'line-sort-key': ['-', 9, ['to-number', ['get', 'depth'], 9]], 'line-join': 'round' },
          paint: { 'line-color': byDepth(style.depthColour), 'line-width': byDepth(style.depthWidth) },
        },
        {
          id: 'grid-highlight', type: 'line', source: GRIDS, 'source-layer': 'grids',
          filter: ['in', ['get', 'code'], ['literal', []]],
          paint: { 'line-color': style.highlight, 'line-width': 3.5 },
        },
        {
          id: 'grid-labels', type: 'symbol', source: GRIDS, 'source-layer': 'labels',
          layout: {
            'text-field': ['coalesce', ['get', 'name'], ['get', 'code']],
            'text-font': style.fonts,
            'text-size': byDepth(style.labelSize),
            'symbol-sort-key': ['to-number', ['get', 'depth'], 9],
            'text-max-width': 8,
            'text-padding': 4,
          },
          paint: { 'text-color': byDepth(style.labelColour), 'text-halo-color': style.labelHalo, 'text-halo-width': 1.4 },
        },
        {
          id: 'report-clusters', type: 'circle', source: REPORTS, 'source-layer': 'reports',
          filter: ['has', 'count'],
          paint: {
            'circle-color': ['case', ['>', ['to-number', ['get', 'urgent'], 0], 0], style.clusterUrgent, style.cluster],
            'circle-opacity': 0.75,
            'circle-radius': ['interpolate', ['linear'], ['sqrt', ['to-number', ['get', 'count'], 1]], 1, 6, 10, 22, 30, 36],
            'circle-stroke-color': ['case', ['>', ['to-number', ['get', 'overdue'], 0], 0], style.overdue, '#ffffff'],
            'circle-stroke-width': ['case', ['>', ['to-number', ['get', 'overdue'], 0], 0], 3, 1.5],
          },
        },
        {
          id: 'report-cluster-counts', type: 'symbol', source: REPORTS, 'source-layer': 'reports',
          filter: ['has', 'count'],
          layout: {
            'text-field': ['to-string', ['get', 'count']],
            'text-font': style.fonts,
            'text-size': 11.5,
            'text-allow-overlap': true,
          },
          paint: { 'text-color': style.clusterText },
        },
        {
          id: 'report-overdue', type: 'circle', source: REPORTS, 'source-layer': 'reports',
          filter: ['all', ['!', ['has', 'count']], ['to-boolean', ['get', 'overdue']]],
          paint: { 'circle-color': style.overdue, 'circle-opacity': 0.3, 'circle-radius': 13, 'circle-stroke-color': style.overdue, 'circle-stroke-width': 1 },
        },
        {
          id: 'report-points', type: 'circle', source: REPORTS, 'source-layer': 'reports',
          filter: ['!', ['has', 'count']],
          paint: {
            'circle-color': ['match', ['get', 'status'], ...Object.entries(style.status).flat(), '#444'],
            'circle-radius': 7,
            'circle-stroke-color': ['case', ['to-boolean', ['get', 'urgent']], style.urgent, '#ffffff'],
            'circle-stroke-width': ['case', ['to-boolean', ['get', 'urgent']], 3, 1.5],
          },
        },
      ],
    })),
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-left');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left');
  return map;
}

export const OVERLAY = 'overlay';

// showOverlay draws a departmental layer's grids (police beats) over the
// comprehensive ones as dashed lines, or hides them.
export function showOverlay(map, layer, on) {
  if (!map.getSource(OVERLAY)) {
    map.addSource(OVERLAY, { type: 'vector', tiles: [`${origin}/tiles/${encodeURIComponent(layer.id)}/{z}/{x}/{y}.mvt`], maxzoom: 16 });
    map.addLayer({
      id: 'overlay-lines', type: 'line', source: OVERLAY, 'source-layer': 'grids',
      paint: { 'line-color': style.overlay, 'line-width': 1.6, 'line-dasharray': [3, 2] },
    }, 'grid-highlight');
  }
  map.setLayoutProperty('overlay-lines', 'visibility', on ? 'visible' : 'none');
}

// refresh reloads a source's tiles without moving the view.
export function refresh(map, source) {
  if (typeof map.refreshTiles === 'function') {
    map.refreshTiles(source);
    return;
  }
  const src = map.getSource(source);
  src?.setTiles?.(src.tiles ?? src._options?.tiles ?? []);
}

// showReportsWith sets the filters of the reports tiles: status, category
// and since.
export function showReportsWith(map, filters) {
  map.getSource(REPORTS)?.setTiles([reportsURL(filters)]);
}

// highlight outlines the grids with these codes (none for []).
export function highlight(map, codes) {
  map.setFilter('grid-highlight', ['in', ['get', 'code'], ['literal', codes ?? []]]);
}

// flag fills and outlines the grids with these codes (none for []).
export function flag(map, codes) {
  const filter = ['in', ['get', 'code'], ['literal', codes ?? []]];
  map.setFilter('grid-flagged', filter);
  map.setFilter('grid-flagged-lines', filter);
}

let hotspotsTiles = ''; // the hotspot tiles' address now

// showHotspots draws report density (the hotspots tileset, bins filled by
// their count) under the grid lines for a category and window, or hides
// it; the tiles follow filters each time it is called.
export function showHotspots(map, filters, on) {
  if (!map.getSource(HOTSPOTS)) {
    if (!on) return;
    hotspotsTiles = hotspotsURL(filters);
    map.addSource(HOTSPOTS, { type: 'vector', tiles: [hotspotsTiles], minzoom: 0, maxzoom: 16 });
    map.addLayer({
      id: 'hotspot-fill', type: 'fill', source: HOTSPOTS, 'source-layer': 'hotspots',
      paint: {
        'fill-color': ['interpolate', ['linear'], ['to-number', ['get', 'count'], 0], ...style.hotspotRamp],
        'fill-opacity': style.hotspotOpacity,
      },
    }, 'grid-flagged');
  } else if (on && hotspotsURL(filters) !== hotspotsTiles) {
    hotspotsTiles = hotspotsURL(filters);
    map.getSource(HOTSPOTS).setTiles([hotspotsTiles]);
  }
  map.setLayoutProperty('hotspot-fill', 'visibility', on ? 'visible' : 'none');
}

// bbox is the view as minLon,minLat,maxLon,maxLat.
export function bbox(map) {
  const b = map.getBounds();
  const f = (n) => n.toFixed(6);
  return [f(Math.max(-180, b.getWest())), f(Math.max(-85, b.getSouth())), f(Math.min(180, b.getEast())), f(Math.min(85, b.getNorth()))].join(',');
}

// showTiers labels single reports with their tier (short names by tier,
// in the page's language); reports at the grid tier carry none.
export function showTiers(map, names) {
  const layer = {
    id: 'report-tiers', type: 'symbol', source: REPORTS, 'source-layer': 'reports',
    filter: ['all', ['!', ['has', 'count']], ['in', ['get', 'tier'], ['literal', Object.keys(names)]]],
    layout: {
      'text-field': ['match', ['get', 'tier'], ...Object.entries(names).flat(), ''],
      'text-font': style.fonts,
      'text-size': 11,
      'text-offset': [0, -1.5],
      'text-allow-overlap': true,
    },
    paint: { 'text-color': style.tierText, 'text-halo-color': '#ffffff', 'text-halo-width': 1.5 },
  };
  if (map.getLayer(layer.id)) map.removeLayer(layer.id);
  map.addLayer(layer);
}

// ---- workers, tracks, patrol coverage ----

// personIcon draws the worker marker (a head and shoulders in a disc) as
// an image the map can place; no sprite server is needed.
function personIcon() {
  const size = 48;
  const c = document.createElement('canvas');
  c.width = size;
  c.height = size;
  const g = c.getContext('2d');
  g.fillStyle = style.worker;
  g.strokeStyle = '#ffffff';
  g.lineWidth = 4;
  g.beginPath();
  g.arc(24, 24, 21, 0, 2 * Math.PI);
  g.fill();
  g.stroke();
  g.fillStyle = '#ffffff';
  g.beginPath();
  g.arc(24, 17, 7, 0, 2 * Math.PI);
  g.fill();
  g.beginPath();
  g.ellipse(24, 36, 12, 9, 0, Math.PI, 2 * Math.PI);
  g.fill();
  return g.getImageData(0, 0, size, size);
}

const empty = () => ({ type: 'FeatureCollection', features: [] });

// metresPerPixelZ0 is how many metres one pixel covers at zoom 0 on the
// equator (512-pixel tiles); accuracy circles scale by 2^zoom from it.
const metresPerPixelZ0 = 40075016.686 / 512;

function addWorkerLayers(map) {
  if (map.getSource(WORKERS)) return;
  if (!map.hasImage('worker')) map.addImage('worker', personIcon(), { pixelRatio: 2 });
  map.addSource(WORKERS, { type: 'geojson', data: empty() });
  // px0 is the accuracy radius in pixels at zoom 0, so that the circle
  // keeps its size on the ground as the map zooms.
  const px = (z) => ['*', ['to-number', ['get', 'px0'], 0], 2 ** z];
  map.addLayer({
    id: 'worker-accuracy', type: 'circle', source: WORKERS, minzoom: style.accuracyMinZoom,
    paint: {
      'circle-color': style.accuracy,
      'circle-opacity': ['*', style.accuracyOpacity, ['to-number', ['get', 'fade'], 1]],
      'circle-stroke-color': style.accuracy,
      'circle-stroke-width': 1,
      'circle-stroke-opacity': ['*', 0.5, ['to-number', ['get', 'fade'], 1]],
      'circle-radius': ['interpolate', ['exponential', 2], ['zoom'], style.accuracyMinZoom, px(style.accuracyMinZoom), 22, px(22)],
    },
  });
  map.addLayer({
    id: 'worker-icons', type: 'symbol', source: WORKERS,
    layout: {
      'icon-image': 'worker',
      'icon-allow-overlap': true,
      'icon-ignore-placement': true,
      'text-field': ['get', 'name'],
      'text-font': style.fonts,
      'text-size': 12,
      'text-offset': [0, 1.3],
      'text-anchor': 'top',
      'text-optional': true,
    },
    paint: {
      'icon-opacity': ['to-number', ['get', 'fade'], 1],
      'text-opacity': ['to-number', ['get', 'fade'], 1],
      'text-color': style.workerText,
      'text-halo-color': '#ffffff',
      'text-halo-width': 1.5,
    },
  });
}

// setWorkers draws the on-duty workers: each { worker, name, lon, lat,
// accuracy_m, fade } (fade 1 = fresh, towards 0 as the worker falls
// silent); on shows or hides them.
export function setWorkers(map, workers, on = true) {
  addWorkerLayers(map);
  map.getSource(WORKERS).setData({
    type: 'FeatureCollection',
    features: workers.map((w) => ({
      type: 'Feature',
      geometry: { type: 'Point', coordinates: [w.lon, w.lat] },
      properties: {
        worker: w.worker,
        name: w.name || w.worker,
        fade: w.fade ?? 1,
        px0: (w.accuracy_m ?? 0) / (metresPerPixelZ0 * Math.cos((w.lat * Math.PI) / 180)),
      },
    })),
  });
  for (const id of ['worker-accuracy', 'worker-icons']) map.setLayoutProperty(id, 'visibility', on ? 'visible' : 'none');
}

function addTrackLayers(map) {
  if (map.getSource(TRACK)) return;
  map.addSource(TRACK, { type: 'geojson', data: empty() });
  // Under the workers' markers when those are drawn.
  const before = map.getLayer('worker-accuracy') ? 'worker-accuracy' : undefined;
  map.addLayer({
    id: 'track-gaps', type: 'line', source: TRACK, filter: ['==', ['get', 'kind'], 'gap'],
    paint: { 'line-color': style.trackGap, 'line-width': 2, 'line-dasharray': [2, 2] },
  }, before);
  map.addLayer({
    id: 'track-lines', type: 'line', source: TRACK, filter: ['==', ['get', 'kind'], 'stretch'],
    layout: { 'line-join': 'round', 'line-cap': 'round' },
    paint: { 'line-color': style.track, 'line-width': 3.5, 'line-opacity': 0.85 },
  }, before);
  // A stretch of one point has no line to draw (a line of one point, or of
  // one point twice, draws nothing): a dot in the line's colour instead.
  map.addLayer({
    id: 'track-points', type: 'circle', source: TRACK, filter: ['==', ['get', 'kind'], 'point'],
    paint: { 'circle-color': style.track, 'circle-radius': 4, 'circle-opacity': 0.85, 'circle-stroke-color': '#ffffff', 'circle-stroke-width': 1 },
  }, before);
  map.addSource(TRACK_MARKER, { type: 'geojson', data: empty() });
  map.addLayer({
    id: 'track-marker', type: 'circle', source: TRACK_MARKER,
    paint: { 'circle-color': style.trackMarker, 'circle-radius': 8, 'circle-stroke-color': '#ffffff', 'circle-stroke-width': 2.5 },
  }, before);
}

// setTrack draws a track: stretches (lists of [lon, lat]) as solid lines,
// or as a dot for a stretch of one point (kind 'point'), and gaps (pairs
// of [lon, lat]) dashed; all empty clears it.
export function setTrack(map, { stretches = [], gaps = [] } = {}) {
  addTrackLayers(map);
  const features = [
    ...gaps.map((coordinates) => ({ type: 'Feature', geometry: { type: 'LineString', coordinates }, properties: { kind: 'gap' } })),
    ...stretches.filter((c) => c.length > 0).map((c) => (c.length === 1
      ? { type: 'Feature', geometry: { type: 'Point', coordinates: c[0] }, properties: { kind: 'point' } }
      : { type: 'Feature', geometry: { type: 'LineString', coordinates: c }, properties: { kind: 'stretch' } })),
  ];
  map.getSource(TRACK).setData({ type: 'FeatureCollection', features });
}

// setTrackMarker puts the playback marker at marker ([lon, lat]), or
// takes it away (null).
export function setTrackMarker(map, marker) {
  addTrackLayers(map);
  const features = marker ? [{ type: 'Feature', geometry: { type: 'Point', coordinates: marker }, properties: { kind: 'marker' } }] : [];
  map.getSource(TRACK_MARKER).setData({ type: 'FeatureCollection', features });
}

function addPatrolLayers(map) {
  if (map.getLayer('grid-coverage')) return;
  const steps = style.coverageSteps;
  map.addLayer({
    id: 'grid-coverage', type: 'fill', source: GRIDS, 'source-layer': 'grids',
    filter: ['==', ['get', 'level'], ''],
    paint: {
      // -1: no figure for the grid that day, left unfilled.
      'fill-color': ['step', ['to-number', ['coalesce', ['feature-state', 'coverage'], -1]], 'rgba(0,0,0,0)', ...steps.flat()],
      'fill-opacity': style.coverageOpacity,
    },
  }, 'grid-flagged');
  map.addLayer({
    id: 'grid-idle', type: 'line', source: GRIDS, 'source-layer': 'grids',
    filter: ['in', ['get', 'code'], ['literal', []]],
    paint: { 'line-color': style.idle, 'line-width': 2.6, 'line-dasharray': [1.5, 1] },
  }, 'grid-highlight');
  map.addLayer({
    id: 'grid-party', type: 'line', source: GRIDS, 'source-layer': 'grids',
    filter: ['in', ['get', 'code'], ['literal', []]],
    paint: { 'line-color': style.party, 'line-width': 2.4, 'line-dasharray': [0.6, 1.2] },
  }, 'grid-highlight');
}

// coverageLegend is the legend of the coverage layer: from each share up,
// its colour.
export const coverageLegend = () => style.coverageSteps.map(([at, colour]) => ({ at, colour }));

// showCoverage colours the grids of level by coverage ({code: 0..1}) as
// feature state, or hides the colouring with on false.
export function showCoverage(map, level, coverage, on) {
  addPatrolLayers(map);
  map.removeFeatureState({ source: GRIDS, sourceLayer: 'grids' });
  if (on) {
    for (const [code, value] of Object.entries(coverage ?? {})) map.setFeatureState({ source: GRIDS, sourceLayer: 'grids', id: code }, { coverage: value });
  }
  map.setFilter('grid-coverage', ['==', ['get', 'level'], on ? level : '']);
}

// outlineIdle outlines the grids not patrolled for days (none for []).
export function outlineIdle(map, codes) {
  addPatrolLayers(map);
  map.setFilter('grid-idle', ['in', ['get', 'code'], ['literal', codes ?? []]]);
}

// outlineParty outlines the grids without a Party organisation (none for []).
export function outlineParty(map, codes) {
  addPatrolLayers(map);
  map.setFilter('grid-party', ['in', ['get', 'code'], ['literal', codes ?? []]]);
}
