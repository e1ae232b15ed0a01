//! Crosswalk, config versions, run records, flow leases, reopening and migrations.

mod common;

use chrono::Utc;
use common::{ch, file_store, job, transport, versions};
use qiao_store::{ExceptionFilter, ExceptionState, RunRecord, SqliteStore, Store, StoreError};
use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;
use std::path::Path;
use std::time::Duration;

#[tokio::test]
async fn crosswalk_answers_both_ways() {
    let (store, _dir, _) = file_store().await;
    assert_eq!(
        store.crosswalk_get("crm", "customer", "C1").await.unwrap(),
        None
    );
    store
        .crosswalk_put("crm", "customer", "C1", "G-1")
        .await
        .unwrap();
    store
        .crosswalk_put("erp", "customer", "100", "G-1")
        .await
        .unwrap();
    store
        .crosswalk_put("crm", "supplier", "C1", "G-9")
        .await
        .unwrap();
    assert_eq!(
        store
            .crosswalk_get("crm", "customer", "C1")
            .await
            .unwrap()
            .as_deref(),
        Some("G-1")
    );
    assert_eq!(
        store
            .crosswalk_get("crm", "supplier", "C1")
            .await
            .unwrap()
            .as_deref(),
        Some("G-9")
    );
    assert_eq!(
        store
            .crosswalk_local("erp", "customer", "G-1")
            .await
            .unwrap()
            .as_deref(),
        Some("100")
    );
    assert_eq!(
        store
            .crosswalk_local("crm", "customer", "G-1")
            .await
            .unwrap()
            .as_deref(),
        Some("C1")
    );
    assert_eq!(
        store
            .crosswalk_local("tax", "customer", "G-1")
            .await
            .unwrap(),
        None
    );

    // A duplicate in the CRM merged into the same golden record: the first link stays first.
    store
        .crosswalk_put("crm", "customer", "C7", "G-1")
        .await
        .unwrap();
    store
        .crosswalk_put("crm", "customer", "C1", "G-1")
        .await
        .unwrap();
    assert_eq!(
        store
            .crosswalk_locals("crm", "customer", "G-1")
            .await
            .unwrap(),
        ["C1", "C7"]
    );
    assert_eq!(
        store
            .crosswalk_local("crm", "customer", "G-1")
            .await
            .unwrap()
            .as_deref(),
        Some("C1")
    );
    // Re-linking moves a local id.
    store
        .crosswalk_put("crm", "customer", "C1", "G-2")
        .await
        .unwrap();
    assert_eq!(
        store
            .crosswalk_get("crm", "customer", "C1")
            .await
            .unwrap()
            .as_deref(),
        Some("G-2")
    );
    assert_eq!(
        store
            .crosswalk_locals("crm", "customer", "G-1")
            .await
            .unwrap(),
        ["C7"]
    );
}

#[tokio::test]
async fn config_versions_are_new_only_when_the_text_changes() {
    let (store, _dir, _) = file_store().await;
    assert_eq!(store.latest_config_version().await.unwrap(), None);
    let a = "version: 1\nflows: {}\n";
    let b = "version: 1\nflows: {x: 1}\n";
    assert_eq!(store.save_config_version(a, "alice").await.unwrap(), 1);
    assert_eq!(store.save_config_version(a, "bob").await.unwrap(), 1);
    assert_eq!(store.save_config_version(b, "bob").await.unwrap(), 2);
    // Going back to an older text is a change too (a rollback is recorded).
    assert_eq!(store.save_config_version(a, "carol").await.unwrap(), 3);
    let (n, hash) = store.latest_config_version().await.unwrap().unwrap();
    assert_eq!(n, 3);
    // SHA-256 of the text, as `sha256sum` prints it.
    assert_eq!(hash.len(), 64);
    let v1 = store.config_version(1).await.unwrap().unwrap();
    assert_eq!((v1.text.as_str(), v1.author.as_str()), (a, "alice"));
    assert_eq!(v1.hash, hash);
    assert_eq!(store.config_version(2).await.unwrap().unwrap().text, b);
    assert!(store.config_version(9).await.unwrap().is_none());
    let list = store.config_versions().await.unwrap();
    assert_eq!(list.iter().map(|v| v.number).collect::<Vec<_>>(), [3, 2, 1]);
    assert!(list.iter().all(|v| v.text.is_empty()));
    assert_eq!(list[2].author, "alice");
}

