//! What happens to each change between source and outbox: inbound mapping, filter, rules,
//! outbound mapping. Pure and synchronous; runs on a blocking thread per batch.

use crate::plan::FlowPlan;
use qiao_core::mapping::{Lookup, MapError};
use qiao_core::rules::{Violation, has_errors};
use qiao_core::{Change, Op, Record, Value};
use qiao_store::{ExceptionKind, NewException};
use std::collections::BTreeMap;

/// The result of processing one batch of source changes.
#[derive(Default)]
pub struct Processed {
    /// Changes in target shape, keyed by canonical key, ready for the outbox.
    pub deliver: Vec<Change>,
    /// Validation exceptions (the source-shape change is kept so a retry re-processes it).
    pub exceptions: Vec<NewException>,
    /// Canonical keys that passed: older validation exceptions of these are superseded.
    pub passed_keys: Vec<String>,
    /// Records the filter skipped.
    pub filtered: u64,
    /// Records with warnings (they pass).
    pub warned: u64,
    /// Why records were rejected: reason → count, for run summaries.
    pub reasons: BTreeMap<String, u64>,
    /// The first exception message of each reason, as an example.
    pub examples: BTreeMap<String, String>,
}

impl FlowPlan {
    /// Processes a batch of source changes in order.
    pub fn process(&self, changes: Vec<Change>, lookup: &dyn Lookup) -> Processed {
        let mut out = Processed::default();
        for change in changes {
            match self.process_one(&change, lookup) {
                Step::Deliver(c, warned) => {
                    out.warned += u64::from(warned);
                    out.passed_keys.push(c.key.clone());
                    out.deliver.push(c);
                }
                Step::Filtered => out.filtered += 1,
                Step::Reject(reason, exc) => {
                    out.examples
                        .entry(reason.clone())
                        .or_insert_with(|| exc.message.clone());
                    *out.reasons.entry(reason).or_default() += 1;
                    out.exceptions.push(exc);
                }
            }
        }
        out
    }

    /// Processes one source change (also used to re-process an exception on retry).
    pub fn process_one(&self, change: &Change, lookup: &dyn Lookup) -> Step {
        let mapped = match self.source.inbound(&change.record, lookup) {
            Ok(m) => m,
            Err(e) => return self.map_reject(change, None, &self.source_mapping, e),
        };
        let canonical = mapped.record;
        let key = self.source.canonical_key(&canonical);
        if change.op == Op::Delete {
            return match self.target.outbound_key_only(&canonical, lookup) {
                Ok(m) => Step::Deliver(with_key(change, key, m.record), false),
                Err(e) => self.map_reject(change, Some(key), &self.target_mapping, e),
            };
        }
        if let Some(filter) = &self.filter {
            match filter.eval(&[("rec", &canonical)]) {
                Ok(Value::Bool(true)) => {}
                Ok(Value::Bool(false)) => return Step::Filtered,
                Ok(other) => {
                    let msg = format!(
                        "the flow filter gave `{other}` ({}), not true/false; make the filter a comparison",
                        other.type_name()
                    );
                    return self.filter_reject(change, key, msg);
                }
                Err(e) => {
                    return self.filter_reject(change, key, format!("the flow filter failed: {e}"));
                }
            }
        }
        let violations = self.rules.validate(&canonical);
        if has_errors(&violations) {
            return self.rule_reject(change, key, violations);
        }
        let warned = !violations.is_empty() || !mapped.warnings.is_empty();
        match self.target.outbound(&canonical, lookup) {
            Ok(m) => Step::Deliver(with_key(change, key, m.record), warned),
            Err(e) => self.map_reject(change, Some(key), &self.target_mapping, e),
        }
    }

    fn filter_reject(&self, change: &Change, key: String, msg: String) -> Step {
        let details = serde_json::json!({ "stage": "pipeline" });
        self.reject(change, Some(key), "filter", msg, details)
    }

    fn rule_reject(&self, change: &Change, key: String, violations: Vec<Violation>) -> Step {
        let errors: Vec<&Violation> = violations
            .iter()
            .filter(|v| v.severity == qiao_core::config::Severity::Error)
            .collect();
        // The first error decides the owner; the list keeps them all.
        let owner = errors
            .first()
            .map(|v| v.owner.clone())
            .unwrap_or_else(|| self.owner.clone());
        let summary = errors
            .iter()
            .map(|v| format!("{}: {} / {}", v.code, v.message.zh, v.message.en))
            .collect::<Vec<_>>()
            .join("; ");
        // Summaries group by rule, not by message: messages carry values.
        let reason = errors
            .iter()
            .map(|v| v.code.as_str())
            .collect::<Vec<_>>()
            .join(" + ");
        let exc = NewException {
            flow: self.name.clone(),
            kind: ExceptionKind::Validation,
            owner,
            key: Some(key.clone()),
            message: format!("{} key {key}: {summary}", self.entity),
            details: serde_json::json!({ "stage": "pipeline", "violations": violations, "origin": change.origin }),
            changes: vec![change.clone()],
            blocks_keys: false,
        };
        Step::Reject(format!("{reason} (owner {})", exc.owner), exc)
    }

    fn map_reject(&self, change: &Change, key: Option<String>, mapping: &str, e: MapError) -> Step {
        // MapError's text already names the mapping, the field and the fix.
        let msg = e.to_string();
        let reason = format!("mapping `{mapping}` could not read field `{}`", e.field);
        let details = serde_json::json!({ "stage": "pipeline", "mapping": mapping, "field": e.field, "origin": change.origin });
        match self.reject(change, key, &reason, msg, details) {
            Step::Reject(_, exc) => Step::Reject(reason, exc),
            other => other,
        }
    }

    fn reject(
        &self,
        change: &Change,
        key: Option<String>,
        reason: &str,
        message: String,
        details: serde_json::Value,
    ) -> Step {
        let key = key.unwrap_or_else(|| change.key.clone());
        let origin = change.origin.as_deref().unwrap_or("");
        let exc = NewException {
            flow: self.name.clone(),
            kind: ExceptionKind::Validation,
            owner: self.owner.clone(),
            key: Some(key.clone()),
            message: format!("{} key {key} ({origin}): {message}", self.entity),
            details,
            changes: vec![change.clone()],
            blocks_keys: false,
        };
        Step::Reject(reason.to_string(), exc)
    }
}

/// The fate of one change.
pub enum Step {
    /// Goes to the outbox in target shape; `true` if it carried warnings.
    Deliver(Change, bool),
    /// Skipped by the flow filter.
    Filtered,
    /// Became an exception; the string is the short reason for summaries.
    Reject(String, NewException),
}

fn with_key(src: &Change, key: String, record: Record) -> Change {
    Change {
        op: src.op,
        key,
        record,
        source_time: src.source_time,
        origin: src.origin.clone(),
    }
}
