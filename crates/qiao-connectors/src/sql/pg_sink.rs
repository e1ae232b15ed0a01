//! PostgreSQL write: `COPY` each group into a staging table that lives for the
//! transaction, then one `INSERT ... SELECT ... ON CONFLICT` into the target; deletes join
//! a staged key list. COPY moves rows at wire speed and the single INSERT lets the server
//! do the upsert in bulk.

use std::io::Write;

use qiao_core::{Record, Value};
use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, Postgres, Transaction};

use super::SqlKind;
use super::dialect::{column_list, quote};
use super::schema::{ColType, Column, TableInfo};
use super::sink::Plan;

/// COPY data is sent in pieces of about this size: the server parses one piece while
/// the next is being formatted, and a large batch is never held twice.
const SEND_AT: usize = 128 * 1024;

/// A failed write, with the batch index of the record COPY choked on when the server says.
pub(crate) struct PgWriteError {
    /// The database error.
    pub error: sqlx::Error,
    /// Index into the batch of the record at fault, if known.
    pub index: Option<usize>,
}

impl From<sqlx::Error> for PgWriteError {
    fn from(error: sqlx::Error) -> Self {
        PgWriteError { error, index: None }
    }
}

/// Appends `s` in COPY text format: backslash, tab, newline and carriage return escaped.
pub(crate) fn escape_into(buf: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    if !bytes
        .iter()
        .any(|b| matches!(b, b'\\' | b'\t' | b'\n' | b'\r'))
    {
        buf.extend_from_slice(bytes);
        return;
    }
    for &b in bytes {
        match b {
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            _ => buf.push(b),
        }
    }
}

/// Appends one value in COPY text format, as the column's input function reads it.
pub(crate) fn put_value(buf: &mut Vec<u8>, v: &Value, col: &Column) {
    // Writing into a Vec<u8> cannot fail, so the io::Result of write! is ignored.
    match v {
        Value::Null => buf.extend_from_slice(b"\\N"),
        Value::Bool(b) => buf.push(if *b { b't' } else { b'f' }),
        Value::Int(i) => {
            let _ = write!(buf, "{i}");
        }
        Value::Decimal(d) => {
            let _ = write!(buf, "{d}");
        }
        Value::Text(s) => escape_into(buf, s),
        Value::Date(d) => {
            let _ = write!(buf, "{d}");
        }
        Value::DateTime(t) => {
            // A column without zone gets the UTC wall time (PG would drop an offset);
            // a timestamptz gets the instant spelled in UTC.
            if col.ty == ColType::Timestamp {
                let _ = write!(buf, "{}", t.naive_utc());
            } else {
                let _ = write!(buf, "{}+00", t.naive_utc());
            }
        }
        Value::List(_) | Value::Map(_) => escape_into(buf, &v.to_json().to_string()),
    }
}

/// Streams `rows` (columns `cols`) into `stage` with COPY. With `in_order` the records'
/// fields are exactly `cols` in order (an upsert group), so values are taken by position
/// instead of by name lookup. On a data error the server names the line; it is mapped
/// back to the record's batch index.
async fn copy_rows(
    tx: &mut Transaction<'_, Postgres>,
    stage: &str,
    cols: &[&Column],
    rows: &[&Record],
    index: &[usize],
    in_order: bool,
) -> Result<(), PgWriteError> {
    let kind = SqlKind::Postgres;
    let sql = format!(
        "COPY {stage} ({}) FROM STDIN",
        column_list(kind, cols.iter().map(|c| c.name.as_str()))
    );
    let mut copy = tx.copy_in_raw(&sql).await?;
    let mut buf = Vec::with_capacity(SEND_AT + 64 * 1024);
    for r in rows {
        if in_order {
            for (i, (c, v)) in cols.iter().zip(r.fields.values()).enumerate() {
                if i > 0 {
                    buf.push(b'\t');
                }
                put_value(&mut buf, v, c);
            }
        } else {
            for (i, c) in cols.iter().enumerate() {
                if i > 0 {
                    buf.push(b'\t');
                }
                put_value(&mut buf, r.get(&c.name), c);
            }
        }
        buf.push(b'\n');
        if buf.len() >= SEND_AT {
            copy.send(std::mem::take(&mut buf)).await?;
            buf.reserve(SEND_AT + 64 * 1024);
        }
    }
    if !buf.is_empty() {
        copy.send(buf).await?;
    }
    copy.finish().await.map(|_| ()).map_err(|error| {
        let index = copy_line(&error).and_then(|l| index.get(l.checked_sub(1)?).copied());
        PgWriteError { error, index }
    })
}

