//! Run history and config versions.

use super::{Fail, from_micros, from_micros_opt, micros, not_found, to_i64, to_u64};
use crate::{ConfigVersion, RunRecord};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

/// Starts a run record.
pub(crate) async fn started(
    conn: &mut SqliteConnection,
    flow: &str,
    now: DateTime<Utc>,
) -> Result<i64, Fail> {
    let r = sqlx::query("INSERT INTO runs (flow, started_at, status) VALUES (?, ?, 'running')")
        .bind(flow)
        .bind(micros(now))
        .execute(conn)
        .await?;
    Ok(r.last_insert_rowid())
}

/// Writes a run record's counts, status and times.
pub(crate) async fn update(conn: &mut SqliteConnection, run: &RunRecord) -> Result<(), Fail> {
    let r = sqlx::query(
        "UPDATE runs SET started_at = COALESCE(?, started_at), finished_at = ?, read = ?, delivered = ?,
                rejected = ?, filtered = ?, deleted = ?, status = ?, error = ?
         WHERE id = ?",
    )
    .bind(run.started_at.map(micros))
    .bind(run.finished_at.map(micros))
    .bind(to_i64("read count", run.read)?)
    .bind(to_i64("delivered count", run.delivered)?)
    .bind(to_i64("rejected count", run.rejected)?)
    .bind(to_i64("filtered count", run.filtered)?)
    .bind(to_i64("deleted count", run.deleted)?)
    .bind(&run.status)
    .bind(run.error.as_deref())
    .bind(run.id)
    .execute(conn)
    .await?;
    if r.rows_affected() == 0 {
        return Err(not_found(format!(
            "run #{} of flow `{}` does not exist: start it with run_started and use the id it returns",
            run.id, run.flow
        )));
    }
    Ok(())
}

fn run_of(r: &SqliteRow) -> Result<RunRecord, Fail> {
    Ok(RunRecord {
        id: r.try_get("id")?,
        flow: r.try_get("flow")?,
        started_at: from_micros_opt(r.try_get("started_at")?)?,
        finished_at: from_micros_opt(r.try_get("finished_at")?)?,
        read: to_u64(r.try_get("read")?),
        delivered: to_u64(r.try_get("delivered")?),
        rejected: to_u64(r.try_get("rejected")?),
        filtered: to_u64(r.try_get("filtered")?),
        deleted: to_u64(r.try_get("deleted")?),
        status: r.try_get("status")?,
        error: r.try_get("error")?,
    })
}

/// The latest run of each flow, by flow name.
pub(crate) async fn last_runs(conn: &mut SqliteConnection) -> Result<Vec<RunRecord>, Fail> {
    let rows = sqlx::query(
        "SELECT id, flow, started_at, finished_at, read, delivered, rejected, filtered, deleted, status, error
         FROM runs WHERE id IN (SELECT MAX(id) FROM runs GROUP BY flow) ORDER BY flow",
    )
    .fetch_all(conn)
    .await?;
    rows.iter().map(run_of).collect()
}

/// SHA-256 of a config text, lowercase hex.
pub(crate) fn config_hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The latest config version and its hash.
pub(crate) async fn latest_config(
    conn: &mut SqliteConnection,
) -> Result<Option<(i64, String)>, Fail> {
    Ok(
        sqlx::query_as("SELECT number, hash FROM config_versions ORDER BY number DESC LIMIT 1")
            .fetch_optional(conn)
            .await?,
    )
}

/// Saves `text` as a new version unless the latest has the same hash.
pub(crate) async fn save_config(
    conn: &mut SqliteConnection,
    text: &str,
    author: &str,
    now: DateTime<Utc>,
) -> Result<i64, Fail> {
    let hash = config_hash(text);
    let latest = latest_config(conn).await?;
    if let Some((number, h)) = &latest
        && *h == hash
    {
        return Ok(*number);
    }
    let number = latest.map_or(1, |(n, _)| n + 1);
    sqlx::query("INSERT INTO config_versions (number, hash, author, created_at, text) VALUES (?, ?, ?, ?, ?)")
        .bind(number)
        .bind(&hash)
        .bind(author)
        .bind(micros(now))
        .bind(text)
        .execute(conn)
        .await?;
    Ok(number)
}

/// One config version with its text.
pub(crate) async fn config_version(
    conn: &mut SqliteConnection,
    number: i64,
) -> Result<Option<ConfigVersion>, Fail> {
    let row: Option<(i64, String, String, i64, String)> = sqlx::query_as(
        "SELECT number, hash, author, created_at, text FROM config_versions WHERE number = ?",
    )
    .bind(number)
    .fetch_optional(conn)
    .await?;
    row.map(|(number, hash, author, at, text)| {
        Ok(ConfigVersion {
            number,
            hash,
            author,
            created_at: from_micros(at)?,
            text,
        })
    })
    .transpose()
}

/// All config versions, newest first, texts left out.
pub(crate) async fn config_versions(
    conn: &mut SqliteConnection,
) -> Result<Vec<ConfigVersion>, Fail> {
    let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
        "SELECT number, hash, author, created_at FROM config_versions ORDER BY number DESC",
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(number, hash, author, at)| {
            Ok(ConfigVersion {
                number,
                hash,
                author,
                created_at: from_micros(at)?,
                text: String::new(),
            })
        })
        .collect()
}
