//! Flow leases: at most one qiao process runs a flow at a time; a lease that is not
//! renewed expires, so a process that died cannot block a flow for ever.

use super::{Fail, invalid, micros};
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;
use std::time::Duration;

/// Takes, renews or takes over (when expired) the lease on `flow`.
pub(crate) async fn try_lock(
    conn: &mut SqliteConnection,
    flow: &str,
    owner: &str,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<bool, Fail> {
    let ttl = chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .ok_or_else(|| {
            invalid(format!(
                "flow `{flow}`: lease duration {ttl:?} is too long; use hours, not centuries"
            ))
        })?;
    // One statement: insert, or update only when the lease is ours or has expired. The
    // caller's write transaction (BEGIN IMMEDIATE) makes it atomic across processes.
    let r = sqlx::query(
        "INSERT INTO flow_locks (flow, owner, acquired_at, expires_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (flow) DO UPDATE
           SET owner = excluded.owner,
               acquired_at = CASE WHEN flow_locks.owner = excluded.owner
                                  THEN flow_locks.acquired_at ELSE excluded.acquired_at END,
               expires_at = excluded.expires_at
           WHERE flow_locks.owner = excluded.owner OR flow_locks.expires_at <= ?3",
    )
    .bind(flow)
    .bind(owner)
    .bind(micros(now))
    .bind(micros(ttl))
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Gives up `owner`'s lease on `flow`.
pub(crate) async fn unlock(
    conn: &mut SqliteConnection,
    flow: &str,
    owner: &str,
) -> Result<(), Fail> {
    sqlx::query("DELETE FROM flow_locks WHERE flow = ? AND owner = ?")
        .bind(flow)
        .bind(owner)
        .execute(conn)
        .await?;
    Ok(())
}
