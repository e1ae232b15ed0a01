//! The mapping engine: one system's shape of an entity ↔ the canonical entity.
//!
//! A [`Mapper`] is compiled once from a `mappings:` entry (expressions, zones, value maps
//! and dictionary types checked up front) and then maps records both ways:
//! [`Mapper::inbound`] (system → canonical) and [`Mapper::outbound`] (canonical → system),
//! each with per-field provenance so a person can see how a value came to be.

mod convert;
mod run;

pub use convert::halfwidth;

use crate::config::{Config, FieldMap, FromSpec, MappingDef};
use crate::expr::Expr;
use crate::record::{Key, Record, Value, key_of};
use crate::types::FieldType;
use convert::Conv;
use indexmap::IndexMap;
use std::fmt;

/// The crosswalk as mappings see it: which golden record a system's local id is, and back.
pub trait Lookup {
    /// The golden id of `local_id`, a key of `entity` in `system`, if the crosswalk has it.
    fn to_golden(&self, system: &str, entity: &str, local_id: &str) -> Option<String>;
    /// The local id in `system` of the golden record `golden_id` of `entity`, if known.
    fn to_local(&self, system: &str, entity: &str, golden_id: &str) -> Option<String>;
}

/// A lookup with no entries, for mappings that use no crosswalk (and for tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLookup;

impl Lookup for NoLookup {
    fn to_golden(&self, _: &str, _: &str, _: &str) -> Option<String> {
        None
    }
    fn to_local(&self, _: &str, _: &str, _: &str) -> Option<String> {
        None
    }
}

/// The result of mapping one record.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mapped {
    /// The record in the other shape.
    pub record: Record,
    /// Output field → how it was made, e.g. `name ← cust_name ← trim ← strip(*#)`; empty
    /// unless the mapper is [`Mapper::traced`].
    pub provenance: Vec<(String, String)>,
    /// Things changed on the way that a person should know (e.g. truncated text).
    pub warnings: Vec<String>,
}

/// A record that could not be mapped: which mapping, which field, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct MapError {
    /// The mapping's name.
    pub mapping: String,
    /// The canonical field.
    pub field: String,
    /// The system field involved, when there is one.
    pub system_field: Option<String>,
    /// What is wrong, with the value (masked if sensitive) and the fix.
    pub message: String,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mapping `{}`, field `{}`", self.mapping, self.field)?;
        if let Some(s) = &self.system_field {
            write!(f, " (system field `{s}`)")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Masks a sensitive text for display: its first 4 and last 4 characters stay, the rest
/// become `*`; a text of 8 characters or fewer is masked whole.
pub fn mask(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    if n <= 8 {
        return "*".repeat(n.max(1));
    }
    let mut out: String = chars[..4].iter().collect();
    out.push_str(&"*".repeat(n - 8));
    out.extend(&chars[n - 4..]);
    out
}

/// A value quoted for a message: masked when sensitive, shortened when long.
pub(crate) fn show(v: &Value, sensitive: bool) -> String {
    let text = v.to_string();
    if sensitive {
        return format!("`{}`", mask(&text));
    }
    if text.chars().count() > 60 {
        let head: String = text.chars().take(57).collect();
        return format!("`{head}…`");
    }
    format!("`{text}`")
}

/// Replaces every occurrence of the given values' text in `msg` by its mask: expression
/// errors may quote data, and the data of sensitive fields must not reach a log.
pub(crate) fn redact<'a>(msg: &str, values: impl Iterator<Item = &'a Value>) -> String {
    let mut out = msg.to_string();
    for v in values {
        if v.is_blank() {
            continue;
        }
        let text = v.to_string();
        if out.contains(&text) {
            out = out.replace(&text, &mask(&text));
        }
    }
    out
}

