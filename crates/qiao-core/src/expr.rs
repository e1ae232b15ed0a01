//! The expression language of mappings, filters and rules: Rhai with exact decimals.
//!
//! Built on Rhai with `decimal` + `no_float`, so a literal such as `1.13` is an exact
//! `rust_decimal::Decimal` and `100.50 * 1.13` is `113.5650`, never a float. One engine is
//! built once and shared: it has no file, network or environment access (Rhai core has
//! none, `eval` is disabled, `print`/`debug` go nowhere), a bounded number of operations
//! so a loop cannot hang a worker, bounded string/array/map sizes and call depth, and
//! strict variables so a misspelt variable is a compile error with its position.

use crate::record::{Record, Value};
use chrono::{DateTime, NaiveDate};
use indexmap::IndexMap;
use rhai::{AST, Dynamic, Engine, ImmutableString, Position, Scope};
use rust_decimal::{Decimal, RoundingStrategy};
use std::fmt;
use std::sync::OnceLock;

/// Most operations one evaluation may take; stops runaway loops.
pub const MAX_OPERATIONS: u64 = 100_000;

/// Variables an expression may use when compiled with [`Expr::compile`]: `src` is the
/// system-side record (inbound mappings), `rec` the canonical record (rules, filters,
/// outbound mappings).
pub const DEFAULT_VARS: &[&str] = &["src", "rec"];

/// A compile or evaluation error with its position inside the expression text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ExprError {
    /// 1-based line in the expression text (0 when unknown).
    pub line: usize,
    /// 1-based column in the expression text (0 when unknown).
    pub column: usize,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "expression error at line {}, column {}: {}",
                self.line, self.column, self.message
            )
        } else {
            write!(f, "expression error: {}", self.message)
        }
    }
}

impl ExprError {
    fn at(pos: Position, message: String) -> Self {
        ExprError {
            line: pos.line().unwrap_or(0),
            column: pos.position().unwrap_or(0),
            message,
        }
    }
    fn plain(message: String) -> Self {
        ExprError {
            line: 0,
            column: 0,
            message,
        }
    }
}

/// A compiled expression together with its source text.
#[derive(Debug, Clone)]
pub struct Expr {
    ast: AST,
    source: String,
    vars: Vec<String>,
}

impl Expr {
    /// Compiles `src`, which may use the variables `src` and `rec` ([`DEFAULT_VARS`]).
    pub fn compile(src: &str) -> Result<Expr, ExprError> {
        Expr::compile_with_vars(src, DEFAULT_VARS)
    }

    /// Compiles `src`, which may use exactly the variables in `vars`; any other name is a
    /// compile error with its position.
    pub fn compile_with_vars(src: &str, vars: &[&str]) -> Result<Expr, ExprError> {
        let mut scope = Scope::new();
        for v in vars {
            scope.push_dynamic(v.to_string(), Dynamic::UNIT);
        }
        let ast = engine()
            .compile_with_scope(&scope, src)
            .map_err(|e| ExprError::at(e.1, e.0.to_string()))?;
        Ok(Expr {
            ast,
            source: src.to_string(),
            vars: vars.iter().map(|v| v.to_string()).collect(),
        })
    }

    /// The expression text as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates with the named records bound as object maps (`rec.amount`). A field the
    /// record lacks reads as `()` (null). Variables allowed at compile time but not given
    /// here are bound to `()`.
    pub fn eval(&self, vars: &[(&str, &Record)]) -> Result<Value, ExprError> {
        let mut scope = Scope::new();
        for name in &self.vars {
            match vars.iter().find(|(n, _)| n == name) {
                Some((_, rec)) => scope.push_dynamic(name.clone(), record_to_dynamic(rec)),
                None => scope.push_dynamic(name.clone(), Dynamic::UNIT),
            };
        }
        let out = engine()
            .eval_ast_with_scope::<Dynamic>(&mut scope, &self.ast)
            .map_err(|mut e| {
                let pos = e.take_position();
                ExprError::at(pos, e.to_string())
            })?;
        dynamic_to_value(out).map_err(ExprError::plain)
    }

