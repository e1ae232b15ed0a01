#!/usr/bin/env bash
# Measures qiao and sling copying 1,000,000 customers PostgreSQL -> PostgreSQL (setup.sh
# makes the data). Per repetition and tool:
#   full : a fresh full load (qiao: empty target table + deleted store; sling: full-refresh)
#   incr : after UPDATE of 1% of the source rows (10,000: new updated_at, name and status),
#          an incremental run by updated_at that must carry exactly those rows over.
# Every run is its own process under /usr/bin/time -v, started only when the machine is
# idle; afterwards the target is checked (row count, distinct ids, mapped values, the
# bumped rows). One TSV row per run goes to $RESULTS; summarize.py prints the medians.
#
# Env: REPS (3), TOOLS ("qiao sling"), QIAO_BATCHES (flow batch sizes to measure, e.g.
# "2000 10000"; default the one in qiao.yaml), SKIP_BUILD=1 (use target/release/qiao as
# is), QIAO_BIN (a prebuilt binary; QIAO_VERSION then names it), QUIET_MAX_BUSY_PCT (10),
# QUIET_MAX_LOAD (0.5), QUIET_MAX_WAIT (s, 900), RESULTS, RUN_ID, REP_FROM (first rep
# number, default 1; reps 1-49 use distinct source slices for their updates).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH="$(dirname "$HERE")"
ROOT="$(dirname "$BENCH")"
DATA="$BENCH/data/pg_to_pg"
LOGS="$DATA/logs"
RESULTS="${RESULTS:-$DATA/results.tsv}"
REPS="${REPS:-3}"
TOOLS="${TOOLS:-qiao sling}"
RUN_ID="${RUN_ID:-$(date -u +%Y%m%dT%H%M%SZ)}"
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
export PGOPTIONS="${PGOPTIONS:--c client_min_messages=warning}"
CRM_DB=qiao_bench_crm
ERP_DB=qiao_bench_erp
FLOW=customers_crm_to_erp
mkdir -p "$LOGS"

psql_db() { local db="$1"; shift; psql -X -q -v ON_ERROR_STOP=1 -tA -d "$db" "$@"; }
probe() { python3 "$HERE/probe.py" "$@"; }

pg_isready -h "$PGHOST" -p "$PGPORT" -q || { echo "run.sh: PostgreSQL not reachable at $PGHOST:$PGPORT" >&2; exit 1; }
ROWS="$(psql_db "$CRM_DB" -c "SELECT count(*) FROM customers" 2>/dev/null)" || {
  echo "run.sh: database $CRM_DB has no customers table; run setup.sh first" >&2; exit 1; }
BUMP=$(psql_db "$CRM_DB" -c "SELECT count(*) FROM customers WHERE id % 100 = 1")

# --- the two tools --------------------------------------------------------------------
if [[ " $TOOLS " == *" qiao "* ]]; then
  if [ -z "${QIAO_BIN:-}" ]; then
    [ "${SKIP_BUILD:-0}" = 1 ] || (cd "$ROOT" && cargo build --release -p qiao)
    # A private copy: other people rebuild target/release/qiao while this runs.
    QIAO_BIN="$DATA/qiao-$RUN_ID"
    cp "$ROOT/target/release/qiao" "$QIAO_BIN"
  fi
  QIAO_VERSION="${QIAO_VERSION:-$("$QIAO_BIN" --version | awk '{print $2}')+$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- crates Cargo.toml Cargo.lock || echo -dirty)}"
  # One config per batch size, rendered into data/ so that its store lands there too.
  QIAO_BATCHES="${QIAO_BATCHES:-$(awk '/^    batch_size:/ {print $2}' "$HERE/qiao.yaml")}"
  for b in $QIAO_BATCHES; do
    sed -e "s|^store: .*|store: qiao-b$b.db|" -e "s|^    batch_size: .*|    batch_size: $b|" \
      "$HERE/qiao.yaml" > "$DATA/qiao-b$b.yaml"
    "$QIAO_BIN" -c "$DATA/qiao-b$b.yaml" check >/dev/null
  done