#[tokio::test]
async fn run_records_keep_the_latest_per_flow() {
    let (store, _dir, _) = file_store().await;
    assert!(store.last_runs().await.unwrap().is_empty());
    let r1 = store.run_started("b_flow").await.unwrap();
    let r2 = store.run_started("a_flow").await.unwrap();
    let r3 = store.run_started("b_flow").await.unwrap();
    let finished = RunRecord {
        id: r3,
        flow: "b_flow".into(),
        finished_at: Some(Utc::now()),
        read: 1_000,
        delivered: 990,
        rejected: 7,
        filtered: 2,
        deleted: 1,
        status: "partial".into(),
        error: Some("7 records refused by erp".into()),
        ..Default::default()
    };
    store.run_update(&finished).await.unwrap();
    let runs = store.last_runs().await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (runs[0].id, runs[0].flow.as_str(), runs[0].status.as_str()),
        (r2, "a_flow", "running")
    );
    assert!(runs[0].started_at.is_some() && runs[0].finished_at.is_none());
    let b = &runs[1];
    assert_eq!(b.id, r3);
    assert_ne!(b.id, r1);
    assert_eq!(
        (b.read, b.delivered, b.rejected, b.filtered, b.deleted),
        (1_000, 990, 7, 2, 1)
    );
    assert_eq!(b.status, "partial");
    assert_eq!(b.error.as_deref(), Some("7 records refused by erp"));
    // started_at was kept although the update did not carry it.
    assert!(b.started_at.is_some() && b.finished_at.is_some());
    let err = store
        .run_update(&RunRecord {
            id: 999,
            flow: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
}

#[tokio::test]
async fn flow_leases_are_exclusive_and_expire() {
    let (store, _dir, path) = file_store().await;
    // The second handle stands for a second qiao process on the same file.
    let other = SqliteStore::open(&path).await.unwrap();
    let long = Duration::from_secs(60);
    assert!(store.try_lock_flow("f", "worker-a", long).await.unwrap());
    assert!(!other.try_lock_flow("f", "worker-b", long).await.unwrap());
    // Other flows are independent; the holder renews.
    assert!(other.try_lock_flow("g", "worker-b", long).await.unwrap());
    assert!(store.try_lock_flow("f", "worker-a", long).await.unwrap());
    // Only the holder can give it up.
    other.unlock_flow("f", "worker-b").await.unwrap();
    assert!(!other.try_lock_flow("f", "worker-b", long).await.unwrap());
    store.unlock_flow("f", "worker-a").await.unwrap();
    assert!(other.try_lock_flow("f", "worker-b", long).await.unwrap());

    // A holder that stops renewing (it died) loses the lease when it expires.
    assert!(
        store
            .try_lock_flow("h", "dead", Duration::from_millis(50))
            .await
            .unwrap()
    );
    assert!(!other.try_lock_flow("h", "alive", long).await.unwrap());
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(other.try_lock_flow("h", "alive", long).await.unwrap());
    assert!(!store.try_lock_flow("h", "dead", long).await.unwrap());

    let err = store
        .try_lock_flow("z", "a", Duration::MAX)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("too long"), "{err}");
}

