//! Every converter, inbound and outbound, on a one-field mapping.

use qiao_core::config::Config;
use qiao_core::mapping::{Mapper, NoLookup, halfwidth, mask};
use qiao_core::{Record, Value};
use rust_decimal::Decimal;

/// A mapping of field `v` (dictionary type `ty`) from system field `s`, with `spec` as
/// the rest of its field map.
fn mapper(ty: &str, spec: &str) -> Mapper {
    try_mapper(ty, spec).unwrap()
}

fn try_mapper(ty: &str, spec: &str) -> Result<Mapper, String> {
    let yaml = format!(
        r#"
entities:
  t:
    key: [id]
    fields:
      id: {{ type: text }}
      v: {{ type: "{ty}" }}
mappings:
  m:
    system: s
    entity: t
    object: o
    fields:
      id: {{ from: ID }}
      v: {{ from: s, {spec} }}
"#
    );
    let cfg: Config = serde_saphyr::from_str(&yaml).map_err(|e| e.to_string())?;
    Mapper::new(&cfg, "m")
}

fn dec(s: &str) -> Value {
    Value::Decimal(s.parse::<Decimal>().unwrap())
}

fn inbound(m: &Mapper, v: impl Into<Value>) -> Result<Value, String> {
    let src = Record::new().with("ID", "1").with("s", v);
    m.inbound(&src, &NoLookup)
        .map(|m| m.record.get("v").clone())
        .map_err(|e| e.to_string())
}

fn outbound(m: &Mapper, v: impl Into<Value>) -> Result<Value, String> {
    let rec = Record::new().with("id", "1").with("v", v);
    m.outbound(&rec, &NoLookup)
        .map(|m| m.record.get("s").clone())
        .map_err(|e| e.to_string())
}

#[test]
fn trim_removes_ideographic_space() {
    let m = mapper("text", "convert: [trim]");
    assert_eq!(
        inbound(&m, "\u{3000} 华为 \u{3000}\t").unwrap(),
        Value::from("华为")
    );
    assert_eq!(outbound(&m, " 华为 ").unwrap(), Value::from("华为"));
}

#[test]
fn upper_and_lower() {
    let m = mapper("text", "convert: [upper]");
    assert_eq!(inbound(&m, "abc-ä").unwrap(), Value::from("ABC-Ä"));
    assert_eq!(outbound(&m, "abc").unwrap(), Value::from("ABC"));
    let m = mapper("text", "convert: [lower]");
    assert_eq!(inbound(&m, "ABC").unwrap(), Value::from("abc"));
    assert_eq!(outbound(&m, "ABC").unwrap(), Value::from("abc"));
}

#[test]
fn halfwidth_turns_full_width_ascii_into_ascii() {
    let m = mapper("text", "convert: [halfwidth]");
    assert_eq!(inbound(&m, "ＡＢＣ１２３").unwrap(), Value::from("ABC123"));
    assert_eq!(
        inbound(&m, "华为（深圳）\u{3000}ｔｅｌ：０７５５").unwrap(),
        Value::from("华为(深圳) tel:0755")
    );
    assert_eq!(outbound(&m, "ＡＢＣ").unwrap(), Value::from("ABC"));
    // Every full-width form maps to the ASCII character 0xFEE0 below it.
    for c in '\u{FF01}'..='\u{FF5E}' {
        let h = halfwidth(&c.to_string());
        assert_eq!(h.chars().next().unwrap() as u32, c as u32 - 0xFEE0);
    }
    // The full-width comma is an ASCII form; the ideographic full stop and comma are not.
    assert_eq!(halfwidth("全角，句号。、"), "全角,句号。、");
}

#[test]
fn strip_removes_listed_characters() {
    let m = mapper("text", "convert: [{strip: \"*#\"}]");
    assert_eq!(
        inbound(&m, "*华为#技术**").unwrap(),
        Value::from("华为技术")
    );
    assert_eq!(outbound(&m, "A#B").unwrap(), Value::from("AB"));
}

