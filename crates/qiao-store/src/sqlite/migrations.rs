//! Numbered schema migrations, applied in order, each in its own write transaction and
//! recorded in `schema_migrations`.
//!
//! A hand-rolled list rather than `sqlx::migrate!`: the macro needs the `macros` feature
//! (off in this workspace), and a plain table keeps the "store is newer than this qiao"
//! check and its message under our control.

use super::{Fail, micros};
use crate::StoreError;
use chrono::Utc;
use sqlx::SqliteConnection;

/// One migration: its number, a name for people, and the SQL it runs.
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration this qiao knows, oldest first. Never edit a released one: add a new one.
pub(crate) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "outbox, checkpoints, exceptions, crosswalk, config versions, runs, flow locks",
    sql: V1,
}];

/// Times are INTEGER microseconds since the Unix epoch (UTC): compact, exact, and
/// compared by the due-job index without parsing. `payload` is the last column of `jobs`
/// so reading the small columns never walks a large payload's overflow pages.
const V1: &str = r#"
CREATE TABLE checkpoints (
    flow        TEXT PRIMARY KEY NOT NULL,
    position    TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    flow             TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    record_count     INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    done_at          INTEGER,
    payload          BLOB,
    UNIQUE (flow, idempotency_key)
);
-- due_jobs / pending_jobs / next_due walk only pending rows of one flow in id order.
CREATE INDEX jobs_pending ON jobs (flow, id, next_attempt_at) WHERE state = 'pending';
-- due_jobs finds the first pending job that is not yet due.
CREATE INDEX jobs_pending_due ON jobs (flow, next_attempt_at, id) WHERE state = 'pending';

CREATE TABLE exceptions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    flow         TEXT NOT NULL,
    kind         TEXT NOT NULL
                 CHECK (kind IN ('transport', 'validation', 'inconsistency', 'conflict')),
    owner        TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('open', 'retrying', 'resolved', 'ignored')),
    key          TEXT,
    message      TEXT NOT NULL,
    details      TEXT NOT NULL,
    blocks_keys  INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX exceptions_flow_state ON exceptions (flow, state);
CREATE INDEX exceptions_state_owner ON exceptions (state, owner, flow);
-- commit_batch's supersede step: open validation exceptions that do not block keys.
CREATE INDEX exceptions_supersedable ON exceptions (flow, key)
    WHERE kind = 'validation' AND blocks_keys = 0 AND state IN ('open', 'retrying');

-- An exception's own changes (held = 0) and the later changes held behind it (held = 1),
-- in arrival order by seq.
CREATE TABLE exception_changes (
    exception_id  INTEGER NOT NULL REFERENCES exceptions (id),
    seq           INTEGER NOT NULL,
    held          INTEGER NOT NULL,
    key           TEXT NOT NULL,
    payload       BLOB NOT NULL,
    PRIMARY KEY (exception_id, seq)
) WITHOUT ROWID;

CREATE TABLE exception_history (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    exception_id  INTEGER NOT NULL REFERENCES exceptions (id),
    at            INTEGER NOT NULL,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    note          TEXT NOT NULL
);
CREATE INDEX exception_history_exception ON exception_history (exception_id, id);

-- A key may be blocked by more than one open delivery exception (jobs delivered
-- concurrently); later changes wait behind the newest of them.
CREATE TABLE blocked_keys (
    flow          TEXT NOT NULL,
    key           TEXT NOT NULL,
    exception_id  INTEGER NOT NULL REFERENCES exceptions (id),
    PRIMARY KEY (flow, key, exception_id)
) WITHOUT ROWID;
CREATE INDEX blocked_keys_exception ON blocked_keys (exception_id);

CREATE TABLE crosswalk (
    system     TEXT NOT NULL,
    entity     TEXT NOT NULL,
    local_id   TEXT NOT NULL,
    golden_id  TEXT NOT NULL,
    linked_at  INTEGER NOT NULL,
    UNIQUE (system, entity, local_id)
);
CREATE INDEX crosswalk_golden ON crosswalk (system, entity, golden_id, linked_at);

CREATE TABLE config_versions (
    number      INTEGER PRIMARY KEY,
    hash        TEXT NOT NULL,
    author      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    text        TEXT NOT NULL
);

CREATE TABLE runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    flow         TEXT NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    read         INTEGER NOT NULL DEFAULT 0,
    delivered    INTEGER NOT NULL DEFAULT 0,
    rejected     INTEGER NOT NULL DEFAULT 0,
    filtered     INTEGER NOT NULL DEFAULT 0,
    deleted      INTEGER NOT NULL DEFAULT 0,
    status       TEXT NOT NULL,
    error        TEXT
);
CREATE INDEX runs_flow ON runs (flow, id);

CREATE TABLE flow_locks (
    flow         TEXT PRIMARY KEY NOT NULL,
    owner        TEXT NOT NULL,
    acquired_at  INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
"#;

/// The newest schema version this qiao knows.
pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Creates `schema_migrations` if needed and returns the highest applied version.
pub(crate) async fn current_version(conn: &mut SqliteConnection) -> Result<i64, Fail> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version     INTEGER PRIMARY KEY NOT NULL,
            name        TEXT NOT NULL,
            applied_at  INTEGER NOT NULL
        )",
    )
    .execute(&mut *conn)
    .await?;
    let v: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
        .fetch_one(&mut *conn)
        .await?;
    Ok(v.unwrap_or(0))
}

/// Refuses a store written by a newer qiao: its schema may mean things this one cannot
/// honour, and writing to it could break the newer qiao's promises.
pub(crate) fn check_not_newer(path: &str, version: i64) -> Result<(), Fail> {
    let known = latest_version();
    if version > known {
        return Err(Fail::Store(StoreError::Invalid(format!(
            "state store {path} has schema version {version}, but this qiao knows versions up \
             to {known}: it was written by a newer qiao; run that newer qiao (or upgrade this \
             one) instead of downgrading the store"
        ))));
    }
    Ok(())
}

/// Applies migration `m` on a connection inside a write transaction that has just
/// re-read the current version (so two processes opening the store at once do not both
/// apply it).
pub(crate) async fn apply(conn: &mut SqliteConnection, m: &Migration) -> Result<(), Fail> {
    sqlx::raw_sql(m.sql).execute(&mut *conn).await?;
    sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)")
        .bind(m.version)
        .bind(m.name)
        .bind(micros(Utc::now()))
        .execute(&mut *conn)
        .await?;
    Ok(())
}
