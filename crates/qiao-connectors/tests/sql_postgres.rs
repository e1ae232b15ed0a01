//! PostgreSQL source and sink against the real server on 127.0.0.1:5432.

mod sql_support;

use qiao_connectors::sql::{SqlKind, open_sink, open_source};
use qiao_connectors::{ConnectorError, SinkError};
use qiao_core::{Change, Record, Value};
use rust_decimal::Decimal;
use sql_support::*;

const PG: SqlKind = SqlKind::Postgres;

fn dec(s: &str) -> Value {
    Value::Decimal(s.parse::<Decimal>().unwrap())
}

fn ts(s: &str) -> Value {
    Value::DateTime(chrono::DateTime::parse_from_rfc3339(s).unwrap())
}

async fn customers(url: &str, t: &str, rows: usize) {
    exec(
        PG,
        url,
        &[&format!(
            "CREATE TABLE {t} (id bigint PRIMARY KEY, name text NOT NULL, credit numeric(16,2), \
             updated_at timestamptz NOT NULL)"
        )],
    )
    .await;
    if rows > 0 {
        exec(
            PG,
            url,
            &[&format!(
                "INSERT INTO {t} SELECT g, '客户' || g, g * 1.25, \
                 timestamptz '2024-01-01 00:00:00+00' + (g / 3) * interval '1 second' \
                 FROM generate_series(1, {rows}) g"
            )],
        )
        .await;
    }
}

