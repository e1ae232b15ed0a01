//! XML records: every `record_element` element is one record.
//!
//! How elements become fields:
//! - attributes of the record element and its child elements are fields (text);
//! - a child element with only text is a text field (empty: null; `xsi:nil="true"`: null);
//! - a child element with children or attributes is a map of them (its own text, if any,
//!   under `_text`);
//! - a child element name that repeats under one parent becomes a list of the values;
//! - a wrapper whose children all have one name that is its singular (`lines`/`line`,
//!   `items`/`item`, `entries`/`entry`, `lineList`/`line`, `明细列表`/`明细`) or `item`
//!   is a list, even with one child, so invoice lines are always a list of maps.
//!
//! Safety: a document with a DTD (`<!DOCTYPE`) is refused before anything in it is used,
//! entity references other than the five XML ones and character references are refused,
//! nothing is ever fetched, and nesting and record size are bounded.

use super::Encoding;
use super::MAX_RECORD_BYTES;
use super::error::{Problem, ReadError, text_problem, too_large};
use super::read::{RawRecord, RecordReader};
use super::text::{TextError, TextReader};
use qiao_core::{Record, Value};
use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use std::io::Read;

/// Deepest element nesting accepted.
const MAX_DEPTH: usize = 256;
/// How many element names under the root are listed when no record element was found.
const HINT_NAMES: usize = 5;

/// One element being built inside a record.
struct Node {
    name: String,
    attrs: Vec<(String, Value)>,
    children: Vec<(String, Value)>,
    text: String,
    nil: bool,
}

/// An event with owned data, so the parser's buffer is free again.
enum Ev {
    Open {
        name: String,
        attrs: Vec<(String, Value)>,
        nil: bool,
        empty: bool,
    },
    Close,
    Text(String),
    Eof,
    Skip,
}

/// Records of an XML file.
pub(crate) struct XmlRecords<R> {
    reader: quick_xml::Reader<TextReader<R>>,
    record_element: String,
    buf: Vec<u8>,
    open: Vec<String>,
    roots: usize,
    stack: Vec<Node>,
    record_line: u64,
    records: u64,
    under_root: Vec<String>,
    ended: bool,
}

impl<R: Read> XmlRecords<R> {
    /// Reads `raw` as XML in `encoding`, one record per `record_element`.
    pub fn new(raw: R, encoding: Encoding, record_element: String) -> Self {
        let mut text = TextReader::new(raw, encoding);
        text.set_budget(MAX_RECORD_BYTES as u64);
        let mut reader = quick_xml::Reader::from_reader(text);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.allow_dangling_amp = false;
        config.allow_unmatched_ends = false;
        XmlRecords {
            reader,
            record_element,
            buf: Vec::new(),
            open: Vec::new(),
            roots: 0,
            stack: Vec::new(),
            record_line: 0,
            records: 0,
            under_root: Vec::new(),
            ended: false,
        }
    }

    fn line(&self) -> u64 {
        self.reader.get_ref().line()
    }

    fn problem(&self, what: impl Into<String>, fix: impl Into<String>) -> Problem {
        Problem::new(format!("line {}", self.line()), what, fix)
    }

    fn xml_error(&self, e: quick_xml::Error) -> ReadError {
        if let quick_xml::Error::Io(io) = &e
            && let Some(t) = io.get_ref().and_then(|i| i.downcast_ref::<TextError>())
        {
            return ReadError::Bad(match t {
                TextError::TooLarge { line } => too_large(*line, "XML record or element"),
                other => text_problem(other),
            });
        }
        if let quick_xml::Error::Io(io) = e {
            return ReadError::Io(std::io::Error::new(io.kind(), io.to_string()));
        }
        ReadError::Bad(self.problem(
            format!("the XML is malformed: {e}"),
            "the file must be well-formed XML: every element closed in order, attribute values \
             in quotes, `&` written as `&amp;` and `<` as `&lt;` in text",
        ))
    }

