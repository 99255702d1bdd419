# The two commands of the README: `make demo` and `make test`.
# Everything they need is installed or started by the project's own files.

GO ?= go
GOFILES = $(shell git ls-files '*.go' 2>/dev/null; git ls-files --others --exclude-standard '*.go' 2>/dev/null)

.PHONY: demo test deps check fmt vet race sim-default bench-smoke bench fuzz crash random sim soak

demo: ## run the main job: a live demo
	$(GO) run ./cmd/weft demo

test: deps check race sim-default bench-smoke ## the whole test suite (what CI runs)

deps: ## what the tests need besides Go: redis-server (the Redis store's and the benchmark's tests)
	@command -v redis-server >/dev/null || { echo "installing redis-server (Debian package)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null) \
		|| echo "could not install redis-server: its tests will be skipped"; }

check: ## gofmt and go vet, in both modules
	@out="$$(gofmt -l $(GOFILES))"; if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd bench && $(GO) vet ./...

race: ## every test of the main module under the race detector
	$(GO) test -race -count=1 ./...

sim-default: ## the simulation's 200 seeds of 1000 transactions without the race detector (under it, make race runs 40)
	$(GO) test -count=1 -run '^TestSim$$' ./sim

bench-smoke: ## the benchmark harness's own tests (short runs of every case)
	cd bench && $(GO) test -count=1 ./...

bench: ## the side-by-side benchmark tables (take minutes)
	cd bench && $(GO) run . stm && $(GO) run . replication && $(GO) run . durable

crash: ## the SIGKILL crash test, CRASH_CYCLES kills of the weft binary (default 1000)
	WEFT_CRASH_CYCLES=$${CRASH_CYCLES:-1000} $(GO) test -count=1 -timeout 3h -run '^TestCrashRestart$$' -v ./e2e

sim: SHELL := /bin/bash
sim: ## the seeded simulation: SIM_SEEDS seeds (default 10000) of 1000 transactions, or SEED=s alone; CLIENTS=n (default 3); SIM_BURSTS=1 delivers bursts (not replayable); INJECT=name turns on a bug. Last line: "N seeds, T transactions, A anomalies"; fails if A > 0
	@set -o pipefail; $(GO) test -count=1 -timeout 3h -run '^TestSim$$' -v ./sim -sim.seeds $${SIM_SEEDS:-10000} \
		-sim.seed $${SEED:--1} -sim.inject "$${INJECT:-}" -sim.clients $${CLIENTS:-3} -sim.bursts=$${SIM_BURSTS:-0} 2>&1 \
		| grep -Ev '^(=== RUN|--- (PASS|FAIL)|PASS$$|FAIL$$|ok |FAIL\s)' | sed -E 's/^ +sim_test.go:[0-9]+: //' 

soak: ## the weft binary and 4 client processes behind a fault-injecting proxy for SOAK_DURATION (default 10m): latency, resets, cuts, server kills; histories checked
	WEFT_SOAK_DURATION=$${SOAK_DURATION:-10m} $(GO) test -race -count=1 -timeout 0 -run '^TestSoak$$' -v ./e2e

random: ## the client's random speculation test, RANDOM_SEEDS seeds (default 2000)
	WEFT_RANDOM_SEEDS=$${RANDOM_SEEDS:-2000} $(GO) test -count=1 -timeout 1h -run '^TestRandomSpeculation$$' ./client

fuzz: ## a longer run of every fuzz target (FUZZTIME per target, default 1m)
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test $$pkg -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-1m} || exit 1; \
	  done; \
	done
