# Shared by Makefile.infra (build-lambdas) and infra/lambda/Makefile (sam build): one cargo-lambda
# command for all seven function crates, so that the per-function `sam build` steps run exactly
# the same command as `make build-lambdas` and are cargo cache hits after the first.
LAMBDA_FUNCTIONS := ingest plan scale launch task-events aggregate finish

lambda_empty :=
lambda_space := $(lambda_empty) $(lambda_empty)
lambda_comma := ,
LAMBDA_PACKAGES := $(foreach f,$(LAMBDA_FUNCTIONS),-p sluice-fn-$(f))
LAMBDA_FEATURES := $(subst $(lambda_space),$(lambda_comma),$(foreach f,$(LAMBDA_FUNCTIONS),sluice-fn-$(f)/lambda))

# Release, arm64 (Graviton Lambda), feature "lambda" of every function crate. Binaries land in
# target/lambda/<name>/bootstrap.
CARGO_LAMBDA_BUILD_ALL := cargo lambda build --release --arm64 $(LAMBDA_PACKAGES) --features $(LAMBDA_FEATURES)
