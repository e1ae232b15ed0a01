//! The watched-folder source against real files in temporary folders.

use qiao_connectors::files::{Encoding, FileOptions, Format, open_source};
use qiao_connectors::{ConnectorError, Source};
use qiao_core::{Change, Op, Value};
use std::fs;
use std::path::Path;

fn opts(dir: &Path, object: &str, format: Format, encoding: Encoding) -> FileOptions {
    FileOptions {
        system: "erp".into(),
        dir: dir.to_path_buf(),
        object: object.into(),
        format,
        encoding,
        delimiter: b',',
        record_element: None,
        key_columns: vec!["id".into()],
        batch_size: 2,
        checkpoint: None,
    }
}

/// Reads until caught up, committing every checkpoint; returns changes and errors.
async fn drain(src: &mut Box<dyn Source>) -> (Vec<Change>, Vec<String>) {
    let (mut changes, mut errors) = (Vec::new(), Vec::new());
    for _ in 0..10_000 {
        match src.next_batch().await {
            Ok(Some(b)) => {
                changes.extend(b.changes);
                if let Some(cp) = b.checkpoint {
                    src.committed(&cp).await.unwrap();
                }
            }
            Ok(None) => return (changes, errors),
            Err(ConnectorError::BadInput(m)) => errors.push(m),
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    panic!("source never caught up");
}

fn text(c: &Change, field: &str) -> String {
    c.record.get(field).to_string()
}

fn reason(dir: &Path, name: &str) -> String {
    fs::read_to_string(dir.join("failed").join(format!("{name}.reason.txt"))).unwrap()
}

#[tokio::test]
async fn csv_utf8_and_gbk_read_correctly_and_move_to_done() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let content = "id,名称,金额\r\n1,北京某某科技有限公司,100.50\r\n2,\"上海, 分公司\",\r\n";
    fs::write(d.join("a-utf8.csv"), format!("\u{feff}{content}")).unwrap();
    let (gbk, _, lossy) = encoding_rs::GBK.encode(content);
    assert!(!lossy);
    assert!(
        std::str::from_utf8(&gbk).is_err(),
        "the GBK test file must not be UTF-8"
    );
    fs::write(d.join("b-gbk.csv"), &gbk).unwrap();

    let mut utf8 = open_source(opts(d, "a-*.csv", Format::Csv, Encoding::Utf8))
        .await
        .unwrap();
    let (changes, errors) = drain(&mut utf8).await;
    assert!(errors.is_empty(), "{errors:?}");
    let mut gb = open_source(opts(d, "b-*.csv", Format::Csv, Encoding::Gb18030))
        .await
        .unwrap();
    let (gb_changes, errors) = drain(&mut gb).await;
    assert!(errors.is_empty(), "{errors:?}");

    for cs in [&changes, &gb_changes] {
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[0].key, "1");
        assert_eq!(text(&cs[0], "名称"), "北京某某科技有限公司");
        assert_eq!(cs[0].record.get("金额"), &Value::from("100.50"));
        assert_eq!(text(&cs[1], "名称"), "上海, 分公司");
        assert_eq!(cs[1].record.get("金额"), &Value::Null);
        assert_eq!(cs[1].op, Op::Upsert);
    }
    assert_eq!(gb_changes[1].origin.as_deref(), Some("b-gbk.csv:3"));
    assert!(d.join("done/a-utf8.csv").exists() && d.join("done/b-gbk.csv").exists());
    assert!(!d.join("a-utf8.csv").exists() && !d.join("b-gbk.csv").exists());
}

#[tokio::test]
async fn gbk_read_as_utf8_fails_with_a_hint_and_the_next_file_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (gbk, _, _) = encoding_rs::GBK.encode("id,客户\n1,客户甲\n");
    fs::write(d.join("c1.csv"), &gbk).unwrap();
    fs::write(d.join("c2.csv"), "id,name\n7,fine\n").unwrap();
    let mut src = open_source(opts(d, "c*.csv", Format::Csv, Encoding::Utf8))
        .await
        .unwrap();

    let err = src.next_batch().await.unwrap_err();
    let ConnectorError::BadInput(msg) = err else {
        panic!("{err:?}")
    };
    assert!(
        msg.contains("c1.csv") && msg.contains("encoding: gb18030"),
        "{msg}"
    );
    assert!(msg.contains("byte offset 3 (line 1)"), "{msg}");
    let why = reason(d, "c1.csv");
    assert!(
        why.contains("Chinese finance software") && why.contains("gb18030"),
        "{why}"
    );
    assert!(
        why.contains(&format!("put it back into {}", d.display())),
        "{why}"
    );
    assert!(d.join("failed/c1.csv").exists() && !d.join("c1.csv").exists());

    let (changes, errors) = drain(&mut src).await;
    assert!(errors.is_empty());
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].key, "7");
}

