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

# median ns/op of a benchmark
median() {
  grep -E "^$1-[0-9]+ " "$out" | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {if (NR==0) print ""; else print a[int((NR+1)/2)]}'
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
ratio "coverage of 2,165 tracts under 5 boroughs" BenchmarkCoverageNYC BenchmarkCoverageNYCBaseline
mbps=$(grep -E '^BenchmarkFeatureReader-[0-9]+ ' "$out" | awk '{print $5}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
[ -n "$mbps" ] && echo "streaming GeoJSON decode of the NYC tract file: ${mbps} MB/s"
