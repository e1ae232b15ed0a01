//! Systems and the dictionary: kinds, URLs and secrets, file settings, entity keys and
//! field types.

use qiao_core::load::{Diagnostic, Level, parse_str};

fn diags(text: &str) -> Vec<Diagnostic> {
    let (config, d) = parse_str(text, "s.yaml");
    assert!(config.is_some(), "{d}");
    d.0
}

fn one<'a>(ds: &'a [Diagnostic], msg: &str) -> &'a Diagnostic {
    let hits: Vec<_> = ds.iter().filter(|d| d.message.contains(msg)).collect();
    assert_eq!(hits.len(), 1, "{msg:?} in {ds:#?}");
    hits[0]
}

#[test]
fn inline_secret_in_url_is_an_error_and_never_echoed() {
    let ds = diags(
        "systems:\n  erp:\n    kind: postgres\n    url: postgres://erp_user:Secr3t!@10.0.0.5:5432/erp\n",
    );
    let d = one(&ds, "contains a password in clear text");
    assert_eq!((d.line, d.column, d.severity), (4, 10, Level::Error));
    assert_eq!(
        d.hint.as_deref(),
        Some(
            "take the password from the environment: write `postgres://erp_user:${ERP_DB_PASSWORD}@10.0.0.5:5432/erp` and `export ERP_DB_PASSWORD=...` before starting qiao"
        )
    );
    assert!(!d.to_string().contains("Secr3t"));
}

#[test]
fn password_through_environment_is_fine() {
    let ds =
        diags("systems:\n  erp:\n    kind: postgres\n    url: postgres://erp_user:${PATH}@h/erp\n");
    assert!(ds.is_empty(), "{ds:#?}");
    // An unset variable is only a warning: `qiao check` may run on another machine.
    let ds = diags(
        "systems:\n  erp:\n    kind: mysql\n    url: mysql://u:${QIAO_TEST_SURELY_UNSET_VAR}@h/erp\n",
    );
    let d = one(&ds, "`QIAO_TEST_SURELY_UNSET_VAR`");
    assert_eq!(d.severity, Level::Warning);
    assert!(
        d.hint
            .as_deref()
            .unwrap()
            .contains("export QIAO_TEST_SURELY_UNSET_VAR=")
    );
}

#[test]
fn store_url_secret_is_an_error() {
    let ds = diags("store: postgres://qiao:hunter2@db/qiao\n");
    let d = one(&ds, "store URL");
    assert_eq!((d.line, d.column), (1, 8));
    assert!(!d.message.contains("hunter2"));
}

#[test]
fn unknown_kind_and_missing_url() {
    let ds = diags(
        "systems:\n  a: { kind: oracle }\n  b: { kind: sqlite }\n  c: { kind: mysql, url: \"postgres://h/db\" }\n",
    );
    let d = one(&ds, "unknown kind `oracle`");
    assert_eq!((d.line, d.column), (2, 14));
    assert!(
        d.hint
            .as_deref()
            .unwrap()
            .contains("`postgres`, `mysql`, `sqlite`, `files`")
    );
    let d = one(&ds, "`b` of kind `sqlite` has no `url`");
    assert_eq!(d.line, 3);
    assert!(d.hint.as_deref().unwrap().contains("sqlite://b.db"));
    let d = one(&ds, "does not start with `mysql://` or `mariadb://`");
    assert_eq!(d.line, 4);
}

#[test]
fn files_systems_need_path_and_known_format_and_encoding() {
    let ds = diags(
        "systems:\n  tax:\n    kind: files\n    format: csvv\n    encoding: GB18030\n  ok:\n    kind: files\n    path: in\n    format: jsonl\n    delimiter: ';'\n",
    );
    let d = one(&ds, "has no `path`");
    assert_eq!(d.line, 3);
    let d = one(&ds, "unknown file format `csvv`");
    assert_eq!((d.line, d.column), (4, 13));
    assert_eq!(d.hint.as_deref(), Some("did you mean `csv`?"));
    // Encoding names are not case-sensitive.
    assert!(
        ds.iter().all(|d| !d.message.contains("encoding")),
        "{ds:#?}"
    );
    let d = one(&ds, "`delimiter` only applies to csv");
    assert_eq!((d.line, d.severity), (10, Level::Warning));
}

#[test]
fn entity_keys_and_types() {
    let text = r#"entities:
  order:
    key: [order_no, line]
    fields:
      order_no: { type: text(0) }
      lines: { type: "list<order_lin>" }
      total: { type: "decimal(2,4)" }
      line: { type: "list<order_line>" }
  order_line:
    key: []
    fields:
      sku: { type: text }
"#;
    let ds = diags(text);
    assert_eq!(one(&ds, "length 0").line, 5);
    let d = one(&ds, "list of `order_lin`, which is not an entity");
    assert_eq!(d.hint.as_deref(), Some("did you mean `order_line`?"));
    assert_eq!(one(&ds, "scale 4 is larger than precision 2").line, 7);
    let d = one(&ds, "key field `line` of entity `order` is a list");
    assert_eq!((d.line, d.column), (3, 21));
    assert_eq!(one(&ds, "entity `order_line` has an empty `key`").line, 10);
    assert_eq!(ds.len(), 5, "{ds:#?}");
}

#[test]
fn only_version_1_exists() {
    let ds = diags("version: 2\n");
    let d = one(&ds, "config version 2");
    assert_eq!((d.line, d.column), (1, 10));
    assert!(diags("version: 1\n").is_empty());
}
