//! `qiao demo`: builds a small company's systems in a folder — a CRM (SQLite) with
//! customers and orders carrying the faults real data has, a finance export in GBK, and an
//! empty ERP (SQLite) — writes the config that connects them, runs the flows and prints
//! what synced and what was rejected, and why.

mod world;

use crate::commands::{CmdResult, load_config, open_store, plans};
use crate::output;
use qiao_engine::{RunOptions, SilentObserver, run_flow};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;

/// Builds the demo world in `dir` and runs it.
pub async fn run(dir: &Path, customers: usize) -> CmdResult {
    let started = Instant::now();
    println!(
        "qiao demo: building a CRM with {customers} customers, an ERP and a finance export in {}",
        dir.display()
    );
    let facts = world::build(dir, customers).await?;
    println!(
        "  crm.db: {} customers, {} orders · exports/{}: {} receipts (GBK, amounts in fen) · erp.db: empty",
        facts.customers, facts.orders, facts.export_file, facts.receipts
    );
    println!("  faults seeded on purpose:");
    for (what, n) in &facts.faults {
        println!("    {n:>5}  {what}");
    }
    let config_path = dir.join("qiao.yaml");
    let loaded = load_config(&config_path)?;
    let store = open_store(&loaded).await?;
    store
        .save_config_version(&loaded.text, "demo")
        .await
        .map_err(|e| e.to_string())?;
    let (_stop_tx, stop_rx) = watch::channel(false);
    let opts = RunOptions {
        base_dir: loaded.dir.clone(),
        stop: stop_rx,
        owner: qiao_engine::lease::process_owner(),
    };
    println!("\nrunning the flows of {}:", config_path.display());
    let mut ok = true;
    for plan in plans(&loaded, &[], true)? {
        println!();
        match run_flow(
            &loaded.config,
            plan,
            store.clone(),
            &opts,
            Arc::new(SilentObserver),
        )
        .await
        {
            Ok(s) => output::print_summary(&s),
            Err(e) => {
                ok = false;
                println!("error: {e}");
            }
        }
    }
    let erp = world::erp_counts(dir).await?;
    println!(
        "\nERP now holds {} customers, {} orders, {} receipts.",
        erp.0, erp.1, erp.2
    );
    println!(
        "\ndone in {:.1} s. The state stays in {}:",
        started.elapsed().as_secs_f64(),
        dir.join("qiao.db").display()
    );
    println!(
        "  cargo run --release -- -c {} status",
        config_path.display()
    );
    println!(
        "  cargo run --release -- -c {} exceptions list --owner sales",
        config_path.display()
    );
    println!(
        "  cargo run --release -- -c {} exceptions show ID",
        config_path.display()
    );
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
