# sluice — two commands on a fresh machine:
#   make demo   build and run the reference BER job on this machine (no AWS, no Docker)
#   make test   install the test tools and run every test (unit, end-to-end, moto, infra lint)
#
# Cargo builds into one target directory outside the clone, so repeated runs (and CI, which
# starts from a fresh clone on the same machine) reuse the compiled AWS SDK crates.

export CARGO_TARGET_DIR ?= $(HOME)/.cache/sluice-target
RELEASE := $(CARGO_TARGET_DIR)/release
SLUICE  := $(RELEASE)/sluice
DEMO_WORKDIR ?= .sluice/demo
# The workspace's declared minimum Rust version (Cargo.toml `rust-version`), checked by `make msrv`.
MSRV := $(shell sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
SCALE ?= 0.01

.DEFAULT_GOAL := help
.PHONY: help demo demo-spot demo-full demo-daily build test test-tools test-rust msrv lint fmt bench

help:
	@echo "make demo       run the 200-task BER job locally (SCALE=$(SCALE); SCALE=1 is full size)"
	@echo "make demo-spot  the same with 20% of task attempts interrupted like Spot reclaims"
	@echo "make demo-daily the daily-CSV pipeline: clean, analyse in chunks, merge, record (python3)"
	@echo "make test       install test tools and run all tests"
	@echo "make lint       cargo fmt --check, clippy -D warnings, infra lint"
	@echo "make msrv       check the workspace with its declared rust-version ($(MSRV))"
	@echo "make deploy     deploy to AWS (see docs/deploy.md)"

build:
	cargo build --release -p sluice-cli -p ber-sim

demo: build
	$(SLUICE) run examples/ber/ber-job.csv --pipeline examples/ber/pipeline.toml \
	  --workdir $(DEMO_WORKDIR) --scale $(SCALE)

demo-spot: build
	$(SLUICE) run examples/ber/ber-job.csv --pipeline examples/ber/pipeline.toml \
	  --workdir $(DEMO_WORKDIR) --scale $(SCALE) --spot-interruptions 0.2 --seed 7

demo-full: build
	$(SLUICE) run examples/ber/ber-job.csv --pipeline examples/ber/pipeline.toml \
	  --workdir $(DEMO_WORKDIR) --scale 1

# An absolute work directory: tasks run in the pipeline's directory, and sluice hands them
# {input} / {output} paths under the work directory as given on the command line.
demo-daily: build
	$(SLUICE) run examples/daily-csv/data/sales-2026-12-01.csv \
	  --pipeline examples/daily-csv/pipeline.toml --workdir $(abspath $(DEMO_WORKDIR))
	@echo "recorded in examples/daily-csv/out/sales.sqlite (table daily_sales);" \
	  "notifications in examples/daily-csv/out/notifications.jsonl"

# Tools the tests talk to: moto (AWS-API emulator) in its own venv, Chromium and chromedriver
# (the web console's browser test, from the system's packages), and the infra linters.
test-tools:
	bash tests/aws/install.sh
	# Where Chromium cannot be installed (no apt-get, no root), this says why and the console's
	# browser test then fails saying how to install it (or skips with SLUICE_SKIP_BROWSER_TESTS=1).
	bash tests/browser/install.sh || echo "warning: Chromium/chromedriver not installed; the console's browser test will fail"
	# The MSRV toolchain comes from rustup's server, not a package registry: where it cannot
	# be fetched, `make msrv` says so and is skipped rather than failing the whole run.
	rustup toolchain install $(MSRV) --profile minimal || echo "warning: Rust $(MSRV) could not be installed; make msrv will be skipped"
	$(MAKE) infra-tools

test-rust:
	cargo build -p sluice-cli -p ber-sim
	cargo test --workspace --all-features --no-fail-fast

# The declared rust-version must stay true: everything but the AWS edge (sluice-aws, and the
# `lambda`/`aws` features that pull it in, whose locked AWS SDK needs the newer compiler that
# crates/aws/Cargo.toml declares) is checked with that compiler.
msrv:
	@if rustup run $(MSRV) rustc --version >/dev/null 2>&1; then \
	  cargo +$(MSRV) check --locked --workspace --exclude sluice-aws --all-targets; \
	else \
	  echo "SKIPPED: make msrv: the Rust $(MSRV) toolchain is not installed on this machine"; \
	fi

test: test-tools test-rust msrv lint-infra

lint: lint-infra
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

include Makefile.infra
