# pmd: make run starts the daemon, make test runs every check CI runs.
GO        ?= go
# The tools the targets run beside $(GO) (gofmt, and the go that staticcheck runs) are
# that toolchain's, also when make GO=/path/to/go is given and no go is on PATH.
GOROOT_BIN := $(shell $(GO) env GOROOT 2>/dev/null)/bin
export PATH := $(GOROOT_BIN):$(PATH)
# GOBIN is where $(GO) install puts staticcheck: GOBIN when go's settings name one (go env -w
# GOBIN=..., or the environment), else the bin of GOPATH's first entry.
GOBIN     := $(or $(shell $(GO) env GOBIN 2>/dev/null),$(firstword $(subst :, ,$(shell $(GO) env GOPATH 2>/dev/null)))/bin)
STATICCHECK_VERSION ?= v0.8.2
STATICCHECK := $(GOBIN)/staticcheck

.PHONY: all build deps test lint vet staticcheck bench run clean soak soak-scavenge help

# MODULES are this repository's Go modules: the store and daemon (.), and the ones whose
# dependencies only the peer benchmarks (PostgreSQL, NATS, bbolt clients, plots) and the
# browser tests (chromedp) need, kept out of pmd's go.mod so that importing pmd does not
# download them. Each has a replace of github.com/pmd-dev/pmd by this checkout.
MODULES := . bench/peers web/browsertest

all: build ## the default: build

# help lists the targets with what each does: the text after "##" on its rule's line.
help: ## list the targets
	@awk 'BEGIN { FS = ":[^#]*## " } /^[a-z][a-z0-9-]*:[^=#]*## / { printf "  %-18s %s\n", $$1, $$2 }' $(firstword $(MAKEFILE_LIST))

# build (so run, cluster) first checks that $(GO) is there and Go 1.21 or later
# (scripts/check-go.sh), saying what to do when it is not.
build: ## build the daemon and command line into bin/pmd
	@GO="$(GO)" bash scripts/check-go.sh
	$(GO) build -o bin/pmd ./cmd/pmd

# run builds pmd and serves the catering example's process manager on ./data.
# ADDR picks the address, e.g. make run ADDR=127.0.0.1:8080. Ctrl-C stops it cleanly.
ADDR ?= 127.0.0.1:7070
run: build ## build pmd and serve examples/catering/pmd.yaml on ./data at ADDR (127.0.0.1:7070)
	@echo "pmd: serving examples/catering/pmd.yaml with data in ./data"
	@echo "  browser: http://$(ADDR)/"
	@echo "  try:     curl -s -X POST 'http://$(ADDR)/v1/streams/Customer%247' -d '{\"events\":[{\"type\":\"CustomerConfirmedMenu\",\"data\":{\"order_id\":\"42\"}}]}'"
	@echo "  then:    curl -s 'http://$(ADDR)/v1/processes/CateringMatch/42'"
	./bin/pmd serve --data ./data --addr $(ADDR) --config examples/catering/pmd.yaml

vet: ## go vet every module
	@for m in $(MODULES); do echo "go vet: $$m"; (cd $$m && $(GO) vet ./...) || exit 1; done

# staticcheck installs STATICCHECK_VERSION first when $(STATICCHECK) is missing or says it
# is another version: one installed long ago, built for an older Go, fails on this code.
staticcheck: ## staticcheck every module (installs STATICCHECK_VERSION first)
	@case "$$($(STATICCHECK) -version 2>/dev/null)" in \
	*"($(patsubst v%,%,$(STATICCHECK_VERSION)))") ;; \
	*) echo "installing staticcheck $(STATICCHECK_VERSION)"; \
		$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) || exit 1 ;; \
	esac
	@for m in $(MODULES); do echo "staticcheck: $$m"; (cd $$m && $(STATICCHECK) ./...) || exit 1; done

lint: vet staticcheck ## vet, staticcheck and gofmt: the quick check
	@gofmt="$$($(GO) env GOROOT)/bin/gofmt"; files=$$(git ls-files '*.go') || exit 1; \
	unformatted=$$("$$gofmt" -l $$files) || exit 1; \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi

# deps installs the Debian packages the tests use: gcc and libc6-dev (-race needs cgo; checked
# by building a cgo program with $(GO)) and git (lint), which
# the tests cannot do without, so a failure stops make test; PostgreSQL for the peer
# benchmarks and Chromium for the browser tests, whose failed install does not (the tests that
# need them skip and say why). Each script does nothing when its package is there. Go itself
# (1.21 or later: $(GO), go on PATH unless GO= names one) is not installed:
# scripts/check-go.sh, which install-build-tools.sh and make build run, says when it is
# missing or older.
deps: ## install the Debian packages the tests use (gcc, libc6-dev, git, PostgreSQL, Chromium)
	GO="$(GO)" bash scripts/install-build-tools.sh
	-bash scripts/install-postgres.sh
	-bash scripts/install-chromium.sh

