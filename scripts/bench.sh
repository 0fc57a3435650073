#!/usr/bin/env bash
# Runs gridmap's benchmarks and prints each hot path against a baseline
# measured in the same run, as a ratio: wall-clock figures on a shared
# machine drift, ratios measured side by side much less. At the end it prints
# every figure in one table and writes the same to bench/latest.json, which
# `make bench-compare` compares with bench/baseline.json.
#
# BENCH_ONLY, a regexp matched against each group's "package pattern" (as in
# "./geo/ FeatureReader"), runs only the groups it matches; BENCH_ONLY=quick
# runs the few that need no database and take seconds. Figures of the groups
# left out are recorded as not measured.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
export LC_NUMERIC=C
out=$(mktemp)     # go test output
figures=$(mktemp) # one figure a line, tab-separated, as figure() records it
trap 'rm -f "$out" "$figures"' EXIT
# The run as bench/latest.json records it: when it started, and the commit
# measured ("-dirty" when tracked files differ from it).
when=$(date -u +%Y-%m-%dT%H:%M:%SZ)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ "$commit" != unknown ] && [ -n "$(git --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit+=-dirty
fi

# The months kept are the months line's own (below): the other runs are on a
# new database.
unset GRIDMAP_BENCH_REPORT_MONTHS
only=${BENCH_ONLY:-}
if [ "$only" = quick ]; then
  only='^\./(geo|dispatch)/ (FeatureReader|AppendGeoJSON|Assign|WorkingLeft)$'
fi
[ -n "$only" ] && echo "BENCH_ONLY: running only the groups matching $only" >&2
# bench PKG PATTERN [go test flags]: one group of benchmarks.
bench() {
  local pkg=$1 pattern=$2
  shift 2
  if [ -n "$only" ] && ! grep -qE -- "$only" <<<"$pkg $pattern"; then return 0; fi
  go test -run '^$' -bench "$pattern" "$@" "$pkg" | tee -a "$out"
}

bench ./postgres/ 'Import' -benchtime 5x -count 3
bench ./postgres/ 'MoveEdge|CoverageNYC' -benchtime 10x -count 3
bench ./geo/ 'FeatureReader' -benchtime 20x -count 3
bench ./geo/ 'LookupNYC' -benchtime 1000000x -count 3
bench ./geo/ '^BenchmarkSpaceOrder' -benchtime 50x -count 3
bench ./geo/ 'BuildNYC|RebuildNYC' -benchtime 20x -count 3
bench ./postgres/ 'LocatorNYC$' -benchtime 300000x -count 3
bench ./postgres/ 'LocatorNYCPostGIS' -benchtime 2000x -count 3
bench ./postgres/ 'TokenCheck' -benchtime 20000x -count 3
bench ./server/ 'LookupBatchHTTP' -benchtime 20x -count 3
bench ./server/ 'GetHTTP' -benchtime 100000x -count 3
# Issue 19's lookup over the wire: GET /v1/lookup against a bare net/http
# handler writing the same answers and a prepared PostGIS ST_Covers on the
# same points, at 1 and 8 connections, and the server's CPU per lookup with
# the load generator in a child process.
bench ./server/ 'LookupWire' -benchtime 30000x -count 3
bench ./server/ '^Benchmark(ReportIntakeHTTP|DurableInsert|ReportLatencyAt300)$' -benchtime 3000x -count 3
bench ./server/ '^Benchmark(WorkflowMovesHTTP|DurableUpdate|WorkflowMoveLatencyAt300)$' -benchtime 3000x -count 3
# The same intake and moves, each run as above, on a server that has kept
# three years of reports by month (36 months before this one, their
# partitions, empty), against the runs above on a new database (this month
# and the two ahead). The benchmark's category links no duplicates, as the
# default categories: a category that does runs the link, which probes each
# month from its window on.
GRIDMAP_BENCH_REPORT_MONTHS=36 bench ./server/ '^BenchmarkReportIntakeHTTPMonths$' -benchtime 3000x -count 3
GRIDMAP_BENCH_REPORT_MONTHS=36 bench ./server/ '^BenchmarkWorkflowMovesHTTPMonths$' -benchtime 3000x -count 3
bench ./dispatch/ 'Assign' -count 3
bench ./dispatch/ 'WorkingLeft' -count 3
bench ./postgres/ 'TileSizesNYC' -benchtime 1x -count 1
# OGC API items: the NYC tracts paged 1,000 at a time, against the way
# pg_featureserv serves a table (ST_AsGeoJSON, encoding/json).
bench ./postgres/ 'FeaturesNYC' -benchtime 10x -count 3
bench ./geo/ 'AppendGeoJSON' -benchtime 20x -count 3
bench ./server/ 'Tile(Cold|Warm)' -benchtime 300x -count 3
# Cold z14 tiles over 96 tiles of Manhattan and Brooklyn: drawn from blocks
# in memory, from blocks read for each tile, and by PostGIS, against the
# way pg_tileserv serves a table (one ST_AsMVT over ST_TileEnvelope).
bench ./postgres/ 'TileRenderZ14|TileservStyleZ14' -benchtime 96x -count 3
# Hotspot tiles: z12 tiles over a million reports (filed with SQL in the
# setup, about a minute), against the same bins by a plain GROUP BY.
bench ./postgres/ 'HotspotTileZ12' -benchtime 40x -count 3
# A year of the demo district's reports (100,000, filed in the setup: a few
# minutes), seen by a dispatcher panning the map and listing a view.
bench ./server/ 'ReportTiles100k|ReportList100k' -benchtime 1x -count 1
# Indicators over 1,000,000 generated reports of a year (about three minutes
# to generate with their events, facts and daily sums), against a GROUP BY
# over reports and events; in the same run (the reports are generated once),
# flags: the 1,000 grids judged against the rules, and the surge figure
# alone against a plain GROUP BY over the reports; a viewer scoped to the
# district: its month's figures and the report list's first page and
# counts; the newest page of a district's, a grid's and a new grid's viewer
# against walking every report, and their open reports due first against
# the same statement under a plan made for any values. GRIDMAP_BENCH_REPORTS=10000000 spreads ten million reports over
# ten districts (about 45 minutes and 40 GB of disk at its peak to generate) and
# GRIDMAP_BENCH_REPORTS_DB keeps them in a database for the next run.
bench ./postgres/ 'StatsDistrict|StatsOneDistrict|ReportListDistrict|ReportListGridNewest|ReportListOpenByDeadline|StatsFlags' -benchtime 5x -count 3 -timeout 60m
# Patrols: track intake from 8 phones in 1,000-point batches against a bare
# COPY of the same rows; a day's coverage of the demo's 500 grids (200
# workers, 576,000 points, loaded in the setup: about a minute) against one
# plain PostGIS query; the nearest on-duty workers among 2,000.
bench ./server/ 'TrackIntakeHTTP|TrackCopyBaseline' -benchtime 200x -count 3
bench ./postgres/ 'PatrolCoverage(Demo|PlainPostGIS)' -benchtime 3x -count 3 -timeout 30m
# A kept day read back, and a week's assessment, against measuring the day
# and a plain GROUP BY of the week's points.
bench ./postgres/ 'PatrolCoverageKept|AssessmentWeek' -benchtime 20x -count 3 -timeout 30m
bench ./postgres/ 'NearbyWorkers' -benchtime 2000x -count 3 -timeout 30m
# A generated province at 1 and 40 districts (100,000 micro-grids; about
# ten minutes): written to a GeoJSON file, imported from it into a
# database of its own, indexed, and its lookups, tiles, a move_edge and a
# street's coverage timed. GRIDMAP_BENCH_DISTRICTS=1,400 measures the
# README's figures at 400 districts (a million micro-grids; about an hour).
export GRIDMAP_BENCH_DISTRICTS=${GRIDMAP_BENCH_DISTRICTS:-1,40}
bench ./postgres/ 'Province' -benchtime 1x -count 1 -timeout 3h
# The console's first paint, as the browser test measures it (headless
# Chromium, software WebGL, the demo district on loopback).
if [ -z "$only" ] || grep -qE -- "$only" <<<"./server/ TestConsole"; then
  go test -count=1 -run 'TestConsole$' -v ./server/ 2>&1 | grep -o 'first paint ms [0-9.]*' | tee -a "$out" || true
fi

# lines of a benchmark's results; none (and no failure under pipefail) when
# its group did not run
results() { grep -E "^$1-[0-9]+ " "$out" || true; }
# median ns/op of a benchmark
median() {
  results "$1" | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {if (NR==0) print ""; else print a[int((NR+1)/2)]}'
}
# median of a custom metric (points/s, req/s) of a benchmark
metric() {
  results "$1" | awk -v u="$2" '{for (i=1;i<NF;i++) if ($(i+1)==u) print $i}' | sort -n | awk '{a[NR]=$1} END {if (NR==0) print ""; else print a[int((NR+1)/2)]}'
}
# div A B: A/B to 6 significant digits, or nothing when either is missing or B
# is zero.
div() {
  if [ -n "$1" ] && [ -n "$2" ]; then awk -v a="$1" -v b="$2" 'BEGIN {if (b != 0) printf "%.6g", a/b}'; fi
}
# figure NAME VALUE UNIT [BASELINE BASELINE_UNIT RATIO [TARGET]]: records one
# figure for the table and bench/latest.json; an empty VALUE is recorded as
# not measured. Every ratio reads "higher is better": baseline time over
# gridmap's time, gridmap's throughput over the baseline's, size over size.
figure() {
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-}" "${5:-}" "${6:-}" "${7:-}" >>"$figures"
}
compared() { # name, candidate, baseline, unit, ns per unit, printf format of the line
  local c b r
  c=$(div "$(median "$2")" "$5"); b=$(div "$(median "$3")" "$5"); r=$(div "$b" "$c")
  if [ -z "$c" ] || [ -z "$b" ]; then
    echo "$1: not measured (data missing?)"
    figure "$1" "" "$4" "" "$4"
    return 0
  fi
  printf "$6" "$1" "$c" "$b" "$r"
  figure "$1" "$c" "$4" "$b" "$4" "$r"
}
ratio_us() { # name, candidate, baseline: per-operation times in microseconds
  compared "$1" "$2" "$3" us 1e3 '%-50s %10.3f us  vs baseline %10.3f us  = %.1fx\n'
}
ratio() { # name, candidate, baseline
  compared "$1" "$2" "$3" ms 1e6 '%-50s %10.1f ms  vs baseline %10.1f ms  = %.2fx\n'
}

