# gridmap: `make run` serves the demo district, `make test` runs every test.
# Both install missing Debian packages first (scripts/install-deps.sh).

export PATH := $(PATH):/usr/local/go/bin
GO ?= go
BIN := bin/gridmap
ADDR ?= 127.0.0.1:8080

.PHONY: all deps test-deps build run test soak bench bench-compare fuzz vet clean vendor

all: build

deps:
	@scripts/install-deps.sh

test-deps:
	@scripts/install-deps.sh test

build: deps
	$(GO) build -o $(BIN) ./cmd/gridmap

run: build
	./$(BIN) serve --addr $(ADDR) --demo

vet: test-deps
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

# The timeout guards against a hung test, not slow ones: on a busy shared
# machine the postgres package alone has taken 20 minutes.
test: vet
	$(GO) test -race -count=1 -timeout 50m ./...

# The soak test at its full length: five minutes of the mixed load (make
# test runs it for 40 s).
soak: test-deps
	GRIDMAP_SOAK=5m $(GO) test -race -count=1 -timeout 20m -run '^TestSoak$$' -v ./server/

bench: deps
	@scripts/bench.sh

# Compares two runs' tables (bench/latest.json, written by make bench): by
# default the latest against bench/baseline.json; BASE=path NEW=path override.
BASE ?= bench/baseline.json
NEW ?= bench/latest.json
bench-compare:
	@$(GO) build -o bin/benchcompare ./scripts/benchcompare && bin/benchcompare -base '$(BASE)' -new '$(NEW)'

fuzz: deps
	$(GO) test ./geo/ -run '^$$' -fuzz FuzzFeatureReader -fuzztime 60s
	$(GO) test ./tiles/ -run '^$$' -fuzz FuzzParseTile -fuzztime 30s

# Fetches the pinned browser libraries into static/vendor/ (checked in).
vendor:
	@scripts/vendor.sh

clean:
	rm -rf bin
