//! Per-key order: delivery exceptions block their keys, later changes to a blocked key are
//! held behind the exception, and releasing the exception hands them back in order.

use super::exceptions::{self, ENGINE, head, history, set_state, state_str};
use super::{Fail, corrupt, invalid};
use crate::{ExceptionState, Released, codec};
use chrono::{DateTime, Utc};
use qiao_core::Change;
use sqlx::SqliteConnection;
use std::collections::{HashMap, HashSet};

/// Blocks `keys` of `flow` behind exception `id`.
pub(crate) async fn block<'k>(
    conn: &mut SqliteConnection,
    flow: &str,
    id: i64,
    keys: impl Iterator<Item = &'k str>,
) -> Result<(), Fail> {
    let mut seen = HashSet::new();
    for key in keys.filter(|k| seen.insert(*k)) {
        sqlx::query(
            "INSERT OR IGNORE INTO blocked_keys (flow, key, exception_id) VALUES (?, ?, ?)",
        )
        .bind(flow)
        .bind(key)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Blocks again the keys of an exception's own changes (after a failed retry).
pub(crate) async fn reblock_own(
    conn: &mut SqliteConnection,
    flow: &str,
    id: i64,
) -> Result<(), Fail> {
    let mut keys: Vec<String> = sqlx::query_scalar(
        "SELECT key FROM exception_changes WHERE exception_id = ? AND held = 0 ORDER BY seq",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let own: Option<String> = sqlx::query_scalar("SELECT key FROM exceptions WHERE id = ?")
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    keys.extend(own);
    block(conn, flow, id, keys.iter().map(String::as_str)).await
}

/// Distinct blocked keys of a flow.
pub(crate) async fn blocked_keys(
    conn: &mut SqliteConnection,
    flow: &str,
) -> Result<Vec<String>, Fail> {
    Ok(
        sqlx::query_scalar("SELECT DISTINCT key FROM blocked_keys WHERE flow = ? ORDER BY key")
            .bind(flow)
            .fetch_all(conn)
            .await?,
    )
}

/// Appends an encoded change to exception `id`'s held list.
async fn append_held(
    conn: &mut SqliteConnection,
    id: i64,
    key: &str,
    payload: &[u8],
) -> Result<(), Fail> {
    sqlx::query(
        "INSERT INTO exception_changes (exception_id, seq, held, key, payload)
         VALUES (?1, (SELECT COALESCE(MAX(seq), -1) + 1 FROM exception_changes WHERE exception_id = ?1), 1, ?2, ?3)",
    )
    .bind(id)
    .bind(key)
    .bind(payload)
    .execute(conn)
    .await?;
    Ok(())
}

/// Parks `change` behind the newest open exception blocking its key.
pub(crate) async fn hold(
    conn: &mut SqliteConnection,
    flow: &str,
    change: &Change,
    now: DateTime<Utc>,
) -> Result<(), Fail> {
    let blocker: Option<i64> =
        sqlx::query_scalar("SELECT MAX(exception_id) FROM blocked_keys WHERE flow = ? AND key = ?")
            .bind(flow)
            .bind(&change.key)
            .fetch_one(&mut *conn)
            .await?;
    let Some(id) = blocker else {
        return Err(invalid(format!(
            "flow `{flow}` key `{}`: no open exception blocks this key, so the change cannot be \
             held; deliver it instead (the caller's list of blocked keys was stale)",
            change.key
        )));
    };
    let payload = codec::encode_change(change)
        .map_err(|e| invalid(format!("flow `{flow}` key `{}`: {e}", change.key)))?;
    append_held(conn, id, &change.key, &payload).await?;
    history(conn, id, ENGINE, "held", &held_note(change), now).await
}

fn held_note(change: &Change) -> String {
    match &change.origin {
        Some(origin) => format!(
            "a later change of key {} (from {origin}) waits behind this exception",
            change.key
        ),
        None => format!(
            "a later change of key {} waits behind this exception",
            change.key
        ),
    }
}

/// Retry or ignore: unblocks, hands back the changes to enqueue again, records history.
///
/// A change whose key is still blocked by an OLDER open exception (two jobs with the
/// same key failed) is not handed back but moved behind that exception, so it cannot
/// overtake the older change.
pub(crate) async fn release(
    conn: &mut SqliteConnection,
    id: i64,
    actor: &str,
    ignore: bool,
    note: &str,
    now: DateTime<Utc>,
) -> Result<Released, Fail> {
    let h = head(conn, id).await?;
    if matches!(h.state, ExceptionState::Resolved | ExceptionState::Ignored) {
        return Err(invalid(format!(
            "exception #{id} (flow `{}`) is already {}: there is nothing left to retry or \
             ignore; open a new one by re-sending the record from its source",
            h.flow,
            state_str(h.state)
        )));
    }
    sqlx::query("DELETE FROM blocked_keys WHERE exception_id = ?")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let older: Vec<(String, i64)> = sqlx::query_as(
        "SELECT key, MAX(exception_id) FROM blocked_keys WHERE flow = ? AND exception_id < ? GROUP BY key",
    )
    .bind(&h.flow)
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let older: HashMap<String, i64> = older.into_iter().collect();
    let rows: Vec<(bool, String, Vec<u8>)> = sqlx::query_as(
        "SELECT held, key, payload FROM exception_changes WHERE exception_id = ? ORDER BY seq",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let mut changes = Vec::with_capacity(rows.len());
    let mut moved: HashMap<i64, usize> = HashMap::new();
    for (held, key, payload) in rows {
        if ignore && !held {
            continue;
        }
        if let Some(&blocker) = older.get(&key) {
            append_held(conn, blocker, &key, &payload).await?;
            *moved.entry(blocker).or_default() += 1;
            continue;
        }
        changes.push(
            codec::decode_change(&payload).map_err(|e| corrupt(format!("exception #{id}: {e}")))?,
        );
    }
    sqlx::query("DELETE FROM exception_changes WHERE exception_id = ? AND held = 1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let (state, action) = if ignore {
        (ExceptionState::Ignored, "ignored")
    } else {
        (ExceptionState::Retrying, "retry")
    };
    set_state(conn, id, state, now).await?;
    history(conn, id, actor, action, note, now).await?;
    for (blocker, n) in moved {
        let text =
            format!("{n} change(s) released from exception #{id} wait behind this older one");
        exceptions::history(conn, blocker, ENGINE, "held", &text, now).await?;
        history(
            conn,
            id,
            ENGINE,
            "moved",
            &format!("{n} change(s) moved behind older exception #{blocker}"),
            now,
        )
        .await?;
    }
    Ok(Released { changes })
}
