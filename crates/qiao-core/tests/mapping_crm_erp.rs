//! The mapping engine on a CRM → canonical → ERP customer: value maps, money, text
//! clean-up, dates in Asia/Shanghai, joined and split fields, defaults, expressions,
//! crosswalk lookups and provenance.

use qiao_core::config::Config;
use qiao_core::mapping::{Lookup, Mapper, NoLookup};
use qiao_core::{Record, Value};
use rust_decimal::Decimal;
use std::collections::HashMap;

const YAML: &str = r#"
systems:
  crm: { kind: sqlite }
  erp: { kind: sqlite }
entities:
  customer:
    key: [code]
    fields:
      code: { type: text(32), required: true }
      name: { type: text(100) }
      status: { type: "enum[normal,dormant,closed]" }
      credit_limit: { type: "decimal(18,2)" }
      tax_id: { type: text(18), sensitive: true }
      address: { type: text(200) }
      phone_area: { type: text(8) }
      phone_number: { type: text(20) }
      opened_on: { type: date }
      updated_at: { type: datetime }
      country: { type: text(2) }
      display: { type: text }
      sales_rep: { type: text(32) }
  employee:
    key: [id]
    fields:
      id: { type: text }
mappings:
  crm_customer:
    system: crm
    entity: customer
    object: customers
    fields:
      code: { from: cust_no, convert: [trim, halfwidth, upper] }
      name:
        from: cust_name
        convert: [trim, halfwidth, {strip: "*#"}, {max_chars: {max: 10, policy: truncate}}]
      status:
        from: cust_status
        values: { normal: active, dormant: dormant, closed: closed }
      credit_limit: { from: credit, convert: [{scale: 2}] }
      tax_id: { from: taxno, convert: [trim, halfwidth, upper] }
      address: { from: [province, city, street], join: " " }
      phone_area: { from: tel, part: { sep: "-", index: 0 } }
      phone_number: { from: tel, part: { sep: "-", index: 1 } }
      opened_on: { from: opened, convert: [{date: "%Y/%m/%d"}] }
      updated_at:
        from: modified
        convert: [{datetime: {format: "%Y-%m-%d %H:%M:%S", tz: Asia/Shanghai}}]
      country: { default: CN }
      display:
        from: cust_name
        expr: 'concat(trim(src.cust_name), "（", src.city, "）")'
        expr_out: 'rec.name'
      sales_rep: { from: owner_id, lookup: employee }
  erp_customer:
    system: erp
    entity: customer
    object: KNA1
    fields:
      code: { from: KUNNR }
      name: { from: NAME1, convert: [{max_chars: {max: 10}}] }
      status: { from: STAT, values: { normal: "1", dormant: "2", closed: "3" } }
      credit_limit: { from: KLIMK_FEN, convert: [integer, {unit: 0.01}, {scale: 2}] }
      address: { from: ADDR }
      opened_on: { from: ERDAT, convert: [{date: "%Y%m%d"}] }
      updated_at: { from: AEDAT, convert: [{datetime: {format: "%Y-%m-%dT%H:%M:%S%z", tz: UTC}}] }
      sales_rep: { from: PERNR, lookup: employee }
"#;

fn config() -> Config {
    serde_saphyr::from_str(YAML).expect("test config parses")
}

fn dec(s: &str) -> Value {
    Value::Decimal(s.parse::<Decimal>().unwrap())
}

/// An in-memory crosswalk: (system, entity, local) ↔ golden.
#[derive(Default)]
struct Crosswalk(HashMap<(String, String, String), String>);

impl Crosswalk {
    fn link(mut self, system: &str, entity: &str, local: &str, golden: &str) -> Self {
        self.0
            .insert((system.into(), entity.into(), local.into()), golden.into());
        self
    }
}

impl Lookup for Crosswalk {
    fn to_golden(&self, system: &str, entity: &str, local_id: &str) -> Option<String> {
        self.0
            .get(&(system.into(), entity.into(), local_id.into()))
            .cloned()
    }
    fn to_local(&self, system: &str, entity: &str, golden_id: &str) -> Option<String> {
        self.0
            .iter()
            .find(|((s, e, _), g)| s == system && e == entity && *g == golden_id)
            .map(|((_, _, l), _)| l.clone())
    }
}

fn crm_row() -> Record {
    Record::new()
        .with("cust_no", "ｃ００１")
        .with("cust_name", "\u{3000}*华为#技术\u{3000}")
        .with("cust_status", "dormant")
        .with("credit", "100")
        .with("taxno", "９１４４０３００１９２２０３８２１６")
        .with("province", "广东省")
        .with("city", "深圳市")
        .with("street", "龙岗区坂田")
        .with("tel", "0755-28780808")
        .with("opened", "2024/03/31")
        .with("modified", "2024-03-31 23:30:00")
        .with("owner_id", "E7")
}

