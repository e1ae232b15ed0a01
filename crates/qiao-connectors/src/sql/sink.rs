//! The table sink: collapse a batch to the last change per key, then upsert and delete
//! in one transaction.

use std::collections::HashMap;

use async_trait::async_trait;
use qiao_core::record::key_of;
use qiao_core::{Change, Key, Op, Record, Value};

use super::dialect::quote;
use super::schema::{Column, TableInfo};
use super::{Pool, SinkOptions, SqlKind, errors, mysql, pg_sink, source, sqlite};
use crate::{ConnectorError, Sink, SinkError};

/// Upserts sharing one column list.
pub(crate) struct Group<'a> {
    /// Columns written, in the records' field order.
    pub cols: Vec<&'a Column>,
    /// The records.
    pub rows: Vec<&'a Record>,
    /// Batch index of each record, for errors.
    pub index: Vec<usize>,
}

/// What one batch does to the table after collapsing.
pub(crate) struct Plan<'a> {
    /// Key column names.
    pub key_names: &'a [String],
    /// Upserts by column list.
    pub groups: Vec<Group<'a>>,
    /// Records (at least their key fields) to delete.
    pub deletes: Vec<&'a Record>,
    /// Batch index of each delete.
    pub delete_index: Vec<usize>,
}

/// `DELETE ... WHERE key IN (...)` for `n` keys, with `?` bind parameters.
pub(crate) fn delete_sql(kind: SqlKind, table: &str, keys: &[String], n: usize) -> String {
    let mut sql = format!("DELETE FROM {table} WHERE ");
    if let [k] = keys {
        sql.push_str(&quote(kind, k));
        sql.push_str(" IN (");
        sql.push_str(&vec!["?"; n].join(", "));
        sql.push(')');
    } else {
        let one = format!(
            "({})",
            keys.iter()
                .map(|k| format!("{} = ?", quote(kind, k)))
                .collect::<Vec<_>>()
                .join(" AND ")
        );
        sql.push_str(&vec![one; n].join(" OR "));
    }
    sql
}

/// A table written in batches.
pub(crate) struct SqlSink {
    system: String,
    kind: SqlKind,
    pool: Pool,
    table: TableInfo,
    key_names: Vec<String>,
    /// Column name → index into `table.columns`.
    by_name: HashMap<String, usize>,
}

