//! A strict CSV reader (RFC 4180): a quote may only open a field and must close it, every
//! row has as many fields as the header, and no record grows past 16 MiB.
//!
//! The `csv` crate accepts broken quoting silently (an unclosed quote swallows the rest of
//! the file into one field), which would turn a damaged export into wrong data; this
//! reader refuses it with the line number instead.

use super::Encoding;
use super::MAX_RECORD_BYTES;
use super::error::{Problem, ReadError, too_large};
use super::read::{RawRecord, RecordReader};
use super::text::TextReader;
use qiao_core::{Record, Value};
use std::collections::HashMap;
use std::io::{BufRead, Read};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a field.
    Start,
    /// Inside a field that does not start with a quote.
    Unquoted,
    /// Inside a quoted field.
    Quoted,
    /// A quote inside a quoted field: either `""` or the closing quote.
    QuoteSeen,
}

/// The byte-level state machine, apart from the input so both can be borrowed at once.
struct Machine {
    delim: u8,
    state: State,
    field: Vec<u8>,
    fields: Vec<String>,
    line: u64,
    start_line: u64,
    quote_line: u64,
    in_record: bool,
    skip_lf: bool,
    record_bytes: usize,
}

impl Machine {
    fn new(delim: u8) -> Self {
        Machine {
            delim,
            state: State::Start,
            field: Vec::new(),
            fields: Vec::new(),
            line: 1,
            start_line: 1,
            quote_line: 1,
            in_record: false,
            skip_lf: false,
            record_bytes: 0,
        }
    }

    fn push_field(&mut self) -> Result<(), Problem> {
        let bytes = std::mem::take(&mut self.field);
        // The text layer hands over valid UTF-8 and fields split at ASCII bytes, so this
        // cannot fail; it is still checked rather than assumed.
        let text = String::from_utf8(bytes).map_err(|_| {
            Problem::new(
                format!("line {}", self.line),
                "a field is not valid text",
                "save the file as UTF-8 or GB18030 text",
            )
        })?;
        self.fields.push(text);
        self.state = State::Start;
        Ok(())
    }

    fn begin(&mut self) {
        if !self.in_record {
            self.in_record = true;
            self.start_line = self.line;
        }
    }

    fn place(&self) -> String {
        format!("line {}, field {}", self.line, self.fields.len() + 1)
    }

    /// Feeds bytes; returns how many were used and whether a record ended.
    fn feed(&mut self, buf: &[u8]) -> Result<(usize, bool), Problem> {
        for (i, &b) in buf.iter().enumerate() {
            if self.skip_lf {
                self.skip_lf = false;
                if b == b'\n' {
                    continue;
                }
            }
            self.record_bytes += 1;
            if self.record_bytes > MAX_RECORD_BYTES {
                return Err(too_large(self.start_line, "CSV record"));
            }
            let newline = b == b'\n' || b == b'\r';
            match self.state {
                State::Start | State::Unquoted | State::QuoteSeen if newline => {
                    self.skip_lf = b == b'\r';
                    self.line += 1;
                    if !self.in_record {
                        // An empty line between records carries nothing.
                        self.record_bytes = 0;
                        continue;
                    }
                    self.push_field()?;
                    return Ok((i + 1, true));
                }
                State::Start if b == b'"' => {
                    self.begin();
                    self.quote_line = self.line;
                    self.state = State::Quoted;
                }
                State::Start | State::Unquoted | State::QuoteSeen if b == self.delim => {
                    self.begin();
                    self.push_field()?;
                }
                State::Start | State::Unquoted if b == b'"' => {
                    return Err(Problem::new(
                        self.place(),
                        "a double quote `\"` inside a field that does not start with a quote",
                        "enclose the whole field in double quotes and double each quote inside \
                         it, as in `\"say \"\"hi\"\"\"`",
                    ));
                }
                State::Start | State::Unquoted => {
                    self.begin();
                    self.field.push(b);
                    self.state = State::Unquoted;
                }
                State::Quoted => {
                    if b == b'"' {
                        self.state = State::QuoteSeen;
                    } else {
                        if b == b'\n' {
                            self.line += 1;
                        }
                        self.field.push(b);
                    }
                }
                State::QuoteSeen if b == b'"' => {
                    self.field.push(b'"');
                    self.state = State::Quoted;
                }
                State::QuoteSeen => {
                    return Err(Problem::new(
                        self.place(),
                        "text after the closing quote of a quoted field",
                        "a quote inside a quoted field must be doubled (\"\"); the field must \
                         end with its closing quote followed by the delimiter or a line break",
                    ));
                }
            }
        }
        Ok((buf.len(), false))
    }

