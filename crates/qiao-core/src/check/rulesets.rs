//! Checks of rule sets: entity and fields exist, each check fits the field's type,
//! patterns and expressions compile, and rule codes are unique.

use super::exprs::{Scope, check_expr};
use super::{Cx, at, name_hint};
use crate::config::{Check, RuleDef};
use crate::record::Value;
use crate::types::FieldType;
use std::collections::HashMap;

fn check_name(c: &Check) -> &'static str {
    match c {
        Check::Required => "required",
        Check::Type(_) => "type",
        Check::MaxChars(_) => "max_chars",
        Check::Pattern(_) => "pattern",
        Check::Enum(_) => "enum",
        Check::Range { .. } => "range",
        Check::Expr(_) => "expr",
    }
}

pub(super) fn check_rule_sets(cx: &mut Cx) {
    let cfg = cx.cfg;
    // code → where it was first defined
    let mut codes: HashMap<&str, String> = HashMap::new();
    for (sname, set) in &cfg.rules {
        let ename = set.entity.value.as_str();
        let known = cfg.entities.contains_key(ename);
        if !known {
            cx.error(
                at(&set.entity),
                format!("rule set `{sname}` checks entity `{ename}`, which is not defined"),
                name_hint(ename, cfg.entities.keys().map(String::as_str), "entity"),
            );
        }
        if set.rules.is_empty() {
            let p = cx.locate(&["rules", sname, "rules"], true);
            cx.warning(
                p,
                format!("rule set `{sname}` has no rules"),
                "add rules or remove the set",
            );
        }
        for (i, rule) in set.rules.iter().enumerate() {
            let idx = i.to_string();
            let code_pos = cx.locate(&["rules", sname, "rules", &idx, "code"], false);
            let code = rule.code.trim();
            if code.is_empty() {
                cx.error(
                    code_pos,
                    format!("rule {} of rule set `{sname}` has an empty `code`", i + 1),
                    "give every rule a stable code such as `CUST-PHONE-001`; exceptions and reports refer to it",
                );
            } else if let Some(first) = codes.get(code) {
                cx.error(
                    code_pos,
                    format!("rule code `{code}` is used twice (first in {first})"),
                    "rule codes identify violations in reports; give this rule its own code",
                );
            } else {
                codes.insert(code, format!("rule set `{sname}`"));
            }
            if known {
                check_rule(cx, sname, ename, rule, code, i);
            }
        }
    }
}

