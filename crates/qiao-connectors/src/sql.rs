//! SQL tables (PostgreSQL, MySQL/MariaDB, SQLite) as source and sink.
//!
//! The source streams a table in constant memory with keyset pagination: one query per
//! batch, ordered by the cursor column (if any) and the key columns, continuing after the
//! last row read. Its checkpoint is the JSON of that row's cursor and key values.
//!
//! The sink applies a batch in one transaction: the last change per key wins, upserts go
//! in through `ON CONFLICT` / `ON DUPLICATE KEY` (PostgreSQL through `COPY` into a staging
//! table), deletes by key. Applying the same batch twice leaves the table as once.
//!
//! Type mapping: integers → `Int`; numeric/decimal → `Decimal` exactly; floats → `Decimal`
//! of their shortest text; text → `Text`; bool and MySQL `tinyint(1)` → `Bool`; date →
//! `Date`; timestamps → `DateTime`, where a timestamp without zone (PG `timestamp`, MySQL
//! `DATETIME`, SQLite text without offset) is read as UTC and written as UTC; JSON →
//! `Map`/`List`. SQLite keeps money exact only in TEXT columns (its NUMERIC affinity turns
//! long decimals into floats), so the sink writes decimals there as text.

use std::time::Duration;

use qiao_core::Record;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{ConnectOptions, Connection};

use crate::{ConnectorError, Sink, Source};

mod checkpoint;
mod dialect;
mod errors;
mod mysql;
mod pg;
mod pg_sink;
mod schema;
mod sink;
mod source;
mod sqlite;

use schema::TableInfo;

/// Which SQL database a system is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlKind {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
    /// SQLite file.
    Sqlite,
}

impl SqlKind {
    /// Reads a kind from config text: `postgres`/`postgresql`, `mysql`/`mariadb`, `sqlite`.
    pub fn parse(s: &str) -> Option<SqlKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" | "pg" => Some(SqlKind::Postgres),
            "mysql" | "mariadb" => Some(SqlKind::Mysql),
            "sqlite" | "sqlite3" => Some(SqlKind::Sqlite),
            _ => None,
        }
    }

    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            SqlKind::Postgres => "PostgreSQL",
            SqlKind::Mysql => "MySQL/MariaDB",
            SqlKind::Sqlite => "SQLite",
        }
    }
}

/// How to read a table.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// System name, for messages and record origins.
    pub system: String,
    /// Database kind.
    pub kind: SqlKind,
    /// Connection URL (secrets already resolved; never logged).
    pub url: String,
    /// Table or view, optionally `schema.table`.
    pub table: String,
    /// Columns that identify a row.
    pub key_columns: Vec<String>,
    /// Column that grows on every insert and update (e.g. `updated_at`), for incremental
    /// reads; without it the table is read in key order.
    pub cursor: Option<String>,
    /// Saved position from an earlier run; `None` reads the whole table.
    pub checkpoint: Option<String>,
    /// Rows per batch.
    pub batch_size: usize,
}

/// How to write a table.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// System name, for messages.
    pub system: String,
    /// Database kind.
    pub kind: SqlKind,
    /// Connection URL (secrets already resolved; never logged).
    pub url: String,
    /// Target table, optionally `schema.table`.
    pub table: String,
    /// Columns that identify a row; a primary key or unique index must cover exactly them.
    pub key_columns: Vec<String>,
}

/// Opens a table as a source, checking that it, its key and cursor columns exist.
pub async fn open_source(opts: SourceOptions) -> Result<Box<dyn Source>, ConnectorError> {
    Ok(Box::new(source::SqlSource::open(opts).await?))
}

/// Opens a table as a sink, checking that it exists and has a unique key on the key columns.
pub async fn open_sink(opts: SinkOptions) -> Result<Box<dyn Sink>, ConnectorError> {
    Ok(Box::new(sink::SqlSink::open(opts).await?))
}

/// A connection pool of one of the three kinds.
#[derive(Clone)]
pub(crate) enum Pool {
    /// PostgreSQL.
    Pg(PgPool),
    /// MySQL / MariaDB.
    My(MySqlPool),
    /// SQLite.
    Lite(SqlitePool),
}

/// Connections per pool: a source reads with one, a sink writes with one; a spare covers
/// `keys()` running beside them.
const POOL_SIZE: u32 = 3;
/// How long opening may wait for the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a read or write waits for a pooled connection before reporting a transport
/// error (the pool retries refused connections until then).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why reading a page failed, before the table name is added.
pub(crate) enum ReadError {
    /// The database failed.
    Db(sqlx::Error),
    /// A value could not be read or bound; the text names the column.
    Value(String),
}

impl From<sqlx::Error> for ReadError {
    fn from(e: sqlx::Error) -> Self {
        ReadError::Db(e)
    }
}

/// The URL without user and password, for messages.
pub(crate) fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            // The last `@` ends the user info even when a password holds `/` or `?`.
            let host_path = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            let host_path = host_path.split('?').next().unwrap_or_default();
            format!("{scheme}://{host_path}")
        }
        None => url.split('?').next().unwrap_or_default().to_string(),
    }
}

