//! The table source: keyset pagination over (cursor, key...), one query per batch.

use std::sync::Arc;

use async_trait::async_trait;
use qiao_core::record::key_of;
use qiao_core::{Change, Key, Record, Value};

use super::checkpoint::{Checkpoint, Pos};
use super::dialect::{Params, quote, tuple_after};
use super::schema::{Column, TableInfo};
use super::{Pool, ReadError, SourceOptions, SqlKind, errors, mysql, pg, sqlite};
use crate::{Batch, ConnectorError, Source};

/// Rows per page when listing keys.
const KEY_PAGE: usize = 50_000;

/// Which rows the next query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Rows whose (nullable) cursor is NULL, in key order: read once, before the rest,
    /// because no "after" comparison can ever reach them.
    NullCursor,
    /// Rows in (cursor, key) order, or key order without a cursor.
    Main,
}

/// What does not change while a table is read; shared with prefetching tasks.
struct Shape {
    system: String,
    kind: SqlKind,
    table: TableInfo,
    /// All columns, in select order.
    cols: Vec<Column>,
    names: Vec<String>,
    key_names: Vec<String>,
    /// Indices into `cols`.
    keys: Vec<usize>,
    cursor: Option<usize>,
    batch_size: usize,
    select_list: String,
}

/// One page read: its changes and the position of its last row.
struct Page {
    changes: Vec<Change>,
    last: Option<Vec<Pos>>,
}

/// A page being read ahead in the background while the engine works on the last one.
struct Prefetch {
    handle: tokio::task::JoinHandle<Result<Page, ConnectorError>>,
}

/// A table read in batches.
///
/// After handing out a full batch it starts reading the next page in the background, so
/// the database, the decoding and the engine's work on the previous batch overlap. At
/// most two batches are in memory; when caught up nothing runs in the background.
pub(crate) struct SqlSource {
    shape: Arc<Shape>,
    pool: Pool,
    /// Position after the last row handed out.
    pos: Option<Checkpoint>,
    phase: Phase,
    prefetch: Option<Prefetch>,
}

impl Drop for SqlSource {
    fn drop(&mut self) {
        if let Some(p) = self.prefetch.take() {
            p.handle.abort();
        }
    }
}

impl SqlSource {
    /// Connects, checks the table, key and cursor columns, and reads the checkpoint.
    pub(crate) async fn open(opts: SourceOptions) -> Result<SqlSource, ConnectorError> {
        let SourceOptions {
            system,
            kind,
            url,
            table,
            key_columns,
            cursor,
            checkpoint,
            batch_size,
        } = opts;
        if key_columns.is_empty() {
            return Err(ConnectorError::Config(format!(
                "{system}: table `{table}` has no key columns configured. Fix: list the \
                 columns that identify a row (usually the primary key)."
            )));
        }
        let (pool, info) = super::connect(&system, kind, &url, &table).await?;
        let key_cols = info.require(&system, "key", &key_columns)?;
        let cursor_col = match &cursor {
            Some(c) => Some(
                info.require(&system, "cursor", std::slice::from_ref(c))?
                    .remove(0),
            ),
            None => None,
        };
        for c in key_cols.iter().chain(cursor_col.iter()) {
            if !c.ty.orderable() {
                return Err(ConnectorError::Config(format!(
                    "{system}: column `{}` of table `{table}` is {} and cannot order rows. Fix: \
                     choose key and cursor columns of number, text, date or timestamp type.",
                    c.name, c.db_type
                )));
            }
        }
        if !info.has_unique(&key_columns) {
            tracing::warn!(
                system = %system,
                table = %table,
                "no unique index on the key columns ({}); rows sharing a key may be skipped \
                 at batch boundaries; unique keys: {}",
                key_columns.join(", "),
                info.unique_list()
            );
        }
        let cols = info.columns.clone();
        let index = |name: &str| cols.iter().position(|c| c.name == name);
        let keys: Vec<usize> = key_columns.iter().filter_map(|k| index(k)).collect();
        let cursor_idx = cursor.as_deref().and_then(index);
        let pos = match &checkpoint {
            Some(text) => Some(Checkpoint::parse(
                &system,
                &table,
                text,
                cursor.is_some(),
                key_columns.len(),
            )?),
            None => None,
        };
        let nullable_cursor = cursor_col.as_ref().is_some_and(|c| c.nullable);
        let phase = match &pos {
            _ if !nullable_cursor => Phase::Main,
            None => Phase::NullCursor,
            Some(cp) if cp.cursor == Some(Pos::Null) => Phase::NullCursor,
            Some(_) => Phase::Main,
        };
        let select_list = select_list(kind, &cols);
        let shape = Shape {
            names: cols.iter().map(|c| c.name.clone()).collect(),
            system,
            kind,
            table: info,
            cols,
            key_names: key_columns,
            keys,
            cursor: cursor_idx,
            batch_size: batch_size.max(1),
            select_list,
        };
        Ok(SqlSource {
            shape: Arc::new(shape),
            pool,
            pos,
            phase,
            prefetch: None,
        })
    }
}