    fn read_event(&mut self) -> Result<Ev, ReadError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let ev = match self.reader.read_event_into(&mut buf) {
            Ok(ev) => self.own(ev),
            Err(e) => Err(self.xml_error(e)),
        };
        self.buf = buf;
        ev
    }

    fn own(&self, ev: Event<'_>) -> Result<Ev, ReadError> {
        Ok(match ev {
            Event::Start(e) => self.open_event(&e, false)?,
            Event::Empty(e) => self.open_event(&e, true)?,
            Event::End(_) => Ev::Close,
            Event::Text(t) => Ev::Text(t.xml10_content().into_owned()),
            Event::CData(t) => Ev::Text(t.xml10_content().into_owned()),
            Event::GeneralRef(r) => {
                let resolved = r.resolve_char_ref().map_err(|e| self.xml_error(e))?;
                match resolved {
                    Some(c) => Ev::Text(c.to_string()),
                    None => {
                        let name = r.into_inner();
                        match resolve_predefined_entity(&name) {
                            Some(s) => Ev::Text(s.to_string()),
                            None => return Err(self.undefined_entity(&name).into()),
                        }
                    }
                }
            }
            Event::DocType(_) => {
                return Err(self
                    .problem(
                        "the file contains a document type declaration (<!DOCTYPE …>); qiao \
                         never reads DTDs, so entity declarations and external entities cannot \
                         be used",
                        "remove the <!DOCTYPE …> declaration and write every character directly \
                         (or as &#…; character references)",
                    )
                    .into());
            }
            Event::Decl(d) => {
                if let Some(Ok(label)) = d.encoding() {
                    self.check_declared_encoding(&label)?;
                }
                Ev::Skip
            }
            Event::Comment(_) | Event::PI(_) => Ev::Skip,
            Event::Eof => Ev::Eof,
        })
    }

    fn undefined_entity(&self, name: &str) -> Problem {
        let shown: String = name.chars().take(40).collect();
        self.problem(
            format!("the entity reference `&{shown};` is not one of the five XML entities"),
            "qiao expands no entities: write the character itself, or use a character \
             reference such as &#20013;",
        )
    }

    /// A UTF declaration in a file decoded as GB18030 means mojibake, not an error, so it
    /// is refused; the other way round invalid bytes are already caught by decoding.
    fn check_declared_encoding(&self, label: &str) -> Result<(), Problem> {
        let declared = encoding_rs::Encoding::for_label(label.trim().as_bytes());
        let actual = self.reader.get_ref().actual_encoding();
        let declared_utf = declared.is_some_and(|e| {
            e == encoding_rs::UTF_8 || e == encoding_rs::UTF_16LE || e == encoding_rs::UTF_16BE
        });
        if declared_utf && actual == encoding_rs::GB18030 {
            let shown: String = label.chars().take(20).collect();
            return Err(self.problem(
                format!(
                    "the XML declaration says encoding=\"{shown}\" but this system reads files \
                     as GB18030"
                ),
                "set `encoding: utf-8` for this system, or save the file as GB18030 and \
                 change its declaration",
            ));
        }
        Ok(())
    }

    fn open_event(&self, e: &BytesStart<'_>, empty: bool) -> Result<Ev, ReadError> {
        let name = e.local_name().as_ref().to_string();
        let mut attrs: Vec<(String, Value)> = Vec::new();
        let mut nil = false;
        for a in e.attributes() {
            let a = a.map_err(|err| {
                self.problem(
                    format!("element <{name}> has a malformed attribute: {err}"),
                    "write attributes as name=\"value\", each name once",
                )
            })?;
            if a.key.as_namespace_binding().is_some() {
                continue;
            }
            let local = a.key.local_name().as_ref().to_string();
            let value = a
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|err| match err {
                    quick_xml::Error::Escape(_) => ReadError::Bad(self.problem(
                        format!("an attribute of <{name}> uses an undefined entity ({err})"),
                        "qiao expands no entities: write the character itself",
                    )),
                    other => self.xml_error(other),
                })?
                .into_owned();
            if local == "nil" && a.key.prefix().is_some() {
                nil = value.trim() == "true";
                continue;
            }
            let value = if value.is_empty() {
                Value::Null
            } else {
                Value::Text(value)
            };
            attrs.push((local, value));
        }
        Ok(Ev::Open {
            name,
            attrs,
            nil,
            empty,
        })
    }

    fn on_open(
        &mut self,
        name: String,
        attrs: Vec<(String, Value)>,
        nil: bool,
    ) -> Result<(), Problem> {
        if self.open.len() >= MAX_DEPTH {
            return Err(self.problem(
                format!("elements are nested deeper than {MAX_DEPTH} levels"),
                "this is not a data export qiao can read; check the file",
            ));
        }
        if self.open.is_empty() {
            self.roots += 1;
            if self.roots > 1 {
                return Err(self.problem(
                    format!("a second root element <{name}> after the first one ended"),
                    "an XML file has exactly one root element around all records; wrap them \
                     in one, or split the file",
                ));
            }
        } else if self.open.len() == 1
            && self.under_root.len() < HINT_NAMES
            && !self.under_root.contains(&name)
        {
            self.under_root.push(name.clone());
        }
        if self.stack.is_empty() && name == self.record_element {
            self.record_line = self.line();
        }
        if !self.stack.is_empty() || name == self.record_element {
            self.stack.push(Node {
                name: name.clone(),
                attrs,
                children: Vec::new(),
                text: String::new(),
                nil,
            });
        }
        self.open.push(name);
        Ok(())
    }

    fn on_close(&mut self) -> Result<Option<RawRecord>, Problem> {
        self.open.pop();
        let Some(node) = self.stack.pop() else {
            return Ok(None);
        };
        let line = self.record_line;
        let at = |what: String| {
            Problem::new(
                format!("line {line}"),
                what,
                "give each field one name: an attribute and a child element of one element \
                 may not share a name",
            )
        };
        match self.stack.last_mut() {
            Some(parent) => {
                let name = node.name.clone();
                let value = into_value(node).map_err(at)?;
                parent.children.push((name, value));
                Ok(None)
            }
            None => {
                let fields = group(node.attrs, node.children, &node.text).map_err(at)?;
                self.records += 1;
                Ok(Some(RawRecord {
                    record: record_of(fields),
                    line,
                }))
            }
        }
    }

    fn on_eof(&self) -> Result<(), Problem> {
        if let Some(name) = self.open.last() {
            return Err(self.problem(
                format!("the file ends inside element <{name}>"),
                "the file is cut off or an end tag is missing; export it again",
            ));
        }
        if self.roots == 0 {
            return Err(Problem::new(
                "line 1",
                "the file has no XML element (it is empty or not XML)",
                "export the data as XML with one root element around the records",
            ));
        }
        if self.records == 0 && !self.under_root.is_empty() {
            return Err(Problem::new(
                "line 1",
                format!(
                    "no <{}> element was found; the elements under the root are <{}>",
                    self.record_element,
                    self.under_root.join(">, <")
                ),
                "set `record_element` of this system to the element that holds one record",
            ));
        }
        Ok(())
    }
}

