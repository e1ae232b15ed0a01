//! A flow compiled from the config: its mappers, rules, filter and delivery policy.

use crate::{EngineError, Result};
use qiao_core::config::{Config, DeleteDetection, FlowDef};
use qiao_core::duration::parse_duration;
use qiao_core::expr::Expr;
use qiao_core::mapping::Mapper;
use qiao_core::rules::RuleEngine;
use qiao_core::types::FieldType;
use qiao_core::{Change, Record};
use std::time::Duration;

/// The retry schedule used when neither the flow nor the config sets one.
pub const DEFAULT_RETRY: [Duration; 3] = [
    Duration::from_secs(60),
    Duration::from_secs(300),
    Duration::from_secs(300),
];

/// Records per job when the flow does not say.
pub const DEFAULT_BATCH: usize = 2_000;

/// Everything needed to run one flow, checked and compiled once.
pub struct FlowPlan {
    /// Flow name.
    pub name: String,
    /// The flow as configured.
    pub def: FlowDef,
    /// Canonical entity.
    pub entity: String,
    /// Source mapping name and system.
    pub source_mapping: String,
    /// Source system name.
    pub source_system: String,
    /// Target mapping name.
    pub target_mapping: String,
    /// Target system name.
    pub target_system: String,
    /// Source shape ↔ canonical.
    pub source: Mapper,
    /// Canonical ↔ target shape.
    pub target: Mapper,
    /// Rules applied to the canonical record.
    pub rules: RuleEngine,
    /// Records for which this is false are skipped.
    pub filter: Option<Expr>,
    /// Delivery retry schedule.
    pub retry: Vec<Duration>,
    /// Records per job.
    pub batch_size: usize,
    /// Owner role of delivery exceptions.
    pub owner: String,
    /// Whether deletes are found by comparing key sets.
    pub key_scan: bool,
    /// The entity's key fields and their dictionary types.
    pub key_types: Vec<(String, FieldType)>,
}

impl FlowPlan {
    /// Compiles `flow` of `config`.
    pub fn build(config: &Config, flow: &str) -> Result<FlowPlan> {
        let def = config.flows.get(flow).ok_or_else(|| {
            let known: Vec<&str> = config.flows.keys().map(String::as_str).collect();
            EngineError::Config(format!(
                "no flow `{flow}` in the config; flows are: {}",
                known.join(", ")
            ))
        })?;
        let cfg_err = |what: String| EngineError::Config(format!("flow `{flow}`: {what}"));
        let mapping = |name: &str| {
            config
                .mappings
                .get(name)
                .ok_or_else(|| cfg_err(format!("unknown mapping `{name}`")))
        };
        let from = mapping(&def.from.value)?;
        let to = mapping(&def.to.value)?;
        let source = Mapper::new(config, &def.from.value).map_err(cfg_err)?;
        let target = Mapper::new(config, &def.to.value).map_err(cfg_err)?;
        let rule_sets: Vec<String> = def.rules.iter().map(|r| r.value.clone()).collect();
        let rules = RuleEngine::new(config, &from.entity.value, &rule_sets).map_err(cfg_err)?;
        let filter = match &def.filter {
            Some(src) => {
                Some(Expr::compile(&src.value).map_err(|e| cfg_err(format!("filter: {e}")))?)
            }
            None => None,
        };
        let schedule = def.retry.as_ref().or(config.retry.as_ref());
        let retry = match schedule {
            Some(list) => list
                .iter()
                .map(|s| parse_duration(s).map_err(|e| cfg_err(format!("retry: {e}"))))
                .collect::<Result<Vec<_>>>()?,
            None => DEFAULT_RETRY.to_vec(),
        };
        let entity = config.entities.get(&from.entity.value).ok_or_else(|| {
            cfg_err(format!(
                "mapping `{}` names entity `{}`, which is not under `entities:`",
                def.from.value, from.entity.value
            ))
        })?;
        let mut key_types = Vec::new();
        for k in &entity.key {
            let field = entity.fields.get(&k.value).ok_or_else(|| {
                cfg_err(format!(
                    "key field `{}` of entity `{}` is not among its fields",
                    k.value, from.entity.value
                ))
            })?;
            let ty = FieldType::parse(&field.ty.value)
                .map_err(|e| cfg_err(format!("field `{}`: {e}", k.value)))?;
            key_types.push((k.value.clone(), ty));
        }
        Ok(FlowPlan {
            key_types,
            name: flow.to_string(),
            entity: from.entity.value.clone(),
            source_mapping: def.from.value.clone(),
            source_system: from.system.value.clone(),
            target_mapping: def.to.value.clone(),
            target_system: to.system.value.clone(),
            source,
            target,
            rules,
            filter,
            retry,
            batch_size: def.batch_size.unwrap_or(DEFAULT_BATCH).max(1),
            owner: def.owner.clone().unwrap_or_else(|| "it".to_string()),
            key_scan: def.deletes == DeleteDetection::KeyScan,
            def: def.clone(),
        })
    }
}

impl FlowPlan {
    /// The target-shape delete of a canonical key text (as `key_of` builds it).
    pub fn delete_for_key(&self, key: &str) -> std::result::Result<Change, String> {
        let parts: Vec<&str> = if self.key_types.len() == 1 {
            vec![key]
        } else {
            key.split('|').collect()
        };
        if parts.len() != self.key_types.len() {
            return Err(format!(
                "flow `{}`: key `{key}` has {} parts but entity `{}` has {} key fields; a key value contains `|`",
                self.name,
                parts.len(),
                self.entity,
                self.key_types.len()
            ));
        }
        let mut rec = Record::new();
        for ((name, ty), part) in self.key_types.iter().zip(parts) {
            let v = ty
                .coerce(qiao_core::Value::Text(part.to_string()))
                .map_err(|e| format!("flow `{}`: key field `{name}`: {e}", self.name))?;
            rec.set(name.clone(), v);
        }
        let lookup = qiao_core::mapping::NoLookup;
        let mapped = self.target.outbound_key_only(&rec, &lookup).map_err(|e| {
            format!(
                "flow `{}`: mapping `{}`: {e}",
                self.name, self.target_mapping
            )
        })?;
        Ok(Change::delete(key, mapped.record))
    }
}
