//! SQLite source and sink on a temporary database file.

mod sql_support;

use qiao_connectors::sql::{SqlKind, open_sink, open_source};
use qiao_connectors::{ConnectorError, SinkError};
use qiao_core::{Change, Record, Value};
use rust_decimal::Decimal;
use sql_support::*;

const LITE: SqlKind = SqlKind::Sqlite;

fn dec(s: &str) -> Value {
    Value::Decimal(s.parse::<Decimal>().unwrap())
}

fn ts(s: &str) -> Value {
    Value::DateTime(chrono::DateTime::parse_from_rfc3339(s).unwrap())
}

/// A fresh database file; the directory goes away with the guard.
async fn db() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    std::fs::File::create(&path).unwrap();
    (dir, format!("sqlite://{}", path.display()))
}

#[tokio::test]
async fn full_load_incremental_and_resume_with_text_timestamps() {
    let (_dir, url) = db().await;
    exec(
        LITE,
        &url,
        &[
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, \
             credit DECIMAL(16,2), active BOOLEAN, updated_at DATETIME)",
            "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 30) \
             INSERT INTO customers SELECT n, '客户' || n, printf('%d.25', n), n % 2, \
             datetime('2024-01-01 00:00:00', '+' || (n / 4) || ' seconds') FROM g",
            "UPDATE customers SET updated_at = NULL WHERE id IN (29, 30)",
        ],
    )
    .await;
    let opts = |cp| source_opts(LITE, &url, "customers", &["id"], Some("updated_at"), cp, 8);
    let mut src = open_source(opts(None)).await.unwrap();
    let first = src.next_batch().await.unwrap().unwrap();
    // NULL cursors first (read once), then cursor order.
    assert_eq!(first.changes[0].key, "29");
    assert_eq!(first.changes[1].key, "30");
    let second = src.next_batch().await.unwrap().unwrap();
    let mid = second.checkpoint.clone();
    let (rest, cp) = drain(&mut src).await;
    let all: Vec<&Change> = first
        .changes
        .iter()
        .chain(&second.changes)
        .chain(&rest)
        .collect();
    assert_eq!(all.len(), 30);
    let c = all.iter().find(|c| c.key == "5").unwrap();
    assert_eq!(c.record.get("credit"), &dec("5.25"));
    assert_eq!(c.record.get("active"), &Value::Bool(true));
    assert_eq!(c.record.get("name"), &Value::Text("客户5".into()));
    assert_eq!(c.record.get("updated_at"), &ts("2024-01-01T00:00:01Z"));
    assert_eq!(
        c.source_time,
        Some(chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:01Z").unwrap())
    );

    let mut resumed = open_source(opts(mid)).await.unwrap();
    let (after_mid, _) = drain(&mut resumed).await;
    assert_eq!(
        after_mid.len(),
        rest.len(),
        "resume continues exactly after the second batch"
    );

    exec(
        LITE,
        &url,
        &["UPDATE customers SET name = 'changed', updated_at = '2024-02-01 00:00:00' WHERE id = 2",
          "INSERT INTO customers VALUES (31, 'new', '1', 1, '2024-02-01 00:00:00.5')"],
    )
    .await;
    let mut again = open_source(opts(cp)).await.unwrap();
    let (inc, _) = drain(&mut again).await;
    assert_eq!(
        inc.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(),
        ["2", "31"]
    );
    assert_eq!(
        inc[1].record.get("updated_at"),
        &ts("2024-02-01T00:00:00.5Z")
    );
    assert_eq!(src.keys().await.unwrap().len(), 31);
}

