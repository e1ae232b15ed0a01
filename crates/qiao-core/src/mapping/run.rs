//! Running a compiled mapping: inbound (system → canonical) and outbound (canonical →
//! system), field by field, recording provenance and warnings.

use super::{FieldPlan, Lookup, MapError, Mapped, Mapper, Source, redact, show};
use crate::record::{Record, Value};
use indexmap::IndexMap;

/// Provenance steps of one field, recorded only when the mapper traces (`qiao map`):
/// formatting them for every record of a bulk load would cost more than the mapping.
pub(super) struct Trace(Option<Vec<String>>);

impl Trace {
    fn new(on: bool) -> Trace {
        Trace(on.then(Vec::new))
    }
    fn push(&mut self, step: impl FnOnce() -> String) {
        if let Some(steps) = &mut self.0 {
            steps.push(step());
        }
    }
    /// The steps joined for display, in the order they were applied.
    fn chain(&self) -> Option<String> {
        self.0.as_ref().map(|s| s.join(" ← "))
    }
}

/// Records a provenance line when tracing.
fn note(out: &mut Mapped, field: &str, prov: &Option<String>, suffix: impl FnOnce() -> String) {
    if let Some(prov) = prov {
        out.provenance
            .push((field.to_string(), format!("{prov}{}", suffix())));
    }
}

impl Mapper {
    /// Maps a record in the system's shape to the canonical shape: read `from` (or `expr`),
    /// default when blank, converters in order, value map read in reverse, crosswalk
    /// lookup, then coercion to the dictionary type.
    pub fn inbound(&self, src: &Record, lookup: &dyn Lookup) -> Result<Mapped, MapError> {
        let mut out = Mapped::default();
        for p in &self.plans {
            let (v, steps) = self.inbound_field(p, src, lookup, &mut out.warnings)?;
            out.record.set(p.name.clone(), v);
            note(&mut out, &p.name, &steps.chain(), String::new);
        }
        Ok(out)
    }

    /// Maps a canonical record to the system's shape: crosswalk lookup to the system's id,
    /// value map forward, converters' inverses in reverse order, then the value is written
    /// to its system field(s) — split for `join`, joined for `part`, or `expr_out`.
    pub fn outbound(&self, canonical: &Record, lookup: &dyn Lookup) -> Result<Mapped, MapError> {
        self.outbound_plans(self.plans.iter(), canonical, lookup)
    }

    /// Maps only the key fields outbound, for deletes: the system record that names the
    /// row to delete.
    pub fn outbound_key_only(
        &self,
        canonical: &Record,
        lookup: &dyn Lookup,
    ) -> Result<Mapped, MapError> {
        let key_cols = self.key_override.clone().unwrap_or_default();
        let plans = self.plans.iter().filter(|p| {
            self.entity_key.contains(&p.name)
                || p.system_fields().iter().any(|f| key_cols.contains(f))
        });
        self.outbound_plans(plans, canonical, lookup)
    }

    fn err(&self, p: &FieldPlan, message: String) -> MapError {
        MapError {
            mapping: self.name.clone(),
            field: p.name.clone(),
            system_field: p.system_field(),
            message,
        }
    }

