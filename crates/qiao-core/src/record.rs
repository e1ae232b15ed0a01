//! The record model: typed values, records and the changes sources emit.

use chrono::{DateTime, FixedOffset, NaiveDate};
use indexmap::IndexMap;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One typed value. Money, quantities and rates are always `Decimal`, never floats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "t", content = "v", rename_all = "snake_case")]
pub enum Value {
    /// Absent or SQL NULL.
    #[default]
    Null,
    /// true / false.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// An exact decimal (money, quantity, rate).
    Decimal(Decimal),
    /// Unicode text.
    Text(String),
    /// A calendar date without time.
    Date(NaiveDate),
    /// An instant with its UTC offset.
    DateTime(DateTime<FixedOffset>),
    /// A list, e.g. invoice lines (each a `Map`).
    List(Vec<Value>),
    /// A nested record.
    Map(IndexMap<String, Value>),
}

impl Value {
    /// The type name used in error messages and the data dictionary.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "integer",
            Value::Decimal(_) => "decimal",
            Value::Text(_) => "text",
            Value::Date(_) => "date",
            Value::DateTime(_) => "datetime",
            Value::List(_) => "list",
            Value::Map(_) => "map",
        }
    }

    /// True for `Null` and for empty or blank text.
    pub fn is_blank(&self) -> bool {
        match self {
            Value::Null => true,
            Value::Text(s) => s.trim().is_empty(),
            _ => false,
        }
    }

    /// The text of a `Text` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// Converts a JSON value: numbers with a fraction become exact decimals (parsed from
    /// their text, never through f64), strings stay text.
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else {
                    let text = n.to_string();
                    text.parse::<Decimal>()
                        .or_else(|_| Decimal::from_scientific(&text))
                        .map(Value::Decimal)
                        .unwrap_or(Value::Text(text))
                }
            }
            serde_json::Value::String(s) => Value::Text(s.clone()),
            serde_json::Value::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => Value::Map(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// Converts to plain JSON for display and for JSON sinks. Decimals become strings so
    /// that no consumer reads them as floats.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Decimal(d) => J::String(d.to_string()),
            Value::Text(s) => J::String(s.clone()),
            Value::Date(d) => J::String(d.format("%Y-%m-%d").to_string()),
            Value::DateTime(t) => J::String(t.to_rfc3339()),
            Value::List(l) => J::Array(l.iter().map(Value::to_json).collect()),
            Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => Ok(()),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Decimal(d) => write!(f, "{d}"),
            Value::Text(s) => f.write_str(s),
            Value::Date(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            Value::DateTime(t) => write!(f, "{}", t.to_rfc3339()),
            Value::List(_) | Value::Map(_) => write!(f, "{}", self.to_json()),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<Decimal> for Value {
    fn from(d: Decimal) -> Self {
        Value::Decimal(d)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

/// One entity instance as named fields in a stable order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Record {
    /// Field name → value, in the order the source or mapping produced them.
    pub fields: IndexMap<String, Value>,
}

impl Record {
    /// An empty record.
    pub fn new() -> Self {
        Self::default()
    }
    /// The value of a field, `Null` when absent.
    pub fn get(&self, name: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.fields.get(name).unwrap_or(&NULL)
    }
    /// Sets a field, keeping its position if it exists.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<Value>) {
        self.fields.insert(name.into(), value.into());
    }
    /// Builder form of [`Record::set`].
    pub fn with(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.set(name, value);
        self
    }
    /// Reads a JSON object into a record.
    pub fn from_json(v: &serde_json::Value) -> Option<Record> {
        match Value::from_json(v) {
            Value::Map(fields) => Some(Record { fields }),
            _ => None,
        }
    }
    /// Plain JSON object of this record.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.fields
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
        )
    }
}

/// A record key as text: a single key field's value, or several joined by `|`.
pub type Key = String;

/// What happened to a record at its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Insert or update: the record is the new state.
    Upsert,
    /// The record is gone; only its key fields are meaningful.
    Delete,
}

/// A record observed at a source, on its way through a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Upsert or delete.
    pub op: Op,
    /// The record's key in the shape the change is currently in.
    pub key: Key,
    /// The record (for deletes: at least the key fields).
    pub record: Record,
    /// When the source says the change happened, if it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_time: Option<DateTime<FixedOffset>>,
    /// Where in its source the change came from (file and line, table and cursor), for
    /// error messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

impl Change {
    /// An upsert of `record` under `key`.
    pub fn upsert(key: impl Into<Key>, record: Record) -> Self {
        Change {
            op: Op::Upsert,
            key: key.into(),
            record,
            source_time: None,
            origin: None,
        }
    }
    /// A delete of `key`.
    pub fn delete(key: impl Into<Key>, record: Record) -> Self {
        Change {
            op: Op::Delete,
            ..Change::upsert(key, record)
        }
    }
}

/// Builds the key text of `record` from its key fields.
pub fn key_of(record: &Record, key_fields: &[String]) -> Key {
    let mut out = String::new();
    for (i, f) in key_fields.iter().enumerate() {
        if i > 0 {
            out.push('|');
        }
        out.push_str(&record.get(f).to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers_with_fraction_are_exact_decimals() {
        let v: serde_json::Value = serde_json::from_str(r#"{"amount": 100.50, "n": 3}"#).unwrap();
        let r = Record::from_json(&v).unwrap();
        assert_eq!(r.get("amount"), &Value::Decimal("100.50".parse().unwrap()));
        assert_eq!(r.get("n"), &Value::Int(3));
        assert_eq!(r.to_json()["amount"], serde_json::json!("100.50"));
    }

    #[test]
    fn key_joins_fields() {
        let r = Record::new().with("a", 1i64).with("b", "x");
        assert_eq!(key_of(&r, &["a".into(), "b".into()]), "1|x");
    }
}