impl<R: Read + Send> RecordReader for XmlRecords<R> {
    fn next_record(&mut self) -> Result<Option<RawRecord>, ReadError> {
        if self.ended {
            return Ok(None);
        }
        loop {
            if self.stack.is_empty() {
                // Outside a record every event gets its own 16 MiB; inside, the record does.
                self.reader.get_mut().reset_budget();
            }
            match self.read_event()? {
                Ev::Open {
                    name,
                    attrs,
                    nil,
                    empty,
                } => {
                    self.on_open(name, attrs, nil)?;
                    if empty && let Some(rec) = self.on_close()? {
                        return Ok(Some(rec));
                    }
                }
                Ev::Close => {
                    if let Some(rec) = self.on_close()? {
                        return Ok(Some(rec));
                    }
                }
                Ev::Text(t) => match self.stack.last_mut() {
                    Some(node) => node.text.push_str(&t),
                    None if self.open.is_empty() && !t.trim().is_empty() => {
                        return Err(self
                            .problem(
                                "text outside the root element",
                                "everything except the XML declaration and comments must be \
                                 inside the one root element",
                            )
                            .into());
                    }
                    None => {}
                },
                Ev::Skip => {}
                Ev::Eof => {
                    self.ended = true;
                    self.on_eof()?;
                    return Ok(None);
                }
            }
        }
    }

    fn sha256_hex(&self) -> String {
        self.reader.get_ref().sha256_hex()
    }
}

/// A record from fields in order (later duplicates cannot occur: `group` merged them).
fn record_of(fields: Vec<(String, Value)>) -> Record {
    let mut record = Record::new();
    for (k, v) in fields {
        record.fields.insert(k, v);
    }
    record
}

/// The value of a field element (see the module docs for the rules).
fn into_value(node: Node) -> Result<Value, String> {
    if node.nil {
        return Ok(Value::Null);
    }
    if node.attrs.is_empty() && node.children.is_empty() {
        return Ok(if node.text.is_empty() {
            Value::Null
        } else {
            Value::Text(node.text)
        });
    }
    if node.attrs.is_empty()
        && node.text.trim().is_empty()
        && is_list_wrapper(&node.name, &node.children)
    {
        return Ok(Value::List(
            node.children.into_iter().map(|(_, v)| v).collect(),
        ));
    }
    let fields = group(node.attrs, node.children, &node.text)?;
    Ok(Value::Map(record_of(fields).fields))
}