fn links() -> Crosswalk {
    Crosswalk::default()
        .link("crm", "employee", "E7", "G-EMP-1")
        .link("erp", "employee", "00042", "G-EMP-1")
}

#[test]
fn crm_row_becomes_canonical() {
    let cfg = config();
    let crm = Mapper::new(&cfg, "crm_customer").unwrap();
    let m = crm.inbound(&crm_row(), &links()).unwrap();
    let r = &m.record;
    assert_eq!(r.get("code"), &Value::from("C001"));
    assert_eq!(r.get("name"), &Value::from("华为技术"));
    assert_eq!(r.get("status"), &Value::from("dormant"));
    assert_eq!(r.get("credit_limit"), &dec("100.00"));
    assert_eq!(r.get("credit_limit").to_string(), "100.00");
    assert_eq!(r.get("tax_id"), &Value::from("914403001922038216"));
    assert_eq!(r.get("address"), &Value::from("广东省 深圳市 龙岗区坂田"));
    assert_eq!(r.get("phone_area"), &Value::from("0755"));
    assert_eq!(r.get("phone_number"), &Value::from("28780808"));
    assert_eq!(r.get("opened_on").to_string(), "2024-03-31");
    // Read in Shanghai time, the offset is kept.
    assert_eq!(r.get("updated_at").to_string(), "2024-03-31T23:30:00+08:00");
    assert_eq!(r.get("country"), &Value::from("CN"));
    assert_eq!(r.get("display"), &Value::from("*华为#技术（深圳市）"));
    assert_eq!(r.get("sales_rep"), &Value::from("G-EMP-1"));
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    assert_eq!(crm.canonical_key(r), "C001");
}

#[test]
fn canonical_goes_to_erp_shape() {
    let cfg = config();
    let crm = Mapper::new(&cfg, "crm_customer").unwrap();
    let erp = Mapper::new(&cfg, "erp_customer").unwrap();
    let canonical = crm.inbound(&crm_row(), &links()).unwrap().record;
    let m = erp.outbound(&canonical, &links()).unwrap();
    let r = &m.record;
    assert_eq!(r.get("KUNNR"), &Value::from("C001"));
    assert_eq!(r.get("STAT"), &Value::from("2"));
    // 100.00 yuan → 10000 fen, a whole number because the ERP field is `integer`.
    assert_eq!(r.get("KLIMK_FEN"), &Value::Int(10000));
    assert_eq!(r.get("ERDAT"), &Value::from("20240331"));
    // 23:30 in Shanghai is 15:30 UTC.
    assert_eq!(r.get("AEDAT"), &Value::from("2024-03-31T15:30:00+0000"));
    assert_eq!(r.get("PERNR"), &Value::from("00042"));
    assert_eq!(
        r.fields.keys().collect::<Vec<_>>(),
        [
            "KUNNR",
            "NAME1",
            "STAT",
            "KLIMK_FEN",
            "ADDR",
            "ERDAT",
            "AEDAT",
            "PERNR"
        ]
    );
}

#[test]
fn erp_status_codes_map_back_through_canonical_to_crm() {
    let cfg = config();
    let crm = Mapper::new(&cfg, "crm_customer").unwrap();
    let erp = Mapper::new(&cfg, "erp_customer").unwrap();
    for (crm_value, canonical, erp_value) in [
        ("active", "normal", "1"),
        ("dormant", "dormant", "2"),
        ("closed", "closed", "3"),
    ] {
        let row = Record::new().with("KUNNR", "C1").with("STAT", erp_value);
        let c = erp.inbound(&row, &NoLookup).unwrap().record;
        assert_eq!(c.get("status"), &Value::from(canonical));
        let back = crm.outbound(&c, &NoLookup).unwrap().record;
        assert_eq!(back.get("cust_status"), &Value::from(crm_value));
    }
}

#[test]
fn unknown_status_names_value_known_values_and_fix() {
    let cfg = config();
    let erp = Mapper::new(&cfg, "erp_customer").unwrap();
    let row = Record::new().with("KUNNR", "C1").with("STAT", "9");
    let e = erp.inbound(&row, &NoLookup).unwrap_err();
    assert_eq!(e.field, "status");
    assert_eq!(e.system_field.as_deref(), Some("STAT"));
    let text = e.to_string();
    for part in ["erp_customer", "`9`", "1 → normal", "3 → closed", "values:"] {
        assert!(text.contains(part), "{part} missing in: {text}");
    }
}

