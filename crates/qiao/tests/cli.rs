//! The command line on bad input: a clear error with file:line:column or a file moved to
//! failed/ with its reason, an exception a person can find, and never a panic.

use std::path::Path;
use std::process::{Command, Output};

fn qiao(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_qiao"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "qiao panicked: {stderr}");
    out
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn check_reports_malformed_yaml_with_position() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "systems:\n  crm: { kind: sqlite, url: \"sqlite://x.db\"\n",
    )
    .unwrap();
    let out = qiao(dir.path(), &["check", "bad.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("bad.yaml:"), "{}", text(&out));
}

#[test]
fn check_reports_every_unknown_field_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("q.yaml"),
        "systems:\n  crm: { kind: sqlite, url: \"sqlite://x.db\", encodng: gbk }\nentities:\n  customer:\n    key: [code]\n    feilds:\n      code: { type: text }\n",
    )
    .unwrap();
    let out = qiao(dir.path(), &["check", "q.yaml"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("q.yaml:2:") && t.contains("encoding"), "{t}");
    assert!(t.contains("q.yaml:6:") && t.contains("fields"), "{t}");
}

const CONFIG: &str = r#"
systems:
  finance: { kind: files, path: inbox, format: csv, encoding: ENCODING }
  xmlin: { kind: files, path: xmlbox, format: xml, record_element: receipt }
  erp: { kind: sqlite, url: "sqlite://erp.db" }
entities:
  receipt:
    key: [no]
    fields:
      no: { type: text(20), required: true }
      payer: { type: text(100), required: true }
mappings:
  finance_receipt:
    system: finance
    entity: receipt
    object: "*.csv"
    key: [单号]
    fields: { no: { from: 单号 }, payer: { from: 付款单位 } }
  xml_receipt:
    system: xmlin
    entity: receipt
    object: "*.xml"
    fields: { no: { from: no }, payer: { from: payer } }
  erp_receipt:
    system: erp
    entity: receipt
    object: receipts
    fields: { no: { from: no }, payer: { from: payer } }
flows:
  receipts: { from: finance_receipt, to: erp_receipt }
  xml_receipts: { from: xml_receipt, to: erp_receipt }
"#;

fn world(encoding: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("inbox")).unwrap();
    std::fs::create_dir_all(p.join("xmlbox")).unwrap();
    std::fs::write(p.join("qiao.yaml"), CONFIG.replace("ENCODING", encoding)).unwrap();
    create_erp(p);
    dir
}

/// Creates the ERP's SQLite table.
fn create_erp(dir: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.join("erp.db"))
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        sqlx::query("CREATE TABLE receipts (no TEXT PRIMARY KEY, payer TEXT NOT NULL)")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
}

fn gbk(s: &str) -> Vec<u8> {
    encoding_rs::GBK.encode(s).0.into_owned()
}

#[test]
fn gbk_file_read_as_utf8_goes_to_failed_with_a_reason_and_as_gb18030_syncs() {
    let csv = "单号,付款单位\nR1,北京云帆科技有限公司\nR2,上海华信贸易有限公司\n";
    let dir = world("utf-8");
    std::fs::write(dir.path().join("inbox/r1.csv"), gbk(csv)).unwrap();
    let out = qiao(dir.path(), &["run", "receipts"]);
    let t = text(&out);
    assert!(dir.path().join("inbox/failed/r1.csv").exists(), "{t}");
    let reason =
        std::fs::read_to_string(dir.path().join("inbox/failed/r1.csv.reason.txt")).unwrap();
    assert!(reason.contains("gb18030"), "{reason}");
    let list = text(&qiao(dir.path(), &["exceptions", "list"]));
    assert!(list.contains("r1.csv"), "{list}");

    let dir = world("gb18030");
    std::fs::write(dir.path().join("inbox/r1.csv"), gbk(csv)).unwrap();
    let out = qiao(dir.path(), &["run", "receipts"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("delivered 2"), "{t}");
    assert!(dir.path().join("inbox/done/r1.csv").exists());
}

#[test]
fn broken_quoting_fails_only_that_file_and_names_the_line() {
    let dir = world("utf-8");
    std::fs::write(
        dir.path().join("inbox/a.csv"),
        "单号,付款单位\nR1,\"北京云帆\nR2,x\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("inbox/b.csv"),
        "单号,付款单位\nR3,上海华信\n",
    )
    .unwrap();
    let t = text(&qiao(dir.path(), &["run", "receipts"]));
    assert!(t.contains("delivered 1"), "{t}");
    let reason = std::fs::read_to_string(dir.path().join("inbox/failed/a.csv.reason.txt")).unwrap();
    assert!(reason.contains("line 2"), "{reason}");
    assert!(dir.path().join("inbox/done/b.csv").exists());
}

#[test]
fn xml_with_an_external_entity_is_refused_and_the_secret_never_shows() {
    let dir = world("utf-8");
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "TOP-SECRET-VALUE").unwrap();
    std::fs::write(
        dir.path().join("xmlbox/x.xml"),
        format!(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE r [<!ENTITY s SYSTEM \"file://{}\">]>\n<receipts><receipt><no>R1</no><payer>&s;</payer></receipt></receipts>\n",
            secret.display()
        ),
    )
    .unwrap();
    let t = text(&qiao(dir.path(), &["run", "xml_receipts"]));
    assert!(dir.path().join("xmlbox/failed/x.xml").exists(), "{t}");
    assert!(!t.contains("TOP-SECRET-VALUE"));
    let reason =
        std::fs::read_to_string(dir.path().join("xmlbox/failed/x.xml.reason.txt")).unwrap();
    assert!(!reason.contains("TOP-SECRET-VALUE"));
    assert!(
        reason.to_lowercase().contains("dtd") || reason.to_lowercase().contains("doctype"),
        "{reason}"
    );
    let show = text(&qiao(dir.path(), &["exceptions", "list", "--json"]));
    assert!(!show.contains("TOP-SECRET-VALUE"));
}

const RULES_CONFIG: &str = r#"
systems:
  crm: { kind: sqlite, url: "sqlite://crm.db" }
  erp: { kind: sqlite, url: "sqlite://erp.db" }
entities:
  customer:
    key: [code]
    fields:
      code: { type: text(20), required: true }
      name: { type: text(100), required: true }
      phone: { type: text(20), sensitive: true }
      status: { type: "enum[active,dormant,closed]", required: true }
mappings:
  crm_customer:
    system: crm
    entity: customer
    object: customers
    cursor: updated_at
    fields:
      code: { from: cust_no }
      name: { from: cust_name, convert: [halfwidth, trim] }
      phone: { from: phone }
      status: { from: status }
  erp_customer:
    system: erp
    entity: customer
    object: customers
    fields:
      code: { from: code }
      name: { from: name }
      phone: { from: tel }
      status: { from: state, values: { active: "1", dormant: "2", closed: "3" } }
rules:
  quality:
    entity: customer
    rules:
      - code: CUST-PHONE
        field: phone
        check: required
        owner: sales
        message: { zh: "客户电话缺失", en: "customer phone is missing" }
flows:
  customers: { from: crm_customer, to: erp_customer, rules: [quality] }
"#;

fn sql(dir: &Path, db: &str, statements: &[&str]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.join(db))
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        for s in statements {
            sqlx::query(sqlx::AssertSqlSafe(s.to_string()))
                .execute(&pool)
                .await
                .unwrap();
        }
        pool.close().await;
    });
}

