//! Delivery faults against a real PostgreSQL: a record the target refuses becomes an
//! exception that blocks only its key (later changes to it wait behind it, in order); a
//! target that is down follows the retry schedule and then becomes a transport exception;
//! retrying after the fix delivers everything, in order.

mod common;
#[path = "common/proxy.rs"]
mod proxy;

use common::*;
use qiao_engine::FlowPlan;
use qiao_store::{ExceptionFilter, ExceptionKind, ExceptionState};
use sqlx::Row;
use std::sync::Arc;

async fn sqlite_source(path: &std::path::Path) -> sqlx::SqlitePool {
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    sqlx::query("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty TEXT NOT NULL, updated_at TEXT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    pool
}

async fn put(pool: &sqlx::SqlitePool, id: i64, name: &str, qty: &str, ts: &str) {
    sqlx::query("INSERT INTO items VALUES (?,?,?,?) ON CONFLICT(id) DO UPDATE SET name=excluded.name, qty=excluded.qty, updated_at=excluded.updated_at")
        .bind(id)
        .bind(name)
        .bind(qty)
        .bind(ts)
        .execute(pool)
        .await
        .unwrap();
}

async fn target_rows(pg: &sqlx::PgPool, table: &str) -> Vec<(i64, String, String)> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id, name, qty::text AS qty FROM {table} ORDER BY id"
    )))
    .fetch_all(pg)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("id"), r.get("name"), r.get("qty")))
    .collect()
}