#[test]
fn address_split_back_and_phone_joined_back() {
    let cfg = config();
    let crm = Mapper::new(&cfg, "crm_customer").unwrap();
    let canonical = crm.inbound(&crm_row(), &links()).unwrap().record;
    let back = crm.outbound(&canonical, &links()).unwrap();
    let r = &back.record;
    assert_eq!(r.get("province"), &Value::from("广东省"));
    assert_eq!(r.get("city"), &Value::from("深圳市"));
    assert_eq!(r.get("street"), &Value::from("龙岗区坂田"));
    assert_eq!(r.get("tel"), &Value::from("0755-28780808"));
    assert_eq!(r.get("cust_status"), &Value::from("dormant"));
    assert_eq!(r.get("credit"), &dec("100.00"));
    assert_eq!(r.get("opened"), &Value::from("2024/03/31"));
    assert_eq!(r.get("modified"), &Value::from("2024-03-31 23:30:00"));
    assert_eq!(r.get("owner_id"), &Value::from("E7"));
    // expr_out writes to the `from` field of an expression field.
    assert_eq!(r.get("cust_name"), &Value::from("华为技术"));
}

#[test]
fn missing_crosswalk_entry_says_which_id_in_which_system() {
    let cfg = config();
    let crm = Mapper::new(&cfg, "crm_customer").unwrap();
    let e = crm.inbound(&crm_row(), &NoLookup).unwrap_err();
    assert_eq!(e.field, "sales_rep");
    let text = e.to_string();
    assert!(
        text.contains("`E7`") && text.contains("`crm`") && text.contains("golden"),
        "{text}"
    );

    let erp = Mapper::new(&cfg, "erp_customer").unwrap();
    let canonical = Record::new().with("code", "C1").with("sales_rep", "G-X");
    let e = erp.outbound(&canonical, &links()).unwrap_err();
    assert!(
        e.to_string().contains("`G-X`") && e.to_string().contains("`erp`"),
        "{e}"
    );
}

#[test]
fn provenance_shows_source_and_steps() {
    let cfg = config();
    // Flows do not pay for provenance: only a traced mapper records it.
    let plain = Mapper::new(&cfg, "crm_customer").unwrap();
    assert!(
        plain
            .inbound(&crm_row(), &links())
            .unwrap()
            .provenance
            .is_empty()
    );
    let crm = Mapper::new(&cfg, "crm_customer").unwrap().traced();
    let m = crm.inbound(&crm_row(), &links()).unwrap();
    let prov: HashMap<_, _> = m.provenance.iter().cloned().collect();
    assert_eq!(
        prov["name"],
        "cust_name ← trim ← halfwidth ← strip(*#) ← max_chars(10, truncate)"
    );
    assert_eq!(prov["status"], "cust_status ← values");
    assert_eq!(prov["address"], "province + city + street (join \" \")");
    assert_eq!(prov["country"], "country ← default(CN)");
    assert_eq!(prov["sales_rep"], "owner_id ← lookup(employee)");
    assert!(
        prov["display"].starts_with("expr(concat("),
        "{}",
        prov["display"]
    );

    let erp = Mapper::new(&cfg, "erp_customer").unwrap().traced();
    let out = erp.outbound(&m.record, &links()).unwrap();
    let prov: HashMap<_, _> = out.provenance.iter().cloned().collect();
    assert_eq!(
        prov["KLIMK_FEN"],
        "credit_limit ← scale(2) ← unit(÷0.01) ← integer"
    );
    assert_eq!(prov["STAT"], "status ← values");
}

#[test]
fn truncation_warns_and_reject_errors_counting_characters() {
    let cfg = config();
    let crm = Mapper::new(&cfg, "crm_customer").unwrap();
    let erp = Mapper::new(&cfg, "erp_customer").unwrap();
    // 13 Chinese characters: 39 bytes, but the limit of 10 is in characters.
    let long = "中华人民共和国国家税务总局";
    let row = crm_row().with("cust_name", long);
    let m = crm.inbound(&row, &links()).unwrap();
    assert_eq!(m.record.get("name"), &Value::from("中华人民共和国国家税"));
    assert_eq!(m.warnings.len(), 1);
    assert!(
        m.warnings[0].contains("13 characters") && m.warnings[0].contains("10"),
        "{:?}",
        m.warnings
    );
    // Exactly 10 characters (30 bytes) passes the ERP's reject policy.
    let ok = Record::new()
        .with("code", "C1")
        .with("name", "中华人民共和国国家税");
    assert!(erp.outbound(&ok, &NoLookup).is_ok());
    let too_long = Record::new().with("code", "C1").with("name", long);
    let e = erp.outbound(&too_long, &NoLookup).unwrap_err();
    assert_eq!(e.system_field.as_deref(), Some("NAME1"));
    assert!(
        e.message.contains("13 characters") && e.message.contains("truncate"),
        "{e}"
    );
}