/// Where a canonical field's value comes from on the system side.
#[derive(Debug, Clone)]
enum Source {
    /// One system field.
    One(String),
    /// Several system fields joined by `sep` (blanks skipped); outbound split again.
    Join { fields: Vec<String>, sep: String },
    /// Part `index` of one system field split by `sep`.
    Part {
        field: String,
        sep: String,
        index: usize,
    },
    /// Only an inbound expression; no system field to write back.
    Computed,
}

/// One canonical field's compiled mapping.
#[derive(Debug, Clone)]
struct FieldPlan {
    name: String,
    source: Source,
    expr_in: Option<Expr>,
    expr_out: Option<Expr>,
    default: Option<Value>,
    convs: Vec<Conv>,
    /// canonical value → system value, as configured.
    values: Option<IndexMap<String, String>>,
    lookup: Option<String>,
    ty: FieldType,
    sensitive: bool,
}

/// A compiled mapping between one system's shape of an entity and the canonical entity.
#[derive(Debug, Clone)]
pub struct Mapper {
    name: String,
    system: String,
    entity: String,
    object: String,
    entity_key: Vec<String>,
    key_override: Option<Vec<String>>,
    plans: Vec<FieldPlan>,
    /// System fields that carry sensitive data (read for, or written from, a sensitive
    /// canonical field).
    sensitive_system: Vec<String>,
    /// Canonical fields marked sensitive in the dictionary.
    sensitive_canonical: Vec<String>,
    /// Whether `Mapped::provenance` is filled (see [`Mapper::traced`]).
    trace: bool,
}

impl Mapper {
    /// Compiles mapping `mapping` of `config`; errors name the mapping, the field, the
    /// config position and the fix.
    pub fn new(config: &Config, mapping: &str) -> Result<Mapper, String> {
        let def = config.mappings.get(mapping).ok_or_else(|| {
            let known: Vec<&str> = config.mappings.keys().map(String::as_str).collect();
            format!(
                "no mapping `{mapping}` under `mappings:`{}; known mappings: {}",
                suggest(mapping, known.iter().copied()),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )
        })?;
        let entity_name = def.entity.value.as_str();
        let entity = config.entities.get(entity_name).ok_or_else(|| {
            format!(
                "mapping `{mapping}` (line {}): entity `{entity_name}` is not under `entities:`{}",
                def.entity.referenced.line(),
                suggest(entity_name, config.entities.keys().map(String::as_str))
            )
        })?;
        let mut plans = Vec::new();
        for (field, fm) in &def.fields {
            let fname = field.value.as_str();
            let at = |msg: String| {
                format!(
                    "mapping `{mapping}`, field `{fname}` (line {}): {msg}",
                    field.referenced.line()
                )
            };
            let fdef = entity.fields.get(fname).ok_or_else(|| {
                at(format!(
                    "entity `{entity_name}` has no field `{fname}`{}; add it to the dictionary or fix the name",
                    suggest(fname, entity.fields.keys().map(String::as_str))
                ))
            })?;
            let ty = FieldType::parse(&fdef.ty.value)
                .map_err(|e| at(format!("its dictionary type: {e}")))?;
            plans.push(compile_field(config, fname, fm, ty, fdef.sensitive).map_err(at)?);
        }
        for k in &entity.key {
            if !plans.iter().any(|p| p.name == k.value) {
                return Err(format!(
                    "mapping `{mapping}`: the key field `{}` of entity `{entity_name}` is not mapped; add `{}: {{from: <system column>}}` under its `fields:`",
                    k.value, k.value
                ));
            }
        }
        let mut sensitive_system = Vec::new();
        for p in plans.iter().filter(|p| p.sensitive) {
            for f in p.system_fields() {
                push_unique(&mut sensitive_system, f);
            }
            if let Some(e) = &p.expr_in {
                for f in e.field_refs("src") {
                    push_unique(&mut sensitive_system, f);
                }
            }
        }
        let sensitive_canonical = entity
            .fields
            .iter()
            .filter(|(_, f)| f.sensitive)
            .map(|(n, _)| n.clone())
            .collect();
        Ok(Mapper {
            sensitive_system,
            sensitive_canonical,
            name: mapping.to_string(),
            system: def.system.value.clone(),
            entity: entity_name.to_string(),
            object: def.object.clone(),
            entity_key: entity.key.iter().map(|k| k.value.clone()).collect(),
            key_override: key_override(def),
            plans,
            trace: false,
        })
    }

