//! Exceptions: lifecycle, history, blocked keys and held changes, supersede.

mod common;

use common::{ch, file_store, transport, validation, versions};
use qiao_store::{ExceptionFilter, ExceptionKind, ExceptionState, Store, StoreError};

fn actions(h: &[qiao_store::HistoryEntry]) -> Vec<String> {
    h.iter()
        .map(|e| format!("{}:{}", e.actor, e.action))
        .collect()
}

fn kv(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[tokio::test]
async fn transport_exception_open_hold_retry_resolve() {
    let (store, _dir, _) = file_store().await;
    store
        .commit_batch(
            "f",
            None,
            vec![],
            vec![transport("f", vec![ch("a", 1), ch("b", 1), ch("a", 2)])],
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(store.blocked_keys("f").await.unwrap(), ["a", "b"]);
    assert!(store.blocked_keys("g").await.unwrap().is_empty());
    let id = store.exceptions(&ExceptionFilter::default()).await.unwrap()[0].id;

    // Later changes to blocked keys wait behind it, in arrival order.
    store.hold_change("f", &ch("b", 2)).await.unwrap();
    store.hold_change("f", &ch("a", 3)).await.unwrap();
    store.hold_change("f", &ch("b", 3)).await.unwrap();
    // A key nobody blocks cannot be held.
    let err = store.hold_change("f", &ch("c", 1)).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid(_)) && err.to_string().contains("key `c`"),
        "{err}"
    );

    let (row, changes, history) = store.exception(id).await.unwrap();
    assert_eq!(row.kind, ExceptionKind::Transport);
    assert_eq!(row.state, ExceptionState::Open);
    assert_eq!(row.owner, "it");
    assert_eq!(row.details["error"], "connection refused");
    assert_eq!(
        versions(&changes),
        kv(&[("a", 1), ("b", 1), ("a", 2), ("b", 2), ("a", 3), ("b", 3)])
    );
    assert_eq!(
        actions(&history),
        ["qiao:opened", "qiao:held", "qiao:held", "qiao:held"]
    );

    // Retry: own changes then held ones, keys unblocked.
    let released = store
        .release_exception(id, "li.wei", false, "erp is back")
        .await
        .unwrap();
    assert_eq!(
        versions(&released.changes),
        kv(&[("a", 1), ("b", 1), ("a", 2), ("b", 2), ("a", 3), ("b", 3)])
    );
    assert!(store.blocked_keys("f").await.unwrap().is_empty());
    let (row, changes, history) = store.exception(id).await.unwrap();
    assert_eq!(row.state, ExceptionState::Retrying);
    assert!(row.updated_at >= row.created_at);
    // Held changes left with the retry; the exception keeps only its own.
    assert_eq!(changes.len(), 3);
    let last = history.last().unwrap();
    assert_eq!(
        (
            last.actor.as_str(),
            last.action.as_str(),
            last.note.as_str()
        ),
        ("li.wei", "retry", "erp is back")
    );

    store
        .settle_exception(id, true, "delivered after retry")
        .await
        .unwrap();
    // Settling again (the retry job delivered twice) changes nothing.
    store
        .settle_exception(id, true, "delivered after retry")
        .await
        .unwrap();
    let (row, _, history) = store.exception(id).await.unwrap();
    assert_eq!(row.state, ExceptionState::Resolved);
    assert_eq!(
        actions(&history),
        [
            "qiao:opened",
            "qiao:held",
            "qiao:held",
            "qiao:held",
            "li.wei:retry",
            "qiao:resolved"
        ]
    );

    for ignore in [false, true] {
        let err = store
            .release_exception(id, "li.wei", ignore, "again")
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        assert!(err.to_string().contains("already resolved"), "{err}");
    }
    assert!(matches!(
        store.exception(4242).await.unwrap_err(),
        StoreError::NotFound(_)
    ));
    assert!(matches!(
        store
            .release_exception(4242, "x", false, "")
            .await
            .unwrap_err(),
        StoreError::NotFound(_)
    ));
}

#[tokio::test]
async fn ignore_returns_only_the_held_changes() {
    let (store, _dir, _) = file_store().await;
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
    let id = store.exceptions(&ExceptionFilter::default()).await.unwrap()[0].id;
    store.hold_change("f", &ch("a", 2)).await.unwrap();
    store.hold_change("f", &ch("a", 3)).await.unwrap();

    let released = store
        .release_exception(id, "zhang.min", true, "record was deleted in crm")
        .await
        .unwrap();
    assert_eq!(versions(&released.changes), kv(&[("a", 2), ("a", 3)]));
    assert!(store.blocked_keys("f").await.unwrap().is_empty());
    let (row, _, history) = store.exception(id).await.unwrap();
    assert_eq!(row.state, ExceptionState::Ignored);
    let last = history.last().unwrap();
    assert_eq!(last.actor, "zhang.min");
    assert_eq!(last.action, "ignored");
    assert_eq!(last.note, "record was deleted in crm");

    let err = store
        .release_exception(id, "zhang.min", false, "")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already ignored"), "{err}");
    // A retry job that was already in flight reports back: the decision stands.
    store.settle_exception(id, true, "delivered").await.unwrap();
    let (row, _, history) = store.exception(id).await.unwrap();
    assert_eq!(row.state, ExceptionState::Ignored);
    assert_eq!(history.last().unwrap().action, "note");
}

