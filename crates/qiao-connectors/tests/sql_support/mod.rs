//! Shared helpers for the SQL connector tests: finding the real servers, unique table
//! names, tables dropped even when a test fails.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use qiao_connectors::sql::{SinkOptions, SourceOptions, SqlKind};
use qiao_connectors::{Sink, Source};
use qiao_core::{Change, Record};
use sqlx::{AssertSqlSafe, Connection};

/// Whether CI demands that the services exist.
fn required() -> bool {
    std::env::var("QIAO_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

fn skip(service: &str, why: &str) -> Option<String> {
    if required() {
        panic!("{service} not reachable but QIAO_REQUIRE_SERVICES=1: {why}");
    }
    eprintln!("\n*** SKIPPED: {service} not reachable ({why}) ***\n");
    None
}

/// A working PostgreSQL URL, or `None` (after a loud SKIPPED line) when there is none.
pub async fn pg_url() -> Option<String> {
    let mut last = String::new();
    for user in ["postgres", "root"] {
        for db in ["test", "postgres", "root"] {
            let url = format!("postgres://{user}@127.0.0.1:5432/{db}");
            match sqlx::PgConnection::connect(&url).await {
                Ok(c) => {
                    let _ = c.close().await;
                    return Some(url);
                }
                Err(e) => last = e.to_string(),
            }
        }
    }
    skip("PostgreSQL", &last)
}

/// A working MariaDB/MySQL URL, or `None` after a loud SKIPPED line.
pub async fn my_url() -> Option<String> {
    let url = "mysql://root@127.0.0.1:3306/test".to_string();
    match sqlx::MySqlConnection::connect(&url).await {
        Ok(c) => {
            let _ = c.close().await;
            Some(url)
        }
        Err(e) => skip("MariaDB", &e.to_string()),
    }
}

/// A table name unique to this test, process and call.
pub fn unique(test: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "qiao_{test}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos % 100_000
    )
}

/// Runs SQL statements (one per element) on a fresh connection.
pub async fn exec(kind: SqlKind, url: &str, stmts: &[&str]) {
    match kind {
        SqlKind::Postgres => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            for s in stmts {
                sqlx::raw_sql(AssertSqlSafe(s.to_string()))
                    .execute(&mut c)
                    .await
                    .unwrap_or_else(|e| panic!("{s}: {e}"));
            }
        }
        SqlKind::Mysql => {
            let mut c = sqlx::MySqlConnection::connect(url).await.unwrap();
            for s in stmts {
                sqlx::raw_sql(AssertSqlSafe(s.to_string()))
                    .execute(&mut c)
                    .await
                    .unwrap_or_else(|e| panic!("{s}: {e}"));
            }
        }
        SqlKind::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
            for s in stmts {
                sqlx::raw_sql(AssertSqlSafe(s.to_string()))
                    .execute(&mut c)
                    .await
                    .unwrap_or_else(|e| panic!("{s}: {e}"));
            }
        }
    }
}

/// Drops its table when it goes out of scope, also when the test panics.
pub struct Dropper {
    kind: SqlKind,
    url: String,
    tables: Vec<String>,
}

impl Dropper {
    /// Will drop `tables` at the end of the scope.
    pub fn new(kind: SqlKind, url: &str, tables: &[&str]) -> Self {
        Dropper {
            kind,
            url: url.to_string(),
            tables: tables.iter().map(|t| t.to_string()).collect(),
        }
    }
}

impl Drop for Dropper {
    fn drop(&mut self) {
        let (kind, url, tables) = (self.kind, self.url.clone(), self.tables.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread with
        // its own runtime does the async work.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                for t in &tables {
                    let q = match kind {
                        SqlKind::Mysql => format!("DROP TABLE IF EXISTS `{t}`"),
                        _ => format!("DROP TABLE IF EXISTS \"{t}\""),
                    };
                    exec(kind, &url, &[&q]).await;
                }
            });
        })
        .join();
    }
}

/// Source options with the test defaults.
pub fn source_opts(
    kind: SqlKind,
    url: &str,
    table: &str,
    keys: &[&str],
    cursor: Option<&str>,
    checkpoint: Option<String>,
    batch_size: usize,
) -> SourceOptions {
    SourceOptions {
        system: "crm".into(),
        kind,
        url: url.into(),
        table: table.into(),
        key_columns: keys.iter().map(|k| k.to_string()).collect(),
        cursor: cursor.map(Into::into),
        checkpoint,
        batch_size,
    }
}

/// Sink options with the test defaults.
pub fn sink_opts(kind: SqlKind, url: &str, table: &str, keys: &[&str]) -> SinkOptions {
    SinkOptions {
        system: "erp".into(),
        kind,
        url: url.into(),
        table: table.into(),
        key_columns: keys.iter().map(|k| k.to_string()).collect(),
    }
}

/// Reads batches until caught up; returns the changes and the last checkpoint.
pub async fn drain(src: &mut Box<dyn Source>) -> (Vec<Change>, Option<String>) {
    let mut all = Vec::new();
    let mut cp = None;
    while let Some(b) = src.next_batch().await.unwrap() {
        assert!(!b.changes.is_empty(), "a batch is never empty");
        all.extend(b.changes);
        cp = b.checkpoint;
    }
    (all, cp)
}

/// The whole table as (key, record) pairs in key order, read through a fresh source.
pub async fn snapshot(
    kind: SqlKind,
    url: &str,
    table: &str,
    keys: &[&str],
) -> Vec<(String, Record)> {
    let mut src =
        qiao_connectors::sql::open_source(source_opts(kind, url, table, keys, None, None, 1000))
            .await
            .unwrap();
    drain(&mut src)
        .await
        .0
        .into_iter()
        .map(|c| (c.key, c.record))
        .collect()
}

/// Writes the batch and panics with the message on failure.
pub async fn write_ok(sink: &mut Box<dyn Sink>, batch: &[Change]) {
    if let Err(e) = sink.write(batch).await {
        panic!("write failed: {e}");
    }
}
