//! The rule engine: checks a canonical record before it may leave for a target.
//!
//! Checks come from rule packs (the always-on `generic` pack derives its checks from the
//! data dictionary; domain packs such as a China tax pack plug in through
//! [`register_pack`]) and from the config's named rule sets. Every violation says what is
//! wrong in Chinese and English, who fixes it (`owner`) and whether it blocks the record.

mod configured;
mod generic;

pub use crate::config::{Message, Severity};
pub use generic::GenericPack;

use crate::config::{Config, EntityDef};
use crate::record::Record;
use crate::types::FieldType;
use configured::ConfigRule;
use indexmap::IndexMap;
use serde::Serialize;
use std::sync::{Arc, OnceLock, RwLock};

/// One rule a record breaks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    /// Stable rule code, e.g. `GEN-REQUIRED` or `CUST-PHONE-001`.
    pub code: String,
    /// The field at fault, if one is.
    pub field: Option<String>,
    /// `error` blocks the record; `warning` lets it pass.
    pub severity: Severity,
    /// The role that fixes it: `sales`, `finance`, `it`…
    pub owner: String,
    /// What is wrong, for people, in Chinese and English.
    pub message: Message,
    /// Technical detail: entity, field, value (masked if sensitive), the check.
    pub detail: String,
}

/// A pack of rules in code: one module, registered once, selected by name.
pub trait RulePack: Send + Sync {
    /// The pack's name as written in a flow's `rules:` list, e.g. `generic`, `cn.tax`.
    fn name(&self) -> &str;
    /// Checks `rec`, a record of `entity` (defined by `def`), appending what it breaks.
    fn check(&self, entity: &str, def: &EntityDef, rec: &Record, out: &mut Vec<Violation>);
}

/// True if any violation blocks the record.
pub fn has_errors(v: &[Violation]) -> bool {
    v.iter().any(|v| v.severity == Severity::Error)
}

/// Rule packs by name.
#[derive(Clone, Default)]
pub struct PackRegistry {
    packs: IndexMap<String, Arc<dyn RulePack>>,
}

impl PackRegistry {
    /// The packs built into qiao-core. A new built-in pack is one line here.
    pub fn builtin() -> PackRegistry {
        let mut r = PackRegistry::default();
        r.register(Arc::new(GenericPack));
        r
    }

    /// Adds (or replaces) a pack under its name.
    pub fn register(&mut self, pack: Arc<dyn RulePack>) {
        self.packs.insert(pack.name().to_string(), pack);
    }

    /// The pack named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn RulePack>> {
        self.packs.get(name).cloned()
    }

    /// The registered pack names.
    pub fn names(&self) -> Vec<String> {
        self.packs.keys().cloned().collect()
    }
}

fn global() -> &'static RwLock<PackRegistry> {
    static REGISTRY: OnceLock<RwLock<PackRegistry>> = OnceLock::new();
    REGISTRY.get_or_init(|| RwLock::new(PackRegistry::builtin()))
}

/// Registers a pack process-wide, so flows can name it in `rules:` (a domain crate such
/// as qiao-cn calls this once at start-up).
pub fn register_pack(pack: Arc<dyn RulePack>) {
    // A poisoned lock only means another registration panicked; the map is still whole.
    let mut g = global().write().unwrap_or_else(|e| e.into_inner());
    g.register(pack);
}