#[tokio::test]
async fn full_load_then_incremental() {
    let Some(url) = pg_url().await else { return };
    let t = unique("pg_incr");
    let _d = Dropper::new(PG, &url, &[&t]);
    customers(&url, &t, 25).await;

    let opts = source_opts(PG, &url, &t, &["id"], Some("updated_at"), None, 10);
    let mut src = open_source(opts).await.unwrap();
    let first = src.next_batch().await.unwrap().unwrap();
    assert_eq!(first.changes.len(), 10);
    let (rest, cp) = drain(&mut src).await;
    let mut ids: Vec<i64> = first
        .changes
        .iter()
        .chain(&rest)
        .map(|c| match c.record.get("id") {
            Value::Int(i) => *i,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids.len(), 25);
    ids.sort();
    ids.dedup();
    assert_eq!(ids, (1..=25).collect::<Vec<_>>(), "every row once");

    let c = &first.changes[0];
    assert_eq!(c.key, "1");
    assert_eq!(c.record.get("name"), &Value::Text("客户1".into()));
    assert_eq!(c.record.get("credit"), &dec("1.25"));
    assert_eq!(
        c.source_time,
        Some(chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z").unwrap())
    );
    assert_eq!(c.origin.as_deref(), Some(format!("crm {t} key=1").as_str()));

    // Changes after the full load: two inserts and one update that moves the cursor.
    exec(
        PG,
        &url,
        &[
            &format!("INSERT INTO {t} VALUES (26, 'new', 1.00, '2024-02-01 00:00:00+00'), (27, 'new2', NULL, '2024-02-01 00:00:00+00')"),
            &format!("UPDATE {t} SET name = 'changed', updated_at = '2024-02-02 00:00:00+08' WHERE id = 3"),
        ],
    )
    .await;
    let (inc, _) = drain(&mut src).await;
    let keys: Vec<&str> = inc.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["26", "27", "3"], "cursor order, then key");
    assert_eq!(inc[1].record.get("credit"), &Value::Null);
    assert_eq!(inc[2].record.get("name"), &Value::Text("changed".into()));
    assert_eq!(inc[2].record.get("updated_at"), &ts("2024-02-01T16:00:00Z"));

    // A new run from the saved checkpoint of the full load sees exactly the three changes.
    let mut again = open_source(source_opts(
        PG,
        &url,
        &t,
        &["id"],
        Some("updated_at"),
        cp,
        100,
    ))
    .await
    .unwrap();
    let (inc2, _) = drain(&mut again).await;
    assert_eq!(
        inc2.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(),
        ["26", "27", "3"]
    );

    let mut keys = src.keys().await.unwrap();
    keys.sort_by_key(|k| k.parse::<i64>().unwrap());
    assert_eq!(keys.len(), 27);
}

#[tokio::test]
async fn resume_mid_way_with_cursor_ties() {
    let Some(url) = pg_url().await else { return };
    let t = unique("pg_resume");
    let _d = Dropper::new(PG, &url, &[&t]);
    // Three rows share each cursor value, so batch edges fall inside ties.
    customers(&url, &t, 40).await;
    let mut src = open_source(source_opts(
        PG,
        &url,
        &t,
        &["id"],
        Some("updated_at"),
        None,
        7,
    ))
    .await
    .unwrap();
    let mut seen = Vec::new();
    let mut cp = None;
    for _ in 0..3 {
        let b = src.next_batch().await.unwrap().unwrap();
        seen.extend(b.changes.into_iter().map(|c| c.key));
        cp = b.checkpoint;
    }
    drop(src);
    let mut resumed = open_source(source_opts(
        PG,
        &url,
        &t,
        &["id"],
        Some("updated_at"),
        cp,
        7,
    ))
    .await
    .unwrap();
    let (rest, _) = drain(&mut resumed).await;
    seen.extend(rest.into_iter().map(|c| c.key));
    let mut ids: Vec<i64> = seen.iter().map(|k| k.parse().unwrap()).collect();
    assert_eq!(ids.len(), 40, "no row twice");
    ids.sort();
    assert_eq!(ids, (1..=40).collect::<Vec<_>>());
}

#[tokio::test]
async fn keyless_cursor_and_nullable_cursor() {
    let Some(url) = pg_url().await else { return };
    let t = unique("pg_nullcur");
    let _d = Dropper::new(PG, &url, &[&t]);
    exec(
        PG,
        &url,
        &[
            &format!("CREATE TABLE {t} (a text, b int, seen timestamp, PRIMARY KEY (a, b))"),
            &format!(
                "INSERT INTO {t} VALUES ('x', 2, NULL), ('x', 1, NULL), ('y', 1, '2024-01-01 10:00'), \
                 ('a', 9, '2024-01-01 09:00'), ('z', 0, NULL)"
            ),
        ],
    )
    .await;
    // Composite key, nullable cursor: NULL-cursor rows first in key order, then by cursor.
    let mut src = open_source(source_opts(
        PG,
        &url,
        &t,
        &["a", "b"],
        Some("seen"),
        None,
        2,
    ))
    .await
    .unwrap();
    let (all, cp) = drain(&mut src).await;
    let keys: Vec<&str> = all.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["x|1", "x|2", "z|0", "a|9", "y|1"]);
    // timestamp without zone reads as UTC
    assert_eq!(all[3].record.get("seen"), &ts("2024-01-01T09:00:00Z"));
    // A row behind the position (same cursor as a|9 but read already past it) is not
    // seen; rows after it are.
    exec(
        PG,
        &url,
        &[&format!(
            "INSERT INTO {t} VALUES ('b', 1, '2024-01-01 11:00'), ('b', 2, '2024-01-01 09:00')"
        )],
    )
    .await;
    let mut again = open_source(source_opts(PG, &url, &t, &["a", "b"], Some("seen"), cp, 2))
        .await
        .unwrap();
    let (inc, _) = drain(&mut again).await;
    assert_eq!(
        inc.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(),
        ["b|1"]
    );

    // Without a cursor: key order, and later calls pick up higher keys only.
    let mut keyed = open_source(source_opts(PG, &url, &t, &["a", "b"], None, None, 4))
        .await
        .unwrap();
    let (all, _) = drain(&mut keyed).await;
    assert_eq!(all.len(), 7);
    assert_eq!(all[0].source_time, None);
}

const TYPED: &str = "(id int4 PRIMARY KEY, small int2, big int8, amount numeric(16,2), \
    rate float8, ok bool, name varchar(20), note text, day date, at timestamptz, \
    local timestamp, doc jsonb, uid uuid)";

