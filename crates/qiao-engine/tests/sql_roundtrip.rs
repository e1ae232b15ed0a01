//! PostgreSQL → MariaDB → PostgreSQL through the engine: full load, then incremental
//! after inserts, updates and deletes; every table compared row by row.

mod common;

use common::*;
use sqlx::Row;

type Rows = Vec<(i64, String, String, String, String)>;

async fn pg_rows(pool: &sqlx::PgPool, table: &str) -> Rows {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id, name, amount::text AS amount, status, to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS ts FROM {table} ORDER BY id"
    )))
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("id"), r.get("name"), r.get("amount"), r.get("status"), r.get("ts")))
    .collect()
}

async fn maria_rows(pool: &sqlx::MySqlPool, table: &str) -> Rows {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id, name, CAST(amount AS CHAR) AS amount, status, DATE_FORMAT(updated_at, '%Y-%m-%d %H:%i:%s.%f') AS ts FROM {table} ORDER BY id"
    )))
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("id"), r.get("name"), r.get("amount"), r.get("status"), r.get("ts")))
    .collect()
}

fn yaml(src: &str, dst: &str, back: &str) -> String {
    format!(
        r#"
systems:
  crm: {{ kind: postgres, url: "{PG_URL}" }}
  erp: {{ kind: mysql, url: "{MARIA_URL}" }}
  crm_copy: {{ kind: postgres, url: "{PG_URL}" }}   # a second copy, so the flows form no loop
entities:
  customer:
    key: [id]
    fields:
      id: {{ type: integer, required: true }}
      name: {{ type: text(100), required: true }}
      amount: {{ type: "decimal(18,2)" }}
      status: {{ type: "enum[active,dormant,closed]" }}
      updated_at: {{ type: datetime }}
mappings:
  crm_customer:
    system: crm
    entity: customer
    object: {src}
    cursor: updated_at
    fields:
      id: {{ from: id }}
      name: {{ from: name }}
      amount: {{ from: amount }}
      status: {{ from: status }}
      updated_at: {{ from: updated_at }}
  erp_customer:
    system: erp
    entity: customer
    object: {dst}
    cursor: updated_at
    fields:
      id: {{ from: id }}
      name: {{ from: name }}
      amount: {{ from: amount }}
      status: {{ from: status }}
      updated_at: {{ from: updated_at }}
  crm_back:
    system: crm_copy
    entity: customer
    object: {back}
    fields:
      id: {{ from: id }}
      name: {{ from: name }}
      amount: {{ from: amount }}
      status: {{ from: status }}
      updated_at: {{ from: updated_at }}
flows:
  to_erp: {{ from: crm_customer, to: erp_customer, deletes: key_scan, batch_size: 97 }}
  back_to_crm: {{ from: erp_customer, to: crm_back, deletes: key_scan, batch_size: 101 }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_to_mariadb_and_back_full_then_incremental() {
    if !service("postgres", PG_URL).await || !service("mariadb", MARIA_URL).await {
        return;
    }
    let pg = sqlx::PgPool::connect(PG_URL).await.unwrap();
    let my = sqlx::MySqlPool::connect(MARIA_URL).await.unwrap();
    let (src, dst, back) = (unique("rt_src"), unique("rt_dst"), unique("rt_back"));
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE {src} (id bigint PRIMARY KEY, name text NOT NULL, amount numeric(18,2), status text, updated_at timestamptz NOT NULL)"
    )))
    .execute(&pg)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE {back} (id bigint PRIMARY KEY, name text NOT NULL, amount numeric(18,2), status text, updated_at timestamptz NOT NULL)"
    )))
    .execute(&pg)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE {dst} (id bigint PRIMARY KEY, name varchar(100) NOT NULL, amount decimal(18,2), status varchar(10), updated_at datetime(6) NOT NULL) CHARACTER SET utf8mb4"
    )))
    .execute(&my)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {src} SELECT g, '客户' || g || ' 有限公司', (g * 1234567.89 / 7)::numeric(18,2), (ARRAY['active','dormant','closed'])[1 + g % 3], \
         timestamptz '2026-11-01 08:00:00+08' + g * interval '1.000001 second' FROM generate_series(1, 1000) g"
    )))
    .execute(&pg)
    .await
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&yaml(&src, &dst, &back));
    let store = store(dir.path()).await;

    let s = run(&cfg, &store, dir.path(), "to_erp").await;
    assert_eq!((s.read, s.delivered, s.rejected), (1000, 1000, 0), "{s:?}");
    assert_eq!(pg_rows(&pg, &src).await, maria_rows(&my, &dst).await);
    let s = run(&cfg, &store, dir.path(), "back_to_crm").await;
    assert_eq!(s.delivered, 1000, "{s:?}");
    assert_eq!(pg_rows(&pg, &back).await, pg_rows(&pg, &src).await);

    // A second pass with no changes reads nothing.
    let s = run(&cfg, &store, dir.path(), "to_erp").await;
    assert_eq!((s.read, s.delivered, s.deleted), (0, 0, 0), "{s:?}");

    // Inserts, updates (cursor moves forward) and deletes at the source.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {src} SELECT g, '新客户' || g, 99.99, 'active', now() FROM generate_series(1001, 1020) g"
    )))
    .execute(&pg)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {src} SET name = name || '（已更新）', amount = amount + 0.01, status = 'closed', updated_at = now() + interval '1 second' WHERE id % 33 = 0"
    )))
    .execute(&pg)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM {src} WHERE id IN (5, 6, 7, 500, 999)"
    )))
    .execute(&pg)
    .await
    .unwrap();

    let s = run(&cfg, &store, dir.path(), "to_erp").await;
    assert_eq!(s.read, 20 + 30, "{s:?}");
    assert_eq!(s.deleted, 5, "{s:?}");
    assert_eq!(pg_rows(&pg, &src).await, maria_rows(&my, &dst).await);
    let s = run(&cfg, &store, dir.path(), "back_to_crm").await;
    assert_eq!(s.deleted, 5, "{s:?}");
    assert_eq!(pg_rows(&pg, &back).await, pg_rows(&pg, &src).await);
    assert_eq!(pg_rows(&pg, &src).await.len(), 1015);

    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {src}, {back}")))
        .execute(&pg)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {dst}")))
        .execute(&my)
        .await
        .unwrap();
}
