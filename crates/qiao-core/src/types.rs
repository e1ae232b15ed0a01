//! The data-dictionary types: what a canonical field may hold, how to check a value against
//! it (`conform`) and how to bring what sources typically give into it without losing
//! information (`coerce`).
//!
//! Error messages from `conform` and `coerce` quote the offending value (shortened). Callers
//! that handle `sensitive` fields must mask the message before it reaches a log.

use crate::record::Value;
use chrono::{DateTime, NaiveDate};
use rust_decimal::Decimal;
use std::fmt;

/// Precision of a bare `decimal`: rust_decimal holds 28 significant digits exactly.
pub const DEFAULT_DECIMAL_PRECISION: u32 = 28;
/// Scale of a bare `decimal`: 10 decimals covers rates and unit prices with room to spare.
pub const DEFAULT_DECIMAL_SCALE: u32 = 10;
/// Largest precision rust_decimal can hold without rounding.
pub const MAX_DECIMAL_PRECISION: u32 = 28;

/// The type of a canonical field, as written in the data dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldType {
    /// Unicode text; `text(100)` limits it to 100 characters (not bytes).
    Text {
        /// Maximum length in characters, if any.
        max_chars: Option<usize>,
    },
    /// A whole number (i64).
    Integer,
    /// true / false.
    Bool,
    /// An exact decimal: `precision` significant digits, `scale` of them after the point.
    /// A bare `decimal` means `decimal(28,10)`.
    Decimal {
        /// Total significant digits (1..=28).
        precision: u32,
        /// Digits after the decimal point (0..=precision).
        scale: u32,
    },
    /// A calendar date.
    Date,
    /// An instant with its UTC offset.
    DateTime,
    /// Text that must be one of these values (Chinese values are fine).
    Enum(Vec<String>),
    /// A list of nested records of the named entity (e.g. invoice lines).
    List(String),
}

impl FieldType {
    /// Parses a dictionary type: `text`, `text(100)`, `integer`, `bool`, `decimal(18,2)`,
    /// `decimal`, `date`, `datetime`, `enum[a,b,c]`, `list<entity>`.
    pub fn parse(s: &str) -> Result<FieldType, String> {
        let t = s.trim();
        let lower = t.to_ascii_lowercase();
        match lower.as_str() {
            "text" | "string" => return Ok(FieldType::Text { max_chars: None }),
            "integer" | "int" => return Ok(FieldType::Integer),
            "bool" | "boolean" => return Ok(FieldType::Bool),
            "decimal" => {
                return Ok(FieldType::Decimal {
                    precision: DEFAULT_DECIMAL_PRECISION,
                    scale: DEFAULT_DECIMAL_SCALE,
                });
            }
            "date" => return Ok(FieldType::Date),
            "datetime" | "timestamp" => return Ok(FieldType::DateTime),
            _ => {}
        }
        if let Some(args) = call_args(t, "text", '(', ')') {
            let n = parse_count(args, "text(N)", "the maximum length in characters")?;
            if n == 0 {
                return Err(format!(
                    "`{t}`: a text field of length 0 can hold nothing; write e.g. `text(100)` or plain `text`"
                ));
            }
            return Ok(FieldType::Text { max_chars: Some(n) });
        }
        if let Some(args) = call_args(t, "decimal", '(', ')') {
            return parse_decimal_args(t, args);
        }
        if let Some(args) = call_args(t, "enum", '[', ']') {
            return parse_enum_args(t, args);
        }
        if let Some(args) = call_args(t, "list", '<', '>') {
            let name = args.trim();
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.');
            if !ok {
                return Err(format!(
                    "`{t}`: `list<…>` needs the name of an entity, e.g. `list<invoice_line>`"
                ));
            }
            return Ok(FieldType::List(name.to_string()));
        }
        Err(format!(
            "unknown type `{t}`; use one of text, text(N), integer, bool, decimal(P,S), date, \
             datetime, enum[a,b,c], list<entity>"
        ))
    }

    /// True for `integer` and `decimal` types (those a numeric range can apply to).
    pub fn is_numeric(&self) -> bool {
        matches!(self, FieldType::Integer | FieldType::Decimal { .. })
    }

    /// True for types whose values are text (`text`, `enum`).
    pub fn is_textual(&self) -> bool {
        matches!(self, FieldType::Text { .. } | FieldType::Enum(_))
    }

