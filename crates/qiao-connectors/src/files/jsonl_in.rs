//! JSON Lines: one JSON object per line, blank lines skipped, numbers kept exact.
//!
//! `serde_json` (without its `arbitrary_precision` feature, which would change number
//! handling for the whole workspace) reads every number with a fraction through `f64`, so
//! `12345678901234567.89` would arrive rounded. Values are therefore taken apart through
//! `RawValue`, which keeps each number's text, and numbers are parsed from that text.

use super::Encoding;
use super::MAX_RECORD_BYTES;
use super::error::{Problem, ReadError, too_large};
use super::read::{RawRecord, RecordReader};
use super::text::TextReader;
use qiao_core::{Record, Value};
use rust_decimal::Decimal;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;
use std::io::{BufRead, Read};

/// Nesting deeper than this is refused (serde_json stops at 128 anyway).
const MAX_DEPTH: usize = 128;

/// Records of a JSON Lines file.
pub(crate) struct JsonlRecords<R> {
    text: TextReader<R>,
    line: u64,
    buf: Vec<u8>,
}

impl<R: Read> JsonlRecords<R> {
    /// Reads `raw` as JSON Lines in `encoding`.
    pub fn new(raw: R, encoding: Encoding) -> Self {
        JsonlRecords {
            text: TextReader::new(raw, encoding),
            line: 0,
            buf: Vec::new(),
        }
    }

    /// Reads the next line into `buf` without ever holding more than the record limit.
    fn read_line(&mut self) -> Result<bool, ReadError> {
        self.buf.clear();
        self.line += 1;
        let mut any = false;
        loop {
            let chunk = self.text.fill_buf()?;
            if chunk.is_empty() {
                return Ok(any);
            }
            any = true;
            let (take, end) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i, true),
                None => (chunk.len(), false),
            };
            if self.buf.len() + take > MAX_RECORD_BYTES {
                return Err(too_large(self.line, "JSON line").into());
            }
            self.buf.extend_from_slice(&chunk[..take]);
            self.text.consume(take + usize::from(end));
            if end {
                return Ok(true);
            }
        }
    }
}

impl<R: Read + Send> RecordReader for JsonlRecords<R> {
    fn next_record(&mut self) -> Result<Option<RawRecord>, ReadError> {
        loop {
            if !self.read_line()? {
                return Ok(None);
            }
            let line = self.line;
            let text = std::str::from_utf8(&self.buf).map_err(|_| {
                Problem::new(
                    format!("line {line}"),
                    "the line is not valid text",
                    "save the file as UTF-8",
                )
            })?;
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let record = parse_object(text).map_err(|(column, what, fix)| {
                let place = match column {
                    Some(c) => format!("line {line}, column {c}"),
                    None => format!("line {line}"),
                };
                Problem::new(place, what, fix)
            })?;
            return Ok(Some(RawRecord { record, line }));
        }
    }

    fn sha256_hex(&self) -> String {
        self.text.sha256_hex()
    }
}

type LineError = (Option<usize>, String, String);

/// Parses one line that must hold one JSON object.
fn parse_object(text: &str) -> Result<Record, LineError> {
    let raw: &RawValue = serde_json::from_str(text).map_err(|e| {
        let mut msg = e.to_string();
        // The position is given in `place`; serde_json also appends it to its message.
        if let Some(i) = msg.rfind(" at line ") {
            msg.truncate(i);
        }
        (
            Some(e.column()),
            format!("invalid JSON: {msg}"),
            "each line must be one complete JSON object such as {\"id\": 1}; check quotes, \
             commas and brackets on this line (a JSON document spread over several lines is \
             not JSON Lines)"
                .to_string(),
        )
    })?;
    match exact_value(raw, 0) {
        Ok(Value::Map(fields)) => Ok(Record { fields }),
        Ok(other) => Err((
            None,
            format!("the line is a JSON {}, not an object", json_kind(&other)),
            "each line must be one JSON object such as {\"id\": 1, \"name\": \"…\"}".to_string(),
        )),
        Err(what) => Err((None, what, "fix the JSON on this line".to_string())),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Int(_) | Value::Decimal(_) => "number",
        Value::List(_) => "array",
        _ => "string",
    }
}

/// Converts a raw JSON value like `Value::from_json`, but keeps number text exact.
fn exact_value(raw: &RawValue, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!("JSON nested deeper than {MAX_DEPTH} levels"));
    }
    let text = raw.get();
    let bad = |e: serde_json::Error| format!("invalid JSON: {e}");
    match text.as_bytes().first() {
        Some(b'{') => {
            let Entries(entries) = serde_json::from_str(text).map_err(bad)?;
            let mut record = Record::new();
            for (k, v) in entries {
                if record.fields.contains_key(&k) {
                    return Err(format!("key `{k}` appears twice in one object"));
                }
                let value = exact_value(v, depth + 1)?;
                record.fields.insert(k, value);
            }
            Ok(Value::Map(record.fields))
        }
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_str(text).map_err(bad)?;
            items
                .into_iter()
                .map(|v| exact_value(v, depth + 1))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::List)
        }
        Some(b'"') => serde_json::from_str::<String>(text)
            .map(Value::Text)
            .map_err(bad),
        Some(b't') => Ok(Value::Bool(true)),
        Some(b'f') => Ok(Value::Bool(false)),
        Some(b'n') => Ok(Value::Null),
        _ => Ok(number(text)),
    }
}

/// A JSON number from its text: integers that fit are `Int`, others exact decimals; a
/// number no decimal can hold (such as `1e400`) stays text rather than being rounded.
fn number(text: &str) -> Value {
    if !text.contains(['.', 'e', 'E'])
        && let Ok(i) = text.parse::<i64>()
    {
        return Value::Int(i);
    }
    text.parse::<Decimal>()
        .or_else(|_| Decimal::from_scientific(text))
        .map(Value::Decimal)
        .unwrap_or_else(|_| Value::Text(text.to_string()))
}

/// The entries of a JSON object in file order, values still raw.
struct Entries<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Entries<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Entries<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, &'a RawValue>()? {
                    out.push((k, v));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_stay_exact_and_order_is_kept() {
        let r = parse_object(r#"{"b": 12345678901234567.89, "a": 100.50, "n": 3, "big": 99999999999999999999, "l": [{"x": 1e-2}]}"#).unwrap();
        let keys: Vec<_> = r.fields.keys().cloned().collect();
        assert_eq!(keys, ["b", "a", "n", "big", "l"]);
        assert_eq!(r.get("b").to_string(), "12345678901234567.89");
        assert_eq!(r.get("a").to_string(), "100.50");
        assert_eq!(r.get("n"), &Value::Int(3));
        assert_eq!(r.get("big").to_string(), "99999999999999999999");
        assert_eq!(r.get("l").to_string(), r#"[{"x":"0.01"}]"#);
    }

    #[test]
    fn bad_lines_are_named() {
        let mut r = JsonlRecords::new(&b"{\"a\":1}\n\n{\"a\": }\n"[..], Encoding::Utf8);
        assert!(r.next_record().unwrap().is_some());
        match r.next_record() {
            Err(ReadError::Bad(p)) => {
                assert!(p.place.starts_with("line 3, column"), "{p:?}");
                assert!(p.what.starts_with("invalid JSON"), "{p:?}");
            }
            other => panic!("{other:?}"),
        }
        let err = parse_object("[1,2]").unwrap_err();
        assert!(err.1.contains("array, not an object"));
        assert!(
            parse_object(r#"{"a":1,"a":2}"#)
                .unwrap_err()
                .1
                .contains("twice")
        );
    }
}