#[tokio::test]
async fn sink_round_trips_types_idempotently() {
    let (_dir, url) = db().await;
    exec(
        LITE,
        &url,
        &[
            "CREATE TABLE t (id INTEGER PRIMARY KEY, amount TEXT, rate REAL, ok BOOLEAN, \
           name TEXT, day DATE, at DATETIME, doc JSON, qty INTEGER)",
        ],
    )
    .await;
    let mut sink = open_sink(sink_opts(LITE, &url, "t", &["id"]))
        .await
        .unwrap();
    let mut doc = Record::new();
    doc.set(
        "lines",
        Value::List(vec![Value::Int(1), Value::Text("x".into())]),
    );
    let full = Record::new()
        .with("id", 1i64)
        .with("amount", dec("12345678901234.56"))
        .with("rate", dec("0.1"))
        .with("ok", false)
        .with("name", "中文 'quote'")
        .with(
            "day",
            Value::Date(chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()),
        )
        .with("at", ts("2024-03-01T08:00:00.123456+08:00"))
        .with("doc", Value::Map(doc.fields))
        .with("qty", 3i64);
    let mut nulls = Record::new().with("id", 2i64);
    for f in full.fields.keys().skip(1) {
        nulls.set(f.clone(), Value::Null);
    }
    let batch = vec![
        Change::upsert("1", full.clone()),
        Change::upsert("2", nulls.clone()),
        Change::upsert("2", nulls.clone()),
        Change::delete("7", Record::new().with("id", 7i64)),
    ];
    write_ok(&mut sink, &batch).await;
    let once = snapshot(LITE, &url, "t", &["id"]).await;
    write_ok(&mut sink, &batch).await;
    assert_eq!(snapshot(LITE, &url, "t", &["id"]).await, once);
    assert_eq!(once.len(), 2);
    // `amount` is TEXT without a decimal hint, so it reads back as text: still exact.
    let mut want = full.clone();
    want.set("amount", "12345678901234.56");
    assert_eq!(once[0].1, want);
    assert_eq!(once[1].1, nulls);
    write_ok(
        &mut sink,
        &[Change::delete("1", Record::new().with("id", 1i64))],
    )
    .await;
    assert_eq!(sink.keys().await.unwrap(), ["2"]);
}

#[tokio::test]
async fn errors_name_the_problem() {
    let (_dir, url) = db().await;
    exec(
        LITE,
        &url,
        &[
            "CREATE TABLE t (id INTEGER PRIMARY KEY, code TEXT NOT NULL CHECK (length(code) <= 5))",
            "CREATE TABLE nokey (a TEXT)",
        ],
    )
    .await;
    let mut sink = open_sink(sink_opts(LITE, &url, "t", &["id"]))
        .await
        .unwrap();
    let ok = Record::new().with("id", 1i64).with("code", "A");
    let bad = Record::new().with("id", 2i64).with("code", "TOO-LONG");
    match sink
        .write(&[Change::upsert("1", ok), Change::upsert("2", bad)])
        .await
    {
        Err(SinkError::Batch(m)) => {
            assert!(m.contains("`t`") && m.contains("CHECK"), "{m}");
            assert!(m.contains("Fix"), "{m}");
        }
        other => panic!("expected batch error, got {other:?}"),
    }
    assert!(snapshot(LITE, &url, "t", &["id"]).await.is_empty());
    match open_sink(sink_opts(LITE, &url, "nokey", &["a"])).await {
        Err(ConnectorError::Config(m)) => assert!(m.contains("unique keys: none"), "{m}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("opened"),
    }
    match open_source(source_opts(LITE, &url, "T2", &["id"], None, None, 5)).await {
        Err(ConnectorError::Config(m)) => assert!(
            m.contains("`T2` does not exist") && m.contains("nokey, t"),
            "{m}"
        ),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("opened"),
    }
    let missing = url.replace("t.db", "absent.db");
    match open_source(source_opts(LITE, &missing, "t", &["id"], None, None, 5)).await {
        Err(ConnectorError::Config(m)) => assert!(
            m.contains("absent.db") && m.contains("does not exist"),
            "{m}"
        ),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("opened"),
    }
    let mut src = open_source(source_opts(LITE, &url, "t", &["id"], None, None, 5))
        .await
        .unwrap();
    assert!(src.next_batch().await.unwrap().is_none());
    // A checkpoint from another configuration is refused with the way out.
    match open_source(source_opts(
        LITE,
        &url,
        "t",
        &["id"],
        Some("code"),
        Some(r#"{"key":[{"t":"int","v":1}]}"#.into()),
        5,
    ))
    .await
    {
        Err(ConnectorError::Config(m)) => assert!(m.contains("reset the flow's checkpoint"), "{m}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("opened"),
    }
}
