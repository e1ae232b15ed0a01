//! Declarative value converters, compiled once per mapping: each has a forward (inbound)
//! step and an inverse (outbound) step. Normalizations (trim, case, width, strip, length)
//! are their own inverse: they make a value acceptable, whichever way it travels.

use super::show;
use crate::config::{Converter, LengthPolicy};
use crate::record::Value;
use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use rust_decimal::{Decimal, RoundingStrategy};

/// The most decimals rust_decimal can hold.
const MAX_SCALE: u32 = 28;

/// A converter with its zone parsed and its arguments checked.
#[derive(Debug, Clone)]
pub(crate) enum Conv {
    Trim,
    Upper,
    Lower,
    Halfwidth,
    Strip(Vec<char>),
    MaxChars { max: usize, truncate: bool },
    Scale(u32),
    Unit(Decimal),
    Date(String),
    Datetime { format: String, tz: Tz },
    Decimal,
    Integer,
    Text,
}

/// What a converter step did besides producing its value.
pub(crate) struct Step {
    pub value: Value,
    pub warning: Option<String>,
}

impl Step {
    fn ok(value: Value) -> Result<Step, String> {
        Ok(Step {
            value,
            warning: None,
        })
    }
}

impl Conv {
    /// Checks a configured converter; the error says what to write instead.
    pub(crate) fn compile(c: &Converter) -> Result<Conv, String> {
        Ok(match c {
            Converter::Trim => Conv::Trim,
            Converter::Upper => Conv::Upper,
            Converter::Lower => Conv::Lower,
            Converter::Halfwidth => Conv::Halfwidth,
            Converter::Strip(chars) => {
                if chars.is_empty() {
                    return Err(
                        "`strip` needs the characters to remove, e.g. `{strip: \"*#\"}`".into(),
                    );
                }
                Conv::Strip(chars.chars().collect())
            }
            Converter::MaxChars { max, policy } => {
                if *max == 0 {
                    return Err(
                        "`max_chars` of 0 would allow nothing; give a limit of 1 or more".into(),
                    );
                }
                Conv::MaxChars {
                    max: *max,
                    truncate: *policy == LengthPolicy::Truncate,
                }
            }
            Converter::Scale(n) => {
                if *n > MAX_SCALE {
                    return Err(format!(
                        "`scale: {n}` is more than the {MAX_SCALE} decimals an exact decimal holds; use at most {MAX_SCALE}"
                    ));
                }
                Conv::Scale(*n)
            }
            Converter::Unit(f) => {
                if f.is_zero() {
                    return Err("`unit: 0` would erase every value and cannot be undone outbound; use the factor from the system unit to the canonical one, e.g. `0.01` for fen → yuan".into());
                }
                Conv::Unit(*f)
            }
            Converter::Date(fmt) => {
                check_format(fmt)?;
                Conv::Date(fmt.clone())
            }
            Converter::Datetime { format, tz } => {
                check_format(format)?;
                let tz = match tz {
                    None => Tz::UTC,
                    Some(name) => name.parse::<Tz>().map_err(|_| {
                        format!("unknown time zone `{name}`; use an IANA name such as `Asia/Shanghai` or `UTC`")
                    })?,
                };
                Conv::Datetime {
                    format: format.clone(),
                    tz,
                }
            }
            Converter::Decimal => Conv::Decimal,
            Converter::Integer => Conv::Integer,
            Converter::Text => Conv::Text,
        })
    }

    /// How the step reads in provenance (inbound).
    pub(crate) fn describe(&self) -> String {
        match self {
            Conv::Trim => "trim".into(),
            Conv::Upper => "upper".into(),
            Conv::Lower => "lower".into(),
            Conv::Halfwidth => "halfwidth".into(),
            Conv::Strip(c) => format!("strip({})", c.iter().collect::<String>()),
            Conv::MaxChars { max, truncate } => {
                format!(
                    "max_chars({max}, {})",
                    if *truncate { "truncate" } else { "reject" }
                )
            }
            Conv::Scale(n) => format!("scale({n})"),
            Conv::Unit(f) => format!("unit(×{f})"),
            Conv::Date(f) => format!("date({f})"),
            Conv::Datetime { format, tz } => format!("datetime({format}, {tz})"),
            Conv::Decimal => "decimal".into(),
            Conv::Integer => "integer".into(),
            Conv::Text => "text".into(),
        }
    }

