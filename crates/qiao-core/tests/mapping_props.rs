//! Round-trip properties of the mapping engine: what goes out comes back.

use proptest::prelude::*;
use qiao_core::config::Config;
use qiao_core::mapping::{Mapper, NoLookup, halfwidth};
use qiao_core::{Record, Value};
use rust_decimal::Decimal;

const YAML: &str = r#"
entities:
  t:
    key: [id]
    fields:
      id: { type: text }
      yuan: { type: "decimal(28,2)" }
      wan: { type: "decimal(28,6)" }
      price: { type: "decimal(28,4)" }
      address: { type: text }
      area: { type: text }
      number: { type: text }
      day: { type: date }
      at: { type: datetime }
mappings:
  m:
    system: s
    entity: t
    object: o
    fields:
      id: { from: ID }
      yuan: { from: FEN, convert: [{unit: 0.01}] }
      wan: { from: YUAN, convert: [{unit: 0.0001}] }
      price: { from: PRICE, convert: [{scale: 4}] }
      address: { from: [P, C, S], join: "|" }
      area: { from: TEL, part: { sep: "-", index: 0 } }
      number: { from: TEL, part: { sep: "-", index: 1 } }
      day: { from: D, convert: [{date: "%Y%m%d"}] }
      at: { from: T, convert: [{datetime: {format: "%Y-%m-%d %H:%M:%S", tz: Asia/Shanghai}}] }
"#;

/// Compiled once: the properties run hundreds of cases each.
fn mapper() -> &'static Mapper {
    static M: std::sync::OnceLock<Mapper> = std::sync::OnceLock::new();
    M.get_or_init(|| {
        let cfg: Config = serde_saphyr::from_str(YAML).unwrap();
        Mapper::new(&cfg, "m").unwrap()
    })
}

fn base() -> Record {
    Record::new().with("ID", "k")
}

/// Non-blank text without the separators the mapping uses.
fn part() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 上海市浦东新区]{0,12}[a-zA-Z0-9上海市浦东新区]"
}

proptest! {
    #[test]
    fn fen_to_yuan_and_back_is_exact(fen in -1_000_000_000_000_000i64..1_000_000_000_000_000i64) {
        let m = mapper();
        let c = m.inbound(&base().with("FEN", fen), &NoLookup).unwrap().record;
        let yuan = match c.get("yuan") { Value::Decimal(d) => *d, other => panic!("{other:?}") };
        prop_assert_eq!(yuan * Decimal::from(100), Decimal::from(fen));
        let back = m.outbound(&c, &NoLookup).unwrap().record;
        prop_assert_eq!(back.get("FEN"), &Value::Decimal(Decimal::from(fen)));
    }

    #[test]
    fn unit_round_trip_keeps_the_number(mantissa in -10_000_000_000i64..10_000_000_000i64, scale in 0u32..3) {
        let m = mapper();
        let x = Decimal::new(mantissa, scale);
        let c = m.inbound(&base().with("YUAN", x), &NoLookup).unwrap().record;
        let back = m.outbound(&c, &NoLookup).unwrap().record;
        match back.get("YUAN") {
            Value::Decimal(d) => prop_assert_eq!(*d, x),
            other => prop_assert!(false, "{other:?}"),
        }
    }

    #[test]
    fn scale_is_exact_and_half_up(mantissa in -10_000_000_000_000i64..10_000_000_000_000i64, scale in 0u32..8) {
        let m = mapper();
        let x = Decimal::new(mantissa, scale);
        let c = m.inbound(&base().with("PRICE", x.to_string()), &NoLookup).unwrap().record;
        let Value::Decimal(p) = c.get("price") else { panic!("not a decimal") };
        prop_assert_eq!(p.scale(), 4);
        let diff = (*p - x).abs();
        prop_assert!(diff <= Decimal::new(5, 5), "{x} → {p}");
        if diff == Decimal::new(5, 5) {
            // A midpoint goes away from zero.
            prop_assert!(p.abs() > x.abs());
        }
    }

    #[test]
    fn join_then_split_gives_the_parts_back(p in part(), c in part(), s in part()) {
        let m = mapper();
        let src = base().with("P", p.clone()).with("C", c.clone()).with("S", s.clone());
        let canonical = m.inbound(&src, &NoLookup).unwrap().record;
        prop_assert_eq!(canonical.get("address"), &Value::Text(format!("{p}|{c}|{s}")));
        let back = m.outbound(&canonical, &NoLookup).unwrap().record;
        prop_assert_eq!(back.get("P"), &Value::Text(p));
        prop_assert_eq!(back.get("C"), &Value::Text(c));
        prop_assert_eq!(back.get("S"), &Value::Text(s));
    }

    #[test]
    fn split_then_join_gives_the_field_back(area in "[0-9]{3,4}", number in "[0-9]{7,8}") {
        let m = mapper();
        let tel = format!("{area}-{number}");
        let canonical = m.inbound(&base().with("TEL", tel.clone()), &NoLookup).unwrap().record;
        prop_assert_eq!(canonical.get("area"), &Value::Text(area));
        prop_assert_eq!(canonical.get("number"), &Value::Text(number));
        let back = m.outbound(&canonical, &NoLookup).unwrap().record;
        prop_assert_eq!(back.get("TEL"), &Value::Text(tel));
    }

    #[test]
    fn dates_and_times_round_trip(days in 0i64..80_000, secs in 0u32..86_400) {
        let m = mapper();
        let day = chrono::NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + chrono::Duration::days(days);
        let d = day.format("%Y%m%d").to_string();
        let t = day.and_hms_opt(secs / 3600, secs / 60 % 60, secs % 60).unwrap()
            .format("%Y-%m-%d %H:%M:%S").to_string();
        let src = base().with("D", d.clone()).with("T", t.clone());
        let canonical = m.inbound(&src, &NoLookup).unwrap().record;
        prop_assert_eq!(canonical.get("day"), &Value::Date(day));
        let back = m.outbound(&canonical, &NoLookup).unwrap().record;
        prop_assert_eq!(back.get("D"), &Value::Text(d));
        prop_assert_eq!(back.get("T"), &Value::Text(t));
    }

    #[test]
    fn halfwidth_maps_full_width_ascii_exactly(ascii in "[!-~]{0,20}") {
        let full: String = ascii.chars().map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap()).collect();
        prop_assert_eq!(halfwidth(&full), ascii.clone());
        prop_assert_eq!(halfwidth(&ascii), ascii);
    }
}
