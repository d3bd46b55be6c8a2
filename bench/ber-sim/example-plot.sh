#!/usr/bin/env bash
# Runs one ber-sim task per Eb/N0 point of the reference job (more bits at high
# Eb/N0 so that 12 dB still sees errors) and renders docs/img/ber-example.png
# with sluice-plot's ber_curve example.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/sluice-target}"
cargo build --release -p ber-sim --quiet
cargo build --release -p sluice-plot --example ber_curve --quiet
BIN="$CARGO_TARGET_DIR/release/ber-sim"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
seed=0
for spec in 0:30000:1 2:30000:1 4:30000:1 6:30000:1 8:30000:1 10:300000:1 11:300000:1 12:300000:4; do
  IFS=: read -r db bpf tasks <<<"$spec"
  for _ in $(seq "$tasks"); do
    "$BIN" --ebn0-db "$db" --seed "$seed" --frames 4096 --bits-per-frame "$bpf" --output "$out/task-$seed.json"
    seed=$((seed + 1))
  done
done
"$CARGO_TARGET_DIR/release/examples/ber_curve" docs/img/ber-example.png "$out"/task-*.json