/// A snapshot of the process-wide packs (built-in ones plus those registered).
pub fn registered_packs() -> PackRegistry {
    global().read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The name of the pack that is always on.
pub const GENERIC: &str = "generic";

/// The checks for one entity: the generic pack, the named packs and rule sets.
pub struct RuleEngine {
    entity: String,
    def: EntityDef,
    packs: Vec<Arc<dyn RulePack>>,
    rules: Vec<ConfigRule>,
    /// The entity's sensitive fields, whose values are masked in expression errors.
    sensitive: Vec<String>,
}

impl RuleEngine {
    /// Builds the checks of `entity` with the rule sets (or pack names) in `rule_sets`,
    /// resolving pack names against the process-wide registry.
    pub fn new(config: &Config, entity: &str, rule_sets: &[String]) -> Result<RuleEngine, String> {
        RuleEngine::with_registry(config, entity, rule_sets, &registered_packs())
    }

    /// Like [`RuleEngine::new`] with an explicit pack registry.
    pub fn with_registry(
        config: &Config,
        entity: &str,
        rule_sets: &[String],
        registry: &PackRegistry,
    ) -> Result<RuleEngine, String> {
        let def = config.entities.get(entity).ok_or_else(|| {
            format!(
                "rules: entity `{entity}` is not under `entities:`; known entities: {}",
                config
                    .entities
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        for (name, f) in &def.fields {
            FieldType::parse(&f.ty.value).map_err(|e| {
                format!(
                    "entity `{entity}`, field `{name}` (line {}): {e}",
                    f.ty.referenced.line()
                )
            })?;
        }
        let mut packs: Vec<Arc<dyn RulePack>> = Vec::new();
        let generic = registry
            .get(GENERIC)
            .unwrap_or_else(|| Arc::new(GenericPack));
        packs.push(generic);
        let mut rules = Vec::new();
        for set in rule_sets {
            if let Some(rs) = config.rules.get(set) {
                if rs.entity.value != entity {
                    return Err(format!(
                        "rule set `{set}` (line {}) checks entity `{}`, but the records here are `{entity}`; use a rule set for `{entity}` or fix its `entity:`",
                        rs.entity.referenced.line(),
                        rs.entity.value
                    ));
                }
                for r in &rs.rules {
                    rules.push(ConfigRule::compile(set, entity, def, r)?);
                }
            } else if let Some(p) = registry.get(set) {
                if !packs.iter().any(|q| q.name() == p.name()) {
                    packs.push(p);
                }
            } else {
                let mut known: Vec<String> = config.rules.keys().cloned().collect();
                known.extend(registry.names());
                return Err(format!(
                    "no rule set or rule pack `{set}`; define it under `rules:` or use one of: {}",
                    known.join(", ")
                ));
            }
        }
        Ok(RuleEngine {
            sensitive: def
                .fields
                .iter()
                .filter(|(_, f)| f.sensitive)
                .map(|(n, _)| n.clone())
                .collect(),
            entity: entity.to_string(),
            def: def.clone(),
            packs,
            rules,
        })
    }

    /// The entity checked.
    pub fn entity(&self) -> &str {
        &self.entity
    }

    /// The names of the active packs, `generic` first.
    pub fn pack_names(&self) -> Vec<String> {
        self.packs.iter().map(|p| p.name().to_string()).collect()
    }

    /// Adds a pack to this engine only.
    pub fn add_pack(&mut self, pack: Arc<dyn RulePack>) {
        if !self.packs.iter().any(|p| p.name() == pack.name()) {
            self.packs.push(pack);
        }
    }

    /// Every violation of `rec`, packs first, then rule sets in order. Where a configured
    /// rule makes the same kind of check on the same field as the generic pack, only the
    /// configured one (with its owner and message) is reported.
    pub fn validate(&self, rec: &Record) -> Vec<Violation> {
        let mut packed = Vec::new();
        for p in &self.packs {
            p.check(&self.entity, &self.def, rec, &mut packed);
        }
        let mut configured = Vec::new();
        let mut covered: Vec<(&str, &str)> = Vec::new();
        for r in &self.rules {
            let before = configured.len();
            r.check(&self.entity, rec, &self.sensitive, &mut configured);
            if configured.len() > before
                && let (Some(f), Some(code)) = (r.field(), r.generic_twin())
            {
                covered.push((f, code));
            }
        }
        packed.retain(|v| {
            !covered
                .iter()
                .any(|(f, code)| v.field.as_deref() == Some(*f) && v.code == *code)
        });
        packed.extend(configured);
        packed
    }
}
