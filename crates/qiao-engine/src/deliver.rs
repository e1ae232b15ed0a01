//! Delivery: due jobs go to the sink in outbox order. A transport failure reschedules the
//! job (and holds back the flow's later jobs, so per-key order holds); after the retry
//! schedule it becomes a transport exception blocking its keys. A record the target
//! refuses is found by bisecting the batch and becomes an exception blocking only its key;
//! later changes to a blocked key wait behind that exception.

use crate::Result;
use crate::plan::FlowPlan;
use chrono::Utc;
use qiao_connectors::{Sink, SinkError};
use qiao_core::Change;
use qiao_store::{ExceptionKind, Job, NewException, Store};
use std::collections::HashSet;

/// What one delivery round did.
#[derive(Debug, Default, Clone)]
pub struct Delivered {
    /// Changes applied at the target (upserts).
    pub upserts: u64,
    /// Deletes applied at the target.
    pub deletes: u64,
    /// Changes held behind an open exception for their key.
    pub held: u64,
    /// Delivery exceptions opened.
    pub exceptions: u64,
    /// Jobs applied.
    pub jobs: u64,
    /// Set when the target failed temporarily: the head job waits for its retry time.
    pub waiting: Option<String>,
}

/// The prefix of idempotency keys of jobs that re-send an exception's changes.
pub const RETRY_PREFIX: &str = "retry:";

/// Delivers due jobs of `plan`'s flow until none is due or the target fails temporarily.
/// `on_job` is told the number of changes of each finished job.
pub async fn deliver_due(
    plan: &FlowPlan,
    store: &dyn Store,
    sink: &mut dyn Sink,
    blocked: &mut HashSet<String>,
    on_job: &(dyn Fn(usize) + Send + Sync),
) -> Result<Delivered> {
    let mut out = Delivered::default();
    loop {
        let jobs = store.due_jobs(&plan.name, Utc::now(), 4).await?;
        if jobs.is_empty() {
            return Ok(out);
        }
        for job in jobs {
            let n = job.changes.len();
            if !deliver_job(plan, store, sink, blocked, job, &mut out).await? {
                return Ok(out);
            }
            on_job(n);
        }
    }
}

/// Delivers one job; returns false when the flow must wait (temporary target failure).
async fn deliver_job(
    plan: &FlowPlan,
    store: &dyn Store,
    sink: &mut dyn Sink,
    blocked: &mut HashSet<String>,
    job: Job,
    out: &mut Delivered,
) -> Result<bool> {
    // Changes to blocked keys are parked behind their exception when the job finishes,
    // in the same transaction, so a job retried later never holds them twice.
    let (held, ready): (Vec<Change>, Vec<Change>) = job
        .changes
        .iter()
        .cloned()
        .partition(|c| blocked.contains(&c.key));
    let ready = last_per_key(ready);
    let mut bad: Vec<(Change, String)> = Vec::new();
    if let Err(err) = write_isolating(sink, &ready, &mut bad).await {
        return transport_failure(plan, store, blocked, job, held, ready, err, out).await;
    }
    out.held += held.len() as u64;
    let good = ready.len() - bad.len();
    let deletes = ready
        .iter()
        .filter(|c| c.op == qiao_core::Op::Delete)
        .count();
    let bad_deletes = bad
        .iter()
        .filter(|(c, _)| c.op == qiao_core::Op::Delete)
        .count();
    out.deletes += (deletes - bad_deletes) as u64;
    out.upserts += (good - (deletes - bad_deletes)) as u64;
    out.jobs += 1;
    if bad.is_empty() && held.is_empty() {
        store.job_done(job.id).await?;
    } else {
        let excs: Vec<NewException> = bad
            .into_iter()
            .map(|(change, message)| {
                blocked.insert(change.key.clone());
                NewException {
                    flow: plan.name.clone(),
                    kind: ExceptionKind::Validation,
                    owner: plan.owner.clone(),
                    key: Some(change.key.clone()),
                    message: format!(
                        "{} key {}: target `{}` refused the record: {message}",
                        plan.entity, change.key, plan.target_system
                    ),
                    details: serde_json::json!({ "stage": "delivery", "target": plan.target_system, "error": message }),
                    changes: vec![change],
                    blocks_keys: true,
                }
            })
            .collect();
        out.exceptions += excs.len() as u64;
        store.job_finish(job.id, held, excs).await?;
    }
    settle_retry(store, &job.idempotency_key).await?;
    Ok(true)
}

