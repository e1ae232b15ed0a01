//! Converters, value maps, defaults and rules that do not fit the dictionary types.

use qiao_core::load::{Diagnostic, Level, parse_str};

const HEAD: &str = r#"systems:
  crm: { kind: sqlite, url: "sqlite://crm.db" }
entities:
  e:
    key: [id]
    fields:
      id: { type: integer }
      name: { type: text(10) }
      amount: { type: "decimal(18,2)" }
      day: { type: date }
      at: { type: datetime }
      kind: { type: "enum[个人,企业]" }
      ok: { type: bool }
"#;

fn diags(tail: &str) -> Vec<Diagnostic> {
    let text = format!("{HEAD}{tail}");
    let (config, d) = parse_str(&text, "t.yaml");
    assert!(config.is_some(), "{d}");
    d.0
}

fn mapping(fields: &str) -> Vec<Diagnostic> {
    diags(&format!(
        "mappings:\n  m:\n    system: crm\n    entity: e\n    object: t\n    fields:\n      id: {{ from: id }}\n{fields}"
    ))
}

fn one<'a>(ds: &'a [Diagnostic], msg: &str) -> &'a Diagnostic {
    let hits: Vec<_> = ds.iter().filter(|d| d.message.contains(msg)).collect();
    assert_eq!(hits.len(), 1, "{msg:?} in {ds:#?}");
    hits[0]
}

// HEAD has 13 lines; the mapping header 7 more: the first field line below is line 21.

#[test]
fn converters_must_fit_the_field_type() {
    let ds = mapping(
        "      name: { from: n, convert: [{ scale: 2 }] }\n      day: { from: d, convert: [{ unit: 0.01 }] }\n      amount: { from: a, convert: [{ date: \"%Y%m%d\" }] }\n      at: { from: t, convert: [{ date: \"%Y%m%d\" }] }\n      ok: { from: o, convert: [text] }\n",
    );
    let d = one(
        &ds,
        "converter `scale` makes a decimal, but field `name` of mapping `m` is `text(10)`",
    );
    assert_eq!((d.line, d.column, d.severity), (21, 34, Level::Error));
    assert!(d.message.starts_with("type mismatch"));
    assert_eq!(
        one(&ds, "converter `unit` makes a decimal, but field `day`").line,
        22
    );
    assert_eq!(
        one(&ds, "converter `date` makes a date, but field `amount`").line,
        23
    );
    assert_eq!(
        one(&ds, "converter `date` makes a date, but field `at`").line,
        24
    );
    assert_eq!(
        one(&ds, "converter `text` makes text, but field `ok`").line,
        25
    );
}

#[test]
fn converter_order_and_arguments() {
    let ds = mapping(
        "      amount: { from: a, convert: [decimal, trim, { scale: 4 }, { unit: 0 }] }\n      at: { from: t, convert: [{ datetime: { format: \"%Y-%m-%d %Q\", tz: Asia/Shanghia } }] }\n      name: { from: n, convert: [{ max_chars: { max: 20 } }] }\n",
    );
    let d = one(
        &ds,
        "converter `trim` in field `amount` of mapping `m` works on text, but `decimal` before it already made a decimal",
    );
    assert_eq!(d.hint.as_deref(), Some("move `trim` before `decimal`"));
    assert!(one(&ds, "`scale: 4`").message.contains("decimal(18,2)"));
    assert!(
        one(&ds, "`unit: 0`")
            .hint
            .as_deref()
            .unwrap()
            .contains("0.01")
    );
    assert!(
        one(&ds, "not a valid strftime layout")
            .message
            .contains("%Q")
    );
    let d = one(&ds, "time zone `Asia/Shanghia`");
    assert_eq!(d.hint.as_deref(), Some("did you mean `Asia/Shanghai`?"));
    let d = one(&ds, "`max_chars: 20`");
    assert_eq!(d.severity, Level::Warning);
    assert_eq!(
        ds.iter().filter(|d| d.severity == Level::Error).count(),
        5,
        "{ds:#?}"
    );
}

