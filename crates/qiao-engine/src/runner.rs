//! One pass of a flow: read the source from its checkpoint until caught up, delivering
//! concurrently; then find deletes by key scan if configured. Extraction runs ahead of
//! delivery by at most `AHEAD` jobs, so memory and the outbox stay bounded.

use crate::connect::Endpoint;
use crate::deliver::{Delivered, deliver_due};
use crate::lookup::StoreLookup;
use crate::plan::FlowPlan;
use crate::{EngineError, Result};
use chrono::Utc;
use qiao_connectors::{ConnectorError, Sink, Source};
use qiao_core::config::Config;
use qiao_store::{ExceptionKind, NewException, NewJob, RunRecord, Store};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore, watch};

/// Jobs extraction may commit ahead of delivery.
const AHEAD: usize = 8;
/// How long a flow lease lasts without renewal.
const LEASE: Duration = Duration::from_secs(120);

/// Progress callbacks (a progress bar, plain log lines, or nothing).
pub trait Observer: Send + Sync {
    /// `n` more records were read from the source.
    fn read(&self, n: u64) {
        let _ = n;
    }
    /// `n` more records reached the target.
    fn delivered(&self, n: u64) {
        let _ = n;
    }
    /// Something worth a line (a bad file, a wait for retry).
    fn note(&self, msg: &str) {
        let _ = msg;
    }
}

/// An observer that says nothing.
pub struct SilentObserver;
impl Observer for SilentObserver {}

/// How to run a pass.
#[derive(Clone)]
pub struct RunOptions {
    /// Folder relative paths in the config are resolved against.
    pub base_dir: PathBuf,
    /// Set to true to stop after the current batch (SIGTERM).
    pub stop: watch::Receiver<bool>,
    /// Who holds the flow lease (process id and host).
    pub owner: String,
}

/// What a pass did, for people and for `qiao status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    /// Flow name.
    pub flow: String,
    /// Records read from the source.
    pub read: u64,
    /// Records written (upserted) at the target.
    pub delivered: u64,
    /// Records deleted at the target.
    pub deleted: u64,
    /// Records rejected (validation exceptions).
    pub rejected: u64,
    /// Records skipped by the filter.
    pub filtered: u64,
    /// Records that passed with warnings.
    pub warned: u64,
    /// Records held behind open exceptions for their key.
    pub held: u64,
    /// Delivery exceptions opened (target refused a record, or kept failing).
    pub delivery_exceptions: u64,
    /// Whole inputs refused (e.g. a malformed file moved to failed/).
    pub bad_inputs: Vec<String>,
    /// Set when the target failed temporarily and jobs wait for their retry time.
    pub waiting: Option<String>,
    /// Rejection reasons with counts.
    pub reasons: BTreeMap<String, u64>,
    /// One example message per reason.
    pub examples: BTreeMap<String, String>,
    /// Wall time in seconds.
    pub seconds: f64,
}

impl RunSummary {
    /// `ok`, `partial` (some records became exceptions) or `waiting`.
    pub fn status(&self) -> &'static str {
        if self.waiting.is_some() {
            "waiting"
        } else if self.rejected > 0 || self.delivery_exceptions > 0 || !self.bad_inputs.is_empty() {
            "partial"
        } else {
            "ok"
        }
    }
}

/// Runs one pass of `plan` and records it in the run history.
pub async fn run_flow(
    config: &Config,
    plan: Arc<FlowPlan>,
    store: Arc<dyn Store>,
    opts: &RunOptions,
    obs: Arc<dyn Observer>,
) -> Result<RunSummary> {
    crate::lease::acquire(store.as_ref(), &plan.name, &opts.owner, LEASE).await?;
    let run_id = store.run_started(&plan.name).await?;
    let started = Instant::now();
    let result = run_inner(config, &plan, &store, opts, obs).await;
    let mut record = RunRecord {
        id: run_id,
        flow: plan.name.clone(),
        finished_at: Some(Utc::now()),
        ..Default::default()
    };
    match &result {
        Ok(s) => {
            record.read = s.read;
            record.delivered = s.delivered;
            record.rejected = s.rejected;
            record.filtered = s.filtered;
            record.deleted = s.deleted;
            record.status = s.status().to_string();
            record.error = s.waiting.clone().or_else(|| s.bad_inputs.first().cloned());
        }
        Err(e) => {
            record.status = "failed".to_string();
            record.error = Some(e.to_string());
        }
    }
    store.run_update(&record).await?;
    store.unlock_flow(&plan.name, &opts.owner).await?;
    result.map(|mut s| {
        s.seconds = started.elapsed().as_secs_f64();
        s
    })
}

