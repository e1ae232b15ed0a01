//! The SQLite store: one file in WAL mode, shared by the tasks of one process and by
//! several qiao processes on one machine.

mod blocking;
mod crosswalk;
mod exceptions;
mod jobs;
mod locks;
mod migrations;
mod runs;
mod store_impl;

use crate::StoreError;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, SqliteConnection, Transaction};
use std::path::Path;
use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard};

/// How long a statement waits for another process's write lock before failing. Writes
/// are short (one batch, one job), so 30 s only runs out when a process is stuck.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections per file store: WAL lets readers run beside the one writer.
const MAX_CONNECTIONS: u32 = 4;

/// How a committed transaction survives failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: the WAL is fsynced at every commit, so a commit survives
    /// kill -9, an OS crash and power loss. The default, because a committed checkpoint
    /// is a promise to the source (messages acked, files moved, CDC slots confirmed) that
    /// cannot be taken back; it costs one fsync per commit (about 0.5 ms on the dev SSD).
    #[default]
    Full,
    /// `synchronous=NORMAL`: a commit survives kill -9 of the process (the WAL is in the
    /// OS cache), but the last commits may roll back on power loss or OS crash (never
    /// corrupting the store). For throwaway stores, demos and benchmarks.
    Normal,
}

/// The state store on SQLite.
pub struct SqliteStore {
    pool: SqlitePool,
    /// Where the store lives, for error messages.
    path: String,
    /// Serializes this process's write transactions so its tasks queue in FIFO order on
    /// a tokio mutex instead of polling SQLite's busy handler; other processes still wait
    /// on `busy_timeout`.
    write_lock: Mutex<()>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store file at `path` with full durability, and
    /// migrates an older schema.
    pub async fn open(path: &Path) -> crate::Result<SqliteStore> {
        Self::open_with(path, Durability::Full).await
    }

    /// Opens (creating if needed) the store file at `path` with the given durability.
    pub async fn open_with(path: &Path, durability: Durability) -> crate::Result<SqliteStore> {
        let shown = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            return Err(StoreError::Db {
                path: shown,
                message: format!(
                    "directory {} does not exist: create it or point the store elsewhere",
                    dir.display()
                ),
            });
        }
        let synchronous = match durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        };
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(1)
            .connect_with(options)
            .await
            .map_err(|e| db_error(&shown, &e))?;
        Self::init(pool, shown).await
    }

    /// A private store in memory, gone when dropped: for tests and dry runs.
    pub async fn open_in_memory() -> crate::Result<SqliteStore> {
        let shown = ":memory:".to_string();
        // Every connection to ":memory:" is a separate database, so the pool holds exactly
        // one connection and never retires it. (Shared cache would allow more, but brings
        // table-level SQLITE_LOCKED errors that busy_timeout does not cover.)
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|e| db_error(&shown, &e))?;
        Self::init(pool, shown).await
    }

    async fn init(pool: SqlitePool, path: String) -> crate::Result<SqliteStore> {
        let store = SqliteStore {
            pool,
            path,
            write_lock: Mutex::new(()),
        };
        store.migrate().await.map_err(|e| store.fail(e))?;
        Ok(store)
    }

    /// Where the store lives (file path or `:memory:`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The store's schema version (number of the last applied migration).
    pub async fn schema_version(&self) -> crate::Result<i64> {
        let mut tx = self.read().await.map_err(|e| self.fail(e))?;
        let v = migrations::current_version(&mut tx).await;
        self.end_read(tx, v).await
    }

    /// Closes the store's connections (waits for running calls). Dropping the store also
    /// closes them, but without waiting.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Applies the migrations this store lacks, one write transaction each.
    async fn migrate(&self) -> Result<(), Fail> {
        for m in migrations::MIGRATIONS {
            let mut w = self.begin_write().await?;
            let current = migrations::current_version(w.conn()).await?;
            migrations::check_not_newer(&self.path, current)?;
            if current >= m.version {
                w.rollback().await;
                continue;
            }
            migrations::apply(w.conn(), m).await?;
            w.commit().await?;
        }
        // A store with no migration to apply still has to be checked.
        let mut tx = self.read().await?;
        let current = migrations::current_version(&mut tx).await?;
        tx.commit().await?;
        migrations::check_not_newer(&self.path, current)
    }

    /// Starts a write transaction: `BEGIN IMMEDIATE` takes SQLite's write lock up front,
    /// so a transaction that first reads and then writes cannot fail half-way with
    /// SQLITE_BUSY when another process wrote in between.
    async fn begin_write(&self) -> Result<Writer<'_>, Fail> {
        let guard = self.write_lock.lock().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(Writer { _guard: guard, tx })
    }

    /// Commits `w` if `r` is Ok, else rolls it back; maps the error for the caller.
    async fn end_write<T>(&self, w: Writer<'_>, r: Result<T, Fail>) -> crate::Result<T> {
        match r {
            Ok(v) => {
                w.commit().await.map_err(|e| self.fail(e))?;
                Ok(v)
            }
            Err(e) => {
                w.rollback().await;
                Err(self.fail(e))
            }
        }
    }

    /// Starts a read transaction, so a call's several queries see one snapshot.
    async fn read(&self) -> Result<Transaction<'static, Sqlite>, Fail> {
        Ok(self.pool.begin().await?)
    }

    /// Ends a read transaction and maps the error for the caller.
    async fn end_read<T>(
        &self,
        tx: Transaction<'static, Sqlite>,
        r: Result<T, Fail>,
    ) -> crate::Result<T> {
        // Commit and rollback of a read-only transaction are the same; commit reports a
        // broken connection, which rollback-on-drop would hide.
        let v = r.map_err(|e| self.fail(e))?;
        tx.commit().await.map_err(|e| self.fail(Fail::Sql(e)))?;
        Ok(v)
    }

    /// Turns an internal failure into the public error, naming this store.
    fn fail(&self, f: Fail) -> StoreError {
        match f {
            Fail::Store(StoreError::Db { path, message }) if path.is_empty() => StoreError::Db {
                path: self.path.clone(),
                message,
            },
            Fail::Store(e) => e,
            Fail::Sql(e) => db_error(&self.path, &e),
        }
    }
}

