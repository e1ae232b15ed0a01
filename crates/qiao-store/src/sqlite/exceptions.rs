//! Exceptions: opening them, their history, listing, superseding and settling. Blocked
//! keys and held changes are in [`super::blocking`].

use super::{Fail, blocking, corrupt, from_micros, invalid, micros, not_found, to_i64, to_u64};
use crate::{
    ExceptionFilter, ExceptionKind, ExceptionRow, ExceptionState, HistoryEntry, NewException, codec,
};
use chrono::{DateTime, Utc};
use qiao_core::Change;
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Row, SqliteConnection};

/// The actor the engine records in history.
pub(crate) const ENGINE: &str = "qiao";

/// Stored name of a kind.
pub(crate) fn kind_str(k: ExceptionKind) -> &'static str {
    match k {
        ExceptionKind::Transport => "transport",
        ExceptionKind::Validation => "validation",
        ExceptionKind::Inconsistency => "inconsistency",
        ExceptionKind::Conflict => "conflict",
    }
}

fn parse_kind(s: &str) -> Result<ExceptionKind, Fail> {
    Ok(match s {
        "transport" => ExceptionKind::Transport,
        "validation" => ExceptionKind::Validation,
        "inconsistency" => ExceptionKind::Inconsistency,
        "conflict" => ExceptionKind::Conflict,
        other => {
            return Err(corrupt(format!(
                "unknown exception kind `{other}` in the store"
            )));
        }
    })
}

/// Stored name of a state.
pub(crate) fn state_str(s: ExceptionState) -> &'static str {
    match s {
        ExceptionState::Open => "open",
        ExceptionState::Retrying => "retrying",
        ExceptionState::Resolved => "resolved",
        ExceptionState::Ignored => "ignored",
    }
}

pub(crate) fn parse_state(s: &str) -> Result<ExceptionState, Fail> {
    Ok(match s {
        "open" => ExceptionState::Open,
        "retrying" => ExceptionState::Retrying,
        "resolved" => ExceptionState::Resolved,
        "ignored" => ExceptionState::Ignored,
        other => {
            return Err(corrupt(format!(
                "unknown exception state `{other}` in the store"
            )));
        }
    })
}

/// Opens an exception: the row, its own changes, its blocked keys, an `opened` history line.
pub(crate) async fn insert(
    conn: &mut SqliteConnection,
    e: &NewException,
    now: DateTime<Utc>,
) -> Result<i64, Fail> {
    let details = serde_json::to_string(&e.details).map_err(|err| {
        invalid(format!(
            "flow `{}` exception details cannot be stored: {err}",
            e.flow
        ))
    })?;
    let r = sqlx::query(
        "INSERT INTO exceptions (flow, kind, owner, state, key, message, details, blocks_keys, created_at, updated_at)
         VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?, ?)",
    )
    .bind(&e.flow)
    .bind(kind_str(e.kind))
    .bind(&e.owner)
    .bind(e.key.as_deref())
    .bind(&e.message)
    .bind(details)
    .bind(e.blocks_keys)
    .bind(micros(now))
    .bind(micros(now))
    .execute(&mut *conn)
    .await?;
    let id = r.last_insert_rowid();
    for (seq, change) in e.changes.iter().enumerate() {
        let payload = codec::encode_change(change)
            .map_err(|err| invalid(format!("flow `{}` key `{}`: {err}", e.flow, change.key)))?;
        sqlx::query("INSERT INTO exception_changes (exception_id, seq, held, key, payload) VALUES (?, ?, 0, ?, ?)")
            .bind(id)
            .bind(to_i64("change index", seq as u64)?)
            .bind(&change.key)
            .bind(payload)
            .execute(&mut *conn)
            .await?;
    }
    if e.blocks_keys {
        let keys = e
            .changes
            .iter()
            .map(|c| c.key.as_str())
            .chain(e.key.as_deref());
        blocking::block(conn, &e.flow, id, keys).await?;
    }
    history(conn, id, ENGINE, "opened", &e.message, now).await?;
    Ok(id)
}

/// Appends a history line.
pub(crate) async fn history(
    conn: &mut SqliteConnection,
    id: i64,
    actor: &str,
    action: &str,
    note: &str,
    now: DateTime<Utc>,
) -> Result<(), Fail> {
    sqlx::query("INSERT INTO exception_history (exception_id, at, actor, action, note) VALUES (?, ?, ?, ?, ?)")
        .bind(id)
        .bind(micros(now))
        .bind(actor)
        .bind(action)
        .bind(note)
        .execute(conn)
        .await?;
    Ok(())
}

