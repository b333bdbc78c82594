# orderstream — every entry point. `make help` lists them.
#
# Everything runs natively on Debian: scripts/ install what is missing
# (apt-get, Maven Central) and keep all state in the git-ignored .local/.

# Every port's default (run, test, chaos, bench): one file that the scripts read too.
include ports.env

LOCAL                 ?= .local
INBOX                 ?= data/inbox
ARCHIVE               ?=
ARCHIVE_AFTER         ?=
PG_PORT               ?= $(PORT_RUN_PG)
KAFKA_PORT            ?= $(PORT_RUN_KAFKA)
KAFKA_CONTROLLER_PORT ?= $(PORT_RUN_KAFKA_CONTROLLER)
PARTITIONS            ?= 6
BROKERS               ?= 1
PROFILE               ?= release
ORDERS                ?= 1000000
SEED                  ?= 42
# Where docs/operations.md is served: every alert's runbook link starts here
# (`make run` and `make up`); and Alertmanager's configuration under `make run`.
RUNBOOK_BASE_URL      ?= file://$(CURDIR)/docs/operations.md
ALERTMANAGER_CONFIG   ?= compose/alertmanager/alertmanager.yml

# The operator commands (status, dead letters, replay) run the binaries `make run` built.
RELEASE_FLAG = $(if $(filter debug,$(PROFILE)),,--release)
NEED_RUN     = test -f $(LOCAL)/env || { echo "$@: no $(LOCAL)/env: start the stack with \`make run\` first" >&2; exit 2; }

export LOCAL INBOX ARCHIVE ARCHIVE_AFTER PG_PORT KAFKA_PORT KAFKA_CONTROLLER_PORT PARTITIONS PROFILE BROKERS
export RUNBOOK_BASE_URL ALERTMANAGER_CONFIG

.PHONY: help run demo status verify dead-letters redrive down clean test deps services test-services gen report report-screenshot bench bench-compare lint up secrets compose-check chaos chaos-cluster soak fuzz replay replay-topic

# Docker Compose (`make up`): the plugin or the standalone tool; empty without either.
COMPOSE_YML = compose/docker-compose.yml
COMPOSE     = $(shell if docker compose version >/dev/null 2>&1; then echo "docker compose"; \
                elif command -v docker-compose >/dev/null 2>&1; then echo docker-compose; fi)

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(firstword $(MAKEFILE_LIST)) | awk -F':.*## ' '{ printf "  make %-14s %s\n", $$1, $$2 }'

run: ## start the stack and the pipeline, load the inbox (INBOX must exist; a fresh clone's first run gets sample orders), wait until caught up (BROKERS=3: a three-node Kafka cluster, topics replicated 3 times)
	@bash scripts/run.sh

demo: ## `make run` on made-up sample orders: SAMPLE_ORDERS (default 5000) into data/inbox/sample-orders.csv; refuses a warehouse holding real orders
	@DEMO=1 bash scripts/run.sh

status: ## what the `make run` pipeline is doing: files, processes, lag, freshness, dead letters (exit 0 caught up, 1 behind, 2 unreachable; STATUS_ARGS=--json)
	@$(NEED_RUN)
	@. $(LOCAL)/env && cargo run $(RELEASE_FLAG) --quiet --bin orderstream-status -- $(STATUS_ARGS)

verify: ## account for every line of every export (inbox and archive, or FILES="a.csv b.csv") against PostgreSQL: stored, superseded, dead-lettered, in flight, altered, missing (exit 0 nothing missing, 1 missing or altered, 2 unreadable; VERIFY_ARGS="--json", "--since 24h")
	@$(NEED_RUN)
	@. $(LOCAL)/env && cargo run $(RELEASE_FLAG) --quiet --bin orderstream-verify -- $(VERIFY_ARGS) $(FILES)

dead-letters: ## bad lines and unwritable records of both stages, without SQL (DL_ARGS, default "list --pending"; e.g. "list --reason invalid_amount", "resolve --file 2022_08.csv", "export --output dead-letters.csv")
	@$(NEED_RUN)
	@. $(LOCAL)/env && cargo run $(RELEASE_FLAG) --quiet --bin orderstream-consumer -- dead-letters $(or $(DL_ARGS),list --pending)

