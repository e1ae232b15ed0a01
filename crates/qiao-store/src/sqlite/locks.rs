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

/// The current holder of `flow`'s lease.
pub(crate) async fn owner(conn: &mut SqliteConnection, flow: &str) -> Result<Option<String>, Fail> {
    Ok(
        sqlx::query_scalar("SELECT owner FROM flow_locks WHERE flow = ?")
            .bind(flow)
            .fetch_optional(conn)
            .await?,
    )
}

/// Compare-and-swap: `owner` takes the lease only while `dead_owner` holds it, so two
/// processes that both saw the same dead owner cannot both win.
pub(crate) async fn take_over(
    conn: &mut SqliteConnection,
    flow: &str,
    dead_owner: &str,
    owner: &str,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<bool, Fail> {
    let expires = chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .ok_or_else(|| invalid(format!("flow `{flow}`: lease duration {ttl:?} is too long")))?;
    let r = sqlx::query(
        "UPDATE flow_locks SET owner = ?1, acquired_at = ?2, expires_at = ?3 WHERE flow = ?4 AND owner = ?5",
    )
    .bind(owner)
    .bind(micros(now))
    .bind(micros(expires))
    .bind(flow)
    .bind(dead_owner)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}
