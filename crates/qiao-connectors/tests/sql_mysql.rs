//! MySQL/MariaDB source and sink against the real server on 127.0.0.1:3306.

mod sql_support;

use qiao_connectors::sql::{SqlKind, open_sink, open_source};
use qiao_connectors::{ConnectorError, SinkError};
use qiao_core::{Change, Record, Value};
use rust_decimal::Decimal;
use sql_support::*;

const MY: SqlKind = SqlKind::Mysql;

fn dec(s: &str) -> Value {
    Value::Decimal(s.parse::<Decimal>().unwrap())
}

fn ts(s: &str) -> Value {
    Value::DateTime(chrono::DateTime::parse_from_rfc3339(s).unwrap())
}

async fn customers(url: &str, t: &str, rows: usize) {
    exec(
        MY,
        url,
        &[&format!(
            "CREATE TABLE `{t}` (id bigint PRIMARY KEY, name varchar(100) NOT NULL, \
             credit decimal(16,2), active tinyint(1) NOT NULL DEFAULT 1, \
             updated_at datetime(6) NOT NULL) DEFAULT CHARSET = utf8mb4"
        )],
    )
    .await;
    let values: Vec<String> = (1..=rows)
        .map(|g| {
            format!(
                "({g}, '客户{g}', {g} * 1.25, {}, TIMESTAMP('2024-01-01 00:00:00') + INTERVAL {} SECOND)",
                g % 2,
                g / 3
            )
        })
        .collect();
    if !values.is_empty() {
        exec(
            MY,
            url,
            &[&format!(
                "INSERT INTO `{t}` (id, name, credit, active, updated_at) VALUES {}",
                values.join(", ")
            )],
        )
        .await;
    }
}