    fn inbound_field(
        &self,
        p: &FieldPlan,
        src: &Record,
        lookup: &dyn Lookup,
        warnings: &mut Vec<String>,
    ) -> Result<(Value, Trace), MapError> {
        let mut steps = Trace::new(self.trace);
        let mut v = match (&p.expr_in, &p.source) {
            (Some(e), _) => {
                steps.push(|| format!("expr({})", e.source()));
                e.eval(&[("src", src)]).map_err(|e| {
                    let hidden = self.sensitive_system.iter().map(|f| src.get(f));
                    let e = redact(&e.to_string(), hidden);
                    self.err(
                        p,
                        format!(
                            "the inbound expression failed: {e}; fix `expr` or the source record"
                        ),
                    )
                })?
            }
            (None, Source::One(f)) => {
                steps.push(|| f.clone());
                src.get(f).clone()
            }
            (None, Source::Join { fields, sep }) => {
                steps.push(|| format!("{} (join {sep:?})", fields.join(" + ")));
                let parts: Vec<String> = fields
                    .iter()
                    .map(|f| src.get(f))
                    .filter(|v| !v.is_blank())
                    .map(Value::to_string)
                    .collect();
                if parts.is_empty() {
                    Value::Null
                } else {
                    Value::Text(parts.join(sep))
                }
            }
            (None, Source::Part { field, sep, index }) => {
                steps.push(|| format!("{field} (part {index} of split {sep:?})"));
                let whole = src.get(field);
                if whole.is_blank() {
                    Value::Null
                } else {
                    let text = whole.to_string();
                    text.split(sep.as_str())
                        .nth(*index)
                        .map_or(Value::Null, |s| Value::Text(s.to_string()))
                }
            }
            (None, Source::Computed) => Value::Null,
        };
        if v.is_blank()
            && let Some(d) = &p.default
        {
            v = d.clone();
            steps.push(|| format!("default({d})"));
        }
        for c in &p.convs {
            let step = c.forward(v, p.sensitive).map_err(|m| self.err(p, m))?;
            if let Some(w) = step.warning {
                warnings.push(format!("mapping `{}`, field `{}`: {w}", self.name, p.name));
            }
            v = step.value;
            steps.push(|| c.describe());
        }
        if let Some(map) = &p.values
            && !v.is_blank()
        {
            let text = v.to_string();
            let Some((canon, _)) = map.iter().find(|(_, sys)| **sys == text) else {
                let known: Vec<String> = map.iter().map(|(c, s)| format!("{s} → {c}")).collect();
                return Err(self.err(
                    p,
                    format!(
                        "system value {} is not in the value map (known: {}); add `<canonical>: {}` under this field's `values:` or correct the source record",
                        show(&v, p.sensitive),
                        known.join(", "),
                        if p.sensitive { "<value>".to_string() } else { text.clone() }
                    ),
                ));
            };
            v = Value::Text(canon.clone());
            steps.push(|| "values".to_string());
        }
        if let Some(entity) = &p.lookup
            && !v.is_blank()
        {
            let local = v.to_string();
            let Some(golden) = lookup.to_golden(&self.system, entity, &local) else {
                return Err(self.err(
                    p,
                    format!(
                        "{entity} id {} of system `{}` has no golden record in the crosswalk; sync that {entity} from `{}` first (or link it by hand), then retry",
                        show(&v, p.sensitive),
                        self.system,
                        self.system
                    ),
                ));
            };
            v = Value::Text(golden);
            steps.push(|| format!("lookup({entity})"));
        }
        // Shown only in the error: formatting it for every field would cost more than the
        // coercion.
        let shown = if p.sensitive {
            show(&v, true)
        } else {
            String::new()
        };
        let type_name = v.type_name();
        let v = p.ty.coerce(v).map_err(|e| {
            let detail = if p.sensitive {
                format!("value {shown} ({type_name}) does not fit the dictionary type `{}`", p.ty)
            } else {
                e
            };
            self.err(
                p,
                format!("{detail}; fix the source value or add a converter (e.g. `decimal`, `date: \"%Y%m%d\"`) to this field"),
            )
        })?;
        Ok((v, steps))
    }

