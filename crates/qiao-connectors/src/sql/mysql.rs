//! MySQL / MariaDB: catalog, reading rows, binding values, and the upsert write.
//!
//! The session runs in UTC (the driver sets `time_zone = '+00:00'`), so `TIMESTAMP`
//! columns read and write true instants; `DATETIME` has no zone and is taken as UTC.

use chrono::{NaiveDate, NaiveDateTime, Utc};
use futures::TryStreamExt;
use qiao_core::{Record, Value};
use rust_decimal::Decimal;
use sqlx::mysql::{MySqlArguments, MySqlConnection, MySqlPool, MySqlRow};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, MySql, Row};

use super::checkpoint::Pos;
use super::dialect::{column_list, quote};
use super::schema::{self, ColType, Column, TableInfo, Unsupported};
use super::sink::Plan;
use super::{ReadError, SqlKind, errors, float_decimal};
use crate::ConnectorError;

/// Placeholders one MySQL statement may carry.
const MAX_PARAMS: usize = 65_535;
/// Rows per INSERT: large enough to amortize the round trip, small enough for the
/// default 16 MiB packet with ordinary rows.
const MAX_ROWS: usize = 2_000;

/// Reads the columns and unique keys of `table` (optionally `database.table`).
pub(crate) async fn introspect(
    conn: &mut MySqlConnection,
    system: &str,
    table: &str,
) -> Result<TableInfo, ConnectorError> {
    let (db_name, name) = schema::split_name(table);
    let db = |e: sqlx::Error| errors::connector_error(system, table, &e);
    let rows = sqlx::query(
        "SELECT CAST(COLUMN_NAME AS CHAR), CAST(DATA_TYPE AS CHAR), CAST(COLUMN_TYPE AS CHAR), \
                CAST(IS_NULLABLE AS CHAR) \
         FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? \
         ORDER BY ORDINAL_POSITION",
    )
    .bind(db_name)
    .bind(name)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    if rows.is_empty() {
        let existing: Vec<String> = sqlx::query_scalar(
            "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) ORDER BY 1 LIMIT 100",
        )
        .bind(db_name)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        return Err(schema::missing_table(system, table, &existing));
    }
    let text = |row: &MySqlRow, i: usize| -> Result<String, ConnectorError> {
        row.try_get_unchecked::<Option<String>, _>(i)
            .map(Option::unwrap_or_default)
            .map_err(db)
    };
    let mut columns = Vec::with_capacity(rows.len());
    let mut bad = Vec::new();
    for row in &rows {
        let name = text(row, 0)?;
        let data_type = text(row, 1)?.to_ascii_lowercase();
        let column_type = text(row, 2)?.to_ascii_lowercase();
        let nullable = text(row, 3)? == "YES";
        let unsigned = column_type.contains("unsigned");
        let ty = match data_type.as_str() {
            "tinyint" if column_type.starts_with("tinyint(1)") => ColType::Bool,
            "bool" | "boolean" => ColType::Bool,
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" if unsigned => {
                ColType::UInt64
            }
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => ColType::Int64,
            "decimal" | "numeric" => ColType::Decimal,
            "float" => ColType::Float32,
            "double" | "real" => ColType::Float64,
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum"
            | "set" => ColType::Text,
            "json" => ColType::Json,
            "date" => ColType::Date,
            "datetime" => ColType::Timestamp,
            "timestamp" => ColType::TimestampTz,
            _ => {
                bad.push(Unsupported {
                    column: name,
                    db_type: column_type,
                });
                continue;
            }
        };
        columns.push(Column {
            name,
            db_type: column_type,
            ty,
            nullable,
            select: None,
        });
    }
    if !bad.is_empty() {
        return Err(schema::unsupported(system, table, &bad));
    }
    let idx = sqlx::query(
        "SELECT CAST(INDEX_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR) \
         FROM information_schema.STATISTICS \
         WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND NON_UNIQUE = 0 \
         ORDER BY INDEX_NAME, SEQ_IN_INDEX",
    )
    .bind(db_name)
    .bind(name)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let mut unique_keys: Vec<(String, Vec<String>)> = Vec::new();
    for row in &idx {
        let (index, column) = (text(row, 0)?, text(row, 1)?);
        match unique_keys.last_mut() {
            Some((i, cols)) if *i == index => cols.push(column),
            _ => unique_keys.push((index, vec![column])),
        }
    }
    Ok(TableInfo {
        display: table.to_string(),
        quoted: super::dialect::quote_table(SqlKind::Mysql, table),
        columns,
        unique_keys: unique_keys.into_iter().map(|(_, c)| c).collect(),
    })
}

