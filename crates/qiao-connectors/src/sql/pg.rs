//! PostgreSQL: catalog, reading rows into values, binding positions.

use chrono::{NaiveDate, NaiveDateTime, Utc};
use futures::TryStreamExt;
use qiao_core::{Record, Value};
use rust_decimal::Decimal;
use sqlx::postgres::{PgArguments, PgConnection, PgPool, PgRow};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, Postgres, Row};

use super::checkpoint::Pos;
use super::dialect::quote;
use super::schema::{self, ColType, Column, TableInfo, Unsupported};
use super::{ReadError, SqlKind, errors, float_decimal};
use crate::ConnectorError;

/// Reads the columns and unique keys of `table` (optionally `schema.table`).
pub(crate) async fn introspect(
    conn: &mut PgConnection,
    system: &str,
    table: &str,
) -> Result<TableInfo, ConnectorError> {
    let quoted = super::dialect::quote_table(SqlKind::Postgres, table);
    let db = |e: sqlx::Error| errors::connector_error(system, table, &e);
    let rows = sqlx::query(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), \
                COALESCE(bt.typname, t.typname)::text, COALESCE(bt.typtype, t.typtype)::text, \
                format_type(COALESCE(bt.oid, t.oid), NULL), t.typtype = 'd', NOT a.attnotnull \
         FROM pg_attribute a \
         JOIN pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype \
         WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attnum",
    )
    .bind(&quoted)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    if rows.is_empty() {
        let existing: Vec<String> = sqlx::query_scalar(
            "SELECT CASE WHEN table_schema = current_schema() THEN table_name::text \
                    ELSE table_schema || '.' || table_name END \
             FROM information_schema.tables \
             WHERE table_schema NOT IN ('pg_catalog', 'information_schema') \
             ORDER BY 1 LIMIT 100",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        return Err(schema::missing_table(system, table, &existing));
    }
    let mut columns = Vec::with_capacity(rows.len());
    let mut bad = Vec::new();
    for row in &rows {
        let name: String = row.try_get(0).map_err(db)?;
        let full: String = row.try_get(1).map_err(db)?;
        let base: String = row.try_get(2).map_err(db)?;
        let kind: String = row.try_get(3).map_err(db)?;
        let base_full: String = row.try_get(4).map_err(db)?;
        let is_domain: bool = row.try_get(5).map_err(db)?;
        let nullable: bool = row.try_get(6).map_err(db)?;
        let ty = match base.as_str() {
            "bool" => ColType::Bool,
            "int2" => ColType::Int16,
            "int4" => ColType::Int32,
            "int8" => ColType::Int64,
            "numeric" => ColType::Decimal,
            "float4" => ColType::Float32,
            "float8" => ColType::Float64,
            "text" | "varchar" | "bpchar" | "name" | "citext" => ColType::Text,
            "uuid" => ColType::TextCast,
            "json" | "jsonb" => ColType::Json,
            "date" => ColType::Date,
            "timestamp" => ColType::Timestamp,
            "timestamptz" => ColType::TimestampTz,
            _ if kind == "e" => ColType::TextCast,
            _ => {
                bad.push(Unsupported {
                    column: name,
                    db_type: full,
                });
                continue;
            }
        };
        let quoted_name = quote(SqlKind::Postgres, &name);
        // Types the driver cannot decode directly travel as text; domains read as their
        // base type so the driver's type check accepts them.
        let select = match ty {
            ColType::TextCast | ColType::Json => Some(format!("{quoted_name}::text")),
            _ if is_domain => Some(format!("CAST({quoted_name} AS {base_full})")),
            _ => None,
        };
        let db_type = if is_domain { base_full } else { full };
        columns.push(Column {
            name,
            db_type,
            ty,
            nullable,
            select,
        });
    }
    if !bad.is_empty() {
        return Err(schema::unsupported(system, table, &bad));
    }
    let unique_keys: Vec<Vec<String>> = sqlx::query_scalar(
        "SELECT array_agg(a.attname::text ORDER BY k.ord) \
         FROM pg_index i \
         CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
         WHERE i.indrelid = to_regclass($1) AND i.indisunique \
           AND i.indpred IS NULL AND i.indexprs IS NULL \
         GROUP BY i.indexrelid",
    )
    .bind(&quoted)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    Ok(TableInfo {
        display: table.to_string(),
        quoted,
        columns,
        unique_keys,
    })
}

