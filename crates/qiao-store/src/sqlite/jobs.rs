//! The outbox: jobs, their delivery bookkeeping, and flow checkpoints.

use super::{
    Fail, blocking, corrupt, exceptions, from_micros, from_micros_opt, invalid, micros, not_found,
    to_i64, to_u64,
};
use crate::{Job, JobInfo, NewException, NewJob, codec};
use chrono::{DateTime, Utc};
use qiao_core::Change;
use sqlx::{Row, SqliteConnection};

/// A job with its changes already encoded, so the encoding happens before the write
/// transaction starts and the write lock is held only for the inserts.
pub(crate) struct EncodedJob {
    pub idempotency_key: String,
    pub record_count: i64,
    pub payload: Vec<u8>,
}

/// Encodes jobs for [`insert`].
pub(crate) fn encode(flow: &str, jobs: &[NewJob]) -> Result<Vec<EncodedJob>, Fail> {
    jobs.iter()
        .map(|j| {
            let payload = codec::encode_changes(&j.changes)
                .map_err(|e| invalid(format!("flow `{flow}` job `{}`: {e}", j.idempotency_key)))?;
            Ok(EncodedJob {
                idempotency_key: j.idempotency_key.clone(),
                record_count: to_i64("change count", j.changes.len() as u64)?,
                payload,
            })
        })
        .collect()
}

/// The committed position of a flow.
pub(crate) async fn checkpoint(
    conn: &mut SqliteConnection,
    flow: &str,
) -> Result<Option<String>, Fail> {
    Ok(
        sqlx::query_scalar("SELECT position FROM checkpoints WHERE flow = ?")
            .bind(flow)
            .fetch_optional(conn)
            .await?,
    )
}