/// Attributes, then children in order of first appearance with repeated names as lists,
/// then non-blank text under `_text`.
fn group(
    attrs: Vec<(String, Value)>,
    children: Vec<(String, Value)>,
    text: &str,
) -> Result<Vec<(String, Value)>, String> {
    let mut out: Vec<(String, Value)> = attrs;
    let n_attrs = out.len();
    let mut grouped: Vec<(String, Vec<Value>)> = Vec::new();
    for (name, value) in children {
        if out.iter().any(|(a, _)| *a == name) {
            return Err(format!(
                "`{name}` is both an attribute and a child element of one element"
            ));
        }
        match grouped.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => grouped.push((name, vec![value])),
        }
    }
    for (name, mut values) in grouped {
        let value = if values.len() == 1 {
            values.pop().unwrap_or_default()
        } else {
            Value::List(values)
        };
        out.push((name, value));
    }
    let text = text.trim();
    if !text.is_empty() {
        if out[..n_attrs].iter().any(|(a, _)| a == TEXT_FIELD) {
            return Err(format!("`{TEXT_FIELD}` is used as an attribute name"));
        }
        out.push((TEXT_FIELD.to_string(), Value::Text(text.to_string())));
    }
    Ok(out)
}

/// The field that holds an element's own text when it also has attributes or children.
pub(crate) const TEXT_FIELD: &str = "_text";

/// True when `wrapper` holds only children of one name that reads as its list items.
fn is_list_wrapper(wrapper: &str, children: &[(String, Value)]) -> bool {
    let Some((first, _)) = children.first() else {
        return false;
    };
    children.iter().all(|(n, _)| n == first) && (first == "item" || is_plural_of(wrapper, first))
}

/// `lines`/`line`, `entries`/`entry`, `boxes`/`box`, `lineList`/`line`, `明细列表`/`明细`.
pub(crate) fn is_plural_of(wrapper: &str, item: &str) -> bool {
    let w = wrapper.to_lowercase();
    let i = item.to_lowercase();
    let ies = i.strip_suffix('y').map(|stem| format!("{stem}ies"));
    [
        format!("{i}s"),
        format!("{i}es"),
        format!("{i}list"),
        format!("{i}_list"),
        format!("{i}列表"),
    ]
    .iter()
    .chain(ies.iter())
    .any(|p| *p == w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(xml: &str, element: &str) -> Result<Vec<RawRecord>, ReadError> {
        let mut r = XmlRecords::new(xml.as_bytes(), Encoding::Utf8, element.to_string());
        let mut out = Vec::new();
        while let Some(rec) = r.next_record()? {
            out.push(rec);
        }
        Ok(out)
    }

    fn problem(xml: &str) -> Problem {
        match all(xml, "r") {
            Err(ReadError::Bad(p)) => p,
            other => panic!("expected a problem, got {other:?}"),
        }
    }

    #[test]
    fn records_fields_lists_and_entities() {
        let xml = r#"<?xml version="1.0"?>
<root xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <r id="1"><name>A &amp; B &#20013;</name><memo xsi:nil="true"/><empty></empty>
    <lines><line><amount>1.10</amount></line></lines>
    <tag>x</tag><tag>y</tag>
    <amount currency="CNY">9.90</amount>
  </r>
  <other/>
  <r id="2"><name><![CDATA[<raw>]]></name></r>
</root>"#;
        let recs = all(xml, "r").unwrap();
        assert_eq!(recs.len(), 2);
        let r = &recs[0].record;
        assert_eq!(recs[0].line, 3);
        assert_eq!(r.get("id"), &Value::from("1"));
        assert_eq!(r.get("name"), &Value::from("A & B 中"));
        assert_eq!(r.get("memo"), &Value::Null);
        assert_eq!(r.get("empty"), &Value::Null);
        assert_eq!(r.get("lines").to_string(), r#"[{"amount":"1.10"}]"#);
        assert_eq!(r.get("tag").to_string(), r#"["x","y"]"#);
        let Value::Map(amount) = r.get("amount") else {
            panic!("{:?}", r.get("amount"))
        };
        let keys: Vec<_> = amount.keys().map(String::as_str).collect();
        assert_eq!(keys, ["currency", "_text"]);
        assert_eq!(amount["_text"], Value::from("9.90"));
        assert_eq!(recs[1].record.get("name"), &Value::from("<raw>"));
    }

    #[test]
    fn unsafe_or_broken_documents_are_refused() {
        assert!(
            problem("<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x><r>&e;</r></x>")
                .what
                .contains("DOCTYPE")
        );
        assert!(problem("<x><r>&e;</r></x>").what.contains("&e;"));
        assert!(
            problem("<x><r a='&e;'/></x>")
                .what
                .contains("undefined entity")
        );
        assert!(problem("<x><r></x>").what.contains("malformed"));
        assert!(problem("<x><r/></x><y/>").what.contains("second root"));
        assert!(problem("<x><r/>").what.contains("ends inside"));
        assert!(problem("").what.contains("no XML element"));
        assert!(
            problem("<x><c/></x>")
                .what
                .contains("elements under the root are <c>")
        );
        assert!(problem(&"<a>".repeat(300)).what.contains("deeper"));
        assert!(is_plural_of("entries", "entry") && is_plural_of("LineList", "line"));
    }
}
