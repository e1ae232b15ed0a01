#!/usr/bin/env bash
# Prepares the PostgreSQL -> PostgreSQL benchmark (see BENCHMARKS.md at the repo root):
#   - database qiao_bench_crm with table customers (10 columns, ROWS rows, default 1,000,000,
#     made by generate_series so every run sees the same data) and an index on
#     (updated_at, id), the order both tools read in;
#   - database qiao_bench_erp with qiao's target table erp_customers (primary key id);
#     sling makes its own table sling.customers there;
#   - bench/.venv with the sling-cli binary from the PyPI wheel `sling-linux-amd64`
#     (the plain `sling` wheel downloads its binary at first use and fails offline).
# Safe to rerun: it drops and recreates only the two qiao_bench_* databases.
# Env: PGHOST/PGPORT/PGUSER (default 127.0.0.1/5432/postgres, trust auth), ROWS, SKIP_VENV=1.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH="$(dirname "$HERE")"
ROWS="${ROWS:-1000000}"
SLING_WHEEL_VERSION=1.4.11
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
export PGOPTIONS="${PGOPTIONS:--c client_min_messages=warning}"
CRM_DB=qiao_bench_crm
ERP_DB=qiao_bench_erp

psql_db() { local db="$1"; shift; psql -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }

pg_isready -h "$PGHOST" -p "$PGPORT" -q || {
  echo "setup.sh: PostgreSQL is not reachable at $PGHOST:$PGPORT; start it (e.g. pg_ctlcluster 15 main start) and rerun" >&2
  exit 1
}

echo "== databases $CRM_DB and $ERP_DB (dropped and recreated)"
for db in "$CRM_DB" "$ERP_DB"; do
  psql_db postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
  psql_db postgres -c "CREATE DATABASE $db"
done

echo "== $CRM_DB.customers: $ROWS rows"
# The data gives the mapping real work: 10% of names carry full-width letters and an
# ideographic space (halfwidth + trim), status is a CRM code (A/D/C) mapped to the
# canonical enum, credit_limit needs scale 2, and every row passes all 5 rules, so the
# whole million reaches the target and the counts can be checked exactly.
psql_db "$CRM_DB" <<SQL
CREATE TABLE customers (
  id           bigint PRIMARY KEY,
  code         text NOT NULL,
  name         text NOT NULL,
  tax_id       text,
  phone        text,
  address      text,
  status       text NOT NULL,
  credit_limit numeric(18,2),
  region       text,
  updated_at   timestamptz NOT NULL
);
INSERT INTO customers
SELECT i,
       'C' || lpad(i::text, 9, '0'),
       CASE WHEN i % 10 = 0
            THEN '　上海桥数据科技有限公司（Ｎｏ．' || i || '） '
            ELSE '上海桥数据科技有限公司(No.' || i || ')' END,
       '91310000' || lpad(i::text, 10, '0'),
       '1' || (30 + i % 60) || lpad(((i::bigint * 7919) % 100000000)::text, 8, '0'),
       '上海市浦东新区张江路' || (i % 2000) || '号' || (i % 30 + 1) || '楼',
       (ARRAY['A','A','A','D','C'])[1 + i % 5],
       ((i % 100000) * 12.34)::numeric(18,2),
       (ARRAY['华东','华北','华南','华中','西南','西北','东北'])[1 + i % 7],
       timestamptz '2026-01-01 00:00:00+08' + i * interval '1 second'
FROM generate_series(1, $ROWS) AS s(i);
CREATE INDEX customers_updated_at_id ON customers (updated_at, id);
VACUUM ANALYZE customers;
SQL
psql_db "$CRM_DB" -tAc "SELECT 'customers: ' || count(*) || ' rows, ' || pg_size_pretty(pg_total_relation_size('customers')) || ' with indexes' FROM customers"

echo "== $ERP_DB.erp_customers (qiao's target) and schema sling (sling's target)"
psql_db "$ERP_DB" <<'SQL'
CREATE TABLE erp_customers (
  id          bigint PRIMARY KEY,
  code        text NOT NULL,
  cust_name   text NOT NULL,
  tax_no      text,
  phone       text,
  address     text,
  state       text NOT NULL,
  credit      numeric(18,2),
  region      text,
  updated_at  timestamptz
);
CREATE SCHEMA sling;
SQL

if [ "${SKIP_VENV:-0}" != 1 ]; then
  echo "== $BENCH/.venv with sling-linux-amd64==$SLING_WHEEL_VERSION"
  [ -x "$BENCH/.venv/bin/python" ] || python3 -m venv "$BENCH/.venv"
  "$BENCH/.venv/bin/pip" install -q --disable-pip-version-check "sling-linux-amd64==$SLING_WHEEL_VERSION"
  SLING_BIN="$(ls "$BENCH"/.venv/lib/python3*/site-packages/sling_linux_amd64/bin/sling-linux-amd64)"
  echo "sling binary: $SLING_BIN ($("$SLING_BIN" --version 2>/dev/null | tr -d '\n'))"
fi
echo "setup done"