#[tokio::test]
async fn a_dead_owners_lease_is_taken_over_once() {
    let (store, _dir, _) = file_store().await;
    let long = Duration::from_secs(600);
    assert_eq!(store.flow_lock_owner("f").await.unwrap(), None);
    assert!(store.try_lock_flow("f", "qiao:1@host", long).await.unwrap());
    assert_eq!(
        store.flow_lock_owner("f").await.unwrap().as_deref(),
        Some("qiao:1@host")
    );
    // Two survivors saw the same dead owner: only the first swap wins.
    assert!(
        store
            .take_over_flow("f", "qiao:1@host", "qiao:2@host", long)
            .await
            .unwrap()
    );
    assert!(
        !store
            .take_over_flow("f", "qiao:1@host", "qiao:3@host", long)
            .await
            .unwrap()
    );
    assert_eq!(
        store.flow_lock_owner("f").await.unwrap().as_deref(),
        Some("qiao:2@host")
    );
    assert!(!store.try_lock_flow("f", "qiao:3@host", long).await.unwrap());
    // No lease, nothing to take over.
    assert!(
        !store
            .take_over_flow("g", "qiao:1@host", "qiao:2@host", long)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn leases_are_exclusive_under_contention() {
    let (store, _dir, path) = file_store().await;
    let handles = [
        std::sync::Arc::new(store),
        std::sync::Arc::new(SqliteStore::open(&path).await.unwrap()),
    ];
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = handles[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            s.try_lock_flow("f", &format!("w{i}"), Duration::from_secs(60))
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
}

#[tokio::test]
async fn reopening_a_file_store_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let (job_id, exc_id, run_id);
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store
            .commit_batch(
                "f",
                Some("pos-42"),
                vec![job("f:1", vec![ch("a", 1), ch("b", 1)])],
                vec![transport("f", vec![ch("k", 1)])],
                vec![],
            )
            .await
            .unwrap();
        store.hold_change("f", &ch("k", 2)).await.unwrap();
        store
            .crosswalk_put("crm", "customer", "C1", "G-1")
            .await
            .unwrap();
        store.save_config_version("text", "alice").await.unwrap();
        run_id = store.run_started("f").await.unwrap();
        store
            .try_lock_flow("f", "w", Duration::from_secs(600))
            .await
            .unwrap();
        job_id = store.due_jobs("f", Utc::now(), 1).await.unwrap()[0].id;
        exc_id = store.exceptions(&ExceptionFilter::default()).await.unwrap()[0].id;
        store.close().await;
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        store.checkpoint("f").await.unwrap().as_deref(),
        Some("pos-42")
    );
    let jobs = store.due_jobs("f", Utc::now(), 10).await.unwrap();
    assert_eq!(jobs.iter().map(|j| j.id).collect::<Vec<_>>(), [job_id]);
    assert_eq!(
        versions(&jobs[0].changes),
        [("a".to_string(), 1), ("b".to_string(), 1)]
    );
    let (row, changes, history) = store.exception(exc_id).await.unwrap();
    assert_eq!(row.state, ExceptionState::Open);
    assert_eq!(
        versions(&changes),
        [("k".to_string(), 1), ("k".to_string(), 2)]
    );
    assert_eq!(history.len(), 2);
    assert_eq!(store.blocked_keys("f").await.unwrap(), ["k"]);
    assert_eq!(
        store
            .crosswalk_get("crm", "customer", "C1")
            .await
            .unwrap()
            .as_deref(),
        Some("G-1")
    );
    assert_eq!(store.latest_config_version().await.unwrap().unwrap().0, 1);
    assert_eq!(store.last_runs().await.unwrap()[0].id, run_id);
    assert!(
        !store
            .try_lock_flow("f", "other", Duration::from_secs(1))
            .await
            .unwrap()
    );
    assert_eq!(store.schema_version().await.unwrap(), 1);
}

async fn raw(path: &Path) -> SqliteConnection {
    SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

#[tokio::test]
async fn migrations_run_once_and_a_newer_store_is_refused() {
    let (store, _dir, path) = file_store().await;
    store.close().await;
    drop(store);
    for _ in 0..3 {
        let s = SqliteStore::open(&path).await.unwrap();
        assert_eq!(s.schema_version().await.unwrap(), 1);
        s.close().await;
    }
    let mut c = raw(&path).await;
    let rows: Vec<(i64, String)> = sqlx::query_as("SELECT version, name FROM schema_migrations")
        .fetch_all(&mut c)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, 1);
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(mode, "wal");

    // A newer qiao migrated this file further.
    sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (2, 'from the future', 0)")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    let err = SqliteStore::open(&path).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("schema version 2") && msg.contains("newer qiao"),
        "{msg}"
    );
    assert!(msg.contains(&path.display().to_string()), "{msg}");
}

#[tokio::test]
async fn an_older_store_is_migrated_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    // A store from before the first migration: the file exists, its schema is empty.
    {
        let mut c = SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
        sqlx::query("CREATE TABLE unrelated (x INTEGER)")
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 1);
    store
        .enqueue("f", job("k", vec![ch("a", 1)]))
        .await
        .unwrap();
    assert_eq!(store.pending_jobs("f").await.unwrap(), 1);
}

#[tokio::test]
async fn opening_in_a_missing_directory_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no").join("such").join("state.db");
    let err = SqliteStore::open(&path).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("does not exist") && msg.contains("no/such"),
        "{msg}"
    );
    // A file that is not a database.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![b'x'; 8192]).unwrap();
    let err = SqliteStore::open(&junk).await.unwrap_err();
    assert!(err.to_string().contains("not a qiao store"), "{err}");
}
