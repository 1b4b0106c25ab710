#!/usr/bin/env bash
# Speed and memory of the miner, written to bench/results/DATE.md.
#
#   bench/run.sh            # all measurements (needs ../shared next to the repository)
#
# Each measurement runs the release binary RUNS times (default 5) and reports the median
# wall time and the largest peak resident memory (from /usr/bin/time).  The one-million-
# record input is derived from the shared CIDDS sample by bench/make_million.py.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-5}"
SHARED="$(cd ../shared && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/netnomos/target}"
cargo build --release --locked --quiet
BIN="$CARGO_TARGET_DIR/release/netnomos"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
OUT="bench/results/$(date +%F).md"

# measure NAME -- COMMAND...: median wall seconds and max peak KB over RUNS runs.
measure() {
    local name="$1"; shift; shift
    local walls=() peak=0
    for i in $(seq "$RUNS"); do
        rm -rf "$WORK/out"
        /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >"$WORK/stdout" 2>"$WORK/stderr" || true
        read -r wall kb <"$WORK/time"
        walls+=("$wall")
        (( kb > peak )) && peak=$kb
    done
    local median
    median=$(printf '%s\n' "${walls[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    local cmd="$*"
    cmd="${cmd//$BIN/netnomos}"
    cmd="${cmd//$WORK/\$TMP}"
    cmd="${cmd//$SHARED/../shared}"
    printf '| %s | %s s | %s MB | `%s` |\n' "$name" "$median" "$((peak / 1024))" "$cmd" >>"$OUT.rows"
}

python3 bench/make_million.py "$SHARED/data/cidds-001/cidds_wk2_normal_10k.csv" "$WORK/cidds_1m.csv"
CIDDS=(--dataset-spec miner/specs/datasets/cidds.json --grammar miner/specs/grammars/cidds_flows.json)
: >"$OUT.rows"
measure "CIDDS 10k, CSV to written pack" -- "$BIN" mine -q "${CIDDS[@]}" --out "$WORK/out"
measure "CIDDS 1,000,000 records (bench/make_million.py), CSV to written pack" -- \
    "$BIN" mine -q "${CIDDS[@]}" --input "$WORK/cidds_1m.csv" --out "$WORK/out"
"$BIN" mine -q "${CIDDS[@]}" --out "$WORK/packs" >/dev/null
PACK="$WORK/packs/cidds@1.0.0.json"
measure "111 entailment queries (golden_cidds coverage, pack loading included)" -- \
    "$BIN" coverage --pack "$PACK" --golden "$SHARED/benchmarks/golden/golden_cidds/rules.json"
measure "MetaDC 9,553 windows, CSV to written pack" -- \
    "$BIN" mine -q --dataset-spec miner/specs/datasets/metadc.json --grammar miner/specs/grammars/metadc_rules.json --out "$WORK/out"
measure "alexa-app.pcapng, 3-packet TCP windows to written pack" -- \
    "$BIN" mine -q --dataset-spec miner/specs/datasets/tcp_windows.json --grammar miner/specs/grammars/tcp_windows.json \
    --input "$SHARED/data/pcap-ndpi-apps/alexa-app.pcapng" --out "$WORK/out"
REF="$SHARED/reference-specs"
measure "Reference cidds.json + network_flow.json: all 185,514 minimal hitting sets, written" -- \
    "$BIN" mine -q --dataset-spec "$REF/datasets/cidds.json" --grammar "$REF/grammars/network_flow.json" \
    --input "$SHARED/data/cidds-001/cidds_wk2_normal_10k.csv" --max-clause-size 94 --max-rules 1000000000 \
    --keep-equivalent --out "$WORK/out"

# The search alone, for the yardstick (Uno's MMCS: 0.58-0.88 s on this kind of machine).
"$BIN" mine --dataset-spec "$REF/datasets/cidds.json" --grammar "$REF/grammars/network_flow.json" \
    --input "$SHARED/data/cidds-001/cidds_wk2_normal_10k.csv" --max-clause-size 94 --max-rules 1000000000 \
    --keep-equivalent --out "$WORK/yard" 2>"$WORK/yard.log" >/dev/null
SEARCH=$(grep -o 'search [0-9.]*s' "$WORK/yard.log" | head -1)

{
    echo "# Benchmarks, $(date +%F)"
    echo
    echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)."
    echo "Commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with uncommitted changes)')."
    echo "Command: \`bench/run.sh\` (RUNS=$RUNS; median wall time, largest peak resident memory)."
    echo
    echo "| measurement | wall (median) | peak memory | command |"
    echo "|---|---|---|---|"
    cat "$OUT.rows"
    echo
    echo "Reference yardstick, search phase alone: $SEARCH (from the \`mine\` summary)."
} >"$OUT"
rm -f "$OUT.rows"
echo "wrote $OUT"
cat "$OUT"