/// Sets an exception's state.
pub(crate) async fn set_state(
    conn: &mut SqliteConnection,
    id: i64,
    state: ExceptionState,
    now: DateTime<Utc>,
) -> Result<(), Fail> {
    sqlx::query("UPDATE exceptions SET state = ?, updated_at = ? WHERE id = ?")
        .bind(state_str(state))
        .bind(micros(now))
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// What release and settle need to know about an exception.
pub(crate) struct Head {
    pub flow: String,
    pub state: ExceptionState,
    pub blocks_keys: bool,
}

/// Reads an exception's flow and state, or NotFound.
pub(crate) async fn head(conn: &mut SqliteConnection, id: i64) -> Result<Head, Fail> {
    let row: Option<(String, String, bool)> =
        sqlx::query_as("SELECT flow, state, blocks_keys FROM exceptions WHERE id = ?")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    let (flow, state, blocks_keys) = row.ok_or_else(|| {
        not_found(format!(
            "exception #{id} does not exist; list exceptions to find its number"
        ))
    })?;
    Ok(Head {
        flow,
        state: parse_state(&state)?,
        blocks_keys,
    })
}

/// Resolves the open validation exceptions of `keys` that do not block keys: a later
/// version of each passed the rules. Blocking ones are left alone, because changes may be
/// held behind them, and only a release can hand those back.
pub(crate) async fn supersede(
    conn: &mut SqliteConnection,
    flow: &str,
    keys: &[String],
    now: DateTime<Utc>,
) -> Result<(), Fail> {
    if keys.is_empty() {
        return Ok(());
    }
    // The usual case (no open validation exception) costs one index lookup.
    let open: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM exceptions INDEXED BY exceptions_supersedable
         WHERE flow = ? AND kind = 'validation' AND blocks_keys = 0 AND state IN ('open', 'retrying')",
    )
    .bind(flow)
    .fetch_one(&mut *conn)
    .await?;
    if open == 0 {
        return Ok(());
    }
    // One statement for any number of keys: SQLite walks the JSON array and probes the
    // partial index per key, instead of one round trip per key.
    let keys_json = serde_json::to_string(keys).map_err(|e| {
        invalid(format!(
            "flow `{flow}`: superseded keys cannot be encoded: {e}"
        ))
    })?;
    let mut ids: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT e.id FROM json_each(?2) AS j
           JOIN exceptions AS e INDEXED BY exceptions_supersedable ON e.flow = ?1 AND e.key = j.value
         WHERE e.kind = 'validation' AND e.blocks_keys = 0 AND e.state IN ('open', 'retrying')",
    )
    .bind(flow)
    .bind(keys_json)
    .fetch_all(&mut *conn)
    .await?;
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        set_state(conn, id, ExceptionState::Resolved, now).await?;
        history(
            conn,
            id,
            ENGINE,
            "resolved",
            "superseded by a later valid version",
            now,
        )
        .await?;
    }
    Ok(())
}

/// Marks a retrying exception resolved, or open again (its keys blocked again if it is a
/// delivery exception, so later changes wait behind it once more).
pub(crate) async fn settle(
    conn: &mut SqliteConnection,
    id: i64,
    resolved: bool,
    note: &str,
    now: DateTime<Utc>,
) -> Result<(), Fail> {
    let h = head(conn, id).await?;
    match (h.state, resolved) {
        (ExceptionState::Retrying, true) => {
            set_state(conn, id, ExceptionState::Resolved, now).await?;
            history(conn, id, ENGINE, "resolved", note, now).await
        }
        (ExceptionState::Retrying, false) => {
            set_state(conn, id, ExceptionState::Open, now).await?;
            if h.blocks_keys {
                blocking::reblock_own(conn, &h.flow, id).await?;
            }
            history(conn, id, ENGINE, "reopened", note, now).await
        }
        // A retry job delivered twice (crash before job_done) settles twice.
        (ExceptionState::Resolved, true) => Ok(()),
        // Someone ignored it while its retry was in flight; keep their decision, note the fact.
        (ExceptionState::Ignored, _) => {
            let what = if resolved {
                "retry delivered after it was ignored"
            } else {
                "retry failed after it was ignored"
            };
            history(conn, id, ENGINE, "note", &format!("{what}: {note}"), now).await
        }
        (state, _) => Err(invalid(format!(
            "exception #{id} (flow `{}`) is {}, not retrying: only an exception sent back for \
             retry can be settled; retry it first",
            h.flow,
            state_str(state)
        ))),
    }
}