impl Shape {
    /// Reads the page after `pos` in `phase` and turns its rows into changes.
    async fn read_page(
        &self,
        pool: &Pool,
        phase: Phase,
        pos: Option<&Checkpoint>,
    ) -> Result<Page, ConnectorError> {
        let mut records = Vec::with_capacity(self.batch_size.min(100_000));
        let pos_cols: Vec<usize> = self.cursor.iter().chain(&self.keys).copied().collect();
        let (sql, binds) = self.page_query(phase, pos);
        let last = fetch_page(
            pool,
            &self.system,
            &self.table.display,
            &sql,
            &binds,
            &self.cols,
            &self.names,
            &pos_cols,
            &mut records,
        )
        .await?;
        let changes = records
            .into_iter()
            .map(|r| self.change(r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page { changes, last })
    }

    /// The page query for the current phase and position, and the values it binds.
    fn page_query<'a>(
        &'a self,
        phase: Phase,
        pos: Option<&'a Checkpoint>,
    ) -> (String, Vec<(&'a Pos, &'a Column)>) {
        let kind = self.kind;
        let mut sql = format!("SELECT {} FROM {}", self.select_list, self.table.quoted);
        let mut params = Params::new(kind);
        let mut binds = Vec::new();
        let key_cols: Vec<&Column> = self.keys.iter().map(|&i| &self.cols[i]).collect();
        let mut order: Vec<&Column> = Vec::with_capacity(key_cols.len() + 1);
        match (phase, self.cursor) {
            (Phase::NullCursor, Some(c)) => {
                sql.push_str(" WHERE ");
                sql.push_str(&quote(kind, &self.cols[c].name));
                sql.push_str(" IS NULL");
                if let Some(cp) = pos.filter(|cp| cp.cursor == Some(Pos::Null)) {
                    sql.push_str(" AND (");
                    for i in tuple_after(&mut sql, kind, &key_cols, &mut params) {
                        binds.push((&cp.key[i], key_cols[i]));
                    }
                    sql.push(')');
                }
                order.extend(&key_cols);
            }
            (_, Some(c)) => {
                let cursor_col = &self.cols[c];
                let mut cond = Vec::new();
                if cursor_col.nullable {
                    cond.push(format!("{} IS NOT NULL", quote(kind, &cursor_col.name)));
                }
                order.push(cursor_col);
                order.extend(&key_cols);
                let bound = pos.and_then(|cp| match &cp.cursor {
                    Some(Pos::Null) | None => None,
                    Some(cv) => Some((cv, &cp.key)),
                });
                if let Some((cv, key)) = bound {
                    let mut s = String::from("(");
                    for i in tuple_after(&mut s, kind, &order, &mut params) {
                        binds.push((if i == 0 { cv } else { &key[i - 1] }, order[i]));
                    }
                    s.push(')');
                    cond.push(s);
                }
                if !cond.is_empty() {
                    sql.push_str(" WHERE ");
                    sql.push_str(&cond.join(" AND "));
                }
            }
            (_, None) => {
                if let Some(cp) = pos {
                    sql.push_str(" WHERE ");
                    for i in tuple_after(&mut sql, kind, &key_cols, &mut params) {
                        binds.push((&cp.key[i], key_cols[i]));
                    }
                }
                order.extend(&key_cols);
            }
        }
        sql.push_str(" ORDER BY ");
        sql.push_str(&super::dialect::column_list(
            kind,
            order.iter().map(|c| c.name.as_str()),
        ));
        sql.push_str(&format!(" LIMIT {}", self.batch_size));
        (sql, binds)
    }

    /// Turns one read record into a change, refusing NULL keys (they would stop paging).
    /// Fields sit in column order, so key and cursor are taken by position; the key text
    /// is spelled as [`qiao_core::record::key_of`] spells it.
    fn change(&self, record: Record) -> Result<Change, ConnectorError> {
        use std::fmt::Write;
        let at = |i: usize| record.fields.get_index(i).map_or(&Value::Null, |(_, v)| v);
        let mut key = String::with_capacity(16);
        for (n, &k) in self.keys.iter().enumerate() {
            let v = at(k);
            if v == &Value::Null {
                return Err(ConnectorError::Config(format!(
                    "{}: table `{}` has a row whose key column `{}` is NULL; rows cannot be \
                     told apart or paged past. Fix: fill the key or read through a view \
                     that leaves such rows out.",
                    self.system, self.table.display, self.names[k]
                )));
            }
            if n > 0 {
                key.push('|');
            }
            // Writing to a String cannot fail.
            let _ = write!(key, "{v}");
        }
        let source_time = match self.cursor.map(at) {
            Some(Value::DateTime(t)) => Some(*t),
            _ => None,
        };
        let (system, table) = (&self.system, &self.table.display);
        let mut origin = String::with_capacity(system.len() + table.len() + key.len() + 6);
        origin.push_str(system);
        origin.push(' ');
        origin.push_str(table);
        origin.push_str(" key=");
        origin.push_str(&key);
        let mut change = Change::upsert(key, record);
        change.source_time = source_time;
        change.origin = Some(origin);
        Ok(change)
    }
}