#[test]
fn exceptions_have_owners_history_and_are_superseded_by_a_fixed_record() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("qiao.yaml"), RULES_CONFIG).unwrap();
    sql(
        p,
        "crm.db",
        &[
            "CREATE TABLE customers (cust_no TEXT PRIMARY KEY, cust_name TEXT, phone TEXT, status TEXT, updated_at TEXT)",
            "INSERT INTO customers VALUES ('C1', 'ＡＢＣ科技 ', '13800000000', 'active', '2026-11-01 00:00:01')",
            "INSERT INTO customers VALUES ('C2', '华信贸易', NULL, 'dormant', '2026-11-01 00:00:02')",
            "INSERT INTO customers VALUES ('C3', '恒通物流', NULL, 'closed', '2026-11-01 00:00:03')",
        ],
    );
    sql(
        p,
        "erp.db",
        &["CREATE TABLE customers (code TEXT PRIMARY KEY, name TEXT, tel TEXT, state TEXT)"],
    );

    // `map` shows each field and where it came from.
    std::fs::write(
        p.join("rec.json"),
        r#"{"cust_no": "C9", "cust_name": "ＡＢＣ ", "phone": "13912345678", "status": "closed"}"#,
    )
    .unwrap();
    let t = text(&qiao(p, &["map", "customers", "--sample", "rec.json"]));
    assert!(t.contains("ABC") && t.contains("cust_name"), "{t}");
    assert!(t.contains("state") && t.contains('3'), "{t}");
    assert!(
        !t.contains("13912345678"),
        "sensitive phone must be masked: {t}"
    );

    let t = text(&qiao(p, &["run", "customers"]));
    assert!(
        t.contains("read 3") && t.contains("delivered 1") && t.contains("rejected 2"),
        "{t}"
    );
    assert!(t.contains("CUST-PHONE"), "{t}");
    let t = text(&qiao(p, &["exceptions", "list", "--owner", "sales"]));
    assert_eq!(
        t.lines().filter(|l| l.contains("CUST-PHONE")).count(),
        2,
        "{t}"
    );
    let t = text(&qiao(p, &["status"]));
    assert!(
        t.contains("customers") && t.contains("partial") && t.contains("sales"),
        "{t}"
    );

    // Ignore one with a note; fix the other at the source: the next run supersedes it.
    let json = String::from_utf8(qiao(p, &["exceptions", "list", "--json"]).stdout).unwrap();
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    let id_of = |key: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == key)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
            .to_string()
    };
    let (c2, c3) = (id_of("C2"), id_of("C3"));
    let t = text(&qiao(
        p,
        &[
            "exceptions",
            "ignore",
            &c3,
            "--note",
            "customer closed, no phone will come",
            "--by",
            "li.lei",
        ],
    ));
    assert!(t.contains("ignored"), "{t}");
    let t = text(&qiao(p, &["exceptions", "show", &c3]));
    assert!(t.contains("li.lei") && t.contains("customer closed"), "{t}");
    sql(
        p,
        "crm.db",
        &[
            "UPDATE customers SET phone = '13700000000', updated_at = '2026-11-02 00:00:00' WHERE cust_no = 'C2'",
        ],
    );
    let t = text(&qiao(p, &["run", "customers"]));
    assert!(t.contains("delivered 1"), "{t}");
    let t = text(&qiao(p, &["exceptions", "show", &c2]));
    assert!(t.to_lowercase().contains("resolved"), "{t}");
    let t = text(&qiao(p, &["exceptions", "list"]));
    assert!(t.contains("no exceptions match"), "{t}");
}