redrive: ## publish the consumer's dead letters to the orders topic again, once their cause is fixed
	@$(NEED_RUN)
	@. $(LOCAL)/env && cargo run $(RELEASE_FLAG) --quiet --bin orderstream-consumer -- redrive

down: ## stop everything `make run` started, and the Compose stack if it is up (data kept)
	@bash scripts/down.sh
	@if [ -n "$(COMPOSE)" ] && [ -f compose/.env ] && [ -n "$$($(COMPOSE) -f $(COMPOSE_YML) ps -q 2>/dev/null)" ]; then \
	    $(COMPOSE) -f $(COMPOSE_YML) down; fi

up: ## the whole stack in Docker Compose, built from this checkout (needs Docker; `make secrets` first)
	@test -n "$(COMPOSE)" || { echo "up: Docker Compose not found (docker compose or docker-compose); \`make run\` runs the stack without Docker" >&2; exit 1; }
	@test -f compose/.env || { echo "up: compose/.env is missing: run \`make secrets\` first" >&2; exit 1; }
	@mkdir -p $(INBOX)
	ORDERSTREAM_HOST_INBOX=$(abspath $(INBOX)) $(COMPOSE) -f $(COMPOSE_YML) up -d --build
	@echo "up: starting; Grafana http://127.0.0.1:3000, Metabase http://127.0.0.1:3030, Prometheus http://127.0.0.1:9090, Alertmanager http://127.0.0.1:9093 (docs/operations.md: \"Run with Docker\")"

secrets: ## write compose/.env with generated passwords for `make up` (never overwrites)
	@bash scripts/secrets.sh

compose-check: ## validate the Compose files (and the three-broker override), lint the Dockerfile, check its COPY sources (no Docker engine needed)
	@bash scripts/compose-check.sh

clean: ## stop everything (test services too) and delete .local/ (LOCAL): the warehouse, every order in it; asks first (YES=1 without a terminal)
	@YES="$(YES)" bash scripts/confirm-clean.sh
	@$(MAKE) --no-print-directory down
	@bash scripts/kafka.sh stop .local/test/kafka $(PORT_TEST_KAFKA) $(PORT_TEST_KAFKA_CONTROLLER)
	@bash scripts/postgres.sh stop .local/test/pg $(PORT_TEST_PG)
	@bash scripts/kafka.sh stop .local/chaos/kafka $(PORT_CHAOS_KAFKA) $(PORT_CHAOS_KAFKA_CONTROLLER)
	@bash scripts/postgres.sh stop .local/chaos/pg $(PORT_CHAOS_PG)
	@bash scripts/kafka.sh stop .local/bench/kafka $(PORT_BENCH_KAFKA) $(PORT_BENCH_KAFKA_CONTROLLER)
	@bash scripts/kafka.sh stop .local/bench/cluster $(PORT_BENCH_CLUSTER_KAFKA_1),$(PORT_BENCH_CLUSTER_KAFKA_2),$(PORT_BENCH_CLUSTER_KAFKA_3) \
	    $(PORT_BENCH_CLUSTER_KAFKA_CONTROLLER_1),$(PORT_BENCH_CLUSTER_KAFKA_CONTROLLER_2),$(PORT_BENCH_CLUSTER_KAFKA_CONTROLLER_3)
	@bash scripts/kafka.sh stop .local/chaos-cluster/kafka $(PORT_CHAOS_CLUSTER_KAFKA_1),$(PORT_CHAOS_CLUSTER_KAFKA_2),$(PORT_CHAOS_CLUSTER_KAFKA_3) \
	    $(PORT_CHAOS_CLUSTER_KAFKA_CONTROLLER_1),$(PORT_CHAOS_CLUSTER_KAFKA_CONTROLLER_2),$(PORT_CHAOS_CLUSTER_KAFKA_CONTROLLER_3)
	@bash scripts/postgres.sh stop .local/chaos-cluster/pg $(PORT_CHAOS_CLUSTER_PG)
	@bash scripts/postgres.sh stop .local/bench/pg $(PORT_BENCH_PG)
	@bash scripts/connect.sh stop .local/bench/connect $(PORT_BENCH_CONNECT)
	rm -rf $(LOCAL)

test: ## every test, with its own PostgreSQL and Kafka
	@bash scripts/test.sh

deps: ## install missing Debian packages (PostgreSQL, Java 17, Maven, build tools, Chromium)
	@bash scripts/deps.sh