fn typed_record() -> Record {
    let mut doc = qiao_core::record::Record::new();
    // JSON keeps numbers and text; decimals inside JSON travel as strings by design.
    doc.set(
        "lines",
        Value::List(vec![Value::Int(1), Value::Text("2.50".into())]),
    );
    doc.set("客户", true);
    Record::new()
        .with("id", 1i64)
        .with("small", 7i64)
        .with("big", 9_007_199_254_740_993i64)
        .with("amount", dec("12345678901234.56"))
        .with("rate", dec("0.1"))
        .with("ok", true)
        .with("name", "上海某某贸易有限公司")
        .with("note", "tab\there\nnew line \\ backslash")
        .with(
            "day",
            Value::Date(chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()),
        )
        .with("at", ts("2024-03-01T08:00:00.123456+08:00"))
        .with("local", ts("2024-03-01T08:00:00.5Z"))
        .with("doc", Value::Map(doc.fields))
        .with("uid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
}

#[tokio::test]
async fn typed_values_round_trip_through_sink_and_source() {
    let Some(url) = pg_url().await else { return };
    let t = unique("pg_typed");
    let _d = Dropper::new(PG, &url, &[&t]);
    exec(PG, &url, &[&format!("CREATE TABLE {t} {TYPED}")]).await;
    let mut sink = open_sink(sink_opts(PG, &url, &t, &["id"])).await.unwrap();
    let full = typed_record();
    let mut nulls = Record::new().with("id", 2i64);
    for f in full.fields.keys().skip(1) {
        nulls.set(f.clone(), Value::Null);
    }
    write_ok(
        &mut sink,
        &[
            Change::upsert("1", full.clone()),
            Change::upsert("2", nulls.clone()),
        ],
    )
    .await;
    let rows = snapshot(PG, &url, &t, &["id"]).await;
    assert_eq!(rows.len(), 2);
    let mut want = full.clone();
    // Instants come back in UTC: the same instant, spelled +00:00.
    want.set("at", ts("2024-03-01T00:00:00.123456Z"));
    assert_eq!(rows[0].1, want);
    assert_eq!(rows[1].1, nulls);
    // A timestamptz compared as an instant, not as text.
    let back = rows[0].1.get("at");
    assert_eq!(back, &ts("2024-03-01T08:00:00.123456+08:00"));

    // Writing the same rows again compares every type (json and numeric as text) and
    // rewrites nothing; a real change, even only of the json, is applied.
    write_ok(
        &mut sink,
        &[
            Change::upsert("1", full.clone()),
            Change::upsert("2", nulls.clone()),
        ],
    )
    .await;
    assert_eq!(snapshot(PG, &url, &t, &["id"]).await, rows);
    let mut changed = full.clone();
    changed.set("doc", Value::List(vec![Value::Int(2)]));
    write_ok(&mut sink, &[Change::upsert("1", changed)]).await;
    let rows = snapshot(PG, &url, &t, &["id"]).await;
    assert_eq!(rows[0].1.get("doc"), &Value::List(vec![Value::Int(2)]));
}

#[tokio::test]
async fn sink_upserts_and_deletes_idempotently() {
    let Some(url) = pg_url().await else { return };
    let t = unique("pg_sink");
    let _d = Dropper::new(PG, &url, &[&t]);
    customers(&url, &t, 5).await;
    let mut sink = open_sink(sink_opts(PG, &url, &t, &["id"])).await.unwrap();
    let rec = |id: i64, name: &str| {
        Record::new()
            .with("id", id)
            .with("name", name)
            .with("credit", dec("100.10"))
            .with("updated_at", ts("2024-05-01T00:00:00Z"))
    };
    let batch = vec![
        Change::upsert("2", rec(2, "更新")),
        Change::upsert("9", rec(9, "新客户")),
        Change::delete("4", Record::new().with("id", 4i64)),
        Change::delete("99", Record::new().with("id", 99i64)),
    ];
    write_ok(&mut sink, &batch).await;
    let once = snapshot(PG, &url, &t, &["id"]).await;
    let versions = |url: String, t: String| async move {
        let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap();
        let q = format!("SELECT id, xmin::text FROM {t} ORDER BY id");
        sqlx::query_as::<_, (i64, String)>(sqlx::AssertSqlSafe(q))
            .fetch_all(&mut c)
            .await
            .unwrap()
    };
    let before = versions(url.clone(), t.clone()).await;
    write_ok(&mut sink, &batch).await;
    let twice = snapshot(PG, &url, &t, &["id"]).await;
    assert_eq!(once, twice, "same batch twice = same table");
    assert_eq!(
        versions(url.clone(), t.clone()).await,
        before,
        "the replay rewrote no row"
    );
    let keys: Vec<&str> = once.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["1", "2", "3", "5", "9"]);
    assert_eq!(once[1].1.get("name"), &Value::Text("更新".into()));
    assert_eq!(once[4].1.get("credit"), &dec("100.10"));
    // A partial record updates only its fields (the ones left out must be nullable or
    // have defaults: the database checks the row as an insert first).
    let partial = Record::new()
        .with("id", 1i64)
        .with("name", "only name")
        .with("updated_at", ts("2024-06-01T00:00:00Z"));
    write_ok(&mut sink, &[Change::upsert("1", partial)]).await;
    let after = snapshot(PG, &url, &t, &["id"]).await;
    assert_eq!(after[0].1.get("name"), &Value::Text("only name".into()));
    assert_eq!(after[0].1.get("credit"), &dec("1.25"));
    let mut keys = sink.keys().await.unwrap();
    keys.sort();
    assert_eq!(keys, ["1", "2", "3", "5", "9"]);
}