#[tokio::test]
async fn full_load_then_incremental_and_resume() {
    let Some(url) = my_url().await else { return };
    let t = unique("my_incr");
    let _d = Dropper::new(MY, &url, &[&t]);
    customers(&url, &t, 25).await;
    let mut src = open_source(source_opts(
        MY,
        &url,
        &t,
        &["id"],
        Some("updated_at"),
        None,
        7,
    ))
    .await
    .unwrap();
    let first = src.next_batch().await.unwrap().unwrap();
    let mid = first.checkpoint.clone();
    let (rest, cp) = drain(&mut src).await;
    let mut ids: Vec<String> = first
        .changes
        .iter()
        .chain(&rest)
        .map(|c| c.key.clone())
        .collect();
    assert_eq!(ids.len(), 25);
    ids.sort_by_key(|k| k.parse::<i64>().unwrap());
    ids.dedup();
    assert_eq!(ids.len(), 25, "every row once");

    let c = &first.changes[1];
    assert_eq!(c.key, "2");
    assert_eq!(c.record.get("name"), &Value::Text("客户2".into()));
    assert_eq!(c.record.get("credit"), &dec("2.50"));
    assert_eq!(c.record.get("active"), &Value::Bool(false));
    assert_eq!(c.record.get("updated_at"), &ts("2024-01-01T00:00:00Z"));
    assert_eq!(
        c.source_time,
        Some(chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z").unwrap())
    );

    // Resume from the first batch's checkpoint: exactly the other 18 rows.
    let mut resumed = open_source(source_opts(
        MY,
        &url,
        &t,
        &["id"],
        Some("updated_at"),
        mid,
        5,
    ))
    .await
    .unwrap();
    assert_eq!(drain(&mut resumed).await.0.len(), 18);

    exec(
        MY,
        &url,
        &[
            &format!("INSERT INTO `{t}` (id, name, updated_at) VALUES (26, 'new', '2024-02-01 00:00:00.000001')"),
            &format!("UPDATE `{t}` SET name = 'changed', updated_at = '2024-02-01 00:00:00.000002' WHERE id = 3"),
        ],
    )
    .await;
    let (inc, _) = drain(&mut src).await;
    assert_eq!(
        inc.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(),
        ["26", "3"]
    );
    // Microseconds survive the round trip through the checkpoint.
    let mut again = open_source(source_opts(
        MY,
        &url,
        &t,
        &["id"],
        Some("updated_at"),
        cp,
        100,
    ))
    .await
    .unwrap();
    let (inc2, cp2) = drain(&mut again).await;
    assert_eq!(
        inc2.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(),
        ["26", "3"]
    );
    assert_eq!(
        inc2[1].record.get("updated_at"),
        &ts("2024-02-01T00:00:00.000002Z")
    );
    let mut last = open_source(source_opts(
        MY,
        &url,
        &t,
        &["id"],
        Some("updated_at"),
        cp2,
        100,
    ))
    .await
    .unwrap();
    assert!(last.next_batch().await.unwrap().is_none());
    assert_eq!(src.keys().await.unwrap().len(), 26);
}

#[tokio::test]
async fn typed_values_round_trip_and_sink_is_idempotent() {
    let Some(url) = my_url().await else { return };
    let t = unique("my_typed");
    let _d = Dropper::new(MY, &url, &[&t]);
    exec(
        MY,
        &url,
        &[&format!(
            "CREATE TABLE `{t}` (id int PRIMARY KEY, small smallint, big bigint unsigned, \
             amount decimal(16,2), rate double, ok tinyint(1), name varchar(40), note text, \
             day date, at timestamp(6) NULL, local datetime(6), kind enum('a','b')) \
             DEFAULT CHARSET = utf8mb4"
        )],
    )
    .await;
    let mut sink = open_sink(sink_opts(MY, &url, &t, &["id"])).await.unwrap();
    let full = Record::new()
        .with("id", 1i64)
        .with("small", -7i64)
        .with("big", 9_007_199_254_740_993i64)
        .with("amount", dec("12345678901234.56"))
        .with("rate", dec("0.1"))
        .with("ok", true)
        .with("name", "上海某某贸易有限公司")
        .with("note", "tab\there\nnew line \\ 'quote'")
        .with(
            "day",
            Value::Date(chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()),
        )
        .with("at", ts("2024-03-01T08:00:00.123456+08:00"))
        .with("local", ts("2024-03-01T08:00:00.5Z"))
        .with("kind", "b");
    let mut nulls = Record::new().with("id", 2i64);
    for f in full.fields.keys().skip(1) {
        nulls.set(f.clone(), Value::Null);
    }
    let batch = vec![
        Change::upsert("1", full.clone()),
        Change::upsert("2", nulls.clone()),
        Change::upsert("3", nulls.clone().with("id", 3i64)),
        Change::delete("3", Record::new().with("id", 3i64)),
    ];
    write_ok(&mut sink, &batch).await;
    let once = snapshot(MY, &url, &t, &["id"]).await;
    write_ok(&mut sink, &batch).await;
    let twice = snapshot(MY, &url, &t, &["id"]).await;
    assert_eq!(once, twice, "same batch twice = same table");
    assert_eq!(once.len(), 2);
    assert_eq!(once[0].1, full);
    assert_eq!(once[1].1, nulls);
    // Updates and deletes of existing rows.
    write_ok(
        &mut sink,
        &[
            Change::upsert(
                "1",
                Record::new().with("id", 1i64).with("amount", dec("0.01")),
            ),
            Change::delete("2", Record::new().with("id", 2i64)),
        ],
    )
    .await;
    let rows = snapshot(MY, &url, &t, &["id"]).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1.get("amount"), &dec("0.01"));
    assert_eq!(rows[0].1.get("name"), full.get("name"));
    assert_eq!(sink.keys().await.unwrap(), ["1"]);
}