async fn source_rows(src: &sqlx::SqlitePool) -> Vec<(i64, String, String)> {
    sqlx::query("SELECT id, name, qty FROM items ORDER BY id")
        .fetch_all(src)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get("id"),
                r.get("name"),
                format!("{:.2}", r.get::<String, _>("qty").parse::<f64>().unwrap()),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_records_block_only_their_key_and_a_down_target_follows_the_retry_schedule() {
    if !service("postgres", PG_URL).await {
        return;
    }
    let pg = sqlx::PgPool::connect(PG_URL).await.unwrap();
    let table = unique("deliv");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE {table} (id bigint PRIMARY KEY, name text NOT NULL, qty numeric(18,2) NOT NULL CONSTRAINT qty_not_negative CHECK (qty >= 0))"
    )))
    .execute(&pg)
    .await
    .unwrap();
    let mut proxy = proxy::Proxy::start("127.0.0.1:5432").await;
    let dir = tempfile::tempdir().unwrap();
    let src = sqlite_source(&dir.path().join("src.db")).await;
    for id in 1..=50 {
        let qty = if id == 7 { "-1" } else { "5" };
        put(
            &src,
            id,
            &format!("item {id}"),
            qty,
            &format!("2026-11-01 00:00:{:02}", id),
        )
        .await;
    }
    let cfg = config(&format!(
        r#"
systems:
  shop: {{ kind: sqlite, url: "sqlite://src.db" }}
  wh: {{ kind: postgres, url: "postgres://postgres@127.0.0.1:{port}/test" }}
entities:
  item:
    key: [id]
    fields:
      id: {{ type: integer, required: true }}
      name: {{ type: text(50), required: true }}
      qty: {{ type: "decimal(18,2)", required: true }}
mappings:
  shop_item:
    system: shop
    entity: item
    object: items
    cursor: updated_at
    fields: {{ id: {{ from: id }}, name: {{ from: name }}, qty: {{ from: qty, convert: [decimal] }} }}
  wh_item:
    system: wh
    entity: item
    object: {table}
    fields: {{ id: {{ from: id }}, name: {{ from: name }}, qty: {{ from: qty }} }}
flows:
  sync: {{ from: shop_item, to: wh_item, batch_size: 10, retry: ["1s", "1s"] }}
"#,
        port = proxy.port
    ));
    let store = store(dir.path()).await;

    // 1. The target refuses id 7: one exception, owner `it`, its key blocked; the rest lands.
    let s = run(&cfg, &store, dir.path(), "sync").await;
    assert_eq!(
        (s.read, s.delivered, s.delivery_exceptions),
        (50, 49, 1),
        "{s:?}"
    );
    let open = store
        .exceptions(&ExceptionFilter {
            states: vec![ExceptionState::Open],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].key.as_deref(), Some("7"));
    assert!(
        open[0].message.contains("qty_not_negative"),
        "{}",
        open[0].message
    );
    let refused = open[0].id;

    // 2. A later change to id 7 waits behind the exception; other keys go on.
    put(&src, 7, "item 7 v2", "-2", "2026-11-02 00:00:00").await;
    put(&src, 8, "item 8 v2", "6", "2026-11-02 00:00:01").await;
    let s = run(&cfg, &store, dir.path(), "sync").await;
    assert_eq!((s.read, s.delivered, s.held), (2, 1, 1), "{s:?}");

    // 3. The target is fixed; retrying delivers the refused change and then the held one.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER TABLE {table} DROP CONSTRAINT qty_not_negative"
    )))
    .execute(&pg)
    .await
    .unwrap();
    let plan = Arc::new(FlowPlan::build(&cfg, "sync").unwrap());
    let outcome = qiao_engine::exceptions::retry(plan.clone(), store.clone(), refused, "tester")
        .await
        .unwrap();
    assert_eq!(outcome, qiao_engine::exceptions::Outcome::Enqueued(2));
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let opts = qiao_engine::RunOptions {
        base_dir: dir.path().to_path_buf(),
        stop: rx,
        owner: "test".into(),
    };
    qiao_engine::runner::deliver_pending(&cfg, &plan, store.as_ref(), &opts)
        .await
        .unwrap();
    let (row, _, history) = store.exception(refused).await.unwrap();
    assert_eq!(row.state, ExceptionState::Resolved, "{history:?}");
    assert_eq!(target_rows(&pg, &table).await, source_rows(&src).await);

    // 4. The target goes down: the schedule is 1 s, 1 s, then a transport exception.
    proxy.down().await;
    for id in 51..=60 {
        put(
            &src,
            id,
            &format!("item {id}"),
            "1",
            &format!("2026-11-03 00:00:{:02}", id),
        )
        .await;
    }
    let s = run(&cfg, &store, dir.path(), "sync").await;
    assert!(s.waiting.is_some(), "{s:?}");
    assert_eq!(s.status(), "waiting");
    assert_eq!(store.pending_jobs("sync").await.unwrap(), 1);
    for attempt in 2..=3 {
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let s = run(&cfg, &store, dir.path(), "sync").await;
        if attempt == 2 {
            assert!(s.waiting.is_some(), "attempt 2: {s:?}");
        } else {
            assert_eq!(
                s.delivery_exceptions, 1,
                "attempt 3 ends the schedule: {s:?}"
            );
        }
    }
    let open = store
        .exceptions(&ExceptionFilter {
            states: vec![ExceptionState::Open],
            ..Default::default()
        })
        .await
        .unwrap();
    let transport: Vec<_> = open
        .iter()
        .filter(|e| e.kind == ExceptionKind::Transport)
        .collect();
    assert_eq!(transport.len(), 1, "{open:?}");
    assert_eq!(target_rows(&pg, &table).await.len(), 50);

    // 5. Back up: a new change to a held key waits; the retry delivers all in order.
    proxy.up().await;
    put(&src, 55, "item 55 v2", "9", "2026-11-04 00:00:00").await;
    let s = run(&cfg, &store, dir.path(), "sync").await;
    assert_eq!(s.held, 1, "{s:?}");
    let id = transport[0].id;
    qiao_engine::exceptions::retry(plan.clone(), store.clone(), id, "tester")
        .await
        .unwrap();
    qiao_engine::runner::deliver_pending(&cfg, &plan, store.as_ref(), &opts)
        .await
        .unwrap();
    assert_eq!(
        store.exception(id).await.unwrap().0.state,
        ExceptionState::Resolved
    );
    assert_eq!(target_rows(&pg, &table).await, source_rows(&src).await);

    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {table}")))
        .execute(&pg)
        .await
        .unwrap();
}