impl SqlSink {
    /// Connects and checks the table and its unique key.
    pub(crate) async fn open(opts: SinkOptions) -> Result<SqlSink, ConnectorError> {
        let SinkOptions {
            system,
            kind,
            url,
            table,
            key_columns,
        } = opts;
        if key_columns.is_empty() {
            return Err(ConnectorError::Config(format!(
                "{system}: table `{table}` has no key columns configured. Fix: list the \
                 columns of its primary key or a unique index."
            )));
        }
        let (pool, info) = super::connect(&system, kind, &url, &table).await?;
        info.require(&system, "key", &key_columns)?;
        if !info.has_unique(&key_columns) {
            return Err(ConnectorError::Config(format!(
                "{system}: table `{table}` has no primary key or unique index on exactly \
                 ({}), which upserts need; its unique keys: {}. Fix: add one, e.g. \
                 CREATE UNIQUE INDEX ON {} ({}), or configure the key columns of an existing one.",
                key_columns.join(", "),
                info.unique_list(),
                info.quoted,
                key_columns
                    .iter()
                    .map(|k| quote(kind, k))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let by_name = info
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        Ok(SqlSink {
            system,
            kind,
            pool,
            table: info,
            key_names: key_columns,
            by_name,
        })
    }

    fn record_error(&self, index: usize, change: &Change, what: String) -> SinkError {
        SinkError::Record {
            index,
            message: format!(
                "{}: record {} for table `{}`: {what}",
                self.system, change.key, self.table.display
            ),
        }
    }

    /// Keeps the last change per key (in batch order) and sorts upserts by column list.
    fn plan<'a>(&'a self, changes: &'a [Change]) -> Result<Plan<'a>, SinkError> {
        let mut keys: Vec<Key> = Vec::with_capacity(changes.len());
        let mut last: HashMap<&str, usize> = HashMap::with_capacity(changes.len());
        for (i, c) in changes.iter().enumerate() {
            for k in &self.key_names {
                if c.record.get(k) == &Value::Null {
                    return Err(self.record_error(
                        i,
                        c,
                        format!("key field `{k}` is missing or null. Fix: map a value to `{k}`"),
                    ));
                }
            }
            keys.push(key_of(&c.record, &self.key_names));
        }
        for (i, k) in keys.iter().enumerate() {
            last.insert(k.as_str(), i);
        }
        let mut plan = Plan {
            key_names: &self.key_names,
            groups: Vec::new(),
            deletes: Vec::new(),
            delete_index: Vec::new(),
        };
        for (i, c) in changes.iter().enumerate() {
            if last.get(keys[i].as_str()) != Some(&i) {
                continue;
            }
            if c.op == Op::Delete {
                plan.deletes.push(&c.record);
                plan.delete_index.push(i);
                continue;
            }
            let fields = &c.record.fields;
            let found = plan.groups.iter_mut().find(|g| {
                g.cols.len() == fields.len()
                    && g.cols
                        .iter()
                        .zip(fields.keys())
                        .all(|(col, f)| col.name == *f)
            });
            let group = match found {
                Some(g) => g,
                None => {
                    let mut cols = Vec::with_capacity(fields.len());
                    for f in fields.keys() {
                        let Some(&ci) = self.by_name.get(f) else {
                            return Err(self.record_error(
                                i,
                                c,
                                format!(
                                    "field `{f}` has no column; the table has: {}. Fix: map the \
                                     field to a column or add the column",
                                    self.table.column_list()
                                ),
                            ));
                        };
                        cols.push(&self.table.columns[ci]);
                    }
                    plan.groups.push(Group {
                        cols,
                        rows: Vec::new(),
                        index: Vec::new(),
                    });
                    // Just pushed, so the vector is not empty.
                    let n = plan.groups.len() - 1;
                    &mut plan.groups[n]
                }
            };
            group.rows.push(&c.record);
            group.index.push(i);
        }
        Ok(plan)
    }
}

#[async_trait]
impl Sink for SqlSink {
    async fn write(&mut self, changes: &[Change]) -> Result<(), SinkError> {
        if changes.is_empty() {
            return Ok(());
        }
        let plan = self.plan(changes)?;
        let fail = |e: &sqlx::Error| {
            errors::sink_error(&self.system, &self.table.display, changes.len(), e)
        };
        match &self.pool {
            Pool::Pg(p) => pg_sink::write(p, &self.table, &plan).await.map_err(|e| {
                match (fail(&e.error), e.index) {
                    (SinkError::Batch(m), Some(index)) => SinkError::Record {
                        index,
                        message: format!("record {}: {m}", changes[index].key),
                    },
                    (other, _) => other,
                }
            }),
            Pool::My(p) => mysql::write(p, &self.table, &plan)
                .await
                .map_err(|e| fail(&e)),
            Pool::Lite(p) => sqlite::write(p, &self.table, &plan)
                .await
                .map_err(|e| fail(&e)),
        }
    }

    async fn keys(&mut self) -> Result<Vec<Key>, ConnectorError> {
        source::all_keys(
            &self.pool,
            &self.system,
            self.kind,
            &self.table,
            &self.key_names,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_sql_single_and_composite() {
        assert_eq!(
            delete_sql(SqlKind::Mysql, "`t`", &["id".into()], 3),
            "DELETE FROM `t` WHERE `id` IN (?, ?, ?)"
        );
        assert_eq!(
            delete_sql(SqlKind::Sqlite, "\"t\"", &["a".into(), "b".into()], 2),
            "DELETE FROM \"t\" WHERE (\"a\" = ? AND \"b\" = ?) OR (\"a\" = ? AND \"b\" = ?)"
        );
    }
}