/// A write transaction holding this process's write lock.
struct Writer<'a> {
    _guard: MutexGuard<'a, ()>,
    tx: Transaction<'static, Sqlite>,
}

impl Writer<'_> {
    fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }

    async fn commit(self) -> Result<(), Fail> {
        Ok(self.tx.commit().await?)
    }

    async fn rollback(self) {
        // The caller reports the error that made it roll back; a failed rollback means a
        // broken connection, which sqlx discards instead of returning it to the pool.
        let _ = self.tx.rollback().await;
    }
}

/// An internal failure: a database error (mapped with the store path at the boundary) or
/// an already-worded store error.
#[derive(Debug)]
pub(crate) enum Fail {
    Sql(sqlx::Error),
    Store(StoreError),
}

impl From<sqlx::Error> for Fail {
    fn from(e: sqlx::Error) -> Self {
        Fail::Sql(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

/// A request refused in the current state.
pub(crate) fn invalid(message: String) -> Fail {
    Fail::Store(StoreError::Invalid(message))
}

/// A thing that does not exist.
pub(crate) fn not_found(message: String) -> Fail {
    Fail::Store(StoreError::NotFound(message))
}

/// A stored value that cannot be read back (damaged store or a bug).
pub(crate) fn corrupt(message: String) -> Fail {
    Fail::Store(StoreError::Db {
        path: String::new(),
        message,
    })
}

/// Words a database error with its likely fix.
fn db_error(path: &str, e: &sqlx::Error) -> StoreError {
    let hint = match e {
        sqlx::Error::Database(d) => match d.code().as_deref() {
            Some("5") | Some("6") | Some("261") | Some("517") => {
                " (the store is locked by another process for longer than the busy timeout: \
                 look for a stuck qiao process using this file)"
            }
            Some("8") => " (the file is read-only: check its permissions and the directory's)",
            Some("13") => " (the disk is full: free space)",
            Some("11") | Some("26") => {
                " (not a qiao store or damaged: restore it from a backup or point the store elsewhere)"
            }
            Some("14") => {
                " (cannot open the file: check that the directory exists and is writable)"
            }
            _ => "",
        },
        sqlx::Error::PoolTimedOut => {
            " (no free connection in time: the store is overloaded or a call is stuck)"
        }
        _ => "",
    };
    StoreError::Db {
        path: path.to_string(),
        message: format!("{e}{hint}"),
    }
}

/// Stored form of a time: microseconds since the Unix epoch.
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Reads a stored time back.
pub(crate) fn from_micros(v: i64) -> Result<DateTime<Utc>, Fail> {
    DateTime::from_timestamp_micros(v)
        .ok_or_else(|| corrupt(format!("stored time {v} µs is out of range")))
}

/// Reads an optional stored time back.
pub(crate) fn from_micros_opt(v: Option<i64>) -> Result<Option<DateTime<Utc>>, Fail> {
    v.map(from_micros).transpose()
}

/// A count or size for an INTEGER column.
pub(crate) fn to_i64(what: &str, v: u64) -> Result<i64, Fail> {
    i64::try_from(v).map_err(|_| invalid(format!("{what} {v} is too large to store")))
}

/// A stored non-negative INTEGER back as u64.
pub(crate) fn to_u64(v: i64) -> u64 {
    // Columns only ever receive non-negative counts; a negative one would be damage, and
    // 0 is the least surprising reading of it.
    u64::try_from(v).unwrap_or(0)
}