struct Shared {
    ahead: Semaphore,
    work: Notify,
    done: std::sync::atomic::AtomicBool,
    read: AtomicU64,
}

async fn run_inner(
    config: &Config,
    plan: &Arc<FlowPlan>,
    store: &Arc<dyn Store>,
    opts: &RunOptions,
    obs: Arc<dyn Observer>,
) -> Result<RunSummary> {
    let flow_err = |e: EngineError| match e {
        EngineError::Connector { message, .. } => EngineError::Connector {
            flow: plan.name.clone(),
            message,
        },
        other => other,
    };
    let src_ep = Endpoint::of(config, &plan.source_mapping, plan.source.key_fields())?;
    let dst_ep = Endpoint::of(config, &plan.target_mapping, plan.target.key_fields())?;
    let mut sink = dst_ep.sink(&opts.base_dir).await.map_err(flow_err)?;
    let checkpoint = store.checkpoint(&plan.name).await?;
    let source = src_ep
        .source(&opts.base_dir, checkpoint, plan.batch_size)
        .await
        .map_err(flow_err)?;

    let shared = Arc::new(Shared {
        ahead: Semaphore::new(AHEAD),
        work: Notify::new(),
        done: Default::default(),
        read: AtomicU64::new(0),
    });
    let (halt_tx, halt_rx) = watch::channel(false);
    let extract = tokio::spawn(extract(
        plan.clone(),
        store.clone(),
        source,
        shared.clone(),
        opts.clone(),
        halt_rx,
        obs.clone(),
    ));

    let mut blocked: HashSet<String> = store.blocked_keys(&plan.name).await?.into_iter().collect();
    let mut total = Delivered::default();
    let on_job = {
        let shared = shared.clone();
        let obs = obs.clone();
        move |n: usize| {
            // Jobs left from earlier passes were never counted against the limit.
            if shared.ahead.available_permits() < AHEAD {
                shared.ahead.add_permits(1);
            }
            obs.delivered(n as u64);
        }
    };
    loop {
        let notified = shared.work.notified();
        let finished = shared.done.load(Ordering::Acquire);
        let d = deliver_due(plan, store.as_ref(), sink.as_mut(), &mut blocked, &on_job).await?;
        add(&mut total, &d);
        if d.waiting.is_some() {
            // The target is down: stop reading; what is committed waits in the outbox.
            let _ = halt_tx.send(true);
            shared.ahead.add_permits(AHEAD);
            break;
        }
        if finished {
            break;
        }
        notified.await;
    }
    let (mut summary, mut source) = match extract.await {
        Ok(r) => r?,
        Err(e) => {
            return Err(EngineError::Config(format!(
                "flow `{}`: reader task failed: {e}",
                plan.name
            )));
        }
    };
    if plan.key_scan
        && total.waiting.is_none()
        && summary.bad_inputs.is_empty()
        && !*opts.stop.borrow()
    {
        let n = key_scan(plan, store.as_ref(), source.as_mut(), sink.as_mut()).await?;
        if n > 0 {
            let d = deliver_due(plan, store.as_ref(), sink.as_mut(), &mut blocked, &on_job).await?;
            add(&mut total, &d);
        }
    }
    summary.read = shared.read.load(Ordering::Relaxed);
    summary.delivered = total.upserts;
    summary.deleted = total.deletes;
    summary.held = total.held;
    summary.delivery_exceptions = total.exceptions;
    summary.waiting = total.waiting;
    Ok(summary)
}

fn add(total: &mut Delivered, d: &Delivered) {
    total.upserts += d.upserts;
    total.deletes += d.deletes;
    total.held += d.held;
    total.exceptions += d.exceptions;
    total.jobs += d.jobs;
    if d.waiting.is_some() {
        total.waiting = d.waiting.clone();
    }
}