    /// This mapper with provenance recorded in every [`Mapped`] (for `qiao map`; flows
    /// leave it off).
    pub fn traced(mut self) -> Mapper {
        self.trace = true;
        self
    }

    /// The mapping's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The system this mapping belongs to.
    pub fn system(&self) -> &str {
        &self.system
    }
    /// The canonical entity.
    pub fn entity(&self) -> &str {
        &self.entity
    }
    /// The table or file pattern in the system.
    pub fn object(&self) -> &str {
        &self.object
    }
    /// The canonical key fields of the entity.
    pub fn entity_key(&self) -> &[String] {
        &self.entity_key
    }

    /// The system-side key columns: the mapping's `key`, or the system fields that the
    /// entity key maps from.
    pub fn key_fields(&self) -> Vec<String> {
        if let Some(k) = &self.key_override {
            return k.clone();
        }
        let mut out = Vec::new();
        for k in &self.entity_key {
            if let Some(p) = self.plans.iter().find(|p| &p.name == k) {
                for f in p.system_fields() {
                    push_unique(&mut out, f);
                }
            }
        }
        out
    }

    /// The entity key text of a canonical record.
    pub fn canonical_key(&self, canonical: &Record) -> Key {
        key_of(canonical, &self.entity_key)
    }

    /// Every system field the mapping reads or writes, in mapping order (fields read by
    /// inbound expressions included), e.g. for a SELECT list.
    pub fn system_fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.plans {
            for f in p.system_fields() {
                push_unique(&mut out, f);
            }
            if let Some(e) = &p.expr_in {
                for f in e.field_refs("src") {
                    push_unique(&mut out, f);
                }
            }
        }
        if let Some(k) = &self.key_override {
            for f in k {
                push_unique(&mut out, f.clone());
            }
        }
        out
    }

    /// The canonical fields this mapping produces.
    pub fn canonical_fields(&self) -> Vec<String> {
        self.plans.iter().map(|p| p.name.clone()).collect()
    }
}

impl FieldPlan {
    /// The system fields this field is written to outbound (and read from inbound).
    fn system_fields(&self) -> Vec<String> {
        match &self.source {
            Source::One(f) => vec![f.clone()],
            Source::Join { fields, .. } => fields.clone(),
            Source::Part { field, .. } => vec![field.clone()],
            Source::Computed if self.expr_out.is_some() => vec![self.name.clone()],
            Source::Computed => vec![],
        }
    }

    /// The system field to name in an error, when there is exactly one.
    fn system_field(&self) -> Option<String> {
        match &self.source {
            Source::One(f) | Source::Part { field: f, .. } => Some(f.clone()),
            Source::Join { fields, .. } => Some(fields.join("+")),
            Source::Computed => None,
        }
    }
}

fn push_unique(out: &mut Vec<String>, f: String) {
    if !out.contains(&f) {
        out.push(f);
    }
}

fn key_override(def: &MappingDef) -> Option<Vec<String>> {
    def.key.clone().filter(|k| !k.is_empty())
}

