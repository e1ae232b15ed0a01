use qiao_core::config::*;
#[test]
fn parses_sample() {
    let y = r#"
systems:
  crm: { kind: sqlite, url: "sqlite://crm.db" }
entities:
  customer:
    key: [code]
    fields:
      code: { type: text(32), required: true }
      name: { type: text(100) }
mappings:
  crm_customer:
    system: crm
    entity: customer
    object: customers
    fields:
      code: { from: cust_no }
      name:
        from: cust_name
        convert: [trim, {strip: "*#"}, {max_chars: {max: 100, policy: truncate}}, {unit: 0.01}]
      addr: { from: [a, b], join: " " }
rules:
  r:
    entity: customer
    rules:
      - { code: X1, field: name, check: required, owner: sales, message: {zh: 缺, en: missing} }
      - { code: X2, check: {expr: "rec.a > 1"} }
flows:
  f: { from: crm_customer, to: crm_customer, trigger: {interval: 30s}, rules: [r] }
"#;
    let c: Config = serde_saphyr::from_str(y).unwrap();
    let m = &c.mappings["crm_customer"];
    let (k, v) = m.fields.get_index(1).unwrap();
    assert_eq!(k.value, "name");
    assert_eq!(k.referenced.line(), 17);
    assert_eq!(v.convert[0].value, Converter::Trim);
    assert_eq!(v.convert[3].value, Converter::Unit("0.01".parse().unwrap()));
    assert_eq!(c.flows["f"].trigger, Trigger::Interval("30s".into()));
}
