//! Payload encoding of changes in the outbox and in exceptions.
//!
//! A compact binary format of our own rather than JSON: a bulk load puts a million
//! changes through the outbox, and serde_json spent most of the outbox's time escaping,
//! parsing and re-parsing dates and decimals from text (about 480 bytes and 5 µs per
//! 10-field change). Here field names are written once per payload in a name table, and
//! numbers, dates and decimals are fixed binary forms; a change takes about a third of the
//! bytes and a fraction of the time. Every payload starts with one format byte, so a newer
//! qiao can change the format and still read what an older one left in the store.
//!
//! Layout (varint = unsigned LEB128, zigzag for signed):
//! `'B'` · names: varint n, n × str · changes: varint n, n × change
//! change: op u8 · key str · source_time opt datetime · origin opt str · record map
//! value: tag u8 then the body (see `tag`); map: varint n, n × (name index varint, value);
//! str: varint byte length, UTF-8 bytes.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate};
use indexmap::IndexMap;
use qiao_core::{Change, Op, Record, Value};
use rust_decimal::Decimal;
use std::collections::HashMap;

/// Format byte of binary payloads, version 1.
const FORMAT_BINARY_V1: u8 = b'B';

/// Nesting a decoder follows before calling a payload damaged (guards the stack).
const MAX_DEPTH: usize = 64;

mod tag {
    pub const NULL: u8 = 0;
    pub const FALSE: u8 = 1;
    pub const TRUE: u8 = 2;
    pub const INT: u8 = 3;
    pub const DECIMAL: u8 = 4;
    pub const TEXT: u8 = 5;
    pub const DATE: u8 = 6;
    pub const DATETIME: u8 = 7;
    pub const LIST: u8 = 8;
    pub const MAP: u8 = 9;
}

/// Encodes a list of changes.
pub fn encode_changes(changes: &[Change]) -> Result<Vec<u8>, String> {
    let mut names = Names::default();
    let mut body = Vec::with_capacity(64 + changes.len() * 160);
    put_len(&mut body, changes.len());
    for c in changes {
        put_change(&mut body, &mut names, c)?;
    }
    Ok(names.finish(body))
}

/// Decodes a list of changes written by [`encode_changes`].
pub fn decode_changes(bytes: &[u8]) -> Result<Vec<Change>, String> {
    let mut r = Reader::open(bytes)?;
    let n = r.len()?;
    // Capacity bounded by the bytes left, so a damaged count cannot allocate gigabytes.
    let mut out = Vec::with_capacity(n.min(r.remaining()));
    for _ in 0..n {
        out.push(r.change()?);
    }
    r.end()?;
    Ok(out)
}

/// Encodes one change.
pub fn encode_change(change: &Change) -> Result<Vec<u8>, String> {
    let mut names = Names::default();
    let mut body = Vec::with_capacity(256);
    put_change(&mut body, &mut names, change)?;
    Ok(names.finish(body))
}

/// Decodes one change written by [`encode_change`].
pub fn decode_change(bytes: &[u8]) -> Result<Change, String> {
    let mut r = Reader::open(bytes)?;
    let c = r.change()?;
    r.end()?;
    Ok(c)
}

/// The name table being built while encoding.
#[derive(Default)]
struct Names<'a> {
    index: HashMap<&'a str, u64>,
    list: Vec<&'a str>,
}

impl<'a> Names<'a> {
    fn id(&mut self, name: &'a str) -> u64 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.list.len() as u64;
        self.index.insert(name, i);
        self.list.push(name);
        i
    }

