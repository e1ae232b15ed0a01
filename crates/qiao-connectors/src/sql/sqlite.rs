//! SQLite: catalog, reading values by their storage class, and the upsert write.
//!
//! SQLite columns hold whatever was stored; the declared type only hints. A value is read
//! by its own storage class and the hint refines it (text in a DATE column is a date).
//! Positions keep the raw stored value, because SQLite orders integers and floats before
//! text and compares text as text: a timestamp cursor binds back as the very same text.
//! Written instants are UTC text `YYYY-MM-DD HH:MM:SS[.ffffff]` (SQLite's own style,
//! which sorts correctly as text); decimals are written as text to stay exact.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use futures::TryStreamExt;
use qiao_core::{Record, Value};
use rust_decimal::Decimal;
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteConnection, SqlitePool, SqliteRow, SqliteValueRef};
use sqlx::{AssertSqlSafe, Decode, Row, Sqlite, TypeInfo, ValueRef};

use super::checkpoint::Pos;
use super::dialect::{column_list, quote};
use super::schema::{self, ColType, Column, Hint, TableInfo};
use super::sink::Plan;
use super::{ReadError, SqlKind, errors, float_decimal};
use crate::ConnectorError;

/// SQLite's default limit of bound variables per statement (since 3.32).
const MAX_PARAMS: usize = 32_766;
/// Rows per INSERT.
const MAX_ROWS: usize = 500;

/// Reads the columns and unique keys of `table`.
pub(crate) async fn introspect(
    conn: &mut SqliteConnection,
    system: &str,
    table: &str,
) -> Result<TableInfo, ConnectorError> {
    let db = |e: sqlx::Error| errors::connector_error(system, table, &e);
    let rows =
        sqlx::query("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?) ORDER BY cid")
            .bind(table)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
    if rows.is_empty() {
        let existing: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') \
             AND name NOT LIKE 'sqlite_%' ORDER BY name LIMIT 100",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        return Err(schema::missing_table(system, table, &existing));
    }
    let mut columns = Vec::with_capacity(rows.len());
    let mut pk: Vec<(i64, String)> = Vec::new();
    for row in &rows {
        let name: String = row.try_get(0).map_err(db)?;
        let declared: String = row
            .try_get::<Option<String>, _>(1)
            .map_err(db)?
            .unwrap_or_default();
        let notnull: i64 = row.try_get(2).map_err(db)?;
        let pk_pos: i64 = row.try_get(3).map_err(db)?;
        if pk_pos > 0 {
            pk.push((pk_pos, name.clone()));
        }
        columns.push(Column {
            ty: ColType::Sqlite(hint(&declared)),
            db_type: declared,
            nullable: notnull == 0 && pk_pos == 0,
            name,
            select: None,
        });
    }
    pk.sort();
    let mut unique_keys = Vec::new();
    if !pk.is_empty() {
        unique_keys.push(pk.into_iter().map(|(_, n)| n).collect());
    }
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM pragma_index_list(?) WHERE \"unique\" = 1 AND partial = 0",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    for index in indexes {
        let cols: Vec<Option<String>> =
            sqlx::query_scalar("SELECT name FROM pragma_index_info(?) ORDER BY seqno")
                .bind(&index)
                .fetch_all(&mut *conn)
                .await
                .map_err(db)?;
        // An expression column has no name; such an index cannot serve ON CONFLICT(cols).
        if let Some(cols) = cols.into_iter().collect::<Option<Vec<_>>>() {
            unique_keys.push(cols);
        }
    }
    Ok(TableInfo {
        display: table.to_string(),
        quoted: quote(SqlKind::Sqlite, table),
        columns,
        unique_keys,
    })
}

/// What a declared type suggests, by SQLite's own substring rules.
fn hint(declared: &str) -> Hint {
    let t = declared.to_ascii_uppercase();
    if t.contains("BOOL") {
        Hint::Bool
    } else if t.contains("DATETIME") || t.contains("TIMESTAMP") {
        Hint::DateTime
    } else if t.contains("DATE") {
        Hint::Date
    } else if t.contains("DEC") || t.contains("NUMERIC") || t.contains("MONEY") {
        Hint::Decimal
    } else if t.contains("JSON") {
        Hint::Json
    } else {
        Hint::Any
    }
}

