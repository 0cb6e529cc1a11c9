# tandem build, test and demo entry points. Run as root on Debian 12 for
# `make test` (it installs libiscsi-bin when missing).
SHELL   := /bin/bash
# A fresh Debian machine keeps Go in /usr/local/go, not always on PATH.
export PATH := $(PATH):/usr/local/go/bin
GO      ?= go
BIN     := $(CURDIR)/bin
# Every module in go.work, as ./module/... patterns.
MODULES := $(patsubst $(CURDIR)/%,./%,$(shell $(GO) list -m -f '{{.Dir}}' 2>/dev/null))
PKGS    := $(addsuffix /...,$(MODULES))
CMDS    := $(wildcard */cmd/*)

DEMO_STATE        ?= $(CURDIR)/demo-state
CONFORMANCE_FLAGS ?=
BENCH_FLAGS       ?=

.PHONY: all build deps lint tidy-check unit test conformance conformance-gate conformance-tgt conformance-baseline bench demo clean

all: build

## build: every binary (*/cmd/*) into ./bin; test doubles live outside cmd/ and are not built here
build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ $(addprefix ./,$(CMDS))

# Debian packages the tests use: libiscsi's conformance suite and tools,
# ocf-tester, e2fsprogs and mount for the filesystem resource, iproute2 and
# nftables for the network-namespace labs, the qemu VM lab's packages, lvm2
# for the lvm adapter's tests on loop devices (and, with thin_check, for the
# VM lab's LVM guests); systemd (systemd-analyze) and
# rpm for dist-check.
DEB_PKGS := libiscsi-bin resource-agents e2fsprogs mount iproute2 nftables \
	qemu-system-x86 qemu-utils busybox-static open-iscsi cpio kmod lvm2 thin-provisioning-tools \
	systemd rpm

## deps: the Debian packages the tests need, installed (one apt-get update) only when missing
deps:
	@command -v $(GO) >/dev/null || { echo "go not found: install Go >= 1.26 from https://go.dev/dl"; exit 1; }
	@missing=$$(for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing:" $$missing; apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; fi

## lint: gofmt must list nothing, go vet must pass, every module must be tidy
lint: tidy-check
	@out=$$(gofmt -l $(patsubst ./%,%,$(MODULES))); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

## tidy-check: fails when `go mod tidy` would change a module's go.mod or go.sum
## (each module alone, GOWORK=off, so its go.mod says what it imports), or when
## two modules require different versions of one dependency. TIDY_DIRS: the
## module directories (default: all of go.work); internal/tidycheck_test.go runs
## it on untidy modules.
TIDY_DIRS ?= $(MODULES)
tidy-check:
	@rc=0; for d in $(TIDY_DIRS); do \
		out=$$(cd $$d && GOWORK=off $(GO) mod tidy -diff 2>&1) || { rc=1; \
			echo "$$d: go mod tidy would change go.mod/go.sum: run (cd $$d && GOWORK=off go mod tidy) and commit"; echo "$$out"; }; \
	done; \
	skew=$$(awk '/^require \(/ {b=1; next} /^\)/ {b=0} b && NF >= 2 {print $$1, $$2} /^require [^(]/ {print $$2, $$3}' \
		$(addsuffix /go.mod,$(TIDY_DIRS)) | sort -u | awk '{n[$$1]++; v[$$1] = v[$$1] " " $$2} END {for (m in n) if (n[m] > 1) print m ":" v[m]}'); \
	if [ -n "$$skew" ]; then rc=1; \
		echo "modules require different versions of:"; echo "$$skew"; \
		echo "require the newest in every module (go get DEP@VERSION in each) and run go mod tidy"; fi; \
	exit $$rc

## unit: go test for every module in go.work (fuzz seeds run as tests; the
## partition matrix and its two negative controls run once, in partition-test);
## the OCF agent's ocf-tester run is required here, not skipped
unit:
	MQRES_REQUIRE_OCF_TESTER=1 $(GO) test -count=1 -skip '^TestPartition(Matrix|UnfencedControl|BrokenFUAControl)$$' $(PKGS)

## test: everything CI checks
test: deps lint unit dist-check conformance-gate e2e-vm-smoke e2e-vm-provision partition-test soak-test lab-test

## conformance: full iscsi-test-cu run against tandem-target, prints the table
conformance: build
	$(BIN)/conformance --target-bin $(BIN)/tandem-target --json $(BIN)/conformance.json $(CONFORMANCE_FLAGS)

## conformance-gate: fail on failures outside expected-failures.txt and on regressions from baseline.txt
conformance-gate: deps build
	$(BIN)/conformance --gate --target-bin $(BIN)/tandem-target --json $(BIN)/conformance.json $(CONFORMANCE_FLAGS)

## conformance-tgt: the same run against tgt, the reference (apt-get install tgt)
conformance-tgt: build
	@command -v tgtd >/dev/null || { apt-get update && apt-get install -y tgt; }
	$(BIN)/conformance --target tgt $(CONFORMANCE_FLAGS)

## conformance-baseline: record tandem-target's passing tests in e2e/conformance/baseline.txt
conformance-baseline: build
	$(BIN)/conformance --update-baseline --target-bin $(BIN)/tandem-target $(CONFORMANCE_FLAGS)

## bench: tandem-bench against a fresh tandem-target with a preallocated 1 GiB file LUN
bench: build
	$(BIN)/conformance exec --target-bin $(BIN)/tandem-target --preallocate --thin=false --lun-size 1GiB -- \
		$(BIN)/tandem-bench $(BENCH_FLAGS) {url}

## bench-peers: tandem-target against tgt 1.0.85 (Debian, installed on demand)
## and gotgt v0.2.2 (the e2e module's tool, built from the module cache with
## CGO_ENABLED=0) under the same clients, qemu-img bench over libiscsi and
## tandem-bench: interleaved repetitions, medians, ratios, target CPU per I/O,
## stalled runs counted; prints the README's Markdown table
BENCH_PEERS_FLAGS ?=
.PHONY: bench-peers
bench-peers: build
	@command -v tgtd >/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y tgt; }
	cd e2e && CGO_ENABLED=0 $(GO) build -o $(BIN)/gotgt github.com/gostor/gotgt
	$(BIN)/bench-peers --tandem-bin $(BIN)/tandem-target --gotgt-bin $(BIN)/gotgt \
		--bench-bin $(BIN)/tandem-bench $(BENCH_PEERS_FLAGS)

## bench-scale: tandem-target with 256 sessions from 64 initiator names over 64
## LUNs against 1 session at the same total depth, a 256-session login storm,
## memory per idle session; fails when a goal of issue 15 is missed
BENCH_SCALE_FLAGS ?=
.PHONY: bench-scale
bench-scale: build
	$(BIN)/bench-scale --tandem-bin $(BIN)/tandem-target $(BENCH_SCALE_FLAGS)

## demo: the seed's deployment in qemu guests (root): storage, MQMaster and
## MQSlave, a client putting persistent messages through the VIP, MQMaster
## powered off, MQSlave takes over; the steps as they happen, the table, the
## report's path. Leaves nothing running.
demo: deps
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./e2e/cmd/tandem-lab
	$(BIN)/tandem-lab demo $(LAB_FLAGS)

## demo-target: tandem-target in the foreground on 127.0.0.1:3260, 10 GiB sparse LUN, CHAP (the old demo's second half)
.PHONY: demo-target
demo-target: build
	$(BIN)/tandem-demo --state-dir $(DEMO_STATE) --target-bin $(BIN)/tandem-target

clean:
	rm -rf $(BIN)

## mqres-test: the IBM MQ resource's tests against its stand-in, including
## Debian's ocf-tester (resource-agents, installed when missing) on ocf:tandem:ibmmq
.PHONY: mqres-test
mqres-test:
	@command -v ocf-tester >/dev/null || { apt-get update && apt-get install -y resource-agents; } || \
		echo "mqres-test: resource-agents could not be installed: the ocf-tester test will be SKIPPED"
	@if command -v ocf-tester >/dev/null; then export MQRES_REQUIRE_OCF_TESTER=1; fi; \
		$(GO) test -count=1 ./mqres/...

.PHONY: bench-failover
## bench-failover: 20 power-offs and 20 standbys of the active node in network namespaces (root), default timings,
## then FENCED_ROUNDS fenced power-offs (tandem-target, fence resource, disk heartbeat, blockwriter)
FENCED_ROUNDS ?= 20
bench-failover:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./ha/cmd/tandem-agent ./e2e/cmd/failover-bench ./target/cmd/tandem-target ./e2e/cmd/blockwriter
	$(BIN)/failover-bench --agent-bin $(BIN)/tandem-agent --target-bin $(BIN)/tandem-target --writer-bin $(BIN)/blockwriter \
		--fenced-rounds $(FENCED_ROUNDS) $(FAILOVER_FLAGS)

## demo-ha: two tandem-agents in network namespaces with a VIP, one failover shown step by step (root)
.PHONY: demo-ha
demo-ha:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./ha/cmd/tandem-agent ./e2e/cmd/failover-bench
	$(BIN)/failover-bench --demo --agent-bin $(BIN)/tandem-agent

## e2e-vm-smoke: qemu guest (TCG) with the kernel iSCSI initiator against tandem-target over a lab bridge
# Installs the lab's Debian packages when missing; the guest kernel is
# downloaded with apt-get download and unpacked under build/vm, never
# installed. Skips (exit 0) when not root or without /dev/net/tun.
.PHONY: e2e-vm-smoke
e2e-vm-smoke: deps
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./target/cmd/tandem-target ./e2e/cmd/vmsmoke
	$(BIN)/vmsmoke --target-bin $(BIN)/tandem-target $(VM_SMOKE_FLAGS)

## e2e-vm-tas: two qemu guests (kernel initiator): B's PREEMPT AND ABORT while A has 1 MiB writes in flight;
## every write of A answered within 1 s, no abort/reset in A's kernel log, B's next PR commands succeed;
## (the negative control, --only no-tas against TANDEM_TEST_NO_TAS=1, saw the hang in 1 of 3 runs: not yet in here)
.PHONY: e2e-vm-tas
e2e-vm-tas: deps
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./target/cmd/tandem-target ./e2e/cmd/tasvm
	$(BIN)/tasvm --target-bin $(BIN)/tandem-target --only tas $(VM_TAS_FLAGS)

## e2e-vm-provision: one qemu guest with a sparse virtio disk: tandemctl provision (10 GiB thin LV, target, LUN,
## ACL, CHAP) twice (the second changes nothing), the host's native initiator writes and reads with the printed
## secret, volume resize +1G reaches it as CAPACITY DATA HAS CHANGED, a restarted target serves the same LUN,
## a wrong secret and a name outside the ACL are refused
.PHONY: e2e-vm-provision
e2e-vm-provision: deps
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./e2e/cmd/vmprovision
	$(BIN)/vmprovision $(VM_PROVISION_FLAGS)

## partition-test: the partition matrix of issues 6 and 11 in network namespaces (root): one fault per row,
## judged from the target's audit (no write of the fenced node accepted after the fence, one writer at a
## time on the shared range, every block's last accepted writer on the disk), the writers' ack logs and a
## read-back (no acknowledged FUA write lost on volatile storage), service back or put; and the two
## negative controls (no fence and no disk heartbeat: dual writes found; broken FUA: lost blocks found)
.PHONY: partition-test
partition-test:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./ha/cmd/tandem-agent ./target/cmd/tandem-target ./e2e/cmd/blockwriter
	PARTITION_AGENT_BIN=$(BIN)/tandem-agent PARTITION_TARGET_BIN=$(BIN)/tandem-target PARTITION_WRITER_BIN=$(BIN)/blockwriter \
		$(GO) test -count=1 -timeout 10m -v ./e2e/partition/...

## dist: the release into build/dist (DIST_OUT): static binaries stamped with
## version and commit, deb and rpm packages (nfpm), the offline bundle
## tandem-VERSION-linux-amd64.tar.gz, SHA256SUMS. Built from a clean export
## of HEAD (uncommitted changes are not released), dated by the commit's time.
DIST_OUT ?= $(CURDIR)/build/dist
.PHONY: dist dist-check
dist:
	@src=$$(mktemp -d $(CURDIR)/build/dist-src.XXXXXX) && trap 'rm -rf "$$src"' EXIT && \
	git archive HEAD | tar -x -C "$$src" && cd "$$src" && \
	$(GO) run ./dist/cmd/tandem-dist --root . --out $(DIST_OUT) \
		--version "$$(git -C $(CURDIR) describe --always)" --commit "$$(git -C $(CURDIR) rev-parse HEAD)" \
		--epoch "$$(git -C $(CURDIR) log -1 --format=%ct)"

## dist-check: two dist runs give identical SHA256SUMS; the .deb installs here
## (units pass systemd-analyze verify, --version answers) and purges without a
## trace; the .rpm checked with rpm in a scratch root; install.sh without
## network into a scratch root, and refusing a 2.6.32 kernel (root)
dist-check: deps
	@mkdir -p $(CURDIR)/build
	$(MAKE) --no-print-directory dist DIST_OUT=$(CURDIR)/build/dist-again
	$(MAKE) --no-print-directory dist DIST_OUT=$(DIST_OUT)
	@diff $(CURDIR)/build/dist-again/SHA256SUMS $(DIST_OUT)/SHA256SUMS || \
		{ echo "dist-check: FAIL: two dist runs differ (not reproducible)"; exit 1; }
	@rm -rf $(CURDIR)/build/dist-again
	@echo "dist-check: two dist runs: identical SHA256SUMS ($$(wc -l < $(DIST_OUT)/SHA256SUMS) files)"
	dist/check.sh $(DIST_OUT)

## lab: the VM lab (issue 13, root): storage, MQMaster, MQSlave in qemu (TCG) inside a
## lab network namespace, the counting client through the VIP, every scenario; report under build/lab
## lab-test: the scenarios make test runs (power-off, heartbeat-link cut; about 2.5 min with the image cached)
## lab-negative: the checker's negative control: both node-to-node links cut with the fence
## off must be reported as a dual mount
## lab-chaos DURATION=10m SEED=N: random scenarios (a lab each) until DURATION is spent; the seed
## is printed (SEED=0: from the clock) and replays the same schedule
## lab-up: the lab in the foreground (Ctrl-C or make lab-down ends it; -timeout 30m by default);
## lab-shell NODE=mqmaster [CMD='ip addr']: a command, or stdin's lines, in a guest of the running lab
LAB_FLAGS ?=
LAB_SCENARIOS ?= all
.PHONY: lab lab-test lab-negative lab-chaos lab-bench lab-up lab-down lab-shell
NODE ?= mqmaster
CMD  ?=
lab-up: deps
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./e2e/cmd/tandem-lab
	$(BIN)/tandem-lab up $(LAB_FLAGS)

lab-down:
	$(GO) build -o $(BIN)/ ./e2e/cmd/tandem-lab
	$(BIN)/tandem-lab down

lab-shell:
	$(GO) build -o $(BIN)/ ./e2e/cmd/tandem-lab
	$(BIN)/tandem-lab shell $(NODE) $(CMD)

lab: deps
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./e2e/cmd/tandem-lab
	$(BIN)/tandem-lab run -scenarios $(LAB_SCENARIOS) $(LAB_FLAGS)

lab-test: deps
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./e2e/cmd/tandem-lab
	$(BIN)/tandem-lab run -scenarios power-off,heartbeat-cut $(LAB_FLAGS)

lab-negative: deps
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./e2e/cmd/tandem-lab
	$(BIN)/tandem-lab negative $(LAB_FLAGS)

DURATION ?= 10m
SEED ?= 0
lab-chaos: deps
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./e2e/cmd/tandem-lab
	$(BIN)/tandem-lab chaos -duration $(DURATION) -seed $(SEED) $(LAB_FLAGS)

## lab-bench: N power-offs of the active node: median and worst time to the first acknowledged put via the VIP
N ?= 10
lab-bench: deps
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./e2e/cmd/tandem-lab
	$(BIN)/tandem-lab bench -n $(N) $(LAB_FLAGS)

## soak: ROUNDS fenced failovers back and forth in the partition lab (root): graceful standbys of alpha
## alternating with SIGKILLs of beta's agent, guard and writer (beta's agent restarted); after every round
## both agents active/standby and seeing each other, the VIP and writer on the active node, READ KEYS only
## the active node's two registrations; at the end fds, goroutines, threads and RSS of both agents and the
## target flat after warm-up (median of the window after the first 10 % vs the last window, 5 % + slack)
ROUNDS ?= 50
.PHONY: soak soak-test
soak:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./ha/cmd/tandem-agent ./target/cmd/tandem-target ./e2e/cmd/blockwriter ./e2e/cmd/soak
	$(BIN)/soak --rounds $(ROUNDS) --agent-bin $(BIN)/tandem-agent --target-bin $(BIN)/tandem-target --writer-bin $(BIN)/blockwriter

## soak-test: the 50-round soak of make test
soak-test:
	$(MAKE) soak ROUNDS=50

## chaos-timing: the partition lab at default timings for DURATION, twice (realtime on, then --no-realtime):
## the active node's CPUs saturated by busy loops in its namespace, 10 % random loss (nftables numgen) on
## every link of both nodes, 300 ms bursts of total loss on the dedicated link every 3 s, GOGC=10 in the
## agents; fails on any failover, prints the worst heartbeat gap (histogram bucket bound)
DURATION ?= 10m
.PHONY: chaos-timing
chaos-timing:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./ha/cmd/tandem-agent ./target/cmd/tandem-target ./e2e/cmd/blockwriter ./e2e/cmd/chaos-timing
	$(BIN)/chaos-timing --duration $(DURATION) --agent-bin $(BIN)/tandem-agent --target-bin $(BIN)/tandem-target --writer-bin $(BIN)/blockwriter
