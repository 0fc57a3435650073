#!/usr/bin/env bash
# Runs gridmap's benchmarks and prints each hot path against a baseline
# measured in the same run, as a ratio: wall-clock figures on a shared
# machine drift, ratios measured side by side much less.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
out=$(mktemp)
trap 'rm -f "$out"' EXIT

go test -run '^$' -bench 'Import' -benchtime 5x -count 3 ./postgres/ | tee -a "$out"
go test -run '^$' -bench 'MoveEdge|CoverageNYC' -benchtime 10x -count 3 ./postgres/ | tee -a "$out"
go test -run '^$' -bench 'FeatureReader' -benchtime 20x -count 3 ./geo/ | tee -a "$out"
go test -run '^$' -bench 'LookupNYC' -benchtime 1000000x -count 3 ./geo/ | tee -a "$out"
go test -run '^$' -bench 'LocatorNYC$' -benchtime 300000x -count 3 ./postgres/ | tee -a "$out"
go test -run '^$' -bench 'LocatorNYCPostGIS' -benchtime 2000x -count 3 ./postgres/ | tee -a "$out"
go test -run '^$' -bench 'TokenCheck' -benchtime 20000x -count 3 ./postgres/ | tee -a "$out"
go test -run '^$' -bench 'LookupBatchHTTP' -benchtime 10x -count 3 ./server/ | tee -a "$out"
go test -run '^$' -bench 'GetHTTP' -benchtime 100000x -count 3 ./server/ | tee -a "$out"
go test -run '^$' -bench 'ReportIntakeHTTP|DurableInsert|ReportLatencyAt300' -benchtime 3000x -count 3 ./server/ | tee -a "$out"
go test -run '^$' -bench 'WorkflowMovesHTTP|DurableUpdate|WorkflowMoveLatencyAt300' -benchtime 3000x -count 3 ./server/ | tee -a "$out"
go test -run '^$' -bench 'Assign' -count 3 ./dispatch/ | tee -a "$out"
go test -run '^$' -bench 'WorkingLeft' -count 3 ./dispatch/ | tee -a "$out"
go test -run '^$' -bench 'TileSizesNYC' -benchtime 1x -count 1 ./postgres/ | tee -a "$out"
# OGC API items: the NYC tracts paged 1,000 at a time, against the way
# pg_featureserv serves a table (ST_AsGeoJSON, encoding/json).
go test -run '^$' -bench 'FeaturesNYC' -benchtime 10x -count 3 ./postgres/ | tee -a "$out"
go test -run '^$' -bench 'AppendGeoJSON' -benchtime 20x -count 3 ./geo/ | tee -a "$out"
go test -run '^$' -bench 'Tile(Cold|Warm)' -benchtime 300x -count 3 ./server/ | tee -a "$out"
# Hotspot tiles: z12 tiles over a million reports (filed with SQL in the
# setup, about a minute), against the same bins by a plain GROUP BY.
go test -run '^$' -bench 'HotspotTileZ12' -benchtime 40x -count 3 ./postgres/ | tee -a "$out"
# A year of the demo district's reports (100,000, filed in the setup: a few
# minutes), seen by a dispatcher panning the map and listing a view.
go test -run '^$' -bench 'ReportTiles100k|ReportList100k' -benchtime 1x -count 1 ./server/ | tee -a "$out"
# Indicators over 1,000,000 generated reports of a year (about three minutes
# to generate with their events, facts and daily sums), against a GROUP BY
# over reports and events; in the same run (the reports are generated once),
# flags: the 1,000 grids judged against the rules, and the surge figure
# alone against a plain GROUP BY over the reports.
go test -run '^$' -bench 'StatsDistrict|StatsFlags' -benchtime 5x -count 3 -timeout 30m ./postgres/ | tee -a "$out"
# Patrols: track intake from 8 phones in 1,000-point batches against a bare
# COPY of the same rows; a day's coverage of the demo's 500 grids (200
# workers, 576,000 points, loaded in the setup: about a minute) against one
# plain PostGIS query; the nearest on-duty workers among 2,000.
go test -run '^$' -bench 'TrackIntakeHTTP|TrackCopyBaseline' -benchtime 200x -count 3 ./server/ | tee -a "$out"
go test -run '^$' -bench 'PatrolCoverage(Demo|PlainPostGIS)' -benchtime 3x -count 3 -timeout 30m ./postgres/ | tee -a "$out"
# A kept day read back, and a week's assessment, against measuring the day
# and a plain GROUP BY of the week's points.
go test -run '^$' -bench 'PatrolCoverageKept|AssessmentWeek' -benchtime 20x -count 3 -timeout 30m ./postgres/ | tee -a "$out"
go test -run '^$' -bench 'NearbyWorkers' -benchtime 2000x -count 3 -timeout 30m ./postgres/ | tee -a "$out"
# The console's first paint, as the browser test measures it (headless
# Chromium, software WebGL, the demo district on loopback).
go test -count=1 -run 'TestConsole$' -v ./server/ 2>&1 | grep -o 'first paint ms [0-9.]*' | tee -a "$out" || true