/// Reads ISO-8601 text `YYYY-MM-DD[ T]HH:MM[:SS[.fraction]][Z|±HH[:MM]]` (SQLite's own
/// style and RFC 3339): with an offset as given, without one as UTC. Hand-written because
/// it runs for every timestamp of every row and trying several chrono formats in turn
/// cost more than the rest of the row.
fn parse_datetime(s: &str) -> Option<DateTime<FixedOffset>> {
    let b = s.trim().as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let d = b.get(r)?;
        d.iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    if b.len() < 16
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b' ' | b'T' | b't')
        || b[13] != b':'
    {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let (hour, minute) = (num(11..13)?, num(14..16)?);
    let mut i = 16;
    let (mut second, mut nanos) = (0, 0);
    if b.get(i) == Some(&b':') {
        second = num(i + 1..i + 3)?;
        i += 3;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                if i - start < 9 {
                    nanos = nanos * 10 + u32::from(b[i] - b'0');
                }
                i += 1;
            }
            let digits = (i - start).min(9);
            if digits == 0 {
                return None;
            }
            nanos *= 10u32.pow(9 - digits as u32);
        }
    }
    let time = chrono::NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    let naive = NaiveDateTime::new(date, time);
    let rest = &b[i..];
    let offset = match rest {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), tail @ ..] => {
            let (h, m) = match tail {
                [h1, h2] => (num_of(&[*h1, *h2])?, 0),
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => {
                    (num_of(&[*h1, *h2])?, num_of(&[*m1, *m2])?)
                }
                _ => return None,
            };
            let secs = (h * 3600 + m * 60) as i32;
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    let tz = FixedOffset::east_opt(offset)?;
    naive.and_local_timezone(tz).single()
}

/// Two ASCII digits as a number.
fn num_of(d: &[u8; 2]) -> Option<u32> {
    (d[0].is_ascii_digit() && d[1].is_ascii_digit())
        .then(|| u32::from(d[0] - b'0') * 10 + u32::from(d[1] - b'0'))
}

/// The storage class of a stored value.
enum Class {
    Null,
    Int,
    Real,
    Text,
    Blob,
}

fn class(raw: &SqliteValueRef<'_>) -> Class {
    if raw.is_null() {
        return Class::Null;
    }
    match raw.type_info().name() {
        "INTEGER" => Class::Int,
        "REAL" => Class::Real,
        "TEXT" => Class::Text,
        _ => Class::Blob,
    }
}

/// Reads column `i` as a value (refined by the hint) and as its raw position value.
fn decode(
    row: &SqliteRow,
    i: usize,
    col: &Column,
    want_pos: bool,
) -> Result<(Value, Option<Pos>), String> {
    let hint = match col.ty {
        ColType::Sqlite(h) => h,
        _ => Hint::Any,
    };
    let err = |e: sqlx::error::BoxDynError| e.to_string();
    let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
    Ok(match class(&raw) {
        Class::Null => (Value::Null, want_pos.then_some(Pos::Null)),
        Class::Int => {
            let n = <i64 as Decode<Sqlite>>::decode(raw).map_err(err)?;
            let v = match hint {
                Hint::Bool => Value::Bool(n != 0),
                Hint::Decimal => Value::Decimal(Decimal::from(n)),
                Hint::DateTime => DateTime::from_timestamp(n, 0)
                    .map_or(Value::Int(n), |t| Value::DateTime(t.fixed_offset())),
                _ => Value::Int(n),
            };
            (v, want_pos.then_some(Pos::Int(n)))
        }
        Class::Real => {
            let f = <f64 as Decode<Sqlite>>::decode(raw).map_err(err)?;
            let d = float_decimal(f.to_string())
                .ok_or_else(|| format!("float {f} has no exact decimal"))?;
            (Value::Decimal(d), want_pos.then_some(Pos::Real(f)))
        }
        Class::Text => {
            let s = <&str as Decode<Sqlite>>::decode(raw).map_err(err)?;
            // Text that does not parse under its hint stays text: SQLite allows it, and a
            // later validation rule names it better than a failed read would.
            let v = match hint {
                Hint::Date => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                    .ok()
                    .map(Value::Date),
                Hint::DateTime => parse_datetime(s).map(Value::DateTime),
                Hint::Decimal => s.trim().parse::<Decimal>().ok().map(Value::Decimal),
                Hint::Json => serde_json::from_str::<serde_json::Value>(s)
                    .ok()
                    .map(|j| Value::from_json(&j)),
                Hint::Bool => match s.trim().to_ascii_lowercase().as_str() {
                    "true" => Some(Value::Bool(true)),
                    "false" => Some(Value::Bool(false)),
                    _ => None,
                },
                Hint::Any => None,
            }
            .unwrap_or_else(|| Value::Text(s.to_string()));
            (v, want_pos.then(|| Pos::Text(s.to_string())))
        }
        Class::Blob => {
            return Err("holds a BLOB; qiao reads no binary data".to_string());
        }
    })
}

