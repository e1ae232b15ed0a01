//! The transactional outbox: commit_batch, due jobs, retries, done jobs, idempotency keys.

mod common;

use chrono::{Duration, Utc};
use common::{ch, file_store, job, transport, validation, versions};
use qiao_store::{ExceptionFilter, SqliteStore, Store, StoreError};
use std::sync::Arc;

#[tokio::test]
async fn commit_batch_writes_all_or_nothing() {
    let (store, _dir, _) = file_store().await;
    store
        .commit_batch(
            "f",
            Some("10"),
            vec![job("f:1..10", vec![ch("a", 1)])],
            vec![],
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(store.checkpoint("f").await.unwrap().as_deref(), Some("10"));

    // The second job reuses an idempotency key for different changes: the insert fails,
    // and nothing of the batch may remain — not the first job, not the exception, and
    // above all not the new checkpoint.
    let err = store
        .commit_batch(
            "f",
            Some("20"),
            vec![
                job("f:11..15", vec![ch("b", 1)]),
                job("f:1..10", vec![ch("zzz", 9)]),
            ],
            vec![validation("f", ch("c", 1), "sales", false)],
            vec![],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("f:1..10") && msg.contains("different changes"),
        "{msg}"
    );

    assert_eq!(store.checkpoint("f").await.unwrap().as_deref(), Some("10"));
    assert_eq!(store.pending_jobs("f").await.unwrap(), 1);
    let due = store.due_jobs("f", Utc::now(), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(versions(&due[0].changes), vec![("a".to_string(), 1)]);
    assert!(
        store
            .exceptions(&ExceptionFilter::default())
            .await
            .unwrap()
            .is_empty()
    );

    // The store is still usable after the rolled-back transaction.
    store
        .commit_batch(
            "f",
            Some("20"),
            vec![job("f:11..20", vec![ch("b", 1)])],
            vec![],
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(store.checkpoint("f").await.unwrap().as_deref(), Some("20"));
    assert_eq!(store.pending_jobs("f").await.unwrap(), 2);
}

#[tokio::test]
async fn commit_batch_without_checkpoint_leaves_it_and_flows_are_separate() {
    let (store, _dir, _) = file_store().await;
    assert_eq!(store.checkpoint("f").await.unwrap(), None);
    store
        .commit_batch("f", Some("p1"), vec![], vec![], vec![])
        .await
        .unwrap();
    store
        .commit_batch("f", None, vec![job("k", vec![ch("a", 1)])], vec![], vec![])
        .await
        .unwrap();
    assert_eq!(store.checkpoint("f").await.unwrap().as_deref(), Some("p1"));
    assert_eq!(store.checkpoint("g").await.unwrap(), None);
    assert_eq!(store.pending_jobs("g").await.unwrap(), 0);
    assert!(
        store
            .due_jobs("g", Utc::now(), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn idempotency_keys_are_unique_per_flow() {
    let (store, _dir, _) = file_store().await;
    let first = job("f:1..2", vec![ch("a", 1), ch("b", 1)]);
    store.enqueue("f", first.clone()).await.unwrap();
    // The same job again (a replayed batch) is skipped, not doubled.
    store.enqueue("f", first.clone()).await.unwrap();
    store
        .commit_batch("f", Some("2"), vec![first.clone()], vec![], vec![])
        .await
        .unwrap();
    assert_eq!(store.pending_jobs("f").await.unwrap(), 1);
    // A different job under the same key is refused.
    let err = store
        .enqueue("f", job("f:1..2", vec![ch("a", 2)]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already used by job #"), "{err}");
    // Another flow may use the same key.
    store.enqueue("g", first.clone()).await.unwrap();
    assert_eq!(store.pending_jobs("g").await.unwrap(), 1);
    // After delivery the payload is gone; the same job again is still recognised.
    let id = store.due_jobs("f", Utc::now(), 1).await.unwrap()[0].id;
    store.job_done(id).await.unwrap();
    store.enqueue("f", first).await.unwrap();
    assert_eq!(store.pending_jobs("f").await.unwrap(), 0);
}

#[tokio::test]
async fn due_jobs_come_oldest_first_and_wait_behind_a_retry() {
    let (store, _dir, _) = file_store().await;
    for i in 1..=3 {
        store
            .commit_batch(
                "f",
                Some(&i.to_string()),
                vec![job(&format!("f:{i}"), vec![ch("k", i)])],
                vec![],
                vec![],
            )
            .await
            .unwrap();
    }
    let now = Utc::now();
    let due = store.due_jobs("f", now, 10).await.unwrap();
    let keys: Vec<&str> = due.iter().map(|j| j.idempotency_key.as_str()).collect();
    assert_eq!(keys, ["f:1", "f:2", "f:3"]);
    assert!(due.windows(2).all(|w| w[0].id < w[1].id));
    assert!(due.iter().all(|j| j.attempts == 0 && j.flow == "f"));
    assert_eq!(store.due_jobs("f", now, 2).await.unwrap().len(), 2);

    // The oldest fails: it is retried in 5 minutes, and the later jobs (same key `k`)
    // must not overtake it.
    let retry_at = now + Duration::minutes(5);
    store
        .job_retry_later(due[0].id, retry_at, "HTTP 503 from erp")
        .await
        .unwrap();
    assert!(
        store
            .due_jobs("f", now + Duration::minutes(4), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.pending_jobs("f").await.unwrap(), 3);
    let next = store.next_due("f").await.unwrap().unwrap();
    assert_eq!(next.timestamp_micros(), retry_at.timestamp_micros());
    let info = store.job_info(due[0].id).await.unwrap().unwrap();
    assert_eq!(info.attempts, 1);
    assert_eq!(info.last_error.as_deref(), Some("HTTP 503 from erp"));

    let later = store.due_jobs("f", retry_at, 10).await.unwrap();
    assert_eq!(later.len(), 3);
    assert_eq!(later[0].id, due[0].id);
    assert_eq!(later[0].attempts, 1);

    // A later job waiting while the head is due stops the list at itself.
    store
        .job_retry_later(due[1].id, retry_at + Duration::minutes(10), "timeout")
        .await
        .unwrap();
    let head_only = store.due_jobs("f", retry_at, 10).await.unwrap();
    assert_eq!(
        head_only.iter().map(|j| j.id).collect::<Vec<_>>(),
        [due[0].id]
    );
    store.job_done(due[0].id).await.unwrap();
    let next = store.next_due("f").await.unwrap().unwrap();
    assert_eq!(
        next.timestamp_micros(),
        (retry_at + Duration::minutes(10)).timestamp_micros()
    );
    store.job_done(due[1].id).await.unwrap();
    store.job_done(due[2].id).await.unwrap();
    assert_eq!(store.next_due("f").await.unwrap(), None);
}

#[tokio::test]
async fn job_done_drops_the_payload_and_keeps_the_row() {
    let (store, _dir, _) = file_store().await;
    store
        .enqueue("f", job("f:1", vec![ch("a", 1), ch("b", 1)]))
        .await
        .unwrap();
    let j = store.due_jobs("f", Utc::now(), 1).await.unwrap().remove(0);
    let before = store.job_info(j.id).await.unwrap().unwrap();
    assert_eq!(before.state, "pending");
    assert_eq!(before.record_count, 2);
    assert!(before.payload_bytes > 0);
    assert!(before.next_attempt_at.is_some() && before.done_at.is_none());

    store.job_done(j.id).await.unwrap();
    let after = store.job_info(j.id).await.unwrap().unwrap();
    assert_eq!(after.state, "done");
    assert_eq!(after.payload_bytes, 0);
    assert_eq!(after.record_count, 2);
    assert_eq!(after.idempotency_key, "f:1");
    assert!(after.done_at.is_some() && after.next_attempt_at.is_none());
    assert_eq!(store.pending_jobs("f").await.unwrap(), 0);
    assert!(
        store
            .due_jobs("f", Utc::now(), 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Done twice (a delivery repeated after a crash) is fine; retrying a done job is not.
    store.job_done(j.id).await.unwrap();
    let err = store
        .job_retry_later(j.id, Utc::now(), "x")
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid(_)) && err.to_string().contains("done"),
        "{err}"
    );
    assert!(matches!(
        store.job_done(999).await.unwrap_err(),
        StoreError::NotFound(_)
    ));
    assert!(store.job_info(999).await.unwrap().is_none());
}

#[tokio::test]
async fn job_finish_holds_opens_and_closes_in_one_step() {
    let (store, _dir, _) = file_store().await;
    // Key `a` is blocked by an earlier failure.
    store
        .commit_batch(
            "f",
            None,
            vec![],
            vec![transport("f", vec![ch("a", 1)])],
            vec![],
        )
        .await
        .unwrap();
    store
        .enqueue("f", job("f:2", vec![ch("a", 2), ch("b", 2), ch("c", 2)]))
        .await
        .unwrap();
    let j = store.due_jobs("f", Utc::now(), 1).await.unwrap().remove(0);
    // `a` is held, `b` was refused by the target, `c` was delivered.
    store
        .job_finish(
            j.id,
            vec![ch("a", 2)],
            vec![validation("f", ch("b", 2), "sales", true)],
        )
        .await
        .unwrap();
    assert_eq!(store.job_info(j.id).await.unwrap().unwrap().state, "done");
    assert_eq!(store.blocked_keys("f").await.unwrap(), ["a", "b"]);
    let all = store.exceptions(&ExceptionFilter::default()).await.unwrap();
    assert_eq!(all.len(), 2);
    let (_, changes, _) = store.exception(all[1].id).await.unwrap();
    assert_eq!(
        versions(&changes),
        [("a".to_string(), 1), ("a".to_string(), 2)]
    );
    // Finishing again does not hold `a` twice.
    store
        .job_finish(j.id, vec![ch("a", 2)], vec![])
        .await
        .unwrap();
    let (_, changes, _) = store.exception(all[1].id).await.unwrap();
    assert_eq!(changes.len(), 2);

    // A failing part rolls back the whole step: `zzz` is not blocked, so it cannot be held.
    store
        .enqueue("f", job("f:3", vec![ch("zzz", 1)]))
        .await
        .unwrap();
    let j3 = store.due_jobs("f", Utc::now(), 1).await.unwrap().remove(0);
    let err = store
        .job_finish(
            j3.id,
            vec![ch("zzz", 1)],
            vec![validation("f", ch("q", 1), "sales", true)],
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("no open exception blocks this key"),
        "{err}"
    );
    assert_eq!(
        store.job_info(j3.id).await.unwrap().unwrap().state,
        "pending"
    );
    assert_eq!(
        store
            .exceptions(&ExceptionFilter::default())
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn many_tasks_and_two_handles_write_at_once() {
    let (store, _dir, path) = file_store().await;
    // A second handle on the same file stands for a second qiao process.
    let other = SqliteStore::open(&path).await.unwrap();
    let handles: Vec<Arc<SqliteStore>> = vec![Arc::new(store), Arc::new(other)];
    let mut tasks = Vec::new();
    for t in 0..8 {
        let s = handles[t % 2].clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let key = format!("t{t}:{i}");
                s.commit_batch(
                    "f",
                    Some(&key),
                    vec![job(&key, vec![ch(&key, i)])],
                    vec![],
                    vec![],
                )
                .await
                .unwrap();
                s.pending_jobs("f").await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(handles[0].pending_jobs("f").await.unwrap(), 200);
    let all = handles[1].due_jobs("f", Utc::now(), 1000).await.unwrap();
    assert_eq!(all.len(), 200);
}

#[tokio::test]
async fn in_memory_store_serves_concurrent_tasks() {
    let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
    let mut tasks = Vec::new();
    for t in 0..4 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                s.enqueue("f", job(&format!("{t}:{i}"), vec![ch("k", i)]))
                    .await
                    .unwrap();
                s.due_jobs("f", Utc::now(), 5).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.pending_jobs("f").await.unwrap(), 40);
    assert_eq!(store.path(), ":memory:");
}
