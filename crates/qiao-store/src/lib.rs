//! qiao-store: the state store behind one trait — outbox (jobs), checkpoints, crosswalk,
//! exceptions with history, blocked keys and held changes, config versions, run history.
//! SQLite (WAL) now; a PostgreSQL implementation of the same trait comes later.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use qiao_core::Change;
use serde::{Deserialize, Serialize};

pub mod codec;
mod sqlite;

pub use sqlite::{Durability, SqliteStore};

/// Store errors: what failed and on which store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("state store {path}: {message}")]
    Db {
        /// Store location (file path).
        path: String,
        /// What went wrong and, where known, the fix.
        message: String,
    },
    /// A thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request is not allowed in the current state (e.g. retrying a resolved exception).
    #[error("{0}")]
    Invalid(String),
}

/// Result alias.
pub type Result<T> = std::result::Result<T, StoreError>;

/// A job to enqueue: a batch of changes for one flow's target, in source order.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// `flow:first-position..last-position` or similar; unique per flow.
    pub idempotency_key: String,
    /// The changes in target shape.
    pub changes: Vec<Change>,
}

/// A job in the outbox.
#[derive(Debug, Clone)]
pub struct Job {
    /// Store id, increasing in enqueue order.
    pub id: i64,
    /// Flow name.
    pub flow: String,
    /// Idempotency key.
    pub idempotency_key: String,
    /// Delivery attempts made so far.
    pub attempts: u32,
    /// The changes.
    pub changes: Vec<Change>,
    /// When the job was enqueued.
    pub created_at: DateTime<Utc>,
}

/// Kind of exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionKind {
    /// The target could not be reached after the whole retry schedule.
    Transport,
    /// The record broke a rule or could not be mapped.
    Validation,
    /// Systems disagree in a way qiao must not settle silently.
    Inconsistency,
    /// Both sides changed the same field.
    Conflict,
}

/// State of an exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionState {
    /// Waiting for its owner.
    Open,
    /// Sent back for another attempt.
    Retrying,
    /// Done: delivered after retry, or superseded by a later valid version.
    Resolved,
    /// Deliberately dropped by a person (recorded in history).
    Ignored,
}

/// A new exception to record.
#[derive(Debug, Clone)]
pub struct NewException {
    /// Flow name.
    pub flow: String,
    /// Kind.
    pub kind: ExceptionKind,
    /// Role that fixes it: `sales`, `finance`, `it`…
    pub owner: String,
    /// Record key (canonical), if the exception is about one record.
    pub key: Option<String>,
    /// One-line summary: what, where, how to fix.
    pub message: String,
    /// Structured details (rule violations with codes and zh/en messages, sink errors).
    pub details: serde_json::Value,
    /// The change(s) concerned, so a retry can send them again. For `Transport` the whole
    /// job's changes; otherwise the one change.
    pub changes: Vec<Change>,
    /// Whether later changes to the same keys must wait behind this exception (per-key
    /// order): true for delivery failures, false for validation failures (a later valid
    /// version supersedes them).
    pub blocks_keys: bool,
}

/// An exception as stored.
#[derive(Debug, Clone, Serialize)]
pub struct ExceptionRow {
    /// Id.
    pub id: i64,
    /// Flow name.
    pub flow: String,
    /// Kind.
    pub kind: ExceptionKind,
    /// Owner role.
    pub owner: String,
    /// State.
    pub state: ExceptionState,
    /// Record key, if any.
    pub key: Option<String>,
    /// Summary.
    pub message: String,
    /// Details.
    pub details: serde_json::Value,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// Last change of state.
    pub updated_at: DateTime<Utc>,
}

/// One line of an exception's history.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Who (`qiao` for the engine, else a user name).
    pub actor: String,
    /// What: `opened`, `retry`, `ignored`, `resolved`, `held`…
    pub action: String,
    /// Free text.
    pub note: String,
}

/// What `release_exception` hands back for re-delivery.
#[derive(Debug, Clone)]
pub struct Released {
    /// The exception's own change(s) (empty when ignored) followed by the changes that were
    /// held behind it, in arrival order.
    pub changes: Vec<Change>,
}

/// Filter for listing exceptions.
#[derive(Debug, Clone, Default)]
pub struct ExceptionFilter {
    /// Only this flow.
    pub flow: Option<String>,
    /// Only these states (empty: all).
    pub states: Vec<ExceptionState>,
    /// Only this owner role.
    pub owner: Option<String>,
    /// At most this many (newest first); 0 = no limit.
    pub limit: usize,
}

