//! Checks of mappings: what they point at, which fields they name, and whether their
//! converters, value maps and defaults fit the types of the data dictionary.

use super::exprs::{Scope, check_expr};
use super::{Cx, at, name_hint};
use crate::config::{Converter, FieldMap, FromSpec, MappingDef};
use crate::record::Value;
use crate::types::FieldType;
use chrono::format::{Item, StrftimeItems};
use std::collections::HashMap;

pub(super) fn check_mappings(cx: &mut Cx) {
    let cfg = cx.cfg;
    for (mname, m) in &cfg.mappings {
        if !cfg.systems.contains_key(&m.system.value) {
            cx.error(
                at(&m.system),
                format!(
                    "mapping `{mname}` belongs to system `{}`, which is not defined",
                    m.system.value
                ),
                name_hint(
                    &m.system.value,
                    cfg.systems.keys().map(String::as_str),
                    "system",
                ),
            );
        }
        let Some(ent) = cfg.entities.get(&m.entity.value) else {
            cx.error(
                at(&m.entity),
                format!(
                    "mapping `{mname}` maps entity `{}`, which is not defined",
                    m.entity.value
                ),
                name_hint(
                    &m.entity.value,
                    cfg.entities.keys().map(String::as_str),
                    "entity",
                ),
            );
            continue;
        };
        let ename = m.entity.value.as_str();
        for (fname, fm) in &m.fields {
            if !ent.fields.contains_key(&fname.value) {
                cx.error(
                    at(fname),
                    format!(
                        "unknown field `{}` in mapping `{mname}`: entity `{ename}` has no such field",
                        fname.value
                    ),
                    name_hint(&fname.value, ent.fields.keys().map(String::as_str), "field"),
                );
                continue;
            }
            let ty = cx.field_type(ename, &fname.value).cloned();
            check_field_map(cx, mname, m, &fname.value, fm, ty.as_ref());
        }
        for k in &ent.key {
            // A key that is not a field is reported once, in the entity.
            if ent.fields.contains_key(&k.value) && !m.fields.keys().any(|f| f.value == k.value) {
                cx.error(
                    at(&m.entity),
                    format!(
                        "mapping `{mname}` does not map key field `{}` of entity `{ename}`",
                        k.value
                    ),
                    format!(
                        "add `{}: {{from: <column>}}` under `fields:`; without the key records cannot be matched",
                        k.value
                    ),
                );
            }
        }
    }
}

/// What a value is after a converter, as far as the checker can tell.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// Whatever the source gave.
    Any,
    Text,
    Decimal,
    Integer,
    Date,
    DateTime,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Any => "a value",
            Kind::Text => "text",
            Kind::Decimal => "a decimal",
            Kind::Integer => "an integer",
            Kind::Date => "a date",
            Kind::DateTime => "a date-time",
        }
    }
}

fn converter_name(c: &Converter) -> &'static str {
    match c {
        Converter::Trim => "trim",
        Converter::Upper => "upper",
        Converter::Lower => "lower",
        Converter::Halfwidth => "halfwidth",
        Converter::Strip(_) => "strip",
        Converter::MaxChars { .. } => "max_chars",
        Converter::Scale(_) => "scale",
        Converter::Unit(_) => "unit",
        Converter::Date(_) => "date",
        Converter::Datetime { .. } => "datetime",
        Converter::Decimal => "decimal",
        Converter::Integer => "integer",
        Converter::Text => "text",
    }
}

/// The field types a converter's output fits, and what it makes.
fn produces(c: &Converter) -> (fn(&FieldType) -> bool, Kind) {
    match c {
        Converter::Trim
        | Converter::Upper
        | Converter::Lower
        | Converter::Halfwidth
        | Converter::Strip(_)
        | Converter::MaxChars { .. } => (|_| true, Kind::Text),
        Converter::Scale(_) | Converter::Unit(_) | Converter::Decimal => {
            (|t| matches!(t, FieldType::Decimal { .. }), Kind::Decimal)
        }
        Converter::Integer => (FieldType::is_numeric, Kind::Integer),
        Converter::Date(_) => (|t| *t == FieldType::Date, Kind::Date),
        Converter::Datetime { .. } => (|t| *t == FieldType::DateTime, Kind::DateTime),
        Converter::Text => (FieldType::is_textual, Kind::Text),
    }
}