    /// At end of input: the last record, if one is open.
    fn finish(&mut self) -> Result<bool, Problem> {
        match self.state {
            State::Quoted => Err(Problem::new(
                format!("line {}", self.quote_line),
                "a quoted field opened on this line is never closed (the file ends inside it)",
                "add the missing closing double quote, or double a quote that is part of the \
                 text (\"\")",
            )),
            _ if self.in_record => {
                self.push_field()?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn take_row(&mut self) -> (Vec<String>, u64) {
        self.in_record = false;
        self.record_bytes = 0;
        self.state = State::Start;
        (std::mem::take(&mut self.fields), self.start_line)
    }
}

/// Records of a CSV file with a header row.
pub(crate) struct CsvRecords<R> {
    text: TextReader<R>,
    machine: Machine,
    header: Option<Vec<String>>,
    ended: bool,
}

impl<R: Read> CsvRecords<R> {
    /// Reads `raw` as CSV in `encoding` with `delimiter`.
    pub fn new(raw: R, encoding: Encoding, delimiter: u8) -> Self {
        CsvRecords {
            text: TextReader::new(raw, encoding),
            machine: Machine::new(delimiter),
            header: None,
            ended: false,
        }
    }

    fn read_row(&mut self) -> Result<Option<(Vec<String>, u64)>, ReadError> {
        if self.ended {
            return Ok(None);
        }
        loop {
            let buf = self.text.fill_buf()?;
            if buf.is_empty() {
                self.ended = true;
                return Ok(if self.machine.finish()? {
                    Some(self.machine.take_row())
                } else {
                    None
                });
            }
            let (used, done) = self.machine.feed(buf)?;
            self.text.consume(used);
            if done {
                return Ok(Some(self.machine.take_row()));
            }
        }
    }

    fn read_header(&mut self) -> Result<Vec<String>, ReadError> {
        let Some((names, line)) = self.read_row()? else {
            return Err(Problem::new(
                "line 1",
                "the file is empty: there is no header row",
                "export the file with a header row that names the columns",
            )
            .into());
        };
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut header = Vec::with_capacity(names.len());
        for (i, name) in names.into_iter().enumerate() {
            let name = name.trim().to_string();
            if name.is_empty() {
                return Err(Problem::new(
                    format!("line {line}, column {}", i + 1),
                    format!("column {} of the header row has no name", i + 1),
                    "give every column a name in the header row (a trailing delimiter at the \
                     end of the header line also makes an empty column)",
                )
                .into());
            }
            if let Some(first) = seen.insert(name.clone(), i + 1) {
                return Err(Problem::new(
                    format!("line {line}, column {}", i + 1),
                    format!(
                        "column name `{name}` appears twice in the header (columns {first} and {})",
                        i + 1
                    ),
                    "give every column a different name",
                )
                .into());
            }
            header.push(name);
        }
        Ok(header)
    }
}

impl<R: Read + Send> RecordReader for CsvRecords<R> {
    fn next_record(&mut self) -> Result<Option<RawRecord>, ReadError> {
        let header = match self.header.take() {
            Some(h) => h,
            None => self.read_header()?,
        };
        let row = self.read_row();
        let header = self.header.insert(header);
        let Some((values, line)) = row? else {
            return Ok(None);
        };
        if values.len() != header.len() {
            return Err(Problem::new(
                format!("line {line}"),
                format!(
                    "this row has {} fields but the header has {}",
                    values.len(),
                    header.len()
                ),
                format!(
                    "every row needs exactly {} fields; look for a missing or extra delimiter, \
                     or a field containing the delimiter that is not in double quotes",
                    header.len()
                ),
            )
            .into());
        }
        let mut record = Record::new();
        for (name, value) in header.iter().zip(values) {
            let value = if value.is_empty() {
                Value::Null
            } else {
                Value::Text(value)
            };
            record.fields.insert(name.clone(), value);
        }
        Ok(Some(RawRecord { record, line }))
    }

    fn sha256_hex(&self) -> String {
        self.text.sha256_hex()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Result<Vec<RawRecord>, ReadError> {
        let mut r = CsvRecords::new(input, Encoding::Utf8, b',');
        let mut out = Vec::new();
        while let Some(rec) = r.next_record()? {
            out.push(rec);
        }
        Ok(out)
    }

    fn problem(input: &[u8]) -> Problem {
        match all(input) {
            Err(ReadError::Bad(p)) => p,
            other => panic!("expected a problem, got {other:?}"),
        }
    }

    #[test]
    fn quoted_fields_crlf_and_empty_values() {
        let recs = all(b"id, name ,note\r\n1,\"A, \"\"B\"\"\",\r\n\r\n2,\"two\nlines\",x").unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].record.get("name"), &Value::from("A, \"B\""));
        assert_eq!(recs[0].record.get("note"), &Value::Null);
        assert_eq!(recs[1].line, 4);
        assert_eq!(recs[1].record.get("name"), &Value::from("two\nlines"));
    }

    #[test]
    fn structural_problems_name_the_line() {
        assert_eq!(problem(b"a,b\n1,2\n3,x\"y\n").place, "line 3, field 2");
        assert_eq!(problem(b"a,b\n1,\"2\"x\n").place, "line 2, field 2");
        let p = problem(b"a,b\n1,2\n\"3,4\n5,6\n");
        assert_eq!(p.place, "line 3");
        assert!(p.what.contains("never closed"));
        assert!(
            problem(b"a,b\n1,2,3\n")
                .what
                .contains("3 fields but the header has 2")
        );
        assert!(problem(b"a,a\n").what.contains("appears twice"));
        assert!(problem(b"a,,b\n").what.contains("no name"));
        assert!(problem(b"").what.contains("empty"));
    }
}