/// A job that re-sent an exception's changes resolves that exception once delivered.
async fn settle_retry(store: &dyn Store, idempotency_key: &str) -> Result<()> {
    let Some(rest) = idempotency_key.strip_prefix(RETRY_PREFIX) else {
        return Ok(());
    };
    let id = rest.split(':').next().and_then(|s| s.parse::<i64>().ok());
    if let Some(id) = id {
        store
            .settle_exception(id, true, "delivered after retry")
            .await?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn transport_failure(
    plan: &FlowPlan,
    store: &dyn Store,
    blocked: &mut HashSet<String>,
    job: Job,
    held: Vec<Change>,
    ready: Vec<Change>,
    err: String,
    out: &mut Delivered,
) -> Result<bool> {
    let attempt = job.attempts as usize + 1;
    if let Some(wait) = plan.retry.get(attempt - 1) {
        let next =
            Utc::now() + chrono::Duration::from_std(*wait).unwrap_or(chrono::Duration::minutes(5));
        store.job_retry_later(job.id, next, &err).await?;
        out.waiting = Some(format!(
            "target `{}` failed (attempt {attempt} of {}): {err}; next attempt at {}",
            plan.target_system,
            plan.retry.len() + 1,
            next.format("%Y-%m-%d %H:%M:%S UTC")
        ));
        return Ok(false);
    }
    for c in &ready {
        blocked.insert(c.key.clone());
    }
    let exc = NewException {
        flow: plan.name.clone(),
        kind: ExceptionKind::Transport,
        owner: plan.owner.clone(),
        key: None,
        message: format!(
            "target `{}` kept failing after {attempt} attempts ({} records held, their keys blocked): {err}; fix the target, then `qiao exceptions retry`",
            plan.target_system,
            ready.len()
        ),
        details: serde_json::json!({ "stage": "delivery", "target": plan.target_system, "error": err, "attempts": attempt }),
        changes: ready,
        blocks_keys: true,
    };
    out.exceptions += 1;
    out.held += held.len() as u64;
    store.job_finish(job.id, held, vec![exc]).await?;
    Ok(true)
}

/// Writes `changes`; on a permanent batch error, bisects to find the refused records and
/// writes the rest. Returns `Err(message)` only for a temporary (transport) failure.
async fn write_isolating(
    sink: &mut dyn Sink,
    changes: &[Change],
    bad: &mut Vec<(Change, String)>,
) -> std::result::Result<(), String> {
    if changes.is_empty() {
        return Ok(());
    }
    // Explicit stack instead of recursion: async recursion needs boxing, and the depth is
    // only log2(batch) anyway.
    let mut stack: Vec<&[Change]> = vec![changes];
    while let Some(part) = stack.pop() {
        match sink.write(part).await {
            Ok(()) => {}
            Err(SinkError::Transport(e)) => return Err(e),
            Err(SinkError::Record { index, message }) if index < part.len() => {
                bad.push((part[index].clone(), message));
                let (before, after) = (&part[..index], &part[index + 1..]);
                // Later halves go on the stack first so the earlier one is written first.
                if !after.is_empty() {
                    stack.push(after);
                }
                if !before.is_empty() {
                    stack.push(before);
                }
            }
            Err(e) => {
                if part.len() == 1 {
                    bad.push((part[0].clone(), e.to_string()));
                } else {
                    let (a, b) = part.split_at(part.len() / 2);
                    stack.push(b);
                    stack.push(a);
                }
            }
        }
    }
    Ok(())
}

/// Keeps only the last change of each key, in the order of those last changes. Sinks
/// apply final states, so the result is the same, and a refused record can then never be
/// followed by a newer version of its key in the same write.
pub fn last_per_key(changes: Vec<Change>) -> Vec<Change> {
    let mut last: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, c) in changes.iter().enumerate() {
        last.insert(c.key.as_str(), i);
    }
    if last.len() == changes.len() {
        return changes;
    }
    let keep: HashSet<usize> = last.into_values().collect();
    changes
        .into_iter()
        .enumerate()
        .filter_map(|(i, c)| keep.contains(&i).then_some(c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use qiao_core::Record;

    #[test]
    fn last_per_key_keeps_final_state_in_order() {
        let c = |k: &str, v: i64| Change::upsert(k, Record::new().with("v", v));
        let out = last_per_key(vec![c("a", 1), c("b", 1), c("a", 2), c("c", 1)]);
        let got: Vec<(String, String)> = out
            .iter()
            .map(|c| (c.key.clone(), c.record.get("v").to_string()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("b".into(), "1".into()),
                ("a".into(), "2".into()),
                ("c".into(), "1".into())
            ]
        );
    }
}