fn bad_strftime(fmt: &str) -> bool {
    StrftimeItems::new(fmt).any(|i| matches!(i, Item::Error))
}

fn check_field_map(
    cx: &mut Cx,
    mname: &str,
    m: &MappingDef,
    fname: &str,
    fm: &FieldMap,
    ty: Option<&FieldType>,
) {
    let ename = m.entity.value.as_str();
    let place = format!("field `{fname}` of mapping `{mname}`");
    let mut kind = Kind::Any;
    let mut prev: Option<&'static str> = None;
    for conv in &fm.convert {
        let c = &conv.value;
        let name = converter_name(c);
        let (fits, out) = produces(c);
        let text_op = out == Kind::Text && !matches!(c, Converter::Text);
        if text_op && !matches!(kind, Kind::Any | Kind::Text) {
            cx.error(
                at(conv),
                format!(
                    "converter `{name}` in {place} works on text, but `{}` before it already made {}",
                    prev.unwrap_or("?"),
                    kind.name()
                ),
                format!("move `{name}` before `{}`", prev.unwrap_or("?")),
            );
        }
        if let Some(t) = ty
            && !text_op
            && !fits(t)
        {
            cx.error(
                at(conv),
                format!(
                    "type mismatch: converter `{name}` makes {}, but {place} is `{t}` in entity `{ename}`",
                    out.name()
                ),
                "use a converter that fits the field's type, or change the field's type under `entities`",
            );
        }
        match c {
            Converter::MaxChars { max, .. } => {
                if let Some(FieldType::Text { max_chars: Some(limit) }) = ty
                    && max > limit
                {
                    cx.warning(
                        at(conv),
                        format!("`max_chars: {max}` in {place} allows more than the field's `text({limit})`"),
                        format!("use `max: {limit}` so over-long values are handled here"),
                    );
                }
                if *max == 0 {
                    cx.error(at(conv), format!("`max_chars` of 0 in {place} empties every value"), "give the real limit");
                }
            }
            Converter::Scale(s) => {
                if let Some(FieldType::Decimal { scale, precision }) = ty
                    && s > scale
                {
                    cx.error(
                        at(conv),
                        format!("`scale: {s}` in {place} keeps more decimals than its type `decimal({precision},{scale})`"),
                        format!("use `scale: {scale}`, or widen the type"),
                    );
                }
            }
            Converter::Unit(u) if u.is_zero() => cx.error(
                at(conv),
                format!("`unit: 0` in {place} would turn every amount into 0 (and cannot be undone outbound)"),
                "fen → yuan is `unit: 0.01`; yuan → fen is `unit: 100`",
            ),
            Converter::Strip(chars) if chars.is_empty() => cx.warning(
                at(conv),
                format!("`strip` in {place} lists no characters"),
                "list the characters to remove, e.g. `strip: \"*# \"`, or remove the converter",
            ),
            Converter::Date(f) if bad_strftime(f) => cx.error(
                at(conv),
                format!("date layout `{f}` in {place} is not a valid strftime layout"),
                "use e.g. `%Y-%m-%d`, `%Y/%m/%d` or `%Y年%m月%d日`",
            ),
            Converter::Datetime { format, tz } => {
                if bad_strftime(format) {
                    cx.error(
                        at(conv),
                        format!("date-time layout `{format}` in {place} is not a valid strftime layout"),
                        "use e.g. `%Y-%m-%d %H:%M:%S`",
                    );
                }
                if let Some(tz) = tz
                    && tz.parse::<chrono_tz::Tz>().is_err()
                {
                    cx.error(
                        at(conv),
                        format!("time zone `{tz}` in {place} is not an IANA zone name"),
                        match super::did_you_mean(tz, chrono_tz::TZ_VARIANTS.iter().map(|z| z.name())) {
                            Some(z) => format!("did you mean `{z}`?"),
                            None => "China uses `Asia/Shanghai`; see the IANA tz database for others".into(),
                        },
                    );
                }
            }
            _ => {}
        }
        kind = out;
        prev = Some(name);
    }
    check_from(cx, mname, fname, fm);
    check_values(cx, mname, fname, fm, ty);
    check_default(cx, mname, fname, fm, ty);
    if let Some(l) = &fm.lookup
        && !cx.cfg.entities.contains_key(l)
    {
        let p = cx.locate(&["mappings", mname, "fields", fname, "lookup"], false);
        cx.error(
            p,
            format!("`lookup: {l}` in {place}: `{l}` is not an entity"),
            name_hint(l, cx.cfg.entities.keys().map(String::as_str), "entity"),
        );
    }
    if let Some(e) = &fm.expr {
        check_expr(
            cx,
            &e.value,
            at(e),
            Scope::Mapping,
            Some(ename),
            &format!("the `expr` of {place}"),
        );
    }
    if let Some(e) = &fm.expr_out {
        check_expr(
            cx,
            &e.value,
            at(e),
            Scope::Mapping,
            Some(ename),
            &format!("the `expr_out` of {place}"),
        );
    }
}