fi
if [[ " $TOOLS " == *" sling "* ]]; then
  SLING_BIN="${SLING_BIN:-$(ls "$BENCH"/.venv/lib/python3*/site-packages/sling_linux_amd64/bin/sling-linux-amd64 2>/dev/null || true)}"
  [ -x "$SLING_BIN" ] || { echo "run.sh: no sling binary in $BENCH/.venv; run setup.sh" >&2; exit 1; }
  SLING_VERSION="$("$SLING_BIN" --version | awk '{print $2}')"
  export SLING_HOME_DIR="$DATA/sling_home" SLING_DISABLE_TELEMETRY=true
  export QIAO_BENCH_CRM="postgresql://$PGUSER@$PGHOST:$PGPORT/$CRM_DB?sslmode=disable"
  export QIAO_BENCH_ERP="postgresql://$PGUSER@$PGHOST:$PGPORT/$ERP_DB?sslmode=disable"
  mkdir -p "$SLING_HOME_DIR"
fi

# --- measuring --------------------------------------------------------------------------
[ -f "$RESULTS" ] || printf 'run_id\ttool\tversion\tvariant\tmode\trep\trows\twall_s\tuser_s\tsys_s\tmax_rss_kb\texit\tload1_before\tbusy_pct_before\tmachine_cpu_s\tpg_src_cpu_s\tpg_dst_cpu_s\tpg_other_cpu_s\tother_cpu_s\tverify\n' > "$RESULTS"

# Waits until the last 5 s were at most QUIET_MAX_BUSY_PCT busy and the 1-minute load is
# at most QUIET_MAX_LOAD (our own previous run counts too: it must have died down).
quiet_wait() {
  local waited=0 max="${QUIET_MAX_WAIT:-900}"
  while :; do
    BUSY=$(probe busy 5)
    LOAD1=$(cut -d' ' -f1 /proc/loadavg)
    if [ "$BUSY" -le "${QUIET_MAX_BUSY_PCT:-10}" ] && awk -v l="$LOAD1" -v m="${QUIET_MAX_LOAD:-0.5}" 'BEGIN {exit !(l <= m)}'; then
      return 0
    fi
    if [ "$waited" -ge "$max" ]; then
      echo "  warning: still busy=${BUSY}% load1=$LOAD1 after ${waited}s; measuring anyway" >&2
      return 0
    fi
    [ $((waited % 60)) = 0 ] && echo "  waiting for a quiet machine (busy=${BUSY}% load1=$LOAD1) ..." >&2
    waited=$((waited + 5))
  done
}

# measure TOOL VERSION VARIANT MODE REP ROWS -- CMD...: one measured process. Besides the
# tool's own figures it records the machine's CPU during the run, PostgreSQL's share of it
# (source backends, target backends, background) and the rest ("other": noise).
measure() {
  local tool="$1" version="$2" variant="$3" mode="$4" rep="$5" rows="$6"; shift 7
  local tag="$RUN_ID-$tool-$variant-$mode-$rep"
  TIME_FILE="$LOGS/$tag.time" LOG_FILE="$LOGS/$tag.log"
  psql_db "$ERP_DB" -c "CHECKPOINT" >/dev/null   # earlier writes are not this run's cost
  quiet_wait
  python3 "$HERE/probe.py" watch "$DATA/.pgcpu" "$CRM_DB" "$ERP_DB" &   # not via probe(): kill must reach python
  local watcher=$!
  sleep 0.3   # let the watcher take its first sample
  probe snap "$DATA/.snap0"
  local rc=0
  /usr/bin/time -v -o "$TIME_FILE" "$@" >"$LOG_FILE" 2>&1 || rc=$?
  probe snap "$DATA/.snap1"
  kill -TERM "$watcher"; wait "$watcher" || true
  local machine pg_src pg_dst pg_bg wall user sys rss other
  machine=$(probe diff "$DATA/.snap0" "$DATA/.snap1")
  read -r pg_src pg_dst pg_bg < "$DATA/.pgcpu"
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s}' "$TIME_FILE")
  user=$(awk -F': ' '/User time/ {print $2}' "$TIME_FILE")
  sys=$(awk -F': ' '/System time/ {print $2}' "$TIME_FILE")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$TIME_FILE")
  other=$(awk -v m="$machine" -v u="$user" -v s="$sys" -v a="$pg_src" -v b="$pg_dst" -v c="$pg_bg" 'BEGIN {o = m - u - s - a - b - c; printf "%.2f", (o < 0 ? 0 : o)}')
  ROW="$RUN_ID	$tool	$version	$variant	$mode	$rep	$rows	$wall	$user	$sys	$rss	$rc	$LOAD1	$BUSY	$machine	$pg_src	$pg_dst	$pg_bg	$other"
  RC=$rc
  printf '  %-5s %-4s rep %s: wall %ss, cpu %s+%ss, rss %s KB, exit %s | pg cpu src %ss dst %ss bg %ss | other %ss, load1 before %s\n' \
    "$tool" "$mode" "$rep" "$wall" "$user" "$sys" "$rss" "$rc" "$pg_src" "$pg_dst" "$pg_bg" "$other" "$LOAD1"
}