    /// Evaluates and requires a boolean result (rules and filters).
    pub fn eval_bool(&self, vars: &[(&str, &Record)]) -> Result<bool, ExprError> {
        match self.eval(vars)? {
            Value::Bool(b) => Ok(b),
            other => Err(ExprError::plain(format!(
                "the expression must give true or false but gave {} `{}`; compare with ==, <, > or use contains()",
                other.type_name(),
                other
            ))),
        }
    }

    /// Field names read as `var.field` in the text, so a config checker can verify them
    /// against the data dictionary (Rhai itself reads a missing map field as `()`).
    pub fn field_refs(&self, var: &str) -> Vec<String> {
        field_refs(&self.source, var)
    }
}

/// Scans `text` for `var.ident` outside string literals and comments.
fn field_refs(text: &str, var: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let v: Vec<char> = var.chars().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '`' || c == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        let starts_word = i == 0 || !(is_ident(chars[i - 1]) || chars[i - 1] == '.');
        if starts_word
            && chars[i..].starts_with(&v)
            && chars.get(i + v.len()) == Some(&'.')
            && chars.get(i + v.len() + 1).is_some_and(|c| is_ident(*c))
        {
            let mut j = i + v.len() + 1;
            let mut name = String::new();
            while j < chars.len() && is_ident(chars[j]) {
                name.push(chars[j]);
                j += 1;
            }
            if !out.contains(&name) {
                out.push(name);
            }
            i = j;
            continue;
        }
        i += 1;
    }
    out
}

/// The shared, sandboxed engine.
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(build_engine)
}

fn build_engine() -> Engine {
    let mut e = Engine::new();
    e.disable_symbol("eval");
    e.set_strict_variables(true);
    e.set_max_operations(MAX_OPERATIONS);
    e.set_max_call_levels(32);
    e.set_max_expr_depths(64, 32);
    e.set_max_string_size(1_000_000);
    e.set_max_array_size(100_000);
    e.set_max_map_size(100_000);
    e.set_max_variables(1_000);
    // Expressions see business data; nothing they print may reach a log.
    e.on_print(|_| {});
    e.on_debug(|_, _, _| {});
    register_helpers(&mut e);
    e
}

/// Rounds half away from zero (四舍五入), the rounding of Chinese invoices and ledgers.
fn round_half_up(x: Decimal, dp: i64) -> Result<Decimal, Box<rhai::EvalAltResult>> {
    let dp = u32::try_from(dp)
        .map_err(|_| format!("round: the number of decimals must be 0 or more, not {dp}"))?;
    Ok(x.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero))
}

fn to_text(d: &Dynamic) -> String {
    if d.is_unit() {
        String::new()
    } else {
        d.to_string()
    }
}

fn register_helpers(e: &mut Engine) {
    e.register_fn("round2", |x: Decimal| round_half_up(x, 2));
    e.register_fn("round2", |x: i64| round_half_up(Decimal::from(x), 2));
    e.register_fn("round", |x: Decimal, n: i64| round_half_up(x, n));
    e.register_fn("round", |x: i64, n: i64| round_half_up(Decimal::from(x), n));
    e.register_fn("dec", |x: i64| Decimal::from(x));
    e.register_fn("dec", |x: Decimal| x);
    e.register_fn(
        "dec",
        |s: &str| -> Result<Decimal, Box<rhai::EvalAltResult>> {
            let t = s.trim();
            t.parse::<Decimal>()
                .or_else(|_| Decimal::from_scientific(t))
                .map_err(|_| format!("dec: `{t}` is not a decimal number").into())
        },
    );
    e.register_fn("trim", |s: &str| s.trim().to_string());
    e.register_fn("trim", |_: ()| String::new());
    e.register_fn("len", |s: &str| s.chars().count() as i64);
    e.register_fn("len", |_: ()| 0_i64);
    e.register_fn("substr", |s: &str, start: i64, n: i64| {
        let start = usize::try_from(start).unwrap_or(0);
        let n = usize::try_from(n).unwrap_or(0);
        s.chars().skip(start).take(n).collect::<String>()
    });
    e.register_fn("substr", |s: &str, start: i64| {
        let start = usize::try_from(start).unwrap_or(0);
        s.chars().skip(start).collect::<String>()
    });
    e.register_fn("contains", |s: &str, sub: &str| s.contains(sub));
    e.register_fn("contains", |_: (), _: &str| false);
    e.register_fn("upper", |s: &str| s.to_uppercase());
    e.register_fn("lower", |s: &str| s.to_lowercase());
    e.register_fn("is_blank", |d: Dynamic| {
        d.is_unit()
            || d.clone()
                .into_immutable_string()
                .is_ok_and(|s: ImmutableString| s.trim().is_empty())
    });
    e.register_fn("concat", |a: Dynamic, b: Dynamic| {
        [a, b].iter().map(to_text).collect::<String>()
    });
    e.register_fn("concat", |a: Dynamic, b: Dynamic, c: Dynamic| {
        [a, b, c].iter().map(to_text).collect::<String>()
    });
    e.register_fn(
        "concat",
        |a: Dynamic, b: Dynamic, c: Dynamic, d: Dynamic| {
            [a, b, c, d].iter().map(to_text).collect::<String>()
        },
    );
    e.register_fn(
        "concat",
        |a: Dynamic, b: Dynamic, c: Dynamic, d: Dynamic, f: Dynamic| {
            [a, b, c, d, f].iter().map(to_text).collect::<String>()
        },
    );
}

