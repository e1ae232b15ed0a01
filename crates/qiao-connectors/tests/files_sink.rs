//! The files sink: atomic content-named files, idempotent rewrites, encodings, and files
//! that the files source reads back.

use qiao_connectors::files::{Encoding, FileOptions, Format, open_sink, open_source};
use qiao_connectors::{ConnectorError, SinkError, Source};
use qiao_core::{Change, Op, Record, Value};
use std::fs;
use std::path::Path;

fn opts(dir: &Path, format: Format, encoding: Encoding) -> FileOptions {
    FileOptions {
        system: "finance".into(),
        dir: dir.to_path_buf(),
        object: "invoices".into(),
        format,
        encoding,
        delimiter: b',',
        record_element: None,
        key_columns: vec!["id".into()],
        batch_size: 100,
        checkpoint: None,
    }
}

fn batch() -> Vec<Change> {
    let lines = Value::List(vec![
        Value::Map(
            Record::new()
                .with("item", "服务费")
                .with("amount", "100.00".parse::<rust_decimal::Decimal>().unwrap())
                .fields,
        ),
        Value::Map(
            Record::new()
                .with("item", "A&B <x>")
                .with("amount", "0.10".parse::<rust_decimal::Decimal>().unwrap())
                .fields,
        ),
    ]);
    vec![
        Change::upsert(
            "1",
            Record::new()
                .with("id", "1")
                .with("buyer", "北京甲公司")
                .with("total", "100.10".parse::<rust_decimal::Decimal>().unwrap())
                .with("memo", "line1\r\nline2, \"quoted\"")
                .with("lines", lines),
        ),
        Change::upsert("2", Record::new().with("id", "2").with("note", Value::Null)),
    ]
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

async fn read_back(dir: &Path, format: Format, encoding: Encoding) -> Vec<Change> {
    let mut o = opts(dir, format, encoding);
    o.object = format!("invoices-*.{}", format.extension());
    o.record_element = Some("invoices".into());
    let mut src: Box<dyn Source> = open_source(o).await.unwrap();
    let mut out = Vec::new();
    while let Some(b) = src.next_batch().await.unwrap() {
        out.extend(b.changes);
        src.committed(&b.checkpoint.unwrap()).await.unwrap();
    }
    out
}

#[tokio::test]
async fn one_atomic_content_named_file_per_batch_rewritten_idempotently() {
    for format in [Format::Csv, Format::Jsonl, Format::Xml] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut sink = open_sink(opts(d, format, Encoding::Utf8)).await.unwrap();
        sink.write(&batch()).await.unwrap();
        let names = files_in(d);
        assert_eq!(names.len(), 1, "{names:?}");
        let name = &names[0];
        let ext = format.extension();
        let hash = name
            .strip_prefix("invoices-")
            .unwrap()
            .strip_suffix(&format!(".{ext}"))
            .unwrap();
        assert!(
            hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()),
            "{name}"
        );
        let bytes = fs::read(d.join(name)).unwrap();

        // A re-delivered batch rewrites the same file with the same bytes.
        sink.write(&batch()).await.unwrap();
        assert_eq!(files_in(d), names);
        assert_eq!(fs::read(d.join(name)).unwrap(), bytes);
        // Another batch is another file; an empty batch writes nothing.
        sink.write(&batch()[1..]).await.unwrap();
        sink.write(&[]).await.unwrap();
        let names = files_in(d);
        assert_eq!(names.len(), 2);
        assert!(names.iter().all(|n| !n.ends_with(".tmp")));
        assert!(matches!(sink.keys().await, Err(ConnectorError::Config(_))));
    }
}

#[tokio::test]
async fn csv_has_union_header_and_round_trips_through_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut sink = open_sink(opts(d, Format::Csv, Encoding::Utf8))
        .await
        .unwrap();
    sink.write(&batch()).await.unwrap();
    let text = fs::read_to_string(d.join(&files_in(d)[0])).unwrap();
    assert!(
        text.starts_with("id,buyer,total,memo,lines,note\r\n"),
        "{text}"
    );
    assert!(!text.contains("_op"), "no _op column without deletes");
    let back = read_back(d, Format::Csv, Encoding::Utf8).await;
    assert_eq!(back.len(), 2);
    assert_eq!(
        back[0].record.get("memo"),
        &Value::from("line1\r\nline2, \"quoted\"")
    );
    assert_eq!(back[0].record.get("total"), &Value::from("100.10"));
    assert_eq!(back[1].record.get("buyer"), &Value::Null);
}

#[tokio::test]
async fn deletes_carry_an_op_field_in_every_format() {
    for format in [Format::Csv, Format::Jsonl, Format::Xml] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut sink = open_sink(opts(d, format, Encoding::Utf8)).await.unwrap();
        let mut changes = batch();
        changes.push(Change::delete("3", Record::new().with("id", "3")));
        sink.write(&changes).await.unwrap();
        let text = fs::read_to_string(d.join(&files_in(d)[0])).unwrap();
        assert!(text.contains("_op"), "{text}");
        let back = read_back(d, format, Encoding::Utf8).await;
        let ops: Vec<Op> = back.iter().map(|c| c.op).collect();
        assert_eq!(ops, [Op::Upsert, Op::Upsert, Op::Delete], "{format:?}");
        assert_eq!(back[2].key, "3");
        assert!(!back[0].record.fields.contains_key("_op"));

        // A record that has its own `_op` field cannot be told apart from the marker.
        let mut clash = changes.clone();
        clash[1].record.set("_op", "x");
        let err = sink.write(&clash).await.unwrap_err();
        assert!(matches!(err, SinkError::Record { index: 1, .. }), "{err:?}");
    }
}