#[tokio::test]
async fn broken_quoting_ragged_rows_and_missing_keys_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("q1.csv"), "id,name\n1,ok\n2,\"unclosed\n3,x\n").unwrap();
    fs::write(d.join("q2.csv"), "id,name\n1,ok\n2,a\"b\n").unwrap();
    fs::write(d.join("q3.csv"), "id,name\n1,ok\n2\n").unwrap();
    fs::write(d.join("q4.csv"), "id,name\n1,ok\n,nokey\n").unwrap();
    fs::write(d.join("q5.csv"), "name\nx\n").unwrap();
    let mut src = open_source(opts(d, "q*.csv", Format::Csv, Encoding::Utf8))
        .await
        .unwrap();
    let (changes, errors) = drain(&mut src).await;
    assert!(
        changes.is_empty(),
        "all-or-nothing: no record of a bad file is emitted"
    );
    assert_eq!(errors.len(), 5, "{errors:?}");
    assert!(
        errors[0].contains("line 3") && errors[0].contains("never closed"),
        "{}",
        errors[0]
    );
    assert!(errors[1].contains("line 3, field 2"), "{}", errors[1]);
    assert!(errors[2].contains("line 3") && errors[2].contains("1 fields but the header has 2"));
    assert!(errors[3].contains("line 3") && errors[3].contains("key column `id` is empty"));
    assert!(errors[4].contains("line 2") && errors[4].contains("key column `id` is missing"));
    for n in 1..=5 {
        let why = reason(d, &format!("q{n}.csv"));
        assert!(
            why.contains("Where:") && why.contains("How to fix:"),
            "{why}"
        );
    }
}

#[tokio::test]
async fn jsonl_exact_decimals_and_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(
        d.join("j1.jsonl"),
        "{\"id\": 1, \"amount\": 12345678901234567.89, \"lines\": [{\"qty\": 2}]}\n\n{\"id\": \"2\", \"_op\": \"delete\"}\n",
    )
    .unwrap();
    fs::write(
        d.join("j2.jsonl"),
        "{\"id\": 1}\n{\"id\": 2}\n{\"id\": 3,}\n",
    )
    .unwrap();
    fs::write(d.join("j3.jsonl"), "{\"id\": 1}\n[1, 2]\n").unwrap();
    let mut src = open_source(opts(d, "j*.jsonl", Format::Jsonl, Encoding::Utf8))
        .await
        .unwrap();
    let (changes, errors) = drain(&mut src).await;
    assert_eq!(changes.len(), 2);
    assert_eq!(
        changes[0].record.get("amount").to_string(),
        "12345678901234567.89"
    );
    assert!(matches!(changes[0].record.get("amount"), Value::Decimal(_)));
    assert!(
        matches!(changes[0].record.get("lines"), Value::List(l) if matches!(&l[0], Value::Map(_)))
    );
    assert_eq!(changes[1].op, Op::Delete);
    assert_eq!(changes[1].key, "2");
    assert_eq!(changes[1].origin.as_deref(), Some("j1.jsonl:3"));
    assert_eq!(errors.len(), 2);
    assert!(
        errors[0].contains("j2.jsonl, line 3, column") && errors[0].contains("invalid JSON"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("line 2") && errors[1].contains("array, not an object"),
        "{}",
        errors[1]
    );
}

