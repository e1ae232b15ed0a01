//! One config with many semantic mistakes: every one is reported in a single run, at its
//! own line and column, with a hint.

use qiao_core::load::{Diagnostic, Level, load_str, parse_str};

const BAD: &str = r#"systems:
  crm: { kind: sqlite, url: "sqlite://crm.db" }
  erp: { kind: postgress, url: "postgres://u:pw@h/db" }
  ftp: { kind: files, format: xlsx, encoding: big5 }
entities:
  customer:
    key: [code, cod]
    fields:
      code: { type: text(32), required: true }
      cust_name: { type: text(100) }
      amount: { type: "decimal(18,2)" }
      kind: { type: "enum[个人,企业]" }
      when: { type: dat }
mappings:
  crm_customer:
    system: crm
    entity: customer
    object: customers
    fields:
      custname: { from: name }
      amount: { from: amt, convert: [{date: "%Y"}] }
      kind: { from: k, values: { 个体: P } }
  erp_customer:
    system: erpp
    entity: customer
    object: c
    fields:
      code: { from: c, expr: "src.x +" }
rules:
  r:
    entity: customer
    rules:
      - { code: A1, field: amount, check: { pattern: "[" } }
      - { code: A1, field: cust_name, check: { range: { min: 1 } } }
      - { code: A2, check: { expr: "rec.amout > 0" } }
flows:
  a: { from: crm_customer, to: erp_customer, trigger: { cron: "99 * * *" } }
  b: { from: erp_customer, to: crm_customer, batch_size: 0, retry: [5x] }
"#;

/// Finds the one diagnostic at `line` whose message contains `msg`.
fn find<'a>(ds: &'a [Diagnostic], line: u32, msg: &str) -> &'a Diagnostic {
    let hits: Vec<&Diagnostic> = ds
        .iter()
        .filter(|d| d.line == line && d.message.contains(msg))
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "expected one diagnostic at line {line} containing {msg:?}, got:\n{}",
        ds.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    hits[0]
}

fn hint(d: &Diagnostic) -> &str {
    d.hint.as_deref().unwrap_or_default()
}

#[test]
fn every_mistake_is_reported_with_position_and_hint() {
    let (config, diags) = parse_str(BAD, "crm.yaml");
    assert!(
        config.is_some(),
        "the file is valid YAML and schema, only its meaning is wrong"
    );
    let ds = &diags.0;
    let expect = [
        (
            3,
            16,
            "unknown kind `postgress`",
            "did you mean `postgres`?",
        ),
        (
            3,
            32,
            "contains a password in clear text",
            "`postgres://u:${ERP_DB_PASSWORD}@h/db`",
        ),
        (4, 16, "`files` system `ftp` has no `path`", "path:"),
        (4, 31, "unknown file format `xlsx`", "`csv`, `jsonl`, `xml`"),
        (4, 47, "unknown encoding `big5`", "gb18030"),
        (
            7,
            17,
            "key field `cod` of entity `customer` is not one of its fields",
            "did you mean `code`?",
        ),
        (13, 21, "unknown type `dat`", "did you mean `date`?"),
        (
            17,
            13,
            "does not map key field `code`",
            "code: {from: <column>}",
        ),
        (
            20,
            7,
            "unknown field `custname` in mapping `crm_customer`",
            "did you mean `cust_name`?",
        ),
        (
            21,
            38,
            "type mismatch: converter `date` makes a date",
            "change the field's type",
        ),
        (22, 34, "canonical value `个体` is wrong", "`个人`, `企业`"),
        (
            24,
            13,
            "belongs to system `erpp`, which is not defined",
            "did you mean `erp`?",
        ),
        (28, 38, "does not compile", "src.column"), // the end of `src.x +`
        (33, 43, "is not a valid regular expression", "escape"),
        (
            33,
            43,
            "makes a `pattern` check on field `amount`",
            "`range` for numbers",
        ),
        (34, 17, "rule code `A1` is used twice", "its own code"),
        (
            34,
            46,
            "makes a `range` check on field `cust_name`",
            "integer and decimal",
        ),
        (35, 37, "reads `rec.amout`", "did you mean `amount`?"),
        (
            37,
            14,
            "flows `a`, `b` send entity `customer` around in a loop",
            "echo_suppression: true",
        ),
        (
            37,
            63,
            "cron schedule `99 * * *` is not valid",
            "0 */5 * * * *",
        ),
        (38, 58, "`batch_size` of flow `b` is 0", "positive"),
        (38, 69, "duration `5x` has unknown unit `x`", "retry: ["),
    ];
    for (line, col, msg, h) in expect {
        let d = find(ds, line, msg);
        assert_eq!(d.column, col, "column of {d}");
        assert_eq!(d.severity, Level::Error, "{d}");
        assert!(hint(d).contains(h), "hint of {d} should contain {h:?}");
        assert_eq!(d.file, "crm.yaml");
    }
    assert_eq!(
        diags.error_count(),
        expect.len(),
        "unexpected extra errors:\n{diags}"
    );
    // The secret itself never appears in any message.
    assert!(!diags.to_string().contains(":pw@"));
    // Sorted by position.
    assert!(
        ds.windows(2)
            .all(|w| (w[0].line, w[0].column) <= (w[1].line, w[1].column))
    );
}

#[test]
fn load_str_fails_with_the_same_diagnostics() {
    let err = load_str(BAD, "crm.yaml").unwrap_err();
    assert_eq!(err, parse_str(BAD, "crm.yaml").1);
    assert!(err.summary().starts_with("22 errors"), "{}", err.summary());
}

#[test]
fn display_is_rustc_like() {
    let err = load_str(BAD, "crm.yaml").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(
            "crm.yaml:20:7: error: unknown field `custname` in mapping `crm_customer`: entity `customer` has no such field\n    hint: did you mean `cust_name`?"
        ),
        "{text}"
    );
    let rendered = err.render(BAD);
    assert!(
        rendered.contains("  --> crm.yaml:20:7\n   |\n20 |       custname: { from: name }\n   |       ^\n   = hint: did you mean `cust_name`?"),
        "{rendered}"
    );
}

#[test]
fn check_without_source_still_positions_spanned_names() {
    // The typed config alone (no text) still knows where its names are.
    let (config, _) = parse_str(BAD, "crm.yaml");
    let ds = qiao_core::check::check(&config.unwrap(), "crm.yaml");
    let d = find(&ds, 20, "unknown field `custname`");
    assert_eq!(d.column, 7);
}
