# durabench: `make report` runs the evaluation and renders the reports;
# `make test` runs unit tests and scenarios, then gates on fail-close items
# and negative controls. Point at an existing server with TEMPORAL_ADDRESS.

SHELL    := /bin/bash
GO       ?= go
BIN      := $(CURDIR)/bin/durabench
EVIDENCE := reports/evidence
# The scenario run, a few minutes on 2 cores; the first build of the
# Temporal server takes longer.
SCENARIO_TIMEOUT ?= 30m
# Negative controls need a server the harness can kill: required only on
# the embedded server.
GATE_FLAGS := $(if $(TEMPORAL_ADDRESS),,-require-controls)
# The committed baseline describes the embedded server on this kind of
# machine; a run against another server is not compared with it.
BASELINE := reports/baseline.json
CURRENT  := bin/current

export DURABENCH_BIN := $(BIN)

.PHONY: all build unit scenarios report test gate compare baseline bench clean

all: test

build:
	$(GO) build -o $(BIN) ./cmd/durabench

unit: build
	$(GO) vet ./...
	$(GO) test -count=1 ./criteria/... ./reports/... ./harness/... ./cmd/... ./agent/...

# Evidence is cleared first so that the report shows this run only. Packages
# run one at a time (-p 1) so that the timings one measures are not skewed by
# another's load.
scenarios: build
	rm -rf $(EVIDENCE)
	$(GO) test -count=1 -p 1 -timeout $(SCENARIO_TIMEOUT) ./scenarios/...

report: scenarios
	$(BIN) report

gate: build
	$(BIN) gate $(GATE_FLAGS)

# Fails when an item's stars drop, a fail-close item fails, or a PF median
# regresses beyond its measured noise (see `durabench compare -h`). A
# regression must hold on a second run of the packages it came from: the
# reference machine has periods in which every timing is slower with no
# change to the code (see the README), and a real regression reproduces.
compare: build
	$(BIN) report -out $(CURRENT) > /dev/null
	@set -o pipefail; \
	if ! $(BIN) compare $(BASELINE) $(CURRENT)/reports/report.json | tee $(CURRENT)/compare.txt; then \
		pkgs=$$(sed -n 's/^regression: [a-z-]* \([A-Z][A-Z]\)-.*/\1/p' $(CURRENT)/compare.txt | sort -u | tr A-Z a-z); \
		[ -n "$$pkgs" ] || exit 1; \
		echo "compare: running scenarios/{$$(echo $$pkgs | tr ' ' ,)} again: a regression must hold on a second run"; \
		for p in $$pkgs; do rm -f $(EVIDENCE)/$$p.jsonl $(EVIDENCE)/env-$$p.json; done; \
		$(GO) test -count=1 -p 1 -timeout $(SCENARIO_TIMEOUT) $$(for p in $$pkgs; do echo ./scenarios/$$p/; done) && \
		$(BIN) report -out $(CURRENT) > /dev/null && \
		$(BIN) compare $(BASELINE) $(CURRENT)/reports/report.json; \
	fi

# Refresh the baseline on purpose, from a full run: `make baseline`, then
# review and commit reports/baseline.json.
baseline: report
	cp reports/report.json $(BASELINE)

# Go benchmarks of the PF paths (step, function call, fan-out, payload echo)
# on their own embedded server, in the text benchstat reads: `make bench`
# writes bin/bench.txt; keep one, change something, run again, then
# `go tool benchstat old.txt bin/bench.txt`. They record no evidence.
BENCH_COUNT ?= 6
BENCH_TIME  ?= 2s
bench: build
	set -o pipefail; DURABENCH_EVIDENCE_DIR=$(CURDIR)/bin/bench-evidence \
		$(GO) test -run '^$$' -bench . -benchtime $(BENCH_TIME) -count $(BENCH_COUNT) -timeout 60m ./scenarios/pf | tee bin/bench.txt
	$(GO) tool benchstat bin/bench.txt

test: unit scenarios gate $(if $(TEMPORAL_ADDRESS),,compare)

clean:
	rm -rf bin $(EVIDENCE)
