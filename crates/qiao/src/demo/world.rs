//! The demo world: generated data with realistic faults, the folder layout and the config.

use qiao_cn::uscc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};
use std::path::Path;

/// What was built, for the demo's opening lines.
pub struct Facts {
    /// CRM customers.
    pub customers: usize,
    /// CRM orders.
    pub orders: usize,
    /// Receipts in the finance export.
    pub receipts: usize,
    /// The export's file name.
    pub export_file: String,
    /// Seeded faults: description → count.
    pub faults: Vec<(String, usize)>,
}

const REGIONS: [&str; 10] = [
    "北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "南京", "西安", "苏州",
];
const REGION_CODES: [&str; 10] = [
    "110108", "310115", "440106", "440305", "330106", "510107", "420106", "320102", "610113",
    "320505",
];
const TRADE: [&str; 24] = [
    "云帆", "华信", "金桥", "恒通", "博远", "星辰", "瑞丰", "鼎盛", "安泰", "宏图", "新元", "卓越",
    "东方", "天成", "嘉禾", "汇达", "中科", "远航", "盛世", "永安", "海川", "明德", "正和", "腾飞",
];
const INDUSTRY: [&str; 8] = [
    "科技", "贸易", "电子", "网络", "食品", "物流", "医药", "建材",
];
const PRODUCTS: [(&str, &str); 10] = [
    ("燕麦片 500g", "12.50"),
    ("办公椅 人体工学", "899.00"),
    ("A4复印纸 70g", "24.90"),
    ("激光打印机", "1299.00"),
    ("矿泉水 550ml×24", "36.00"),
    ("云服务器租用(月)", "450.00"),
    ("技术咨询服务", "3000.00"),
    ("显示器 27寸", "1499.00"),
    ("物流运输服务", "800.00"),
    ("茶叶礼盒", "268.00"),
];

async fn open(path: &Path) -> Result<SqlitePool, String> {
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .map_err(|e| format!("cannot create {}: {e}", path.display()))
}

fn uscc_for(rng: &mut StdRng, region: &str) -> String {
    let alphabet: Vec<char> = uscc::ALPHABET.chars().collect();
    let mut first = format!("91{region}");
    for _ in 0..9 {
        first.push(alphabet[rng.random_range(0..alphabet.len())]);
    }
    // `first` has 17 characters from the alphabet, so a check character exists.
    let check = uscc::check_char(&first).unwrap_or('0');
    first.push(check);
    first
}

fn wrong_check(id: &str) -> String {
    let mut chars: Vec<char> = id.chars().collect();
    let last = chars[17];
    chars[17] = uscc::ALPHABET.chars().find(|c| *c != last).unwrap_or('0');
    chars.into_iter().collect()
}

fn fullwidth(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '!'..='~' => char::from_u32(c as u32 + 0xFEE0).unwrap_or(c),
            ' ' => '\u{3000}',
            c => c,
        })
        .collect()
}