fn suggest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> String {
    known
        .map(|k| (strsim::jaro_winkler(name, k), k))
        .filter(|(s, _)| *s > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

fn compile_field(
    config: &Config,
    name: &str,
    fm: &FieldMap,
    ty: FieldType,
    sensitive: bool,
) -> Result<FieldPlan, String> {
    let names: Vec<String> = match &fm.from {
        Some(f) => f.names().into_iter().map(str::to_string).collect(),
        None => Vec::new(),
    };
    let many = matches!(fm.from, Some(FromSpec::Many(_)));
    let source = match (&fm.from, &fm.part, &fm.join) {
        (_, Some(_), _) if many || names.is_empty() => {
            return Err(
                "`part` takes one part of a single system field; give `from` exactly one field"
                    .into(),
            );
        }
        (_, Some(p), _) => {
            if p.sep.is_empty() {
                return Err("`part` needs a non-empty `sep`".into());
            }
            Source::Part {
                // The arm above returned for an empty `names`, so index 0 exists.
                field: names[0].clone(),
                sep: p.sep.clone(),
                index: p.index,
            }
        }
        (Some(_), None, Some(sep)) if many => {
            if sep.is_empty() {
                return Err("`join` needs a non-empty separator so the value can be split back outbound, e.g. `join: \" \"`".into());
            }
            Source::Join {
                fields: names.clone(),
                sep: sep.clone(),
            }
        }
        (Some(_), None, None) if many && names.len() > 1 => {
            return Err(format!(
                "`from` lists {} fields but no `join` separator; add e.g. `join: \" \"` so they can be joined inbound and split outbound",
                names.len()
            ));
        }
        (Some(_), None, _) if names.len() == 1 => Source::One(names[0].clone()),
        (Some(_), None, _) => {
            return Err("`from` lists no field; name the system field(s)".into());
        }
        (None, None, _) if fm.expr.is_some() => Source::Computed,
        // No `from` and no `expr`: the system field has the canonical name.
        (None, None, _) => Source::One(name.to_string()),
    };
    let compile = |e: &Option<crate::config::Spanned<String>>, var: &str, key: &str| {
        e.as_ref()
            .map(|s| {
                Expr::compile_with_vars(&s.value, &[var]).map_err(|err| {
                    format!(
                        "`{key}` (line {}): {err}; the expression may use `{var}.<field>`",
                        s.referenced.line()
                    )
                })
            })
            .transpose()
    };
    let expr_in = compile(&fm.expr, "src", "expr")?;
    let expr_out = compile(&fm.expr_out, "rec", "expr_out")?;
    let mut convs = Vec::new();
    for c in &fm.convert {
        convs.push(
            Conv::compile(&c.value)
                .map_err(|e| format!("converter at line {}: {e}", c.referenced.line()))?,
        );
    }
    if let Some(values) = &fm.values {
        check_values(values, &ty)?;
    }
    if let Some(entity) = &fm.lookup
        && !config.entities.contains_key(entity)
    {
        return Err(format!(
            "`lookup: {entity}` names no entity under `entities:`{}; lookup takes the entity whose crosswalk translates this id",
            suggest(entity, config.entities.keys().map(String::as_str))
        ));
    }
    Ok(FieldPlan {
        name: name.to_string(),
        source,
        expr_in,
        expr_out,
        default: fm.default.as_ref().map(Value::from_json),
        convs,
        values: fm.values.clone(),
        lookup: fm.lookup.clone(),
        ty,
        sensitive,
    })
}

/// A value map must read back unambiguously and hold only values the dictionary allows.
fn check_values(values: &IndexMap<String, String>, ty: &FieldType) -> Result<(), String> {
    let mut seen: IndexMap<&str, &str> = IndexMap::new();
    for (canon, sys) in values {
        if let Some(other) = seen.insert(sys.as_str(), canon.as_str()) {
            return Err(format!(
                "`values` maps both `{other}` and `{canon}` to system value `{sys}`, so `{sys}` cannot be read back; give each canonical value its own system value"
            ));
        }
        if let FieldType::Enum(allowed) = ty
            && !allowed.contains(canon)
        {
            return Err(format!(
                "`values` maps canonical value `{canon}`, which the field's type `{ty}` does not allow; use one of: {}",
                allowed.join(", ")
            ));
        }
    }
    Ok(())
}
