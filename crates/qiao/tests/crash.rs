//! Crash safety: a child `qiao run` syncing 100,000 rows from PostgreSQL to PostgreSQL is
//! killed with SIGKILL at random moments and restarted; the target must end with every
//! source row exactly once and equal to it.

use rand::Rng;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

async fn pg() -> Option<sqlx::PgPool> {
    match sqlx::PgPool::connect(PG_URL).await {
        Ok(p) => Some(p),
        Err(e) => {
            if std::env::var("QIAO_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("postgres is required (QIAO_REQUIRE_SERVICES=1) but not reachable: {e}");
            }
            eprintln!("SKIPPED: postgres not reachable at {PG_URL}: {e}");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let Some(pool) = pg().await else { return };
    let tag = format!("{}_{}", std::process::id(), rand::random::<u32>());
    let (src, dst) = (format!("crash_src_{tag}"), format!("crash_dst_{tag}"));
    for ddl in [
        format!(
            "CREATE TABLE {src} (id bigint PRIMARY KEY, name text NOT NULL, amount numeric(18,2) NOT NULL, updated_at timestamptz NOT NULL)"
        ),
        format!(
            "CREATE TABLE {dst} (id bigint PRIMARY KEY, name text NOT NULL, amount numeric(18,2) NOT NULL, updated_at timestamptz NOT NULL)"
        ),
        format!(
            "INSERT INTO {src} SELECT g, '客户' || g, (g * 3.17)::numeric(18,2), timestamptz '2026-01-01' + g * interval '1 second' FROM generate_series(1, 100000) g"
        ),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(ddl))
            .execute(&pool)
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("qiao.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"
systems:
  a: {{ kind: postgres, url: "{PG_URL}" }}
  b: {{ kind: postgres, url: "{PG_URL}" }}
entities:
  customer:
    key: [id]
    fields:
      id: {{ type: integer, required: true }}
      name: {{ type: text(100), required: true }}
      amount: {{ type: "decimal(18,2)", required: true }}
      updated_at: {{ type: datetime }}
mappings:
  a_customer:
    system: a
    entity: customer
    object: {src}
    cursor: updated_at
    fields: {{ id: {{ from: id }}, name: {{ from: name }}, amount: {{ from: amount }}, updated_at: {{ from: updated_at }} }}
  b_customer:
    system: b
    entity: customer
    object: {dst}
    fields: {{ id: {{ from: id }}, name: {{ from: name }}, amount: {{ from: amount }}, updated_at: {{ from: updated_at }} }}
flows:
  copy: {{ from: a_customer, to: b_customer, batch_size: 500 }}
"#
        ),
    )
    .unwrap();

    let bin = env!("CARGO_BIN_EXE_qiao");
    let mut rng = rand::rng();
    let mut kills = 0;
    let started = Instant::now();
    loop {
        let mut child = Command::new(bin)
            .args(["-c", cfg.to_str().unwrap(), "run", "copy"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if kills < 5 {
            let wait = Duration::from_millis(rng.random_range(150..900));
            let deadline = Instant::now() + wait;
            let mut finished = None;
            while Instant::now() < deadline {
                if let Some(status) = child.try_wait().unwrap() {
                    finished = Some(status);
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if finished.is_none() {
                child.kill().unwrap(); // SIGKILL on Unix
                child.wait().unwrap();
                kills += 1;
                continue;
            }
            // It finished before the kill: the rest of the table was small; count it.
            let done: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {dst}")))
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            if done == 100_000 {
                break;
            }
            continue;
        }
        let status = child.wait().unwrap();
        assert!(status.success(), "the final run failed: {status}");
        break;
    }
    assert!(
        kills >= 5,
        "only {kills} kills landed while the sync was running"
    );
    assert!(started.elapsed() < Duration::from_secs(600));

    let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {dst}")))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 100_000);
    let missing: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM (SELECT id, name, amount, updated_at FROM {src} EXCEPT SELECT id, name, amount, updated_at FROM {dst}) d"
    )))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(missing, 0, "rows differ between source and target");
    for t in [&src, &dst] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {t}")))
            .execute(&pool)
            .await
            .unwrap();
    }
}
