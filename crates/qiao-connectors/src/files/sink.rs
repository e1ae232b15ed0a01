//! The files sink: one file per batch, named by its content hash, written atomically.

use super::read::OP_FIELD;
use super::{Encoding, FileOptions, Format, xml_out};
use crate::{ConnectorError, Sink, SinkError};
use async_trait::async_trait;
use qiao_core::{Change, Key, Op, Value};
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Writes batches as files into a folder.
pub(crate) struct FileSink {
    opts: FileOptions,
    element: String,
}

impl FileSink {
    /// Checks the options; the folder must exist.
    pub fn open(opts: FileOptions) -> Result<FileSink, ConnectorError> {
        let sys = &opts.system;
        let config = |what: String| ConnectorError::Config(format!("system `{sys}`: {what}"));
        if !opts.dir.is_dir() {
            return Err(config(format!(
                "output folder {} does not exist; create it or fix `path`",
                opts.dir.display()
            )));
        }
        let object = opts.object.trim();
        let bad_char = |c: char| c.is_control() || matches!(c, '/' | '\\' | '*' | '?' | ':');
        if object.is_empty() || object.starts_with('.') || object.contains(bad_char) {
            return Err(config(format!(
                "`{}` cannot start a file name; the object of a files target is the base name \
                 of the written files, such as `invoices`",
                opts.object
            )));
        }
        let d = opts.delimiter;
        if opts.format == Format::Csv && (!d.is_ascii() || matches!(d, b'"' | b'\r' | b'\n')) {
            return Err(config(
                "the CSV delimiter must be one ASCII character other than a quote or line \
                 break"
                    .into(),
            ));
        }
        let element = opts
            .record_element
            .clone()
            .filter(|e| !e.trim().is_empty())
            .unwrap_or_else(|| object.to_string());
        if opts.format == Format::Xml && !xml_out::is_xml_name(&element) {
            return Err(config(format!(
                "`{element}` cannot be an XML element name; set `record_element` to a name \
                 of letters, digits and `_`"
            )));
        }
        Ok(FileSink { opts, element })
    }

    /// The bytes of the file for `changes`.
    fn render(&self, changes: &[Change]) -> Result<Vec<u8>, SinkError> {
        let op = changes
            .iter()
            .any(|c| c.op == Op::Delete)
            .then_some(OP_FIELD);
        if op.is_some()
            && let Some(index) = changes
                .iter()
                .position(|c| c.record.fields.contains_key(OP_FIELD))
        {
            return Err(SinkError::Record {
                index,
                message: format!(
                    "field `{OP_FIELD}` is reserved in files for marking deletes; rename it in \
                     the mapping"
                ),
            });
        }
        self.check_encodable(changes)?;
        let text = match self.opts.format {
            Format::Csv => self.csv(changes, op)?,
            Format::Jsonl => jsonl(changes, op),
            Format::Xml => xml_out::render(&self.element, self.opts.encoding.name(), changes, op)
                .map_err(|(index, message)| SinkError::Record { index, message })?,
        };
        let enc = self.opts.encoding.encoder_encoding();
        if enc == encoding_rs::UTF_8 {
            return Ok(text.into_bytes());
        }
        let (bytes, _, unmappable) = enc.encode(&text);
        if unmappable {
            return Err(SinkError::Batch(format!(
                "the batch holds text that {} cannot represent",
                self.opts.encoding.name()
            )));
        }
        Ok(bytes.into_owned())
    }

    /// Finds the first field (or field name) the target encoding cannot hold.
    fn check_encodable(&self, changes: &[Change]) -> Result<(), SinkError> {
        let enc = self.opts.encoding.encoder_encoding();
        if enc == encoding_rs::UTF_8 {
            return Ok(());
        }
        let fits = |s: &str| !enc.encode(s).2;
        for (index, change) in changes.iter().enumerate() {
            for (name, value) in &change.record.fields {
                let text = value.to_string();
                if fits(name) && fits(&text) {
                    continue;
                }
                let bad = |s: &str| s.chars().find(|c| !fits(c.encode_utf8(&mut [0; 4])));
                let (whose, c) = match bad(name) {
                    Some(c) => ("the name of field", c),
                    None => ("field", bad(&text).unwrap_or(char::REPLACEMENT_CHARACTER)),
                };
                let enc_name = self.opts.encoding.name();
                let other = match self.opts.encoding {
                    Encoding::Gbk => "`encoding: gb18030` (if the receiving software reads it) or ",
                    _ => "",
                };
                return Err(SinkError::Record {
                    index,
                    message: format!(
                        "record with key `{}`: {whose} `{name}` contains `{c}` (U+{:04X}), which \
                         {enc_name} cannot represent; replace the character in the source \
                         record, or use {other}`encoding: utf-8` for system `{}`",
                        change.key, c as u32, self.opts.system
                    ),
                });
            }
        }
        Ok(())
    }

