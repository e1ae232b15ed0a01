//! The subcommands' work. Errors come back as text for people.

use crate::cli::{Cli, Command, ExceptionsCmd};
use crate::output;
use crate::progress::Progress;
use qiao_core::load::{LoadedConfig, load};
use qiao_engine::exceptions::{self, Outcome};
use qiao_engine::{FlowPlan, RunOptions, run_flow};
use qiao_store::{ExceptionFilter, ExceptionState, SqliteStore, Store};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::sync::watch;

/// A command's error, already worded for people.
pub type CmdResult = Result<ExitCode, String>;

/// Runs the chosen subcommand.
pub async fn dispatch(cli: Cli) -> CmdResult {
    match cli.command {
        Command::Check { file } => check(file.as_deref().unwrap_or(&cli.config)),
        Command::Run { flows, all, json } => run(&cli.config, flows, all, json).await,
        Command::Serve => serve(&cli.config).await,
        Command::Status { json } => status(&cli.config, json).await,
        Command::Exceptions { action } => exceptions_cmd(&cli.config, action).await,
        Command::Map { flow, sample } => {
            crate::output::map_sample(&load_config(&cli.config)?, &flow, &sample)
        }
        Command::Demo { dir, customers } => crate::demo::run(&dir, customers).await,
    }
}

/// Loads and checks a config, or returns every diagnostic as the error text.
pub fn load_config(path: &Path) -> Result<LoadedConfig, String> {
    load(path).map_err(|d| {
        format!(
            "{d}\n{} error(s) in {}; fix them and run `qiao check` again",
            d.error_count(),
            path.display()
        )
    })
}

fn check(path: &Path) -> CmdResult {
    match load(path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                println!("{w}");
            }
            println!(
                "{}: ok — {} systems, {} entities, {} mappings, {} rule sets, {} flows",
                path.display(),
                loaded.config.systems.len(),
                loaded.config.entities.len(),
                loaded.config.mappings.len(),
                loaded.config.rules.len(),
                loaded.config.flows.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(d) => {
            println!("{d}");
            println!("{} error(s)", d.error_count());
            Ok(ExitCode::from(1))
        }
    }
}

/// Opens the store a config names (SQLite file beside the config by default).
pub async fn open_store(loaded: &LoadedConfig) -> Result<Arc<dyn Store>, String> {
    let spec = loaded
        .config
        .store
        .clone()
        .unwrap_or_else(|| "qiao.db".to_string());
    if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        return Err("store: a PostgreSQL store is not available yet; use a SQLite file path (the default is qiao.db beside the config)".into());
    }
    let path = loaded
        .dir
        .join(spec.strip_prefix("sqlite://").unwrap_or(&spec));
    let store = SqliteStore::open(&path).await.map_err(|e| e.to_string())?;
    Ok(Arc::new(store))
}

fn owner_id() -> String {
    qiao_engine::lease::process_owner()
}

fn run_options(loaded: &LoadedConfig, stop: watch::Receiver<bool>) -> RunOptions {
    RunOptions {
        base_dir: loaded.dir.clone(),
        stop,
        owner: owner_id(),
    }
}

/// Compiles the named flows (all when `all`).
pub fn plans(
    loaded: &LoadedConfig,
    flows: &[String],
    all: bool,
) -> Result<Vec<Arc<FlowPlan>>, String> {
    let names: Vec<String> = if all || flows.is_empty() {
        if !all {
            return Err("name the flows to run, or pass --all".into());
        }
        loaded.config.flows.keys().cloned().collect()
    } else {
        flows.to_vec()
    };
    names
        .iter()
        .map(|n| {
            FlowPlan::build(&loaded.config, n)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// Loads the config, opens its store and records the config as a version there (a new
/// version only when the text changed), as every command that runs flows must.
async fn open_versioned(config: &Path) -> Result<(LoadedConfig, Arc<dyn Store>), String> {
    let loaded = load_config(config)?;
    let store = open_store(&loaded).await?;
    store
        .save_config_version(&loaded.text, &whoami())
        .await
        .map_err(|e| e.to_string())?;
    Ok((loaded, store))
}

/// Runs flows once and prints their summaries.
pub async fn run(config: &Path, flows: Vec<String>, all: bool, json: bool) -> CmdResult {
    let (loaded, store) = open_versioned(config).await?;
    let plans = plans(&loaded, &flows, all)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    spawn_signal_handler(stop_tx);
    let opts = run_options(&loaded, stop_rx);
    let mut failed = false;
    let mut summaries = Vec::new();
    for plan in plans {
        let progress = Arc::new(Progress::new(&plan.name));
        let result = run_flow(
            &loaded.config,
            plan.clone(),
            store.clone(),
            &opts,
            progress.clone(),
        )
        .await;
        progress.finish();
        match result {
            Ok(s) => {
                if !json {
                    output::print_summary(&s);
                }
                summaries.push(s);
            }
            Err(e) => {
                failed = true;
                eprintln!("error: {e}");
            }
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summaries).map_err(|e| e.to_string())?
        );
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "qiao".into())
}

/// Turns SIGTERM / Ctrl-C into a stop request; a second one exits at once.
pub fn spawn_signal_handler(stop: watch::Sender<bool>) {
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("cannot listen for SIGTERM: {e}");
                    return;
                }
            };
        for round in 0..2 {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            if round == 0 {
                eprintln!("stopping: finishing the current batch (signal again to exit at once)");
                let _ = stop.send(true);
            } else {
                std::process::exit(130);
            }
        }
    });
}

