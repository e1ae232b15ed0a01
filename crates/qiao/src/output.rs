//! What the CLI prints: run summaries, status, exceptions, mapping previews.

use qiao_core::config::Config;
use qiao_core::mapping::{Mapper, NoLookup};
use qiao_core::rules::RuleEngine;
use qiao_core::{Change, Record, Value};
use qiao_engine::RunSummary;
use qiao_store::{ExceptionRow, HistoryEntry, RunRecord};
use std::collections::HashSet;
use std::path::Path;
use std::process::ExitCode;

/// One line per pass.
pub fn summary_line(s: &RunSummary) -> String {
    format!(
        "flow {}: read {} · delivered {} · deleted {} · rejected {} · filtered {} · warnings {} · {} in {:.1} s",
        s.flow,
        s.read,
        s.delivered,
        s.deleted,
        s.rejected,
        s.filtered,
        s.warned,
        s.status(),
        s.seconds
    )
}

/// The summary with rejection reasons.
pub fn print_summary(s: &RunSummary) {
    println!("{}", summary_line(s));
    if !s.reasons.is_empty() {
        println!("  rejected, by reason:");
        let mut reasons: Vec<_> = s.reasons.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (reason, n) in reasons {
            println!("    {n:>6}  {reason}");
            if let Some(e) = s.examples.get(reason) {
                let e: String = e.chars().take(200).collect();
                println!("            e.g. {e}");
            }
        }
    }
    for bad in &s.bad_inputs {
        println!("  refused input: {bad}");
    }
    if s.held > 0 {
        println!(
            "  {} change(s) held behind open exceptions for their key",
            s.held
        );
    }
    if s.delivery_exceptions > 0 {
        println!(
            "  {} record(s) refused by the target (see `qiao exceptions list`)",
            s.delivery_exceptions
        );
    }
    if let Some(w) = &s.waiting {
        println!("  waiting: {w}");
    }
}

/// `qiao status`.
pub fn print_status(
    config: &Config,
    runs: &[RunRecord],
    pending: &[(String, u64)],
    counts: &[(String, String, u64)],
) {
    println!(
        "{:<28} {:<9} {:>9} {:>9} {:>8} {:>8} {:>8}  last run",
        "flow", "status", "read", "delivered", "rejected", "pending", "open exc"
    );
    for flow in config.flows.keys() {
        let run = runs.iter().find(|r| &r.flow == flow);
        let pend = pending
            .iter()
            .find(|p| &p.0 == flow)
            .map(|p| p.1)
            .unwrap_or(0);
        let open: u64 = counts.iter().filter(|c| &c.0 == flow).map(|c| c.2).sum();
        match run {
            Some(r) => println!(
                "{:<28} {:<9} {:>9} {:>9} {:>8} {:>8} {:>8}  {}",
                flow,
                r.status,
                r.read,
                r.delivered,
                r.rejected,
                pend,
                open,
                r.finished_at
                    .or(r.started_at)
                    .map(|t| t
                        .with_timezone(&chrono::Local)
                        .format("%Y-%m-%d %H:%M:%S")
                        .to_string())
                    .unwrap_or_default()
            ),
            None => println!(
                "{flow:<28} {:<9} {:>9} {:>9} {:>8} {pend:>8} {open:>8}  never",
                "-", "-", "-", "-"
            ),
        }
    }
    if !counts.is_empty() {
        println!("\nopen exceptions by owner:");
        for (flow, owner, n) in counts {
            println!("  {flow:<28} {owner:<10} {n}");
        }
    }
}

/// `qiao exceptions list`.
pub fn print_exceptions(rows: &[ExceptionRow]) {
    if rows.is_empty() {
        println!("no exceptions match");
        return;
    }
    println!(
        "{:>6}  {:<10} {:<13} {:<8} {:<24} message",
        "id", "state", "kind", "owner", "flow"
    );
    for r in rows {
        let msg: String = r.message.chars().take(140).collect();
        println!(
            "{:>6}  {:<10} {:<13} {:<8} {:<24} {msg}",
            r.id,
            format!("{:?}", r.state).to_lowercase(),
            format!("{:?}", r.kind).to_lowercase(),
            r.owner,
            r.flow
        );
    }
}