    fn csv(&self, changes: &[Change], op: Option<&str>) -> Result<String, SinkError> {
        let mut columns: Vec<&str> = Vec::new();
        for c in changes {
            for name in c.record.fields.keys() {
                if !columns.contains(&name.as_str()) {
                    columns.push(name);
                }
            }
        }
        let mut w = csv::WriterBuilder::new()
            .delimiter(self.opts.delimiter)
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        let failed = |e: csv::Error| SinkError::Batch(format!("cannot write CSV: {e}"));
        let mut header: Vec<&str> = columns.clone();
        header.extend(op);
        w.write_record(&header).map_err(failed)?;
        for c in changes {
            let mut row: Vec<String> = columns
                .iter()
                .map(|col| c.record.get(col).to_string())
                .collect();
            if op.is_some() {
                row.push(op_value(c.op).to_string());
            }
            w.write_record(&row).map_err(failed)?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| SinkError::Batch(format!("cannot write CSV: {e}")))?;
        String::from_utf8(bytes).map_err(|e| SinkError::Batch(format!("CSV is not text: {e}")))
    }

    /// Writes `bytes` as `name` in the folder: never a half-written file under that name.
    fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
        let tmp = dir.join(format!("{name}.tmp"));
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, dir.join(name))?;
            // Makes the rename itself durable; directories cannot be opened on every platform.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

fn op_value(op: Op) -> &'static str {
    match op {
        Op::Delete => "delete",
        Op::Upsert => "upsert",
    }
}

/// One JSON object per line in the record's field order; decimals as strings.
fn jsonl(changes: &[Change], op: Option<&str>) -> String {
    let mut out = String::new();
    for c in changes {
        let mut fields: Vec<(&str, serde_json::Value)> = c
            .record
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_json()))
            .collect();
        if let Some(op_field) = op {
            fields.push((op_field, Value::from(op_value(c.op)).to_json()));
        }
        out.push('{');
        for (i, (k, v)) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            // Serializing a string or a `serde_json::Value` cannot fail.
            out.push_str(&serde_json::to_string(k).unwrap_or_default());
            out.push(':');
            out.push_str(&serde_json::to_string(v).unwrap_or_default());
        }
        out.push_str("}\n");
    }
    out
}

#[async_trait]
impl Sink for FileSink {
    async fn write(&mut self, changes: &[Change]) -> Result<(), SinkError> {
        if changes.is_empty() {
            return Ok(());
        }
        let bytes = self.render(changes)?;
        let hash = hex::encode(Sha256::digest(&bytes));
        let name = format!(
            "{}-{}.{}",
            self.opts.object.trim(),
            &hash[..16],
            self.opts.format.extension()
        );
        let dir = self.opts.dir.clone();
        let system = self.opts.system.clone();
        let target = dir.join(&name);
        tokio::task::spawn_blocking(move || FileSink::write_file(&dir, &name, &bytes))
            .await
            .map_err(|e| {
                SinkError::Transport(format!("system `{system}`: file writer stopped: {e}"))
            })?
            .map_err(|e| {
                SinkError::Transport(format!(
                    "system `{}`: cannot write {}: {e}; check free space and permissions",
                    self.opts.system,
                    target.display()
                ))
            })
    }

    async fn keys(&mut self) -> Result<Vec<Key>, ConnectorError> {
        Err(ConnectorError::Config(format!(
            "system `{}`: delete detection by key scan is not supported for files targets; \
             deletes are written as records with `_op` = `delete`",
            self.opts.system
        )))
    }
}