fn check_from(cx: &mut Cx, mname: &str, fname: &str, fm: &FieldMap) {
    let place = format!("field `{fname}` of mapping `{mname}`");
    match (&fm.from, &fm.join) {
        (Some(FromSpec::Many(cols)), None) if cols.len() > 1 => cx.warning(
            at(&cols[0]),
            format!("{place} takes several columns but has no `join`"),
            "add `join: \" \"` (or the separator to put between them)",
        ),
        (Some(FromSpec::One(col)), Some(_)) => cx.warning(
            at(col),
            format!("`join` in {place} has no effect: `from` names one column"),
            "list several columns (`from: [a, b]`) or remove `join`",
        ),
        (Some(FromSpec::Many(cols)), _) if cols.is_empty() => {
            let p = cx.locate(&["mappings", mname, "fields", fname, "from"], false);
            cx.error(
                p,
                format!("`from` in {place} is an empty list"),
                "name the column(s) to read",
            );
        }
        _ => {}
    }
    if let Some(part) = &fm.part {
        if part.sep.is_empty() {
            let p = cx.locate(&["mappings", mname, "fields", fname, "part", "sep"], false);
            cx.error(
                p,
                format!("`part.sep` in {place} is empty"),
                "give the separator, e.g. `sep: \"-\"`",
            );
        }
        if fm.from.is_none() {
            let p = cx.locate(&["mappings", mname, "fields", fname, "part"], true);
            cx.error(
                p,
                format!("`part` in {place} has no `from` to split"),
                "add `from: <column>`",
            );
        }
    }
}

fn check_values(cx: &mut Cx, mname: &str, fname: &str, fm: &FieldMap, ty: Option<&FieldType>) {
    let Some(values) = &fm.values else { return };
    let place = format!("field `{fname}` of mapping `{mname}`");
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for (canon, sys) in values {
        let key_pos = cx.locate(&["mappings", mname, "fields", fname, "values", canon], true);
        if let Some(t) = ty
            && let Err(e) = t.coerce(Value::Text(canon.clone()))
        {
            let why = match t {
                FieldType::Enum(vals) => {
                    match super::did_you_mean(canon, vals.iter().map(String::as_str)) {
                        Some(m) => {
                            format!("it is not one of the values of `{t}` (did you mean `{m}`?)")
                        }
                        None => format!("it is not one of the values of `{t}`"),
                    }
                }
                _ => format!("it does not fit type `{t}`: {e}"),
            };
            cx.error(
                key_pos,
                format!("`values` in {place}: canonical value `{canon}` is wrong: {why}"),
                match t {
                    FieldType::Enum(vals) => format!(
                        "the left side of `values` is the canonical value, one of {}; the right side is the system's value",
                        vals.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ")
                    ),
                    _ => "the left side of `values` is the canonical value, the right side the system's value".into(),
                },
            );
        }
        if let Some(first) = seen.insert(sys.as_str(), canon.as_str()) {
            cx.error(
                key_pos,
                format!(
                    "`values` in {place}: `{first}` and `{canon}` both map to system value `{sys}`, so inbound it is ambiguous"
                ),
                "give each canonical value its own system value",
            );
        }
    }
}

fn check_default(cx: &mut Cx, mname: &str, fname: &str, fm: &FieldMap, ty: Option<&FieldType>) {
    let (Some(default), Some(t)) = (&fm.default, ty) else {
        return;
    };
    let v = Value::from_json(default);
    if let Err(e) = t.coerce(v) {
        let p = cx.locate(&["mappings", mname, "fields", fname, "default"], false);
        cx.error(
            p,
            format!(
                "`default` of field `{fname}` in mapping `{mname}` does not fit type `{t}`: {e}"
            ),
            "write a default of the field's type (quote dates: `\"2024-01-01\"`)",
        );
    }
}
