//! What a table looks like: its columns, how each maps to a [`Value`](qiao_core::Value),
//! and the checks that name what is missing.

use crate::ConnectorError;

/// How values of a column are read and bound. Decided once from the catalog at open, so
/// a type the connector cannot represent exactly fails there, not mid-stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColType {
    /// Boolean (PG bool, MySQL tinyint(1)).
    Bool,
    /// PG int2.
    Int16,
    /// PG int4.
    Int32,
    /// Any signed integer up to 64 bits (PG int8, all MySQL signed integers).
    Int64,
    /// MySQL unsigned integers: above i64::MAX they become decimals.
    UInt64,
    /// Exact decimal (numeric / decimal).
    Decimal,
    /// 4-byte float, read as the decimal of its shortest text.
    Float32,
    /// 8-byte float, read as the decimal of its shortest text.
    Float64,
    /// Plain text.
    Text,
    /// PG types read through `::text` and bound back with a cast (uuid, enums).
    TextCast,
    /// JSON document (PG json/jsonb, MySQL json).
    Json,
    /// Calendar date.
    Date,
    /// Timestamp without zone, read as UTC.
    Timestamp,
    /// Timestamp with zone (PG timestamptz, MySQL TIMESTAMP in a UTC session).
    TimestampTz,
    /// SQLite: the value's own storage class decides, the declared type hints.
    Sqlite(Hint),
}

/// What a SQLite declared type suggests about text and integer values stored in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hint {
    /// No hint: integers are Int, reals Decimal, text Text.
    Any,
    /// BOOL/BOOLEAN: integers 0/1 are booleans.
    Bool,
    /// DECIMAL/NUMERIC/MONEY: text and integers are exact decimals.
    Decimal,
    /// DATE: `YYYY-MM-DD` text.
    Date,
    /// DATETIME/TIMESTAMP: ISO text (UTC unless it carries an offset) or Unix seconds.
    DateTime,
    /// JSON text.
    Json,
}

impl ColType {
    /// Whether the column can order rows for keyset pagination.
    pub(crate) fn orderable(self) -> bool {
        !matches!(self, ColType::Json | ColType::Sqlite(Hint::Json))
    }
}

/// One column of a table as the catalog describes it.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    /// Name as stored in the catalog.
    pub name: String,
    /// The database's own type name, for messages and PG casts.
    pub db_type: String,
    /// How values are read and bound.
    pub ty: ColType,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// Select-list expression when the plain quoted name does not read it (PG casts).
    pub select: Option<String>,
}

/// A table's columns and unique keys.
#[derive(Debug, Clone)]
pub(crate) struct TableInfo {
    /// Table name as written in the config, for messages.
    pub display: String,
    /// Quoted, qualified name for SQL.
    pub quoted: String,
    /// Columns in table order.
    pub columns: Vec<Column>,
    /// Column sets of the primary key and unique indexes (without partial indexes).
    pub unique_keys: Vec<Vec<String>>,
}

/// A column the catalog lists with a type qiao cannot read exactly.
pub(crate) struct Unsupported {
    /// Column name.
    pub column: String,
    /// Its database type.
    pub db_type: String,
}

impl TableInfo {
    /// The column called `name`.
    pub(crate) fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Comma-separated column names, for messages.
    pub(crate) fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Looks up each of `names`, naming the first that is missing and what exists.
    pub(crate) fn require(
        &self,
        system: &str,
        role: &str,
        names: &[String],
    ) -> Result<Vec<Column>, ConnectorError> {
        names
            .iter()
            .map(|n| {
                self.column(n).cloned().ok_or_else(|| {
                    let near = self
                        .columns
                        .iter()
                        .find(|c| c.name.eq_ignore_ascii_case(n))
                        .map(|c| format!(" (did you mean `{}`?)", c.name))
                        .unwrap_or_default();
                    ConnectorError::Config(format!(
                        "{system}: {role} column `{n}` is not in table `{}`{near}; its columns \
                         are: {}. Fix the column name in the config.",
                        self.display,
                        self.column_list()
                    ))
                })
            })
            .collect()
    }

    /// Whether some unique index covers exactly the columns `keys` (in any order).
    pub(crate) fn has_unique(&self, keys: &[String]) -> bool {
        self.unique_keys
            .iter()
            .any(|u| u.len() == keys.len() && keys.iter().all(|k| u.iter().any(|c| c == k)))
    }

    /// The unique keys as text, for messages.
    pub(crate) fn unique_list(&self) -> String {
        if self.unique_keys.is_empty() {
            return "none".into();
        }
        self.unique_keys
            .iter()
            .map(|u| format!("({})", u.join(", ")))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The error for a table the catalog does not know, with the tables it does know.
pub(crate) fn missing_table(system: &str, table: &str, existing: &[String]) -> ConnectorError {
    let near = existing
        .iter()
        .find(|t| {
            t.eq_ignore_ascii_case(table)
                || t.rsplit('.')
                    .next()
                    .is_some_and(|s| s.eq_ignore_ascii_case(table))
        })
        .map(|t| format!(" (did you mean `{t}`?)"))
        .unwrap_or_default();
    let list = if existing.is_empty() {
        "none".to_string()
    } else {
        existing.join(", ")
    };
    ConnectorError::Config(format!(
        "{system}: table `{table}` does not exist{near}; tables there: {list}. Fix the table \
         name in the config or create the table."
    ))
}

/// The error for columns whose types cannot be read exactly.
pub(crate) fn unsupported(system: &str, table: &str, cols: &[Unsupported]) -> ConnectorError {
    let list = cols
        .iter()
        .map(|u| format!("{table}.{} ({})", u.column, u.db_type))
        .collect::<Vec<_>>()
        .join(", ");
    ConnectorError::Config(format!(
        "{system}: qiao cannot read column type of {list}; supported are integers, \
         decimals, floats, text, bool, date, timestamps and JSON. Fix: read the table \
         through a view that casts the column to text or drops it."
    ))
}

/// Splits `schema.table` into its optional schema and table parts.
pub(crate) fn split_name(table: &str) -> (Option<&str>, &str) {
    match table.split_once('.') {
        Some((s, t)) => (Some(s), t),
        None => (None, table),
    }
}