/// Creates the folder, both databases, the GBK export and the config.
pub async fn build(dir: &Path, customers: usize) -> Result<Facts, String> {
    std::fs::create_dir_all(dir.join("exports"))
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for stale in ["crm.db", "erp.db", "qiao.db", "qiao.db-wal", "qiao.db-shm"] {
        let p = dir.join(stale);
        if p.exists() {
            std::fs::remove_file(&p)
                .map_err(|e| format!("cannot remove old {}: {e}", p.display()))?;
        }
    }
    for sub in ["exports/done", "exports/failed"] {
        let _ = std::fs::remove_dir_all(dir.join(sub));
    }
    let mut rng = StdRng::seed_from_u64(20261123);
    let mut faults: Vec<(String, usize)> = Vec::new();
    let mut count = |what: &str| {
        if let Some(f) = faults.iter_mut().find(|f| f.0 == what) {
            f.1 += 1;
        } else {
            faults.push((what.to_string(), 1));
        }
    };

    let crm = open(&dir.join("crm.db")).await?;
    let q = |e: sqlx::Error| format!("demo CRM: {e}");
    sqlx::query(
        "CREATE TABLE customers (cust_no TEXT PRIMARY KEY, cust_name TEXT NOT NULL, tax_id TEXT, phone TEXT, \
         address TEXT, status TEXT NOT NULL, credit_limit TEXT, updated_at TEXT NOT NULL)",
    )
    .execute(&crm)
    .await
    .map_err(q)?;
    sqlx::query(
        "CREATE TABLE orders (order_no TEXT PRIMARY KEY, cust_no TEXT NOT NULL, product TEXT NOT NULL, qty TEXT NOT NULL, \
         price TEXT NOT NULL, amount TEXT NOT NULL, order_date TEXT NOT NULL, updated_at TEXT NOT NULL)",
    )
    .execute(&crm)
    .await
    .map_err(q)?;
    sqlx::query("CREATE INDEX customers_cursor ON customers (updated_at, cust_no)")
        .execute(&crm)
        .await
        .map_err(q)?;
    sqlx::query("CREATE INDEX orders_cursor ON orders (updated_at, order_no)")
        .execute(&crm)
        .await
        .map_err(q)?;

    let mut tx = crm.begin().await.map_err(q)?;
    let mut names: Vec<String> = Vec::with_capacity(customers);
    let mut n_orders = 0usize;
    let mut i = 0usize;
    while i < customers {
        let r = rng.random_range(0..REGIONS.len());
        let trade = TRADE[rng.random_range(0..TRADE.len())];
        let trade2 = TRADE[rng.random_range(0..TRADE.len())];
        let industry = INDUSTRY[rng.random_range(0..INDUSTRY.len())];
        let name = format!("{}{trade}{trade2}{industry}有限公司", REGIONS[r]);
        let mut tax_id = uscc_for(&mut rng, REGION_CODES[r]);
        let mut phone = format!(
            "1{}{:09}",
            rng.random_range(3..10),
            rng.random_range(0..1_000_000_000u64)
        );
        let status = ["active", "active", "active", "dormant", "closed"][rng.random_range(0..5)];
        let credit = format!("{}", rng.random_range(1..500) * 1000);
        let mut stored_name = name.clone();
        let roll = rng.random_range(0..1000);
        if roll < 20 {
            phone.clear();
            count("customers without a phone number (rule: sales must add it)");
        } else if roll < 35 {
            tax_id = wrong_check(&tax_id);
            count("taxpayer ids with a wrong check character (GB 32100)");
        } else if roll < 45 {
            stored_name = fullwidth(&format!("{}{trade}{trade2}{industry} Co.,Ltd", REGIONS[r]));
            count("names typed in full-width characters (normalized, not rejected)");
        } else if roll < 55 {
            tax_id = tax_id.to_lowercase();
            count("taxpayer ids typed in lower case (normalized, not rejected)");
        }
        let code = format!("C{:06}", i + 1);
        let ts = format!(
            "2026-11-{:02} {:02}:{:02}:{:02}",
            1 + i % 20,
            i % 24,
            i % 60,
            (i / 60) % 60
        );
        insert_customer(
            &mut tx,
            &code,
            &stored_name,
            &tax_id,
            &phone,
            status,
            &credit,
            &ts,
        )
        .await
        .map_err(q)?;
        names.push(code.clone());
        i += 1;
        // The same company entered again under a name variant, as sales people do.
        if rng.random_range(0..100) < 2 && i < customers {
            let variant = format!("{trade}{trade2}{industry}({})", REGIONS[r]);
            let code2 = format!("C{:06}", i + 1);
            insert_customer(
                &mut tx, &code2, &variant, &tax_id, &phone, status, &credit, &ts,
            )
            .await
            .map_err(q)?;
            names.push(code2);
            i += 1;
            count(
                "the same company twice under name variants (e.g. 北京X科技有限公司 / X科技(北京); master data, not rejected)",
            );
        }
    }
    for (ci, cust) in names.iter().enumerate() {
        for k in 0..rng.random_range(0..5) {
            let (product, price) = PRODUCTS[rng.random_range(0..PRODUCTS.len())];
            let qty = rng.random_range(1..20);
            let price_d: rust_decimal::Decimal =
                price.parse().map_err(|e| format!("demo price: {e}"))?;
            let mut amount = (price_d * rust_decimal::Decimal::from(qty)).round_dp(2);
            let mut product = product.to_string();
            let roll = rng.random_range(0..1000);
            if roll < 10 {
                product = format!("*促销*{product}");
                count("product names containing `*` or `#` (rule: the tax platform rejects them)");
            } else if roll < 15 {
                product = format!("{product}#2");
                count("product names containing `*` or `#` (rule: the tax platform rejects them)");
            } else if roll < 25 {
                amount *= rust_decimal::Decimal::from(100);
                count(
                    "order amounts entered in fen where yuan is expected (rule: amount = quantity × price)",
                );
            }
            let order_no = format!("SO{:06}-{k}", ci + 1);
            let ts = format!(
                "2026-11-{:02} {:02}:{:02}:{:02}",
                1 + ci % 20,
                ci % 24,
                k,
                ci % 60
            );
            sqlx::query("INSERT INTO orders VALUES (?,?,?,?,?,?,?,?)")
                .bind(&order_no)
                .bind(cust)
                .bind(&product)
                .bind(qty.to_string())
                .bind(price)
                .bind(amount.to_string())
                .bind(format!("2026-11-{:02}", 1 + ci % 20))
                .bind(ts)
                .execute(&mut *tx)
                .await
                .map_err(q)?;
            n_orders += 1;
        }
    }
    tx.commit().await.map_err(q)?;
    crm.close().await;

    let erp = open(&dir.join("erp.db")).await?;
    let e = |e: sqlx::Error| format!("demo ERP: {e}");
    for ddl in [
        "CREATE TABLE erp_customers (code TEXT PRIMARY KEY, name TEXT NOT NULL, tax_no TEXT, addr_tel TEXT, state TEXT NOT NULL, credit TEXT)",
        "CREATE TABLE erp_orders (order_no TEXT PRIMARY KEY, customer_code TEXT NOT NULL, item_name TEXT NOT NULL, quantity TEXT, price TEXT, amount TEXT NOT NULL, order_date TEXT)",
        "CREATE TABLE erp_receipts (receipt_no TEXT PRIMARY KEY, payer_name TEXT NOT NULL, amount TEXT NOT NULL, received_on TEXT NOT NULL)",
    ] {
        sqlx::query(ddl).execute(&erp).await.map_err(e)?;
    }
    erp.close().await;

    let export_file = "receipts_20261120.csv".to_string();
    let mut csv = String::from("收款单号,付款单位,金额(分),到账日期\n");
    let receipts = 200;
    for k in 0..receipts {
        let r = k % REGIONS.len();
        let payer = format!(
            "{}{}{}有限公司",
            REGIONS[r],
            TRADE[k % TRADE.len()],
            INDUSTRY[k % INDUSTRY.len()]
        );
        let fen = 10_000 + (k * 7_919) % 5_000_000;
        let date = if k % 50 == 7 {
            "2026/11/31".to_string()
        } else {
            format!("2026-11-{:02}", 1 + k % 20)
        };
        if k % 50 == 7 {
            count("receipt dates that do not exist (2026/11/31) in the GBK finance export");
        }
        csv.push_str(&format!("R2026{k:05},{payer},{fen},{date}\n"));
    }
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(&csv);
    if unmappable {
        return Err("demo: the finance export has characters GBK cannot hold".into());
    }
    std::fs::write(dir.join("exports").join(&export_file), &bytes)
        .map_err(|e| format!("demo export: {e}"))?;
    std::fs::write(dir.join("qiao.yaml"), CONFIG).map_err(|e| format!("demo config: {e}"))?;
    Ok(Facts {
        customers: names.len(),
        orders: n_orders,
        receipts,
        export_file,
        faults,
    })
}

