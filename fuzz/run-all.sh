#!/usr/bin/env bash
# Runs every fuzz target for a bounded time, at low priority, and prints libFuzzer's last
# status line of each. Usage: fuzz/run-all.sh [seconds per target] [target ...]
# Needs cargo-fuzz (`cargo install cargo-fuzz`); works on stable Rust through
# RUSTC_BOOTSTRAP=1 (cargo-fuzz passes -Z flags). See docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-120}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(envelope_decode header_decode body_decode key_id_parse admit_control admit_guest
             open_sealed bundle_parse inspect_envelope)
fi
export RUSTC_BOOTSTRAP=1
# Seed corpus from docs/vectors (cargo-fuzz layout: fuzz/corpus/<target>/).
SEALRPC_FUZZ_CORPUS="$PWD/fuzz/corpus" cargo test -q -p sealrpc-tests --test fuzz_smoke seed_corpus
mkdir -p fuzz/logs
# The fuzz crate keeps its own target dir (ASan builds do not mix with the workspace's).
export FUZZ_TARGET_DIR="$PWD/fuzz/target"
(cd fuzz && CARGO_TARGET_DIR="$FUZZ_TARGET_DIR" nice cargo fuzz build)
for t in "${targets[@]}"; do
    (cd fuzz && CARGO_TARGET_DIR="$FUZZ_TARGET_DIR" nice cargo fuzz run "$t" -- -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1) > "fuzz/logs/$t.log" 2>&1 || {
        echo "$t: FAILED, see fuzz/logs/$t.log"; continue; }
    echo "$t: $(grep -E '^Done [0-9]+ runs' "fuzz/logs/$t.log" || true)" \
         "$(grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "fuzz/logs/$t.log" | tr '\n' ' ')" \
         "corpus $(grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' "fuzz/logs/$t.log" | tail -1)" \
         "cov $(grep -oE 'cov: [0-9]+' "fuzz/logs/$t.log" | tail -1)"
done