/// The select list: quoted names, with PG casts where needed.
pub(crate) fn select_list(kind: SqlKind, cols: &[Column]) -> String {
    cols.iter()
        .map(|c| {
            let q = quote(kind, &c.name);
            match &c.select {
                Some(expr) => format!("{expr} AS {q}"),
                None => q,
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs one page query on any kind of pool.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn fetch_page(
    pool: &Pool,
    system: &str,
    table: &str,
    sql: &str,
    binds: &[(&Pos, &Column)],
    cols: &[Column],
    names: &[String],
    pos_cols: &[usize],
    out: &mut Vec<Record>,
) -> Result<Option<Vec<Pos>>, ConnectorError> {
    let r = match pool {
        Pool::Pg(p) => pg::fetch(p, sql, binds, cols, names, pos_cols, out).await,
        Pool::My(p) => mysql::fetch(p, sql, binds, cols, names, pos_cols, out).await,
        Pool::Lite(p) => sqlite::fetch(p, sql, binds, cols, names, pos_cols, out).await,
    };
    r.map_err(|e| match e {
        ReadError::Db(e) => errors::connector_error(system, table, &e),
        ReadError::Value(m) => ConnectorError::Config(format!(
            "{system}: reading table `{table}`: {m}. Fix: correct the row, or read the table \
             through a view that converts the column"
        )),
    })
}

/// Lists every key of a table, paging in key order so memory holds one page of rows.
pub(crate) async fn all_keys(
    pool: &Pool,
    system: &str,
    kind: SqlKind,
    table: &TableInfo,
    key_names: &[String],
) -> Result<Vec<Key>, ConnectorError> {
    let key_cols = table.require(system, "key", key_names)?;
    let refs: Vec<&Column> = key_cols.iter().collect();
    let base = format!(
        "SELECT {} FROM {}",
        select_list(kind, &key_cols),
        table.quoted
    );
    let order = format!(
        " ORDER BY {} LIMIT {KEY_PAGE}",
        super::dialect::column_list(kind, key_names.iter().map(String::as_str))
    );
    let pos_cols: Vec<usize> = (0..key_cols.len()).collect();
    let mut keys = Vec::new();
    let mut page = Vec::with_capacity(KEY_PAGE);
    let mut last: Option<Vec<Pos>> = None;
    loop {
        let mut sql = base.clone();
        let mut binds = Vec::new();
        if let Some(pos) = &last {
            sql.push_str(" WHERE ");
            let mut params = Params::new(kind);
            for i in tuple_after(&mut sql, kind, &refs, &mut params) {
                binds.push((&pos[i], refs[i]));
            }
        }
        sql.push_str(&order);
        page.clear();
        let next = fetch_page(
            pool,
            system,
            &table.display,
            &sql,
            &binds,
            &key_cols,
            key_names,
            &pos_cols,
            &mut page,
        )
        .await?;
        keys.extend(page.iter().map(|r| key_of(r, key_names)));
        if page.len() < KEY_PAGE || next.is_none() {
            return Ok(keys);
        }
        last = next;
    }
}

#[async_trait]
impl Source for SqlSource {
    async fn next_batch(&mut self) -> Result<Option<Batch>, ConnectorError> {
        loop {
            let page = match self.prefetch.take() {
                Some(p) => p.handle.await.map_err(|e| {
                    ConnectorError::Transport(format!(
                        "{}: reading ahead in table `{}` stopped: {e}; will retry",
                        self.shape.system, self.shape.table.display
                    ))
                })??,
                None => {
                    self.shape
                        .read_page(&self.pool, self.phase, self.pos.as_ref())
                        .await?
                }
            };
            let Some(mut last) = page.last else {
                if self.phase == Phase::NullCursor {
                    self.phase = Phase::Main;
                    continue;
                }
                return Ok(None);
            };
            let full = page.changes.len() >= self.shape.batch_size;
            if self.phase == Phase::NullCursor && !full {
                self.phase = Phase::Main;
            }
            let cursor = self.shape.cursor.map(|_| last.remove(0));
            let cp = Checkpoint { cursor, key: last };
            let text = cp.to_text();
            self.pos = Some(cp);
            if full {
                let (shape, pool, phase, pos) = (
                    Arc::clone(&self.shape),
                    self.pool.clone(),
                    self.phase,
                    self.pos.clone(),
                );
                let handle =
                    tokio::spawn(async move { shape.read_page(&pool, phase, pos.as_ref()).await });
                self.prefetch = Some(Prefetch { handle });
            }
            return Ok(Some(Batch {
                changes: page.changes,
                checkpoint: Some(text),
            }));
        }
    }

    async fn keys(&mut self) -> Result<Vec<Key>, ConnectorError> {
        let s = &self.shape;
        all_keys(&self.pool, &s.system, s.kind, &s.table, &s.key_names).await
    }
}