#[test]
fn max_chars_counts_characters_not_bytes() {
    let m = mapper("text", "convert: [{max_chars: {max: 4}}]");
    // 4 characters, 12 bytes: fits.
    assert_eq!(inbound(&m, "北京大学").unwrap(), Value::from("北京大学"));
    let e = inbound(&m, "北京大学医").unwrap_err();
    assert!(
        e.contains("5 characters") && e.contains("limit of 4"),
        "{e}"
    );
    let e = outbound(&m, "北京大学医").unwrap_err();
    assert!(e.contains("5 characters"), "{e}");

    let m = mapper("text", "convert: [{max_chars: {max: 4, policy: truncate}}]");
    let src = Record::new().with("ID", "1").with("s", "北京大学医学部");
    let out = m.inbound(&src, &NoLookup).unwrap();
    assert_eq!(out.record.get("v"), &Value::from("北京大学"));
    assert_eq!(out.warnings.len(), 1);
    assert!(
        out.warnings[0].contains("7 characters"),
        "{:?}",
        out.warnings
    );
}

#[test]
fn scale_pads_and_rounds_half_up() {
    let m = mapper("decimal(18,2)", "convert: [{scale: 2}]");
    assert_eq!(inbound(&m, "100").unwrap().to_string(), "100.00");
    assert_eq!(inbound(&m, 100i64).unwrap(), dec("100.00"));
    assert_eq!(inbound(&m, "1.005").unwrap(), dec("1.01"));
    assert_eq!(inbound(&m, "-1.005").unwrap(), dec("-1.01"));
    assert_eq!(inbound(&m, "2.344").unwrap(), dec("2.34"));
    assert_eq!(outbound(&m, dec("7")).unwrap().to_string(), "7.00");
    let e = inbound(&m, "一百").unwrap_err();
    assert!(e.contains("`一百`") && e.contains("not a number"), "{e}");
    assert_eq!(inbound(&m, "").unwrap(), Value::Null);
}

#[test]
fn unit_converts_fen_and_yuan_exactly() {
    let m = mapper("decimal(18,2)", "convert: [{unit: 0.01}]");
    assert_eq!(inbound(&m, 12345i64).unwrap(), dec("123.45"));
    assert_eq!(inbound(&m, "1").unwrap(), dec("0.01"));
    assert_eq!(outbound(&m, dec("123.45")).unwrap(), dec("12345"));
    assert_eq!(outbound(&m, dec("0.10")).unwrap(), dec("10"));
    // 万元 (ten thousand yuan) to yuan and back.
    let m = mapper("decimal(18,2)", "convert: [{unit: 10000}]");
    assert_eq!(inbound(&m, "1.2345").unwrap(), dec("12345.00"));
    assert_eq!(outbound(&m, dec("12345.00")).unwrap(), dec("1.2345"));
    assert!(
        try_mapper("decimal", "convert: [{unit: 0}]")
            .unwrap_err()
            .contains("unit: 0")
    );
}

#[test]
fn date_parses_and_formats() {
    let m = mapper("date", "convert: [{date: \"%Y%m%d\"}]");
    let d = inbound(&m, "20240229").unwrap();
    assert_eq!(d.to_string(), "2024-02-29");
    assert_eq!(inbound(&m, 20240229i64).unwrap(), d);
    assert_eq!(outbound(&m, d).unwrap(), Value::from("20240229"));
    let e = inbound(&m, "20240230").unwrap_err();
    assert!(e.contains("%Y%m%d") && e.contains("20240331"), "{e}");
    let e = try_mapper("date", "convert: [{date: \"%Q\"}]").unwrap_err();
    assert!(e.contains("not a valid date format"), "{e}");
}