/// One flow run, for `qiao status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunRecord {
    /// Id (set by the store).
    pub id: i64,
    /// Flow name.
    pub flow: String,
    /// Start.
    pub started_at: Option<DateTime<Utc>>,
    /// End (none while running or if the process died).
    pub finished_at: Option<DateTime<Utc>>,
    /// Records read from the source.
    pub read: u64,
    /// Records delivered to the target.
    pub delivered: u64,
    /// Records rejected by rules or mapping.
    pub rejected: u64,
    /// Records skipped by the flow's filter.
    pub filtered: u64,
    /// Records deleted at the target.
    pub deleted: u64,
    /// `running`, `ok`, `partial` (exceptions opened), `failed`.
    pub status: String,
    /// Last error, if any.
    pub error: Option<String>,
}

/// A job as the outbox keeps it, without its changes (for status and inspection).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobInfo {
    /// Store id.
    pub id: i64,
    /// Flow name.
    pub flow: String,
    /// Idempotency key.
    pub idempotency_key: String,
    /// `pending` or `done`.
    pub state: String,
    /// Delivery attempts made so far.
    pub attempts: u32,
    /// When a pending job is due next.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
    /// Number of changes the job carried.
    pub record_count: u64,
    /// Size of the stored payload in bytes; 0 once the job is done (payload dropped).
    pub payload_bytes: u64,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When it was delivered or finished with exceptions.
    pub done_at: Option<DateTime<Utc>>,
}

/// One stored config version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigVersion {
    /// Version number, 1, 2, 3… in save order.
    pub number: i64,
    /// SHA-256 of the text, lowercase hex.
    pub hash: String,
    /// Who saved it.
    pub author: String,
    /// When it was saved.
    pub created_at: DateTime<Utc>,
    /// The config text (empty in listings, see [`Store::config_versions`]).
    pub text: String,
}

