//! Outbox throughput: a bulk load of N changes (default 1,000,000) of 10 fields enqueued
//! as jobs of 2,000 changes, then delivered (due_jobs + job_done). Prints timings.
//!
//! `cargo run --release -p qiao-store --example outbox_bench [changes] [normal]`

use chrono::{FixedOffset, NaiveDate, TimeZone, Utc};
use qiao_core::{Change, Record, Value};
use qiao_store::{Durability, NewJob, SqliteStore, Store};
use rust_decimal::Decimal;
use std::time::{Duration, Instant};

const JOB_SIZE: usize = 2_000;

/// CPU seconds (user + system, all threads) this process used so far; wall time alone
/// misleads on a shared 2-core machine. None where /proc is missing.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Wall time and CPU time of a phase.
#[derive(Default)]
struct Phase {
    wall: Duration,
    cpu: f64,
}

impl Phase {
    fn add(&mut self, start: (Instant, Option<f64>)) {
        self.wall += start.0.elapsed();
        self.cpu += cpu_seconds()
            .zip(start.1)
            .map_or(0.0, |(now, then)| now - then);
    }

    fn print(&self, name: &str, what: &str) {
        println!(
            "{name:<17} {:>6.2} s wall {:>6.2} s cpu  ({what})",
            self.wall.as_secs_f64(),
            self.cpu
        );
    }
}

fn mark() -> (Instant, Option<f64>) {
    (Instant::now(), cpu_seconds())
}

fn change(i: usize) -> Change {
    let offset = FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| unreachable!());
    let at = offset
        .with_ymd_and_hms(2025, 3, 1, 9, 30, 0)
        .single()
        .unwrap_or_else(|| unreachable!());
    let record = Record::new()
        .with("id", i as i64)
        .with("code", format!("C{i:08}"))
        .with("name", format!("上海桥梁贸易有限公司 {i}"))
        .with("tax_id", "91310000MA1FL8XQ0X")
        .with("amount", Decimal::new(i as i64 * 137 + 5, 2))
        .with("rate", Decimal::new(13, 2))
        .with("active", !i.is_multiple_of(7))
        .with("city", "上海")
        .with(
            "opened",
            Value::Date(NaiveDate::from_ymd_opt(2020, 1, 1 + (i % 28) as u32).unwrap_or_default()),
        )
        .with("updated", Value::DateTime(at));
    let mut c = Change::upsert(format!("C{i:08}"), record);
    c.origin = Some(format!("customers.csv:{}", i + 2));
    c
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let total: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let durability = match args.next().as_deref() {
        Some("normal") => Durability::Normal,
        _ => Durability::Full,
    };
    // The codec alone, warm, on one job's worth of changes, scaled to the total.
    let sample: Vec<Change> = (0..JOB_SIZE).map(change).collect();
    let reps = 10;
    let mut bytes = Vec::new();
    let t = Instant::now();
    for _ in 0..reps {
        bytes = qiao_store::codec::encode_changes(&sample)?;
    }
    let enc = t.elapsed();
    let (mut dec, mut free) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..reps {
        let t = Instant::now();
        let back = qiao_store::codec::decode_changes(&bytes)?;
        dec += t.elapsed();
        assert_eq!(back.len(), sample.len(), "codec round trip");
        let t = Instant::now();
        drop(back);
        free += t.elapsed();
    }
    let scale = total as f64 / (JOB_SIZE * reps) as f64;
    println!(
        "codec             {:>6.2} s encode {:>6.2} s decode {:>6.2} s drop  ({} bytes per change, scaled from {reps} jobs)",
        enc.as_secs_f64() * scale,
        dec.as_secs_f64() * scale,
        free.as_secs_f64() * scale,
        bytes.len() / JOB_SIZE
    );
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.db");
    let store = SqliteStore::open_with(&path, durability).await?;
    let flow = "crm_customers_to_erp";

    let mut commit = Phase::default();
    let mut jobs = 0usize;
    for start in (0..total).step_by(JOB_SIZE) {
        let end = (start + JOB_SIZE).min(total);
        let changes: Vec<Change> = (start..end).map(change).collect();
        let job = NewJob {
            idempotency_key: format!("{flow}:{start}..{end}"),
            changes,
        };
        let t = mark();
        store
            .commit_batch(flow, Some(&end.to_string()), vec![job], vec![], vec![])
            .await?;
        commit.add(t);
        jobs += 1;
    }
    let size = std::fs::metadata(&path)?.len()
        + std::fs::metadata(dir.path().join("bench.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);

    let mut due = Phase::default();
    let mut done = Phase::default();
    let mut delivered = 0usize;
    loop {
        let t = mark();
        let batch = store.due_jobs(flow, Utc::now(), 4).await?;
        due.add(t);
        if batch.is_empty() {
            break;
        }
        for job in batch {
            delivered += job.changes.len();
            let t = mark();
            store.job_done(job.id).await?;
            done.add(t);
        }
    }
    assert_eq!(delivered, total, "every change delivered once");
    println!("durability        {durability:?}");
    println!("changes           {total} in {jobs} jobs of {JOB_SIZE}");
    commit.print(
        "commit_batch",
        "encode + insert + checkpoint, one commit per job",
    );
    due.print("due_jobs", "read + decode, 4 jobs per call");
    done.print("job_done", "drop payload, one commit per job");
    let total = Phase {
        wall: commit.wall + due.wall + done.wall,
        cpu: commit.cpu + due.cpu + done.cpu,
    };
    total.print("total", "the three above");
    println!(
        "store size        {:>8.1} MB after enqueue (db + wal)",
        size as f64 / 1e6
    );
    store.close().await;
    Ok(())
}