record() {
  printf '%s\t%s\n' "$ROW" "$1" >> "$RESULTS"
  [ "$1" = ok ] || echo "  VERIFY FAILED: $1 (log $LOG_FILE)" >&2
}

# --- preparing and checking -------------------------------------------------------------
# bump SLICE TAG: 1% of the source rows get a new updated_at, status C and a name ending
# in -TAG (an older tag is replaced), so the incremental run has exactly BUMP rows to move
# and the target shows whether they arrived.
bump() {
  local n
  n=$(psql_db "$CRM_DB" -c "WITH u AS (UPDATE customers SET updated_at = clock_timestamp(), status = 'C',
        name = regexp_replace(name, '-b[a-z0-9]+$', '') || '-$2' WHERE id % 100 = $1 RETURNING 1)
      SELECT count(*) FROM u")
  [ "$n" = "$BUMP" ] || { echo "run.sh: bump touched $n rows, expected $BUMP" >&2; exit 1; }
  psql_db "$CRM_DB" -c "VACUUM ANALYZE customers" >/dev/null
}

# What the source says the target must hold: rows, rows with status A, credit total.
source_facts() {
  psql_db "$CRM_DB" -c "SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || count(*) FILTER (WHERE status = 'A') || ' ' || coalesce(sum(credit_limit), 0) FROM customers"
}

# verify_full TOOL: ok when the target matches the source facts; for qiao also the mapping
# (A -> state 1; names half-width and trimmed).
verify_full() {
  local want got
  want="$(source_facts)"
  if [ "$1" = qiao ]; then
    want="$want 0"
    got=$(psql_db "$ERP_DB" -c "SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || count(*) FILTER (WHERE state = '1') || ' ' || coalesce(sum(credit), 0) || ' ' || count(*) FILTER (WHERE cust_name ~ '[　（）Ｎｏ．]' OR cust_name <> btrim(cust_name)) FROM erp_customers" 2>&1 || true)
  else
    got=$(psql_db "$ERP_DB" -c "SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || count(*) FILTER (WHERE status = 'A') || ' ' || coalesce(sum(credit_limit), 0) FROM sling.customers" 2>&1 || true)
  fi
  if [ "$got" = "$want" ]; then echo ok; else echo "BAD(got_${got// /_}_want_${want// /_})"; fi
}

