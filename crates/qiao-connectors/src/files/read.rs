//! What all three parsers share: the record reader interface and the step from a parsed
//! record to a [`Change`] (the `_op` field and the key check).

use super::error::{Problem, ReadError};
use super::{Encoding, Format, csv_in, jsonl_in, xml_in};
use qiao_core::record::key_of;
use qiao_core::{Change, Record, Value};
use std::io::Read;

/// The field that marks deletes in files.
pub(crate) const OP_FIELD: &str = "_op";

/// One record as parsed, before it becomes a change.
#[derive(Debug)]
pub(crate) struct RawRecord {
    /// The fields in file order.
    pub record: Record,
    /// The line where the record starts.
    pub line: u64,
}

/// A streaming reader of one file's records.
pub(crate) trait RecordReader: Send {
    /// The next record; `None` at the end of a sound file.
    fn next_record(&mut self) -> Result<Option<RawRecord>, ReadError>;
    /// SHA-256 (hex) of the raw bytes read so far.
    fn sha256_hex(&self) -> String;
}

/// How to parse a file.
#[derive(Debug, Clone)]
pub(crate) struct ParseOptions {
    /// Format.
    pub format: Format,
    /// Encoding.
    pub encoding: Encoding,
    /// CSV delimiter.
    pub delimiter: u8,
    /// XML record element.
    pub record_element: String,
}

/// Opens a reader of `raw` in the configured format.
pub(crate) fn open_reader<R: Read + Send + 'static>(
    raw: R,
    opts: &ParseOptions,
) -> Box<dyn RecordReader> {
    match opts.format {
        Format::Csv => Box::new(csv_in::CsvRecords::new(raw, opts.encoding, opts.delimiter)),
        Format::Jsonl => Box::new(jsonl_in::JsonlRecords::new(raw, opts.encoding)),
        Format::Xml => Box::new(xml_in::XmlRecords::new(
            raw,
            opts.encoding,
            opts.record_element.clone(),
        )),
    }
}

/// Turns a parsed record into a change: reads and removes `_op`, checks and builds the key.
pub(crate) fn to_change(
    raw: RawRecord,
    key_columns: &[String],
    file_name: &str,
    number: u64,
) -> Result<Change, Problem> {
    let RawRecord { mut record, line } = raw;
    let place = format!("line {line}");
    let delete = match record.fields.shift_remove(OP_FIELD) {
        None | Some(Value::Null) => false,
        Some(Value::Text(t)) => match t.trim().to_ascii_lowercase().as_str() {
            "" | "upsert" => false,
            "delete" => true,
            _ => {
                return Err(Problem::new(
                    place,
                    format!("field `{OP_FIELD}` is `{t}`"),
                    format!("`{OP_FIELD}` must be `upsert`, `delete` or empty"),
                ));
            }
        },
        Some(other) => {
            return Err(Problem::new(
                place,
                format!("field `{OP_FIELD}` is a {}", other.type_name()),
                format!("`{OP_FIELD}` must be the text `upsert`, `delete` or empty"),
            ));
        }
    };
    for col in key_columns {
        if record.get(col).is_blank() {
            let what = if record.fields.contains_key(col) {
                format!("key column `{col}` is empty")
            } else {
                format!("key column `{col}` is missing")
            };
            return Err(Problem::new(
                place,
                what,
                format!(
                    "every record needs a value for the key column(s) {}; fill it in, or fix \
                     the mapping's `key` if the column has another name",
                    key_columns.join(", ")
                ),
            ));
        }
    }
    let key = if key_columns.is_empty() {
        // Without key columns the position in the file is the only identity there is.
        format!("{file_name}#{number}")
    } else {
        key_of(&record, key_columns)
    };
    let mut change = if delete {
        Change::delete(key, record)
    } else {
        Change::upsert(key, record)
    };
    change.origin = Some(format!("{file_name}:{line}"));
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(r: Record) -> RawRecord {
        RawRecord { record: r, line: 7 }
    }

    #[test]
    fn op_field_makes_deletes_and_is_removed() {
        let keys = vec!["id".to_string()];
        let c = to_change(
            raw(Record::new().with("id", "1").with("_op", "delete")),
            &keys,
            "f.csv",
            1,
        )
        .unwrap();
        assert_eq!(c.op, qiao_core::Op::Delete);
        assert!(!c.record.fields.contains_key("_op"));
        assert_eq!(c.origin.as_deref(), Some("f.csv:7"));
        let err = to_change(raw(Record::new().with("id", "")), &keys, "f.csv", 1).unwrap_err();
        assert!(err.what.contains("key column `id` is empty"), "{err:?}");
        assert_eq!(err.place, "line 7");
    }
}
