//! Files as source and sink: CSV, JSON Lines, XML in a watched folder.
//!
//! # Source: a watched folder
//!
//! Files in `dir` whose name matches `object` (a pattern where `*` is any run of
//! characters and `?` one character) are processed one at a time, lowest name first, each
//! exactly once. Hidden files (`.name`) and names ending in `.tmp` or `.part` are never
//! picked up, so a writer should write under such a name and rename when done.
//!
//! Every file is read twice: a first streaming pass checks the whole structure in constant
//! memory (no records are kept) and computes the file's SHA-256; only a sound file is read
//! again to emit its records in batches. A file with a structural problem is moved to
//! `dir/failed/` with `<name>.reason.txt` beside it (what, where, how to fix), and
//! `next_batch` returns [`ConnectorError::BadInput`] for it; the next call goes on with the
//! next file. A finished file moves to `dir/done/` once the engine has committed the
//! checkpoint that covers its last record.
//!
//! The checkpoint is JSON `{"file", "size", "mtime", "sha256", "records"}`: after a crash a
//! half-processed file with the same identity resumes after the committed record.
//!
//! Values: CSV fields are text (empty → null); JSON Lines values keep their JSON types and
//! numbers with a fraction become exact decimals; XML is read as follows:
//! - every `record_element` element is one record; its attributes and child elements are
//!   its fields;
//! - a child element with only text is a text field (empty or `xsi:nil="true"`: null);
//! - a child element with children or attributes is a map of them (its own text, if any,
//!   under `_text`);
//! - a child element name that repeats under one parent becomes a list of the values;
//! - a wrapper whose children all have one name that is its singular (`lines`/`line`,
//!   `items`/`item`, `entries`/`entry`, `lineList`/`line`, `明细列表`/`明细`) or `item`
//!   is a list even with one child, so invoice lines are always a list of maps;
//! - a document with a DTD (`<!DOCTYPE`) is refused, entity references other than the
//!   five predefined ones are refused, and nothing is ever fetched.
//!
//! A field `_op` with value `delete` makes the record a delete (`upsert` or
//! empty: an upsert); the field itself is not part of the record. Every record must have a
//! non-empty value for each key column.
//!
//! # Sink
//!
//! Each written batch becomes one file `<object>-<hash>.<ext>` in `dir`, where `hash` is
//! the first 16 hex digits of the SHA-256 of the file's bytes, written atomically (write
//! `<name>.tmp`, fsync, rename). A batch delivered twice rewrites the same file with the
//! same bytes. When a batch contains deletes, every record carries an `_op` field/column
//! with `upsert` or `delete`; without deletes there is no `_op`.

use crate::{ConnectorError, Sink, Source};
use std::path::PathBuf;

mod csv_in;
mod error;
mod folder;
mod jsonl_in;
mod read;
mod sink;
mod source;
mod text;
mod xml_in;
mod xml_out;

/// Largest record (CSV record, JSON line, XML record element) a file may hold.
pub const MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

/// File format of a files system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma (or other delimiter) separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// XML with one element per record (`record_element`).
    Xml,
}

impl Format {
    /// Reads a config value: `csv`, `jsonl` (also `ndjson`), `xml`.
    pub fn parse(text: &str) -> Result<Format, ConnectorError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "jsonl" | "ndjson" | "json-lines" => Ok(Format::Jsonl),
            "xml" => Ok(Format::Xml),
            other => Err(ConnectorError::Config(format!(
                "file format `{other}` is not known; use `format: csv`, `jsonl` or `xml`"
            ))),
        }
    }

    /// The file name extension the sink writes.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Xml => "xml",
        }
    }
}

/// Text encoding of files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 (a byte order mark is allowed and dropped).
    Utf8,
    /// GB18030, the superset of GBK and GB2312 that covers all of Unicode.
    Gb18030,
    /// Read as GB18030 (a superset), but written as strict GBK: for software that only
    /// understands GBK, a character outside GBK (emoji, rare CJK) is an error rather than a
    /// four-byte GB18030 sequence that software would show as garbage.
    Gbk,
}

impl Encoding {
    /// Reads a config value: `utf-8`/`utf8`, `gb18030`, `gbk`/`gb2312`/`cp936`.
    pub fn parse(text: &str) -> Result<Encoding, ConnectorError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Ok(Encoding::Utf8),
            "gb18030" => Ok(Encoding::Gb18030),
            "gbk" | "gb2312" | "cp936" => Ok(Encoding::Gbk),
            other => Err(ConnectorError::Config(format!(
                "file encoding `{other}` is not supported; use `encoding: utf-8`, or \
                 `encoding: gb18030` for files from Chinese finance software (GBK/GB2312)"
            ))),
        }
    }

    /// The name used in messages and XML declarations.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Gb18030 => "GB18030",
            Encoding::Gbk => "GBK",
        }
    }

    /// The decoder family; GBK files are read with the GB18030 decoder, a superset.
    fn decoder_encoding(self) -> &'static encoding_rs::Encoding {
        match self {
            Encoding::Utf8 => encoding_rs::UTF_8,
            Encoding::Gb18030 | Encoding::Gbk => encoding_rs::GB18030,
        }
    }

    /// The encoder used when writing.
    fn encoder_encoding(self) -> &'static encoding_rs::Encoding {
        match self {
            Encoding::Utf8 => encoding_rs::UTF_8,
            Encoding::Gb18030 => encoding_rs::GB18030,
            Encoding::Gbk => encoding_rs::GBK,
        }
    }
}

/// Everything a files source or sink needs.
#[derive(Debug, Clone)]
pub struct FileOptions {
    /// System name, for messages.
    pub system: String,
    /// The watched folder (source) or the output folder (sink).
    pub dir: PathBuf,
    /// Source: file name pattern such as `customers*.csv`; sink: base name of written files.
    pub object: String,
    /// File format.
    pub format: Format,
    /// Text encoding.
    pub encoding: Encoding,
    /// CSV delimiter (one ASCII byte).
    pub delimiter: u8,
    /// XML element that holds one record (required for XML sources; sink default: object).
    pub record_element: Option<String>,
    /// System-side key columns.
    pub key_columns: Vec<String>,
    /// Records per batch (source); 0 means the default of 500.
    pub batch_size: usize,
    /// The last committed checkpoint, to resume after.
    pub checkpoint: Option<String>,
}

/// Opens a watched-folder source; creates `done/` and `failed/` beside the files.
pub async fn open_source(opts: FileOptions) -> Result<Box<dyn Source>, ConnectorError> {
    let src = source::FileSource::open(opts).await?;
    Ok(Box::new(src))
}

/// Opens a sink that writes one file per batch into `dir`.
pub async fn open_sink(opts: FileOptions) -> Result<Box<dyn Sink>, ConnectorError> {
    let sink = sink::FileSink::open(opts)?;
    Ok(Box::new(sink))
}