#[allow(clippy::too_many_arguments)]
async fn insert_customer(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    code: &str,
    name: &str,
    tax_id: &str,
    phone: &str,
    status: &str,
    credit: &str,
    ts: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO customers VALUES (?,?,?,?,?,?,?,?)")
        .bind(code)
        .bind(name)
        .bind(tax_id)
        .bind(if phone.is_empty() { None } else { Some(phone) })
        .bind(format!(
            "{}市{}路{}号",
            &name.chars().take(2).collect::<String>(),
            code,
            code.len()
        ))
        .bind(status)
        .bind(credit)
        .bind(ts)
        .execute(&mut **tx)
        .await
        .map(|_| ())
}

/// Rows in the ERP's three tables.
pub async fn erp_counts(dir: &Path) -> Result<(i64, i64, i64), String> {
    let erp = open(&dir.join("erp.db")).await?;
    let mut out = [0i64; 3];
    for (i, t) in ["erp_customers", "erp_orders", "erp_receipts"]
        .iter()
        .enumerate()
    {
        // `t` comes from the fixed list above, never from input.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {t}")))
            .fetch_one(&erp)
            .await
            .map_err(|e| format!("demo ERP: {e}"))?;
        out[i] = row.try_get(0).map_err(|e| format!("demo ERP: {e}"))?;
    }
    erp.close().await;
    Ok((out[0], out[1], out[2]))
}

/// The demo's config: also the tour in the README.
pub const CONFIG: &str = include_str!("demo.yaml");