#[tokio::test]
async fn duplicate_keys_in_a_batch_collapse_to_the_last() {
    let Some(url) = pg_url().await else { return };
    let t = unique("pg_dups");
    let _d = Dropper::new(PG, &url, &[&t]);
    customers(&url, &t, 3).await;
    let mut sink = open_sink(sink_opts(PG, &url, &t, &["id"])).await.unwrap();
    let rec = |id: i64, name: &str| {
        Record::new()
            .with("id", id)
            .with("name", name)
            .with("updated_at", ts("2024-05-01T00:00:00Z"))
    };
    let batch = vec![
        Change::upsert("7", rec(7, "first")),
        Change::upsert("7", rec(7, "second")),
        Change::upsert("1", rec(1, "gone soon")),
        Change::delete("1", Record::new().with("id", 1i64)),
        Change::delete("2", Record::new().with("id", 2i64)),
        Change::upsert("2", rec(2, "back")),
    ];
    write_ok(&mut sink, &batch).await;
    let rows = snapshot(PG, &url, &t, &["id"]).await;
    let got: Vec<(String, Value)> = rows
        .iter()
        .map(|(k, r)| (k.clone(), r.get("name").clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("2".into(), Value::Text("back".into())),
            ("3".into(), Value::Text("客户3".into())),
            ("7".into(), Value::Text("second".into())),
        ]
    );
}

