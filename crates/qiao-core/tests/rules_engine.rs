//! The rule engine: the dictionary-derived generic pack, each configured check kind,
//! severities, character counting, expressions, masking and pack registration.

use qiao_core::config::{Config, EntityDef, Severity};
use qiao_core::rules::{
    Message, PackRegistry, RuleEngine, RulePack, Violation, has_errors, register_pack,
};
use qiao_core::{Record, Value};
use rust_decimal::Decimal;
use std::sync::Arc;

const YAML: &str = r#"
entities:
  customer:
    key: [code]
    fields:
      code: { type: text(32) }
      name: { type: text(10), required: true, label: 客户名称 }
      status: { type: "enum[normal,dormant,closed]" }
      credit_limit: { type: "decimal(18,2)" }
      tax_id: { type: text(18), sensitive: true, label: 纳税人识别号 }
      phone: { type: text(20) }
      discount: { type: "decimal(5,2)" }
      opened_on: { type: date }
      closed_on: { type: date }
  product:
    key: [sku]
    fields:
      sku: { type: text }
rules:
  cust:
    entity: customer
    rules:
      - code: CUST-PHONE-001
        field: phone
        check: { pattern: '^1[3-9]\d{9}$' }
        owner: sales
        message: { zh: "手机号 {value} 格式不对", en: "mobile number {value} is malformed" }
      - code: CUST-TAXID-001
        field: tax_id
        check: { pattern: '^[0-9A-HJ-NPQRTUWXY]{18}$' }
        owner: finance
      - code: CUST-DISC-001
        field: discount
        check: { range: { min: 0, max: 0.3 } }
        severity: warning
        owner: sales
      - code: CUST-DATES-001
        check: { expr: 'rec.closed_on == () || rec.closed_on >= rec.opened_on' }
        owner: sales
      - code: CUST-NAME-LEN
        field: name
        check: { max_chars: 6 }
        severity: warning
      - code: CUST-STATUS
        field: status
        check: { enum: [normal, dormant] }
      - code: CUST-CREDIT-TYPE
        field: credit_limit
        check: { type: "decimal(18,0)" }
  strict:
    entity: customer
    rules:
      - code: CUST-NAME-REQ
        field: name
        check: required
        owner: sales
        message: { zh: 请填写客户名称, en: Enter the customer name }
      - code: CUST-BROKEN
        check: { expr: 'rec.credit_limit / rec.discount > 1' }
  secret:
    entity: customer
    rules:
      - code: CUST-TAX-NUM
        check: { expr: 'dec(rec.tax_id) > 0' }
      - code: CUST-DISC-EXPR
        field: discount
        check: { expr: 'rec.discount < 0.2' }
        owner: sales
  product_rules:
    entity: product
    rules:
      - { code: P1, field: sku, check: required }
"#;

fn config() -> Config {
    serde_saphyr::from_str(YAML).unwrap()
}

fn dec(s: &str) -> Value {
    Value::Decimal(s.parse::<Decimal>().unwrap())
}

fn good() -> Record {
    Record::new()
        .with("code", "C001")
        .with("name", "华为技术")
        .with("status", "normal")
        .with("credit_limit", dec("1000.00"))
        .with("tax_id", "914403001922038216")
        .with("phone", "13812345678")
        .with("discount", dec("0.10"))
}

fn codes(v: &[Violation]) -> Vec<&str> {
    v.iter().map(|v| v.code.as_str()).collect()
}

fn engine(sets: &[&str]) -> RuleEngine {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    RuleEngine::new(&config(), "customer", &sets).unwrap()
}

#[test]
fn a_good_record_passes_everything() {
    let v = engine(&["cust"]).validate(&good());
    assert!(v.is_empty(), "{v:#?}");
    assert!(!has_errors(&v));
}

#[test]
fn generic_required_and_key_fields() {
    let e = engine(&[]);
    let rec = good().with("name", "  ").with("code", "");
    let v = e.validate(&rec);
    assert_eq!(codes(&v), ["GEN-REQUIRED", "GEN-REQUIRED"]);
    assert_eq!(v[0].field.as_deref(), Some("code"));
    assert_eq!(v[1].field.as_deref(), Some("name"));
    assert_eq!(v[1].owner, "it");
    assert_eq!(v[1].severity, Severity::Error);
    assert!(v[1].message.zh.contains("客户名称"), "{:?}", v[1].message);
    assert!(v[1].message.en.contains("`name`"), "{:?}", v[1].message);
    assert!(has_errors(&v));
}

