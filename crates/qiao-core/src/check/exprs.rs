//! Expressions in the config must compile, and the canonical fields they read (`rec.x`)
//! must exist. Positions inside the expression are mapped onto the YAML file.

use super::{Cx, name_hint};
use crate::expr::Expr;

/// Which records an expression may read, and so how it is compiled.
#[derive(Clone, Copy)]
pub(super) enum Scope {
    /// Mapping expressions: `src` (system record) and `rec` (canonical record).
    Mapping,
    /// Filters and rules: only the canonical record `rec`.
    Canonical,
}

impl Scope {
    fn vars(self) -> &'static [&'static str] {
        match self {
            Scope::Mapping => crate::expr::DEFAULT_VARS,
            Scope::Canonical => &["rec"],
        }
    }
    fn hint(self) -> &'static str {
        match self {
            Scope::Mapping => {
                "read the system record as `src.column` and the canonical one as `rec.field`; \
                 text goes in double quotes; numbers with a point are exact decimals"
            }
            Scope::Canonical => {
                "read the canonical record as `rec.field`; text goes in double quotes; compare \
                 with ==, !=, <, >, combine with && and ||"
            }
        }
    }
}

/// Compiles `text` (whose YAML scalar starts at `base`) and checks its `rec.field` references against `entity`. `what` names
/// the expression for the message, e.g. "the filter of flow `crm_to_erp`".
pub(super) fn check_expr(
    cx: &mut Cx,
    text: &str,
    base: (u32, u32),
    scope: Scope,
    entity: Option<&str>,
    what: &str,
) {
    let compiled = Expr::compile_with_vars(text, scope.vars());
    let expr = match compiled {
        Ok(e) => e,
        Err(e) => {
            let p = map_pos(cx, base, e.line, e.column);
            cx.error(
                p,
                format!("{what} does not compile: {}", e.message),
                scope.hint(),
            );
            return;
        }
    };
    let Some(entity) = entity else { return };
    let Some(ent) = cx.cfg.entities.get(entity) else {
        return;
    };
    for field in expr.field_refs("rec") {
        if ent.fields.contains_key(&field) {
            continue;
        }
        let (l, c) = find_ref(text, &field);
        let p = map_pos(cx, base, l, c);
        cx.error(
            p,
            format!("{what} reads `rec.{field}`, but entity `{entity}` has no field `{field}`"),
            name_hint(&field, ent.fields.keys().map(String::as_str), "field"),
        );
    }
}

/// 1-based line and column of the first `rec.<field>` in `text` (1, 1 if not found).
fn find_ref(text: &str, field: &str) -> (usize, usize) {
    let needle = format!("rec.{field}");
    let mut from = 0;
    while let Some(i) = text[from..].find(&needle) {
        let start = from + i;
        let end = start + needle.len();
        let before_ok = text[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let after_ok = text[end..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        if before_ok && after_ok {
            let line = text[..start].matches('\n').count() + 1;
            let line_start = text[..start].rfind('\n').map_or(0, |p| p + 1);
            let col = text[line_start..start].chars().count() + 1;
            return (line, col);
        }
        from = end;
    }
    (1, 1)
}

/// Maps line:column inside an expression onto the YAML file, given where the scalar
/// holding it starts and how it is written (plain, quoted, or a `|`/`>` block).
fn map_pos(cx: &Cx, (bl, bc): (u32, u32), line: usize, column: usize) -> (u32, u32) {
    if line == 0 || bl == 0 {
        return (bl, bc);
    }
    let lines: Vec<&str> = cx.text.map(|t| t.lines().collect()).unwrap_or_default();
    let first = lines
        .get(bl as usize - 1)
        .and_then(|l| l.chars().nth(bc as usize - 1));
    let indent = |yaml_line: usize| -> usize {
        lines
            .get(yaml_line.wrapping_sub(1))
            .map_or(0, |l| l.chars().take_while(|c| *c == ' ').count())
    };
    let to_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let (yaml_line, col) = match first {
        Some('|') | Some('>') => {
            let yl = bl as usize + line;
            (yl, indent(yl) + column)
        }
        Some(q) if line == 1 => {
            let quoted = usize::from(q == '"' || q == '\'');
            (bl as usize, bc as usize + quoted + column.saturating_sub(1))
        }
        None if line == 1 => (bl as usize, bc as usize + column.saturating_sub(1)),
        _ => {
            let yl = bl as usize + line - 1;
            (yl, indent(yl) + column)
        }
    };
    (to_u32(yaml_line), to_u32(col))
}

#[cfg(test)]
mod tests {
    use super::find_ref;

    #[test]
    fn finds_whole_references_only() {
        assert_eq!(find_ref("rec.ab + rec.a", "a"), (1, 10));
        assert_eq!(find_ref("1 +\n  rec.x", "x"), (2, 3));
        assert_eq!(find_ref("nothing", "x"), (1, 1));
    }
}