struct ServeLines;
impl qiao_engine::serve::ServeLog for ServeLines {
    fn pass(&self, flow: &str, result: &qiao_engine::Result<qiao_engine::RunSummary>) {
        match result {
            Ok(s) => println!(
                "{} {}",
                chrono::Local::now().format("%Y-%m-%d %H:%M:%S"),
                output::summary_line(s)
            ),
            Err(e) => eprintln!(
                "{} flow {flow}: error: {e}",
                chrono::Local::now().format("%Y-%m-%d %H:%M:%S")
            ),
        }
    }
}

async fn serve(config: &Path) -> CmdResult {
    let (loaded, store) = open_versioned(config).await?;
    let plans = plans(&loaded, &[], true)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    spawn_signal_handler(stop_tx);
    let opts = run_options(&loaded, stop_rx);
    let config = Arc::new(loaded.config.clone());
    println!(
        "qiao serve: {} flows, store {}; stop with Ctrl-C or SIGTERM",
        plans.len(),
        loaded.dir.display()
    );
    let n = qiao_engine::serve::serve(
        config,
        plans,
        store,
        opts,
        Arc::new(qiao_engine::SilentObserver),
        Arc::new(ServeLines),
    )
    .await
    .map_err(|e| e.to_string())?;
    if n == 0 {
        println!("no flow has an interval or cron trigger; nothing to serve (use `qiao run FLOW`)");
    }
    println!("qiao serve: stopped cleanly");
    Ok(ExitCode::SUCCESS)
}

async fn status(config: &Path, json: bool) -> CmdResult {
    let loaded = load_config(config)?;
    let store = open_store(&loaded).await?;
    let runs = store.last_runs().await.map_err(|e| e.to_string())?;
    let counts = store
        .open_exception_counts()
        .await
        .map_err(|e| e.to_string())?;
    let mut pending = Vec::new();
    for flow in loaded.config.flows.keys() {
        pending.push((
            flow.clone(),
            store.pending_jobs(flow).await.map_err(|e| e.to_string())?,
        ));
    }
    if json {
        let v =
            serde_json::json!({ "runs": runs, "pending_jobs": pending, "open_exceptions": counts });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
        );
    } else {
        output::print_status(&loaded.config, &runs, &pending, &counts);
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_state(s: &str) -> Result<ExceptionState, String> {
    match s {
        "open" => Ok(ExceptionState::Open),
        "retrying" => Ok(ExceptionState::Retrying),
        "resolved" => Ok(ExceptionState::Resolved),
        "ignored" => Ok(ExceptionState::Ignored),
        other => Err(format!(
            "unknown state `{other}`; use open, retrying, resolved or ignored"
        )),
    }
}

async fn exceptions_cmd(config: &Path, action: ExceptionsCmd) -> CmdResult {
    let loaded = load_config(config)?;
    let store = open_store(&loaded).await?;
    match action {
        ExceptionsCmd::List {
            flow,
            state,
            owner,
            limit,
            json,
        } => {
            let states = if state.is_empty() {
                vec![ExceptionState::Open, ExceptionState::Retrying]
            } else {
                state
                    .iter()
                    .map(|s| parse_state(s))
                    .collect::<Result<_, _>>()?
            };
            let filter = ExceptionFilter {
                flow,
                states,
                owner,
                limit,
            };
            let rows = store.exceptions(&filter).await.map_err(|e| e.to_string())?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?
                );
            } else {
                output::print_exceptions(&rows);
            }
        }
        ExceptionsCmd::Show { id } => {
            let (row, changes, history) = store.exception(id).await.map_err(|e| e.to_string())?;
            output::print_exception(&loaded.config, &row, &changes, &history);
        }
        ExceptionsCmd::Retry { ids, by } => {
            let (_stop_tx, stop_rx) = watch::channel(false);
            let opts = run_options(&loaded, stop_rx);
            for id in ids {
                let (row, _, _) = store.exception(id).await.map_err(|e| e.to_string())?;
                let plan = Arc::new(
                    FlowPlan::build(&loaded.config, &row.flow).map_err(|e| e.to_string())?,
                );
                match exceptions::retry(plan.clone(), store.clone(), id, &by)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    Outcome::Enqueued(n) => {
                        let d = qiao_engine::runner::deliver_pending(
                            &loaded.config,
                            &plan,
                            store.as_ref(),
                            &opts,
                        )
                        .await
                        .map_err(|e| e.to_string())?;
                        let (row, _, _) = store.exception(id).await.map_err(|e| e.to_string())?;
                        println!(
                            "exception {id}: {n} record(s) sent again; delivered {} upserts, {} deletes; state now {:?}",
                            d.upserts, d.deletes, row.state
                        );
                        if let Some(w) = d.waiting {
                            println!("  {w}");
                        }
                    }
                    Outcome::StillFailing(msg) => {
                        println!("exception {id}: still failing, open again: {msg}")
                    }
                    Outcome::Nothing => println!("exception {id}: nothing left to send; resolved"),
                }
            }
        }
        ExceptionsCmd::Ignore { ids, note, by } => {
            for id in ids {
                let (row, _, _) = store.exception(id).await.map_err(|e| e.to_string())?;
                let outcome = exceptions::ignore(&row.flow, store.as_ref(), id, &by, &note)
                    .await
                    .map_err(|e| e.to_string())?;
                match outcome {
                    Outcome::Enqueued(n) => println!(
                        "exception {id}: ignored; {n} held change(s) released for delivery (run the flow to deliver them)"
                    ),
                    _ => println!("exception {id}: ignored"),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
