//! Malformed files: YAML syntax errors, wrong types, missing keys, duplicates, bad
//! encodings. Each gives one positioned diagnostic with a fix, and no input panics.

use proptest::prelude::*;
use qiao_core::load::{Diagnostic, load, load_str, parse_str};

fn only_error(text: &str) -> Diagnostic {
    let err = load_str(text, "bad.yaml").unwrap_err();
    assert_eq!(err.len(), 1, "{err}");
    err.0.into_iter().next().unwrap()
}

#[test]
fn unclosed_flow_map_is_a_syntax_error_with_position() {
    let d = only_error("systems:\n  crm: { kind: sqlite\n  erp: x\n");
    assert_eq!((d.line, d.column), (3, 6), "{d}");
    assert!(d.message.contains("'}'"), "{d}");
    assert!(d.hint.unwrap().contains("brackets"));
}

#[test]
fn tab_indentation_is_reported() {
    let d = only_error("systems:\n  crm:\n    kind: sqlite\n\turl: x\n");
    assert_eq!((d.line, d.column), (4, 1), "{d}");
    assert!(d.message.contains("tab"), "{d}");
    assert!(d.hint.unwrap().contains("spaces"));
}

#[test]
fn unclosed_quote_is_reported() {
    let d = only_error("systems:\n  crm: { kind: \"sqlite }\n");
    assert!(d.line >= 2, "{d}");
    assert!(d.hint.is_some());
}

#[test]
fn wrong_type_names_the_place_and_the_fix() {
    let d = only_error("systems:\n  crm: { kind: sqlite, url: [a, b] }\n");
    assert_eq!((d.line, d.column), (2, 29), "{d}");
    assert!(d.message.contains("in `systems.crm.url`"), "{d}");
    assert!(d.hint.unwrap().contains("write text here"));
    let d = only_error("flows:\n  f: { from: a, to: b, batch_size: lots }\n");
    assert_eq!(d.line, 2, "{d}");
    assert!(d.message.contains("batch_size"), "{d}");
}

#[test]
fn missing_key_names_its_parent() {
    let d = only_error("systems:\n  crm: {url: \"sqlite://x\"}\n");
    assert_eq!(d.line, 2, "{d}");
    assert!(
        d.message.contains("missing key `kind` (in `systems.crm`)"),
        "{d}"
    );
    assert!(d.hint.unwrap().contains("kind:"));
}

#[test]
fn duplicate_keys_are_errors() {
    let d =
        only_error("systems:\n  crm: {kind: sqlite, url: \"sqlite://a\"}\n  crm: {kind: files}\n");
    assert_eq!(d.line, 3, "{d}");
    assert!(d.message.contains("`crm` appears twice"), "{d}");
}

#[test]
fn empty_file_is_a_warning_not_an_error() {
    for text in ["", "# only a comment\n", "---\n"] {
        let (config, diags) = parse_str(text, "empty.yaml");
        assert!(config.is_some(), "{text:?}: {diags}");
        assert!(!diags.has_errors(), "{text:?}: {diags}");
        assert_eq!(diags.warning_count(), 1, "{text:?}: {diags}");
        assert!(diags[0].message.contains("empty"));
        assert!(load_str(text, "empty.yaml").is_ok());
    }
}

#[test]
fn top_level_must_be_a_map() {
    let d = only_error("- a\n- b\n");
    assert_eq!(d.line, 1, "{d}");
}

#[test]
fn files_that_cannot_be_read_say_why() {
    let dir = std::env::temp_dir().join(format!("qiao-config-malformed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("nope.yaml");
    let err = load(&missing).unwrap_err();
    assert!(err[0].message.contains("cannot read"), "{err}");
    assert!(err[0].file.ends_with("nope.yaml"));

    // GBK bytes for 客户 on line 2: the file must be UTF-8.
    let gbk = dir.join("gbk.yaml");
    std::fs::write(&gbk, b"systems: {}\nentities: {\xbf\xcd\xbb\xa7: x}\n").unwrap();
    let err = load(&gbk).unwrap_err();
    assert_eq!((err[0].line, err[0].column), (2, 12), "{err}");
    assert!(err[0].hint.as_deref().unwrap().contains("UTF-8"));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn example() -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/crm-erp.yaml");
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn truncated_files_never_panic() {
    let text = example();
    let cuts: Vec<usize> = text.char_indices().map(|(i, _)| i).step_by(11).collect();
    for cut in cuts {
        let (_, diags) = parse_str(&text[..cut], "cut.yaml");
        for d in diags.iter() {
            // Every diagnostic is printable and has a message.
            assert!(!d.message.is_empty());
            let _ = d.to_string();
        }
    }
}

#[test]
fn hostile_inputs_never_panic() {
    let deep_seq = "[".repeat(100_000);
    let deep_map = "a: ".repeat(10_000);
    let alias_bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n";
    let inputs = [
        deep_seq.as_str(),
        deep_map.as_str(),
        alias_bomb,
        "\u{0}\u{1}\u{2}",
        "systems: !!binary aGVsbG8=",
        "systems: {crm: {kind: sqlite, url: ${}}}",
        "entities: {e: {key: [], fields: {f: {type: \"decimal(99999999999999999999,1)\"}}}}",
        "flows: {f: {from: a, to: a, trigger: {interval: 99999999999999999999d}}}",
        "rules: {r: {entity: e, rules: [{code: x, check: {pattern: \"(((((((((((\"}}]}}",
        "mappings: {m: {system: s, entity: e, object: o, fields: {f: {expr: \"loop {}\"}}}}}",
        "? [a, b]\n: c\n",
        "version: -1",
        "*unknown",
    ];
    for text in inputs {
        let (_, diags) = parse_str(text, "hostile.yaml");
        let _ = diags.render(text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Random edits of a valid config (deletions, insertions of YAML-significant
    /// characters) never panic, and any failure comes with at least one error.
    #[test]
    fn edited_configs_never_panic(
        edits in prop::collection::vec((0usize..6000, 0usize..40, prop::sample::select(vec!["", ":", "-", "{", "}", "[", "]", "\"", "'", "\n", "  ", "\t", "&a", "*a", "#", "|", "客户"])), 1..6)
    ) {
        let mut text = example();
        for (at, del, ins) in edits {
            let mut at = at.min(text.len());
            while !text.is_char_boundary(at) { at -= 1; }
            let mut end = (at + del).min(text.len());
            while !text.is_char_boundary(end) { end -= 1; }
            text.replace_range(at..end, ins);
        }
        let (config, diags) = parse_str(&text, "edited.yaml");
        if config.is_none() {
            prop_assert!(diags.has_errors());
        }
        let _ = diags.render(&text);
    }

    /// Arbitrary text never panics either.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        let _ = parse_str(&text, "any.yaml");
    }
}
