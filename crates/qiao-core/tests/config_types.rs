//! The data-dictionary types: parsing, conformance and lossless coercion.

use chrono::NaiveDate;
use qiao_core::Value;
use qiao_core::types::FieldType;
use rust_decimal::Decimal;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn dec(p: u32, s: u32) -> FieldType {
    FieldType::Decimal {
        precision: p,
        scale: s,
    }
}

#[test]
fn parses_every_form() {
    assert_eq!(
        FieldType::parse("text").unwrap(),
        FieldType::Text { max_chars: None }
    );
    assert_eq!(
        FieldType::parse(" text(100) ").unwrap(),
        FieldType::Text {
            max_chars: Some(100)
        }
    );
    assert_eq!(FieldType::parse("integer").unwrap(), FieldType::Integer);
    assert_eq!(FieldType::parse("bool").unwrap(), FieldType::Bool);
    assert_eq!(FieldType::parse("decimal(18,2)").unwrap(), dec(18, 2));
    assert_eq!(FieldType::parse("decimal( 18 , 2 )").unwrap(), dec(18, 2));
    assert_eq!(FieldType::parse("decimal(10)").unwrap(), dec(10, 0));
    assert_eq!(FieldType::parse("decimal").unwrap(), dec(28, 10));
    assert_eq!(FieldType::parse("date").unwrap(), FieldType::Date);
    assert_eq!(FieldType::parse("datetime").unwrap(), FieldType::DateTime);
    assert_eq!(
        FieldType::parse("enum[a, b,c]").unwrap(),
        FieldType::Enum(vec!["a".into(), "b".into(), "c".into()])
    );
    assert_eq!(
        FieldType::parse("enum[个人，企业、政府]").unwrap(),
        FieldType::Enum(vec!["个人".into(), "企业".into(), "政府".into()])
    );
    assert_eq!(
        FieldType::parse("list<invoice_line>").unwrap(),
        FieldType::List("invoice_line".into())
    );
}

#[test]
fn display_round_trips() {
    for s in [
        "text",
        "text(100)",
        "integer",
        "bool",
        "decimal(18,2)",
        "date",
        "datetime",
        "enum[个人,企业]",
        "list<line>",
    ] {
        let t = FieldType::parse(s).unwrap();
        assert_eq!(t.to_string(), s);
        assert_eq!(FieldType::parse(&t.to_string()).unwrap(), t);
    }
}

#[test]
fn rejects_bad_types_with_fix() {
    for (bad, needle) in [
        ("txet", "unknown type"),
        ("text(0)", "length 0"),
        ("text(abc)", "whole number"),
        ("decimal(2,3)", "larger than precision"),
        ("decimal(40,2)", "1 to 28"),
        ("decimal(1,2,3)", "decimal(18,2)"),
        ("enum[a,,b]", "empty"),
        ("enum[a,a]", "twice"),
        ("list<>", "name of an entity"),
        ("", "unknown type"),
        ("text(", "unknown type"),
    ] {
        let e = FieldType::parse(bad).unwrap_err();
        assert!(e.contains(needle), "{bad}: {e}");
    }
}

#[test]
fn null_always_conforms() {
    for s in ["text(1)", "integer", "decimal(3,1)", "enum[x]", "date"] {
        assert!(FieldType::parse(s).unwrap().conform(&Value::Null).is_ok());
    }
}

#[test]
fn text_length_counts_characters_not_bytes() {
    let t = FieldType::parse("text(4)").unwrap();
    assert!(t.conform(&Value::from("北京银行")).is_ok()); // 12 bytes, 4 chars
    let e = t.conform(&Value::from("北京银行股份")).unwrap_err();
    assert!(e.contains("6 characters") && e.contains("max_chars"), "{e}");
}

#[test]
fn decimal_precision_and_scale() {
    let t = dec(5, 2);
    assert!(t.conform(&Value::Decimal(d("999.99"))).is_ok());
    assert!(t.conform(&Value::Decimal(d("-999.99"))).is_ok());
    assert!(t.conform(&Value::Decimal(d("0.5"))).is_ok());
    // Trailing zeros are no extra precision.
    assert!(t.conform(&Value::Decimal(d("1.500"))).is_ok());
    let e = t.conform(&Value::Decimal(d("1.005"))).unwrap_err();
    assert!(e.contains("3 decimals") && e.contains("scale: 2"), "{e}");
    let e = t.conform(&Value::Decimal(d("1000"))).unwrap_err();
    assert!(e.contains("4 digits before the point"), "{e}");
    // An integer is not yet a decimal: coerce makes it one.
    assert!(t.conform(&Value::Int(5)).is_err());
}

#[test]
fn enum_membership() {
    let t = FieldType::parse("enum[个人,企业]").unwrap();
    assert!(t.conform(&Value::from("企业")).is_ok());
    let e = t.conform(&Value::from("公司")).unwrap_err();
    assert!(e.contains("`个人`, `企业`") && e.contains("values:"), "{e}");
    let t = FieldType::parse("enum[active,inactive]").unwrap();
    let e = t.conform(&Value::from("actve")).unwrap_err();
    assert!(e.contains("did you mean `active`"), "{e}");
}

#[test]
fn type_mismatch_names_both_types() {
    let e = FieldType::Date
        .conform(&Value::from("2024-01-01"))
        .unwrap_err();
    assert!(e.contains("text") && e.contains("`date`"), "{e}");
    let l = FieldType::List("line".into());
    assert!(
        l.conform(&Value::List(vec![Value::Map(Default::default())]))
            .is_ok()
    );
    assert!(
        l.conform(&Value::List(vec![Value::Int(1)]))
            .unwrap_err()
            .contains("item 1")
    );
}