    /// Format byte, name table, then the body.
    fn finish(self, body: Vec<u8>) -> Vec<u8> {
        let table: usize = self.list.iter().map(|n| n.len() + 2).sum();
        let mut out = Vec::with_capacity(1 + 5 + table + body.len());
        out.push(FORMAT_BINARY_V1);
        put_len(&mut out, self.list.len());
        for n in &self.list {
            put_str(&mut out, n);
        }
        out.extend_from_slice(&body);
        out
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    put_varint(out, n as u128);
}

fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_varint(out, ((v << 1) ^ (v >> 63)) as u64 as u128);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn put_datetime(out: &mut Vec<u8>, t: &DateTime<FixedOffset>) {
    put_i64(out, t.timestamp());
    put_varint(out, u128::from(t.timestamp_subsec_nanos()));
    put_i64(out, i64::from(t.offset().local_minus_utc()));
}

fn put_change<'a>(out: &mut Vec<u8>, names: &mut Names<'a>, c: &'a Change) -> Result<(), String> {
    out.push(match c.op {
        Op::Upsert => 0,
        Op::Delete => 1,
    });
    put_str(out, &c.key);
    match &c.source_time {
        Some(t) => {
            out.push(1);
            put_datetime(out, t);
        }
        None => out.push(0),
    }
    match &c.origin {
        Some(o) => {
            out.push(1);
            put_str(out, o);
        }
        None => out.push(0),
    }
    put_map(out, names, &c.record.fields, 0)
}

fn put_map<'a>(
    out: &mut Vec<u8>,
    names: &mut Names<'a>,
    map: &'a IndexMap<String, Value>,
    depth: usize,
) -> Result<(), String> {
    put_len(out, map.len());
    for (k, v) in map {
        put_varint(out, u128::from(names.id(k)));
        put_value(out, names, v, depth)?;
    }
    Ok(())
}

fn put_value<'a>(
    out: &mut Vec<u8>,
    names: &mut Names<'a>,
    v: &'a Value,
    depth: usize,
) -> Result<(), String> {
    if depth >= MAX_DEPTH {
        return Err(format!(
            "a value is nested more than {MAX_DEPTH} levels deep; flatten it in the mapping"
        ));
    }
    match v {
        Value::Null => out.push(tag::NULL),
        Value::Bool(false) => out.push(tag::FALSE),
        Value::Bool(true) => out.push(tag::TRUE),
        Value::Int(i) => {
            out.push(tag::INT);
            put_i64(out, *i);
        }
        Value::Decimal(d) => {
            out.push(tag::DECIMAL);
            // Sign in the scale byte keeps a negative zero negative.
            let sign = if d.is_sign_negative() { 0x80 } else { 0 };
            out.push((d.scale() as u8) | sign);
            put_varint(out, d.mantissa().unsigned_abs());
        }
        Value::Text(s) => {
            out.push(tag::TEXT);
            put_str(out, s);
        }
        Value::Date(d) => {
            out.push(tag::DATE);
            put_i64(out, i64::from(d.num_days_from_ce()));
        }
        Value::DateTime(t) => {
            out.push(tag::DATETIME);
            put_datetime(out, t);
        }
        Value::List(items) => {
            out.push(tag::LIST);
            put_len(out, items.len());
            for item in items {
                put_value(out, names, item, depth + 1)?;
            }
        }
        Value::Map(m) => {
            out.push(tag::MAP);
            put_map(out, names, m, depth + 1)?;
        }
    }
    Ok(())
}

/// A bounds-checked reader over one payload.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    names: Vec<String>,
}