# median ns/op of a benchmark
median() {
  grep -E "^$1-[0-9]+ " "$out" | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {if (NR==0) print ""; else print a[int((NR+1)/2)]}'
}
# median of a custom metric (points/s, req/s) of a benchmark
metric() {
  grep -E "^$1-[0-9]+ " "$out" | awk -v u="$2" '{for (i=1;i<NF;i++) if ($(i+1)==u) print $i}' | sort -n | awk '{a[NR]=$1} END {if (NR==0) print ""; else print a[int((NR+1)/2)]}'
}
ratio_us() { # name, candidate, baseline: per-operation times in microseconds
  local c b
  c=$(median "$2"); b=$(median "$3")
  if [ -z "$c" ] || [ -z "$b" ]; then echo "$1: not measured (data missing?)"; return; fi
  awk -v n="$1" -v c="$c" -v b="$b" 'BEGIN {printf "%-50s %10.3f us  vs baseline %10.3f us  = %.1fx\n", n, c/1e3, b/1e3, b/c}'
}
ratio() { # name, candidate, baseline
  local c b
  c=$(median "$2"); b=$(median "$3")
  if [ -z "$c" ] || [ -z "$b" ]; then echo "$1: not measured (data missing?)"; return; fi
  awk -v n="$1" -v c="$c" -v b="$b" 'BEGIN {printf "%-50s %10.1f ms  vs baseline %10.1f ms  = %.2fx\n", n, c/1e6, b/1e6, b/c}'
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
  c=$(median BenchmarkStatsDistrict$w)
  [ -n "$c" ] && awk -v w="$w" -v c="$c" 'BEGIN {t = (w == "Month") ? 200 : 1000; printf "%-50s %10.1f ms  (target < %d ms)\n", "stats: a district for a " tolower(w) ", median", c/1e6, t}'
done
ratio "flags: surge figure, 1,000 grids x 9 weeks of 1M" BenchmarkStatsFlagsSurge BenchmarkStatsFlagsSurgeBaseline
flags=$(median BenchmarkStatsFlags)
[ -n "$flags" ] && awk -v c="$flags" 'BEGIN {printf "%-50s %10.1f ms  (threshold and surge, 1,000 grids)\n", "flags: a district of 1,000 grids, 30 days", c/1e6}'
mbps=$(grep -E '^BenchmarkFeatureReader-[0-9]+ ' "$out" | awk '{print $5}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
[ -n "$mbps" ] && echo "streaming GeoJSON decode of the NYC tract file: ${mbps} MB/s"
ratio_us "lookup, NYC tracts, points on land (one core)" BenchmarkLookupNYC BenchmarkLookupNYCUnsubdivided
bbox=$(median BenchmarkLookupNYCBoundingBox)
[ -n "$bbox" ] && awk -v c="$bbox" 'BEGIN {printf "%-50s %10.3f us  (two thirds outside the city: nearest grid)\n", "lookup, NYC tracts, points over the bounding box", c/1e3}'
ratio_us "Locator lookup (chain, people, co-owners) vs PostGIS" BenchmarkLocatorNYC BenchmarkLocatorNYCPostGIS
ratio_us "token check, cached (every request) vs a hash" BenchmarkTokenCheck BenchmarkTokenCheckBaseline
ratio_us "token check, cached vs read from the database" BenchmarkTokenCheck BenchmarkTokenCheckUncached
pts=$(metric BenchmarkLookupBatchHTTP points/s)
[ -n "$pts" ] && awk -v p="$pts" 'BEGIN {printf "%-50s %10.0f points/s  (target 500,000)\n", "POST /v1/lookup, 100,000-point batches, loopback", p}'
get=$(metric BenchmarkLookupGetHTTP req/s); hz=$(metric BenchmarkHealthzGetHTTP req/s)
[ -n "$get" ] && [ -n "$hz" ] && awk -v g="$get" -v h="$hz" 'BEGIN {printf "%-50s %10.0f req/s  vs GET /healthz %10.0f req/s = %.2f of a no-op request (target 20,000/s)\n", "GET /v1/lookup, loopback load generator", g, h, g/h}'
rep=$(metric BenchmarkReportIntakeHTTP reports/s); ins=$(metric BenchmarkDurableInsert reports/s)
[ -n "$rep" ] && [ -n "$ins" ] && awk -v r="$rep" -v i="$ins" 'BEGIN {printf "%-50s %10.0f reports/s  vs bare durable INSERTs %10.0f/s = %.2f (target 1,000/s)\n", "POST /v1/reports, 16 clients, durable commits", r, i, r/i}'
p99=$(metric BenchmarkReportLatencyAt300 p99_ms); p50=$(metric BenchmarkReportLatencyAt300 p50_ms)
[ -n "$p99" ] && echo "POST /v1/reports paced at 300/s from 16 clients: p50 ${p50} ms, p99 ${p99} ms (target p99 < 50 ms)"
mv=$(metric BenchmarkWorkflowMovesHTTP moves/s); up=$(metric BenchmarkDurableUpdate updates/s)
[ -n "$mv" ] && [ -n "$up" ] && awk -v m="$mv" -v u="$up" 'BEGIN {printf "%-50s %10.0f moves/s  vs bare durable UPDATEs %10.0f/s = %.2f (target 1,000/s)\n", "POST /v1/reports/{id}/events, 16 clients, durable", m, u, m/u}'
mp99=$(metric BenchmarkWorkflowMoveLatencyAt300 p99_ms); mp50=$(metric BenchmarkWorkflowMoveLatencyAt300 p50_ms)
[ -n "$mp99" ] && echo "workflow moves paced at 300/s from 16 clients: p50 ${mp50} ms, p99 ${mp99} ms (target p99 < 50 ms)"
tmax=$(metric BenchmarkTileSizesNYC max_KB_z8-11); t10=$(metric BenchmarkTileSizesNYC z10_KB)
t10raw=$(metric BenchmarkTileSizesNYC z10_raw_KB); t10same=$(metric BenchmarkTileSizesNYC z10_raw_same_levels_KB)
[ -n "$tmax" ] && awk -v m="$tmax" 'BEGIN {printf "%-50s %10.1f KB  (limit 200 KB)\n", "largest NYC tile at z8-z11, gzip", m}'
[ -n "$t10" ] && awk -v g="$t10" -v r="$t10raw" -v s="$t10same" 'BEGIN {printf "%-50s %10.1f KB  vs ungeneralised %8.1f KB = %.1fx (same levels, unsimplified: %.1f KB = %.1fx)\n", "NYC at z10, all tiles of the city, gzip", g, r, r/g, s, s/g}'
cold=$(metric BenchmarkTileColdZ14 median_ms)
[ -n "$cold" ] && awk -v c="$cold" 'BEGIN {printf "%-50s %10.2f ms  (target < 15 ms)\n", "cold z14 tile over loopback, median", c}'
warm=$(metric BenchmarkTileWarmLoadZ14 req/s); coldr=$(metric BenchmarkTileColdLoadZ14 req/s)
[ -n "$warm" ] && [ -n "$coldr" ] && awk -v w="$warm" -v c="$coldr" 'BEGIN {printf "%-50s %10.0f req/s  vs cold %8.0f req/s = %.0fx (target 20x)\n", "warm z14 tiles, loopback load generator", w, c, w/c}'
trk=$(metric BenchmarkTrackIntakeHTTP points/s); cpy=$(metric BenchmarkTrackCopyBaseline points/s)
[ -n "$trk" ] && [ -n "$cpy" ] && awk -v t="$trk" -v c="$cpy" 'BEGIN {printf "%-50s %10.0f points/s  vs bare COPY %10.0f/s = %.2f (target 20,000/s)\n", "POST /v1/tracks, 8 clients x 1,000 points, durable", t, c, t/c}'
ratio "patrol coverage: 500 demo grids, 200 workers' day" BenchmarkPatrolCoverageDemo BenchmarkPatrolCoveragePlainPostGIS
cov=$(median BenchmarkPatrolCoverageDemo)
[ -n "$cov" ] && awk -v c="$cov" 'BEGIN {printf "%-50s %10.1f ms  (target < 5,000 ms)\n", "patrol coverage of the demo district, median", c/1e6}'
ratio "a kept day's coverage vs measuring that day" BenchmarkPatrolCoverageKept BenchmarkPatrolCoverageDemo
ratio "assessment of a week, 2,200 workers, 500 grids" BenchmarkAssessmentWeek BenchmarkAssessmentWeekPlain
ratio_us "nearest on-duty workers (2,000 on duty) vs a key read" BenchmarkNearbyWorkers BenchmarkNearbyWorkersReportRead
ratio "hotspot tile z12, 1,000,000 reports (no cache)" BenchmarkHotspotTileZ12 BenchmarkHotspotTileZ12GroupBy
hot=$(metric BenchmarkHotspotTileZ12 median_ms); hotn=$(metric BenchmarkHotspotTileZ12 reports/tile)
[ -n "$hot" ] && awk -v h="$hot" -v n="$hotn" 'BEGIN {printf "%-50s %10.2f ms  (target < 50 ms; %.0f reports a tile)\n", "hotspot tile z12, median", h, n}'
rtw99=$(metric BenchmarkReportTiles100k warm_p99_ms); rtwmax=$(metric BenchmarkReportTiles100k warm_max_ms)
rtc50=$(metric BenchmarkReportTiles100k cold_p50_ms); rtcmax=$(metric BenchmarkReportTiles100k cold_max_ms)
rtn=$(metric BenchmarkReportTiles100k tiles)
[ -n "$rtw99" ] && echo "reports tiles, 100,000 reports, warm: p99 ${rtw99} ms, max ${rtwmax} ms (target < 100 ms)"
[ -n "$rtc50" ] && echo "reports tiles, 100,000 reports, cold: p50 ${rtc50} ms, max ${rtcmax} ms (target < 100 ms; ${rtn%.*} open-reports tiles, z12-z15)"
rl50=$(metric BenchmarkReportList100k p50_ms); rl99=$(metric BenchmarkReportList100k p99_ms); rlmax=$(metric BenchmarkReportList100k max_ms)
[ -n "$rl99" ] && echo "reports list in a view, 100,000 reports: p99 ${rl99} ms, max ${rlmax} ms (p50 ${rl50} ms; target < 100 ms)"
paint=$(grep -o 'first paint ms [0-9.]*' "$out" | awk '{print $4}' | head -1)
[ -n "$paint" ] && awk -v p="$paint" 'BEGIN {printf "%-50s %10.0f ms  (target 1,500 ms; headless Chromium, software WebGL)\n", "console: navigation to the map'"'"'s first idle", p}'
ratio_us "working time left on a report a year overdue vs a week" BenchmarkWorkingLeftAYearOverdue BenchmarkWorkingLeftAWeekOverdue
asg=$(median BenchmarkAssign)
[ -n "$asg" ] && awk -v c="$asg" 'BEGIN {printf "%-50s %10.3f us  (target 5 us)\n", "assignment policy alone (no database)", c/1e3}'
true