#[tokio::test]
async fn xml_with_dtd_or_entities_is_refused_without_reading_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let secret_path = d.join("secret.txt");
    let secret = format!("TOP-SECRET-{}", std::process::id());
    fs::write(&secret_path, &secret).unwrap();
    let url = format!("file://{}", secret_path.display());
    fs::write(
        d.join("x1.xml"),
        format!("<?xml version=\"1.0\"?>\n<!DOCTYPE r [<!ENTITY xxe SYSTEM \"{url}\">]>\n<rows><r><id>1</id><name>&xxe;</name></r></rows>"),
    )
    .unwrap();
    fs::write(
        d.join("x2.xml"),
        "<rows><r><id>1</id><name>&xxe;</name></r></rows>",
    )
    .unwrap();
    fs::write(
        d.join("x3.xml"),
        "<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;\">]><rows><r><id>&lol2;</id></r></rows>",
    )
    .unwrap();
    let mut o = opts(d, "x*.xml", Format::Xml, Encoding::Utf8);
    o.record_element = Some("r".into());
    let mut src = open_source(o).await.unwrap();
    let (changes, errors) = drain(&mut src).await;
    assert!(changes.is_empty());
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors[0].contains("DOCTYPE") && errors[0].contains("line 2"),
        "{}",
        errors[0]
    );
    assert!(errors[1].contains("&xxe;"), "{}", errors[1]);
    assert!(errors[2].contains("DOCTYPE"), "{}", errors[2]);
    let mut everything = errors.join("\n");
    for n in 1..=3 {
        everything.push_str(&reason(d, &format!("x{n}.xml")));
    }
    assert!(!everything.contains(&secret));
}

#[tokio::test]
async fn xml_records_with_nested_lines() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let xml = r#"<?xml version="1.0" encoding="GB18030"?>
<invoices>
  <invoice id="INV-1">
    <buyer><name>北京甲公司</name><tax_id>91110000MA00000001</tax_id></buyer>
    <lines>
      <line><item>服务费</item><amount>100.00</amount></line>
    </lines>
  </invoice>
  <invoice id="INV-2">
    <buyer><name>上海乙公司</name></buyer>
    <lines>
      <line><item>A</item><amount>1.10</amount></line>
      <line><item>B</item><amount>2.20</amount></line>
    </lines>
  </invoice>
</invoices>
"#;
    let (bytes, _, _) = encoding_rs::GB18030.encode(xml);
    fs::write(d.join("inv.xml"), &bytes).unwrap();
    let mut o = opts(d, "*.xml", Format::Xml, Encoding::Gb18030);
    o.record_element = Some("invoice".into());
    let mut src = open_source(o).await.unwrap();
    let (changes, errors) = drain(&mut src).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0].key, "INV-1");
    assert_eq!(changes[0].origin.as_deref(), Some("inv.xml:3"));
    let Value::Map(buyer) = changes[0].record.get("buyer") else {
        panic!()
    };
    assert_eq!(buyer["name"], Value::from("北京甲公司"));
    for (c, n) in [(&changes[0], 1), (&changes[1], 2)] {
        let Value::List(lines) = c.record.get("lines") else {
            panic!("lines must be a list: {:?}", c.record.get("lines"))
        };
        assert_eq!(lines.len(), n);
        let Value::Map(first) = &lines[0] else {
            panic!()
        };
        assert!(first.contains_key("amount"));
    }
    assert_eq!(
        changes[1].record.get("lines").to_string(),
        r#"[{"amount":"1.10","item":"A"},{"amount":"2.20","item":"B"}]"#
    );
}

#[tokio::test]
async fn each_file_once_and_done_only_after_commit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("f2.csv"), "id\n3\n").unwrap();
    fs::write(d.join("f1.csv"), "id\n1\n2\n").unwrap();
    fs::write(d.join("f3.csv.tmp"), "id\n9\n").unwrap();
    fs::write(d.join("other.csv"), "id\n9\n").unwrap();
    let mut src = open_source(opts(d, "f*.csv", Format::Csv, Encoding::Utf8))
        .await
        .unwrap();

    let b1 = src.next_batch().await.unwrap().unwrap();
    let keys: Vec<_> = b1.changes.iter().map(|c| c.key.clone()).collect();
    assert_eq!(keys, ["1", "2"], "lowest name first");
    assert!(d.join("f1.csv").exists(), "not moved before the commit");
    let b2 = src.next_batch().await.unwrap().unwrap();
    assert_eq!(b2.changes[0].key, "3");
    assert!(src.next_batch().await.unwrap().is_none());
    // Committing the later checkpoint completes both files (the engine commits in order).
    src.committed(b2.checkpoint.as_deref().unwrap())
        .await
        .unwrap();
    assert!(d.join("done/f1.csv").exists() && d.join("done/f2.csv").exists());
    assert!(src.next_batch().await.unwrap().is_none());
    assert!(d.join("f3.csv.tmp").exists() && d.join("other.csv").exists());

    // The same name dropped again later is a new file, and the old one is kept.
    fs::write(d.join("f1.csv"), "id\n4\n").unwrap();
    let (changes, _) = drain(&mut src).await;
    assert_eq!(changes.len(), 1);
    assert!(d.join("done/f1.2.csv").exists());

    let err = src.keys().await.unwrap_err();
    assert!(matches!(err, ConnectorError::Config(m) if m.contains("not supported for files")));
}