fn decode(row: &MySqlRow, i: usize, col: &Column) -> Result<Value, sqlx::Error> {
    fn get<'r, T: sqlx::Decode<'r, MySql> + sqlx::Type<MySql>>(
        row: &'r MySqlRow,
        i: usize,
    ) -> Result<Option<T>, sqlx::Error> {
        row.try_get::<Option<T>, _>(i)
    }
    let float = |text: String| {
        float_decimal(text.clone())
            .map(Value::Decimal)
            .ok_or_else(|| sqlx::Error::Decode(format!("float {text} has no exact decimal").into()))
    };
    Ok(match col.ty {
        ColType::Bool => get::<bool>(row, i)?.map_or(Value::Null, Value::Bool),
        ColType::Int16 | ColType::Int32 | ColType::Int64 => {
            get::<i64>(row, i)?.map_or(Value::Null, Value::Int)
        }
        ColType::UInt64 => match get::<u64>(row, i)? {
            Some(u) => i64::try_from(u).map_or(Value::Decimal(Decimal::from(u)), Value::Int),
            None => Value::Null,
        },
        ColType::Decimal => get::<Decimal>(row, i)?.map_or(Value::Null, Value::Decimal),
        ColType::Float32 => match get::<f32>(row, i)? {
            Some(f) => float(f.to_string())?,
            None => Value::Null,
        },
        ColType::Float64 => match get::<f64>(row, i)? {
            Some(f) => float(f.to_string())?,
            None => Value::Null,
        },
        // Text arrives as bytes whatever its collation; the driver's type check would
        // refuse binary collations and ENUM/SET, so the text is taken as it comes.
        ColType::Text | ColType::TextCast | ColType::Sqlite(_) => row
            .try_get_unchecked::<Option<&str>, _>(i)?
            .map_or(Value::Null, |s| Value::Text(s.to_string())),
        ColType::Json => match row.try_get_unchecked::<Option<&str>, _>(i)? {
            Some(s) => {
                let j: serde_json::Value =
                    serde_json::from_str(s).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                Value::from_json(&j)
            }
            None => Value::Null,
        },
        ColType::Date => get::<NaiveDate>(row, i)?.map_or(Value::Null, Value::Date),
        ColType::Timestamp => get::<NaiveDateTime>(row, i)?
            .map_or(Value::Null, |t| Value::DateTime(t.and_utc().fixed_offset())),
        ColType::TimestampTz => get::<chrono::DateTime<Utc>>(row, i)?
            .map_or(Value::Null, |t| Value::DateTime(t.fixed_offset())),
    })
}

/// Binds a position value as the type of `col`.
fn bind_pos<'q>(
    q: Query<'q, MySql, MySqlArguments>,
    pos: &Pos,
    col: &Column,
) -> Result<Query<'q, MySql, MySqlArguments>, String> {
    let mismatch = || {
        format!(
            "position value {pos:?} does not fit column {} ({})",
            col.name, col.db_type
        )
    };
    Ok(match (col.ty, pos) {
        (ColType::Bool, Pos::Bool(b)) => q.bind(*b),
        (ColType::Int16 | ColType::Int32 | ColType::Int64 | ColType::UInt64, Pos::Int(i)) => {
            q.bind(*i)
        }
        (ColType::UInt64 | ColType::Decimal, Pos::Decimal(d)) => q.bind(*d),
        (ColType::Decimal, Pos::Int(i)) => q.bind(Decimal::from(*i)),
        (ColType::Float32, p) => q.bind(p.as_f64().ok_or_else(mismatch)? as f32),
        (ColType::Float64, p) => q.bind(p.as_f64().ok_or_else(mismatch)?),
        (ColType::Text, Pos::Text(s)) => q.bind(s.clone()),
        (ColType::Date, Pos::Date(d)) => q.bind(*d),
        (ColType::Timestamp, Pos::DateTime(t)) => q.bind(t.naive_utc()),
        (ColType::TimestampTz, Pos::DateTime(t)) => q.bind(t.with_timezone(&Utc)),
        _ => return Err(mismatch()),
    })
}