    fn outbound_value(
        &self,
        p: &FieldPlan,
        canonical: &Record,
        lookup: &dyn Lookup,
    ) -> Result<(Value, Trace), MapError> {
        if let Some(e) = &p.expr_out {
            let v = e.eval(&[("rec", canonical)]).map_err(|e| {
                let hidden = self.sensitive_canonical.iter().map(|f| canonical.get(f));
                let e = redact(&e.to_string(), hidden);
                self.err(p, format!("the outbound expression failed: {e}; fix `expr_out` or the canonical record"))
            })?;
            let mut steps = Trace::new(self.trace);
            steps.push(|| format!("expr_out({})", e.source()));
            return Ok((v, steps));
        }
        let mut steps = Trace::new(self.trace);
        steps.push(|| p.name.clone());
        let mut v = canonical.get(&p.name).clone();
        if let Some(entity) = &p.lookup
            && !v.is_blank()
        {
            let golden = v.to_string();
            let Some(local) = lookup.to_local(&self.system, entity, &golden) else {
                return Err(self.err(
                    p,
                    format!(
                        "golden {entity} {} has no id in system `{}` in the crosswalk; create or sync that {entity} in `{}` first (or link it by hand), then retry",
                        show(&v, p.sensitive),
                        self.system,
                        self.system
                    ),
                ));
            };
            v = Value::Text(local);
            steps.push(|| format!("lookup({entity})"));
        }
        if let Some(map) = &p.values
            && !v.is_blank()
        {
            let text = v.to_string();
            let Some(sys) = map.get(&text) else {
                let known: Vec<&str> = map.keys().map(String::as_str).collect();
                return Err(self.err(
                    p,
                    format!(
                        "canonical value {} has no system value in this field's `values:` (known: {}); add `{}: <system value>` there",
                        show(&v, p.sensitive),
                        known.join(", "),
                        if p.sensitive { "<value>".to_string() } else { text.clone() }
                    ),
                ));
            };
            v = Value::Text(sys.clone());
            steps.push(|| "values".to_string());
        }
        for c in p.convs.iter().rev() {
            let step = c.inverse(v, p.sensitive).map_err(|m| self.err(p, m))?;
            v = step.value;
            steps.push(|| c.describe_inverse());
        }
        Ok((v, steps))
    }

    fn outbound_plans<'a>(
        &self,
        plans: impl Iterator<Item = &'a FieldPlan>,
        canonical: &Record,
        lookup: &dyn Lookup,
    ) -> Result<Mapped, MapError> {
        let mut out = Mapped::default();
        // System field → (separator, parts by index), joined once every part is known.
        let mut joins: IndexMap<String, (String, Vec<(usize, String)>)> = IndexMap::new();
        for p in plans {
            if matches!(p.source, Source::Computed) && p.expr_out.is_none() {
                continue;
            }
            let (v, steps) = self.outbound_value(p, canonical, lookup)?;
            let prov = steps.chain();
            match &p.source {
                Source::One(f) => {
                    out.record.set(f.clone(), v);
                    note(&mut out, f, &prov, String::new);
                }
                Source::Computed => {
                    out.record.set(p.name.clone(), v);
                    note(&mut out, &p.name, &prov, String::new);
                }
                Source::Join { fields, sep } => {
                    let text = if v.is_blank() {
                        None
                    } else {
                        Some(v.to_string())
                    };
                    let mut parts = text
                        .as_deref()
                        .map(|t| t.splitn(fields.len(), sep.as_str()));
                    for (i, f) in fields.iter().enumerate() {
                        let part = parts.as_mut().and_then(|it| it.next());
                        out.record.set(
                            f.clone(),
                            part.map_or(Value::Null, |s| Value::Text(s.to_string())),
                        );
                        note(&mut out, f, &prov, || format!(" ← split {sep:?} part {i}"));
                    }
                }
                Source::Part { field, sep, index } => {
                    // Reserve the field's position now; the joined text is set below.
                    if !out.record.fields.contains_key(field) {
                        out.record.set(field.clone(), Value::Null);
                    }
                    let text = if v.is_blank() {
                        String::new()
                    } else {
                        v.to_string()
                    };
                    joins
                        .entry(field.clone())
                        .or_insert_with(|| (sep.clone(), Vec::new()))
                        .1
                        .push((*index, text));
                    note(&mut out, field, &prov, || {
                        format!(" ← part {index} of join {sep:?}")
                    });
                }
            }
        }
        for (field, (sep, mut parts)) in joins {
            parts.sort_by_key(|(i, _)| *i);
            let len = parts.last().map_or(0, |(i, _)| i + 1);
            let mut slots = vec![String::new(); len];
            for (i, t) in parts {
                slots[i] = t;
            }
            let v = if slots.iter().all(String::is_empty) {
                Value::Null
            } else {
                Value::Text(slots.join(&sep))
            };
            out.record.set(field, v);
        }
        Ok(out)
    }
}