async fn set_checkpoint(
    conn: &mut SqliteConnection,
    flow: &str,
    position: &str,
    now: DateTime<Utc>,
) -> Result<(), Fail> {
    sqlx::query(
        "INSERT INTO checkpoints (flow, position, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (flow) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at",
    )
    .bind(flow)
    .bind(position)
    .bind(micros(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// Enqueues one job. A job whose idempotency key the flow already used is the same job
/// enqueued again (a replayed batch, a retry clicked twice) and is skipped — unless its
/// changes differ, which means two different jobs got one key: that is refused, because
/// the target would drop the second as a duplicate.
pub(crate) async fn insert(
    conn: &mut SqliteConnection,
    flow: &str,
    job: &EncodedJob,
    now: DateTime<Utc>,
) -> Result<(), Fail> {
    let done = sqlx::query(
        "INSERT INTO jobs (flow, idempotency_key, state, attempts, next_attempt_at, record_count, created_at, payload)
         VALUES (?, ?, 'pending', 0, ?, ?, ?, ?)
         ON CONFLICT (flow, idempotency_key) DO NOTHING",
    )
    .bind(flow)
    .bind(&job.idempotency_key)
    .bind(micros(now))
    .bind(job.record_count)
    .bind(micros(now))
    .bind(&job.payload[..])
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 1 {
        return Ok(());
    }
    let row = sqlx::query(
        "SELECT id, state, record_count, payload FROM jobs WHERE flow = ? AND idempotency_key = ?",
    )
    .bind(flow)
    .bind(&job.idempotency_key)
    .fetch_one(&mut *conn)
    .await?;
    let id: i64 = row.try_get("id")?;
    let state: String = row.try_get("state")?;
    let count: i64 = row.try_get("record_count")?;
    let payload: Option<Vec<u8>> = row.try_get("payload")?;
    let same = match payload {
        Some(p) => p == job.payload,
        // A delivered job's payload is gone; its size is all that is left to compare.
        None => count == job.record_count,
    };
    if same {
        return Ok(());
    }
    Err(invalid(format!(
        "flow `{flow}`: idempotency key `{}` is already used by job #{id} ({state}) with different \
         changes; keys must be unique per flow and batch (include the source positions in them)",
        job.idempotency_key
    )))
}

/// The transactional outbox step: supersede, open exceptions, enqueue, move the
/// checkpoint — all on the caller's transaction.
pub(crate) async fn commit_batch(
    conn: &mut SqliteConnection,
    flow: &str,
    checkpoint: Option<&str>,
    jobs: &[EncodedJob],
    new_exceptions: &[NewException],
    superseded_keys: &[String],
    now: DateTime<Utc>,
) -> Result<(), Fail> {
    // Supersede first: an exception opened in this same batch is newer than the versions
    // that passed, as far as the store can tell; the engine drops it itself if not.
    exceptions::supersede(conn, flow, superseded_keys, now).await?;
    for e in new_exceptions {
        exceptions::insert(conn, e, now).await?;
    }
    for j in jobs {
        insert(conn, flow, j, now).await?;
    }
    if let Some(position) = checkpoint {
        set_checkpoint(conn, flow, position, now).await?;
    }
    Ok(())
}

/// A due job as read, before its payload is decoded.
pub(crate) struct RawJob {
    id: i64,
    flow: String,
    idempotency_key: String,
    attempts: i64,
    created_at: i64,
    payload: Option<Vec<u8>>,
}

impl RawJob {
    /// Decodes the payload (done outside the read transaction).
    pub(crate) fn decode(self) -> Result<Job, Fail> {
        let payload = self.payload.ok_or_else(|| {
            corrupt(format!(
                "pending job #{} of flow `{}` has no payload",
                self.id, self.flow
            ))
        })?;
        let changes = codec::decode_changes(&payload)
            .map_err(|e| corrupt(format!("job #{} of flow `{}`: {e}", self.id, self.flow)))?;
        Ok(Job {
            id: self.id,
            flow: self.flow,
            idempotency_key: self.idempotency_key,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            changes,
            created_at: from_micros(self.created_at)?,
        })
    }
}

/// Due jobs in id order, stopping before the first pending job that is not yet due: a
/// job waiting for its retry is never overtaken by a later one (per-key order).
pub(crate) async fn due(
    conn: &mut SqliteConnection,
    flow: &str,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<RawJob>, Fail> {
    let rows = sqlx::query(
        "SELECT id, idempotency_key, attempts, created_at, payload FROM jobs
         WHERE flow = ?1 AND state = 'pending' AND next_attempt_at <= ?2
           AND id < COALESCE((SELECT MIN(id) FROM jobs INDEXED BY jobs_pending_due
                              WHERE flow = ?1 AND state = 'pending' AND next_attempt_at > ?2),
                             9223372036854775807)
         ORDER BY id LIMIT ?3",
    )
    .bind(flow)
    .bind(micros(now))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(RawJob {
                id: r.try_get("id")?,
                flow: flow.to_string(),
                idempotency_key: r.try_get("idempotency_key")?,
                attempts: r.try_get("attempts")?,
                created_at: r.try_get("created_at")?,
                payload: r.try_get("payload")?,
            })
        })
        .collect()
}

/// Number of pending jobs of a flow.
pub(crate) async fn pending_count(conn: &mut SqliteConnection, flow: &str) -> Result<u64, Fail> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE flow = ? AND state = 'pending'")
            .bind(flow)
            .fetch_one(conn)
            .await?;
    Ok(to_u64(n))
}

/// When [`due`] will next return something: the next attempt of the oldest pending job
/// (later jobs wait behind it).
pub(crate) async fn next_due(
    conn: &mut SqliteConnection,
    flow: &str,
) -> Result<Option<DateTime<Utc>>, Fail> {
    let v: Option<i64> = sqlx::query_scalar(
        "SELECT next_attempt_at FROM jobs WHERE flow = ? AND state = 'pending' ORDER BY id LIMIT 1",
    )
    .bind(flow)
    .fetch_optional(conn)
    .await?;
    from_micros_opt(v)
}

/// Marks a job done and drops its payload. Marking a done job again is a no-op (a
/// delivery repeated after a crash).
pub(crate) async fn done(
    conn: &mut SqliteConnection,
    id: i64,
    now: DateTime<Utc>,
) -> Result<(), Fail> {
    let r = sqlx::query("UPDATE jobs SET state = 'done', payload = NULL, done_at = ? WHERE id = ? AND state = 'pending'")
        .bind(micros(now))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if r.rows_affected() == 0 {
        state_of(conn, id).await?;
    }
    Ok(())
}

/// The state of a job, or NotFound.
async fn state_of(conn: &mut SqliteConnection, id: i64) -> Result<String, Fail> {
    let state: Option<String> = sqlx::query_scalar("SELECT state FROM jobs WHERE id = ?")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    state.ok_or_else(|| {
        not_found(format!(
            "job #{id} is not in the outbox: it was never enqueued in this store"
        ))
    })
}

/// Records a failed attempt.
pub(crate) async fn retry_later(
    conn: &mut SqliteConnection,
    id: i64,
    next_at: DateTime<Utc>,
    error: &str,
) -> Result<(), Fail> {
    let r = sqlx::query(
        "UPDATE jobs SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?
         WHERE id = ? AND state = 'pending'",
    )
    .bind(micros(next_at))
    .bind(error)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() == 0 {
        let state = state_of(conn, id).await?;
        return Err(invalid(format!(
            "job #{id} is {state}: only a pending job can be scheduled for another attempt"
        )));
    }
    Ok(())
}

/// Holds `held`, opens `new_exceptions`, marks the job done.
pub(crate) async fn finish(
    conn: &mut SqliteConnection,
    id: i64,
    held: &[Change],
    new_exceptions: &[NewException],
    now: DateTime<Utc>,
) -> Result<(), Fail> {
    let row: Option<(String, String)> = sqlx::query_as("SELECT flow, state FROM jobs WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let (flow, state) = row.ok_or_else(|| {
        not_found(format!(
            "job #{id} is not in the outbox: it was never enqueued in this store"
        ))
    })?;
    if state == "done" {
        // Finished already (a repeated call): holding or opening again would duplicate.
        return Ok(());
    }
    for change in held {
        blocking::hold(conn, &flow, change, now).await?;
    }
    for e in new_exceptions {
        exceptions::insert(conn, e, now).await?;
    }
    done(conn, id, now).await
}

/// A job's bookkeeping.
pub(crate) async fn info(conn: &mut SqliteConnection, id: i64) -> Result<Option<JobInfo>, Fail> {
    let row = sqlx::query(
        "SELECT id, flow, idempotency_key, state, attempts, next_attempt_at, last_error, record_count,
                created_at, done_at, COALESCE(length(payload), 0) AS payload_bytes
         FROM jobs WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let state: String = r.try_get("state")?;
    let next: i64 = r.try_get("next_attempt_at")?;
    Ok(Some(JobInfo {
        id: r.try_get("id")?,
        flow: r.try_get("flow")?,
        idempotency_key: r.try_get("idempotency_key")?,
        next_attempt_at: if state == "pending" {
            Some(from_micros(next)?)
        } else {
            None
        },
        state,
        attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
        last_error: r.try_get("last_error")?,
        record_count: to_u64(r.try_get("record_count")?),
        payload_bytes: to_u64(r.try_get("payload_bytes")?),
        created_at: from_micros(r.try_get("created_at")?)?,
        done_at: from_micros_opt(r.try_get("done_at")?)?,
    }))
}
