//! `qiao check`: the semantic checks of a parsed config. Every finding carries the
//! position of the offending name and, where one exists, the fix.
//!
//! Names that the schema marks `Spanned` are located exactly from the parsed config.
//! Other values (object names, retry durations, batch sizes, `values` maps…) are located
//! through the YAML position tree when the source text is given ([`check_with_source`],
//! which [`crate::load`] uses); without it they are reported at line 0.

pub mod keys;

mod exprs;
mod flows;
mod mappings;
mod rulesets;
mod systems;

use crate::config::{Config, Spanned};
use crate::load::{Diagnostic, pos};
use crate::types::FieldType;
use keys::{Node, NodeKind};
use std::collections::HashMap;

/// Checks `config` (already parsed) and returns every error and warning found. `file` is
/// the file name used in the diagnostics.
pub fn check(config: &Config, file: &str) -> Vec<Diagnostic> {
    check_with_source(config, file, None)
}

/// Like [`check`], with the config's source text so that values without their own
/// position (and expressions inside quoted or block scalars) are located exactly.
pub fn check_with_source(config: &Config, file: &str, text: Option<&str>) -> Vec<Diagnostic> {
    let tree = text.and_then(|t| {
        serde_saphyr::from_str_with_options::<Node>(t, crate::load::yaml_options()).ok()
    });
    check_with_tree(config, file, text, tree)
}

/// [`check_with_source`] for a caller that already has the position tree of `text`.
pub(crate) fn check_with_tree(
    config: &Config,
    file: &str,
    text: Option<&str>,
    tree: Option<Node>,
) -> Vec<Diagnostic> {
    let mut cx = Cx {
        cfg: config,
        file,
        text,
        tree,
        out: Vec::new(),
        types: HashMap::new(),
    };
    systems::check_systems(&mut cx);
    systems::check_entities(&mut cx);
    mappings::check_mappings(&mut cx);
    rulesets::check_rule_sets(&mut cx);
    flows::check_flows(&mut cx);
    flows::check_cycles(&mut cx);
    let mut out = cx.out;
    out.sort_by_key(|d| (d.line, d.column));
    out
}

/// The closest of `candidates` to a misspelt `name`, if one is close enough to be what
/// was meant.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = name.to_lowercase();
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| {
            let cl = c.to_lowercase();
            let score = strsim::jaro_winkler(&lower, &cl)
                .max(strsim::normalized_damerau_levenshtein(&lower, &cl));
            // Same letters without separators (`custname` / `cust_name`) is a sure match.
            let squash = |s: &str| s.replace(['_', '-', ' '], "");
            let score = if squash(&lower) == squash(&cl) {
                1.0
            } else {
                score
            };
            (score, c)
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// The hint for a name that is not one of `candidates` (what they are: `what`).
fn name_hint<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
    what: &str,
) -> String {
    match did_you_mean(name, candidates.clone()) {
        Some(m) => format!("did you mean `{m}`?"),
        None => {
            let all: Vec<String> = candidates.into_iter().map(|c| format!("`{c}`")).collect();
            if all.is_empty() {
                format!("no {what} is defined yet; add one first")
            } else if all.len() <= 12 {
                format!("the {what}s defined are: {}", all.join(", "))
            } else {
                format!("check the spelling against the {what}s defined")
            }
        }
    }
}

/// Everything the checks share.
struct Cx<'a> {
    cfg: &'a Config,
    file: &'a str,
    text: Option<&'a str>,
    tree: Option<Node>,
    out: Vec<Diagnostic>,
    /// Parsed types of entity fields, by (entity, field); fields whose type does not
    /// parse are absent (that is reported once, in the entity).
    types: HashMap<(String, String), FieldType>,
}

impl Cx<'_> {
    /// Position in the YAML tree of the value at `path` (map keys and list indexes), or
    /// of its key when `key` is true. A path that does not resolve gives the deepest
    /// position found, (0, 0) without a tree.
    fn locate(&self, path: &[&str], key: bool) -> (u32, u32) {
        let Some(mut node) = self.tree.as_ref() else {
            return (0, 0);
        };
        let mut key_pos = (0, 0);
        for step in path {
            let next = match &node.kind {
                NodeKind::Map(entries) => entries
                    .iter()
                    .find(|(k, _)| matches!(&k.kind, NodeKind::Scalar(s) if s == step))
                    .map(|(k, v)| {
                        key_pos = (k.line, k.column);
                        v
                    }),
                NodeKind::Seq(items) => step
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| items.get(i))
                    .inspect(|n| {
                        key_pos = (n.line, n.column);
                    }),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => return key_pos,
            }
        }
        if key {
            key_pos
        } else {
            (node.line, node.column)
        }
    }

    fn error(
        &mut self,
        (line, column): (u32, u32),
        msg: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.out
            .push(Diagnostic::error(self.file, line, column, msg).with_hint(hint));
    }

    fn warning(
        &mut self,
        (line, column): (u32, u32),
        msg: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.out
            .push(Diagnostic::warning(self.file, line, column, msg).with_hint(hint));
    }

    fn field_type(&self, entity: &str, field: &str) -> Option<&FieldType> {
        self.types.get(&(entity.to_string(), field.to_string()))
    }
}

/// Position of a spanned value.
fn at<T>(s: &Spanned<T>) -> (u32, u32) {
    pos(s.referenced)
}