#[test]
fn sensitive_values_are_masked_in_errors() {
    let yaml = YAML.replace(
        "tax_id: { from: taxno, convert: [trim, halfwidth, upper] }",
        "tax_id: { from: taxno, convert: [{max_chars: {max: 18}}] }",
    );
    let cfg: Config = serde_saphyr::from_str(&yaml).unwrap();
    let crm = Mapper::new(&cfg, "crm_customer").unwrap();
    let row = crm_row().with("taxno", "91440300192203821699");
    let e = crm.inbound(&row, &links()).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("9144************1699"), "{text}");
    assert!(!text.contains("91440300192203821699"), "{text}");
}

#[test]
fn bad_date_names_format_and_example() {
    let cfg = config();
    let crm = Mapper::new(&cfg, "crm_customer").unwrap();
    let e = crm
        .inbound(&crm_row().with("opened", "31.03.2024"), &links())
        .unwrap_err();
    assert_eq!(e.field, "opened_on");
    assert!(
        e.message.contains("%Y/%m/%d") && e.message.contains("2024/03/31"),
        "{e}"
    );
}

#[test]
fn keys_fields_and_delete_shape() {
    let cfg = config();
    let crm = Mapper::new(&cfg, "crm_customer").unwrap();
    let erp = Mapper::new(&cfg, "erp_customer").unwrap();
    assert_eq!(crm.key_fields(), ["cust_no"]);
    assert_eq!(erp.key_fields(), ["KUNNR"]);
    let sf = crm.system_fields();
    for f in [
        "cust_no",
        "cust_name",
        "province",
        "city",
        "street",
        "tel",
        "owner_id",
    ] {
        assert!(sf.contains(&f.to_string()), "{f} missing from {sf:?}");
    }
    assert_eq!(sf.iter().filter(|f| *f == "tel").count(), 1);
    let canonical = Record::new().with("code", "C9").with("name", "x");
    let del = erp.outbound_key_only(&canonical, &NoLookup).unwrap();
    assert_eq!(del.record, Record::new().with("KUNNR", "C9"));
}

#[test]
fn config_errors_name_field_and_fix() {
    let bad = YAML.replace(
        "code: { from: KUNNR }",
        "code: { from: KUNNR }\n      nmae: { from: X }",
    );
    let cfg: Config = serde_saphyr::from_str(&bad).unwrap();
    let e = Mapper::new(&cfg, "erp_customer").unwrap_err();
    assert!(
        e.contains("nmae") && e.contains("did you mean `name`"),
        "{e}"
    );

    let bad = YAML.replace("tz: Asia/Shanghai", "tz: Asia/Shanghia");
    let cfg: Config = serde_saphyr::from_str(&bad).unwrap();
    let e = Mapper::new(&cfg, "crm_customer").unwrap_err();
    assert!(e.contains("Asia/Shanghia") && e.contains("IANA"), "{e}");

    let bad = YAML.replace("concat(trim(src.cust_name)", "concat(trim(srcc.cust_name)");
    let cfg: Config = serde_saphyr::from_str(&bad).unwrap();
    let e = Mapper::new(&cfg, "crm_customer").unwrap_err();
    assert!(
        e.contains("display") && e.contains("srcc") && e.contains("line"),
        "{e}"
    );

    let bad = YAML.replace("dormant: \"2\"", "dormant: \"1\"");
    let cfg: Config = serde_saphyr::from_str(&bad).unwrap();
    let e = Mapper::new(&cfg, "erp_customer").unwrap_err();
    assert!(e.contains("cannot be read back"), "{e}");

    let e = Mapper::new(&config(), "erp_custmer").unwrap_err();
    assert!(e.contains("did you mean `erp_customer`"), "{e}");
}

#[test]
fn expression_errors_mask_sensitive_source_values() {
    let yaml = YAML.replace(
        "tax_id: { from: taxno, convert: [trim, halfwidth, upper] }",
        "tax_id: { expr: 'if dec(src.taxno) > 0 { src.taxno } else { \"\" }' }",
    );
    let cfg: Config = serde_saphyr::from_str(&yaml).unwrap();
    let crm = Mapper::new(&cfg, "crm_customer").unwrap();
    let row = crm_row().with("taxno", "91440300MA5FXXXX2Q");
    let e = crm.inbound(&row, &links()).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("inbound expression failed"), "{text}");
    assert!(!text.contains("91440300MA5FXXXX2Q"), "{text}");
    assert!(text.contains("9144**********XX2Q"), "{text}");
}