/// Connects once to check the server and read the catalog, then builds a lazy pool that
/// reconnects by itself. A refused or timed-out connection is a transport error.
pub(crate) async fn connect(
    system: &str,
    kind: SqlKind,
    url: &str,
    table: &str,
) -> Result<(Pool, TableInfo), ConnectorError> {
    let bad_url = |e: sqlx::Error| {
        ConnectorError::Config(format!(
            "{system}: the {} URL `{}` is not valid: {e}. Fix the url of system {system}.",
            kind.name(),
            redact(url)
        ))
    };
    let unreachable = |e: String| {
        ConnectorError::Transport(format!(
            "{system}: cannot connect to {} at {}: {e}. Check that the server runs and the \
             url, user and password of system {system} are right; will retry",
            kind.name(),
            redact(url)
        ))
    };
    let failed = |e: sqlx::Error| {
        if errors::is_transient(&e) {
            unreachable(errors::describe(&e))
        } else {
            ConnectorError::Config(format!(
                "{system}: {} at {} refused the connection: {}. Fix the url, user, password \
                 or database of system {system}.",
                kind.name(),
                redact(url),
                errors::describe(&e)
            ))
        }
    };
    macro_rules! open {
        ($opts:expr, $pool:expr, $variant:ident, $introspect:path) => {{
            let opts = $opts;
            let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, opts.connect())
                .await
                .map_err(|_| unreachable(format!("no answer within {CONNECT_TIMEOUT:?}")))?
                .map_err(failed)?;
            let info = $introspect(&mut conn, system, table).await?;
            // The check connection is not needed any more; a failed goodbye changes nothing.
            let _ = conn.close().await;
            let pool = $pool
                .max_connections(POOL_SIZE)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_lazy_with(opts);
            (Pool::$variant(pool), info)
        }};
    }
    Ok(match kind {
        SqlKind::Postgres => {
            let opts: PgConnectOptions = url.parse().map_err(bad_url)?;
            open!(opts, PgPoolOptions::new(), Pg, pg::introspect)
        }
        SqlKind::Mysql => {
            let opts: MySqlConnectOptions = url.parse().map_err(bad_url)?;
            // A server without strict mode would cut a too-long value or store 0 for bad
            // input with only a warning; in qiao's own sessions such values are errors.
            let strict = MySqlPoolOptions::new().after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::raw_sql("SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')")
                        .execute(conn)
                        .await
                        .map(|_| ())
                })
            });
            open!(opts, strict, My, mysql::introspect)
        }
        SqlKind::Sqlite => {
            let opts: SqliteConnectOptions = url.parse().map_err(bad_url)?;
            if !opts.get_filename().exists() {
                return Err(ConnectorError::Config(format!(
                    "{system}: the SQLite file {} does not exist. Fix the url of system \
                     {system} or create the database.",
                    opts.get_filename().display()
                )));
            }
            open!(opts, SqlitePoolOptions::new(), Lite, sqlite::introspect)
        }
    })
}

/// An empty record with room for `n` fields.
pub(crate) fn new_record(n: usize) -> Record {
    let mut r = Record::default();
    r.fields.reserve(n);
    r
}

/// The decimal of a float's shortest text, so 0.1 reads as 0.1 and not as its binary
/// approximation. `None` for NaN, infinities and magnitudes beyond a decimal's range.
pub(crate) fn float_decimal(text: String) -> Option<rust_decimal::Decimal> {
    use std::str::FromStr;
    rust_decimal::Decimal::from_str_exact(&text)
        .ok()
        .or_else(|| rust_decimal::Decimal::from_str(&text).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_drops_credentials_and_params() {
        assert_eq!(
            redact("postgres://u:secret@db:5432/crm?sslmode=require"),
            "postgres://db:5432/crm"
        );
        assert_eq!(redact("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
        assert_eq!(redact("sqlite:a.db?mode=ro"), "sqlite:a.db");
        assert_eq!(redact("mysql://u:pa/s?s@db/x"), "mysql://db/x");
    }

    #[test]
    fn kinds_parse() {
        assert_eq!(SqlKind::parse("MariaDB"), Some(SqlKind::Mysql));
        assert_eq!(SqlKind::parse("postgres"), Some(SqlKind::Postgres));
        assert_eq!(SqlKind::parse("sqlite"), Some(SqlKind::Sqlite));
        assert_eq!(SqlKind::parse("oracle"), None);
    }

    #[test]
    fn floats_read_as_their_shortest_decimal() {
        assert_eq!(
            float_decimal(0.1f64.to_string()),
            Some("0.1".parse().unwrap())
        );
        assert_eq!(
            float_decimal(1.5f32.to_string()),
            Some("1.5".parse().unwrap())
        );
        assert_eq!(float_decimal(f64::NAN.to_string()), None);
    }
}