/// The data line a COPY error is about ("COPY stage, line 3, column x: ...").
fn copy_line(err: &sqlx::Error) -> Option<usize> {
    let sqlx::Error::Database(db) = err else {
        return None;
    };
    let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
    let w = pg.r#where()?;
    let rest = &w[w.find(", line ")? + 7..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

async fn exec(tx: &mut Transaction<'_, Postgres>, sql: String) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut **tx)
        .await
        .map(|_| ())
}

/// The ON CONFLICT action: update the written non-key columns, but only where a value
/// differs, so a batch delivered again rewrites no rows (no dead tuples, no WAL, no
/// update triggers). numeric compares as text so that a change of scale (1.0 → 1.00)
/// still counts; json has no equality and compares as text too.
fn upsert_action(cols: &[&Column], keys: &[String]) -> String {
    let kind = SqlKind::Postgres;
    let rest: Vec<&Column> = cols
        .iter()
        .copied()
        .filter(|c| !keys.contains(&c.name))
        .collect();
    if rest.is_empty() {
        return "DO NOTHING".to_string();
    }
    let set: Vec<String> = rest
        .iter()
        .map(|c| format!("{0} = EXCLUDED.{0}", quote(kind, &c.name)))
        .collect();
    let side = |prefix: &str| {
        rest.iter()
            .map(|c| {
                let q = format!("{prefix}.{}", quote(kind, &c.name));
                match c.ty {
                    ColType::Decimal | ColType::Json => format!("{q}::text"),
                    _ => q,
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "DO UPDATE SET {} WHERE ({}) IS DISTINCT FROM ({})",
        set.join(", "),
        side("qiao_t"),
        side("EXCLUDED")
    )
}

/// Applies a plan in one transaction.
pub(crate) async fn write(
    pool: &PgPool,
    table: &TableInfo,
    plan: &Plan<'_>,
) -> Result<(), PgWriteError> {
    let kind = SqlKind::Postgres;
    let keys = column_list(kind, plan.key_names.iter().map(String::as_str));
    let mut tx = pool.begin().await?;
    for (g, group) in plan.groups.iter().enumerate() {
        let stage = format!("qiao_stage_{g}");
        let cols = column_list(kind, group.cols.iter().map(|c| c.name.as_str()));
        exec(
            &mut tx,
            format!(
                "CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {cols} FROM {} WITH NO DATA",
                table.quoted
            ),
        )
        .await?;
        copy_rows(
            &mut tx,
            &stage,
            &group.cols,
            &group.rows,
            &group.index,
            true,
        )
        .await?;
        let action = upsert_action(&group.cols, plan.key_names);
        exec(
            &mut tx,
            format!(
                "INSERT INTO {} AS qiao_t ({cols}) SELECT {cols} FROM {stage} \
                 ON CONFLICT ({keys}) {action}",
                table.quoted
            ),
        )
        .await?;
    }
    if !plan.deletes.is_empty() {
        let key_cols: Vec<&Column> = plan
            .key_names
            .iter()
            .filter_map(|k| table.column(k))
            .collect();
        exec(
            &mut tx,
            format!(
                "CREATE TEMP TABLE qiao_delete ON COMMIT DROP AS SELECT {keys} FROM {} WITH NO DATA",
                table.quoted
            ),
        )
        .await?;
        copy_rows(
            &mut tx,
            "qiao_delete",
            &key_cols,
            &plan.deletes,
            &plan.delete_index,
            false,
        )
        .await?;
        let join = plan
            .key_names
            .iter()
            .map(|k| format!("t.{0} = d.{0}", quote(kind, k)))
            .collect::<Vec<_>>()
            .join(" AND ");
        exec(
            &mut tx,
            format!(
                "DELETE FROM {} AS t USING qiao_delete AS d WHERE {join}",
                table.quoted
            ),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(ty: ColType) -> Column {
        Column {
            name: "c".into(),
            db_type: "x".into(),
            ty,
            nullable: true,
            select: None,
        }
    }

    #[test]
    fn copy_text_escapes_and_spells_types() {
        let mut buf = Vec::new();
        put_value(
            &mut buf,
            &Value::Text("a\tb\nc\\d\re".into()),
            &col(ColType::Text),
        );
        assert_eq!(buf, b"a\\tb\\nc\\\\d\\re");
        let cases = [
            (Value::Null, ColType::Text, "\\N"),
            (
                Value::Decimal("12345678901234.56".parse().unwrap()),
                ColType::Decimal,
                "12345678901234.56",
            ),
            (Value::Bool(true), ColType::Bool, "t"),
            (
                Value::DateTime("2024-03-01T08:00:00.5+08:00".parse().unwrap()),
                ColType::TimestampTz,
                "2024-03-01 00:00:00.500+00",
            ),
            (
                Value::DateTime("2024-03-01T08:00:00+08:00".parse().unwrap()),
                ColType::Timestamp,
                "2024-03-01 00:00:00",
            ),
        ];
        for (v, ty, want) in cases {
            let mut buf = Vec::new();
            put_value(&mut buf, &v, &col(ty));
            assert_eq!(String::from_utf8(buf).unwrap(), want);
        }
    }
}