/// Runs one page query, appending records to `out`; returns the last row's raw position.
pub(crate) async fn fetch(
    pool: &SqlitePool,
    sql: &str,
    binds: &[(&Pos, &Column)],
    cols: &[Column],
    names: &[String],
    pos_cols: &[usize],
    out: &mut Vec<Record>,
) -> Result<Option<Vec<Pos>>, ReadError> {
    let mut q = sqlx::query(AssertSqlSafe(sql.to_string()));
    for (p, _) in binds {
        q = match p {
            Pos::Null => q.bind(None::<i64>),
            Pos::Bool(b) => q.bind(*b),
            Pos::Int(i) => q.bind(*i),
            Pos::Real(f) => q.bind(*f),
            Pos::Text(s) => q.bind(s.clone()),
            other => {
                return Err(ReadError::Value(format!(
                    "position value {other:?} was not written by a SQLite source"
                )));
            }
        };
    }
    let mut rows = q.fetch(pool);
    let mut last_row = None;
    while let Some(row) = rows.try_next().await? {
        let mut record = super::new_record(cols.len());
        for (i, col) in cols.iter().enumerate() {
            let (v, _) = decode(&row, i, col, false).map_err(|e| {
                ReadError::Value(format!("column {} ({}): {e}", col.name, col.db_type))
            })?;
            record.fields.insert(names[i].clone(), v);
        }
        out.push(record);
        last_row = Some(row);
    }
    let Some(row) = last_row else {
        return Ok(None);
    };
    let mut pos = Vec::with_capacity(pos_cols.len());
    for &i in pos_cols {
        let (_, p) = decode(&row, i, &cols[i], true).map_err(ReadError::Value)?;
        pos.push(p.unwrap_or(Pos::Null));
    }
    Ok(Some(pos))
}

/// Binds a record value: decimals, dates and instants as text SQLite sorts correctly.
fn bind_value<'q>(
    q: Query<'q, Sqlite, SqliteArguments>,
    v: &Value,
) -> Query<'q, Sqlite, SqliteArguments> {
    match v {
        Value::Null => q.bind(None::<String>),
        Value::Bool(b) => q.bind(*b),
        Value::Int(i) => q.bind(*i),
        Value::Decimal(d) => q.bind(d.to_string()),
        Value::Text(s) => q.bind(s.clone()),
        Value::Date(d) => q.bind(d.format("%Y-%m-%d").to_string()),
        Value::DateTime(t) => q.bind(t.naive_utc().format("%Y-%m-%d %H:%M:%S%.f").to_string()),
        Value::List(_) | Value::Map(_) => q.bind(v.to_json().to_string()),
    }
}

/// Applies a plan in one transaction: multi-row upserts, then deletes by key.
pub(crate) async fn write(
    pool: &SqlitePool,
    table: &TableInfo,
    plan: &Plan<'_>,
) -> Result<(), sqlx::Error> {
    let kind = SqlKind::Sqlite;
    let mut tx = pool.begin().await?;
    let keys = column_list(kind, plan.key_names.iter().map(String::as_str));
    for group in &plan.groups {
        let names: Vec<&str> = group.cols.iter().map(|c| c.name.as_str()).collect();
        let rest: Vec<String> = names
            .iter()
            .filter(|n| !plan.key_names.iter().any(|k| k == *n))
            .map(|n| quote(kind, n))
            .collect();
        // Rows whose values are all unchanged are left alone, so a batch delivered again
        // writes nothing.
        let tail = if rest.is_empty() {
            format!(" ON CONFLICT ({keys}) DO NOTHING")
        } else {
            format!(
                " ON CONFLICT ({keys}) DO UPDATE SET {} WHERE {}",
                rest.iter()
                    .map(|c| format!("{c} = excluded.{c}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                rest.iter()
                    .map(|c| format!("{}.{c} IS NOT excluded.{c}", table.quoted))
                    .collect::<Vec<_>>()
                    .join(" OR ")
            )
        };
        let head = format!(
            "INSERT INTO {} ({}) VALUES ",
            table.quoted,
            column_list(kind, names.iter().copied())
        );
        let row_ph = format!("({})", vec!["?"; names.len()].join(", "));
        let per = (MAX_PARAMS / names.len().max(1)).clamp(1, MAX_ROWS);
        for chunk in group.rows.chunks(per) {
            let mut sql = head.clone();
            for (i, _) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&row_ph);
            }
            sql.push_str(&tail);
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
    let per = (MAX_PARAMS / plan.key_names.len().max(1)).clamp(1, MAX_ROWS);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_parse_with_and_without_offset() {
        let t = parse_datetime("2024-03-01 08:00:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2024-03-01T08:00:00+00:00");
        let t = parse_datetime("2024-03-01T08:00:00.5+08:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2024-03-01T08:00:00.500+08:00");
        let t = parse_datetime("2024-03-01 08:00:00.123456789Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2024-03-01T08:00:00.123456789+00:00");
        let t = parse_datetime("2024-03-01 08:00-0530").unwrap();
        assert_eq!(t.to_rfc3339(), "2024-03-01T08:00:00-05:30");
        for bad in [
            "yesterday",
            "2024-02-30 00:00:00",
            "2024-03-01 25:00:00",
            "2024-03-01 08:00:00.",
            "2024-03-01 08:00:00 junk",
        ] {
            assert!(parse_datetime(bad).is_none(), "{bad}");
        }
        assert_eq!(hint("DECIMAL(12,2)"), Hint::Decimal);
        assert_eq!(hint("datetime"), Hint::DateTime);
        assert_eq!(hint("DATE"), Hint::Date);
    }
}
