# Shared by Makefile.infra (build-lambdas) and infra/lambda/Makefile (sam build): one cargo-lambda
# command for all eight function crates, so that the per-function `sam build` steps run exactly
# the same command as `make build-lambdas` and are cargo cache hits after the first.
LAMBDA_FUNCTIONS := ingest plan scale launch task-events aggregate finish execution-events

lambda_empty :=
lambda_space := $(lambda_empty) $(lambda_empty)
lambda_comma := ,
LAMBDA_PACKAGES := $(foreach f,$(LAMBDA_FUNCTIONS),-p sluice-fn-$(f))
LAMBDA_FEATURES := $(subst $(lambda_space),$(lambda_comma),$(foreach f,$(LAMBDA_FUNCTIONS),sluice-fn-$(f)/lambda))

# Release, arm64 (Graviton Lambda), feature "lambda" of every function crate. Binaries land in
# target/lambda/<name>/bootstrap of the repository, whatever CARGO_TARGET_DIR is (the Makefile
# points that outside the clone, where cargo-lambda would otherwise put them).
# LAMBDA_TARGET_DIR: cargo's target directory for this build (default: CARGO_TARGET_DIR's
# `lambda-arm64` sibling, so a release arm64 build never holds the lock of the test build's).
LAMBDA_REPO_ROOT ?= $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/../..)
LAMBDA_TARGET_DIR ?= $(if $(CARGO_TARGET_DIR),$(CARGO_TARGET_DIR)-lambda-arm64,$(LAMBDA_REPO_ROOT)/target)
# (The directory goes in the environment: cargo-lambda 1.x passes `--target-dir` on to
# `cargo metadata`, which rejects it.)
CARGO_LAMBDA_BUILD_ALL := CARGO_TARGET_DIR=$(LAMBDA_TARGET_DIR) cargo lambda build --release --arm64 \
  $(LAMBDA_PACKAGES) --features $(LAMBDA_FEATURES) --lambda-dir $(LAMBDA_REPO_ROOT)/target/lambda

# The release profile keeps debug info (for profiling the local binaries); a Lambda package
# does not need it: 88 MB -> 23 MB per bootstrap. llvm-strip reads aarch64 ELF (binutils'
# strip does not); Debian package `llvm`. Without it the binaries stay as they are (they still
# fit Lambda's 250 MB unzipped limit).
LAMBDA_STRIP := $(or $(shell command -v llvm-strip 2>/dev/null),true)