    /// How the inverse step reads in provenance (outbound).
    pub(crate) fn describe_inverse(&self) -> String {
        match self {
            Conv::Unit(f) => format!("unit(÷{f})"),
            Conv::Date(f) => format!("format date({f})"),
            Conv::Datetime { format, tz } => format!("format datetime({format}, {tz})"),
            Conv::Text => "as number".into(),
            other => other.describe(),
        }
    }

    /// Applies the converter inbound (system → canonical).
    pub(crate) fn forward(&self, v: Value, sensitive: bool) -> Result<Step, String> {
        if matches!(v, Value::Null) {
            return Step::ok(v);
        }
        match self {
            Conv::Trim | Conv::Upper | Conv::Lower | Conv::Halfwidth | Conv::Strip(_) => {
                Step::ok(self.normalize(v))
            }
            Conv::MaxChars { max, truncate } => max_chars(v, *max, *truncate, sensitive),
            Conv::Scale(n) => Step::ok(scale(v, *n, sensitive)?),
            Conv::Unit(f) => {
                let Some(d) = number(&v, sensitive)? else {
                    return Step::ok(Value::Null);
                };
                d.checked_mul(*f)
                    .map(Value::Decimal)
                    .ok_or_else(|| {
                        format!(
                            "{} × {f} overflows an exact decimal; check the unit factor",
                            show(&v, sensitive)
                        )
                    })
                    .and_then(Step::ok)
            }
            Conv::Date(fmt) => Step::ok(parse_date(v, fmt, sensitive)?),
            Conv::Datetime { format, tz } => Step::ok(parse_datetime(v, format, *tz, sensitive)?),
            Conv::Decimal => Step::ok(number(&v, sensitive)?.map_or(Value::Null, Value::Decimal)),
            Conv::Integer => Step::ok(integer(&v, sensitive)?),
            Conv::Text => Step::ok(match v {
                Value::Text(_) => v,
                other => Value::Text(other.to_string()),
            }),
        }
    }

    /// Applies the converter's inverse outbound (canonical → system).
    pub(crate) fn inverse(&self, v: Value, sensitive: bool) -> Result<Step, String> {
        if matches!(v, Value::Null) {
            return Step::ok(v);
        }
        match self {
            Conv::Trim
            | Conv::Upper
            | Conv::Lower
            | Conv::Halfwidth
            | Conv::Strip(_)
            | Conv::MaxChars { .. }
            | Conv::Scale(_) => self.forward(v, sensitive),
            Conv::Unit(f) => {
                let Some(d) = number(&v, sensitive)? else {
                    return Step::ok(Value::Null);
                };
                d.checked_div(*f)
                    .map(|x| Value::Decimal(x.normalize()))
                    .ok_or_else(|| {
                        format!(
                            "{} ÷ {f} overflows an exact decimal; check the unit factor",
                            show(&v, sensitive)
                        )
                    })
                    .and_then(Step::ok)
            }
            Conv::Date(fmt) => Step::ok(format_date(v, fmt, sensitive)?),
            Conv::Datetime { format, tz } => Step::ok(format_datetime(v, format, *tz, sensitive)?),
            // The system field holds numbers (as text or not): give it a typed number,
            // which text sinks write as digits and SQL sinks bind to numeric columns.
            Conv::Decimal => Step::ok(number(&v, sensitive)?.map_or(Value::Null, Value::Decimal)),
            Conv::Integer => Step::ok(integer(&v, sensitive)?),
            Conv::Text => Step::ok(text_to_number(v)),
        }
    }

    fn normalize(&self, v: Value) -> Value {
        let Value::Text(s) = v else { return v };
        Value::Text(match self {
            Conv::Trim => s
                .trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
                .to_string(),
            Conv::Upper => s.to_uppercase(),
            Conv::Lower => s.to_lowercase(),
            Conv::Halfwidth => halfwidth(&s),
            Conv::Strip(chars) => s.chars().filter(|c| !chars.contains(c)).collect(),
            _ => s,
        })
    }
}

