//! The few places where the three SQL dialects differ in text: identifier quoting and
//! parameter bind parameters. Everything else qiao writes is portable SQL.

use super::SqlKind;
use super::schema::{ColType, Column};

/// Quotes an identifier for `kind`, doubling the quote character inside it.
pub(crate) fn quote(kind: SqlKind, ident: &str) -> String {
    let q = match kind {
        SqlKind::Mysql => '`',
        SqlKind::Postgres | SqlKind::Sqlite => '"',
    };
    let mut out = String::with_capacity(ident.len() + 2);
    out.push(q);
    for ch in ident.chars() {
        if ch == q {
            out.push(q);
        }
        out.push(ch);
    }
    out.push(q);
    out
}

/// Quotes a possibly schema-qualified table name.
pub(crate) fn quote_table(kind: SqlKind, table: &str) -> String {
    match super::schema::split_name(table) {
        (Some(s), t) if kind != SqlKind::Sqlite => format!("{}.{}", quote(kind, s), quote(kind, t)),
        _ => quote(kind, table),
    }
}

/// Numbers bind parameters as the statement is written.
pub(crate) struct Params {
    kind: SqlKind,
    /// How many bind parameters were written so far.
    pub count: usize,
}

impl Params {
    /// A fresh counter for one statement.
    pub(crate) fn new(kind: SqlKind) -> Self {
        Params { kind, count: 0 }
    }

    /// Appends the next bind parameter for a value of column `col` to `sql`. PostgreSQL
    /// needs an explicit cast where the value travels as text (uuid, enums).
    pub(crate) fn push(&mut self, sql: &mut String, col: &Column) {
        use std::fmt::Write;
        self.count += 1;
        match self.kind {
            SqlKind::Postgres if col.ty == ColType::TextCast => {
                // Writing to a String cannot fail.
                let _ = write!(sql, "CAST(${} AS {})", self.count, col.db_type);
            }
            SqlKind::Postgres => {
                let _ = write!(sql, "${}", self.count);
            }
            SqlKind::Mysql | SqlKind::Sqlite => sql.push('?'),
        }
    }
}

/// Appends the condition "tuple of `cols` is after the bound values" and returns the
/// column index (into `cols`) of each bind parameter written, in order.
///
/// `(a, b) > (x, y)` is written as `a >= x AND (a > x OR b > y)`: portable across the
/// three dialects, and the leading `a >= x` lets every one of them use an index range.
pub(crate) fn tuple_after(
    sql: &mut String,
    kind: SqlKind,
    cols: &[&Column],
    params: &mut Params,
) -> Vec<usize> {
    let mut order = Vec::with_capacity(cols.len() * 2);
    let mut close = 0;
    for (i, col) in cols.iter().enumerate() {
        let name = quote(kind, &col.name);
        if i + 1 == cols.len() {
            sql.push_str(&name);
            sql.push_str(" > ");
            params.push(sql, col);
            order.push(i);
        } else {
            sql.push_str(&name);
            sql.push_str(" >= ");
            params.push(sql, col);
            sql.push_str(" AND (");
            sql.push_str(&name);
            sql.push_str(" > ");
            params.push(sql, col);
            sql.push_str(" OR ");
            order.push(i);
            order.push(i);
            close += 1;
        }
    }
    for _ in 0..close {
        sql.push(')');
    }
    order
}

/// Comma-separated quoted column names.
pub(crate) fn column_list<'a>(kind: SqlKind, names: impl IntoIterator<Item = &'a str>) -> String {
    names
        .into_iter()
        .map(|n| quote(kind, n))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str) -> Column {
        Column {
            name: name.into(),
            db_type: "int4".into(),
            ty: ColType::Int32,
            nullable: false,
            select: None,
        }
    }

    #[test]
    fn quoting_doubles_the_quote() {
        assert_eq!(quote(SqlKind::Postgres, r#"a"b"#), r#""a""b""#);
        assert_eq!(quote(SqlKind::Mysql, "a`b"), "`a``b`");
        assert_eq!(quote_table(SqlKind::Postgres, "s.t"), r#""s"."t""#);
    }

    #[test]
    fn tuple_after_nests_for_index_ranges() {
        let (a, b, c) = (col("a"), col("b"), col("c"));
        let mut sql = String::new();
        let mut p = Params::new(SqlKind::Postgres);
        let order = tuple_after(&mut sql, SqlKind::Postgres, &[&a, &b, &c], &mut p);
        assert_eq!(
            sql,
            r#""a" >= $1 AND ("a" > $2 OR "b" >= $3 AND ("b" > $4 OR "c" > $5))"#
        );
        assert_eq!(order, vec![0, 0, 1, 1, 2]);
        let mut sql = String::new();
        let mut p = Params::new(SqlKind::Mysql);
        let order = tuple_after(&mut sql, SqlKind::Mysql, &[&a], &mut p);
        assert_eq!(sql, "`a` > ?");
        assert_eq!(order, vec![0]);
    }
}