#[test]
fn coerce_numbers_exactly() {
    let t = dec(18, 2);
    assert_eq!(t.coerce(Value::Int(100)).unwrap(), Value::Decimal(d("100")));
    assert_eq!(
        t.coerce(Value::from("100.5")).unwrap(),
        Value::Decimal(d("100.5"))
    );
    assert_eq!(
        t.coerce(Value::from(" 100.50 ")).unwrap(),
        Value::Decimal(d("100.50"))
    );
    assert_eq!(t.coerce(Value::from("+3")).unwrap(), Value::Decimal(d("3")));
    assert_eq!(
        t.coerce(Value::from("1.500")).unwrap(),
        Value::Decimal(d("1.50"))
    );
    // The exact text survives: no float in between.
    assert_eq!(
        dec(28, 22)
            .coerce(Value::from("0.1000000000000000055511"))
            .unwrap(),
        Value::Decimal(d("0.1000000000000000055511"))
    );
    let e = t.coerce(Value::from("100.555")).unwrap_err();
    assert!(e.contains("scale: 2"), "{e}");
    let e = t.coerce(Value::from("¥100")).unwrap_err();
    assert!(e.contains("\"¥100\"") && e.contains("strip"), "{e}");
    assert!(t.coerce(Value::Bool(true)).is_err());
}

#[test]
fn coerce_integers() {
    let t = FieldType::Integer;
    assert_eq!(
        t.coerce(Value::Decimal(d("12.00"))).unwrap(),
        Value::Int(12)
    );
    assert_eq!(t.coerce(Value::from("42")).unwrap(), Value::Int(42));
    assert_eq!(t.coerce(Value::from("42.0")).unwrap(), Value::Int(42));
    let e = t.coerce(Value::Decimal(d("12.5"))).unwrap_err();
    assert!(
        e.contains("12.5") && e.contains("losing information"),
        "{e}"
    );
    assert!(t.coerce(Value::from("12.5")).is_err());
    // Whole but beyond i64.
    assert!(
        t.coerce(Value::Decimal(d("100000000000000000000")))
            .is_err()
    );
}

#[test]
fn coerce_bools() {
    let t = FieldType::Bool;
    assert_eq!(t.coerce(Value::Int(1)).unwrap(), Value::Bool(true));
    assert_eq!(t.coerce(Value::Int(0)).unwrap(), Value::Bool(false));
    assert_eq!(t.coerce(Value::from("TRUE")).unwrap(), Value::Bool(true));
    assert_eq!(t.coerce(Value::from("false")).unwrap(), Value::Bool(false));
    assert_eq!(t.coerce(Value::from("0")).unwrap(), Value::Bool(false));
    let e = t.coerce(Value::Int(2)).unwrap_err();
    assert!(e.contains("values:"), "{e}");
    assert!(t.coerce(Value::from("是")).is_err());
}

#[test]
fn coerce_dates() {
    assert_eq!(
        FieldType::Date.coerce(Value::from("2024-02-29")).unwrap(),
        Value::Date(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap())
    );
    let e = FieldType::Date
        .coerce(Value::from("2024/02/29"))
        .unwrap_err();
    assert!(e.contains("converter") && e.contains("date:"), "{e}");
    assert!(FieldType::Date.coerce(Value::from("2023-02-29")).is_err());
    let dt = FieldType::DateTime
        .coerce(Value::from("2024-05-01T08:30:00+08:00"))
        .unwrap();
    assert_eq!(dt.to_string(), "2024-05-01T08:30:00+08:00");
    let e = FieldType::Date.coerce(dt).unwrap_err();
    assert!(e.contains("time of day"), "{e}");
    let e = FieldType::DateTime
        .coerce(Value::from("2024-05-01 08:30:00"))
        .unwrap_err();
    assert!(e.contains("Asia/Shanghai"), "{e}");
}

#[test]
fn coerce_text_and_enums() {
    let t = FieldType::Text { max_chars: None };
    assert_eq!(t.coerce(Value::Int(7)).unwrap(), Value::from("7"));
    assert_eq!(
        t.coerce(Value::Decimal(d("1.50"))).unwrap(),
        Value::from("1.50")
    );
    assert_eq!(t.coerce(Value::from("")).unwrap(), Value::from(""));
    assert!(t.coerce(Value::List(vec![])).is_err());
    let short = FieldType::Text { max_chars: Some(2) };
    assert!(
        short
            .coerce(Value::from("abc"))
            .unwrap_err()
            .contains("max_chars")
    );
    // Numbers do not silently become text for other types.
    assert!(FieldType::Date.coerce(Value::Int(20240101)).is_err());
    let e = FieldType::parse("enum[1,2]").unwrap();
    assert_eq!(e.coerce(Value::Int(2)).unwrap(), Value::from("2"));
    assert_eq!(e.coerce(Value::from(" 1 ")).unwrap(), Value::from("1"));
    assert!(e.coerce(Value::Int(3)).is_err());
}

#[test]
fn blank_is_null_for_non_text() {
    for s in ["integer", "decimal(18,2)", "date", "bool", "enum[a]"] {
        assert_eq!(
            FieldType::parse(s)
                .unwrap()
                .coerce(Value::from("  "))
                .unwrap(),
            Value::Null
        );
    }
    assert_eq!(FieldType::Integer.coerce(Value::Null).unwrap(), Value::Null);
}