#[tokio::test]
async fn duplicate_keys_collapse_and_composite_keys() {
    let Some(url) = my_url().await else { return };
    let t = unique("my_dups");
    let _d = Dropper::new(MY, &url, &[&t]);
    exec(
        MY,
        &url,
        &[&format!(
            "CREATE TABLE `{t}` (org varchar(10), code int, qty int, PRIMARY KEY (org, code))"
        )],
    )
    .await;
    let mut sink = open_sink(sink_opts(MY, &url, &t, &["org", "code"]))
        .await
        .unwrap();
    let rec = |org: &str, code: i64, qty: i64| {
        Record::new()
            .with("org", org)
            .with("code", code)
            .with("qty", qty)
    };
    let batch = vec![
        Change::upsert("a|1", rec("a", 1, 1)),
        Change::upsert("a|1", rec("a", 1, 2)),
        Change::upsert("b|1", rec("b", 1, 5)),
        Change::delete("b|1", Record::new().with("org", "b").with("code", 1i64)),
        Change::upsert("a|2", rec("a", 2, 9)),
    ];
    write_ok(&mut sink, &batch).await;
    write_ok(&mut sink, &batch).await;
    let rows = snapshot(MY, &url, &t, &["org", "code"]).await;
    let got: Vec<(&str, &Value)> = rows
        .iter()
        .map(|(k, r)| (k.as_str(), r.get("qty")))
        .collect();
    assert_eq!(got, [("a|1", &Value::Int(2)), ("a|2", &Value::Int(9))]);
}

#[tokio::test]
async fn bad_value_is_batch_error_and_nothing_applies() {
    let Some(url) = my_url().await else { return };
    let t = unique("my_bad");
    let _d = Dropper::new(MY, &url, &[&t]);
    exec(
        MY,
        &url,
        &[&format!(
            "CREATE TABLE `{t}` (id int PRIMARY KEY, code varchar(5), qty int)"
        )],
    )
    .await;
    let mut sink = open_sink(sink_opts(MY, &url, &t, &["id"])).await.unwrap();
    let ok = Record::new()
        .with("id", 1i64)
        .with("code", "A1")
        .with("qty", 1i64);
    let long = Record::new()
        .with("id", 2i64)
        .with("code", "TOO-LONG")
        .with("qty", 1i64);
    match sink
        .write(&[Change::upsert("1", ok.clone()), Change::upsert("2", long)])
        .await
    {
        Err(SinkError::Batch(m)) => {
            assert!(m.contains(&t) && m.contains("too long"), "{m}");
            assert!(m.contains("Fix: a value is longer"), "{m}");
        }
        other => panic!("expected batch error, got {other:?}"),
    }
    let text_in_int = Record::new().with("id", 3i64).with("qty", "many");
    assert!(matches!(
        sink.write(&[Change::upsert("3", text_in_int)]).await,
        Err(SinkError::Batch(_))
    ));
    assert!(snapshot(MY, &url, &t, &["id"]).await.is_empty());
}

#[tokio::test]
async fn missing_table_column_and_unreachable() {
    let Some(url) = my_url().await else { return };
    let t = unique("my_missing");
    let _d = Dropper::new(MY, &url, &[&t]);
    customers(&url, &t, 0).await;
    let config = |r: Result<Box<dyn qiao_connectors::Source>, ConnectorError>| match r {
        Err(ConnectorError::Config(m)) => m,
        Err(e) => panic!("expected config error, got {e}"),
        Ok(_) => panic!("expected config error"),
    };
    let m = config(open_source(source_opts(MY, &url, "nope_qiao", &["id"], None, None, 10)).await);
    assert!(
        m.contains("`nope_qiao` does not exist") && m.contains(&t),
        "{m}"
    );
    let m = config(
        open_source(source_opts(
            MY,
            &url,
            &t,
            &["id"],
            Some("modified"),
            None,
            10,
        ))
        .await,
    );
    assert!(
        m.contains("cursor column `modified`") && m.contains("updated_at"),
        "{m}"
    );
    match open_sink(sink_opts(MY, &url, &t, &["name"])).await {
        Err(ConnectorError::Config(m)) => {
            assert!(m.contains("no primary key or unique index"), "{m}")
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("opened"),
    }
    match open_sink(sink_opts(MY, "mysql://root@127.0.0.1:1/test", &t, &["id"])).await {
        Err(ConnectorError::Transport(m)) => assert!(m.contains("MySQL"), "{m}"),
        Err(e) => panic!("expected transport, got {e}"),
        Ok(_) => panic!("opened"),
    }
}