#[tokio::test]
async fn a_failed_retry_reopens_and_blocks_again() {
    let (store, _dir, _) = file_store().await;
    store
        .commit_batch(
            "f",
            None,
            vec![],
            vec![transport("f", vec![ch("a", 1), ch("b", 1)])],
            vec![],
        )
        .await
        .unwrap();
    let id = store.exceptions(&ExceptionFilter::default()).await.unwrap()[0].id;
    // Only a retrying exception can be settled.
    let err = store.settle_exception(id, true, "x").await.unwrap_err();
    assert!(err.to_string().contains("not retrying"), "{err}");

    store
        .release_exception(id, "ops", false, "try again")
        .await
        .unwrap();
    store
        .settle_exception(id, false, "erp still refuses")
        .await
        .unwrap();
    let (row, _, history) = store.exception(id).await.unwrap();
    assert_eq!(row.state, ExceptionState::Open);
    assert_eq!(history.last().unwrap().action, "reopened");
    assert_eq!(store.blocked_keys("f").await.unwrap(), ["a", "b"]);
    // It can be retried again and hands back its own changes again.
    let again = store
        .release_exception(id, "ops", false, "now")
        .await
        .unwrap();
    assert_eq!(versions(&again.changes), kv(&[("a", 1), ("b", 1)]));
}