fn decode(row: &PgRow, i: usize, col: &Column) -> Result<Value, sqlx::Error> {
    fn get<'r, T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>>(
        row: &'r PgRow,
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
        ColType::Int16 => get::<i16>(row, i)?.map_or(Value::Null, |v| Value::Int(v.into())),
        ColType::Int32 => get::<i32>(row, i)?.map_or(Value::Null, |v| Value::Int(v.into())),
        ColType::Int64 | ColType::UInt64 => get::<i64>(row, i)?.map_or(Value::Null, Value::Int),
        ColType::Decimal => get::<Decimal>(row, i)?.map_or(Value::Null, Value::Decimal),
        ColType::Float32 => match get::<f32>(row, i)? {
            Some(f) => float(f.to_string())?,
            None => Value::Null,
        },
        ColType::Float64 => match get::<f64>(row, i)? {
            Some(f) => float(f.to_string())?,
            None => Value::Null,
        },
        ColType::Text | ColType::TextCast | ColType::Sqlite(_) => {
            get::<&str>(row, i)?.map_or(Value::Null, |s| Value::Text(s.to_string()))
        }
        ColType::Json => match get::<&str>(row, i)? {
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

/// Binds a position value to `q` as the type of `col`.
pub(crate) fn bind_pos<'q>(
    q: Query<'q, Postgres, PgArguments>,
    pos: &Pos,
    col: &Column,
) -> Result<Query<'q, Postgres, PgArguments>, String> {
    let mismatch = || {
        format!(
            "position value {pos:?} does not fit column {} ({})",
            col.name, col.db_type
        )
    };
    Ok(match (col.ty, pos) {
        (ColType::Bool, Pos::Bool(b)) => q.bind(*b),
        (ColType::Int16, Pos::Int(i)) => q.bind(i16::try_from(*i).map_err(|_| mismatch())?),
        (ColType::Int32, Pos::Int(i)) => q.bind(i32::try_from(*i).map_err(|_| mismatch())?),
        (ColType::Int64 | ColType::UInt64, Pos::Int(i)) => q.bind(*i),
        (ColType::Decimal, Pos::Decimal(d)) => q.bind(*d),
        (ColType::Decimal, Pos::Int(i)) => q.bind(Decimal::from(*i)),
        (ColType::Float32, p) => q.bind(p.as_f64().ok_or_else(mismatch)? as f32),
        (ColType::Float64, p) => q.bind(p.as_f64().ok_or_else(mismatch)?),
        (ColType::Text | ColType::TextCast, Pos::Text(s)) => q.bind(s.clone()),
        (ColType::Date, Pos::Date(d)) => q.bind(*d),
        (ColType::Timestamp, Pos::DateTime(t)) => q.bind(t.naive_utc()),
        (ColType::TimestampTz, Pos::DateTime(t)) => q.bind(t.with_timezone(&Utc)),
        _ => return Err(mismatch()),
    })
}

/// Runs one page query and appends its rows as records to `out`; returns the position
/// values (columns `pos_cols`) of the last row.
pub(crate) async fn fetch(
    pool: &PgPool,
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
    Ok(last_position(&out[start..], names, pos_cols))
}

/// The position of the last record, from its decoded values.
pub(crate) fn last_position(
    records: &[Record],
    names: &[String],
    pos_cols: &[usize],
) -> Option<Vec<Pos>> {
    let last = records.last()?;
    pos_cols
        .iter()
        .map(|&i| Pos::from_value(last.get(&names[i])))
        .collect()
}
