//! Checks of flows, and of the loops that flows make between systems.

use super::exprs::{Scope, check_expr};
use super::{Cx, at, name_hint};
use crate::config::{FlowDef, Trigger};
use crate::duration::{parse_cron, parse_duration};
use std::collections::{BTreeSet, HashMap, HashSet};

pub(super) fn check_flows(cx: &mut Cx) {
    let cfg = cx.cfg;
    for (fname, flow) in &cfg.flows {
        let from = cfg.mappings.get(&flow.from.value);
        let to = cfg.mappings.get(&flow.to.value);
        for (end, m) in [(&flow.from, from), (&flow.to, to)] {
            if m.is_none() {
                cx.error(
                    at(end),
                    format!(
                        "flow `{fname}` uses mapping `{}`, which is not defined",
                        end.value
                    ),
                    name_hint(
                        &end.value,
                        cfg.mappings.keys().map(String::as_str),
                        "mapping",
                    ),
                );
            }
        }
        let entity = from.map(|m| m.entity.value.as_str());
        if let (Some(f), Some(t)) = (from, to)
            && f.entity.value != t.entity.value
        {
            cx.error(
                at(&flow.to),
                format!(
                    "flow `{fname}` goes from mapping `{}` (entity `{}`) to mapping `{}` (entity `{}`)",
                    flow.from.value, f.entity.value, flow.to.value, t.entity.value
                ),
                "both ends of a flow must map the same entity; pick the mapping of the same entity on the target system",
            );
        }
        check_trigger(cx, fname, flow);
        if let Some(filter) = &flow.filter {
            check_expr(
                cx,
                &filter.value,
                at(filter),
                Scope::Canonical,
                entity,
                &format!("the filter of flow `{fname}`"),
            );
        }
        let packs = crate::rules::registered_packs();
        for rs in &flow.rules {
            // A name that is no config rule set may be a rule pack registered in code.
            if !cfg.rules.contains_key(&rs.value) && packs.get(&rs.value).is_some() {
                continue;
            }
            match cfg.rules.get(&rs.value) {
                None => cx.error(
                    at(rs),
                    format!(
                        "flow `{fname}` applies rule set `{}`, which is not defined",
                        rs.value
                    ),
                    name_hint(
                        &rs.value,
                        cfg.rules
                            .keys()
                            .map(String::as_str)
                            .chain(packs.names().iter().map(String::as_str)),
                        "rule set or pack",
                    ),
                ),
                Some(set) => {
                    if let Some(e) = entity
                        && set.entity.value != e
                    {
                        cx.error(
                            at(rs),
                            format!(
                                "flow `{fname}` carries entity `{e}` but rule set `{}` checks entity `{}`",
                                rs.value, set.entity.value
                            ),
                            format!("use a rule set written for `{e}`"),
                        );
                    }
                }
            }
        }
        if let Some(retry) = &flow.retry {
            for (i, r) in retry.iter().enumerate() {
                if let Err(e) = parse_duration(r) {
                    let p = cx.locate(&["flows", fname, "retry", &i.to_string()], false);
                    cx.error(
                        p,
                        format!("retry schedule of flow `{fname}`: {e}"),
                        "e.g. `retry: [1m, 5m, 30m]`",
                    );
                }
            }
        }
        if flow.batch_size == Some(0) {
            let p = cx.locate(&["flows", fname, "batch_size"], false);
            cx.error(
                p,
                format!("`batch_size` of flow `{fname}` is 0"),
                "use a positive number such as 2000, or leave it out for the default",
            );
        }
    }
}

fn check_trigger(cx: &mut Cx, fname: &str, flow: &FlowDef) {
    let (key, res) = match &flow.trigger {
        Trigger::Manual => return,
        Trigger::Interval(s) => (
            "interval",
            match parse_duration(s) {
                Ok(d) if d.is_zero() => Err(format!("interval `{s}` is zero")),
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            },
        ),
        Trigger::Cron(s) => ("cron", parse_cron(s).map(|_| ())),
    };
    if let Err(e) = res {
        let p = cx.locate(&["flows", fname, "trigger", key], false);
        let p = if p.0 == 0 { at(&flow.from) } else { p };
        let hint = if key == "cron" {
            "cron fields are `sec min hour day month weekday` (sec optional), e.g. `0 */5 * * * *` = every 5 minutes"
        } else {
            "e.g. `trigger: {interval: 30s}`"
        };
        cx.error(p, format!("trigger of flow `{fname}`: {e}"), hint);
    }
}

/// The systems of one cycle component and the flows on it.
type Group<'a> = (BTreeSet<&'a str>, Vec<(&'a str, &'a FlowDef)>);

/// Two-way sync without echo suppression loops forever: qiao writes a change into B, B's
/// flow reads it back and writes it into A, and so on. Flows of one entity form a graph
/// system → system; every flow on a cycle must suppress echoes.
pub(super) fn check_cycles(cx: &mut Cx) {
    let cfg = cx.cfg;
    // entity → list of (from system, to system, flow name, flow)
    let mut edges: HashMap<&str, Vec<(&str, &str, &str, &FlowDef)>> = HashMap::new();
    for (fname, flow) in &cfg.flows {
        let (Some(f), Some(t)) = (
            cfg.mappings.get(&flow.from.value),
            cfg.mappings.get(&flow.to.value),
        ) else {
            continue;
        };
        if f.entity.value != t.entity.value {
            continue;
        }
        edges.entry(f.entity.value.as_str()).or_default().push((
            f.system.value.as_str(),
            t.system.value.as_str(),
            fname.as_str(),
            flow,
        ));
    }
    let mut entities: Vec<&&str> = edges.keys().collect();
    entities.sort();
    for entity in entities {
        let es = &edges[*entity];
        let reach = |start: &str| -> HashSet<&str> {
            let mut seen = HashSet::new();
            let mut todo = vec![start];
            while let Some(n) = todo.pop() {
                for (a, b, _, _) in es {
                    if *a == n && seen.insert(*b) {
                        todo.push(b);
                    }
                }
            }
            seen
        };
        // Group the flows on cycles by the set of systems of their cycle component.
        let mut groups: Vec<Group> = Vec::new();
        for (a, b, name, flow) in es {
            let from_b = reach(b);
            if !from_b.contains(a) {
                continue; // a → b is not on a cycle
            }
            let from_a = reach(a);
            let comp: BTreeSet<&str> = from_a
                .intersection(&from_b)
                .copied()
                .chain([*a, *b])
                .collect();
            match groups.iter_mut().find(|(c, _)| *c == comp) {
                Some((_, v)) => v.push((name, flow)),
                None => groups.push((comp, vec![(name, flow)])),
            }
        }
        for (systems, flows) in groups {
            let lacking: Vec<&(&str, &FlowDef)> =
                flows.iter().filter(|(_, f)| !f.echo_suppression).collect();
            let Some((_, first)) = lacking.first() else {
                continue;
            };
            let names = |v: &[&(&str, &FlowDef)]| {
                v.iter()
                    .map(|(n, _)| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let all: Vec<&(&str, &FlowDef)> = flows.iter().collect();
            cx.error(
                at(&first.from),
                format!(
                    "flows {} send entity `{entity}` around in a loop between systems {} without echo suppression",
                    names(&all),
                    systems.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(" and "),
                ),
                format!(
                    "set `echo_suppression: true` on {} so changes qiao wrote are not sent back, or remove one direction",
                    names(&lacking)
                ),
            );
        }
    }
}