#[tokio::test]
async fn validation_exceptions_do_not_block_unless_asked() {
    let (store, _dir, _) = file_store().await;
    store
        .commit_batch(
            "f",
            None,
            vec![],
            vec![validation("f", ch("a", 1), "sales", false)],
            vec![],
        )
        .await
        .unwrap();
    assert!(store.blocked_keys("f").await.unwrap().is_empty());
    // A record the target refused blocks its key.
    store
        .commit_batch(
            "f",
            None,
            vec![],
            vec![validation("f", ch("b", 1), "sales", true)],
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(store.blocked_keys("f").await.unwrap(), ["b"]);
}

#[tokio::test]
async fn a_later_valid_version_supersedes_open_validation_exceptions() {
    let (store, _dir, _) = file_store().await;
    store
        .commit_batch(
            "f",
            Some("1"),
            vec![],
            vec![
                validation("f", ch("k1", 1), "sales", false),
                validation("f", ch("k2", 1), "sales", false),
                validation("g", ch("k1", 1), "sales", false),
                // Refused by the target: changes may be held behind it, so it stays.
                validation("f", ch("k3", 1), "sales", true),
                transport("f", vec![ch("k4", 1)]),
            ],
            vec![],
        )
        .await
        .unwrap();
    let ids = |rows: &[qiao_store::ExceptionRow], flow: &str, key: &str| {
        rows.iter()
            .find(|r| {
                r.flow == flow
                    && (r.key.as_deref() == Some(key) || (r.key.is_none() && key == "k4"))
            })
            .map(|r| (r.id, r.state))
            .unwrap()
    };
    // k1 retried and waiting: still supersedable.
    let all = store.exceptions(&ExceptionFilter::default()).await.unwrap();
    store
        .release_exception(ids(&all, "f", "k1").0, "sales.1", false, "fixed?")
        .await
        .unwrap();

    store
        .commit_batch(
            "f",
            Some("2"),
            vec![],
            vec![],
            vec!["k1".into(), "k3".into()],
        )
        .await
        .unwrap();
    let all = store.exceptions(&ExceptionFilter::default()).await.unwrap();
    assert_eq!(ids(&all, "f", "k1").1, ExceptionState::Resolved);
    assert_eq!(ids(&all, "f", "k2").1, ExceptionState::Open);
    assert_eq!(ids(&all, "g", "k1").1, ExceptionState::Open);
    assert_eq!(ids(&all, "f", "k3").1, ExceptionState::Open);
    assert_eq!(ids(&all, "f", "k4").1, ExceptionState::Open);
    let (_, _, history) = store.exception(ids(&all, "f", "k1").0).await.unwrap();
    let last = history.last().unwrap();
    assert_eq!(
        (last.actor.as_str(), last.action.as_str()),
        ("qiao", "resolved")
    );
    assert_eq!(last.note, "superseded by a later valid version");

    // A bulk load's many keys, in one statement.
    let many: Vec<String> = (0..500)
        .map(|i| format!("x{i}"))
        .chain(["k2".into(), "k4".into()])
        .collect();
    store
        .commit_batch("f", Some("3"), vec![], vec![], many)
        .await
        .unwrap();
    let all = store.exceptions(&ExceptionFilter::default()).await.unwrap();
    assert_eq!(ids(&all, "f", "k2").1, ExceptionState::Resolved);
    assert_eq!(ids(&all, "g", "k1").1, ExceptionState::Open);
    assert_eq!(ids(&all, "f", "k4").1, ExceptionState::Open);
    assert_eq!(store.checkpoint("f").await.unwrap().as_deref(), Some("3"));
}

#[tokio::test]
async fn a_key_blocked_twice_keeps_its_order() {
    let (store, _dir, _) = file_store().await;
    // Two jobs with key `k` failed (delivered concurrently): E1 older, E2 newer.
    store
        .commit_batch(
            "f",
            None,
            vec![],
            vec![transport("f", vec![ch("k", 1), ch("x", 1)])],
            vec![],
        )
        .await
        .unwrap();
    store
        .commit_batch(
            "f",
            None,
            vec![],
            vec![transport("f", vec![ch("k", 2), ch("y", 2)])],
            vec![],
        )
        .await
        .unwrap();
    let all = store.exceptions(&ExceptionFilter::default()).await.unwrap();
    let (e2, e1) = (all[0].id, all[1].id);
    assert!(e1 < e2);
    assert_eq!(store.blocked_keys("f").await.unwrap(), ["k", "x", "y"]);
    // A later change waits behind the newest blocker.
    store.hold_change("f", &ch("k", 3)).await.unwrap();
    let (_, changes, _) = store.exception(e2).await.unwrap();
    assert_eq!(versions(&changes), kv(&[("k", 2), ("y", 2), ("k", 3)]));

    // Retrying the newer one first must not let k2, k3 overtake k1: they move behind E1.
    let r2 = store.release_exception(e2, "ops", false, "").await.unwrap();
    assert_eq!(versions(&r2.changes), kv(&[("y", 2)]));
    assert_eq!(store.blocked_keys("f").await.unwrap(), ["k", "x"]);
    let (_, _, h2) = store.exception(e2).await.unwrap();
    assert_eq!(h2.last().unwrap().action, "moved");
    let r1 = store.release_exception(e1, "ops", false, "").await.unwrap();
    assert_eq!(
        versions(&r1.changes),
        kv(&[("k", 1), ("x", 1), ("k", 2), ("k", 3)])
    );
    assert!(store.blocked_keys("f").await.unwrap().is_empty());
}

#[tokio::test]
async fn listing_filters_and_counts() {
    let (store, _dir, _) = file_store().await;
    store
        .commit_batch(
            "f",
            None,
            vec![],
            vec![
                validation("f", ch("a", 1), "sales", false),
                validation("f", ch("b", 1), "finance", false),
                validation("f", ch("c", 1), "sales", false),
            ],
            vec![],
        )
        .await
        .unwrap();
    store
        .commit_batch(
            "g",
            None,
            vec![],
            vec![transport("g", vec![ch("z", 1)])],
            vec![],
        )
        .await
        .unwrap();
    let all = store.exceptions(&ExceptionFilter::default()).await.unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");

    let only = |flow: Option<&str>, states: Vec<ExceptionState>, owner: Option<&str>, limit| {
        ExceptionFilter {
            flow: flow.map(str::to_string),
            states,
            owner: owner.map(str::to_string),
            limit,
        }
    };
    let f_sales = store
        .exceptions(&only(Some("f"), vec![], Some("sales"), 0))
        .await
        .unwrap();
    assert_eq!(
        f_sales
            .iter()
            .map(|r| r.key.clone().unwrap())
            .collect::<Vec<_>>(),
        ["c", "a"]
    );
    let newest = store
        .exceptions(&only(None, vec![], None, 1))
        .await
        .unwrap();
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0].flow, "g");

    let a = f_sales[1].id;
    store
        .release_exception(a, "s", true, "duplicate")
        .await
        .unwrap();
    let open = store
        .exceptions(&only(None, vec![ExceptionState::Open], None, 0))
        .await
        .unwrap();
    assert_eq!(open.len(), 3);
    let done = store
        .exceptions(&only(
            Some("f"),
            vec![ExceptionState::Ignored, ExceptionState::Resolved],
            None,
            0,
        ))
        .await
        .unwrap();
    assert_eq!(done.iter().map(|r| r.id).collect::<Vec<_>>(), [a]);

    let counts = store.open_exception_counts().await.unwrap();
    assert_eq!(
        counts,
        vec![
            ("f".to_string(), "finance".to_string(), 1),
            ("f".to_string(), "sales".to_string(), 1),
            ("g".to_string(), "it".to_string(), 1),
        ]
    );
}