#[tokio::test]
async fn resumes_after_a_crash_from_the_committed_record() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("r.csv"), "id,v\n1,a\n2,b\n3,c\n4,d\n5,e\n").unwrap();
    let o = opts(d, "*.csv", Format::Csv, Encoding::Utf8);
    let mut first = open_source(o.clone()).await.unwrap();
    let b1 = first.next_batch().await.unwrap().unwrap();
    let cp1 = b1.checkpoint.unwrap();
    first.committed(&cp1).await.unwrap();
    let b2 = first.next_batch().await.unwrap().unwrap();
    assert_eq!(b2.changes[0].key, "3");
    drop(first); // crash: batch 2 was never committed

    let cp: serde_json::Value = serde_json::from_str(&cp1).unwrap();
    assert_eq!(cp["file"], "r.csv");
    assert_eq!(cp["records"], 2);
    assert_eq!(cp["size"], 25);
    assert_eq!(cp["sha256"].as_str().unwrap().len(), 64);

    let mut second = open_source(FileOptions {
        checkpoint: Some(cp1),
        ..o.clone()
    })
    .await
    .unwrap();
    let (changes, errors) = drain(&mut second).await;
    assert!(errors.is_empty());
    let keys: Vec<_> = changes.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["3", "4", "5"]);
    assert!(d.join("done/r.csv").exists());

    // Crash after the last commit but before the move: the file is finished, not re-read.
    fs::write(d.join("s.csv"), "id\n1\n").unwrap();
    let mut third = open_source(o.clone()).await.unwrap();
    let last = third
        .next_batch()
        .await
        .unwrap()
        .unwrap()
        .checkpoint
        .unwrap();
    drop(third);
    let mut fourth = open_source(FileOptions {
        checkpoint: Some(last.clone()),
        ..o.clone()
    })
    .await
    .unwrap();
    assert!(fourth.next_batch().await.unwrap().is_none());
    assert!(d.join("done/s.csv").exists());

    // A file with the checkpoint's name but other contents is read from the start.
    let mut cp: serde_json::Value = serde_json::from_str(&last).unwrap();
    cp["file"] = "t.csv".into();
    fs::write(d.join("t.csv"), "id\n1\n2\n").unwrap();
    let mut fifth = open_source(FileOptions {
        checkpoint: Some(cp.to_string()),
        ..o
    })
    .await
    .unwrap();
    let (changes, _) = drain(&mut fifth).await;
    assert_eq!(changes.len(), 2);
}

#[tokio::test]
async fn bad_options_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let missing = opts(&d.join("nope"), "*.csv", Format::Csv, Encoding::Utf8);
    assert!(
        matches!(open_source(missing).await, Err(ConnectorError::Config(m)) if m.contains("does not exist"))
    );
    let xml = opts(d, "*.xml", Format::Xml, Encoding::Utf8);
    assert!(
        matches!(open_source(xml).await, Err(ConnectorError::Config(m)) if m.contains("record_element"))
    );
    let mut quote = opts(d, "*.csv", Format::Csv, Encoding::Utf8);
    quote.delimiter = b'"';
    assert!(open_source(quote).await.is_err());
    let mut cp = opts(d, "*.csv", Format::Csv, Encoding::Utf8);
    cp.checkpoint = Some("{\"cursor\": 5}".into());
    assert!(
        matches!(open_source(cp).await, Err(ConnectorError::Config(m)) if m.contains("checkpoint"))
    );
    assert!(Format::parse("XML").is_ok() && Format::parse("xls").is_err());
    assert_eq!(Encoding::parse("GBK").unwrap(), Encoding::Gbk);
    assert_eq!(Encoding::parse("utf8").unwrap(), Encoding::Utf8);
    assert!(Encoding::parse("latin1").is_err());
}