/// Full-width ASCII forms (U+FF01–U+FF5E) and the ideographic space → half-width. Chinese
/// input methods produce these; a tax id typed as `９１３１…` must compare equal to `9131…`.
pub fn halfwidth(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{3000}' => ' ',
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .collect()
}

fn check_format(fmt: &str) -> Result<(), String> {
    if fmt.is_empty() || StrftimeItems::new(fmt).any(|i| matches!(i, Item::Error)) {
        return Err(format!(
            "`{fmt}` is not a valid date format; use strftime codes such as `%Y-%m-%d` or `%Y%m%d %H:%M:%S`"
        ));
    }
    Ok(())
}

fn max_chars(v: Value, max: usize, truncate: bool, sensitive: bool) -> Result<Step, String> {
    let Value::Text(s) = &v else {
        return Step::ok(v);
    };
    let n = s.chars().count();
    if n <= max {
        return Step::ok(v);
    }
    if truncate {
        let cut: String = s.chars().take(max).collect();
        return Ok(Step {
            warning: Some(format!(
                "value {} had {n} characters and was cut to the limit of {max}",
                show(&v, sensitive)
            )),
            value: Value::Text(cut),
        });
    }
    Err(format!(
        "value {} has {n} characters, more than the limit of {max}; shorten it at the source, or set `policy: truncate` on `max_chars` to cut it with a warning",
        show(&v, sensitive)
    ))
}

/// Reads a number-like value as an exact decimal; blank text is no value.
fn number(v: &Value, sensitive: bool) -> Result<Option<Decimal>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Int(i) => Ok(Some(Decimal::from(*i))),
        Value::Decimal(d) => Ok(Some(*d)),
        Value::Text(s) if s.trim().is_empty() => Ok(None),
        Value::Text(s) => {
            let t = s.trim();
            t.parse::<Decimal>()
                .or_else(|_| Decimal::from_scientific(t))
                .map(Some)
                .map_err(|_| {
                    format!(
                        "value {} is not a number; fix it at the source or map it with an expression",
                        show(v, sensitive)
                    )
                })
        }
        other => Err(format!(
            "value {} is a {}, not a number; remove the numeric converter or fix the source field",
            show(other, sensitive),
            other.type_name()
        )),
    }
}