fn check_rule(cx: &mut Cx, sname: &str, ename: &str, rule: &RuleDef, code: &str, idx: usize) {
    let cfg = cx.cfg;
    let Some(ent) = cfg.entities.get(ename) else {
        return;
    };
    let kind = check_name(&rule.check.value);
    let who = format!("rule `{code}` of rule set `{sname}`");
    let field_ty: Option<FieldType> = match &rule.field {
        Some(f) if !ent.fields.contains_key(&f.value) => {
            cx.error(
                at(f),
                format!(
                    "{who} checks field `{}`, which entity `{ename}` does not have",
                    f.value
                ),
                name_hint(&f.value, ent.fields.keys().map(String::as_str), "field"),
            );
            return;
        }
        Some(f) => cx.field_type(ename, &f.value).cloned(),
        None => {
            if !matches!(rule.check.value, Check::Expr(_)) {
                cx.error(
                    at(&rule.check),
                    format!("{who} makes a `{kind}` check but names no `field`"),
                    "add `field: <field name>`; only `expr` checks may go without one",
                );
            }
            None
        }
    };
    let fname = rule.field.as_ref().map_or("", |f| f.value.as_str());
    let pos = at(&rule.check);
    let mismatch = |t: &FieldType| {
        format!("type mismatch: {who} makes a `{kind}` check on field `{fname}`, which is `{t}`")
    };
    match &rule.check.value {
        Check::Required | Check::Expr(_) => {}
        Check::Type(t) => match FieldType::parse(t) {
            Err(e) => cx.error(
                pos,
                format!("{who}: {e}"),
                "write a dictionary type such as `decimal(18,2)`",
            ),
            Ok(rt) => {
                if let Some(ft) = &field_ty
                    && std::mem::discriminant(ft) != std::mem::discriminant(&rt)
                {
                    cx.warning(
                        pos,
                        format!("{who} requires type `{rt}`, but field `{fname}` is `{ft}` in the dictionary"),
                        "the dictionary type is already checked; make them agree or drop the rule",
                    );
                }
            }
        },
        Check::MaxChars(n) => {
            if let Some(t) = &field_ty
                && !t.is_textual()
            {
                cx.error(pos, mismatch(t), "`max_chars` applies to text fields");
            }
            if *n == 0 {
                cx.error(
                    pos,
                    format!("{who}: `max_chars: 0` lets no value pass"),
                    "give the real limit",
                );
            }
        }
        Check::Pattern(p) => {
            if let Err(e) = regex::Regex::new(p) {
                let msg = e.to_string();
                let last = msg.lines().last().unwrap_or("invalid pattern").trim();
                let last = last.strip_prefix("error: ").unwrap_or(last).to_string();
                cx.error(
                    pos,
                    format!("{who}: pattern `{p}` is not a valid regular expression: {last}"),
                    "escape special characters with `\\\\` inside double quotes, or use single quotes: '^\\d{11}$'",
                );
            }
            if let Some(t) = &field_ty
                && !t.is_textual()
            {
                cx.error(
                    pos,
                    mismatch(t),
                    "`pattern` applies to text fields; use `range` for numbers",
                );
            }
        }
        Check::Range { min, max } => {
            if let Some(t) = &field_ty
                && !t.is_numeric()
            {
                cx.error(
                    pos,
                    mismatch(t),
                    "`range` applies to integer and decimal fields",
                );
            }
            if let (Some(lo), Some(hi)) = (min, max)
                && lo > hi
            {
                cx.error(
                    pos,
                    format!("{who}: range min {lo} is above max {hi}"),
                    "swap them",
                );
            }
            if min.is_none() && max.is_none() {
                cx.warning(
                    pos,
                    format!("{who}: range has neither `min` nor `max`"),
                    "add a bound or remove the rule",
                );
            }
        }
        Check::Enum(vals) => {
            if vals.is_empty() {
                cx.error(
                    pos,
                    format!("{who}: `enum` lists no values"),
                    "list the allowed values",
                );
            }
            if let Some(t) = &field_ty {
                let bad: Vec<&String> = vals
                    .iter()
                    .filter(|v| t.coerce(Value::Text((*v).clone())).is_err())
                    .collect();
                if matches!(t, FieldType::List(_) | FieldType::Bool) || !bad.is_empty() {
                    let which = bad
                        .iter()
                        .map(|v| format!("`{v}`"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    cx.error(
                        pos,
                        if which.is_empty() {
                            mismatch(t)
                        } else {
                            format!("{}: {which} cannot be a value of it", mismatch(t))
                        },
                        match t {
                            FieldType::Enum(allowed) => format!(
                                "the field only holds {}",
                                allowed
                                    .iter()
                                    .map(|v| format!("`{v}`"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                            _ => "list values of the field's type".to_string(),
                        },
                    );
                }
            }
        }
    }
    if let Check::Expr(src) = &rule.check.value {
        // The check is spanned as a whole; the expression text sits inside `{expr: …}`.
        let mut base = cx.locate(
            &["rules", sname, "rules", &idx.to_string(), "check", "expr"],
            false,
        );
        if base.0 == 0 {
            base = pos;
        }
        check_expr(
            cx,
            src,
            base,
            Scope::Canonical,
            Some(ename),
            &format!("the `expr` check of {who}"),
        );
    }
}
