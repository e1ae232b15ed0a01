//! Flows: their ends, triggers, filters and rule sets, and loops between systems.

use qiao_core::load::{Diagnostic, parse_str};

fn config(flows: &str) -> String {
    format!(
        r#"systems:
  crm: {{ kind: sqlite, url: "sqlite://crm.db" }}
  erp: {{ kind: sqlite, url: "sqlite://erp.db" }}
  wms: {{ kind: sqlite, url: "sqlite://wms.db" }}
entities:
  customer:
    key: [code]
    fields: {{ code: {{ type: text }}, name: {{ type: text }} }}
  product:
    key: [sku]
    fields: {{ sku: {{ type: text }} }}
mappings:
  crm_c: {{ system: crm, entity: customer, object: c, fields: {{ code: {{ from: c }} }} }}
  erp_c: {{ system: erp, entity: customer, object: c, fields: {{ code: {{ from: c }} }} }}
  wms_c: {{ system: wms, entity: customer, object: c, fields: {{ code: {{ from: c }} }} }}
  erp_p: {{ system: erp, entity: product, object: p, fields: {{ sku: {{ from: s }} }} }}
  wms_p: {{ system: wms, entity: product, object: p, fields: {{ sku: {{ from: s }} }} }}
rules:
  cust: {{ entity: customer, rules: [{{ code: C1, field: name, check: required }}] }}
  prod: {{ entity: product, rules: [{{ code: P1, field: sku, check: required }}] }}
flows:
{flows}"#
    )
}

/// Line 22 is the first flow line.
fn diags(flows: &str) -> Vec<Diagnostic> {
    let text = config(flows);
    let (c, d) = parse_str(&text, "f.yaml");
    assert!(c.is_some(), "{d}");
    d.0
}

fn one<'a>(ds: &'a [Diagnostic], msg: &str) -> &'a Diagnostic {
    let hits: Vec<_> = ds.iter().filter(|d| d.message.contains(msg)).collect();
    assert_eq!(hits.len(), 1, "{msg:?} in {ds:#?}");
    hits[0]
}

#[test]
fn two_way_sync_without_echo_suppression_is_an_error() {
    let ds = diags("  c2e: { from: crm_c, to: erp_c }\n  e2c: { from: erp_c, to: crm_c }\n");
    let d = one(
        &ds,
        "flows `c2e`, `e2c` send entity `customer` around in a loop between systems `crm` and `erp` without echo suppression",
    );
    assert_eq!((d.line, d.column), (22, 16));
    assert_eq!(
        d.hint.as_deref(),
        Some(
            "set `echo_suppression: true` on `c2e`, `e2c` so changes qiao wrote are not sent back, or remove one direction"
        )
    );
    assert_eq!(ds.len(), 1);
}

#[test]
fn the_flow_lacking_suppression_is_named() {
    let ds = diags(
        "  c2e: { from: crm_c, to: erp_c, echo_suppression: true }\n  e2c: { from: erp_c, to: crm_c }\n",
    );
    let d = one(&ds, "loop");
    assert_eq!(d.line, 23);
    assert!(d.hint.as_deref().unwrap().contains("on `e2c` so"));
}

#[test]
fn suppressed_loops_and_one_way_chains_pass() {
    assert!(diags("  c2e: { from: crm_c, to: erp_c, echo_suppression: true }\n  e2c: { from: erp_c, to: crm_c, echo_suppression: true }\n").is_empty());
    // crm → erp → wms is no loop; products going erp → wms and customers wms → erp neither.
    assert!(diags("  a: { from: crm_c, to: erp_c }\n  b: { from: erp_c, to: wms_c }\n  c: { from: erp_p, to: wms_p }\n").is_empty());
}

#[test]
fn three_system_loop_is_found() {
    let ds = diags(
        "  a: { from: crm_c, to: erp_c }\n  b: { from: erp_c, to: wms_c }\n  c: { from: wms_c, to: crm_c }\n  d: { from: erp_p, to: wms_p }\n",
    );
    let d = one(&ds, "loop");
    assert!(d.message.contains("flows `a`, `b`, `c`"), "{d}");
    assert!(d.message.contains("`crm` and `erp` and `wms`"), "{d}");
}

#[test]
fn self_loop_is_found() {
    let ds = diags("  same: { from: crm_c, to: crm_c }\n");
    assert!(one(&ds, "loop").message.contains("flows `same`"));
}

#[test]
fn ends_triggers_rules_and_settings() {
    let ds = diags(
        r#"  a: { from: crm_cc, to: erp_p }
  b: { from: crm_c, to: erp_p, rules: [prod, cst] }
  c: { from: crm_c, to: erp_c, trigger: { interval: 0s }, batch_size: 0 }
  d: { from: crm_c, to: erp_c, trigger: { cron: "0 0 25 * * *" }, retry: [1m, soon] }
  e: { from: crm_c, to: erp_c, trigger: { interval: 5m }, filter: "rec.nme == 1", rules: [prod] }
  f: { from: crm_c, to: erp_c, trigger: { cron: "0 */5 * * * *" }, filter: "rec.name != \"\"", rules: [cust] }
"#,
    );
    let d = one(&ds, "uses mapping `crm_cc`");
    assert_eq!(
        (d.line, d.hint.as_deref()),
        (22, Some("did you mean `crm_c`?"))
    );
    assert_eq!(
        one(
            &ds,
            "from mapping `crm_c` (entity `customer`) to mapping `erp_p` (entity `product`)"
        )
        .line,
        23
    );
    assert_eq!(
        one(&ds, "rule set `cst`").hint.as_deref(),
        Some("did you mean `cust`?")
    );
    assert_eq!(
        one(
            &ds,
            "flow `b` carries entity `customer` but rule set `prod`"
        )
        .line,
        23
    );
    assert_eq!(one(&ds, "interval `0s` is zero").line, 24);
    assert_eq!(one(&ds, "`batch_size` of flow `c` is 0").line, 24);
    assert_eq!(one(&ds, "cron schedule `0 0 25 * * *`").line, 25);
    assert_eq!(one(&ds, "duration `soon`").line, 25);
    let d = one(&ds, "the filter of flow `e` reads `rec.nme`");
    assert_eq!((d.line, d.column), (26, 68));
    assert_eq!(d.hint.as_deref(), Some("did you mean `name`?"));
    assert_eq!(
        one(
            &ds,
            "flow `e` carries entity `customer` but rule set `prod`"
        )
        .line,
        26
    );
    assert_eq!(ds.len(), 10, "{ds:#?}");
}
