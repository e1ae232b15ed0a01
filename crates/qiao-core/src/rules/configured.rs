//! Rules from the config's rule sets, compiled once: patterns, types and expressions are
//! checked when the engine is built, so a bad rule fails at start-up with its position.

use super::generic::label;
use super::{Message, Severity, Violation};
use crate::config::{Check, EntityDef, FieldDef, RuleDef};
use crate::expr::Expr;
use crate::mapping::{redact, show};
use crate::record::{Record, Value};
use crate::types::FieldType;
use regex::Regex;
use rust_decimal::Decimal;

/// A compiled check.
enum Compiled {
    Required,
    Type(FieldType),
    MaxChars(usize),
    Pattern(Regex),
    Enum(Vec<String>),
    Range {
        min: Option<Decimal>,
        max: Option<Decimal>,
    },
    Expr(Expr),
}

/// One configured rule, ready to run.
pub(super) struct ConfigRule {
    code: String,
    field: Option<String>,
    field_def: Option<FieldDef>,
    check: Compiled,
    severity: Severity,
    owner: String,
    message: Option<Message>,
}

/// What one check found wrong: Chinese, English, detail.
struct Found {
    zh: String,
    en: String,
    detail: String,
}

impl ConfigRule {
    /// Compiles rule `r` of rule set `set`, checking its field against the dictionary.
    pub(super) fn compile(
        set: &str,
        entity: &str,
        def: &EntityDef,
        r: &RuleDef,
    ) -> Result<ConfigRule, String> {
        let line = r.check.referenced.line();
        let at = |msg: String| format!("rule set `{set}`, rule `{}` (line {line}): {msg}", r.code);
        let field = r.field.as_ref().map(|f| f.value.clone());
        let field_def = match &field {
            Some(f) => Some(def.fields.get(f).cloned().ok_or_else(|| {
                at(format!(
                    "entity `{entity}` has no field `{f}`; known fields: {}",
                    def.fields.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })?),
            None => None,
        };
        let check = match &r.check.value {
            Check::Expr(src) => Compiled::Expr(
                Expr::compile_with_vars(src, &["rec"])
                    .map_err(|e| at(format!("{e}; the expression sees the record as `rec`")))?,
            ),
            _ if field.is_none() => {
                return Err(at(
                    "this check needs the `field:` it applies to (only `expr` rules may go without)".into(),
                ));
            }
            Check::Required => Compiled::Required,
            Check::Type(t) => Compiled::Type(FieldType::parse(t).map_err(at)?),
            Check::MaxChars(0) => {
                return Err(at("`max_chars: 0` allows nothing; give 1 or more".into()));
            }
            Check::MaxChars(n) => Compiled::MaxChars(*n),
            Check::Pattern(p) => Compiled::Pattern(
                Regex::new(p)
                    .map_err(|e| at(format!("`{p}` is not a valid regular expression: {e}")))?,
            ),
            Check::Enum(vals) if vals.is_empty() => {
                return Err(at(
                    "`enum` needs the allowed values, e.g. `{enum: [A, B]}`".into()
                ));
            }
            Check::Enum(vals) => Compiled::Enum(vals.clone()),
            Check::Range { min, max } => {
                if let (Some(a), Some(b)) = (min, max)
                    && a > b
                {
                    return Err(at(format!("range min {a} is above max {b}; swap them")));
                }
                if min.is_none() && max.is_none() {
                    return Err(at("`range` needs `min`, `max` or both".into()));
                }
                Compiled::Range {
                    min: *min,
                    max: *max,
                }
            }
        };
        Ok(ConfigRule {
            code: r.code.clone(),
            field,
            field_def,
            check,
            severity: r.severity,
            owner: r.owner.clone(),
            message: r.message.clone(),
        })
    }

    /// The field checked, if any.
    pub(super) fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The generic pack's code for the same kind of check, so the engine reports one.
    pub(super) fn generic_twin(&self) -> Option<&'static str> {
        match self.check {
            Compiled::Required => Some("GEN-REQUIRED"),
            Compiled::Type(_) => Some("GEN-TYPE"),
            Compiled::MaxChars(_) => Some("GEN-LENGTH"),
            Compiled::Enum(_) => Some("GEN-ENUM"),
            _ => None,
        }
    }

    /// Runs the rule on `rec`, appending a violation if it fails.
    pub(super) fn check(
        &self,
        entity: &str,
        rec: &Record,
        sensitive: &[String],
        out: &mut Vec<Violation>,
    ) {
        let found = match (&self.field, &self.check) {
            (_, Compiled::Expr(_)) => self.check_record(rec, sensitive),
            (Some(f), _) => self.check_field(f, rec.get(f)),
            (None, _) => None,
        };
        let Some(found) = found else { return };
        let value = self
            .field
            .as_ref()
            .map(|f| show(rec.get(f), self.sensitive()))
            .unwrap_or_default();
        let message = match &self.message {
            Some(m) => Message {
                zh: self.fill(&m.zh, &value),
                en: self.fill(&m.en, &value),
            },
            None => Message {
                zh: found.zh,
                en: found.en,
            },
        };
        let at = match &self.field {
            Some(f) => format!("entity `{entity}`, field `{f}`"),
            None => format!("entity `{entity}`"),
        };
        out.push(Violation {
            code: self.code.clone(),
            field: self.field.clone(),
            severity: self.severity,
            owner: self.owner.clone(),
            message,
            detail: format!("{at}: {}", found.detail),
        });
    }

    fn sensitive(&self) -> bool {
        self.field_def.as_ref().is_some_and(|d| d.sensitive)
    }

    /// Fills `{field}` and `{value}` in a configured message.
    fn fill(&self, text: &str, value: &str) -> String {
        text.replace("{field}", self.field.as_deref().unwrap_or(""))
            .replace("{value}", value)
    }

    /// True when `v` certainly passes, decided without allocating: most values pass, and
    /// the messages below are formatted only for those that do not.
    fn passes(&self, v: &Value) -> bool {
        match (&self.check, v) {
            (Compiled::Required, v) => !v.is_blank(),
            (_, v) if v.is_blank() => true,
            (Compiled::MaxChars(max), Value::Text(s)) => s.chars().count() <= *max,
            (Compiled::Pattern(re), Value::Text(s)) => re.is_match(s),
            (Compiled::Enum(vals), Value::Text(s)) => vals.iter().any(|x| x == s),
            (Compiled::Range { min, max }, Value::Decimal(d)) => {
                min.is_none_or(|m| *d >= m) && max.is_none_or(|m| *d <= m)
            }
            (Compiled::Type(ty), v) => ty.conform(v).is_ok(),
            _ => false,
        }
    }

    fn check_field(&self, field: &str, v: &Value) -> Option<Found> {
        if self.passes(v) {
            return None;
        }
        let (zh, en) = label(field, self.field_def.as_ref());
        let shown = show(v, self.sensitive());
        if v.is_blank() {
            // Absence is the `required` check's business alone.
            return matches!(self.check, Compiled::Required).then(|| Found {
                zh: format!("{zh}为必填项，当前为空，请补全"),
                en: format!("{en} is required but empty; fill it in"),
                detail: "the value is blank".into(),
            });
        }
        match &self.check {
            Compiled::Required | Compiled::Expr(_) => None,
            Compiled::Type(ty) => {
                let err = ty.coerce(v.clone()).err()?;
                let why = if self.sensitive() {
                    format!("value {shown} ({}) does not fit `{ty}`", v.type_name())
                } else {
                    err
                };
                Some(Found {
                    zh: format!("{zh}的值 {shown} 不符合类型 {ty}"),
                    en: format!("{en} value {shown} is not a valid `{ty}`"),
                    detail: why,
                })
            }
            Compiled::MaxChars(max) => {
                let text = v.to_string();
                let n = text.chars().count();
                (n > *max).then(|| Found {
                    zh: format!("{zh}长度为 {n} 个字符，超过上限 {max} 个字符，请缩短"),
                    en: format!(
                        "{en} has {n} characters, more than the limit of {max}; shorten it"
                    ),
                    detail: format!(
                        "value {shown} has {n} characters ({} bytes), limit {max}",
                        text.len()
                    ),
                })
            }
            Compiled::Pattern(re) => (!re.is_match(&v.to_string())).then(|| Found {
                zh: format!("{zh}的值 {shown} 格式不正确"),
                en: format!("{en} value {shown} is not in the expected format"),
                detail: format!("value {shown} does not match the pattern `{}`", re.as_str()),
            }),
            Compiled::Enum(vals) => {
                let list = vals.join(", ");
                (!vals.contains(&v.to_string())).then(|| Found {
                    zh: format!("{zh}的值 {shown} 不在允许的取值中（{list}）"),
                    en: format!("{en} value {shown} is not one of: {list}"),
                    detail: format!("value {shown} is not in [{list}]"),
                })
            }
            Compiled::Range { min, max } => range(v, *min, *max, &zh, &en, &shown),
        }
    }

    fn check_record(&self, rec: &Record, sensitive: &[String]) -> Option<Found> {
        let Compiled::Expr(e) = &self.check else {
            return None;
        };
        let result = e.eval_bool(&[("rec", rec)]).map_err(|err| {
            // Expression errors may quote data; sensitive values are masked in them.
            redact(&err.to_string(), sensitive.iter().map(|f| rec.get(f)))
        });
        match result {
            Ok(true) => None,
            Ok(false) => Some(Found {
                zh: format!("不满足规则 {}：{}", self.code, e.source()),
                en: format!("rule {} is not met: {}", self.code, e.source()),
                detail: format!("`{}` is false for this record", e.source()),
            }),
            // A rule that cannot be evaluated cannot vouch for the record.
            Err(err) => Some(Found {
                zh: format!("规则 {} 无法检查：{err}", self.code),
                en: format!("rule {} could not be checked: {err}", self.code),
                detail: format!(
                    "evaluating `{}` failed: {err}; fix the rule or the record",
                    e.source()
                ),
            }),
        }
    }
}

fn range(
    v: &Value,
    min: Option<Decimal>,
    max: Option<Decimal>,
    zh: &str,
    en: &str,
    shown: &str,
) -> Option<Found> {
    let n = match v {
        Value::Int(i) => Decimal::from(*i),
        Value::Decimal(d) => *d,
        Value::Text(s) => match s.trim().parse::<Decimal>() {
            Ok(d) => d,
            Err(_) => {
                return Some(Found {
                    zh: format!("{zh}的值 {shown} 不是数字"),
                    en: format!("{en} value {shown} is not a number"),
                    detail: format!(
                        "value {shown} is not a number, so its range cannot be checked"
                    ),
                });
            }
        },
        other => {
            return Some(Found {
                zh: format!("{zh}的值 {shown} 不是数字"),
                en: format!("{en} value {shown} is not a number"),
                detail: format!("value {shown} is a {}, not a number", other.type_name()),
            });
        }
    };
    let low = min.is_some_and(|m| n < m);
    let high = max.is_some_and(|m| n > m);
    if !low && !high {
        return None;
    }
    let bounds = format!(
        "[{}, {}]",
        min.map_or("-∞".to_string(), |m| m.to_string()),
        max.map_or("∞".to_string(), |m| m.to_string())
    );
    Some(Found {
        zh: format!("{zh}的值 {shown} 超出允许范围 {bounds}"),
        en: format!("{en} value {shown} is outside the allowed range {bounds}"),
        detail: format!(
            "value {shown} is {} the range {bounds}",
            if low { "below" } else { "above" }
        ),
    })
}
