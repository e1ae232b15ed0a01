//! The crosswalk: which local id in which system is which golden record.

use super::{Fail, micros};
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

/// Golden id of a local id.
pub(crate) async fn golden(
    conn: &mut SqliteConnection,
    system: &str,
    entity: &str,
    local_id: &str,
) -> Result<Option<String>, Fail> {
    Ok(sqlx::query_scalar(
        "SELECT golden_id FROM crosswalk WHERE system = ? AND entity = ? AND local_id = ?",
    )
    .bind(system)
    .bind(entity)
    .bind(local_id)
    .fetch_optional(conn)
    .await?)
}

/// Local ids of a golden id in one system, first linked first.
pub(crate) async fn locals(
    conn: &mut SqliteConnection,
    system: &str,
    entity: &str,
    golden_id: &str,
) -> Result<Vec<String>, Fail> {
    Ok(sqlx::query_scalar(
        "SELECT local_id FROM crosswalk WHERE system = ? AND entity = ? AND golden_id = ?
         ORDER BY linked_at, rowid",
    )
    .bind(system)
    .bind(entity)
    .bind(golden_id)
    .fetch_all(conn)
    .await?)
}

/// Links a local id to a golden id (re-linking moves it; linking again is a no-op and
/// keeps its place in the first-linked order).
pub(crate) async fn put(
    conn: &mut SqliteConnection,
    system: &str,
    entity: &str,
    local_id: &str,
    golden_id: &str,
    now: DateTime<Utc>,
) -> Result<(), Fail> {
    sqlx::query(
        "INSERT INTO crosswalk (system, entity, local_id, golden_id, linked_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (system, entity, local_id) DO UPDATE
           SET golden_id = excluded.golden_id, linked_at = excluded.linked_at
           WHERE golden_id <> excluded.golden_id",
    )
    .bind(system)
    .bind(entity)
    .bind(local_id)
    .bind(golden_id)
    .bind(micros(now))
    .execute(conn)
    .await?;
    Ok(())
}