    /// Checks that `v` already has this type. `Null` always conforms: whether a field must
    /// be present is the `required` flag's business, not the type's.
    pub fn conform(&self, v: &Value) -> Result<(), String> {
        if matches!(v, Value::Null) {
            return Ok(());
        }
        match (self, v) {
            (FieldType::Text { max_chars }, Value::Text(s)) => check_len(s, *max_chars),
            (FieldType::Integer, Value::Int(_)) => Ok(()),
            (FieldType::Bool, Value::Bool(_)) => Ok(()),
            (FieldType::Decimal { precision, scale }, Value::Decimal(d)) => {
                check_decimal(*d, *precision, *scale)
            }
            (FieldType::Date, Value::Date(_)) => Ok(()),
            (FieldType::DateTime, Value::DateTime(_)) => Ok(()),
            (FieldType::Enum(vals), Value::Text(s)) => {
                if vals.iter().any(|a| a == s) {
                    Ok(())
                } else {
                    Err(not_in_enum(s, vals))
                }
            }
            (FieldType::List(entity), Value::List(items)) => {
                match items.iter().position(|i| !matches!(i, Value::Map(_))) {
                    None => Ok(()),
                    Some(i) => Err(format!(
                        "item {} of the list is a {}, not a `{entity}` record",
                        i + 1,
                        items[i].type_name()
                    )),
                }
            }
            _ => Err(format!(
                "value {} is a {}, but the field is `{self}`",
                show(v),
                v.type_name()
            )),
        }
    }

    /// Converts a value as sources typically give it into this type, refusing anything
    /// that would lose information. The result conforms (see [`FieldType::conform`]).
    /// Blank text becomes `Null` for every non-text type (an empty CSV cell is "no value").
    pub fn coerce(&self, v: Value) -> Result<Value, String> {
        if matches!(v, Value::Null) {
            return Ok(Value::Null);
        }
        if !matches!(self, FieldType::Text { .. }) && v.is_blank() {
            return Ok(Value::Null);
        }
        let out = match self {
            FieldType::Text { .. } => coerce_text(v, self)?,
            FieldType::Integer => coerce_integer(v)?,
            FieldType::Bool => coerce_bool(v)?,
            FieldType::Decimal { scale, .. } => coerce_decimal(v, *scale, self)?,
            FieldType::Date => coerce_date(v)?,
            FieldType::DateTime => coerce_datetime(v)?,
            FieldType::Enum(vals) => coerce_enum(v, vals)?,
            FieldType::List(_) => v,
        };
        self.conform(&out)?;
        Ok(out)
    }
}

impl std::str::FromStr for FieldType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldType::parse(s)
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldType::Text { max_chars: None } => f.write_str("text"),
            FieldType::Text { max_chars: Some(n) } => write!(f, "text({n})"),
            FieldType::Integer => f.write_str("integer"),
            FieldType::Bool => f.write_str("bool"),
            FieldType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            FieldType::Date => f.write_str("date"),
            FieldType::DateTime => f.write_str("datetime"),
            FieldType::Enum(v) => write!(f, "enum[{}]", v.join(",")),
            FieldType::List(e) => write!(f, "list<{e}>"),
        }
    }
}

/// The text between `open` and a final `close` after keyword `kw` (ASCII case-insensitive).
fn call_args<'a>(t: &'a str, kw: &str, open: char, close: char) -> Option<&'a str> {
    let head = t.get(..kw.len())?;
    if !head.eq_ignore_ascii_case(kw) {
        return None;
    }
    let rest = t[kw.len()..].trim_start();
    let inner = rest.strip_prefix(open)?.strip_suffix(close)?;
    Some(inner)
}

fn parse_count(s: &str, form: &str, what: &str) -> Result<usize, String> {
    s.trim().parse::<usize>().map_err(|_| {
        format!(
            "`{form}` needs a whole number for {what}, got `{}`",
            s.trim()
        )
    })
}

fn parse_decimal_args(t: &str, args: &str) -> Result<FieldType, String> {
    let parts: Vec<&str> = args.split([',', '，']).collect();
    let (p, s) = match parts.as_slice() {
        [p] => (parse_count(p, "decimal(P,S)", "the precision")?, 0usize),
        [p, s] => (
            parse_count(p, "decimal(P,S)", "the precision")?,
            parse_count(s, "decimal(P,S)", "the scale")?,
        ),
        _ => {
            return Err(format!(
                "`{t}`: write `decimal(P,S)` with P total digits and S decimals, e.g. `decimal(18,2)`"
            ));
        }
    };
    let max = MAX_DECIMAL_PRECISION as usize;
    if p == 0 || p > max {
        return Err(format!(
            "`{t}`: precision must be 1 to {max} digits (exact decimals hold at most {max})"
        ));
    }
    if s > p {
        return Err(format!(
            "`{t}`: scale {s} is larger than precision {p}; the scale counts digits after the \
             point and is part of the precision, e.g. `decimal(18,2)`"
        ));
    }
    // Both are at most 28 here, so the casts cannot truncate.
    Ok(FieldType::Decimal {
        precision: p as u32,
        scale: s as u32,
    })
}