impl<'a> Reader<'a> {
    /// Checks the format byte and reads the name table.
    fn open(bytes: &'a [u8]) -> Result<Reader<'a>, String> {
        let mut r = Reader {
            bytes,
            pos: 0,
            names: Vec::new(),
        };
        match r.byte()? {
            FORMAT_BINARY_V1 => {}
            other => {
                return Err(format!(
                    "payload format byte {other:#04x} is unknown: the store was written by a \
                     newer qiao; upgrade qiao to read it"
                ));
            }
        }
        let n = r.len()?;
        let mut names = Vec::with_capacity(n.min(r.remaining()));
        for _ in 0..n {
            names.push(r.str()?.to_string());
        }
        r.names = names;
        Ok(r)
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn damaged(&self, what: &str) -> String {
        format!("payload damaged at byte {}: {what}", self.pos)
    }

    fn end(&self) -> Result<(), String> {
        if self.remaining() != 0 {
            return Err(self.damaged("unexpected bytes after the last change"));
        }
        Ok(())
    }

    fn byte(&mut self) -> Result<u8, String> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or_else(|| self.damaged("ends early"))?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u128, String> {
        let mut v: u128 = 0;
        for shift in (0..128).step_by(7) {
            let b = self.byte()?;
            v |= u128::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.damaged("number too long"))
    }

    fn len(&mut self) -> Result<usize, String> {
        let v = self.varint()?;
        usize::try_from(v).map_err(|_| self.damaged("length out of range"))
    }

    fn i64(&mut self) -> Result<i64, String> {
        let v = u64::try_from(self.varint()?).map_err(|_| self.damaged("integer out of range"))?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    fn str(&mut self) -> Result<&'a str, String> {
        let n = self.len()?;
        if n > self.remaining() {
            return Err(self.damaged("text longer than the payload"));
        }
        let bytes = self.bytes;
        let s = std::str::from_utf8(&bytes[self.pos..self.pos + n])
            .map_err(|_| self.damaged("text is not UTF-8"))?;
        self.pos += n;
        Ok(s)
    }

    fn flag(&mut self) -> Result<bool, String> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.damaged("bad presence flag")),
        }
    }

    fn datetime(&mut self) -> Result<DateTime<FixedOffset>, String> {
        let secs = self.i64()?;
        let nanos =
            u32::try_from(self.varint()?).map_err(|_| self.damaged("nanoseconds out of range"))?;
        let offset = i32::try_from(self.i64()?).map_err(|_| self.damaged("offset out of range"))?;
        let offset =
            FixedOffset::east_opt(offset).ok_or_else(|| self.damaged("offset out of range"))?;
        let utc = DateTime::from_timestamp(secs, nanos)
            .ok_or_else(|| self.damaged("time out of range"))?;
        Ok(utc.with_timezone(&offset))
    }

    fn change(&mut self) -> Result<Change, String> {
        let op = match self.byte()? {
            0 => Op::Upsert,
            1 => Op::Delete,
            _ => return Err(self.damaged("bad operation")),
        };
        let key = self.str()?.to_string();
        let source_time = if self.flag()? {
            Some(self.datetime()?)
        } else {
            None
        };
        let origin = if self.flag()? {
            Some(self.str()?.to_string())
        } else {
            None
        };
        let fields = self.map(0)?;
        Ok(Change {
            op,
            key,
            record: Record { fields },
            source_time,
            origin,
        })
    }

    fn map(&mut self, depth: usize) -> Result<IndexMap<String, Value>, String> {
        let n = self.len()?;
        let mut m = IndexMap::with_capacity(n.min(self.remaining()));
        for _ in 0..n {
            let i = self.len()?;
            let name = self
                .names
                .get(i)
                .ok_or_else(|| self.damaged("field name index out of range"))?
                .clone();
            let v = self.value(depth)?;
            m.insert(name, v);
        }
        Ok(m)
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth >= MAX_DEPTH {
            return Err(self.damaged("values nested too deep"));
        }
        Ok(match self.byte()? {
            tag::NULL => Value::Null,
            tag::FALSE => Value::Bool(false),
            tag::TRUE => Value::Bool(true),
            tag::INT => Value::Int(self.i64()?),
            tag::DECIMAL => {
                let scale = self.byte()?;
                let magnitude = self.varint()?;
                let m =
                    i128::try_from(magnitude).map_err(|_| self.damaged("decimal out of range"))?;
                let mut d = Decimal::try_from_i128_with_scale(m, u32::from(scale & 0x7f))
                    .map_err(|_| self.damaged("decimal out of range"))?;
                d.set_sign_negative(scale & 0x80 != 0);
                Value::Decimal(d)
            }
            tag::TEXT => Value::Text(self.str()?.to_string()),
            tag::DATE => {
                let days =
                    i32::try_from(self.i64()?).map_err(|_| self.damaged("date out of range"))?;
                Value::Date(
                    NaiveDate::from_num_days_from_ce_opt(days)
                        .ok_or_else(|| self.damaged("date out of range"))?,
                )
            }
            tag::DATETIME => Value::DateTime(self.datetime()?),
            tag::LIST => {
                let n = self.len()?;
                let mut items = Vec::with_capacity(n.min(self.remaining()));
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::List(items)
            }
            tag::MAP => Value::Map(self.map(depth + 1)?),
            _ => return Err(self.damaged("unknown value tag")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sample() -> Vec<Change> {
        let cst = FixedOffset::east_opt(8 * 3600).unwrap();
        let t = cst.with_ymd_and_hms(2025, 3, 1, 9, 30, 15).unwrap()
            + chrono::Duration::nanoseconds(123_456_789);
        let neg_zero = {
            let mut d: Decimal = "0.00".parse().unwrap();
            d.set_sign_negative(true);
            d
        };
        let lines = Value::List(vec![
            Value::Map(IndexMap::from([
                ("qty".to_string(), Value::Int(3)),
                ("名称".to_string(), "螺丝".into()),
            ])),
            Value::Map(IndexMap::from([("qty".to_string(), Value::Int(-7))])),
        ]);
        let rec = Record::new()
            .with("null", Value::Null)
            .with("t", true)
            .with("f", false)
            .with("min", i64::MIN)
            .with("max", i64::MAX)
            .with("amount", "-12345.6789".parse::<Decimal>().unwrap())
            .with("big", Decimal::MAX)
            .with("neg_zero", neg_zero)
            .with("text", "上海 \"quoted\" \n tab\t")
            .with("empty", "")
            .with(
                "date",
                Value::Date(NaiveDate::from_ymd_opt(1, 1, 1).unwrap()),
            )
            .with(
                "bce",
                Value::Date(NaiveDate::from_ymd_opt(-44, 3, 15).unwrap()),
            )
            .with("at", Value::DateTime(t))
            .with("lines", lines);
        let mut with_meta = Change::upsert("K1|x", rec.clone());
        with_meta.source_time = Some(t);
        with_meta.origin = Some("crm.customers line 7".into());
        vec![
            with_meta,
            Change::delete("K2", Record::new().with("id", 2i64)),
            Change::upsert("", Record::new()),
        ]
    }

    #[test]
    fn round_trips_every_value_kind() {
        let changes = sample();
        let back = decode_changes(&encode_changes(&changes).unwrap()).unwrap();
        assert_eq!(back, changes);
        // PartialEq on Decimal ignores the sign of zero and on DateTime the offset.
        let nz = back[0].record.get("neg_zero");
        assert_eq!(nz.to_string(), "-0.00");
        let Value::DateTime(at) = back[0].record.get("at") else {
            panic!("not a datetime")
        };
        assert_eq!(at.offset().local_minus_utc(), 8 * 3600);
        assert_eq!(at.to_rfc3339(), "2025-03-01T09:30:15.123456789+08:00");
        let one = decode_change(&encode_change(&changes[0]).unwrap()).unwrap();
        assert_eq!(one, changes[0]);
        assert_eq!(
            decode_changes(&encode_changes(&[]).unwrap()).unwrap(),
            vec![]
        );
    }

    #[test]
    fn names_are_written_once() {
        let changes: Vec<Change> = (0..100)
            .map(|i| {
                Change::upsert(
                    i.to_string(),
                    Record::new().with("a_rather_long_field_name", i as i64),
                )
            })
            .collect();
        let bytes = encode_changes(&changes).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(text.matches("a_rather_long_field_name").count(), 1);
    }

    #[test]
    fn damaged_payloads_are_errors_not_panics() {
        let bytes = encode_changes(&sample()).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode_changes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        for i in 1..flipped.len() {
            flipped[i] ^= 0xff;
            let _ = decode_changes(&flipped); // any result but a panic
            flipped[i] ^= 0xff;
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(
            decode_changes(&extra)
                .unwrap_err()
                .contains("unexpected bytes")
        );
        let err = decode_changes(b"Z123").unwrap_err();
        assert!(err.contains("newer qiao"), "{err}");
        assert!(decode_change(b"").is_err());
        // A huge claimed count must not allocate it up front.
        assert!(decode_changes(&[b'B', 0, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut v = Value::Null;
        for _ in 0..(MAX_DEPTH + 1) {
            v = Value::List(vec![v]);
        }
        let c = Change::upsert("k", Record::new().with("deep", v));
        assert!(encode_change(&c).unwrap_err().contains("nested"));
    }
}