const ROW_COLUMNS: &str =
    "id, flow, kind, owner, state, key, message, details, created_at, updated_at";

fn row_of(r: &SqliteRow) -> Result<ExceptionRow, Fail> {
    let id: i64 = r.try_get("id")?;
    let details: String = r.try_get("details")?;
    Ok(ExceptionRow {
        id,
        flow: r.try_get("flow")?,
        kind: parse_kind(&r.try_get::<String, _>("kind")?)?,
        owner: r.try_get("owner")?,
        state: parse_state(&r.try_get::<String, _>("state")?)?,
        key: r.try_get("key")?,
        message: r.try_get("message")?,
        details: serde_json::from_str(&details)
            .map_err(|e| corrupt(format!("exception #{id}: stored details are not JSON: {e}")))?,
        created_at: from_micros(r.try_get("created_at")?)?,
        updated_at: from_micros(r.try_get("updated_at")?)?,
    })
}

/// Lists exceptions, newest first.
pub(crate) async fn list(
    conn: &mut SqliteConnection,
    f: &ExceptionFilter,
) -> Result<Vec<ExceptionRow>, Fail> {
    // Built from fixed fragments only; every value is a bound parameter.
    let mut sql = format!("SELECT {ROW_COLUMNS} FROM exceptions WHERE 1 = 1");
    if f.flow.is_some() {
        sql.push_str(" AND flow = ?");
    }
    if !f.states.is_empty() {
        let marks = vec!["?"; f.states.len()].join(", ");
        sql.push_str(&format!(" AND state IN ({marks})"));
    }
    if f.owner.is_some() {
        sql.push_str(" AND owner = ?");
    }
    sql.push_str(" ORDER BY id DESC");
    if f.limit > 0 {
        sql.push_str(" LIMIT ?");
    }
    let mut q = sqlx::query(AssertSqlSafe(sql));
    if let Some(flow) = &f.flow {
        q = q.bind(flow.clone());
    }
    for s in &f.states {
        q = q.bind(state_str(*s));
    }
    if let Some(owner) = &f.owner {
        q = q.bind(owner.clone());
    }
    if f.limit > 0 {
        q = q.bind(i64::try_from(f.limit).unwrap_or(i64::MAX));
    }
    let rows = q.fetch_all(conn).await?;
    rows.iter().map(row_of).collect()
}

/// One exception with its changes (own, then held, in order) and history.
pub(crate) async fn get(
    conn: &mut SqliteConnection,
    id: i64,
) -> Result<(ExceptionRow, Vec<Change>, Vec<HistoryEntry>), Fail> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {ROW_COLUMNS} FROM exceptions WHERE id = ?"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| {
        not_found(format!(
            "exception #{id} does not exist; list exceptions to find its number"
        ))
    })?;
    let row = row_of(&row)?;
    let payloads: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT payload FROM exception_changes WHERE exception_id = ? ORDER BY seq",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let changes = payloads
        .iter()
        .map(|p| codec::decode_change(p).map_err(|e| corrupt(format!("exception #{id}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let hist: Vec<(i64, String, String, String)> = sqlx::query_as(
        "SELECT at, actor, action, note FROM exception_history WHERE exception_id = ? ORDER BY id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let history = hist
        .into_iter()
        .map(|(at, actor, action, note)| {
            Ok(HistoryEntry {
                at: from_micros(at)?,
                actor,
                action,
                note,
            })
        })
        .collect::<Result<Vec<_>, Fail>>()?;
    Ok((row, changes, history))
}

/// Unsettled (open or retrying) exceptions per flow and owner.
pub(crate) async fn open_counts(
    conn: &mut SqliteConnection,
) -> Result<Vec<(String, String, u64)>, Fail> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT flow, owner, COUNT(*) FROM exceptions WHERE state IN ('open', 'retrying')
         GROUP BY flow, owner ORDER BY flow, owner",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(f, o, n)| (f, o, to_u64(n)))
        .collect())
}