/// `qiao exceptions show`.
pub fn print_exception(
    config: &Config,
    row: &ExceptionRow,
    changes: &[Change],
    history: &[HistoryEntry],
) {
    let hide = sensitive_names(config);
    println!(
        "exception {} — {:?}, {:?}, owner {}, flow {}",
        row.id, row.kind, row.state, row.owner, row.flow
    );
    if let Some(k) = &row.key {
        println!("key:     {k}");
    }
    println!("message: {}", row.message);
    if let Some(v) = row.details.get("violations").and_then(|v| v.as_array()) {
        println!("violations:");
        for v in v {
            let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
            let m = v.get("message").cloned().unwrap_or_default();
            let t = |k: &str| m.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
            println!(
                "  {} [{}] field {} owner {}: {} / {}",
                s("code"),
                s("severity"),
                s("field"),
                s("owner"),
                t("zh"),
                t("en")
            );
        }
    }
    for (i, c) in changes.iter().enumerate() {
        let label = if i == 0 { "record" } else { "held" };
        println!("{label} ({:?}, key {}):", c.op, c.key);
        for (name, value) in &c.record.fields {
            println!("  {name:<24} {}", shown(name, value, &hide));
        }
    }
    println!("history:");
    for h in history {
        println!(
            "  {}  {:<8} {:<10} {}",
            h.at.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S"),
            h.actor,
            h.action,
            h.note
        );
    }
}

/// Canonical fields marked sensitive and the system fields they come from.
pub fn sensitive_names(config: &Config) -> HashSet<String> {
    let mut out = HashSet::new();
    for ent in config.entities.values() {
        for (name, def) in &ent.fields {
            if def.sensitive {
                out.insert(name.clone());
            }
        }
    }
    for m in config.mappings.values() {
        let Some(ent) = config.entities.get(&m.entity.value) else {
            continue;
        };
        for (canon, fm) in &m.fields {
            if ent.fields.get(&canon.value).is_some_and(|f| f.sensitive)
                && let Some(from) = &fm.from
            {
                out.extend(from.names().into_iter().map(str::to_string));
            }
        }
    }
    out
}

fn shown(name: &str, value: &Value, hide: &HashSet<String>) -> String {
    if value.is_blank() {
        "(empty)".to_string()
    } else if hide.contains(name) {
        qiao_core::mask(&value.to_string())
    } else {
        value.to_string()
    }
}

/// `qiao map FLOW --sample rec.json`.
pub fn map_sample(
    loaded: &qiao_core::load::LoadedConfig,
    flow: &str,
    sample: &Path,
) -> Result<ExitCode, String> {
    let config = &loaded.config;
    let def = config
        .flows
        .get(flow)
        .ok_or_else(|| format!("no flow `{flow}` in {}", loaded.path.display()))?;
    let text = std::fs::read_to_string(sample).map_err(|e| format!("{}: {e}", sample.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}:{}:{}: not valid JSON: {e}",
            sample.display(),
            e.line(),
            e.column()
        )
    })?;
    let records: Vec<Record> = match &json {
        serde_json::Value::Array(items) => items.iter().filter_map(Record::from_json).collect(),
        other => Record::from_json(other).into_iter().collect(),
    };
    if records.is_empty() {
        return Err(format!(
            "{}: expected a JSON object (one record) or an array of objects",
            sample.display()
        ));
    }
    let source = Mapper::new(config, &def.from.value)?.traced();
    let target = Mapper::new(config, &def.to.value)?.traced();
    let entity = &config.mappings[&def.from.value].entity.value;
    let sets: Vec<String> = def.rules.iter().map(|r| r.value.clone()).collect();
    let rules = RuleEngine::new(config, entity, &sets)?;
    let hide = sensitive_names(config);
    let mut failed = false;
    for (i, rec) in records.iter().enumerate() {
        println!("── record {} ──", i + 1);
        let canonical = match source.inbound(rec, &NoLookup) {
            Ok(m) => {
                println!("canonical {entity} (mapping {}):", def.from.value);
                print_mapped(&m, &hide);
                m.record
            }
            Err(e) => {
                failed = true;
                println!("mapping {} failed: {e}", def.from.value);
                continue;
            }
        };
        let violations = rules.validate(&canonical);
        for v in &violations {
            println!(
                "  rule {} [{:?}] owner {}: {} / {}",
                v.code, v.severity, v.owner, v.message.zh, v.message.en
            );
        }
        if qiao_core::rules::has_errors(&violations) {
            failed = true;
            println!("  → rejected by rules; it would become an exception");
            continue;
        }
        match target.outbound(&canonical, &NoLookup) {
            Ok(m) => {
                println!("target shape (mapping {}):", def.to.value);
                print_mapped(&m, &hide);
            }
            Err(e) => {
                failed = true;
                println!("mapping {} failed: {e}", def.to.value);
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_mapped(m: &qiao_core::mapping::Mapped, hide: &HashSet<String>) {
    for (name, value) in &m.record.fields {
        let from = m
            .provenance
            .iter()
            .find(|(f, _)| f == name)
            .map(|(_, p)| p.as_str())
            .unwrap_or("");
        println!("  {name:<22} = {:<30} ← {from}", shown(name, value, hide));
    }
    for w in &m.warnings {
        println!("  warning: {w}");
    }
}