/// Reads batches, processes them on a blocking thread and commits each with its
/// checkpoint. Returns the summary of what it saw, and the source for the key scan.
async fn extract(
    plan: Arc<FlowPlan>,
    store: Arc<dyn Store>,
    mut source: Box<dyn Source>,
    shared: Arc<Shared>,
    opts: RunOptions,
    halt: watch::Receiver<bool>,
    obs: Arc<dyn Observer>,
) -> Result<(RunSummary, Box<dyn Source>)> {
    let result = extract_loop(
        &plan,
        &store,
        source.as_mut(),
        &shared,
        &opts,
        &halt,
        obs.as_ref(),
    )
    .await;
    shared.done.store(true, Ordering::Release);
    shared.work.notify_one();
    result.map(|s| (s, source))
}

async fn extract_loop(
    plan: &Arc<FlowPlan>,
    store: &Arc<dyn Store>,
    source: &mut dyn Source,
    shared: &Shared,
    opts: &RunOptions,
    halt: &watch::Receiver<bool>,
    obs: &dyn Observer,
) -> Result<RunSummary> {
    let mut summary = RunSummary {
        flow: plan.name.clone(),
        ..Default::default()
    };
    let mut seq: u64 = 0;
    // The next batch, read while the current one was being mapped.
    let mut ahead = None;
    loop {
        if *halt.borrow() || *opts.stop.borrow() {
            return Ok(summary);
        }
        let read = match ahead.take() {
            Some(r) => r,
            None => source.next_batch().await,
        };
        let batch = match read {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(summary),
            Err(ConnectorError::BadInput(msg)) => {
                obs.note(&msg);
                let exc = NewException {
                    flow: plan.name.clone(),
                    kind: ExceptionKind::Validation,
                    owner: plan.owner.clone(),
                    key: None,
                    message: format!("source `{}`: {msg}", plan.source_system),
                    details: serde_json::json!({ "source": plan.source_system, "error": msg }),
                    changes: vec![],
                    blocks_keys: false,
                };
                let cp = store.checkpoint(&plan.name).await?;
                store
                    .commit_batch(&plan.name, cp.as_deref(), vec![], vec![exc], vec![])
                    .await?;
                summary.bad_inputs.push(msg);
                continue;
            }
            Err(e) => {
                return Err(EngineError::Connector {
                    flow: plan.name.clone(),
                    message: format!("source `{}`: {e}", plan.source_system),
                });
            }
        };
        let n = batch.changes.len() as u64;
        shared.read.fetch_add(n, Ordering::Relaxed);
        obs.read(n);
        let processed = {
            let worker = plan.clone();
            let lookup = StoreLookup::new(store.clone());
            let changes = batch.changes;
            let mapping = tokio::task::spawn_blocking(move || worker.process(changes, &lookup));
            // Reading ahead is safe: nothing of the next batch is committed before this one.
            let (mapped, next) = tokio::join!(mapping, source.next_batch());
            ahead = Some(next);
            mapped.map_err(|e| {
                EngineError::Config(format!("flow `{}`: mapping task failed: {e}", plan.name))
            })?
        };
        summary.rejected += processed.exceptions.len() as u64;
        summary.filtered += processed.filtered;
        summary.warned += processed.warned;
        for (reason, example) in processed.examples {
            summary.examples.entry(reason).or_insert(example);
        }
        for (reason, count) in processed.reasons {
            *summary.reasons.entry(reason).or_default() += count;
        }
        let mut jobs = Vec::new();
        if !processed.deliver.is_empty() {
            // Wait for delivery to catch up before committing more work.
            tokio::select! {
                permit = shared.ahead.acquire() => match permit {
                    Ok(p) => p.forget(),
                    Err(_) => return Ok(summary),
                },
                _ = wait_true(halt.clone()) => return Ok(summary),
            }
            seq += 1;
            let idem = match &batch.checkpoint {
                Some(cp) => format!("{}:{cp}", plan.name),
                None => format!(
                    "{}:{}:{seq}",
                    plan.name,
                    Utc::now().timestamp_nanos_opt().unwrap_or_default()
                ),
            };
            jobs.push(NewJob {
                idempotency_key: idem,
                changes: processed.deliver,
            });
        }
        let had_jobs = !jobs.is_empty();
        store
            .commit_batch(
                &plan.name,
                batch.checkpoint.as_deref(),
                jobs,
                processed.exceptions,
                processed.passed_keys,
            )
            .await?;
        if let Some(cp) = &batch.checkpoint {
            source
                .committed(cp)
                .await
                .map_err(|e| EngineError::Connector {
                    flow: plan.name.clone(),
                    message: format!("source `{}`: {e}", plan.source_system),
                })?;
        }
        if had_jobs {
            shared.work.notify_one();
        }
        // Keep the lease while a long pass runs.
        store.try_lock_flow(&plan.name, &opts.owner, LEASE).await?;
    }
}