/// Runs one page query, appending records to `out`; returns the last row's position.
pub(crate) async fn fetch(
    pool: &MySqlPool,
    sql: &str,
    binds: &[(&Pos, &Column)],
    cols: &[Column],
    names: &[String],
    pos_cols: &[usize],
    out: &mut Vec<Record>,
) -> Result<Option<Vec<Pos>>, ReadError> {
    let mut q = sqlx::query(AssertSqlSafe(sql.to_string()));
    for (p, c) in binds {
        q = bind_pos(q, p, c).map_err(ReadError::Value)?;
    }
    let mut rows = q.fetch(pool);
    let start = out.len();
    while let Some(row) = rows.try_next().await? {
        let mut record = super::new_record(cols.len());
        for (i, col) in cols.iter().enumerate() {
            let v = decode(&row, i, col).map_err(|e| {
                ReadError::Value(format!("column {} ({}): {e}", col.name, col.db_type))
            })?;
            record.fields.insert(names[i].clone(), v);
        }
        out.push(record);
    }
    Ok(super::pg::last_position(&out[start..], names, pos_cols))
}

/// Binds a record value; the session is UTC, so instants go as naive UTC.
fn bind_value<'q>(
    q: Query<'q, MySql, MySqlArguments>,
    v: &Value,
) -> Query<'q, MySql, MySqlArguments> {
    match v {
        Value::Null => q.bind(None::<&str>),
        Value::Bool(b) => q.bind(*b),
        Value::Int(i) => q.bind(*i),
        Value::Decimal(d) => q.bind(*d),
        Value::Text(s) => q.bind(s.as_str()),
        Value::Date(d) => q.bind(*d),
        Value::DateTime(t) => q.bind(t.naive_utc()),
        Value::List(_) | Value::Map(_) => q.bind(v.to_json().to_string()),
    }
}

/// Applies a plan in one transaction: multi-row upserts, then deletes by key.
pub(crate) async fn write(
    pool: &MySqlPool,
    table: &TableInfo,
    plan: &Plan<'_>,
) -> Result<(), sqlx::Error> {
    let kind = SqlKind::Mysql;
    let mut tx = pool.begin().await?;
    for group in &plan.groups {
        let names: Vec<&str> = group.cols.iter().map(|c| c.name.as_str()).collect();
        let updates: Vec<String> = names
            .iter()
            .filter(|n| !plan.key_names.iter().any(|k| k == *n))
            .map(|n| format!("{0} = VALUES({0})", quote(kind, n)))
            .collect();
        let on_dup = if updates.is_empty() {
            let k = quote(kind, &plan.key_names[0]);
            format!("{k} = {k}")
        } else {
            updates.join(", ")
        };
        let head = format!(
            "INSERT INTO {} ({}) VALUES ",
            table.quoted,
            column_list(kind, names.iter().copied())
        );
        let row_ph = format!("({})", vec!["?"; names.len()].join(", "));
        let per = (MAX_PARAMS / names.len().max(1)).clamp(1, MAX_ROWS);
        for chunk in group.rows.chunks(per) {
            let mut sql = String::with_capacity(
                head.len() + chunk.len() * (row_ph.len() + 2) + on_dup.len() + 32,
            );
            sql.push_str(&head);
            for (i, _) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&row_ph);
            }
            sql.push_str(" ON DUPLICATE KEY UPDATE ");
            sql.push_str(&on_dup);
            let mut q = sqlx::query(AssertSqlSafe(sql)).persistent(chunk.len() == per);
            // Group records hold exactly the group's columns in order.
            for r in chunk {
                for v in r.fields.values() {
                    q = bind_value(q, v);
                }
            }
            q.execute(&mut *tx).await?;
        }
    }
    let nkeys = plan.key_names.len();
    let per = (MAX_PARAMS / nkeys.max(1)).clamp(1, MAX_ROWS);
    for chunk in plan.deletes.chunks(per) {
        let sql = super::sink::delete_sql(kind, &table.quoted, plan.key_names, chunk.len());
        let mut q = sqlx::query(AssertSqlSafe(sql)).persistent(chunk.len() == per);
        for r in chunk {
            for k in plan.key_names {
                q = bind_value(q, r.get(k));
            }
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await
}