# test runs every module's tests, all of them even when one fails, and fails if any did.
test: deps lint ## everything CI checks: deps, lint, go test -race in every module
	@failed=; for m in $(MODULES); do \
		echo "go test: $$m"; \
		(cd $$m && $(GO) test -race -count=1 -timeout 30m ./...) || failed="$$failed $$m"; \
	done; \
	if [ -n "$$failed" ]; then echo "tests failed in:$$failed"; exit 1; fi

# soak kills a writing pmd with SIGKILL in a loop (restarting it at once, as a crash loop
# would) for SOAK_ROUNDS rounds, checking every acknowledged write and that no restart
# replays more than the records since the index's last flush. make test runs 6 rounds.
# About 10 minutes for 150 rounds under the race detector on 2 cores (100 took 6 min 42 s).
SOAK_ROUNDS ?= 150
soak: ## kill a writing pmd SOAK_ROUNDS (150) times, checking every write; about 10 min
	PMD_SOAK_ROUNDS=$(SOAK_ROUNDS) $(GO) test -race -count=1 -timeout 90m -run 'TestCrashKill9$$' .

# soak-scavenge kills a scavenging pmd with SIGKILL SCAVENGE_KILLS times, at random
# segments, checking after each kill that every live event reads back as before, no
# position moved and the store verifies. make test runs 5 kills.
SCAVENGE_KILLS ?= 50
soak-scavenge: ## kill a scavenging pmd SCAVENGE_KILLS (50) times, checking every event
	PMD_SCAVENGE_KILLS=$(SCAVENGE_KILLS) $(GO) test -race -count=1 -timeout 30m -run 'TestScavengeKill9$$' -v .

# cluster builds pmd and runs a local three-node cluster on loopback (scripts/cluster.sh):
# HTTP on 127.0.0.1:7071-7073, Raft on 7081-7083, data in ./cluster-data. Ctrl-C stops it.
.PHONY: cluster
cluster: build ## run a local three-node cluster on 127.0.0.1:7071-7073, data in ./cluster-data
	bash scripts/cluster.sh

# bench-cluster measures a three-node cluster against a single node (appends with 16 and 1
# writers), the failover time over 20 leader kills, and a rejoining node's catch-up rate;
# bench/README.md, "Cluster". About 3 minutes.
.PHONY: bench-cluster
bench-cluster: ## a three-node cluster against one node, failover, catch-up; about 3 min
	PMD_CLUSTER_BENCH=1 $(GO) test -count=1 -timeout 30m -run 'TestClusterBench$$' -v ./cluster/ | grep -v 'raft:'

# The cluster targets filter Raft's log lines out of go test's output; pipefail makes the
# recipe fail when the test does, not take grep's status.
bench-cluster test-cluster: SHELL := bash
bench-cluster test-cluster: .SHELLFLAGS := -o pipefail -c

# soak-cluster runs a three-node cluster of real pmd processes under load from clients on
# every node while the leader is killed with SIGKILL or cut off by a partition
# CLUSTER_FAULTS times (about half of them kills), checking each round's history of
# expected-version appends and leader reads for linearizability (porcupine) and that
# every node ends with the same $$all. make test runs 4 faults (TestClusterLinearizable).
# About 4 s a fault.
CLUSTER_FAULTS ?= 100
.PHONY: soak-cluster
soak-cluster: ## kill and partition a cluster's leader CLUSTER_FAULTS (100) times under load
	PMD_CLUSTER_SOAK=$(CLUSTER_FAULTS) $(GO) test -count=1 -timeout 60m -run 'TestClusterSoak$$' -v ./cluster/

# test-cluster runs the cluster's long tests: a node away for 100,000 appends catches up
# through a snapshot install (TestClusterFarBehind), and logs its catch-up rate. A few
# minutes; make test runs the short version (TestClusterSnapshotCatchUp).
.PHONY: test-cluster
test-cluster: ## the cluster's long tests: a node 100,000 appends behind catches up
	PMD_CLUSTER_LONG=1 $(GO) test -count=1 -timeout 30m -run 'TestClusterFarBehind$$' -v ./cluster/ | grep -v 'raft:'