services: deps ## start only PostgreSQL and Kafka for `make run` (BROKERS=3: the cluster)
	@bash scripts/postgres.sh start $(LOCAL)/pg $(PG_PORT)
	@bash scripts/kafka.sh start $$(bash scripts/run-kafka-args.sh)

test-services: ## start only the test PostgreSQL and Kafka (then `. .local/test/env`)
	@bash -c '. scripts/test-services.sh && start_test_services .local/test $(PORT_TEST_PG) $(PORT_TEST_KAFKA) $(PORT_TEST_KAFKA_CONTROLLER)'

gen: ## write ORDERS generated orders (seed SEED) to $(INBOX)/generated-SEED.csv
	@mkdir -p $(INBOX)
	cargo run --release --quiet --bin orderstream-gen -- --orders $(ORDERS) --seed $(SEED) --output $(INBOX)/generated-$(SEED).csv

report: ## render the "Orders and baskets analysis" from PostgreSQL to $(LOCAL)/report/index.html
	@test -f $(LOCAL)/env || { echo "report: no $(LOCAL)/env; run \`make run\` first" >&2; exit 1; }
	@. $(LOCAL)/env && cargo run --release --quiet --bin orderstream-analytics -- report --output $(LOCAL)/report/index.html

report-screenshot: test-services ## refresh docs/report.png: the report of the seed exports (../shared; generated orders without it), in headless Chromium (crates/e2e/tests/report.rs)
	cargo build --workspace --bins
	@. .local/test/env && ORDERSTREAM_REPORT_SCREENSHOT=$(CURDIR)/docs/report.png \
	  cargo test -p orderstream-e2e --features integration-tests --test report

replay: ## publish FILE again with its original versions (EPOCH=N to give the epoch): restores lost rows, never overrides later corrections
	@test -n "$(FILE)" || { echo "replay: FILE=path/to/export.csv is required" >&2; exit 1; }
	@$(NEED_RUN)
	@. $(LOCAL)/env && cargo run $(RELEASE_FLAG) --quiet --bin orderstream-producer -- replay "$(FILE)" $(if $(EPOCH),--epoch $(EPOCH))

replay-topic: ## read the whole orders topic again (SINCE=RFC3339 from that time); stop the consumers first; YES=1 moves, else shows
	@$(NEED_RUN)
	@. $(LOCAL)/env && cargo run $(RELEASE_FLAG) --quiet --bin orderstream-consumer -- replay $(if $(SINCE),--to-datetime $(SINCE),--to-earliest) $(if $(YES),--yes)

bench: ## throughput, latency, memory against COPY, Kafka and a naive baseline (quick: BENCH_ORDERS=100000 BENCH_LATENCY_SECONDS=10; BENCH_ARGS=--help)
	@bash scripts/bench.sh $(BENCH_ARGS)

bench-compare: ## this tree against REF (default: the last release in crates/bench/releases.tsv), alternately, new/old per figure (BENCH_ORDERS=100000, BENCH_ROUNDS=2, BENCH_MIN_RATIO to fail)
	@REF="$(REF)" bash scripts/bench-compare.sh $(BENCH_ARGS)

chaos: ## the reliability suite: every fault scenario, one table (CHAOS_ARGS="--fast --only 1,12a")
	@bash scripts/chaos.sh run $(CHAOS_ARGS)

chaos-cluster: ## the suite's load, ledger and invariant on a three-node Kafka cluster: broker and controller kills, a broker down or paused, a rolling restart, a three-consumer group (~15 min; CHAOS_ARGS="--only c1,c5")
	@bash scripts/chaos.sh cluster $(CHAOS_ARGS)

soak: ## the pipeline at a steady rate for SOAK_DURATION (default 30m; SOAK_MINUTES still read), memory sampled, invariant checked
	@bash scripts/chaos.sh soak --duration $(or $(SOAK_DURATION),$(if $(SOAK_MINUTES),$(SOAK_MINUTES)m),30m) --rate $(or $(SOAK_RATE),1000)

fuzz: ## every cargo fuzz target (FUZZ_TARGETS: some) for FUZZ_SECONDS each (default 300; nightly toolchain)
	@bash scripts/fuzz.sh

lint: ## formatting, clippy on every crate and test (warnings are errors), rustdoc without warnings, no module import cycle; CI runs it first
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --features orderstream-e2e/integration-tests -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps
	python3 scripts/module-cycles.py