#[test]
fn generic_length_counts_characters_not_bytes() {
    let e = engine(&[]);
    // Ten Chinese characters are 30 bytes and fit text(10).
    let v = e.validate(&good().with("name", "中华人民共和国国家税"));
    assert!(v.is_empty(), "{v:#?}");
    let v = e.validate(&good().with("name", "中华人民共和国国家税务"));
    assert_eq!(codes(&v), ["GEN-LENGTH"]);
    assert!(
        v[0].message.en.contains("11 characters"),
        "{:?}",
        v[0].message
    );
    assert!(v[0].detail.contains("33 bytes"), "{}", v[0].detail);
}

#[test]
fn generic_enum_and_type() {
    let e = engine(&[]);
    let v = e.validate(&good().with("status", "frozen"));
    assert_eq!(codes(&v), ["GEN-ENUM"]);
    assert!(v[0].message.en.contains("`frozen`") && v[0].message.en.contains("dormant"));
    // Three decimals do not fit decimal(18,2); text is not a decimal.
    let v = e.validate(&good().with("credit_limit", dec("1.005")));
    assert_eq!(codes(&v), ["GEN-TYPE"]);
    let v = e.validate(&good().with("opened_on", "2024-01-01"));
    assert_eq!(codes(&v), ["GEN-TYPE"]);
    assert_eq!(v[0].field.as_deref(), Some("opened_on"));
}

#[test]
fn pattern_rule_with_owner_and_custom_message() {
    let v = engine(&["cust"]).validate(&good().with("phone", "021-1234"));
    assert_eq!(codes(&v), ["CUST-PHONE-001"]);
    assert_eq!(v[0].owner, "sales");
    assert_eq!(v[0].message.zh, "手机号 `021-1234` 格式不对");
    assert_eq!(v[0].message.en, "mobile number `021-1234` is malformed");
    assert!(v[0].detail.contains("^1[3-9]"), "{}", v[0].detail);
}

#[test]
fn sensitive_values_are_masked_everywhere() {
    let v = engine(&["cust"]).validate(&good().with("tax_id", "91440300192203821I"));
    assert_eq!(codes(&v), ["CUST-TAXID-001"]);
    let all = serde_json::to_string(&v).unwrap();
    assert!(!all.contains("91440300192203821I"), "{all}");
    assert!(all.contains("9144**********821I"), "{all}");
    assert!(
        v[0].message.zh.contains("纳税人识别号"),
        "{:?}",
        v[0].message
    );
    // The generic pack masks too.
    let v = engine(&[]).validate(&good().with("tax_id", "9144030019220382169999"));
    assert_eq!(codes(&v), ["GEN-LENGTH"]);
    let all = serde_json::to_string(&v).unwrap();
    assert!(!all.contains("9144030019220382169999"), "{all}");
}

#[test]
fn range_warning_does_not_block() {
    let v = engine(&["cust"]).validate(&good().with("discount", dec("0.35")));
    assert_eq!(codes(&v), ["CUST-DISC-001"]);
    assert_eq!(v[0].severity, Severity::Warning);
    assert!(!has_errors(&v));
    assert!(v[0].message.en.contains("[0, 0.3]"), "{:?}", v[0].message);
    let v = engine(&["cust"]).validate(&good().with("discount", dec("-0.01")));
    assert!(v[0].detail.contains("below"), "{}", v[0].detail);
    let v = engine(&["cust"]).validate(&good().with("discount", dec("0.30")));
    assert!(v.is_empty());
}

#[test]
fn cross_field_expression_rule() {
    let d = |s: &str| Value::Date(s.parse().unwrap());
    let e = engine(&["cust"]);
    let ok = good()
        .with("opened_on", d("2024-01-01"))
        .with("closed_on", d("2024-06-30"));
    assert!(e.validate(&ok).is_empty());
    let bad = ok.clone().with("closed_on", d("2023-12-31"));
    let v = e.validate(&bad);
    assert_eq!(codes(&v), ["CUST-DATES-001"]);
    assert_eq!(v[0].field, None);
    assert!(v[0].message.en.contains("rec.closed_on >= rec.opened_on"));
}

#[test]
fn expression_that_fails_is_a_violation_not_a_panic() {
    let e = engine(&["strict"]);
    let v = e.validate(&good().with("discount", dec("0")));
    assert_eq!(codes(&v), ["CUST-BROKEN"]);
    assert!(
        v[0].message.en.contains("could not be checked"),
        "{:?}",
        v[0].message
    );
    assert!(has_errors(&v));
}

#[test]
fn configured_twin_replaces_the_generic_check() {
    let e = engine(&["strict"]);
    let v = e.validate(&good().with("name", ""));
    assert_eq!(codes(&v), ["CUST-NAME-REQ"]);
    assert_eq!(v[0].owner, "sales");
    assert_eq!(
        v[0].message,
        Message {
            zh: "请填写客户名称".into(),
            en: "Enter the customer name".into()
        }
    );
}