# screenshots runs the browser tests with screenshots on and copies the README's pictures
# to docs/browser-*.png: the dashboard, a process list, the parked commands, a process's
# timeline, a stream and an event. About a minute and a half.
SHOTS := $(CURDIR)/.screenshots
.PHONY: screenshots
screenshots: deps ## run the browser tests and refresh the README's docs/browser-*.png
	rm -rf $(SHOTS)
	cd web/browsertest && PMD_SCREENSHOTS=$(SHOTS) $(GO) test -count=1 -run 'TestBrowser$$|TestBrowserOperator$$' .
	for shot in TestBrowserOperator/dashboard TestBrowserOperator/processes TestBrowserOperator/parked \
		TestBrowser/process TestBrowser/stream TestBrowser/event; do \
		cp $(SHOTS)/$$shot.png docs/browser-$$(basename $$shot).png || exit 1; \
	done
	rm -rf $(SHOTS)

# bench runs every benchmark bench/README.md documents but those with a target of their own
# (bench-cluster, bench-peers, bench-scale, bench-scavenge): ./bench's, ./log's (Read,
# OpenSealed ...), ./pm's (List, FirstDeadline, EventWithPendingDeadlines) and ./server's
# (Stats). -p 1 runs one package at a time, so that no two benchmarks share the CPU.
BENCH_PKGS := ./bench/ ./log/ ./pm/ ./server/
bench: ## the benchmarks of ./bench, ./log, ./pm and ./server (bench/README.md)
	$(GO) test -p 1 -run '^$$' -bench . -benchmem -timeout 60m $(BENCH_PKGS)

# bench-peers runs pmd, PostgreSQL (RES schema), NATS JetStream and bbolt through the
# same workloads and writes bench/results/peers.md and peers.png. ARGS passes flags,
# e.g. make bench-peers ARGS='-scale 0.1'; it runs in bench/peers, a module of its own,
# so a relative -out is relative to bench/peers.
.PHONY: bench-peers
bench-peers: ## pmd against PostgreSQL, NATS JetStream and bbolt (ARGS for flags)
	bash scripts/install-postgres.sh
	cd bench/peers && $(GO) run ./cmd/peers $(ARGS)

clean: ## remove bin/
	rm -rf bin

# bench-scale loads a store of SCALE_SIZE events (default 10M, about 3.8 GB, kept in
# SCALE_DIR to be reused; a <dir>.json beside it says how many events it holds) and a
# 100k-event baseline store, then measures RSS after open per CacheSize, replay warm and
# cold, append stalls under 16 fsyncing writers and open after kill -9; see "Scale" in
# bench/README.md. At 10M on 2 cores: about 7 min of loading, 6 min of measuring.
# Remove the stores afterwards: rm -rf $(SCALE_DIR) $(SCALE_DIR).json $(SCALE_DIR)-100k*
SCALE_SIZE ?= 10M
SCALE_DIR ?= /tmp/pmd-scale-$(SCALE_SIZE)
.PHONY: bench-scale bench-append-prev bench-scavenge
bench-scale: ## RSS, replay, stalls and open at SCALE_SIZE (10M) events; about 13 min
	$(GO) build -o bin/scale ./bench/cmd/scale
	./bin/scale all -dir $(SCALE_DIR) -size $(SCALE_SIZE)

# bench-scavenge measures a scavenge of a SCAVENGE_SIZE-event store whose half is dead (rate,
# bytes freed) and 16 fsyncing writers' latency beside one; see "Scavenging" in bench/README.md.
SCAVENGE_SIZE ?= 1M
bench-scavenge: ## a scavenge of a SCAVENGE_SIZE (1M) store half dead, writers beside it
	$(GO) build -o bin/scale ./bench/cmd/scale
	./bin/scale scavenge -size $(SCAVENGE_SIZE)

# bench-append-prev builds bench/cmd/appendbench against PREV (the commit before the
# index moved to disk) in a throw-away worktree and against this checkout, then runs them
# in turns (prev, new, prev, new, ...) with 16 and 1 fsyncing writers. About 4 min.
PREV ?= 79a6565
PREV_TREE := /tmp/pmd-prev-$(PREV)
bench-append-prev: ## durable appends against the previous pmd (PREV, 79a6565); about 4 min
	$(GO) build -o bin/scale ./bench/cmd/scale
	$(GO) build -o bin/appendbench ./bench/cmd/appendbench
	-git worktree remove --force $(PREV_TREE)
	git worktree add --detach $(PREV_TREE) $(PREV)
	mkdir -p $(PREV_TREE)/bench/cmd/appendbench
	cp bench/cmd/appendbench/main.go $(PREV_TREE)/bench/cmd/appendbench/
	cd $(PREV_TREE) && $(GO) build -o $(CURDIR)/bin/appendbench-prev ./bench/cmd/appendbench
	git worktree remove --force $(PREV_TREE)
	./bin/scale appendcmp -prev bin/appendbench-prev -new bin/appendbench $(ARGS)