#[tokio::test]
async fn bad_values_are_permanent_errors_with_the_reason() {
    let Some(url) = pg_url().await else { return };
    let t = unique("pg_bad");
    let _d = Dropper::new(PG, &url, &[&t]);
    exec(
        PG,
        &url,
        &[&format!(
            "CREATE TABLE {t} (id int PRIMARY KEY, code varchar(5), qty int CHECK (qty >= 0))"
        )],
    )
    .await;
    let mut sink = open_sink(sink_opts(PG, &url, &t, &["id"])).await.unwrap();
    let ok = Record::new()
        .with("id", 1i64)
        .with("code", "A1")
        .with("qty", 1i64);
    // A value the column type refuses: COPY names the line, so the record is known.
    let long = Record::new()
        .with("id", 2i64)
        .with("code", "TOO-LONG")
        .with("qty", 1i64);
    match sink
        .write(&[Change::upsert("1", ok.clone()), Change::upsert("2", long)])
        .await
    {
        Err(SinkError::Record { index, message }) => {
            assert_eq!(index, 1);
            assert!(
                message.contains(&t) && message.contains("too long"),
                "{message}"
            );
            assert!(message.contains("Fix"), "{message}");
        }
        other => panic!("expected a record error, got {other:?}"),
    }
    // A constraint the upsert breaks: the whole batch is refused, nothing applied.
    let negative = Record::new()
        .with("id", 3i64)
        .with("code", "B")
        .with("qty", -5i64);
    match sink
        .write(&[
            Change::upsert("1", ok.clone()),
            Change::upsert("3", negative),
        ])
        .await
    {
        Err(SinkError::Batch(message)) => {
            assert!(
                message.contains(&t) && message.contains("check"),
                "{message}"
            );
            assert!(message.contains("Fix: a CHECK constraint"), "{message}");
        }
        other => panic!("expected a batch error, got {other:?}"),
    }
    assert!(
        snapshot(PG, &url, &t, &["id"]).await.is_empty(),
        "a failed batch leaves no trace"
    );
    // A field with no column is the record's fault.
    let stray = Record::new().with("id", 4i64).with("colour", "red");
    match sink
        .write(&[Change::upsert("1", ok), Change::upsert("4", stray)])
        .await
    {
        Err(SinkError::Record { index: 1, message }) => {
            assert!(message.contains("`colour`"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn missing_table_and_columns_are_named() {
    let Some(url) = pg_url().await else { return };
    let t = unique("pg_missing");
    let _d = Dropper::new(PG, &url, &[&t]);
    customers(&url, &t, 0).await;
    let err = |r: Result<Box<dyn qiao_connectors::Source>, ConnectorError>| match r {
        Err(ConnectorError::Config(m)) => m,
        Err(e) => panic!("expected config error, got {e}"),
        Ok(_) => panic!("expected config error"),
    };
    let m = err(open_source(source_opts(
        PG,
        &url,
        "no_such_table_qiao",
        &["id"],
        None,
        None,
        10,
    ))
    .await);
    assert!(
        m.contains("`no_such_table_qiao` does not exist") && m.contains(&t),
        "{m}"
    );
    let m = err(open_source(source_opts(PG, &url, &t, &["ID2"], None, None, 10)).await);
    assert!(
        m.contains("key column `ID2`") && m.contains("id, name, credit, updated_at"),
        "{m}"
    );
    let m = err(open_source(source_opts(
        PG,
        &url,
        &t,
        &["id"],
        Some("changed"),
        None,
        10,
    ))
    .await);
    assert!(m.contains("cursor column `changed`"), "{m}");
    // A sink needs a unique index on exactly the key columns.
    match open_sink(sink_opts(PG, &url, &t, &["name"])).await {
        Err(ConnectorError::Config(m)) => {
            assert!(m.contains("unique") && m.contains("(id)"), "{m}")
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("sink without unique key opened"),
    }
    // Unsupported column types are refused at open, naming table.column and type.
    let t2 = unique("pg_odd");
    let _d2 = Dropper::new(PG, &url, &[&t2]);
    exec(
        PG,
        &url,
        &[&format!(
            "CREATE TABLE {t2} (id int PRIMARY KEY, blob bytea)"
        )],
    )
    .await;
    let m = err(open_source(source_opts(PG, &url, &t2, &["id"], None, None, 10)).await);
    assert!(m.contains(&format!("{t2}.blob (bytea)")), "{m}");
}

#[tokio::test]
async fn unreachable_server_is_transport() {
    let url = "postgres://postgres@127.0.0.1:1/test";
    match open_source(source_opts(PG, url, "t", &["id"], None, None, 10)).await {
        Err(ConnectorError::Transport(m)) => {
            assert!(m.contains("127.0.0.1:1") && m.contains("crm"), "{m}")
        }
        Err(e) => panic!("expected transport, got {e}"),
        Ok(_) => panic!("connected to port 1?"),
    }
    match open_sink(sink_opts(
        PG,
        "postgres://user:secret@127.0.0.1:1/test",
        "t",
        &["id"],
    ))
    .await
    {
        Err(ConnectorError::Transport(m)) => assert!(!m.contains("secret"), "{m}"),
        Err(e) => panic!("expected transport, got {e}"),
        Ok(_) => panic!("connected to port 1?"),
    }
}