echo
echo "== gridmap benchmarks: median of 3 runs; the ratio is baseline time / gridmap time (above 1: gridmap is faster) =="
ratio "import 2,165 NYC tracts (checked, COPY)" BenchmarkImportTracts BenchmarkImportTractsRowByRow
ratio "move_edge between two NYC tracts (validated)" BenchmarkMoveEdge BenchmarkMoveEdgeBaseline
ratio "move_edge dry run (the editor's check)" BenchmarkMoveEdgeDryRun BenchmarkMoveEdgeBaseline
ratio "coverage of 2,165 tracts under 5 boroughs" BenchmarkCoverageNYC BenchmarkCoverageNYCBaseline
ratio "OGC items: 2,165 NYC tracts, pages of 1,000" BenchmarkFeaturesNYC BenchmarkFeaturesNYCAsGeoJSON
ratio "WKB to GeoJSON text, 2,165 NYC tracts" BenchmarkAppendGeoJSON/direct BenchmarkAppendGeoJSON/orb
ratio "stats: a district's streets, a month of 1M reports" BenchmarkStatsDistrictMonth BenchmarkStatsDistrictMonthGroupBy
ratio "stats: a district's streets, a year of 1M reports" BenchmarkStatsDistrictYear BenchmarkStatsDistrictYearGroupBy
for w in Month Year; do
  n="stats: a district for a $(tr A-Z a-z <<<"$w"), median"
  t=$([ "$w" = Month ] && echo 200 || echo 1000)
  c=$(div "$(median BenchmarkStatsDistrict$w)" 1e6)
  [ -n "$c" ] && printf '%-50s %10.1f ms  (target < %d ms)\n' "$n" "$c" "$t"
  figure "$n" "$c" ms "" "" "" "< $t ms"