#[test]
fn datetime_reads_local_time_in_zone_and_keeps_given_offsets() {
    let m = mapper(
        "datetime",
        "convert: [{datetime: {format: \"%Y-%m-%d %H:%M:%S\", tz: Asia/Shanghai}}]",
    );
    let t = inbound(&m, "2024-01-01 08:00:00").unwrap();
    assert_eq!(t.to_string(), "2024-01-01T08:00:00+08:00");
    assert_eq!(outbound(&m, t).unwrap(), Value::from("2024-01-01 08:00:00"));
    // An instant in another offset is written in Shanghai time.
    let utc =
        Value::DateTime(chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z").unwrap());
    assert_eq!(
        outbound(&m, utc).unwrap(),
        Value::from("2024-01-01 08:00:00")
    );

    let m = mapper(
        "datetime",
        "convert: [{datetime: {format: \"%Y-%m-%d %H:%M:%S%:z\"}}]",
    );
    let t = inbound(&m, "2024-01-01 08:00:00+09:00").unwrap();
    assert_eq!(t.to_string(), "2024-01-01T08:00:00+09:00");
    // No zone given: UTC.
    assert_eq!(
        outbound(&m, t).unwrap(),
        Value::from("2023-12-31 23:00:00+00:00")
    );
    let m = mapper(
        "datetime",
        "convert: [{datetime: {format: \"%Y-%m-%d %H:%M\"}}]",
    );
    assert_eq!(
        inbound(&m, "2024-06-01 12:30").unwrap().to_string(),
        "2024-06-01T12:30:00+00:00"
    );
}

#[test]
fn decimal_integer_and_text_parse_and_back() {
    let m = mapper("decimal(18,4)", "convert: [decimal]");
    assert_eq!(inbound(&m, " 12.3400 ").unwrap(), dec("12.3400"));
    assert_eq!(outbound(&m, dec("12.3400")).unwrap(), dec("12.3400"));
    assert!(inbound(&m, "12,34").unwrap_err().contains("not a number"));

    let m = mapper("integer", "convert: [integer]");
    assert_eq!(inbound(&m, "42").unwrap(), Value::Int(42));
    assert_eq!(inbound(&m, dec("42.0")).unwrap(), Value::Int(42));
    assert!(inbound(&m, "4.2").unwrap_err().contains("whole number"));
    assert_eq!(outbound(&m, 42i64).unwrap(), Value::Int(42));

    let m = mapper("text", "convert: [text]");
    assert_eq!(inbound(&m, 1001i64).unwrap(), Value::from("1001"));
    assert_eq!(inbound(&m, dec("1.50")).unwrap(), Value::from("1.50"));
    assert_eq!(outbound(&m, "1001").unwrap(), Value::Int(1001));
    assert_eq!(outbound(&m, "1.50").unwrap(), dec("1.50"));
    assert_eq!(outbound(&m, "007").unwrap(), Value::from("007"));
}

#[test]
fn converters_chain_in_order_and_invert_in_reverse() {
    // Fen as text → integer → yuan → two decimals; back: two decimals → fen → integer.
    let m = mapper(
        "decimal(18,2)",
        "convert: [trim, integer, {unit: 0.01}, {scale: 2}]",
    );
    assert_eq!(inbound(&m, " 500 ").unwrap().to_string(), "5.00");
    assert_eq!(outbound(&m, dec("5.00")).unwrap(), Value::Int(500));
    // 5.005 yuan scales to 5.01, i.e. 501 fen: the scale's inverse runs first outbound.
    assert_eq!(outbound(&m, dec("5.005")).unwrap(), Value::Int(501));
}

#[test]
fn default_applies_to_blank_values_only() {
    let m = mapper("text", "default: 未知");
    assert_eq!(inbound(&m, "").unwrap(), Value::from("未知"));
    assert_eq!(inbound(&m, Value::Null).unwrap(), Value::from("未知"));
    assert_eq!(inbound(&m, "x").unwrap(), Value::from("x"));
    let m = mapper("decimal(18,2)", "default: 0, convert: [{scale: 2}]");
    assert_eq!(inbound(&m, "").unwrap().to_string(), "0.00");
}

#[test]
fn expressions_both_ways() {
    let m = mapper(
        "decimal(18,2)",
        "expr: 'round2(dec(src.s) * 1.13)', expr_out: 'rec.v / 1.13'",
    );
    assert_eq!(inbound(&m, "100.50").unwrap(), dec("113.57"));
    assert_eq!(outbound(&m, dec("113.00")).unwrap(), dec("100"));
    let e = inbound(&m, "abc").unwrap_err();
    assert!(
        e.contains("inbound expression failed") && e.contains("abc"),
        "{e}"
    );
}

#[test]
fn dictionary_type_is_enforced_after_mapping() {
    let m = mapper("decimal(18,2)", "convert: [trim]");
    // Text that is a number is brought into the type; three decimals do not fit (18,2).
    assert_eq!(inbound(&m, "12.5").unwrap(), dec("12.5"));
    let e = inbound(&m, "12.345").unwrap_err();
    assert!(e.contains("converter"), "{e}");
    let m = mapper("date", "convert: [trim]");
    assert!(inbound(&m, "not a date").is_err());
}

#[test]
fn mask_keeps_first_and_last_four() {
    assert_eq!(mask("91310000MA1FL8XQ3B"), "9131**********XQ3B");
    assert_eq!(mask("13812345678"), "1381***5678");
    assert_eq!(mask("12345678"), "********");
    assert_eq!(mask("上海市浦东新区世纪大道100号"), "上海市浦*******100号");
}