fn parse_enum_args(t: &str, args: &str) -> Result<FieldType, String> {
    // Accept the full-width comma and enumeration comma too: people typing Chinese values
    // often have the Chinese keyboard layout on.
    let mut vals: Vec<String> = Vec::new();
    for raw in args.split([',', '，', '、']) {
        let v = raw.trim().trim_matches(|c| c == '"' || c == '\'').trim();
        if v.is_empty() {
            return Err(format!(
                "`{t}`: an enum value is empty; list the values separated by commas, e.g. `enum[个人,企业]`"
            ));
        }
        if vals.iter().any(|x| x == v) {
            return Err(format!("`{t}`: value `{v}` is listed twice"));
        }
        vals.push(v.to_string());
    }
    Ok(FieldType::Enum(vals))
}

fn check_len(s: &str, max: Option<usize>) -> Result<(), String> {
    match max {
        Some(m) => {
            let n = s.chars().count();
            if n > m {
                Err(format!(
                    "text {} has {n} characters, more than the {m} allowed; shorten it at the \
                     source or add the converter `max_chars: {{max: {m}, policy: truncate}}`",
                    show_str(s)
                ))
            } else {
                Ok(())
            }
        }
        None => Ok(()),
    }
}

/// Digits before the decimal point of `d`, ignoring sign (0 for |d| < 1).
fn integer_digits(d: Decimal) -> u32 {
    let int = d.trunc().abs();
    if int.is_zero() {
        0
    } else {
        // `int` is a whole number, so its text is only digits.
        int.normalize().to_string().len() as u32
    }
}

fn check_decimal(d: Decimal, precision: u32, scale: u32) -> Result<(), String> {
    let n = d.normalize();
    if n.scale() > scale {
        return Err(format!(
            "{d} has {} decimals, more than the {scale} of `decimal({precision},{scale})`; \
             round it with the converter `scale: {scale}` if rounding is acceptable",
            n.scale()
        ));
    }
    let int_digits = integer_digits(d);
    let allowed = precision - scale;
    if int_digits > allowed {
        return Err(format!(
            "{d} has {int_digits} digits before the point, more than the {allowed} that \
             `decimal({precision},{scale})` allows; check the unit (e.g. fen vs yuan, \
             converter `unit: 0.01`) or widen the type"
        ));
    }
    Ok(())
}

fn not_in_enum(s: &str, vals: &[String]) -> String {
    let hint = match crate_did_you_mean(s, vals) {
        Some(m) => format!("did you mean `{m}`? "),
        None => String::new(),
    };
    format!(
        "{} is not one of {}; {hint}map source values with `values:` in the mapping",
        show_str(s),
        vals.iter()
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn crate_did_you_mean<'a>(s: &str, vals: &'a [String]) -> Option<&'a str> {
    vals.iter()
        .map(|v| (strsim::jaro_winkler(s, v), v))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, v)| v.as_str())
}

fn refuse(v: &Value, ty: &FieldType, fix: &str) -> String {
    format!(
        "cannot turn {} {} into `{ty}` without losing information; {fix}",
        v.type_name(),
        show(v)
    )
}

fn coerce_text(v: Value, ty: &FieldType) -> Result<Value, String> {
    match v {
        Value::Text(_) => Ok(v),
        Value::List(_) | Value::Map(_) => Err(refuse(
            &v,
            ty,
            "map a single field of it, or compute the text with `expr`",
        )),
        other => Ok(Value::Text(other.to_string())),
    }
}

fn coerce_integer(v: Value) -> Result<Value, String> {
    let ty = FieldType::Integer;
    match v {
        Value::Int(_) => Ok(v),
        Value::Decimal(d) => decimal_to_int(d).ok_or_else(|| {
            refuse(
                &v,
                &ty,
                "make the field a `decimal`, or round it with the converter `scale: 0` first",
            )
        }),
        Value::Text(ref s) => {
            let t = s.trim();
            if let Ok(i) = t.parse::<i64>() {
                return Ok(Value::Int(i));
            }
            match Decimal::from_str_exact(t).ok().and_then(decimal_to_int) {
                Some(i) => Ok(i),
                None => Err(refuse(
                    &v,
                    &ty,
                    "fix the value at the source, or make the field `text` or `decimal`",
                )),
            }
        }
        _ => Err(refuse(
            &v,
            &ty,
            "add a converter or an `expr` in the mapping that makes a whole number",
        )),
    }
}

fn decimal_to_int(d: Decimal) -> Option<Value> {
    if d.fract().is_zero() {
        i64::try_from(d.trunc()).ok().map(Value::Int)
    } else {
        None
    }
}