/// The state store. All methods are safe to call from several tasks.
#[async_trait]
pub trait Store: Send + Sync {
    /// The committed source position of a flow.
    async fn checkpoint(&self, flow: &str) -> Result<Option<String>>;
    /// In ONE transaction: enqueue `jobs`, record `exceptions`, resolve open validation
    /// exceptions of `superseded_keys` (a later version passed), and set the flow's
    /// checkpoint. This is the transactional outbox: a crash leaves all or none of it.
    async fn commit_batch(
        &self,
        flow: &str,
        checkpoint: Option<&str>,
        jobs: Vec<NewJob>,
        exceptions: Vec<NewException>,
        superseded_keys: Vec<String>,
    ) -> Result<()>;
    /// Pending jobs of a flow whose next attempt is due at `now`, oldest first, stopping
    /// before the first pending job that is not yet due: a job waiting for its retry is
    /// never overtaken by a later one (per-key order).
    async fn due_jobs(&self, flow: &str, now: DateTime<Utc>, limit: usize) -> Result<Vec<Job>>;
    /// Number of pending jobs of a flow (due or waiting for a retry).
    async fn pending_jobs(&self, flow: &str) -> Result<u64>;
    /// When `due_jobs` will next return something: the next attempt of the flow's oldest
    /// pending job (later jobs wait behind it).
    async fn next_due(&self, flow: &str) -> Result<Option<DateTime<Utc>>>;
    /// Marks a job delivered (its payload is dropped; the row stays for history). Marking
    /// a done job again is a no-op.
    async fn job_done(&self, job_id: i64) -> Result<()>;
    /// Records a failed attempt and when to try again.
    async fn job_retry_later(&self, job_id: i64, next_at: DateTime<Utc>, error: &str)
    -> Result<()>;
    /// Keys of a flow that are blocked by open delivery exceptions.
    async fn blocked_keys(&self, flow: &str) -> Result<Vec<String>>;
    /// Parks a change behind the exception that blocks its key (per-key order).
    async fn hold_change(&self, flow: &str, change: &Change) -> Result<()>;
    /// Lists exceptions.
    async fn exceptions(&self, filter: &ExceptionFilter) -> Result<Vec<ExceptionRow>>;
    /// One exception with its changes (its own, then those still held behind it, in
    /// arrival order) and history.
    async fn exception(&self, id: i64) -> Result<(ExceptionRow, Vec<Change>, Vec<HistoryEntry>)>;
    /// Retry (`ignore = false`) or ignore (`ignore = true`) an exception: unblocks its keys,
    /// sets state `retrying` / `ignored`, records history, and returns the changes to
    /// enqueue again (its own unless ignored, then the held ones).
    async fn release_exception(
        &self,
        id: i64,
        actor: &str,
        ignore: bool,
        note: &str,
    ) -> Result<Released>;
    /// Marks a retrying exception resolved (delivered) or open again.
    async fn settle_exception(&self, id: i64, resolved: bool, note: &str) -> Result<()>;
    /// Enqueues changes as a job of `flow` outside a source batch (retries of exceptions).
    async fn enqueue(&self, flow: &str, job: NewJob) -> Result<()>;
    /// Crosswalk: the golden id of `(system, entity, local_id)`.
    async fn crosswalk_get(
        &self,
        system: &str,
        entity: &str,
        local_id: &str,
    ) -> Result<Option<String>>;
    /// Crosswalk: the local id of a golden id in a system.
    async fn crosswalk_local(
        &self,
        system: &str,
        entity: &str,
        golden_id: &str,
    ) -> Result<Option<String>>;
    /// Crosswalk: links a local id to a golden id.
    async fn crosswalk_put(
        &self,
        system: &str,
        entity: &str,
        local_id: &str,
        golden_id: &str,
    ) -> Result<()>;
    /// Stores a config text as a new version if it differs from the latest; returns the
    /// version number (existing or new).
    async fn save_config_version(&self, text: &str, author: &str) -> Result<i64>;
    /// The latest config version number and its hash.
    async fn latest_config_version(&self) -> Result<Option<(i64, String)>>;
    /// Starts a run record; returns its id.
    async fn run_started(&self, flow: &str) -> Result<i64>;
    /// Updates/finishes a run record.
    async fn run_update(&self, run: &RunRecord) -> Result<()>;
    /// Latest run per flow.
    async fn last_runs(&self) -> Result<Vec<RunRecord>>;
    /// Counts of unsettled (open or retrying) exceptions per flow and owner.
    async fn open_exception_counts(&self) -> Result<Vec<(String, String, u64)>>;
    /// Takes or renews the lease on `flow` for `owner` until now + `ttl`. Returns false
    /// while another owner holds an unexpired lease; an expired lease is taken over, so a
    /// qiao process that died blocks its flows for at most `ttl`.
    async fn try_lock_flow(
        &self,
        flow: &str,
        owner: &str,
        ttl: std::time::Duration,
    ) -> Result<bool>;
    /// Gives up `owner`'s lease on `flow` (no-op when `owner` does not hold it).
    async fn unlock_flow(&self, flow: &str, owner: &str) -> Result<()>;
    /// Who holds the lease on `flow`, if anyone (expired or not).
    async fn flow_lock_owner(&self, flow: &str) -> Result<Option<String>>;
    /// Takes over the lease on `flow` only if `dead_owner` still holds it (the caller
    /// established that this owner's process is gone). True if taken.
    async fn take_over_flow(
        &self,
        flow: &str,
        dead_owner: &str,
        owner: &str,
        ttl: std::time::Duration,
    ) -> Result<bool>;
    /// In one transaction: parks `held` behind the exceptions blocking their keys, opens
    /// `exceptions` and marks the job done. Holding at the end of a job, not before its
    /// delivery, means a retried or crashed attempt can neither hold a change twice nor
    /// lose it.
    async fn job_finish(
        &self,
        job_id: i64,
        held: Vec<Change>,
        exceptions: Vec<NewException>,
    ) -> Result<()>;
    /// A job's bookkeeping without its changes.
    async fn job_info(&self, job_id: i64) -> Result<Option<JobInfo>>;
    /// Crosswalk: every local id linked to a golden id in a system, first linked first
    /// (several when duplicates in one system were merged into one golden record).
    async fn crosswalk_locals(
        &self,
        system: &str,
        entity: &str,
        golden_id: &str,
    ) -> Result<Vec<String>>;
    /// One config version with its text.
    async fn config_version(&self, number: i64) -> Result<Option<ConfigVersion>>;
    /// All config versions, newest first, without their texts.
    async fn config_versions(&self) -> Result<Vec<ConfigVersion>>;
}