#[test]
fn values_maps_use_canonical_values() {
    let ds = mapping(
        "      kind: { from: k, values: { 个人: P, 公司: C } }\n      ok: { from: o, values: { \"true\": Y, \"no\": N } }\n      name: { from: n, values: { a: X, b: X } }\n",
    );
    let d = one(
        &ds,
        "canonical value `公司` is wrong: it is not one of the values of `enum[个人,企业]`",
    );
    assert_eq!((d.line, d.column), (21, 41));
    assert!(d.hint.as_deref().unwrap().contains("`个人`, `企业`"));
    // The caret sits under 公司 although 个人 before it is two columns wide per character.
    let text = format!(
        "{HEAD}mappings:\n  m:\n    system: crm\n    entity: e\n    object: t\n    fields:\n      id: {{ from: id }}\n      kind: {{ from: k, values: {{ 个人: P, 公司: C }} }}\n"
    );
    let rendered = qiao_core::load::load_str(&text, "t.yaml")
        .unwrap_err()
        .render(&text);
    let lines: Vec<&str> = rendered.lines().collect();
    let src = lines.iter().position(|l| l.starts_with("21 |")).unwrap();
    let caret = lines[src + 1];
    assert_eq!(
        caret.find('^'),
        Some("21 |       kind: { from: k, values: { ".len() + "个人: P, ".len() - 2)
    );
    assert_eq!(one(&ds, "canonical value `no`").line, 22);
    assert!(
        one(&ds, "`a` and `b` both map to system value `X`")
            .message
            .contains("ambiguous")
    );
}

#[test]
fn defaults_must_fit() {
    let ds = mapping(
        "      amount: { from: a, default: \"1.234\" }\n      day: { from: d, default: \"2024-13-01\" }\n      kind: { from: k, default: 企业 }\n      ok: { from: o, default: maybe }\n",
    );
    assert_eq!(one(&ds, "`default` of field `amount`").line, 21);
    assert_eq!(one(&ds, "`default` of field `day`").line, 22);
    assert_eq!(one(&ds, "`default` of field `ok`").line, 24);
    assert_eq!(ds.len(), 3, "{ds:#?}");
}

#[test]
fn rules_must_fit_the_field_type() {
    let ds = diags(
        r#"rules:
  r:
    entity: e
    rules:
      - { code: R1, field: name, check: { range: { min: 0 } } }
      - { code: R2, field: amount, check: { pattern: "^1" } }
      - { code: R3, field: id, check: { enum: [a, b] } }
      - { code: R4, field: kind, check: { enum: [个人, 公司] } }
      - { code: R5, field: amount, check: { range: { min: 10, max: 1 } } }
      - { code: R6, field: nmae, check: required }
      - { code: R7, check: { max_chars: 3 } }
      - { code: R8, field: amount, check: { range: { min: 0, max: 100 } } }
      - { code: R9, field: kind, check: { enum: [企业] } }
      - { code: R10, check: { expr: "rec.amount >" } }
"#,
    );
    assert_eq!(
        one(
            &ds,
            "rule `R1` of rule set `r` makes a `range` check on field `name`, which is `text(10)`"
        )
        .line,
        18
    );
    assert_eq!(
        one(&ds, "rule `R2` of rule set `r` makes a `pattern` check").line,
        19
    );
    assert!(
        one(
            &ds,
            "rule `R3` of rule set `r` makes a `enum` check on field `id`"
        )
        .message
        .contains("`a`, `b`")
    );
    let d = one(&ds, "rule `R4`");
    assert!(d.message.contains("`公司` cannot be a value of it"), "{d}");
    assert_eq!(one(&ds, "range min 10 is above max 1").line, 22);
    assert_eq!(
        one(&ds, "checks field `nmae`").hint.as_deref(),
        Some("did you mean `name`?")
    );
    assert!(
        one(
            &ds,
            "rule `R7` of rule set `r` makes a `max_chars` check but names no `field`"
        )
        .line
            == 24
    );
    let d = one(&ds, "the `expr` check of rule `R10`");
    assert_eq!(d.line, 27);
    assert_eq!(ds.len(), 8, "{ds:#?}");
}
