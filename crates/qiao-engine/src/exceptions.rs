//! Retrying and ignoring exceptions. A record rejected before the outbox is processed
//! again (the config or the source data may have been fixed); a record the target refused
//! is sent again as it was. Both go through the outbox like any other job.

use crate::Result;
use crate::deliver::RETRY_PREFIX;
use crate::lookup::StoreLookup;
use crate::pipeline::Step;
use crate::plan::FlowPlan;
use chrono::Utc;
use qiao_store::{NewJob, Store};
use std::sync::Arc;

/// What a retry or ignore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Changes were enqueued for delivery (count).
    Enqueued(usize),
    /// The record still fails; the exception is open again with the new reason.
    StillFailing(String),
    /// Nothing to send (ignored without held changes).
    Nothing,
}

/// Whether the exception's changes are in source shape (rejected before the outbox).
fn before_outbox(details: &serde_json::Value) -> bool {
    details.get("stage").and_then(|s| s.as_str()) == Some("pipeline")
}

/// Retries exception `id` of `plan`'s flow.
pub async fn retry(
    plan: Arc<FlowPlan>,
    store: Arc<dyn Store>,
    id: i64,
    actor: &str,
) -> Result<Outcome> {
    let (row, _, _) = store.exception(id).await?;
    let released = store
        .release_exception(id, actor, false, "retry requested")
        .await?;
    let changes = if before_outbox(&row.details) {
        let plan2 = plan.clone();
        let lookup = StoreLookup::new(store.clone());
        let steps = tokio::task::spawn_blocking(move || {
            released
                .changes
                .iter()
                .map(|c| plan2.process_one(c, &lookup))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| crate::EngineError::Config(format!("retry of exception {id}: {e}")))?;
        let mut out = Vec::new();
        for step in steps {
            match step {
                Step::Deliver(c, _) => out.push(c),
                Step::Filtered => {}
                Step::Reject(_, exc) => {
                    store.settle_exception(id, false, &exc.message).await?;
                    return Ok(Outcome::StillFailing(exc.message));
                }
            }
        }
        out
    } else {
        released.changes
    };
    if changes.is_empty() {
        store
            .settle_exception(id, true, "nothing left to deliver (filtered)")
            .await?;
        return Ok(Outcome::Nothing);
    }
    let n = changes.len();
    let key = format!(
        "{RETRY_PREFIX}{id}:{}",
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    );
    store
        .enqueue(
            &plan.name,
            NewJob {
                idempotency_key: key,
                changes,
            },
        )
        .await?;
    Ok(Outcome::Enqueued(n))
}

/// Ignores exception `id`: its own change is dropped (recorded in its history), changes
/// held behind it are enqueued.
pub async fn ignore(
    flow: &str,
    store: &dyn Store,
    id: i64,
    actor: &str,
    note: &str,
) -> Result<Outcome> {
    let released = store.release_exception(id, actor, true, note).await?;
    if released.changes.is_empty() {
        return Ok(Outcome::Nothing);
    }
    let n = released.changes.len();
    let key = format!(
        "released:{id}:{}",
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    );
    store
        .enqueue(
            flow,
            NewJob {
                idempotency_key: key,
                changes: released.changes,
            },
        )
        .await?;
    Ok(Outcome::Enqueued(n))
}
