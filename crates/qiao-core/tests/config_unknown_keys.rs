//! Unknown keys and unknown kind names: all reported in one run, each with its place and
//! a did-you-mean hint.

use qiao_core::load::{Diagnostic, load_str};

const TYPOS: &str = r#"sytems:
  crm: { kind: sqlite, url: "sqlite://crm.db" }
entities:
  customer:
    key: [code]
    feilds: {}
    fields:
      code: { type: text, requried: true }
mappings:
  m:
    system: crm
    entity: customer
    object: t
    fields:
      code: { form: x, convert: [trimm, {max_chars: {max: 3, polcy: truncate}}, {datetime: {format: x, zone: y}}] }
rules:
  r:
    entity: customer
    rules:
      - { code: A, field: code, check: requird, severity: fatal, mesage: x }
      - { code: B, field: code, check: { rnge: { min: 1 } } }
flows:
  f: { from: m, to: m, tirgger: manual, deletes: keyscan, trigger: { intervall: 5s } }
"#;

fn all(text: &str) -> Vec<Diagnostic> {
    load_str(text, "typos.yaml").unwrap_err().0
}

#[test]
fn every_unknown_key_is_reported_at_once() {
    let ds = all(TYPOS);
    let expect: &[(u32, u32, &str, &str)] = &[
        (
            1,
            1,
            "unknown key `sytems` at the top level",
            "did you mean `systems`?",
        ),
        (
            6,
            5,
            "unknown key `feilds` in entity `customer`",
            "did you mean `fields`?",
        ),
        (
            8,
            27,
            "unknown key `requried` in field `code` of entity `customer`",
            "did you mean `required`?",
        ),
        (
            15,
            15,
            "unknown key `form` in field `code` of mapping `m`",
            "did you mean `from`?",
        ),
        (15, 34, "unknown converter `trimm`", "did you mean `trim`?"),
        (
            15,
            62,
            "unknown key `polcy` in `max_chars`",
            "did you mean `policy`?",
        ),
        (
            15,
            104,
            "unknown key `zone` in `datetime`",
            "allowed here: `format`, `tz`",
        ),
        (
            20,
            40,
            "unknown check `requird` in rule 1 of rule set `r`",
            "did you mean `required`?",
        ),
        (
            20,
            59,
            "unknown severity `fatal` in rule 1 of rule set `r`",
            "allowed here: `error`, `warning`",
        ),
        (
            20,
            66,
            "unknown key `mesage` in rule 1 of rule set `r`",
            "did you mean `message`?",
        ),
        (
            21,
            42,
            "unknown check `rnge` in rule 2 of rule set `r`",
            "did you mean `range`?",
        ),
        (
            23,
            24,
            "unknown key `tirgger` in flow `f`",
            "did you mean `trigger`?",
        ),
        (
            23,
            50,
            "unknown delete detection `keyscan` in flow `f`",
            "did you mean `key_scan`?",
        ),
        (
            23,
            70,
            "unknown trigger `intervall` in flow `f`",
            "did you mean `interval`?",
        ),
    ];
    let shown = ds
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(ds.len(), expect.len(), "{shown}");
    for ((line, col, msg, hint), d) in expect.iter().zip(&ds) {
        assert_eq!((d.line, d.column), (*line, *col), "{d}");
        assert!(d.message.contains(msg), "{d}\nexpected message {msg:?}");
        assert_eq!(d.hint.as_deref(), Some(*hint), "{d}");
    }
}

#[test]
fn a_far_off_name_lists_the_allowed_keys() {
    let ds = all("flows:\n  f: {from: a, to: b, zzz: 1}\n");
    assert_eq!(ds.len(), 1);
    let hint = ds[0].hint.as_deref().unwrap();
    assert!(
        hint.starts_with("allowed here: `from`, `to`, `trigger`"),
        "{hint}"
    );
    assert!(hint.contains("`echo_suppression`"), "{hint}");
}

#[test]
fn unknown_keys_in_nested_structs_are_found() {
    let text = r#"
mappings:
  m:
    system: s
    entity: e
    object: o
    fields:
      f: { from: a, part: { sep: "-", indx: 1 } }
rules:
  r:
    entity: e
    rules:
      - { code: A, field: f, check: required, message: { zh: 缺, eng: missing } }
"#;
    let ds = all(text);
    let found: Vec<(u32, &str)> = ds
        .iter()
        .filter(|d| d.message.starts_with("unknown key"))
        .map(|d| (d.line, d.hint.as_deref().unwrap()))
        .collect();
    assert_eq!(
        found,
        vec![(8, "did you mean `index`?"), (13, "did you mean `en`?")],
        "{ds:?}"
    );
}

#[test]
fn misspelt_converter_with_argument_is_found() {
    let text = "mappings:\n  m:\n    system: s\n    entity: e\n    object: o\n    fields:\n      f: { from: a, convert: [{scael: 2}, {unit: 0.01}] }\n";
    let ds = all(text);
    assert_eq!(ds[0].line, 7);
    assert!(
        ds[0].message.contains("unknown converter `scael`"),
        "{}",
        ds[0]
    );
    assert_eq!(ds[0].hint.as_deref(), Some("did you mean `scale`?"));
}
