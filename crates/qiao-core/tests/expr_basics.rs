use qiao_core::expr::{Expr, dynamic_to_value, value_to_dynamic};
use qiao_core::{Record, Value};
use rust_decimal::Decimal;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn eval(src: &str, rec: &Record) -> Result<Value, qiao_core::expr::ExprError> {
    Expr::compile(src)?.eval(&[("rec", rec)])
}

#[test]
fn decimal_literals_are_exact() {
    let v = eval("100.50 * 1.13", &Record::new()).unwrap();
    assert_eq!(v, Value::Decimal(dec("113.5650")));
    assert_eq!(v.to_string(), "113.5650");
    // 0.1 + 0.2 is the classic float failure.
    assert_eq!(
        eval("0.1 + 0.2 == 0.3", &Record::new()).unwrap(),
        Value::Bool(true)
    );
}

#[test]
fn record_fields_are_readable_and_mixed_with_integers() {
    let rec = Record::new()
        .with("amount", dec("100.50"))
        .with("qty", 3i64)
        .with("name", "华为");
    assert_eq!(
        eval("rec.amount * rec.qty", &rec).unwrap(),
        Value::Decimal(dec("301.50"))
    );
    assert_eq!(eval("rec.amount > 100", &rec).unwrap(), Value::Bool(true));
    assert_eq!(eval("rec.missing == ()", &rec).unwrap(), Value::Bool(true));
    let src = Record::new().with("cust_name", " 华为 ");
    let e = Expr::compile("trim(src.cust_name)").unwrap();
    assert_eq!(e.eval(&[("src", &src)]).unwrap(), Value::from("华为"));
}

#[test]
fn helpers_round_half_up_and_count_chars() {
    let r = Record::new()
        .with("x", dec("2.345"))
        .with("s", "上海市浦东新区");
    assert_eq!(
        eval("round2(rec.x)", &r).unwrap(),
        Value::Decimal(dec("2.35"))
    );
    // Rhai's own round is banker's; ours must be half-up.
    assert_eq!(eval("round(2.5, 0)", &r).unwrap(), Value::Decimal(dec("3")));
    assert_eq!(
        eval("round(-2.345, 2)", &r).unwrap(),
        Value::Decimal(dec("-2.35"))
    );
    assert_eq!(eval("len(rec.s)", &r).unwrap(), Value::Int(7));
    assert_eq!(
        eval("substr(rec.s, 0, 3)", &r).unwrap(),
        Value::from("上海市")
    );
    assert_eq!(
        eval("substr(rec.s, 3)", &r).unwrap(),
        Value::from("浦东新区")
    );
    assert_eq!(
        eval("contains(rec.s, \"浦东\")", &r).unwrap(),
        Value::Bool(true)
    );
    assert_eq!(eval("upper(\"abc\")", &r).unwrap(), Value::from("ABC"));
    assert_eq!(eval("lower(\"ABC\")", &r).unwrap(), Value::from("abc"));
    assert_eq!(
        eval("trim(\"\u{3000}华为\u{3000}\")", &r).unwrap(),
        Value::from("华为")
    );
    assert_eq!(
        eval("concat(rec.s, \" \", rec.none, 12)", &r).unwrap(),
        Value::from("上海市浦东新区 12")
    );
    assert_eq!(
        eval("dec(\"12.30\") + 1", &r).unwrap(),
        Value::Decimal(dec("13.30"))
    );
    assert_eq!(eval("is_blank(rec.none)", &r).unwrap(), Value::Bool(true));
}

#[test]
fn misspelt_variable_is_a_compile_error_with_position() {
    let err = Expr::compile("rec.amount > 0 &&\n  recc.qty > 1").unwrap_err();
    assert_eq!(err.line, 2);
    assert_eq!(err.column, 3);
    assert!(err.message.contains("recc"), "{err}");
    assert!(err.to_string().contains("line 2, column 3"), "{err}");
}

#[test]
fn syntax_error_has_position() {
    let err = Expr::compile("rec.amount * (1.13").unwrap_err();
    assert_eq!(err.line, 1);
    assert!(err.column > 0, "{err}");
}

#[test]
fn eval_is_disabled() {
    let err = Expr::compile("eval(\"1\")").unwrap_err();
    assert_eq!(err.line, 1);
}

#[test]
fn runaway_loop_stops_at_operation_limit() {
    let e = Expr::compile("let x = 0; loop { x += 1; } x").unwrap();
    let err = e.eval(&[]).unwrap_err();
    assert!(err.message.contains("Too many operations"), "{err}");
    assert!(err.line >= 1);
}

#[test]
fn runtime_error_has_position() {
    let e = Expr::compile("let a = 1;\nrec.amount / 0").unwrap();
    let rec = Record::new().with("amount", dec("1.5"));
    let err = e.eval(&[("rec", &rec)]).unwrap_err();
    assert_eq!(err.line, 2, "{err}");
}

#[test]
fn eval_bool_rejects_non_bool() {
    let e = Expr::compile("rec.amount").unwrap();
    let rec = Record::new().with("amount", 1i64);
    let err = e.eval_bool(&[("rec", &rec)]).unwrap_err();
    assert!(err.message.contains("true or false"), "{err}");
}

#[test]
fn custom_variables() {
    let e = Expr::compile_with_vars("a.x + b.x", &["a", "b"]).unwrap();
    let a = Record::new().with("x", 1i64);
    let b = Record::new().with("x", 2i64);
    assert_eq!(e.eval(&[("a", &a), ("b", &b)]).unwrap(), Value::Int(3));
    assert!(Expr::compile_with_vars("rec.x", &["a"]).is_err());
}

#[test]
fn field_refs_lists_fields_outside_strings() {
    let e = Expr::compile(
        "rec.amount > 0 && rec.tax_rate != \"rec.fake\" // rec.comment\n && src.a == rec.amount",
    )
    .unwrap();
    assert_eq!(e.field_refs("rec"), vec!["amount", "tax_rate"]);
    assert_eq!(e.field_refs("src"), vec!["a"]);
}

#[test]
fn values_round_trip_through_dynamic() {
    let mut m = indexmap::IndexMap::new();
    m.insert("q".to_string(), Value::Int(2));
    let v = Value::List(vec![
        Value::Null,
        Value::Bool(true),
        Value::Int(-7),
        Value::Decimal(dec("1.10")),
        Value::from("文本"),
        Value::Map(m),
    ]);
    assert_eq!(dynamic_to_value(value_to_dynamic(&v)).unwrap(), v);
    let d = Value::Date(chrono::NaiveDate::from_ymd_opt(2024, 3, 1).unwrap());
    assert_eq!(
        dynamic_to_value(value_to_dynamic(&d)).unwrap(),
        Value::from("2024-03-01")
    );
}

#[test]
fn huge_strings_are_refused() {
    let e = Expr::compile("let s = \"xxxxxxxxxx\"; loop { s += s; }").unwrap();
    assert!(e.eval(&[]).is_err());
}
