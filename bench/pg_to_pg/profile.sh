#!/usr/bin/env bash
# Where does qiao's CPU go in the 1,000,000-row full load? Builds qiao with line tables
# and frame pointers in its own target dir (bench/data/prof-target, so the shared
# target/ keeps its normal release build), records one full load with
# `perf record --call-graph dwarf` and splits the samples into flow phases (phases.py).
# Needs perf (linux-perf) and setup.sh's data. Not a timing run: perf slows qiao down.
#
# Env: BATCH (flow batch_size, default 10000), FREQ (samples/s, default 149),
# SKIP_BUILD=1 (reuse the last profiling build), PROF_TARGET (cargo target dir for it).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH="$(dirname "$HERE")"
ROOT="$(dirname "$BENCH")"
DATA="$BENCH/data/pg_to_pg/profile"
TARGET="${PROF_TARGET:-$BENCH/data/prof-target}"
BATCH="${BATCH:-10000}"
FREQ="${FREQ:-149}"
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
mkdir -p "$DATA"
command -v perf >/dev/null || { echo "profile.sh: perf is not installed (apt-get install linux-perf)" >&2; exit 1; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  (cd "$ROOT" && CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_PROFILE_RELEASE_STRIP=none \
    RUSTFLAGS="-C force-frame-pointers=yes" cargo build --release -p qiao --target-dir "$TARGET")
fi
BIN="$TARGET/release/qiao"
sed -e "s|^store: .*|store: qiao-profile.db|" -e "s|^    batch_size: .*|    batch_size: $BATCH|" \
  "$HERE/qiao.yaml" > "$DATA/qiao.yaml"
rm -f "$DATA"/qiao-profile.db*
psql -X -q -d qiao_bench_erp -c "TRUNCATE erp_customers" -c "CHECKPOINT"

perf record -q -F "$FREQ" --call-graph dwarf,16384 -o "$DATA/perf.data" \
  "$BIN" -c "$DATA/qiao.yaml" run customers_crm_to_erp
perf script -i "$DATA/perf.data" -F comm,tid,ip,sym 2>/dev/null > "$DATA/perf-script.txt"
python3 "$HERE/phases.py" "$DATA/perf-script.txt" | tee "$DATA/phases.txt"
echo "details: python3 $HERE/phases.py $DATA/perf-script.txt --detail 'RuleEngine::validate'"