fn scale(v: Value, n: u32, sensitive: bool) -> Result<Value, String> {
    let Some(d) = number(&v, sensitive)? else {
        return Ok(Value::Null);
    };
    let mut r = d.round_dp_with_strategy(n, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(n);
    if r.scale() != n {
        return Err(format!(
            "value {} is too large to carry {n} decimals exactly; lower the scale",
            show(&v, sensitive)
        ));
    }
    Ok(Value::Decimal(r))
}

fn integer(v: &Value, sensitive: bool) -> Result<Value, String> {
    let bad = || {
        format!(
            "value {} is not a whole number; fix it at the source or use the `decimal` converter",
            show(v, sensitive)
        )
    };
    match v {
        Value::Int(_) => Ok(v.clone()),
        Value::Decimal(d) if d.fract().is_zero() => {
            i64::try_from(*d).map(Value::Int).map_err(|_| bad())
        }
        Value::Text(s) if s.trim().is_empty() => Ok(Value::Null),
        Value::Text(s) => s.trim().parse::<i64>().map(Value::Int).map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// Outbound inverse of `text`: the system column is numeric, so give it a number when the
/// text is one; leading zeros mean it was never a number, so such text stays text.
fn text_to_number(v: Value) -> Value {
    let Value::Text(s) = &v else { return v };
    let t = s.trim();
    let leading_zero = t.len() > 1 && t.starts_with('0') && !t.starts_with("0.");
    if leading_zero {
        return v;
    }
    if let Ok(i) = t.parse::<i64>() {
        return Value::Int(i);
    }
    match t.parse::<Decimal>() {
        Ok(d) => Value::Decimal(d),
        Err(_) => v,
    }
}

fn date_example(fmt: &str) -> String {
    let sample = NaiveDate::from_ymd_opt(2024, 3, 31)
        .and_then(|d| d.and_hms_opt(14, 5, 9))
        .map(|t| t.format(fmt).to_string());
    sample.unwrap_or_default()
}

fn parse_date(v: Value, fmt: &str, sensitive: bool) -> Result<Value, String> {
    let text = match &v {
        Value::Date(_) => return Ok(v),
        Value::DateTime(t) => return Ok(Value::Date(t.date_naive())),
        Value::Text(s) if s.trim().is_empty() => return Ok(Value::Null),
        Value::Text(s) => s.trim().to_string(),
        Value::Int(i) => i.to_string(),
        other => {
            return Err(format!(
                "value {} is a {}, not a date",
                show(other, sensitive),
                other.type_name()
            ));
        }
    };
    NaiveDate::parse_from_str(&text, fmt)
        .or_else(|_| NaiveDateTime::parse_from_str(&text, fmt).map(|t| t.date()))
        .map(Value::Date)
        .map_err(|e| {
            format!(
                "value {} does not match the date format `{fmt}` ({e}); a matching value looks like `{}`",
                show(&v, sensitive),
                date_example(fmt)
            )
        })
}

fn parse_datetime(v: Value, fmt: &str, tz: Tz, sensitive: bool) -> Result<Value, String> {
    let text = match &v {
        Value::DateTime(_) => return Ok(v),
        Value::Date(d) => return local_to_fixed(d.and_time(NaiveTime::MIN), tz, &v, sensitive),
        Value::Text(s) if s.trim().is_empty() => return Ok(Value::Null),
        Value::Text(s) => s.trim().to_string(),
        Value::Int(i) => i.to_string(),
        other => {
            return Err(format!(
                "value {} is a {}, not a date-time",
                show(other, sensitive),
                other.type_name()
            ));
        }
    };
    // Text that carries its own offset keeps it; text without one is read in the zone.
    if let Ok(t) = DateTime::parse_from_str(&text, fmt) {
        return Ok(Value::DateTime(t));
    }
    let local = NaiveDateTime::parse_from_str(&text, fmt)
        .or_else(|_| NaiveDate::parse_from_str(&text, fmt).map(|d| d.and_time(NaiveTime::MIN)))
        .map_err(|e| {
            format!(
                "value {} does not match the date-time format `{fmt}` ({e}); a matching value looks like `{}`",
                show(&v, sensitive),
                date_example(fmt)
            )
        })?;
    local_to_fixed(local, tz, &v, sensitive)
}

fn local_to_fixed(
    local: NaiveDateTime,
    tz: Tz,
    v: &Value,
    sensitive: bool,
) -> Result<Value, String> {
    // In a DST fold the earlier instant is taken; a time in a DST gap does not exist.
    match tz.from_local_datetime(&local).earliest() {
        Some(t) => Ok(Value::DateTime(t.fixed_offset())),
        None => Err(format!(
            "value {} is not a time that exists in zone {tz} (skipped by a daylight-saving change); fix it at the source",
            show(v, sensitive)
        )),
    }
}

fn format_date(v: Value, fmt: &str, sensitive: bool) -> Result<Value, String> {
    let d = match &v {
        Value::Date(d) => *d,
        Value::DateTime(t) => t.date_naive(),
        Value::Text(s) => match NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
            Ok(d) => d,
            Err(_) => return Ok(v),
        },
        other => {
            return Err(format!(
                "value {} is a {}, not a date; the canonical field should hold a date",
                show(other, sensitive),
                other.type_name()
            ));
        }
    };
    Ok(Value::Text(d.format(fmt).to_string()))
}

fn format_datetime(v: Value, fmt: &str, tz: Tz, sensitive: bool) -> Result<Value, String> {
    let t: DateTime<FixedOffset> = match &v {
        Value::DateTime(t) => *t,
        Value::Date(d) => match tz
            .from_local_datetime(&d.and_time(NaiveTime::MIN))
            .earliest()
        {
            Some(t) => t.fixed_offset(),
            None => Utc
                .from_utc_datetime(&d.and_time(NaiveTime::MIN))
                .fixed_offset(),
        },
        Value::Text(s) => match DateTime::parse_from_rfc3339(s.trim()) {
            Ok(t) => t,
            Err(_) => return Ok(v),
        },
        other => {
            return Err(format!(
                "value {} is a {}, not a date-time; the canonical field should hold a date-time",
                show(other, sensitive),
                other.type_name()
            ));
        }
    };
    Ok(Value::Text(t.with_timezone(&tz).format(fmt).to_string()))
}
