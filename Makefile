# callrec — see README.md. `make help` lists the targets.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X callrec.Version=$(VERSION)
FUZZTIME ?= 10s
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)

.DEFAULT_GOAL := help
.PHONY: help build run test test-deps bench fuzz lint clean

help: ## list the targets
	@grep -hE '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build bin/callrec
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/callrec ./cmd/callrec

run: build ## the whole system in one process with demo calls; open http://127.0.0.1:8080
	./bin/callrec run --demo --log-format text

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

test-deps: ## install what the tests need when missing: Debian chromium, playwright-core, kinesis-local, Prism, the Kubernetes schema validator (npm packages into test/), nginx and HAProxy binaries unpacked for config checks
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y chromium; }
	@test -d test/browser/node_modules/playwright-core || npm ci --prefix test/browser --no-audit --no-fund
	@test -d test/services/node_modules/kinesis-local -a -d test/services/node_modules/@stoplight/prism-cli || npm ci --prefix test/services --no-audit --no-fund
	@test -d test/deploy/node_modules/kubernetes-models || npm ci --prefix test/deploy --no-audit --no-fund
	@test -x test/deploy/.tools/usr/sbin/nginx -a -x test/deploy/.tools/usr/sbin/haproxy || sh test/deploy/fetch-tools.sh

test: test-deps ## every test, with the race detector (what CI runs)
	$(GO) version
	$(GO) vet ./...
	node test/deploy/validate.mjs
	$(GO) test -race -count=1 -timeout 12m ./...

bench: build ## Go benchmarks of the frame path, then the load runs: simulate against run and the bare WebSocket floor, then through a pool (lb, 2 adapters, 2 recorders as processes) with single and dual recording
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 ./mediaadapter/... ./recorder/... ./internal/link/
	$(GO) test -run='^$$' -bench=FramePath -benchmem -benchtime=1000000x ./bench/framepath
	$(GO) test -run='^$$' -bench=. -benchtime=3x ./bench/cti
	$(GO) test -run='^$$' -bench=Search -benchtime=200x ./consolidation/store
	$(GO) run ./bench/load -calls 200 -duration 60s -max 400,800,1200,1600,2000,2500,3000,3500,4000 -max-duration 30s
	$(GO) run ./bench/load -topology pool -adapters 2 -recorders 2 -calls 0 -max 200,400,500,600,800,1000,1200,1600,2000 -max-duration 20s
	$(GO) run ./bench/load -topology pool -adapters 2 -recorders 2 -dual-recording -calls 0 -max 200,300,400,500,600,800,1000 -max-duration 20s

fuzz: ## run every fuzz target for FUZZTIME (default 10s) each
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t"; $(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) $$pkg; \
	  done; done

lint: ## gofmt, go vet, staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@2025.1.1 ./...

clean: ## remove build output and the demo data
	rm -rf bin data