#[tokio::test]
async fn jsonl_and_xml_keep_values_and_lists() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut sink = open_sink(opts(d, Format::Jsonl, Encoding::Utf8))
        .await
        .unwrap();
    sink.write(&batch()).await.unwrap();
    let text = fs::read_to_string(d.join(&files_in(d)[0])).unwrap();
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with(r#"{"id":"1","buyer":"北京甲公司","total":"100.10""#),
        "{first}"
    );

    let xdir = tempfile::tempdir().unwrap();
    let x = xdir.path();
    let mut sink = open_sink(opts(x, Format::Xml, Encoding::Utf8))
        .await
        .unwrap();
    sink.write(&batch()).await.unwrap();
    let xml = fs::read_to_string(x.join(&files_in(x)[0])).unwrap();
    assert!(
        xml.contains("<records>") && xml.contains("<invoices>"),
        "{xml}"
    );
    assert!(
        xml.contains("A&amp;B &lt;x&gt;") && xml.contains("&#13;"),
        "{xml}"
    );
    let back = read_back(x, Format::Xml, Encoding::Utf8).await;
    let r = &back[0].record;
    assert_eq!(r.get("memo"), &Value::from("line1\r\nline2, \"quoted\""));
    let Value::List(lines) = r.get("lines") else {
        panic!("{:?}", r.get("lines"))
    };
    assert_eq!(lines.len(), 2);
    let Value::Map(l2) = &lines[1] else { panic!() };
    assert_eq!(l2["item"], Value::from("A&B <x>"));
    assert_eq!(back[1].record.get("note"), &Value::Null);

    let mut bad = batch();
    bad[0].record.set("金额 (元)", "1");
    let mut sink = open_sink(opts(x, Format::Xml, Encoding::Utf8))
        .await
        .unwrap();
    let err = sink.write(&bad).await.unwrap_err();
    assert!(
        matches!(&err, SinkError::Record { index: 0, message } if message.contains("金额 (元)")),
        "{err:?}"
    );
}

#[tokio::test]
async fn gb18030_round_trip_and_unrepresentable_characters() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut changes = batch();
    changes[1].record.set("note", "𠀀 and 😀");
    let mut sink = open_sink(opts(d, Format::Csv, Encoding::Gb18030))
        .await
        .unwrap();
    sink.write(&changes).await.unwrap();
    let bytes = fs::read(d.join(&files_in(d)[0])).unwrap();
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "the file is GB18030, not UTF-8"
    );
    let (text, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(&bytes);
    assert!(!had_errors);
    assert!(text.contains("北京甲公司") && text.contains("𠀀 and 😀"));
    let back = read_back(d, Format::Csv, Encoding::Gb18030).await;
    assert_eq!(back[0].record.get("buyer"), &Value::from("北京甲公司"));
    assert_eq!(back[1].record.get("note"), &Value::from("𠀀 and 😀"));

    // Strict GBK (for software that cannot read four-byte GB18030) refuses the emoji.
    let gdir = tempfile::tempdir().unwrap();
    let mut sink = open_sink(opts(gdir.path(), Format::Csv, Encoding::Gbk))
        .await
        .unwrap();
    let err = sink.write(&changes).await.unwrap_err();
    let SinkError::Record { index, message } = err else {
        panic!("{err:?}")
    };
    assert_eq!(index, 1);
    assert!(
        message.contains("`note`") && message.contains("key `2`"),
        "{message}"
    );
    assert!(message.contains("GBK cannot represent"), "{message}");
    assert!(
        files_in(gdir.path()).is_empty(),
        "nothing is written for a refused batch"
    );
    sink.write(&batch()).await.unwrap();
    let gbk = fs::read(gdir.path().join(&files_in(gdir.path())[0])).unwrap();
    let (text, _, had_errors) = encoding_rs::GBK.decode(&gbk);
    assert!(!had_errors && text.contains("北京甲公司"));

    // XML cannot carry control characters at all.
    let xdir = tempfile::tempdir().unwrap();
    let mut sink = open_sink(opts(xdir.path(), Format::Xml, Encoding::Gb18030))
        .await
        .unwrap();
    let mut ctl = batch();
    ctl[1].record.set("note", "bell\u{7}");
    let err = sink.write(&ctl).await.unwrap_err();
    assert!(
        matches!(&err, SinkError::Record { index: 1, message } if message.contains("U+0007")),
        "{err:?}"
    );
    sink.write(&batch()).await.unwrap();
    let bytes = fs::read(xdir.path().join(&files_in(xdir.path())[0])).unwrap();
    assert!(bytes.starts_with(b"<?xml version=\"1.0\" encoding=\"GB18030\"?>"));
}

#[tokio::test]
async fn bad_sink_options_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(
        open_sink(opts(&d.join("missing"), Format::Csv, Encoding::Utf8))
            .await
            .is_err()
    );
    let mut o = opts(d, Format::Csv, Encoding::Utf8);
    o.object = "../escape".into();
    assert!(matches!(open_sink(o).await, Err(ConnectorError::Config(_))));
    let mut o = opts(d, Format::Xml, Encoding::Utf8);
    o.record_element = Some("1bad".into());
    assert!(matches!(open_sink(o).await, Err(ConnectorError::Config(_))));
}