# verify_incr TOOL TAG: ok when the target still has all rows once and exactly BUMP rows
# carry the new name and status (qiao: status C is state 3 at the ERP).
verify_incr() {
  local got want="$ROWS $ROWS $BUMP"
  if [ "$1" = qiao ]; then
    got=$(psql_db "$ERP_DB" -c "SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || count(*) FILTER (WHERE cust_name LIKE '%-$2' AND state = '3') FROM erp_customers" 2>&1 || true)
  else
    got=$(psql_db "$ERP_DB" -c "SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || count(*) FILTER (WHERE name LIKE '%-$2' AND status = 'C') FROM sling.customers" 2>&1 || true)
  fi
  if [ "$got" = "$want" ]; then echo ok; else echo "BAD(got_${got// /_}_want_${want// /_})"; fi
}

# qiao's own summary must agree: read = delivered = N, nothing rejected.
qiao_summary_ok() {
  python3 - "$LOG_FILE" "$1" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
try:
    s = json.loads(text[text.index("["):])[0]
except ValueError:
    print("no-json-summary"); sys.exit()
n = int(sys.argv[2])
ok = s["read"] == n and s["delivered"] == n and s["rejected"] == 0 and s["delivery_exceptions"] == 0
print("ok" if ok else f"summary_read{s['read']}_delivered{s['delivered']}_rejected{s['rejected']}")
PY
}

# run_qiao REP BATCH
run_qiao() {
  local rep="$1" b="$2" tag v cfg="$DATA/qiao-b$2.yaml"
  rm -f "$DATA/qiao-b$b.db" "$DATA/qiao-b$b.db-wal" "$DATA/qiao-b$b.db-shm"
  psql_db "$ERP_DB" -c "TRUNCATE erp_customers" >/dev/null
  measure qiao "$QIAO_VERSION" "batch$b" full "$rep" "$ROWS" -- "$QIAO_BIN" -c "$cfg" run "$FLOW" --json
  v=$([ "$RC" = 0 ] && qiao_summary_ok "$ROWS" || echo "exit$RC")
  [ "$v" = ok ] && v=$(verify_full qiao)
  record "$v"
  tag="bq${rep}b${b}x$RUN_ID"; tag="${tag,,}"; tag="${tag//[^a-z0-9]/}"
  bump "$rep" "$tag"
  measure qiao "$QIAO_VERSION" "batch$b" incr "$rep" "$BUMP" -- "$QIAO_BIN" -c "$cfg" run "$FLOW" --json
  v=$([ "$RC" = 0 ] && qiao_summary_ok "$BUMP" || echo "exit$RC")
  [ "$v" = ok ] && v=$(verify_incr qiao "$tag")
  record "$v"
}

run_sling() {
  local rep="$1" tag
  measure sling "$SLING_VERSION" default full "$rep" "$ROWS" -- "$SLING_BIN" run -r "$HERE/sling_full.yaml"
  record "$([ "$RC" = 0 ] && verify_full sling || echo "exit$RC")"
  tag="bs${rep}x$RUN_ID"; tag="${tag,,}"; tag="${tag//[^a-z0-9]/}"
  bump "$((50 + rep))" "$tag"
  measure sling "$SLING_VERSION" default incr "$rep" "$BUMP" -- "$SLING_BIN" run -r "$HERE/sling_incr.yaml"
  record "$([ "$RC" = 0 ] && verify_incr sling "$tag" || echo "exit$RC")"
}

echo "run $RUN_ID: $ROWS source rows, $BUMP per incremental, $REPS reps, tools: $TOOLS"
[ -n "${QIAO_VERSION:-}" ] && echo "qiao $QIAO_VERSION, batch sizes: $QIAO_BATCHES, binary $QIAO_BIN"
[ -n "${SLING_VERSION:-}" ] && echo "sling $SLING_VERSION, binary $SLING_BIN"
for rep in $(seq "${REP_FROM:-1}" $(( ${REP_FROM:-1} + REPS - 1 ))); do
  for tool in $TOOLS; do
    if [ "$tool" = qiao ]; then
      for b in $QIAO_BATCHES; do run_qiao "$rep" "$b"; done
    else
      "run_$tool" "$rep"
    fi
  done
done
python3 "$HERE/summarize.py" "$RESULTS" "$RUN_ID" | tee "$DATA/summary-$RUN_ID.md"