done
ratio "stats: one district's month, scoped viewer" BenchmarkStatsOneDistrictMonth BenchmarkStatsOneDistrictMonthGroupBy
# The baseline counts the month's reports one by one for their status.
n="report list: a district's month, page and counts"
c=$(div "$(median BenchmarkReportListDistrictMonth)" 1e6)
b=$(div "$(median BenchmarkReportListDistrictMonthFromReports)" 1e6)
r=$(div "$b" "$c")
[ -n "$c" ] && printf '%-50s %10.1f ms  vs baseline %10.1f ms  = %.2fx  (scoped viewer; target < 200 ms)\n' "$n" "$c" "${b:-0}" "${r:-0}"
figure "$n" "$c" ms "$b" ms "$r" "< 200 ms"
ratio "report list: newest 50 of a district, grid, new grid" BenchmarkReportListGridNewest BenchmarkReportListGridNewestWalk
ratio "report list: open by deadline, same viewers" BenchmarkReportListOpenByDeadline BenchmarkReportListOpenByDeadlineCached
ratio "flags: surge figure, 1,000 grids x 9 weeks of 1M" BenchmarkStatsFlagsSurge BenchmarkStatsFlagsSurgeBaseline
n="flags: a district of 1,000 grids, 30 days"
flags=$(div "$(median BenchmarkStatsFlags)" 1e6)
[ -n "$flags" ] && printf '%-50s %10.1f ms  (threshold and surge, 1,000 grids)\n' "$n" "$flags"
figure "$n" "$flags" ms
mbps=$(results BenchmarkFeatureReader | awk '{print $5}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
[ -n "$mbps" ] && echo "streaming GeoJSON decode of the NYC tract file: ${mbps} MB/s"
figure "streaming GeoJSON decode of the NYC tract file" "$mbps" MB/s
ratio_us "lookup, NYC tracts, points on land (one core)" BenchmarkLookupNYC BenchmarkLookupNYCUnsubdivided
# Two thirds of these points are outside the city and get the nearest
# tract: from the lattice's cell lists, against walking the tree.
ratio_us "lookup over the NYC box vs nearest by tree walk" BenchmarkLookupNYCBoundingBox BenchmarkLookupNYCBoundingBoxWalk
# A large batch is answered in space order: the same points, sorted 100,000
# at a time, against their own order; and the sort against the standard
# library's on the same keys.
ratio_us "lookup over the NYC box, space order vs as they come" BenchmarkLookupNYCBoundingBoxInSpaceOrder BenchmarkLookupNYCBoundingBox
ratio "space order of 100,000 points vs slices.Sort" BenchmarkSpaceOrder BenchmarkSpaceOrderBySort
# After an edit the layer's index is built again; the grids left alone
# keep their pieces from the index before it.
ratio "index rebuild after an edit vs build, NYC tracts" BenchmarkRebuildNYC BenchmarkBuildNYC
ratio_us "Locator lookup (chain, people, co-owners) vs PostGIS" BenchmarkLocatorNYC BenchmarkLocatorNYCPostGIS
ratio_us "token check, cached (every request) vs a hash" BenchmarkTokenCheck BenchmarkTokenCheckBaseline
ratio_us "token check, cached vs read from the database" BenchmarkTokenCheck BenchmarkTokenCheckUncached
n="POST /v1/lookup, 100,000-point batches, loopback"
pts=$(metric BenchmarkLookupBatchHTTP points/s)
[ -n "$pts" ] && printf '%-50s %10.0f points/s  (target 500,000)\n' "$n" "$pts"
figure "$n" "$pts" points/s "" "" "" ">= 500000 points/s"
# Large batches are answered in space order: against the same batches
# answered in the order their points came in.
n="POST /v1/lookup batches, space order vs input order"
inorder=$(metric BenchmarkLookupBatchHTTPInInputOrder points/s); r=$(div "$pts" "$inorder")
[ -n "$r" ] && printf '%-50s %10.0f points/s  vs input order %10.0f points/s = %.2fx\n' "$n" "$pts" "$inorder" "$r"
figure "$n" "$pts" points/s "$inorder" points/s "$r"
n="GET /v1/lookup, loopback load generator"
get=$(metric BenchmarkLookupGetHTTP req/s); hz=$(metric BenchmarkHealthzGetHTTP req/s); r=$(div "$get" "$hz")
[ -n "$r" ] && printf '%-50s %10.0f req/s  vs GET /healthz %10.0f req/s = %.2f of a no-op request (target 20,000/s)\n' "$n" "$get" "$hz" "$r"
figure "$n" "$get" req/s "$hz" req/s "$r" ">= 20000 req/s"
# Issue 19's lookup figures: GET against its floor and against PostGIS at 1
# and 8 connections, the server's CPU per lookup, batches against 1M/s.
for conns in 1 8; do
  get=$(metric "BenchmarkLookupWire/get/conns=$conns" req/s); bare=$(metric "BenchmarkLookupWire/bare/conns=$conns" req/s)
  pg=$(metric "BenchmarkLookupWire/postgis/conns=$conns" lookups/s)
  n="GET /v1/lookup vs bare net/http, conns=$conns"
  r=$(div "$get" "$bare")
  [ -n "$r" ] && printf '%-50s %10.0f req/s  vs bare handler %10.0f req/s = %.2f (target >= 0.85)\n' "$n" "$get" "$bare" "$r"
  figure "$n" "$get" req/s "$bare" req/s "$r" ">= 0.85x"
  n="GET /v1/lookup vs prepared PostGIS, conns=$conns"
  r=$(div "$get" "$pg")
  [ -n "$r" ] && printf '%-50s %10.0f req/s  vs ST_Covers %10.0f lookups/s = %.2fx (target >= 2x)\n' "$n" "$get" "$pg" "$r"
  figure "$n" "$get" req/s "$pg" lookups/s "$r" ">= 2x"
done
n="lookup and encoding alone, the same points"
idx=$(div "$(median BenchmarkLookupWire/index)" 1e3)
[ -n "$idx" ] && printf '%-50s %10.3f us  (in memory: what GET does beyond the bare floor)\n' "$n" "$idx"
figure "$n" "$idx" us
n="server CPU per GET /v1/lookup, conns=8"
cpu=$(metric BenchmarkLookupWire/cpu/get server_us/req); bcpu=$(metric BenchmarkLookupWire/cpu/bare server_us/req); r=$(div "$bcpu" "$cpu")
[ -n "$r" ] && printf '%-50s %10.1f us  vs bare handler %6.1f us = %.2f (target <= 12 us; load generator in a child process)\n' "$n" "$cpu" "$bcpu" "$r"
figure "$n" "$cpu" us "$bcpu" us "$r" "<= 12 us"
n="POST /v1/lookup batches vs issue 19's 1,000,000/s"
pts=$(metric BenchmarkLookupBatchHTTP points/s); r=$(div "$pts" 1000000)
[ -n "$r" ] && printf '%-50s %10.0f points/s  = %.2f of the target\n' "$n" "$pts" "$r"
figure "$n" "$pts" points/s 1000000 points/s "$r" ">= 1000000 points/s"
# The first batch after the index is built also fills the lattice of near
# cells for its points outside every tract: against the batches after it.
n="POST /v1/lookup, first batch after a rebuild"
first=$(metric BenchmarkLookupBatchHTTP first_points/s); r=$(div "$first" "$pts")
[ -n "$r" ] && printf '%-50s %10.0f points/s  vs later batches %10.0f = %.2f\n' "$n" "$first" "$pts" "$r"
figure "$n" "$first" points/s "$pts" points/s "$r"
n="POST /v1/reports, 16 clients, durable commits"
rep=$(metric BenchmarkReportIntakeHTTP reports/s); ins=$(metric BenchmarkDurableInsert reports/s); r=$(div "$rep" "$ins")
[ -n "$r" ] && printf '%-50s %10.0f reports/s  vs bare durable INSERTs %10.0f/s = %.2f (target 1,000/s)\n' "$n" "$rep" "$ins" "$r"
figure "$n" "$rep" reports/s "$ins" reports/s "$r" ">= 1000 reports/s"
n="POST /v1/reports, 39 months kept vs 3"
rm=$(metric BenchmarkReportIntakeHTTPMonths reports/s); r=$(div "$rm" "$rep")
[ -n "$r" ] && printf '%-50s %10.0f reports/s  vs 3 months %10.0f/s = %.2f\n' "$n" "$rm" "$rep" "$r"
figure "$n" "$rm" reports/s "$rep" reports/s "$r"
n="POST /v1/reports paced at 300/s from 16 clients"
p99=$(metric BenchmarkReportLatencyAt300 p99_ms); p50=$(metric BenchmarkReportLatencyAt300 p50_ms)
[ -n "$p99" ] && echo "$n: p50 ${p50} ms, p99 ${p99} ms (target p99 < 50 ms)"
figure "$n, p50" "$p50" ms
figure "$n, p99" "$p99" ms "" "" "" "< 50 ms"
n="POST /v1/reports/{id}/events, 16 clients, durable"
mv=$(metric BenchmarkWorkflowMovesHTTP moves/s); up=$(metric BenchmarkDurableUpdate updates/s); r=$(div "$mv" "$up")
[ -n "$r" ] && printf '%-50s %10.0f moves/s  vs bare durable UPDATEs %10.0f/s = %.2f (target 1,000/s)\n' "$n" "$mv" "$up" "$r"
figure "$n" "$mv" moves/s "$up" updates/s "$r" ">= 1000 moves/s"
n="POST /v1/reports/{id}/events, 39 months kept vs 3"
mm=$(metric BenchmarkWorkflowMovesHTTPMonths moves/s); r=$(div "$mm" "$mv")
[ -n "$r" ] && printf '%-50s %10.0f moves/s  vs 3 months %10.0f/s = %.2f\n' "$n" "$mm" "$mv" "$r"
figure "$n" "$mm" moves/s "$mv" moves/s "$r"
n="workflow moves paced at 300/s from 16 clients"
mp99=$(metric BenchmarkWorkflowMoveLatencyAt300 p99_ms); mp50=$(metric BenchmarkWorkflowMoveLatencyAt300 p50_ms)
[ -n "$mp99" ] && echo "$n: p50 ${mp50} ms, p99 ${mp99} ms (target p99 < 50 ms)"
figure "$n, p50" "$mp50" ms
figure "$n, p99" "$mp99" ms "" "" "" "< 50 ms"
tmax=$(metric BenchmarkTileSizesNYC max_KB_z8-11); t10=$(metric BenchmarkTileSizesNYC z10_KB)
t10raw=$(metric BenchmarkTileSizesNYC z10_raw_KB); t10same=$(metric BenchmarkTileSizesNYC z10_raw_same_levels_KB)
n="largest NYC tile at z8-z11, gzip"
[ -n "$tmax" ] && printf '%-50s %10.1f KB  (limit 200 KB)\n' "$n" "$tmax"
figure "$n" "$tmax" KB "" "" "" "<= 200 KB"
n="NYC at z10, all tiles of the city, gzip"
r=$(div "$t10raw" "$t10"); rs=$(div "$t10same" "$t10")
[ -n "$t10" ] && printf '%-50s %10.1f KB  vs ungeneralised %8.1f KB = %.1fx (same levels, unsimplified: %.1f KB = %.1fx)\n' "$n" "$t10" "$t10raw" "$r" "$t10same" "$rs"
figure "$n" "$t10" KB "$t10raw" KB "$r"
figure "$n, vs same levels unsimplified" "$t10" KB "$t10same" KB "$rs"
ratio "cold z14 tile, blocks in memory vs pg_tileserv" BenchmarkTileRenderZ14Blocks BenchmarkTileservStyleZ14
ratio "cold z14 tile, blocks read first vs pg_tileserv" BenchmarkTileRenderZ14BlocksFirst BenchmarkTileservStyleZ14
ratio "cold z14 tile, PostGIS vs pg_tileserv" BenchmarkTileRenderZ14 BenchmarkTileservStyleZ14
n="z14 tile gzip bytes vs pg_tileserv at level 6"
zt=$(metric BenchmarkTileRenderZ14Blocks gzip_B/tile); zb=$(metric BenchmarkTileservStyleZ14 gzip_B/tile); r=$(div "$zb" "$zt")
[ -n "$r" ] && printf '%-50s %10.0f B  vs baseline %10.0f B  = %.2fx (target >= 1; ours holds the labels too)\n' "$n" "$zt" "$zb" "$r"
figure "$n" "$zt" B "$zb" B "$r" ">= 1"
n="cold z14 tile over loopback, median"
cold=$(metric BenchmarkTileColdZ14 median_ms)
[ -n "$cold" ] && printf '%-50s %10.2f ms  (target < 15 ms)\n' "$n" "$cold"
figure "$n" "$cold" ms "" "" "" "< 15 ms"
n="warm z14 tiles, loopback load generator"
warm=$(metric BenchmarkTileWarmLoadZ14 req/s); coldr=$(metric BenchmarkTileColdLoadZ14 req/s); r=$(div "$warm" "$coldr")
[ -n "$r" ] && printf '%-50s %10.0f req/s  vs cold %8.0f req/s = %.0fx (target 20x)\n' "$n" "$warm" "$coldr" "$r"
figure "$n" "$warm" req/s "$coldr" req/s "$r" ">= 20x"
n="POST /v1/tracks, 8 clients x 1,000 points, durable"
trk=$(metric BenchmarkTrackIntakeHTTP points/s); cpy=$(metric BenchmarkTrackCopyBaseline points/s); r=$(div "$trk" "$cpy")
[ -n "$r" ] && printf '%-50s %10.0f points/s  vs bare COPY %10.0f/s = %.2f (target 20,000/s)\n' "$n" "$trk" "$cpy" "$r"
figure "$n" "$trk" points/s "$cpy" points/s "$r" ">= 20000 points/s"
ratio "patrol coverage: 500 demo grids, 200 workers' day" BenchmarkPatrolCoverageDemo BenchmarkPatrolCoveragePlainPostGIS
n="patrol coverage of the demo district, median"
cov=$(div "$(median BenchmarkPatrolCoverageDemo)" 1e6)
[ -n "$cov" ] && printf '%-50s %10.1f ms  (target < 5,000 ms)\n' "$n" "$cov"
figure "$n" "$cov" ms "" "" "" "< 5000 ms"
ratio "a kept day's coverage vs measuring that day" BenchmarkPatrolCoverageKept BenchmarkPatrolCoverageDemo
ratio "assessment of a week, 2,200 workers, 500 grids" BenchmarkAssessmentWeek BenchmarkAssessmentWeekPlain
ratio_us "nearest on-duty workers (2,000 on duty) vs a key read" BenchmarkNearbyWorkers BenchmarkNearbyWorkersReportRead
# The province: its larger size against one district, measured in the same
# run. "linear" figures (import, memory) are set against the larger size's
# multiple of one district's, so 1.00x grows as the data does; the others
# (lookups, tiles, edits) against one district's, so 1.00x does not grow.
pn=${GRIDMAP_BENCH_DISTRICTS##*,}
province() { # name, metric, unit, linear|flat, target
  local one big base r
  one=$(metric BenchmarkProvince/districts=1 "$2"); big=$(metric "BenchmarkProvince/districts=$pn" "$2")
  if [ -z "$one" ] || [ -z "$big" ] || [ "$pn" = 1 ]; then
    figure "province of $pn districts: $1" "" "$3" "" "$3" "" "${5:-}"
    return 0
  fi
  if [ "$4" = linear ]; then base=$(awk -v a="$one" -v n="$pn" 'BEGIN {printf "%.6g", a*n}'); else base=$one; fi
  r=$(div "$base" "$big")
  printf '%-50s %10.3f %s  vs %s %10.3f %s = %.2fx %s\n' "province of $pn districts: $1" "$big" "$3" \
    "$([ "$4" = linear ] && echo "$pn x 1 district" || echo "1 district")" "$base" "$3" "$r" "${5:+($5)}"
  figure "province of $pn districts: $1" "$big" "$3" "$base" "$3" "$r" "${5:-}"
}
mg=$(metric "BenchmarkProvince/districts=$pn" microgrids)
[ -n "$mg" ] && printf 'province of %s districts: %.0f micro-grids, generated in %s s\n' "$pn" "$mg" "$(metric "BenchmarkProvince/districts=$pn" generate_s)"
province "import from GeoJSON, checked, tile shapes" import_s s linear "< 600 s at 400 districts"
province "lookup index build" index_s s linear "< 60 s at 400 districts"
province "lookup index heap" index_heap_MB MB linear "< 2 GB at 400 districts"
province "peak resident set while indexing" index_peak_rss_MB MB linear
province "lookup with co-owners within 10 m" lookup_us us flat "< 1.5 us at 400 districts"
province "cold z14 tile, median" z14_cold_ms ms flat "< 15 ms at 400 districts"
province "move_edge between two micro-grids" move_edge_ms ms flat "< 200 ms at 400 districts"
province "coverage of one street's communities" coverage_street_ms ms flat "< 1 s at 400 districts"
province "lookup index rebuilt after an edit" reload_s s linear
province "peak resident set while rebuilding" reload_peak_rss_MB MB linear
n="province of $pn districts: largest z8 tile, gzip"
z8=$(metric "BenchmarkProvince/districts=$pn" z8_max_KB)
[ -n "$z8" ] && printf '%-50s %10.1f KB  (target < 200 KB at 400 districts)\n' "$n" "$z8"
figure "$n" "$z8" KB "" "" "" "< 200 KB at 400 districts"
ratio "hotspot tile z12, 1,000,000 reports (no cache)" BenchmarkHotspotTileZ12 BenchmarkHotspotTileZ12GroupBy
n="hotspot tile z12, median"
hot=$(metric BenchmarkHotspotTileZ12 median_ms); hotn=$(metric BenchmarkHotspotTileZ12 reports/tile)
[ -n "$hot" ] && printf '%-50s %10.2f ms  (target < 50 ms; %.0f reports a tile)\n' "$n" "$hot" "$hotn"
figure "$n" "$hot" ms "" "" "" "< 50 ms"
figure "hotspot tile z12, reports a tile" "$hotn" reports
n="reports tiles, 100,000 reports"
rtw99=$(metric BenchmarkReportTiles100k warm_p99_ms); rtwmax=$(metric BenchmarkReportTiles100k warm_max_ms)
rtc50=$(metric BenchmarkReportTiles100k cold_p50_ms); rtcmax=$(metric BenchmarkReportTiles100k cold_max_ms)
rtn=$(metric BenchmarkReportTiles100k tiles)
[ -n "$rtw99" ] && echo "$n, warm: p99 ${rtw99} ms, max ${rtwmax} ms (target < 100 ms)"
[ -n "$rtc50" ] && echo "$n, cold: p50 ${rtc50} ms, max ${rtcmax} ms (target < 100 ms; ${rtn%.*} open-reports tiles, z12-z15)"
figure "$n, warm p99" "$rtw99" ms "" "" "" "< 100 ms"
figure "$n, warm max" "$rtwmax" ms "" "" "" "< 100 ms"
figure "$n, cold p50" "$rtc50" ms "" "" "" "< 100 ms"
figure "$n, cold max" "$rtcmax" ms "" "" "" "< 100 ms"
figure "$n, open-reports tiles z12-z15" "$rtn" tiles
n="reports list in a view, 100,000 reports"
rl50=$(metric BenchmarkReportList100k p50_ms); rl99=$(metric BenchmarkReportList100k p99_ms); rlmax=$(metric BenchmarkReportList100k max_ms)
[ -n "$rl99" ] && echo "$n: p99 ${rl99} ms, max ${rlmax} ms (p50 ${rl50} ms; target < 100 ms)"
figure "$n, p50" "$rl50" ms
figure "$n, p99" "$rl99" ms "" "" "" "< 100 ms"
figure "$n, max" "$rlmax" ms "" "" "" "< 100 ms"
n="console: navigation to the map's first idle"
paint=$({ grep -o 'first paint ms [0-9.]*' "$out" || true; } | awk '{print $4}' | head -1)
[ -n "$paint" ] && printf '%-50s %10.0f ms  (target 1,500 ms; headless Chromium, software WebGL)\n' "$n" "$paint"
figure "$n" "$paint" ms "" "" "" "<= 1500 ms"
ratio_us "working time left on a report a year overdue vs a week" BenchmarkWorkingLeftAYearOverdue BenchmarkWorkingLeftAWeekOverdue
n="assignment policy alone (no database)"
asg=$(div "$(median BenchmarkAssign)" 1e3)
[ -n "$asg" ] && printf '%-50s %10.3f us  (target 5 us)\n' "$n" "$asg"
figure "$n" "$asg" us "" "" "" "<= 5 us"

# One table of every figure, and the same as JSON in bench/latest.json.
echo
echo "== every figure (ratio: higher is better; compare two runs with make bench-compare) =="
awk -F'\t' '
function show(v) {
  if (v == "") return ""
  v += 0
  if (v >= 100 || v <= -100) return sprintf("%.0f", v)
  if (v >= 10 || v <= -10) return sprintf("%.1f", v)
  if (v >= 1 || v <= -1) return sprintf("%.2f", v)
  return sprintf("%.3g", v)
}
{
  name[NR] = $1
  val[NR] = ($2 == "") ? "not measured" : show($2) " " $3
  base[NR] = ($4 == "") ? "" : show($4) " " $5
  rat[NR] = ($6 == "") ? "" : sprintf("%.2fx", $6)
  tgt[NR] = $7
  w1 = length($1) > w1 ? length($1) : w1
  w2 = length(val[NR]) > w2 ? length(val[NR]) : w2
  w3 = length(base[NR]) > w3 ? length(base[NR]) : w3
}
END {
  w1 = w1 < 4 ? 4 : w1; w2 = w2 < 5 ? 5 : w2; w3 = w3 < 8 ? 8 : w3
  f = "%-" w1 "s  %" w2 "s  %" w3 "s  %7s  %s"
  line = sprintf(f, "name", "value", "baseline", "ratio", "target"); sub(/ +$/, "", line); print line
  for (i = 1; i <= NR; i++) {
    line = sprintf(f, name[i], val[i], base[i], rat[i], tgt[i]); sub(/ +$/, "", line); print line
  }
}' "$figures"

mkdir -p bench
awk -F'\t' -v commit="$commit" -v when="$when" '
function str(s) {
  if (s == "") return "null"
  gsub(/\\/, "&&", s); gsub(/"/, "\\\"", s); gsub(/\t/, "\\t", s)
  return "\"" s "\""
}
function num(s) {
  return (s ~ /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$/) ? s : "null"
}
BEGIN { printf "[" }
{
  printf "%s\n  {\"name\": %s, \"value\": %s, \"unit\": %s, \"baseline\": %s, \"baseline_unit\": %s, \"ratio\": %s, \"target\": %s, \"commit\": %s, \"when\": %s}",
    (NR > 1 ? "," : ""), str($1), num($2), str($3), num($4), str($5), num($6), str($7), str(commit), str(when)
}
END { printf "\n]\n" }' "$figures" >bench/latest.json.tmp
mv bench/latest.json.tmp bench/latest.json
echo "wrote bench/latest.json ($(wc -l <"$figures") figures, commit $commit)"