async fn wait_true(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            // The sender is gone: nobody can halt us any more.
            std::future::pending::<()>().await;
        }
    }
}

/// Compares key sets and enqueues deletes for keys only at the target. Refuses to delete
/// more than half of a target (over 100 rows) or everything: that is far more often an
/// empty or wrong source than a real mass delete, and it becomes an exception instead.
async fn key_scan(
    plan: &FlowPlan,
    store: &dyn Store,
    source: &mut dyn Source,
    sink: &mut dyn Sink,
) -> Result<u64> {
    let conn = |side: &str, e: ConnectorError| EngineError::Connector {
        flow: plan.name.clone(),
        message: format!("delete detection (key_scan) on the {side}: {e}"),
    };
    let src: HashSet<String> = source
        .keys()
        .await
        .map_err(|e| conn("source", e))?
        .into_iter()
        .collect();
    let dst = sink.keys().await.map_err(|e| conn("target", e))?;
    let target_rows = dst.len();
    let gone: Vec<String> = dst.into_iter().filter(|k| !src.contains(k)).collect();
    if gone.is_empty() {
        return Ok(0);
    }
    let cp = store.checkpoint(&plan.name).await?;
    if gone.len() == target_rows || (target_rows > 100 && gone.len() * 2 > target_rows) {
        let exc = NewException {
            flow: plan.name.clone(),
            kind: ExceptionKind::Inconsistency,
            owner: plan.owner.clone(),
            key: None,
            message: format!(
                "delete detection would delete {} of {target_rows} rows at `{}`; refused as a likely empty or wrong source. Check the source, then delete at the target by hand if it is real",
                gone.len(),
                plan.target_system
            ),
            details: serde_json::json!({ "would_delete": gone.len(), "target_rows": target_rows }),
            changes: vec![],
            blocks_keys: false,
        };
        store
            .commit_batch(&plan.name, cp.as_deref(), vec![], vec![exc], vec![])
            .await?;
        return Ok(0);
    }
    let mut changes = Vec::with_capacity(gone.len());
    let mut excs = Vec::new();
    for key in gone {
        match plan.delete_for_key(&key) {
            Ok(c) => changes.push(c),
            Err(message) => excs.push(NewException {
                flow: plan.name.clone(),
                kind: ExceptionKind::Validation,
                owner: plan.owner.clone(),
                key: Some(key),
                message,
                details: serde_json::json!({}),
                changes: vec![],
                blocks_keys: false,
            }),
        }
    }
    let n = changes.len() as u64;
    let jobs: Vec<NewJob> = changes
        .chunks(plan.batch_size)
        .enumerate()
        .map(|(i, c)| NewJob {
            idempotency_key: format!(
                "{}:deletes:{}:{i}",
                plan.name,
                Utc::now().timestamp_nanos_opt().unwrap_or_default()
            ),
            changes: c.to_vec(),
        })
        .collect();
    store
        .commit_batch(&plan.name, cp.as_deref(), jobs, excs, vec![])
        .await?;
    Ok(n)
}

/// Delivers the flow's due jobs without reading the source (after `exceptions retry`).
pub async fn deliver_pending(
    config: &Config,
    plan: &FlowPlan,
    store: &dyn Store,
    opts: &RunOptions,
) -> Result<Delivered> {
    crate::lease::acquire(store, &plan.name, &opts.owner, LEASE).await?;
    let result = async {
        let dst = Endpoint::of(config, &plan.target_mapping, plan.target.key_fields())?;
        let mut sink = dst.sink(&opts.base_dir).await.map_err(|e| match e {
            EngineError::Connector { message, .. } => EngineError::Connector {
                flow: plan.name.clone(),
                message,
            },
            other => other,
        })?;
        let mut blocked: HashSet<String> =
            store.blocked_keys(&plan.name).await?.into_iter().collect();
        deliver_due(plan, store, sink.as_mut(), &mut blocked, &|_| {}).await
    }
    .await;
    store.unlock_flow(&plan.name, &opts.owner).await?;
    result
}
