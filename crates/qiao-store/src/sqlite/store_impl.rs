//! `Store` for `SqliteStore`: each call is one read or one write transaction around the
//! module functions.

use super::{SqliteStore, blocking, crosswalk, exceptions, jobs, locks, runs};
use crate::{
    ConfigVersion, ExceptionFilter, ExceptionRow, HistoryEntry, Job, JobInfo, NewException, NewJob,
    Released, Result, RunRecord, Store,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use qiao_core::Change;
use std::time::Duration;

/// Runs `$body` (an expression using `$c: &mut SqliteConnection`) in a write transaction.
macro_rules! write {
    ($self:ident, |$c:ident| $body:expr) => {{
        let mut w = $self.begin_write().await.map_err(|e| $self.fail(e))?;
        let r = {
            let $c = w.conn();
            $body.await
        };
        $self.end_write(w, r).await
    }};
}

/// Runs `$body` in a read transaction.
macro_rules! read {
    ($self:ident, |$c:ident| $body:expr) => {{
        let mut tx = $self.read().await.map_err(|e| $self.fail(e))?;
        let r = {
            let $c: &mut sqlx::SqliteConnection = &mut tx;
            $body.await
        };
        $self.end_read(tx, r).await
    }};
}

/// Below this many changes, encoding inline is cheaper than handing it to a thread.
const OFFLOAD_CHANGES: usize = 512;

impl SqliteStore {
    /// Encodes jobs before the write transaction, large ones on the blocking pool.
    async fn encode_jobs(&self, flow: &str, jobs: Vec<NewJob>) -> Result<Vec<jobs::EncodedJob>> {
        let size: usize = jobs.iter().map(|j| j.changes.len()).sum();
        let r = if size < OFFLOAD_CHANGES {
            jobs::encode(flow, &jobs)
        } else {
            let flow = flow.to_string();
            tokio::task::spawn_blocking(move || jobs::encode(&flow, &jobs))
                .await
                .map_err(|e| self.task_failed(e))?
        };
        r.map_err(|e| self.fail(e))
    }

    /// A codec task that did not finish (panicked or the runtime shut down).
    fn task_failed(&self, e: tokio::task::JoinError) -> crate::StoreError {
        crate::StoreError::Db {
            path: self.path.clone(),
            message: format!("encoding or decoding changes did not finish: {e}"),
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn checkpoint(&self, flow: &str) -> Result<Option<String>> {
        read!(self, |c| jobs::checkpoint(c, flow))
    }

    async fn commit_batch(
        &self,
        flow: &str,
        checkpoint: Option<&str>,
        jobs: Vec<NewJob>,
        exceptions: Vec<NewException>,
        superseded_keys: Vec<String>,
    ) -> Result<()> {
        let encoded = self.encode_jobs(flow, jobs).await?;
        let now = Utc::now();
        write!(self, |c| jobs::commit_batch(
            c,
            flow,
            checkpoint,
            &encoded,
            &exceptions,
            &superseded_keys,
            now
        ))
    }

    async fn due_jobs(&self, flow: &str, now: DateTime<Utc>, limit: usize) -> Result<Vec<Job>> {
        let raw = read!(self, |c| jobs::due(c, flow, now, limit))?;
        // Decoding a 2,000-change job takes milliseconds: off the async workers, and the
        // jobs of one call in parallel.
        let tasks: Vec<_> = raw
            .into_iter()
            .map(|j| tokio::task::spawn_blocking(move || j.decode()))
            .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            out.push(
                t.await
                    .map_err(|e| self.task_failed(e))?
                    .map_err(|e| self.fail(e))?,
            );
        }
        Ok(out)
    }

    async fn pending_jobs(&self, flow: &str) -> Result<u64> {
        read!(self, |c| jobs::pending_count(c, flow))
    }

    async fn next_due(&self, flow: &str) -> Result<Option<DateTime<Utc>>> {
        read!(self, |c| jobs::next_due(c, flow))
    }

    async fn job_done(&self, job_id: i64) -> Result<()> {
        let now = Utc::now();
        write!(self, |c| jobs::done(c, job_id, now))
    }

    async fn job_retry_later(
        &self,
        job_id: i64,
        next_at: DateTime<Utc>,
        error: &str,
    ) -> Result<()> {
        write!(self, |c| jobs::retry_later(c, job_id, next_at, error))
    }

    async fn blocked_keys(&self, flow: &str) -> Result<Vec<String>> {
        read!(self, |c| blocking::blocked_keys(c, flow))
    }

    async fn hold_change(&self, flow: &str, change: &Change) -> Result<()> {
        let now = Utc::now();
        write!(self, |c| blocking::hold(c, flow, change, now))
    }

    async fn exceptions(&self, filter: &ExceptionFilter) -> Result<Vec<ExceptionRow>> {
        read!(self, |c| exceptions::list(c, filter))
    }

    async fn exception(&self, id: i64) -> Result<(ExceptionRow, Vec<Change>, Vec<HistoryEntry>)> {
        read!(self, |c| exceptions::get(c, id))
    }

    async fn release_exception(
        &self,
        id: i64,
        actor: &str,
        ignore: bool,
        note: &str,
    ) -> Result<Released> {
        let now = Utc::now();
        write!(self, |c| blocking::release(c, id, actor, ignore, note, now))
    }

    async fn settle_exception(&self, id: i64, resolved: bool, note: &str) -> Result<()> {
        let now = Utc::now();
        write!(self, |c| exceptions::settle(c, id, resolved, note, now))
    }

    async fn enqueue(&self, flow: &str, job: NewJob) -> Result<()> {
        let encoded = self.encode_jobs(flow, vec![job]).await?;
        let now = Utc::now();
        write!(self, |c| async move {
            for j in &encoded {
                jobs::insert(c, flow, j, now).await?;
            }
            Ok(())
        })
    }

    async fn crosswalk_get(
        &self,
        system: &str,
        entity: &str,
        local_id: &str,
    ) -> Result<Option<String>> {
        read!(self, |c| crosswalk::golden(c, system, entity, local_id))
    }

    async fn crosswalk_local(
        &self,
        system: &str,
        entity: &str,
        golden_id: &str,
    ) -> Result<Option<String>> {
        let all = read!(self, |c| crosswalk::locals(c, system, entity, golden_id))?;
        Ok(all.into_iter().next())
    }

    async fn crosswalk_put(
        &self,
        system: &str,
        entity: &str,
        local_id: &str,
        golden_id: &str,
    ) -> Result<()> {
        let now = Utc::now();
        write!(self, |c| crosswalk::put(
            c, system, entity, local_id, golden_id, now
        ))
    }

    async fn save_config_version(&self, text: &str, author: &str) -> Result<i64> {
        let now = Utc::now();
        write!(self, |c| runs::save_config(c, text, author, now))
    }

    async fn latest_config_version(&self) -> Result<Option<(i64, String)>> {
        read!(self, |c| runs::latest_config(c))
    }

    async fn run_started(&self, flow: &str) -> Result<i64> {
        let now = Utc::now();
        write!(self, |c| runs::started(c, flow, now))
    }

    async fn run_update(&self, run: &RunRecord) -> Result<()> {
        write!(self, |c| runs::update(c, run))
    }

    async fn last_runs(&self) -> Result<Vec<RunRecord>> {
        read!(self, |c| runs::last_runs(c))
    }

    async fn open_exception_counts(&self) -> Result<Vec<(String, String, u64)>> {
        read!(self, |c| exceptions::open_counts(c))
    }

    async fn try_lock_flow(&self, flow: &str, owner: &str, ttl: Duration) -> Result<bool> {
        let now = Utc::now();
        write!(self, |c| locks::try_lock(c, flow, owner, ttl, now))
    }

    async fn unlock_flow(&self, flow: &str, owner: &str) -> Result<()> {
        write!(self, |c| locks::unlock(c, flow, owner))
    }

    async fn flow_lock_owner(&self, flow: &str) -> Result<Option<String>> {
        read!(self, |c| locks::owner(c, flow))
    }

    async fn take_over_flow(
        &self,
        flow: &str,
        dead_owner: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool> {
        let now = Utc::now();
        write!(self, |c| locks::take_over(
            c, flow, dead_owner, owner, ttl, now
        ))
    }

    async fn job_finish(
        &self,
        job_id: i64,
        held: Vec<Change>,
        exceptions: Vec<NewException>,
    ) -> Result<()> {
        let now = Utc::now();
        write!(self, |c| jobs::finish(c, job_id, &held, &exceptions, now))
    }

    async fn job_info(&self, job_id: i64) -> Result<Option<JobInfo>> {
        read!(self, |c| jobs::info(c, job_id))
    }

    async fn crosswalk_locals(
        &self,
        system: &str,
        entity: &str,
        golden_id: &str,
    ) -> Result<Vec<String>> {
        read!(self, |c| crosswalk::locals(c, system, entity, golden_id))
    }

    async fn config_version(&self, number: i64) -> Result<Option<ConfigVersion>> {
        read!(self, |c| runs::config_version(c, number))
    }

    async fn config_versions(&self) -> Result<Vec<ConfigVersion>> {
        read!(self, |c| runs::config_versions(c))
    }
}