fn coerce_bool(v: Value) -> Result<Value, String> {
    let b = match &v {
        Value::Bool(b) => Some(*b),
        Value::Int(0) => Some(false),
        Value::Int(1) => Some(true),
        Value::Decimal(d) if *d == Decimal::ZERO => Some(false),
        Value::Decimal(d) if *d == Decimal::ONE => Some(true),
        Value::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    };
    b.map(Value::Bool).ok_or_else(|| {
        refuse(
            &v,
            &FieldType::Bool,
            "only true/false/1/0 are read as bool; map other values with `values:` \
             (e.g. `values: {\"true\": \"是\", \"false\": \"否\"}`)",
        )
    })
}

fn coerce_decimal(v: Value, scale: u32, ty: &FieldType) -> Result<Value, String> {
    let d = match &v {
        Value::Decimal(d) => *d,
        Value::Int(i) => Decimal::from(*i),
        Value::Text(s) => {
            let t = s.trim();
            let t = t.strip_prefix('+').unwrap_or(t);
            let parsed = Decimal::from_str_exact(t).or_else(|e| {
                if t.contains(['e', 'E']) {
                    Decimal::from_scientific(t)
                } else {
                    Err(e)
                }
            });
            match parsed {
                Ok(d) => d,
                Err(_) => {
                    return Err(refuse(
                        &v,
                        ty,
                        "it is not a plain number; strip symbols such as `¥` or `,` with the \
                         converter `strip: \"¥,\"` before `decimal`",
                    ));
                }
            }
        }
        _ => {
            return Err(refuse(
                &v,
                ty,
                "add a converter or an `expr` in the mapping that makes a number",
            ));
        }
    };
    // Trailing zeros beyond the scale carry no information: 100.500 fits decimal(18,2).
    let d = if d.scale() > scale && d.normalize().scale() <= scale {
        let mut r = d.normalize();
        r.rescale(scale);
        r
    } else {
        d
    };
    Ok(Value::Decimal(d))
}

fn coerce_date(v: Value) -> Result<Value, String> {
    match &v {
        Value::Date(_) => Ok(v),
        Value::Text(s) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map(Value::Date)
            .map_err(|_| {
                refuse(
                    &v,
                    &FieldType::Date,
                    "dates are read as YYYY-MM-DD; for other layouts add the converter \
                     `date: \"%Y/%m/%d\"` (or the layout the source uses)",
                )
            }),
        Value::DateTime(_) => Err(refuse(
            &v,
            &FieldType::Date,
            "the time of day would be dropped; make the field `datetime`, or take the date \
             with an `expr` in the mapping",
        )),
        _ => Err(refuse(
            &v,
            &FieldType::Date,
            "add the converter `date: \"<layout>\"` in the mapping",
        )),
    }
}

fn coerce_datetime(v: Value) -> Result<Value, String> {
    match &v {
        Value::DateTime(_) => Ok(v),
        Value::Text(s) => DateTime::parse_from_rfc3339(s.trim())
            .map(Value::DateTime)
            .map_err(|_| {
                refuse(
                    &v,
                    &FieldType::DateTime,
                    "date-times are read as RFC 3339 with an offset (2024-05-01T08:30:00+08:00); \
                     for other layouts add the converter \
                     `datetime: {format: \"%Y-%m-%d %H:%M:%S\", tz: Asia/Shanghai}`",
                )
            }),
        _ => Err(refuse(
            &v,
            &FieldType::DateTime,
            "add the converter `datetime: {format: \"<layout>\", tz: Asia/Shanghai}` in the mapping",
        )),
    }
}

fn coerce_enum(v: Value, vals: &[String]) -> Result<Value, String> {
    let text = match &v {
        Value::Text(s) => s.trim().to_string(),
        Value::Int(_) | Value::Bool(_) | Value::Decimal(_) => v.to_string(),
        _ => {
            return Err(refuse(
                &v,
                &FieldType::Enum(vals.to_vec()),
                "map source values to the allowed ones with `values:` in the mapping",
            ));
        }
    };
    if vals.contains(&text) {
        Ok(Value::Text(text))
    } else {
        Err(not_in_enum(&text, vals))
    }
}

/// A value for an error message, shortened so a long text does not drown the message.
fn show(v: &Value) -> String {
    match v {
        Value::Text(s) => show_str(s),
        other => {
            let s = other.to_string();
            shorten(&s)
        }
    }
}

fn show_str(s: &str) -> String {
    format!("\"{}\"", shorten(s))
}

fn shorten(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() > MAX {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}…")
    } else {
        s.to_string()
    }
}