#[test]
fn max_chars_enum_and_type_rules() {
    let e = engine(&["cust"]);
    let v = e.validate(&good().with("name", "北京市海淀区中关村"));
    assert_eq!(codes(&v), ["CUST-NAME-LEN"]);
    assert_eq!(v[0].severity, Severity::Warning);
    assert!(
        v[0].detail.contains("9 characters (27 bytes)"),
        "{}",
        v[0].detail
    );
    let v = e.validate(&good().with("status", "closed"));
    assert_eq!(codes(&v), ["CUST-STATUS"]);
    let v = e.validate(&good().with("credit_limit", dec("1000.50")));
    assert_eq!(codes(&v), ["CUST-CREDIT-TYPE"]);
}

#[test]
fn build_errors_name_the_rule_and_fix() {
    let e = RuleEngine::new(&config(), "customer", &["product_rules".into()])
        .err()
        .unwrap();
    assert!(
        e.contains("product_rules") && e.contains("`product`"),
        "{e}"
    );
    let e = RuleEngine::new(&config(), "customer", &["nope".into()])
        .err()
        .unwrap();
    assert!(
        e.contains("nope") && e.contains("cust") && e.contains("generic"),
        "{e}"
    );
    let bad = YAML.replace("^1[3-9]", "^1[3-9");
    let cfg: Config = serde_saphyr::from_str(&bad).unwrap();
    let e = RuleEngine::new(&cfg, "customer", &["cust".into()])
        .err()
        .unwrap();
    assert!(
        e.contains("CUST-PHONE-001") && e.contains("regular expression"),
        "{e}"
    );
    let bad = YAML.replace("rec.closed_on == ()", "rec.closed_on == () && recc.x");
    let cfg: Config = serde_saphyr::from_str(&bad).unwrap();
    let e = RuleEngine::new(&cfg, "customer", &["cust".into()])
        .err()
        .unwrap();
    assert!(e.contains("CUST-DATES-001") && e.contains("recc"), "{e}");
}

struct NoPoBox;

impl RulePack for NoPoBox {
    fn name(&self) -> &str {
        "test.no_po_box"
    }
    fn check(&self, entity: &str, _def: &EntityDef, rec: &Record, out: &mut Vec<Violation>) {
        if entity == "customer" && rec.get("name").to_string().contains("信箱") {
            out.push(Violation {
                code: "T-POBOX".into(),
                field: Some("name".into()),
                severity: Severity::Warning,
                owner: "sales".into(),
                message: Message {
                    zh: "名称含信箱".into(),
                    en: "name contains a PO box".into(),
                },
                detail: String::new(),
            });
        }
    }
}

#[test]
fn packs_plug_in_by_name() {
    let mut reg = PackRegistry::builtin();
    reg.register(Arc::new(NoPoBox));
    let e =
        RuleEngine::with_registry(&config(), "customer", &["test.no_po_box".into()], &reg).unwrap();
    assert_eq!(e.pack_names(), ["generic", "test.no_po_box"]);
    let v = e.validate(&good().with("name", "邮政信箱"));
    assert_eq!(codes(&v), ["T-POBOX"]);

    register_pack(Arc::new(NoPoBox));
    let e = RuleEngine::new(&config(), "customer", &["test.no_po_box".into()]).unwrap();
    assert_eq!(
        codes(&e.validate(&good().with("name", "邮政信箱"))),
        ["T-POBOX"]
    );
}

#[test]
fn violations_serialize_for_exceptions() {
    let v = engine(&["cust"]).validate(&good().with("discount", dec("0.5")));
    let j = serde_json::to_value(&v).unwrap();
    assert_eq!(j[0]["code"], "CUST-DISC-001");
    assert_eq!(j[0]["severity"], "warning");
    assert_eq!(j[0]["owner"], "sales");
    assert_eq!(j[0]["field"], "discount");
    assert!(j[0]["message"]["zh"].as_str().unwrap().contains("超出"));
}

#[test]
fn expression_errors_mask_sensitive_values() {
    let v = engine(&["secret"]).validate(&good().with("tax_id", "91440300MA5FXXXX2Q"));
    assert_eq!(codes(&v), ["CUST-TAX-NUM"]);
    let all = serde_json::to_string(&v).unwrap();
    assert!(all.contains("could not be checked"), "{all}");
    assert!(!all.contains("91440300MA5FXXXX2Q"), "{all}");
    assert!(all.contains("9144**********XX2Q"), "{all}");
}

#[test]
fn expression_rule_may_name_its_field() {
    let v = engine(&["secret"]).validate(&good().with("tax_id", "1").with("discount", dec("0.25")));
    assert_eq!(codes(&v), ["CUST-DISC-EXPR"]);
    assert_eq!(v[0].field.as_deref(), Some("discount"));
    assert_eq!(v[0].owner, "sales");
}
