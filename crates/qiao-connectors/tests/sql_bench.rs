//! Throughput of the SQL source and sink with 10-column customer rows. A measurement, not
//! a check: run in release mode and read the printed rows/s.
//!
//! `cargo test --release -p qiao-connectors --test sql_bench -- --ignored --nocapture`
//! (`QIAO_BENCH_ROWS` sets the row count, default 300000; `QIAO_BENCH_BATCH` the batch
//! size, default 10000; `QIAO_BENCH_ONLY=source` skips
//! the sink).

mod sql_support;

use std::time::Instant;

use qiao_connectors::sql::{SqlKind, open_sink, open_source};
use qiao_core::Change;
use sql_support::*;

fn batch() -> usize {
    std::env::var("QIAO_BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

fn rows() -> usize {
    std::env::var("QIAO_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000)
}

const COLUMNS: &str = "(id bigint PRIMARY KEY, code varchar(20) NOT NULL, name text NOT NULL, \
    tax_id varchar(18), city text, phone text, email text, credit numeric(16,2), \
    active boolean NOT NULL, updated_at timestamptz NOT NULL)";

async fn measure(kind: SqlKind, url: &str, src_table: &str, dst_table: &str, n: usize) {
    let label = kind.name();
    let open = || {
        open_source(source_opts(
            kind,
            url,
            src_table,
            &["id"],
            Some("updated_at"),
            None,
            batch(),
        ))
    };
    // Timed pass: batches are dropped as an engine would after committing them.
    let mut src = open().await.unwrap();
    let started = Instant::now();
    let mut count = 0;
    while let Some(b) = src.next_batch().await.unwrap() {
        count += b.changes.len();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{label} source: {n} rows in {secs:.2}s = {:.0} rows/s",
        n as f64 / secs
    );
    assert_eq!(count, n);
    if std::env::var("QIAO_BENCH_ONLY").is_ok_and(|v| v == "source") {
        return;
    }
    // Untimed pass: keep the batches to feed the sink.
    let mut src = open().await.unwrap();
    let mut batches: Vec<Vec<Change>> = Vec::new();
    while let Some(b) = src.next_batch().await.unwrap() {
        batches.push(b.changes);
    }

    let mut sink = open_sink(sink_opts(kind, url, dst_table, &["id"]))
        .await
        .unwrap();
    for pass in ["insert", "update"] {
        let started = Instant::now();
        for b in &batches {
            write_ok(&mut sink, b).await;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{label} sink ({pass}): {n} rows in {secs:.2}s = {:.0} rows/s",
            n as f64 / secs
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run in release mode with --ignored --nocapture"]
async fn postgres_throughput() {
    let Some(url) = pg_url().await else { return };
    let n = rows();
    let (a, b) = (unique("pg_bench_src"), unique("pg_bench_dst"));
    let _d = Dropper::new(SqlKind::Postgres, &url, &[&a, &b]);
    exec(
        SqlKind::Postgres,
        &url,
        &[
            &format!("CREATE TABLE {a} {COLUMNS}"),
            &format!("CREATE TABLE {b} {COLUMNS}"),
            &format!("CREATE INDEX ON {a} (updated_at, id)"),
            &format!(
                "INSERT INTO {a} SELECT g, 'C' || lpad(g::text, 8, '0'), '上海某某贸易有限公司' || g, \
                 '91310000MA1FL' || lpad((g % 100000)::text, 5, '0'), '上海', '021-5555' || g, \
                 'buyer' || g || '@example.com', (g % 100000) * 1.01, g % 3 = 0, \
                 timestamptz '2024-01-01 00:00:00+08' + g * interval '1 millisecond' \
                 FROM generate_series(1, {n}) g"
            ),
            &format!("ANALYZE {a}"),
        ],
    )
    .await;
    measure(SqlKind::Postgres, &url, &a, &b, n).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run in release mode with --ignored --nocapture"]
async fn mariadb_throughput() {
    let Some(url) = my_url().await else { return };
    let n = rows();
    let (a, b) = (unique("my_bench_src"), unique("my_bench_dst"));
    let _d = Dropper::new(SqlKind::Mysql, &url, &[&a, &b]);
    let cols = COLUMNS.replace("timestamptz", "datetime(6)");
    let mut stmts = vec![
        format!("CREATE TABLE `{a}` {cols} DEFAULT CHARSET = utf8mb4"),
        format!("CREATE TABLE `{b}` {cols} DEFAULT CHARSET = utf8mb4"),
        format!("CREATE INDEX cur ON `{a}` (updated_at, id)"),
    ];
    for start in (0..n).step_by(10_000) {
        let values: Vec<String> = (start + 1..=(start + 10_000).min(n))
            .map(|g| {
                format!(
                    "({g}, 'C{g:08}', '上海某某贸易有限公司{g}', '91310000MA1FL{:05}', '上海', \
                     '021-5555{g}', 'buyer{g}@example.com', {}.{:02}, {}, \
                     TIMESTAMP('2024-01-01') + INTERVAL {g} * 1000 MICROSECOND)",
                    g % 100_000,
                    g % 100_000,
                    g % 100,
                    (g % 3 == 0) as u8
                )
            })
            .collect();
        stmts.push(format!("INSERT INTO `{a}` VALUES {}", values.join(", ")));
    }
    let refs: Vec<&str> = stmts.iter().map(String::as_str).collect();
    exec(SqlKind::Mysql, &url, &refs).await;
    measure(SqlKind::Mysql, &url, &a, &b, n).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run in release mode with --ignored --nocapture"]
async fn sqlite_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    std::fs::File::create(&path).unwrap();
    let url = format!("sqlite://{}", path.display());
    let n = rows();
    let cols = COLUMNS
        .replace("timestamptz", "DATETIME")
        .replace("bigint PRIMARY KEY", "INTEGER PRIMARY KEY");
    exec(
        SqlKind::Sqlite,
        &url,
        &[
            &format!("CREATE TABLE a {cols}"),
            &format!("CREATE TABLE b {cols}"),
            "CREATE INDEX cur ON a (updated_at, id)",
            &format!(
                "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {n}) \
                 INSERT INTO a SELECT n, printf('C%08d', n), '上海某某贸易有限公司' || n, \
                 printf('91310000MA1FL%05d', n % 100000), '上海', '021-5555' || n, \
                 'buyer' || n || '@example.com', printf('%d.%02d', n % 100000, n % 100), n % 3 = 0, \
                 strftime('%Y-%m-%d %H:%M:%f', '2024-01-01', '+' || (n / 1000.0) || ' seconds') FROM g"
            ),
        ],
    )
    .await;
    measure(SqlKind::Sqlite, &url, "a", "b", n).await;
}