/// A record as a Rhai object map.
pub fn record_to_dynamic(rec: &Record) -> Dynamic {
    let mut m = rhai::Map::new();
    for (k, v) in &rec.fields {
        m.insert(k.as_str().into(), value_to_dynamic(v));
    }
    Dynamic::from_map(m)
}

/// A value as a Rhai value: dates and date-times become ISO-8601 text.
pub fn value_to_dynamic(v: &Value) -> Dynamic {
    match v {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Int(i) => Dynamic::from_int(*i),
        Value::Decimal(d) => Dynamic::from_decimal(*d),
        Value::Text(s) => Dynamic::from(s.clone()),
        Value::Date(d) => Dynamic::from(d.format("%Y-%m-%d").to_string()),
        Value::DateTime(t) => Dynamic::from(t.to_rfc3339()),
        Value::List(l) => Dynamic::from_array(l.iter().map(value_to_dynamic).collect()),
        Value::Map(m) => {
            let mut out = rhai::Map::new();
            for (k, v) in m {
                out.insert(k.as_str().into(), value_to_dynamic(v));
            }
            Dynamic::from_map(out)
        }
    }
}

/// A Rhai value as a record value; types with no counterpart are an error naming them.
pub fn dynamic_to_value(d: Dynamic) -> Result<Value, String> {
    if d.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = d.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = d.as_int() {
        return Ok(Value::Int(i));
    }
    if let Ok(x) = d.as_decimal() {
        return Ok(Value::Decimal(x));
    }
    if let Ok(c) = d.as_char() {
        return Ok(Value::Text(c.to_string()));
    }
    if d.is_string() {
        return d
            .into_string()
            .map(Value::Text)
            .map_err(|t| format!("unreadable text result ({t})"));
    }
    if d.is_array() {
        let items = d
            .into_array()
            .map_err(|t| format!("unreadable list result ({t})"))?;
        return items
            .into_iter()
            .map(dynamic_to_value)
            .collect::<Result<Vec<_>, _>>()
            .map(Value::List);
    }
    if d.is_map() {
        let type_name = d.type_name();
        let Some(m) = d.try_cast::<rhai::Map>() else {
            return Err(format!("unreadable map result ({type_name})"));
        };
        let mut out = IndexMap::new();
        for (k, v) in m {
            out.insert(k.to_string(), dynamic_to_value(v)?);
        }
        return Ok(Value::Map(out));
    }
    Err(format!(
        "the expression gave a value of type `{}`, which a record cannot hold; return text, a number, a bool or ()",
        d.type_name()
    ))
}

/// Reads ISO-8601 text back as a date or date-time, for callers that know a field's
/// type (expressions see dates as text).
pub fn parse_iso(text: &str) -> Option<Value> {
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(Value::Date(d));
    }
    DateTime::parse_from_rfc3339(text).ok().map(Value::DateTime)
}
