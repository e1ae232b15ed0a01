//! The source position: the cursor and key values of the last row read, typed so that
//! they bind back exactly as the database handed them out.

use chrono::{DateTime, FixedOffset, NaiveDate};
use qiao_core::Value;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ConnectorError;

/// One bound value of a position. Unlike [`Value`] it keeps SQLite's REAL as a float,
/// because SQLite compares a float with a float and a text with a text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "v", rename_all = "snake_case")]
pub(crate) enum Pos {
    /// SQL NULL (only for a nullable cursor: the rows read before any with a cursor).
    Null,
    /// Boolean.
    Bool(bool),
    /// Integer.
    Int(i64),
    /// A float as stored (SQLite REAL).
    Real(f64),
    /// Exact decimal (also floats of PG/MySQL, bound back through their shortest text).
    Decimal(Decimal),
    /// Text.
    Text(String),
    /// Date.
    Date(NaiveDate),
    /// Instant; bound as UTC (naive UTC for columns without zone).
    DateTime(DateTime<FixedOffset>),
}

impl Pos {
    /// The position value of a decoded PG/MySQL value; `None` for lists and maps, which
    /// cannot order rows (such columns are refused at open).
    pub(crate) fn from_value(v: &Value) -> Option<Pos> {
        Some(match v {
            Value::Null => Pos::Null,
            Value::Bool(b) => Pos::Bool(*b),
            Value::Int(i) => Pos::Int(*i),
            Value::Decimal(d) => Pos::Decimal(*d),
            Value::Text(s) => Pos::Text(s.clone()),
            Value::Date(d) => Pos::Date(*d),
            Value::DateTime(t) => Pos::DateTime(*t),
            Value::List(_) | Value::Map(_) => return None,
        })
    }

    /// The value as a float, for float columns.
    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self {
            Pos::Real(f) => Some(*f),
            Pos::Int(i) => Some(*i as f64),
            Pos::Decimal(d) => d.to_string().parse().ok(),
            _ => None,
        }
    }
}

/// Where a source resumes: after the row with this cursor and key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    /// Cursor value of the last row; absent when the source has no cursor column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Pos>,
    /// Key values of the last row, in key column order.
    pub key: Vec<Pos>,
}

impl Checkpoint {
    /// Parses a stored checkpoint and checks that it fits the configured columns.
    pub(crate) fn parse(
        system: &str,
        table: &str,
        text: &str,
        has_cursor: bool,
        key_len: usize,
    ) -> Result<Checkpoint, ConnectorError> {
        let cp: Checkpoint = serde_json::from_str(text).map_err(|e| {
            ConnectorError::Config(format!(
                "{system}: the saved position of table `{table}` is not readable ({e}); it was \
                 not written by this SQL source. Fix: reset the flow's checkpoint to reload."
            ))
        })?;
        if cp.cursor.is_some() != has_cursor || cp.key.len() != key_len {
            return Err(ConnectorError::Config(format!(
                "{system}: the saved position of table `{table}` was written for a different \
                 cursor/key configuration ({text}). Fix: reset the flow's checkpoint to reload \
                 the table, or restore the previous cursor and key columns."
            )));
        }
        Ok(cp)
    }

    /// The JSON text the engine stores.
    pub(crate) fn to_text(&self) -> String {
        // Serializing plain enums and vectors of them cannot fail; a float that JSON cannot
        // hold (NaN) is written as null by serde_json rather than failing.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trips_typed_values() {
        let cp = Checkpoint {
            cursor: Some(Pos::DateTime(
                DateTime::parse_from_rfc3339("2024-03-01T08:00:00.123456+00:00").unwrap(),
            )),
            key: vec![
                Pos::Decimal("12345678901234.56".parse().unwrap()),
                Pos::Real(0.1),
                Pos::Text("客户".into()),
            ],
        };
        let text = cp.to_text();
        assert_eq!(Checkpoint::parse("s", "t", &text, true, 3).unwrap(), cp);
        assert!(Checkpoint::parse("s", "t", &text, false, 3).is_err());
        let err = Checkpoint::parse("s", "t", "{", true, 3)
            .unwrap_err()
            .to_string();
        assert!(err.contains("table `t`"), "{err}");
    }
}
